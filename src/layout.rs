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

/// Sizes, settings and buffer offsets shared by every kernel and every step (a uniform).
///
/// The GPU packs its arrays into eight storage buffers so that the engine fits a device
/// created with wgpu's default limits (an application's own device, typically):
/// `graph` holds the index arrays, `aux` the replica parameters, speeds, messages, state
/// powers and trace rows, `stream` the inputs, targets and masks of the block. The `_off`
/// fields are the element offsets of each array inside its buffer; the CPU keeps the arrays
/// apart and ignores them.
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
    /// `graph`: CSR row pointers by target (`n + 1`).
    pub row_ptr_off: u32,
    /// `graph`: source of each edge (`E`).
    pub edge_src_off: u32,
    /// `graph`: target of each edge (`E`).
    pub edge_dst_off: u32,
    /// `graph`: pointers into `out_edge` by source (`n + 1`).
    pub out_ptr_off: u32,
    /// `graph`: edge indices grouped by source (`E`).
    pub out_edge_off: u32,
    /// `graph`: output neurons (`n_out`).
    pub outputs_off: u32,
    /// `graph`: output slot of each neuron (`n`).
    pub out_slot_off: u32,
    /// `aux`: speeds `[replica][neuron]` (the replica parameters sit at 0, 4 floats each).
    pub c_off: u32,
    /// `aux`: messages `e_hat`, `[replica][neuron]`.
    pub e_hat_off: u32,
    /// `aux`: state powers `h`, `[replica][neuron]`.
    pub h_off: u32,
    /// `aux`: trace rows, `[record_row][replica][trace_width]`.
    pub trace_off: u32,
    /// `stream`: targets `[row][replica][n_out]` (inputs `[row][replica][d]` sit at 0).
    pub targets_off: u32,
    /// `stream`: masks `[row][replica][n_out]`.
    pub masks_off: u32,
    /// Euler step `tau`.
    pub tau: f32,
    /// Explicit padding to a multiple of 16 bytes.
    pub _pad: [u32; 3],
}
const _: () = assert!(size_of::<KernelParams>() == 96);

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
