//! The structs the kernels read, laid out identically for Rust and WGSL.
//!
//! Each is `#[repr(C)]` and `Pod` so the GPU host uploads it byte for byte; the CPU kernels
//! read the very same values. `tests/shaders.rs` checks every size and member offset against
//! the WGSL declarations in `shaders/common.wgsl` with naga.

use bytemuck::{Pod, Zeroable};

/// Invocations per workgroup for every kernel; injected into the WGSL as `const WG`.
pub const WORKGROUP_SIZE: u32 = 64;

/// Stored state values smaller than this in magnitude are flushed to zero, on both paths.
///
/// GPUs may flush subnormal floats (WGSL allows it) while x86 CPUs compute them about 100x
/// slower; a state that decays under `theta > 0` would otherwise crawl on the CPU and could
/// differ between the paths. `1e-30` keeps every product of a stored value with a parameter
/// out of the subnormal range, and is 30 orders of magnitude below any state that matters.
pub const FLUSH_BELOW: f32 = 1e-30;

/// Marks a step whose energies are not recorded ([`StepUniform::record_row`]).
pub const NO_RECORD: u32 = u32::MAX;

/// Leading columns of a trace row: loss, scaled Lagrangian, scaled Hamiltonian; the outputs follow.
pub const TRACE_FIXED: usize = 3;

/// Sizes and settings shared by every kernel and every step (a uniform buffer).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct KernelParams {
    /// Neurons per replica, inputs included.
    pub n: u32,
    /// Input neurons per replica (external inputs + bias): neurons `0..d`.
    pub d: u32,
    /// Edges per replica.
    pub n_edges: u32,
    /// Number of replicas `R`.
    pub replicas: u32,
    /// Output neurons per replica.
    pub n_out: u32,
    /// Activation code (`0` tanh, `1` logistic, `2` identity).
    pub activation: u32,
    /// Floats per trace row: `TRACE_FIXED + n_out`.
    pub trace_width: u32,
    /// Explicit padding.
    pub _pad0: u32,
    /// Euler step `tau`.
    pub tau: f32,
    /// Explicit padding to 16 bytes.
    pub _pad1: [f32; 3],
}
const _: () = assert!(size_of::<KernelParams>() == 48);

/// Per-replica parameters (a storage array indexed by replica).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct ReplicaParams {
    /// Accuracy weight `q`.
    pub q: f32,
    /// Kinetic weight `r`.
    pub r: f32,
    /// Weight regulariser `r_w`.
    pub r_w: f32,
    /// Dissipation `theta`.
    pub theta: f32,
}
const _: () = assert!(size_of::<ReplicaParams>() == 16);

/// What changes from one step to the next (a uniform read at a dynamic offset, one per step).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct StepUniform {
    /// Row of this step in the input, target and mask blocks.
    pub row: u32,
    /// Row of this step in the trace block, or [`NO_RECORD`].
    pub record_row: u32,
    /// Sign `s` multiplying the `x` and `w` equations.
    pub sign_state: f32,
    /// Sign multiplying the `p` and `pw` equations.
    pub sign_costate: f32,
}
const _: () = assert!(size_of::<StepUniform>() == 16);
