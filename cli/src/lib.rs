//! The `localprop` command line's library: experiment files ([`config`]), the runner
//! ([`experiment`]), data sets ([`data`]), the backprop baseline ([`baseline`]), the
//! backprop-limit experiment ([`bp_limit`]), the benchmark table ([`mod@bench`]), the memory
//! budget ([`budget`]), traces and summaries ([`output`]), plots ([`plot`]), the online
//! recurrent baselines ([`recurrent`]) and their comparison with the local rule
//! ([`mod@sequence`]), sweeps split into shards ([`shard`]) and the plan for one network over
//! several devices ([`mod@partition`]).
//!
//! The engine itself is the [`localprop`] crate, which depends on none of this; the binary is
//! `src/main.rs`. Commands and files are documented in the README and
//! `docs/experiment-format.md`.

pub mod baseline;
pub mod bench;
pub mod bp_limit;
pub mod budget;
pub mod config;
pub mod data;
pub mod experiment;
pub mod output;
pub mod partition;
pub mod plot;
pub mod recurrent;
pub mod sequence;
pub mod shard;
