//! Files: experiment configuration, traces and summaries, checkpoints, plots.

pub mod checkpoint;
pub mod config;
pub mod output;
pub mod plot;
