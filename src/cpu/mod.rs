//! The CPU path: one function per kernel, each a loop over the invocations of its WGSL twin
//! in `shaders/`, and the executor that runs the step's dispatch list ([`crate::plan`]).
//!
//! The buffers below carry the names of the WGSL bindings. Every kernel is written so it can
//! be read side by side with its shader: same loop body, same operation order, the same
//! closed-form activation ([`crate::activation`]), f32 throughout. One kernel has no CPU
//! twin of its own: `sparse_back`, whose partial sums the CPU's `sparse_step` computes in its
//! own pass, in the same order.

mod costate_step;
mod dense_gather;
mod dense_reduce;
mod dense_step;
mod neuron_step;
pub mod population;
mod record_step;
mod runner;
mod sparse_gather;
mod sparse_step;
mod state_norm;

pub use costate_step::costate_step;
pub use dense_gather::dense_gather;
pub use dense_reduce::dense_reduce;
pub use dense_step::dense_step;
pub use neuron_step::neuron_step;
pub(crate) use neuron_step::probe_sum;
pub use population::population;
pub use record_step::record_step;
pub use runner::{CpuRunner, OVERLAP_FROM};
pub use sparse_gather::sparse_gather;
pub use sparse_step::sparse_step;
pub use state_norm::state_norm;

use rayon::prelude::*;

use crate::block::{Block, BlockResult};
use crate::layout::{
    BlockUniform, CHUNK_ROWS, FLUSH_BELOW, KernelParams, NO_RECORD, ReplicaParams, SPARSE_CHUNK_ROWS, StepUniform,
    WIDE_FAN_IN, WORKGROUP_SIZE,
};
use crate::plan::{Kernel, Plan};

/// The buffers of one engine, named as the WGSL bindings; laid out `[replica][neuron]` and
/// `[replica][synapse]` (the network's weight-vector order), blocks as `[row][replica][channel]`.
#[derive(Clone, Debug, Default)]
pub struct Buffers {
    /// Sizes and settings.
    pub params: KernelParams,
    /// The blocks of synapses (partial sums laid out from 0 in `part`).
    pub plan: Plan,
    /// `q, r, r_w, theta` per replica.
    pub replica: Vec<ReplicaParams>,
    /// Speed per neuron per replica (0 for input neurons).
    pub c: Vec<f32>,
    /// The sparse block's row pointers by target (empty without a sparse block).
    pub row_ptr: Vec<u32>,
    /// The sparse block's source of each edge.
    pub edge_src: Vec<u32>,
    /// The sparse block's target of each edge.
    pub edge_dst: Vec<u32>,
    /// The sparse block's wide rows ([`crate::plan::wide_rows`]).
    pub wide_rows: Vec<u32>,
    /// Pointers into `out_edge` by source.
    pub out_ptr: Vec<u32>,
    /// The sparse block's edge indices grouped by source.
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
    /// Pre-activations of the next step, summed by the synapse pass.
    pub a: Vec<f32>,
    /// Children's messages `sum_i w_ij e_hat_i`, summed by the synapse pass.
    pub b: Vec<f32>,
    /// The dense blocks' partial column sums ([`BlockUniform::part_off`]).
    pub part: Vec<f32>,
    /// Inputs of the current block, `[row][replica][d]` (the bias column holds 1), one row
    /// more than the block's steps.
    pub inputs: Vec<f32>,
    /// Targets of the current block, `[row][replica][n_out]`.
    pub targets: Vec<f32>,
    /// Target masks of the current block, `[row][replica][n_out]`.
    pub masks: Vec<f32>,
    /// Trace rows of the current block, `[record_row][replica][trace_width]`.
    pub trace: Vec<f32>,
    /// The population path's trace rows, `[group][record_row][replica of the group]
    /// [trace_width]`, each group's rows together; kept from block to block.
    pub group_trace: Vec<f32>,
    /// Per replica, the first [`crate::layout::nonfinite_code`] of the current block.
    pub nonfinite: Vec<u32>,
    /// Per replica, under `hsf-ball`, the sign of the current step (`state_norm` writes it).
    pub sign: Vec<f32>,
}

impl Buffers {
    /// The values of a block's columns (the sparse block: every neuron) for every replica,
    /// `[replica][col]`, at stream row `row` from `x[src]`, and (when `next` is given) at row
    /// `next` from `x[1 - src]`.
    fn columns(&self, blk: &BlockUniform, src: usize, row: u32, next: Option<u32>) -> (Vec<f32>, Option<Vec<f32>>) {
        let k = &self.params;
        let cols = blk.col0 as usize..(blk.col0 + blk.cols) as usize;
        let at = |row: u32, x: &[f32]| -> Vec<f32> {
            (0..k.replicas as usize)
                .flat_map(|r| cols.clone().map(move |j| x_value(k, row, &self.inputs, x, r, j)))
                .collect()
        };
        (at(row, &self.x[src]), next.map(|row| at(row, &self.x[1 - src])))
    }
}

/// The value of neuron `j` of replica `r` at stream row `row`: the block's input for input
/// neurons, else the state in `x` (`x_value` and `x_next` in `common.wgsl`).
#[inline]
pub(crate) fn x_value(k: &KernelParams, row: u32, inputs: &[f32], x: &[f32], r: usize, j: usize) -> f32 {
    if j < k.d as usize {
        inputs[(row as usize * k.replicas as usize + r) * k.d as usize + j]
    } else {
        x[r * k.n as usize + j]
    }
}

/// Keeps `code` as replica `r`'s non-finite code unless it has one (`flag_nonfinite` in
/// `common.wgsl`).
#[inline(always)]
pub(crate) fn flag_nonfinite(nonfinite: &mut [u32], r: usize, code: u32) {
    if code != 0 && nonfinite[r] == 0 {
        nonfinite[r] = code;
    }
}

/// The step `s` as replica `r` runs it (`replica_step` in `common.wgsl`): under `hsf-ball`
/// ([`KernelParams::ball`]) both signs are `sign`, the replica's own from `state_norm`
/// ([`Buffers::sign`]); else the step's.
#[inline(always)]
pub(crate) fn replica_step(k: &KernelParams, s: &StepUniform, sign: f32) -> StepUniform {
    if k.ball != 0 { StepUniform { sign_state: sign, sign_costate: sign, ..*s } } else { *s }
}

/// `v`, or 0 when `|v| <` [`FLUSH_BELOW`] (`flush` in `common.wgsl`); applied to every stored
/// state value.
#[inline(always)]
pub(crate) fn flush(v: f32) -> f32 {
    if v.abs() < FLUSH_BELOW { 0.0 } else { v }
}

/// One synapse's `(w, pw)` at step `n + 1` from its step-`n` values, its target's message
/// and its source's state (`synapse_update` in `common.wgsl`): the one update of
/// `dense_step`, `sparse_step` and the population path.
#[inline(always)]
pub(crate) fn synapse_update(
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
    w0: f32,
    pw0: f32,
    ei: f32,
    xj: f32,
) -> (f32, f32) {
    let dpw = -ei * xj - rp.r_w * w0;
    let dw = -pw0 / rp.r;
    (flush(w0 + tau * (s.sign_state * dw)), flush(pw0 + tau * (s.sign_costate * dpw - rp.theta * pw0)))
}

/// A sparse row's sum of `len` terms (`term(m)` for its `m`-th edge, called once each, in
/// edge order): in edge order, or, for a row of at least `WIDE_FAN_IN` edges, in the lanes
/// and tree of the GPU's `sparse_wide_step` (edge `m` into lane `m % WG`). The order of
/// `sparse_step`'s and the gathers' sums.
#[inline(always)]
pub(crate) fn sparse_row_sum(len: usize, mut term: impl FnMut(usize) -> f32) -> f32 {
    const WG: usize = WORKGROUP_SIZE as usize;
    if len >= WIDE_FAN_IN as usize {
        let mut acc = [0.0f32; WG];
        for m in 0..len {
            acc[m % WG] += term(m);
        }
        lane_sum(acc, WG)
    } else {
        let mut acc = 0.0f32;
        for m in 0..len {
            acc += term(m);
        }
        acc
    }
}

/// Work (invocations plus the terms they gather) from which a kernel splits its loop over
/// threads (rayon). Each work item reads the step-`n` buffers and writes only its own
/// outputs, and every sum has a fixed order, so the split changes no value: results are
/// bit-identical for any thread count. Below this the loop stays serial, where waking
/// threads would cost more than the work.
pub const PARALLEL_FROM: usize = 1 << 14;

/// The tree over the first `lanes` lanes (`lanes` a power of two): lane `l` adds lane
/// `l + stride` for `stride = lanes / 2, ..., 1`, as the GPU's workgroup reduction does.
/// When all `L` lanes are used (every full tile of a dense row), each level's bounds are
/// constants, so the levels vectorise; the additions are the same.
#[inline]
pub(crate) fn lane_sum<const L: usize>(mut acc: [f32; L], lanes: usize) -> f32 {
    if lanes == L {
        full_tree(&mut acc);
        return acc[0];
    }
    let mut stride = lanes / 2;
    while stride > 0 {
        for l in 0..stride {
            acc[l] += acc[l + stride];
        }
        stride /= 2;
    }
    acc[0]
}

/// The tree over all `L <= WG` lanes, level by level with constant bounds.
#[inline(always)]
pub(crate) fn full_tree<const L: usize>(acc: &mut [f32; L]) {
    const { assert!(L.is_power_of_two() && L <= 64) };
    macro_rules! level {
        ($($stride:literal)*) => {$(
            if L > $stride {
                for l in 0..$stride {
                    acc[l] += acc[l + $stride];
                }
            }
        )*};
    }
    level!(32 16 8 4 2 1);
}

/// Runs `f(gid, old) -> new` over every index of `N` equally long per-neuron arrays, in
/// place, splitting the loop over threads for large arrays.
pub(crate) fn each_neuron<const N: usize>(out: [&mut [f32]; N], f: impl Fn(usize, [f32; N]) -> [f32; N] + Sync) {
    const CHUNK: usize = 4096;
    let run = |start: usize, parts: [&mut [f32]; N]| {
        for k in 0..parts[0].len() {
            let new = f(start + k, std::array::from_fn(|m| parts[m][k]));
            for m in 0..N {
                parts[m][k] = new[m];
            }
        }
    };
    if out[0].len() < PARALLEL_FROM {
        run(0, out);
        return;
    }
    let mut iters = out.map(|s| s.chunks_mut(CHUNK));
    let mut chunks: Vec<[&mut [f32]; N]> = Vec::new();
    loop {
        let next: [Option<&mut [f32]>; N] = std::array::from_fn(|m| iters[m].next());
        if next.iter().any(Option::is_none) {
            break;
        }
        chunks.push(next.map(|c| c.expect("equally long arrays")));
    }
    chunks.into_par_iter().enumerate().for_each(|(c, parts)| run(c * CHUNK, parts));
}

/// The work of one replica's chunk of `CHUNK_ROWS` rows of a dense block.
pub(crate) struct DenseItem<'a> {
    /// The replica.
    pub r: usize,
    /// Rows in this chunk.
    pub rows: usize,
    /// The chunk's weights, `rows x cols`.
    pub w: &'a mut [f32],
    /// The chunk's weight costates.
    pub pw: &'a mut [f32],
    /// The chunk's partial column sums (`cols`), when asked for.
    pub part: Option<&'a mut [f32]>,
    /// The chunk's pre-activations (`rows`).
    pub a: &'a mut [f32],
    /// The chunk's messages (`rows`).
    pub e_hat: &'a [f32],
    /// The replica's parameters.
    pub rp: ReplicaParams,
    /// The replica's sign of the step under `hsf-ball` ([`Buffers::sign`]; see [`replica_step`]).
    pub sign: f32,
}

/// Splits a dense block's buffers into one [`DenseItem`] per replica and chunk of rows.
pub(crate) fn dense_items<'a>(b: &'a mut Buffers, blk: &BlockUniform, with_part: bool) -> Vec<DenseItem<'a>> {
    let (n, ne) = (b.params.n as usize, b.params.n_edges as usize);
    let (rows, cols, chunks) = (blk.rows as usize, blk.cols as usize, blk.chunks as usize);
    let (row0, w_off) = (blk.row0 as usize, blk.w_off as usize);
    let chunk_len = CHUNK_ROWS as usize * cols;
    let mut part = if with_part {
        let region = &mut b.part[blk.part_off as usize..][..b.params.replicas as usize * chunks * cols];
        Some(region.chunks_mut(cols.max(1)))
    } else {
        None
    };
    let mut items = Vec::with_capacity(b.params.replicas as usize * chunks);
    let per_replica =
        b.w.chunks_mut(ne.max(1)).zip(b.pw.chunks_mut(ne.max(1))).zip(b.a.chunks_mut(n)).zip(b.e_hat.chunks(n));
    for (r, (((w, pw), a), e_hat)) in per_replica.enumerate() {
        let w = w[w_off..w_off + rows * cols].chunks_mut(chunk_len.max(1));
        let pw = pw[w_off..w_off + rows * cols].chunks_mut(chunk_len.max(1));
        let a = a[row0..row0 + rows].chunks_mut(CHUNK_ROWS as usize);
        let e_hat = e_hat[row0..row0 + rows].chunks(CHUNK_ROWS as usize);
        for (((w, pw), a), e_hat) in w.zip(pw).zip(a).zip(e_hat) {
            let part = part.as_mut().map(|p| p.next().expect("a partial row per chunk"));
            items.push(DenseItem { r, rows: a.len(), w, pw, part, a, e_hat, rp: b.replica[r], sign: b.sign[r] });
        }
    }
    items
}

/// Runs `f` on every item, over threads when the block is large.
pub(crate) fn for_items<'a>(items: Vec<DenseItem<'a>>, blk: &BlockUniform, f: impl Fn(DenseItem<'a>) + Sync + Send) {
    let per_item = (blk.cols as usize + 1) * blk.rows.min(CHUNK_ROWS) as usize;
    if items.len() * per_item < PARALLEL_FROM {
        items.into_iter().for_each(f);
    } else {
        // Tasks of at least about PARALLEL_FROM / 4 terms: replicas of small nets go in groups.
        items.into_par_iter().with_min_len((PARALLEL_FROM / 4).div_ceil(per_item)).for_each(f);
    }
}

/// Runs `f(r, i, lo, w, pw, a_i, part)` for every replica `r` and target `i` of the sparse
/// block, with the row's weights (and costates) starting at edge `lo` of the block and, when
/// `part` is given (`[replica][chunk][n]`), the partial column sums of the row's chunk of
/// `SPARSE_CHUNK_ROWS` rows (zeroed before its first row). One work item per replica and
/// chunk, over threads when the block is large.
#[expect(clippy::too_many_arguments, reason = "the block's buffers, split per work item")]
pub(crate) fn sparse_rows(
    row_ptr: &[u32],
    blk: &BlockUniform,
    k: &KernelParams,
    w: &mut [f32],
    pw: Option<&mut [f32]>,
    a: &mut [f32],
    part: Option<&mut [f32]>,
    f: impl Fn(usize, usize, usize, &mut [f32], Option<&mut [f32]>, &mut f32, Option<&mut [f32]>) + Sync,
) {
    let rows_per_item = SPARSE_CHUNK_ROWS as usize;
    let (n, ne, off) = (k.n as usize, k.n_edges as usize, blk.w_off as usize);
    let (row0, row1) = (blk.row0 as usize, (blk.row0 + blk.rows) as usize);
    let e_len = row_ptr.get(row1).map_or(0, |&e| e as usize);
    // (replica, first row, weights, costates, pre-activations, partials) of each work item.
    type Item<'a> = (usize, usize, &'a mut [f32], Option<&'a mut [f32]>, &'a mut [f32], Option<&'a mut [f32]>);
    let mut items: Vec<Item<'_>> = Vec::new();
    let mut pw_rep: Vec<Option<&mut [f32]>> = match pw {
        Some(pw) => pw.chunks_mut(ne.max(1)).map(Some).collect(),
        None => (0..k.replicas).map(|_| None).collect(),
    };
    let mut parts = part.map(|p| p[blk.part_off as usize..].chunks_mut(n));
    for (r, (w, a)) in w.chunks_mut(ne.max(1)).zip(a.chunks_mut(n)).enumerate() {
        let mut w = &mut w[off..off + e_len];
        let mut pw = pw_rep[r].take().map(|p| &mut p[off..off + e_len]);
        let mut a = &mut a[row0..row1];
        let mut at = 0usize;
        let mut i = row0;
        while i < row1 {
            let end = (i + rows_per_item).min(row1);
            let len = row_ptr[end] as usize - at;
            let (wg, wr) = std::mem::take(&mut w).split_at_mut(len);
            let (pg, pr) = match pw.take() {
                Some(p) => {
                    let (g, r) = p.split_at_mut(len);
                    (Some(g), Some(r))
                }
                None => (None, None),
            };
            let (ag, ar) = std::mem::take(&mut a).split_at_mut(end - i);
            let part = parts.as_mut().map(|p| p.next().expect("a partial row per chunk"));
            items.push((r, i, wg, pg, ag, part));
            (w, pw, a, at, i) = (wr, pr, ar, at + len, end);
        }
    }
    let run = |(r, first, mut w, mut pw, a, mut part): Item<'_>| {
        if let Some(p) = part.as_deref_mut() {
            p.fill(0.0);
        }
        for (m, ai) in a.iter_mut().enumerate() {
            let i = first + m;
            let (lo, hi) = (row_ptr[i] as usize, row_ptr[i + 1] as usize);
            let (wr, rest) = std::mem::take(&mut w).split_at_mut(hi - lo);
            let (pr, prest) = match pw.take() {
                Some(p) => {
                    let (g, r) = p.split_at_mut(hi - lo);
                    (Some(g), Some(r))
                }
                None => (None, None),
            };
            f(r, i, lo, wr, pr, ai, part.as_deref_mut());
            (w, pw) = (rest, prest);
        }
    };
    if k.replicas as usize * e_len < PARALLEL_FROM {
        items.into_iter().for_each(run);
    } else {
        items.into_par_iter().with_max_len(1).for_each(run);
    }
}

/// Runs blocks of steps on the CPU.
#[derive(Clone, Debug)]
pub struct CpuExecutor {
    /// The buffers.
    pub buffers: Buffers,
    /// Steps taken so far (selects the ping-pong buffer).
    pub step: u64,
    /// Whether the next step must first gather the pre-activations (a new or replaced state).
    pub gather: bool,
    /// Whether small nets ([`Plan::population`]) take the fused `population` path (on by
    /// default; off runs them kernel by kernel, with the same results).
    pub population: bool,
    /// A collected block's trace buffer, filled again by the next block.
    pub spare_trace: Vec<f32>,
}

impl CpuExecutor {
    /// An executor over the given buffers, at step `step`.
    pub fn new(buffers: Buffers, step: u64) -> Self {
        CpuExecutor { buffers, step, gather: true, population: true, spare_trace: Vec::new() }
    }

    /// Runs every step of `block` and returns its trace rows and non-finite codes.
    pub fn run_block(&mut self, block: &Block) -> BlockResult {
        let b = &mut self.buffers;
        let k = b.params;
        b.nonfinite.clear();
        b.nonfinite.resize(k.replicas as usize, 0);
        // Every entry of the trace rows is written (record_step writes whole rows), so a
        // recycled buffer of the right length is not zeroed first.
        b.trace = std::mem::take(&mut self.spare_trace);
        let len = block.records * (k.replicas * k.trace_width) as usize;
        if b.trace.len() != len {
            b.trace.clear();
            b.trace.resize(len, 0.0);
        }
        if self.population && b.plan.population {
            population(b, block, self.step, self.gather);
            self.step += block.steps.len() as u64;
            self.gather &= block.steps.is_empty();
            return BlockResult { rows: std::mem::take(&mut b.trace), nonfinite: b.nonfinite.clone() };
        }
        b.inputs.clone_from(&block.inputs);
        b.targets.clone_from(&block.targets);
        b.masks.clone_from(&block.masks);
        let plan = std::mem::take(&mut b.plan);
        // The four dispatch lists (recorded or not, gathering or not), made once per block.
        let lists: [Vec<crate::plan::Dispatch>; 4] = std::array::from_fn(|v| plan.step(&k, v & 1 != 0, v & 2 != 0));
        for s in &block.steps {
            let src = (self.step % 2) as usize;
            if self.gather {
                b.a.fill(0.0);
            }
            let list = &lists[usize::from(s.record_row != NO_RECORD) | usize::from(self.gather) << 1];
            for &d in list {
                let blk = &plan.blocks[d.block];
                match d.kernel {
                    Kernel::DenseGather => dense_gather(b, s, src, blk),
                    Kernel::SparseGather => sparse_gather(b, s, src, blk),
                    Kernel::NeuronStep => neuron_step(b, s, src),
                    Kernel::RecordStep => record_step(b, s, src),
                    Kernel::DenseStep => dense_step(b, s, src, blk),
                    Kernel::DenseReduce => dense_reduce(b, blk),
                    // No CPU twin: `sparse_step` sums the same partials in the same order in its
                    // own pass over the edges (a scatter is cheap on one thread per chunk; the
                    // GPU gathers them by source instead).
                    Kernel::SparseBack => {}
                    Kernel::SparseStep => sparse_step(b, s, src, blk),
                    // No CPU twin: `sparse_step` sums the wide rows in the same lanes itself,
                    // so that the column partials keep their row order.
                    Kernel::SparseWideStep => {}
                    Kernel::CostateStep => costate_step(b, s, src),
                    Kernel::StateNorm => state_norm(b, src),
                    // Population runs per block, above; small_net is the GPU's fusion of this
                    // very list. Neither is in the list the CPU runs.
                    Kernel::Population | Kernel::SmallNet => {}
                }
            }
            self.gather = false;
            self.step += 1;
        }
        b.plan = plan;
        BlockResult { rows: std::mem::take(&mut b.trace), nonfinite: b.nonfinite.clone() }
    }
}
