//! The GPU path: the same step as [`crate::cpu`], as WGSL compute kernels driven through wgpu.

pub mod kernels;
