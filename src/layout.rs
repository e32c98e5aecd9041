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

/// What the neuron pass finds non-finite, in the order it looks: the state `x`, the costate
/// `p`, the pre-activation `a = sum_j w_ij x_j` (non-finite when a weight is).
pub const NONFINITE_QUANTITIES: [&str; 3] = ["x", "p", "a"];

/// The most steps in a block: a step's [`nonfinite_code`] must be exact in an f32.
pub const MAX_BLOCK_STEPS: usize = 1 << 21;

/// The code the neuron pass keeps per replica and block for the first non-finite value it
/// meets (`nonfinite_code` in `common.wgsl`): 0 when `x`, `p` and `a` of a neuron are all
/// finite, else `row * 8 + quantity * 2 + nan + 1`, with the quantity's index in
/// [`NONFINITE_QUANTITIES`] and `nan` 1 for a NaN, 0 for an infinity. A replica keeps the
/// first non-zero code of the block: the steps run in order, so it names the first step at
/// which one of its neurons' `x`, `p` or `a` was not finite. A weight shows in `a` at its
/// step, a weight costate `pw` one step later (through `w`); this check costs three
/// comparisons per neuron and step.
#[inline(always)]
pub fn nonfinite_code(row: u32, x: f32, p: f32, a: f32) -> u32 {
    let code = |q: u32, v: f32| row * 8 + q * 2 + u32::from(v.is_nan()) + 1;
    if !x.is_finite() {
        code(0, x)
    } else if !p.is_finite() {
        code(1, p)
    } else if !a.is_finite() {
        code(2, a)
    } else {
        0
    }
}

/// The `(row, quantity, value)` of a non-zero [`nonfinite_code`]: the value is NaN or
/// (whatever its sign was) infinity.
pub fn decode_nonfinite(code: u32) -> Option<(u32, &'static str, f32)> {
    let c = code.checked_sub(1)?;
    let value = if c % 2 == 1 { f32::NAN } else { f32::INFINITY };
    Some((c / 8, NONFINITE_QUANTITIES[((c % 8) / 2).min(2) as usize], value))
}

/// Leading columns of a trace row: loss, scaled Lagrangian, scaled Hamiltonian, and the sign
/// `s_n` the replica's state equations took at that step (the step's own, or under `hsf-ball`
/// the replica's); the outputs follow.
pub const TRACE_FIXED: usize = 4;

/// Values of one array that `state_norm` sums as one chunk (in `WG` lanes and a tree) before
/// adding the chunks' sums in order; injected into the WGSL as `const NORM_CHUNK`. The CPU
/// sums the chunks of a large state over threads, so its norm is the same for any thread
/// count.
pub const NORM_CHUNK: u32 = 1 << 14;

/// Rows of a dense block that one work item (a workgroup on the GPU, a task on the CPU)
/// updates; injected into the WGSL as `const CHUNK_ROWS`. Each chunk writes its own partial
/// column sums, which `dense_reduce` adds in chunk order, so the children's messages are
/// summed in the same order whatever the thread count.
pub const CHUNK_ROWS: u32 = 16;

/// Rows of the sparse block that one work item updates on the CPU; each chunk's children's
/// messages are summed into its own partial column sums, added in chunk order by
/// `dense_reduce`. Injected into the WGSL as `const SPARSE_CHUNK_ROWS` (the GPU's
/// `sparse_back` folds its sums at the same boundaries).
pub const SPARSE_CHUNK_ROWS: u32 = 16384;

/// Fan-in from which a row of the sparse block is wide: the GPU updates it with a workgroup
/// (`sparse_wide_step`; lane `l` takes the row's edges `l, l + WG, ...` in order, then a tree
/// over the `WG` lanes), and every path sums its pre-activation in those lanes; narrower
/// rows are one invocation each, summed in edge order. Injected into the WGSL as
/// `const WIDE_FAN_IN`.
pub const WIDE_FAN_IN: u32 = 2 * WORKGROUP_SIZE;

/// Columns of a dense block that one work item updates at most (a multiple of `WG`). A
/// block of `rows x cols` runs as `ceil(rows / CHUNK_ROWS) x ceil(cols / TILE_COLS)` tiles,
/// each thread of a tile's workgroup taking every `WG`-th column (up to eight). Each tile
/// writes its rows' partial sums, which `dense_reduce` adds in tile order, as it adds the
/// column partials in chunk order.
pub const TILE_COLS: u32 = 8 * WORKGROUP_SIZE;

/// Sizes, settings and buffer offsets shared by every kernel and every step (a uniform).
///
/// The GPU packs its arrays into eight storage buffers so that the engine fits a device
/// created with wgpu's default limits (an application's own device, typically):
/// `graph` holds the sparse block's index arrays and the outputs, `aux` the replica
/// parameters, speeds, messages, pre-activations, state powers, partial sums and trace rows,
/// `stream` the inputs, targets and masks of the block. The `_off` fields are the element
/// offsets of each array inside its buffer; the CPU keeps the arrays apart and ignores them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
pub struct KernelParams {
    /// Neurons per replica, inputs included.
    pub n: u32,
    /// Input neurons per replica (external inputs + bias): neurons `0..d`.
    pub d: u32,
    /// Synapses per replica (the weight vector's length).
    pub n_edges: u32,
    /// Number of replicas `R`.
    pub replicas: u32,
    /// Output neurons per replica.
    pub n_out: u32,
    /// Activation code (`0` tanh, `1` logistic, `2` identity).
    pub activation: u32,
    /// Floats per trace row: `TRACE_FIXED + n_out`.
    pub trace_width: u32,
    /// Whether the weights learn (`1`) or are held (`0`).
    pub learning: u32,
    /// `graph`: the sparse block's row pointers by target (`n + 1`).
    pub row_ptr_off: u32,
    /// `graph`: the sparse block's source of each edge.
    pub edge_src_off: u32,
    /// `graph`: the sparse block's target of each edge.
    pub edge_dst_off: u32,
    /// `graph`: pointers into `out_edge` by source (`n + 1`).
    pub out_ptr_off: u32,
    /// `graph`: the sparse block's edge indices grouped by source.
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
    /// `aux`: pre-activations `a` of the next step, `[replica][neuron]`, summed by the
    /// synapse pass and consumed (zeroed) by `neuron_step`.
    pub a_off: u32,
    /// `aux`: children's messages `b_j = sum_i w_ij e_hat_i`, `[replica][neuron]`, summed by
    /// the synapse pass and consumed (zeroed) by `costate_step`.
    pub b_off: u32,
    /// `aux`: trace rows, `[record_row][replica][trace_width]`.
    pub trace_off: u32,
    /// `stream`: targets `[row][replica][n_out]` (inputs `[row][replica][d]` sit at 0, one
    /// row more than the block's steps: the synapse pass reads the next step's inputs).
    pub targets_off: u32,
    /// `stream`: masks `[row][replica][n_out]`.
    pub masks_off: u32,
    /// Euler step `tau`.
    pub tau: f32,
    /// `stream`: the block's step table for the `population` kernel: a header `(steps,
    /// gather, 0, 0)`, then each step's [`StepUniform`], as 4 words.
    pub steps_off: u32,
    /// `graph`: the sparse block's wide rows ([`WIDE_FAN_IN`]), ascending.
    pub wide_off: u32,
    /// Wide rows of the sparse block.
    pub n_wide: u32,
    /// `graph`: the dense blocks' [`BlockUniform`]s, their first ten words each at a stride
    /// of [`BLOCK_WORDS`] (for `small_net`, which runs every block in one dispatch).
    pub blocks_off: u32,
    /// Dense blocks.
    pub n_blocks: u32,
    /// `aux`: the neuron pass's [`nonfinite_code`] of the block, one per replica (0 when
    /// nothing was non-finite), stored as f32 (exact below 2^24), just before the trace rows.
    pub flags_off: u32,
    /// `aux`: under `hsf-ball`, each replica's sign `s_n` of the current step, written by
    /// `state_norm` and read by the step's other kernels (one per replica).
    pub sign_off: u32,
    /// Whether each replica's signs come from its state (`1`, `hsf-ball`: `state_norm` runs
    /// first in every step) or every replica takes the step's [`StepUniform`] signs (`0`).
    pub ball: u32,
    /// `hsf-ball`'s `R^2` in f32: a replica's sign is `+1` while the squared norm of its state
    /// is at most this, else `-1`.
    pub radius2: f32,
    /// Padding to 16 bytes.
    pub _pad1: u32,
    /// Padding to 16 bytes.
    pub _pad2: u32,
    /// Padding to 16 bytes.
    pub _pad3: u32,
}
const _: () = assert!(size_of::<KernelParams>() == 144);

/// Words per entry of the block table in `graph` ([`KernelParams::blocks_off`]).
pub const BLOCK_WORDS: u32 = 12;

/// One block of synapses as its kernels read it (a uniform bound at a dynamic offset, one
/// entry per block; see [`crate::network::DenseBlock`] and [`crate::network::SparseBlock`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockUniform {
    /// First target neuron.
    pub row0: u32,
    /// Target neurons (rows).
    pub rows: u32,
    /// First source neuron (dense blocks).
    pub col0: u32,
    /// Source neurons (columns; dense blocks).
    pub cols: u32,
    /// Position of the block's first synapse in a replica's weight vector.
    pub w_off: u32,
    /// `aux`: the block's partial column sums, `[replica][chunk][cols]`.
    pub part_off: u32,
    /// Row chunks: `ceil(rows / CHUNK_ROWS)` for dense blocks, `ceil(rows / SPARSE_CHUNK_ROWS)`
    /// for the sparse block (whose `cols` are all `n` neurons, from `col0 = 0`).
    pub chunks: u32,
    /// Column tiles of a dense block: `ceil(cols / TILE_COLS)` (0 for the sparse block).
    pub tiles: u32,
    /// Columns of every tile but the last: `min(cols, TILE_COLS)`, a multiple of `WG` when
    /// there are several tiles (so lane `l` takes the columns `= l mod WG`, as the CPU's
    /// vector lanes do). A row's sum over a tile runs in [`lanes`]`(tile width)` lanes (lane
    /// `l` takes the tile's columns `l, l + WG, ...` in order), then a tree halves the lanes;
    /// the tiles' sums are added in tile order.
    pub tile_cols: u32,
    /// `aux`: the block's per-tile row sums, `[replica][tile][rows]` (dense blocks).
    pub row_part_off: u32,
    /// Padding to 16 bytes.
    pub _pad0: u32,
    /// Padding to 16 bytes.
    pub _pad1: u32,
}
const _: () = assert!(size_of::<BlockUniform>() == 48);

/// Lanes of a row sum over `cols` columns: the smallest power of two `>= min(cols, WG)`.
pub const fn lanes(cols: u32) -> u32 {
    let c = if cols < 1 {
        1
    } else if cols > WORKGROUP_SIZE {
        WORKGROUP_SIZE
    } else {
        cols
    };
    c.next_power_of_two()
}

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
    /// Sign `s` multiplying the `x` and `w` equations (under `hsf-ball`, `+1`: each replica
    /// takes its own from [`KernelParams::sign_off`]).
    pub sign_state: f32,
    /// Sign multiplying the `p` and `pw` equations (likewise).
    pub sign_costate: f32,
}
const _: () = assert!(size_of::<StepUniform>() == 16);
