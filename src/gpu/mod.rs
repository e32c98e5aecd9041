//! The GPU path: the same step as [`crate::cpu`], as WGSL compute kernels driven through wgpu.

pub mod context;
pub mod executor;
pub mod kernels;

pub use context::{GpuContext, adapters, describe, pick_adapter, pick_adapter_named};
pub use executor::{GpuBuffers, GpuExecutor};
