//! The CPU path: one function per kernel, each a loop over the invocations of its WGSL twin
//! in `shaders/`, and the executor that runs the step's dispatch list ([`crate::plan`]).
//!
//! The buffers below carry the names of the WGSL bindings. Every kernel is written so it can
//! be read side by side with its shader: same loop body, same operation order, the same
//! closed-form activation ([`crate::activation`]), f32 throughout.

mod costate_step;
mod record_step;
mod state_step;
mod weight_step;

pub use costate_step::costate_step;
pub use record_step::record_step;
pub use state_step::state_step;
pub use weight_step::weight_step;

use crate::block::Block;
use crate::layout::{FLUSH_BELOW, KernelParams, NO_RECORD, ReplicaParams, StepUniform};
use crate::plan::{Kernel, step_dispatches};

/// The buffers of one engine, named as the WGSL bindings; laid out `[replica][neuron]` and
/// `[replica][edge]` (edges in CSR order), blocks as `[row][replica][channel]`.
#[derive(Clone, Debug, Default)]
pub struct Buffers {
    /// Sizes and settings.
    pub params: KernelParams,
    /// `q, r, r_w, theta` per replica.
    pub replica: Vec<ReplicaParams>,
    /// Speed per neuron per replica (0 for input neurons).
    pub c: Vec<f32>,
    /// CSR row pointers by target.
    pub row_ptr: Vec<u32>,
    /// Source of each edge.
    pub edge_src: Vec<u32>,
    /// Target of each edge.
    pub edge_dst: Vec<u32>,
    /// Pointers into `out_edge` by source.
    pub out_ptr: Vec<u32>,
    /// Edge indices grouped by source.
    pub out_edge: Vec<u32>,
    /// Output neurons.
    pub outputs: Vec<u32>,
    /// Output slot of each neuron or `NOT_OUTPUT`.
    pub out_slot: Vec<u32>,
    /// States, ping-ponged: step `n` reads `x[n % 2]` and writes `x[(n + 1) % 2]`.
    pub x: [Vec<f32>; 2],
    /// Scaled neuron costates `p / phi`.
    pub p: Vec<f32>,
    /// Weights.
    pub w: Vec<f32>,
    /// Scaled weight costates `pw / phi`.
    pub pw: Vec<f32>,
    /// Messages `e_hat_i = c_i sigma'(a_i) p_i` of the current step.
    pub e_hat: Vec<f32>,
    /// State power `p_i c_i (sigma(a_i) - x_i)` of the current step (for the Hamiltonian).
    pub h: Vec<f32>,
    /// Inputs of the current block, `[row][replica][d]` (the bias column holds 1).
    pub inputs: Vec<f32>,
    /// Targets of the current block, `[row][replica][n_out]`.
    pub targets: Vec<f32>,
    /// Target masks of the current block, `[row][replica][n_out]`.
    pub masks: Vec<f32>,
    /// Trace rows of the current block, `[record_row][replica][trace_width]`.
    pub trace: Vec<f32>,
}

/// The value of neuron `j` of replica `r` at this step: the block's input for input
/// neurons, else the current state (`x_value` in `common.wgsl`).
#[inline]
pub(crate) fn x_value(k: &KernelParams, s: &StepUniform, inputs: &[f32], x_in: &[f32], r: usize, j: usize) -> f32 {
    if j < k.d as usize {
        inputs[(s.row as usize * k.replicas as usize + r) * k.d as usize + j]
    } else {
        x_in[r * k.n as usize + j]
    }
}

/// `v`, or 0 when `|v| <` [`FLUSH_BELOW`] (`flush` in `common.wgsl`); applied to every stored
/// state value.
#[inline]
pub(crate) fn flush(v: f32) -> f32 {
    if v.abs() < FLUSH_BELOW { 0.0 } else { v }
}

/// Work (invocations plus the terms they gather) from which a kernel splits its loop over
/// threads (rayon). Each invocation reads the step-`n` buffers and writes only its own
/// outputs, so the split changes no value: results are bit-identical for any thread count.
/// Below this the loop stays serial, where waking threads would cost more than the work.
pub const PARALLEL_FROM: usize = 1 << 14;

/// The smallest chunk of invocations worth a thread: about 1024 units of work each.
fn min_chunk(len: usize, work: usize) -> usize {
    (1024 * len / work.max(1)).max(1)
}

/// Runs `f(gid, old) -> new` for every element of `out`, in place (`costate_step`); `work`
/// counts the invocations and the terms they gather.
pub(crate) fn each_in_place(out: &mut [f32], work: usize, f: impl Fn(usize, f32) -> f32 + Sync) {
    use rayon::prelude::*;
    if work < PARALLEL_FROM {
        out.iter_mut().enumerate().for_each(|(gid, v)| *v = f(gid, *v));
    } else {
        let chunk = min_chunk(out.len(), work);
        out.par_iter_mut().with_min_len(chunk).enumerate().for_each(|(gid, v)| *v = f(gid, *v));
    }
}

/// Runs `f(gid, a, b) -> (a', b')` for every pair of elements, in place (`weight_step`).
pub(crate) fn each_pair_in_place(a: &mut [f32], b: &mut [f32], f: impl Fn(usize, f32, f32) -> (f32, f32) + Sync) {
    use rayon::prelude::*;
    let body = |(gid, (x, y)): (usize, (&mut f32, &mut f32))| (*x, *y) = f(gid, *x, *y);
    if a.len() < PARALLEL_FROM {
        a.iter_mut().zip(b.iter_mut()).enumerate().for_each(body);
    } else {
        a.par_iter_mut().zip(b.par_iter_mut()).with_min_len(1024).enumerate().for_each(body);
    }
}

/// Runs `f(gid) -> [a, b, c]` for every invocation and stores the three outputs
/// (`state_step`); `work` counts the invocations and the terms they gather.
pub(crate) fn each_into3(
    a: &mut [f32],
    b: &mut [f32],
    c: &mut [f32],
    work: usize,
    f: impl Fn(usize) -> [f32; 3] + Sync,
) {
    use rayon::prelude::*;
    let body = |(gid, ((x, y), z)): (usize, ((&mut f32, &mut f32), &mut f32))| [*x, *y, *z] = f(gid);
    if work < PARALLEL_FROM {
        a.iter_mut().zip(b.iter_mut()).zip(c.iter_mut()).enumerate().for_each(body);
    } else {
        let chunk = min_chunk(a.len(), work);
        a.par_iter_mut().zip(b.par_iter_mut()).zip(c.par_iter_mut()).with_min_len(chunk).enumerate().for_each(body);
    }
}

/// Runs blocks of steps on the CPU.
#[derive(Clone, Debug)]
pub struct CpuExecutor {
    /// The buffers.
    pub buffers: Buffers,
    /// Steps taken so far (selects the ping-pong buffer).
    pub step: u64,
    learning: bool,
}

impl CpuExecutor {
    /// An executor over the given buffers, at step `step`.
    pub fn new(buffers: Buffers, step: u64, learning: bool) -> Self {
        CpuExecutor { buffers, step, learning }
    }

    /// Runs every step of `block` and returns its trace rows.
    pub fn run_block(&mut self, block: &Block) -> Vec<f32> {
        let b = &mut self.buffers;
        let k = b.params;
        b.inputs.clone_from(&block.inputs);
        b.targets.clone_from(&block.targets);
        b.masks.clone_from(&block.masks);
        b.trace.clear();
        b.trace.resize(block.records * (k.replicas * k.trace_width) as usize, 0.0);
        for s in &block.steps {
            let src = (self.step % 2) as usize;
            for d in step_dispatches(&k, s.record_row != NO_RECORD, self.learning) {
                match d.kernel {
                    Kernel::StateStep => state_step(b, s, src),
                    Kernel::CostateStep => costate_step(b, s, src),
                    Kernel::RecordStep => record_step(b, s, src),
                    Kernel::WeightStep => weight_step(b, s, src),
                }
            }
            self.step += 1;
        }
        std::mem::take(&mut b.trace)
    }
}
