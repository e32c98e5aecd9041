#![doc = include_str!("../README.md")]

pub mod activation;
pub mod block;
pub mod checkpoint;
pub mod cpu;
pub mod engine;
pub mod error;
pub mod gpu;
pub mod io;
pub mod layout;
pub mod network;
pub mod params;
pub mod partition;
pub mod plan;
pub mod reference;
pub mod rng;
pub mod signal;
pub mod state;

/// The wgpu this crate is built against: embed with `localprop::wgpu` so the versions match.
pub use wgpu;

pub use engine::{Backend, Divergence, Engine, Flow, OnDivergence};
pub use error::{Error, Result};
pub use network::{Init, Network, NetworkSpec, Topology};
pub use params::{Activation, Params, Policy, Speed};
pub use signal::Streams;
pub use state::{State, Trace};
