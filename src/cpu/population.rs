//! The fused CPU path for small networks: each replica runs every step of a block in one
//! loop, its whole state in the cache, instead of one pass over all replicas per kernel;
//! replicas go in groups of [`LANES`], laid out structure-of-arrays (a value of the eight
//! replicas side by side) so that the loops over a group's replicas vectorise.
//!
//! It applies when the network is one dense block of at most `CHUNK_ROWS` rows and `WG`
//! columns with at most `WG` neurons (the paper's 5-neuron net and its replicas). Each step
//! is the dispatch list of [`crate::plan`] (`state_norm` under `hsf-ball`, `dense_gather` on
//! the first step after a state is set, `neuron_step`, `record_step`, `dense_step`,
//! `dense_reduce`, `costate_step`) computed with the kernels' own arithmetic in the same
//! order for every replica, so its results are bit-identical to the kernel-by-kernel path
//! (tested). Its WGSL twin is `shaders/population.wgsl`, one invocation per replica.

use rayon::prelude::*;

use super::costate_step::costate_update;
use super::dense_step::{padded_row_sum, tiled_row_sum};
use super::neuron_step::neuron_update;
use super::record_step::record_replica;
use super::state_norm::ball_sign;
use super::{Buffers, PARALLEL_FROM, flag_nonfinite, lane_sum, replica_step, synapse_update};
use crate::block::Block;
use crate::layout::{
    BlockUniform, KernelParams, NO_RECORD, ReplicaParams, StepUniform, TRACE_FIXED, WORKGROUP_SIZE, lanes,
    nonfinite_code,
};
use crate::network::NOT_OUTPUT;

const WG: usize = WORKGROUP_SIZE as usize;

/// Replicas per structure-of-arrays group.
pub const LANES: usize = 8;

/// One value of each replica of a group.
type V = [f32; LANES];

/// The slices of up to [`LANES`] consecutive replicas, from replica `r0`.
struct Group<'a> {
    r0: usize,
    count: usize,
    x: [&'a mut [f32]; 2],
    p: &'a mut [f32],
    w: &'a mut [f32],
    pw: &'a mut [f32],
    a: &'a mut [f32],
    e_hat: &'a mut [f32],
    h: &'a mut [f32],
    b: &'a mut [f32],
    part: &'a mut [f32],
    c: &'a [f32],
    /// The group's non-finite codes (`flag_nonfinite`).
    nonfinite: &'a mut [u32],
    /// The group's trace rows, `[record_row][replica of the group][width]`.
    trace: &'a mut [f32],
}

impl Group<'_> {
    /// The group's part of recorded row `row`, `[replica of the group][width]`.
    fn trace_row(&mut self, row: u32, width: u32) -> &mut [f32] {
        let len = self.count * width as usize;
        &mut self.trace[row as usize * len..(row as usize + 1) * len]
    }
}

/// What every group reads: sizes, the block, the streams.
struct Shared<'a> {
    k: KernelParams,
    blk: BlockUniform,
    block: &'a Block,
    first: u64,
    gather: bool,
    inputs: &'a [f32],
    targets: &'a [f32],
    masks: &'a [f32],
    outputs: &'a [u32],
    slots: &'a [u32],
    replica: &'a [ReplicaParams],
}

impl Shared<'_> {
    fn input(&self, row: u32, r: usize, j: usize) -> f32 {
        let k = &self.k;
        self.inputs[(row as usize * k.replicas as usize + r) * k.d as usize + j]
    }

    /// Input `j` of the [`LANES`] replicas from `r0` at stream row `row`.
    #[inline(always)]
    fn input_lanes(&self, row: u32, r0: usize, j: usize) -> V {
        let d = self.k.d as usize;
        let at = (row as usize * self.k.replicas as usize + r0) * d + j;
        let mut v = [0.0; LANES];
        for (v, x) in v.iter_mut().zip(self.inputs[at..].iter().step_by(d)) {
            *v = *x;
        }
        v
    }

    /// Target `o` and its mask for the [`LANES`] replicas from `r0` at stream row `row`.
    #[inline(always)]
    fn target_lanes(&self, row: u32, r0: usize, o: usize) -> (V, V) {
        let n_out = self.k.n_out as usize;
        let at = self.target_at(row, r0) + o;
        let (mut z, mut mask) = ([0.0; LANES], [0.0; LANES]);
        let values = self.targets[at..].iter().step_by(n_out).zip(self.masks[at..].iter().step_by(n_out));
        for ((z, mask), (t, m)) in z.iter_mut().zip(mask.iter_mut()).zip(values) {
            (*z, *mask) = (*t, *m);
        }
        (z, mask)
    }

    /// Index of replica `r`'s first target at stream row `row`.
    fn target_at(&self, row: u32, r: usize) -> usize {
        (row as usize * self.k.replicas as usize + r) * self.k.n_out as usize
    }
}

/// Runs every step of `block` from step `first` (`gather`: the first step gathers the
/// pre-activations) and writes the trace rows into `b.trace`.
pub fn population(b: &mut Buffers, block: &Block, first: u64, gather: bool) {
    let k = b.params;
    let (n, ne, width, reps) = (k.n as usize, k.n_edges as usize, k.trace_width as usize, k.replicas as usize);
    let blk = b.plan.blocks[0];
    let Buffers {
        x,
        p,
        w,
        pw,
        a,
        e_hat,
        h,
        b: back,
        part,
        c,
        outputs,
        replica,
        out_slot,
        trace,
        group_trace,
        nonfinite,
        ..
    } = b;
    // The streams are read from the block itself, not from copies in `b`.
    let (inputs, targets, masks) = (&block.inputs[..], &block.targets[..], &block.masks[..]);
    let sh = Shared { k, blk, block, first, gather, inputs, targets, masks, outputs, slots: out_slot, replica };
    let [x0, x1] = x;
    let gn = LANES * n;
    let ge = (LANES * ne).max(1);
    let gc = (LANES * blk.cols as usize).max(1);
    let mut groups: Vec<Group<'_>> = Vec::with_capacity(reps.div_ceil(LANES));
    let iter = x0
        .chunks_mut(gn)
        .zip(x1.chunks_mut(gn))
        .zip(p.chunks_mut(gn))
        .zip(a.chunks_mut(gn))
        .zip(e_hat.chunks_mut(gn))
        .zip(h.chunks_mut(gn))
        .zip(back.chunks_mut(gn))
        .zip(c.chunks(gn));
    let (mut ws, mut pws, mut parts) = (w.chunks_mut(ge), pw.chunks_mut(ge), part.chunks_mut(gc));
    let mut flags = nonfinite.chunks_mut(LANES);
    // Every group writes each of its recorded rows whole: a buffer of the right length is
    // not zeroed again.
    if group_trace.len() != trace.len() {
        group_trace.clear();
        group_trace.resize(trace.len(), 0.0);
    }
    let mut group_rows = group_trace.chunks_mut((block.records * LANES * width).max(1));
    for (g, (((((((x0, x1), p), a), e_hat), h), b), c)) in iter.enumerate() {
        let count = x0.len() / n;
        groups.push(Group {
            r0: g * LANES,
            count,
            x: [x0, x1],
            p,
            w: ws.next().unwrap_or_default(),
            pw: pws.next().unwrap_or_default(),
            a,
            e_hat,
            h,
            b,
            part: parts.next().unwrap_or_default(),
            c,
            nonfinite: flags.next().unwrap_or_default(),
            trace: group_rows.next().unwrap_or_default(),
        });
    }
    let run = |g: &mut Group<'_>| {
        // Under hsf-ball the replicas of a group may take different signs: each runs alone.
        if g.count == LANES && k.ball == 0 {
            run_lanes(&sh, g);
        } else {
            for m in 0..g.count {
                run_one(&sh, g, m);
            }
        }
    };
    if reps * ne * block.steps.len() < PARALLEL_FROM || groups.len() == 1 {
        groups.iter_mut().for_each(run);
    } else {
        // About 32 tasks per thread: a group is too small to be a task alone, and with few
        // large tasks the threads finished apart (the engine's own thread takes a core
        // now and then while a block runs; 4 per thread measured about 5% slower).
        let per_task = groups.len().div_ceil(32 * rayon::current_num_threads());
        groups.par_iter_mut().with_min_len(per_task.max(1)).for_each(run);
    }
    // The groups' rows into the block's, `[record_row][replica][width]`, a row per task.
    let gather_row = |(row, out): (usize, &mut [f32])| {
        for g in &groups {
            let len = g.count * width;
            out[g.r0 * width..g.r0 * width + len].copy_from_slice(&g.trace[row * len..(row + 1) * len]);
        }
    };
    let row_len = (reps * width).max(1);
    if trace.len() < PARALLEL_FROM {
        trace.chunks_exact_mut(row_len).enumerate().for_each(gather_row);
    } else {
        trace.par_chunks_exact_mut(row_len).enumerate().for_each(gather_row);
    }
}

/// Replica `m` of group `g`, alone (groups of fewer than [`LANES`] replicas).
fn run_one(sh: &Shared<'_>, g: &mut Group<'_>, m: usize) {
    let (k, blk) = (&sh.k, &sh.blk);
    let (n, ne, d, n_out, width) =
        (k.n as usize, k.n_edges as usize, k.d as usize, k.n_out as usize, k.trace_width as usize);
    let (cols, rows, row0, col0) = (blk.cols as usize, blk.rows as usize, blk.row0 as usize, blk.col0 as usize);
    let lanes = lanes(blk.cols) as usize;
    let r = g.r0 + m;
    let rp = sh.replica[r];
    let [xa, xb] = &mut g.x;
    let (xa, xb) = (&mut xa[m * n..(m + 1) * n], &mut xb[m * n..(m + 1) * n]);
    let (p, a, e_hat, h, b) = (
        &mut g.p[m * n..(m + 1) * n],
        &mut g.a[m * n..(m + 1) * n],
        &mut g.e_hat[m * n..(m + 1) * n],
        &mut g.h[m * n..(m + 1) * n],
        &mut g.b[m * n..(m + 1) * n],
    );
    // Rows of at most 8 columns are kept padded to 8 with zeros for the block, so that the
    // row pass runs whole 8-lane tiles in registers. A padded synapse keeps `w = pw = +0`
    // and adds `+0` to its lane, as an unused lane holds: every sum is the same.
    let stride = if cols <= 8 { 8 } else { cols };
    let (gw, gpw) = (&mut g.w[m * ne..(m + 1) * ne], &mut g.pw[m * ne..(m + 1) * ne]);
    let pad = |v: &[f32]| -> Vec<f32> {
        let mut out = vec![0.0f32; rows * stride];
        for (o, v) in out.chunks_mut(stride).zip(v.chunks(cols)) {
            o[..cols].copy_from_slice(v);
        }
        out
    };
    let (mut w, mut pw, mut part) = (pad(gw), pad(gpw), vec![0.0f32; stride]);
    // Row-major copies of `w` and `pw` for the record, whose lanes follow the edge order,
    // with room for the last padded row: rows of 8 go in whole, each over the padding of the
    // one before (a copy of `cols` floats, a run-time length, would be a call to `memcpy`).
    let (mut w_rec, mut pw_rec) = (vec![0.0f32; ne + 8], vec![0.0f32; ne + 8]);
    let unpad8 = |v: &[f32], out: &mut [f32]| {
        for (i, v) in v.chunks_exact(8).enumerate() {
            let v: &[f32; 8] = v.try_into().expect("rows of 8");
            out[i * cols..i * cols + 8].copy_from_slice(v);
        }
    };
    let c = &g.c[m * n..(m + 1) * n];
    let (mut xs, mut xn) = ([0.0f32; WG], [0.0f32; WG]);
    let mut flag = 0;
    for (step, s) in sh.block.steps.iter().enumerate() {
        let src = ((sh.first + step as u64) % 2) as usize;
        let (x_in, x_out) = if src == 0 { (&mut *xa, &mut *xb) } else { (&mut *xb, &mut *xa) };
        let value = |row: u32, x: &[f32], j: usize| if j < d { sh.input(row, r, j) } else { x[j] };
        // state_norm (hsf-ball): the replica's own signs of the step.
        let s = &if k.ball != 0 {
            ball_step(k, s, [x_in, p], [&w, &pw], (cols, stride), [&mut w_rec[..ne], &mut pw_rec[..ne]])
        } else {
            *s
        };
        if sh.gather && step == 0 {
            // dense_gather
            a.fill(0.0);
            for ii in 0..rows {
                let mut acc = [0.0f32; WG];
                for j in 0..cols {
                    acc[j] += w[ii * stride + j] * value(s.row, x_in, col0 + j);
                }
                a[row0 + ii] += 0.0 + lane_sum(acc, lanes);
            }
        }
        // neuron_step
        for i in 0..n {
            let ai = a[i];
            a[i] = 0.0;
            if flag == 0 && i >= d {
                flag = nonfinite_code(s.row, x_in[i], p[i], ai);
            }
            (x_out[i], e_hat[i], h[i]) =
                if i < d { (sh.input(s.row, r, i), 0.0, 0.0) } else { neuron_update(k, s, ai, x_in[i], c[i], p[i]) };
        }
        // record_step
        if s.record_row != NO_RECORD {
            let t = sh.target_at(s.row, r);
            let at = (s.record_row as usize * g.count + m) * width;
            let (w, pw) = if stride == cols {
                (&w[..], &pw[..])
            } else {
                unpad8(&w, &mut w_rec);
                unpad8(&pw, &mut pw_rec);
                (&w_rec[..ne], &pw_rec[..ne])
            };
            record_replica(
                rp,
                s.sign_state,
                sh.outputs,
                h,
                x_in,
                w,
                pw,
                &sh.targets[t..t + n_out],
                &sh.masks[t..t + n_out],
                &mut g.trace[at..at + width],
            );
        }
        // dense_step
        for j in 0..cols {
            xs[j] = value(s.row, x_in, col0 + j);
            xn[j] = value(s.row + 1, x_out, col0 + j);
        }
        part.fill(0.0);
        if stride == 8 {
            let (xs8, xn8): (&[f32; 8], &[f32; 8]) = (xs[..8].try_into().expect("8"), xn[..8].try_into().expect("8"));
            let part8: &mut [f32; 8] = (&mut part[..]).try_into().expect("a padded row");
            for (ii, (w, pw)) in w.as_chunks_mut::<8>().0.iter_mut().zip(pw.as_chunks_mut::<8>().0).enumerate() {
                let ei = e_hat[row0 + ii];
                a[row0 + ii] += padded_row_sum(k.learning != 0, w, pw, part8, [xs8, xn8], ei, k.tau, s, rp);
            }
        } else {
            for ii in 0..rows {
                let ei = e_hat[row0 + ii];
                let (w, pw) = (&mut w[ii * stride..(ii + 1) * stride], &mut pw[ii * stride..(ii + 1) * stride]);
                let (xj, xv) = (&xs[..stride], &xn[..stride]);
                a[row0 + ii] += tiled_row_sum(k.learning != 0, w, pw, xj, xv, &mut part, ei, k.tau, s, rp, stride);
            }
        }
        // dense_reduce (one chunk)
        for j in 0..cols {
            b[col0 + j] += 0.0 + part[j];
        }
        // costate_step
        for i in 0..n {
            let bi = b[i];
            b[i] = 0.0;
            if i >= d {
                let t = sh.target_at(s.row, r);
                let slot = sh.slots[i];
                let target = (slot != NOT_OUTPUT).then(|| (sh.targets[t + slot as usize], sh.masks[t + slot as usize]));
                p[i] = costate_update(k, s, rp, p[i], bi, x_in[i], c[i], target);
            }
        }
    }
    unpad(&w, (cols, stride), gw);
    unpad(&pw, (cols, stride), gpw);
    g.part[m * cols..(m + 1) * cols].copy_from_slice(&part[..cols]);
    flag_nonfinite(g.nonfinite, m, flag);
}

/// `state_norm` for a replica that runs alone: `s` with the replica's `hsf-ball` sign, from its
/// state `x`, `p` and its weights, whose rows of `cols` synapses are kept `stride` apart
/// (taken row-major, as the state orders them, through `rec` when they are padded). Out of
/// line, so that the step loop of the other policies keeps its code.
#[inline(never)]
fn ball_step(
    k: &KernelParams,
    s: &StepUniform,
    [x, p]: [&[f32]; 2],
    padded: [&[f32]; 2],
    (cols, stride): (usize, usize),
    rec: [&mut [f32]; 2],
) -> StepUniform {
    let [w, pw] = if stride == cols {
        padded
    } else {
        let [w, pw] = rec;
        unpad(padded[0], (cols, stride), w);
        unpad(padded[1], (cols, stride), pw);
        [&*w, &*pw]
    };
    replica_step(k, s, ball_sign(k, [x, p, w, pw]))
}

/// Rows of `cols` values kept `stride` apart in `v`, row-major into `out`.
fn unpad(v: &[f32], (cols, stride): (usize, usize), out: &mut [f32]) {
    for (o, v) in out.chunks_mut(cols).zip(v.chunks(stride)) {
        o.copy_from_slice(&v[..cols]);
    }
}

/// The tree over the first `lanes` entries of `acc`, for every replica of a group
/// ([`super::lane_sum`] lane by lane).
#[inline(always)]
fn lane_sum_v(acc: &[V], lanes: usize) -> V {
    match lanes {
        ..=1 => acc[0],
        2 => lane_tree::<2>(acc),
        4 => lane_tree::<4>(acc),
        8 => lane_tree::<8>(acc),
        16 => lane_tree::<16>(acc),
        32 => lane_tree::<32>(acc),
        _ => lane_tree::<WG>(acc),
    }
}

/// [`lane_sum_v`] over `N` lanes, a size known when compiled so that the tree unrolls. The
/// tree runs on a copy, by value, so that its sums stay in registers (in place, the
/// compiler stored each level and read it back at offsets that defeat store forwarding).
#[inline(always)]
fn lane_tree<const N: usize>(acc: &[V]) -> V {
    let mut v: [V; N] = acc[..N].try_into().expect("N lanes");
    let mut stride = N / 2;
    while stride > 0 {
        for i in 0..stride {
            let (a, b) = (v[i], v[i + stride]);
            v[i] = std::array::from_fn(|m| a[m] + b[m]);
        }
        stride /= 2;
    }
    v[0]
}

/// `record_step`'s sums of `pw^2` and `w^2` for a group, in the lanes of
/// [`record_replica`] (synapse `e` into lane `e % WG`), summed by the synapse pass as it
/// reads the step's values, before it writes the next ones.
struct Squares {
    pw2: [V; WG],
    w2: [V; WG],
    /// The lanes the synapses fill (a power of two, at most `WG`).
    lanes: usize,
}

impl Squares {
    fn new(synapses: usize) -> Self {
        Squares { pw2: [[0.0; LANES]; WG], w2: [[0.0; LANES]; WG], lanes: synapses.clamp(1, WG).next_power_of_two() }
    }

    /// Zeroes the lanes for the next record.
    fn clear(&mut self) {
        self.pw2[..self.lanes].fill([0.0; LANES]);
        self.w2[..self.lanes].fill([0.0; LANES]);
    }

    /// Adds synapse `e`'s squares.
    #[inline(always)]
    fn add(&mut self, e: usize, w: &V, pw: &V) {
        let l = e % WG;
        for m in 0..LANES {
            self.pw2[l][m] += pw[m] * pw[m];
            self.w2[l][m] += w[m] * w[m];
        }
    }
}

/// [`record_replica`] for every replica of a group, in `L` lanes (a power of two covering
/// every array, or `WG`): element `i` of each array goes to lane `i % WG` in order, then a
/// tree halves the lanes. The sums live in local arrays so that the loops over the group's
/// replicas vectorise. The squares of `w` and `pw` come summed into their lanes by the
/// synapse pass (`squares`, [`Squares::add`]). `trace` is the group's part of the recorded
/// row, `[replica][width]`.
#[expect(clippy::too_many_arguments, reason = "one group's slices, called once per recorded step")]
fn record_lanes<const L: usize>(
    sh: &Shared<'_>,
    s: &StepUniform,
    r0: usize,
    rc: &GroupParams,
    h: &[V],
    x: &[V],
    squares: &mut Squares,
    trace: &mut [f32],
) {
    let (n_out, width) = (sh.k.n_out as usize, sh.k.trace_width as usize);
    let (mut hs, mut err) = ([[0.0f32; LANES]; L], [[0.0; LANES]; L]);
    for (i, v) in h.iter().enumerate() {
        let l = i % WG % L;
        for m in 0..LANES {
            hs[l][m] += v[m];
        }
    }
    for (o, &out) in sh.outputs.iter().enumerate() {
        let (xo, l) = (x[out as usize], o % WG % L);
        let (z, mask) = sh.target_lanes(s.row, r0, o);
        for m in 0..LANES {
            let dv = xo[m] - z[m];
            err[l][m] += mask[m] * dv * dv;
        }
        for (row, xo) in trace.chunks_exact_mut(width).zip(xo) {
            row[TRACE_FIXED + o] = xo;
        }
    }
    // Each tree over as many lanes as its values fill: the lanes past them hold +0, which
    // changes no sum (as in `record_replica`).
    let cover = |count: usize| count.clamp(1, L).next_power_of_two();
    let (hs, err) = (lane_sum_v(&hs, cover(h.len())), lane_sum_v(&err, cover(n_out)));
    let lanes = squares.lanes;
    let (pw2, w2) = (lane_sum_v(&squares.pw2[..lanes], lanes), lane_sum_v(&squares.w2[..lanes], lanes));
    let (mut loss, mut lagrangian, mut hamiltonian) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
    for m in 0..LANES {
        loss[m] = 0.5 * rc.q[m] * err[m];
        let kinetic = 0.5 * pw2[m] / rc.r[m];
        let potential = 0.5 * rc.r_w[m] * w2[m];
        lagrangian[m] = kinetic + potential + loss[m];
        hamiltonian[m] = hs[m] - kinetic + potential + loss[m];
    }
    for (m, row) in trace.chunks_exact_mut(width).enumerate() {
        // The step's sign: a group runs together only when its replicas share it (not hsf-ball).
        row[..TRACE_FIXED].copy_from_slice(&[loss[m], lagrangian[m], hamiltonian[m], s.sign_state]);
    }
}

/// [`neuron_update`] for the non-input neurons of every replica of a group: `(a, x_next,
/// e_hat, h)` from `(x, c, p)`, `a` zeroed after use. The values are taken as one flat
/// array (neurons times replicas) and the activation is chosen outside the loop, so that the
/// loop (activation and `exp` included) vectorises.
#[inline(always)]
fn neuron_lanes(k: &KernelParams, s: &StepUniform, out: [&mut [V]; 4], input: [&[V]; 3]) {
    #[inline(always)]
    fn each<const CODE: u32>(k: &KernelParams, s: &StepUniform, out: [&mut [V]; 4], input: [&[V]; 3]) {
        let k = KernelParams { activation: CODE, ..*k };
        let [a, x_next, e_hat, h] = out.map(|v| v.as_flattened_mut());
        let [x, c, p] = input.map(|v| v.as_flattened());
        let outs = a.iter_mut().zip(x_next.iter_mut()).zip(e_hat.iter_mut()).zip(h.iter_mut());
        for ((((a, x_next), e_hat), h), ((x, c), p)) in outs.zip(x.iter().zip(c).zip(p)) {
            (*x_next, *e_hat, *h) = neuron_update(&k, s, *a, *x, *c, *p);
            *a = 0.0;
        }
    }
    match k.activation {
        0 => each::<0>(k, s, out, input),
        1 => each::<1>(k, s, out, input),
        _ => each::<2>(k, s, out, input),
    }
}

/// A group's replica parameters, one array per field.
struct GroupParams {
    q: V,
    r: V,
    r_w: V,
    theta: V,
}

impl GroupParams {
    fn new(rp: &[ReplicaParams]) -> Self {
        GroupParams {
            q: std::array::from_fn(|m| rp[m].q),
            r: std::array::from_fn(|m| rp[m].r),
            r_w: std::array::from_fn(|m| rp[m].r_w),
            theta: std::array::from_fn(|m| rp[m].theta),
        }
    }

    /// Replica `m`'s parameters.
    #[inline(always)]
    fn lane(&self, m: usize) -> ReplicaParams {
        ReplicaParams { q: self.q[m], r: self.r[m], r_w: self.r_w[m], theta: self.theta[m] }
    }
}

/// `acc += 0 + v`, lane by lane (`acc` and `v` are arguments, known apart, so that the loop
/// vectorises; so are those of the other `_lanes` functions).
#[inline(always)]
fn add_lanes(acc: &mut V, v: &V) {
    for m in 0..LANES {
        acc[m] += 0.0 + v[m];
    }
}

/// [`costate_update`] for every replica of a group, from `(b, x, c)` and, for an output
/// neuron, its targets and masks (the branch outside the loop over the replicas).
#[inline(always)]
fn costate_lanes(
    k: &KernelParams,
    s: &StepUniform,
    gp: &GroupParams,
    p: &mut V,
    [b, x, c]: [&V; 3],
    target: Option<&(V, V)>,
) {
    if let Some((z, mask)) = target {
        for m in 0..LANES {
            p[m] = costate_update(k, s, gp.lane(m), p[m], b[m], x[m], c[m], Some((z[m], mask[m])));
        }
    } else {
        for m in 0..LANES {
            p[m] = costate_update(k, s, gp.lane(m), p[m], b[m], x[m], c[m], None);
        }
    }
}

/// The per-replica constants of the synapse update.
struct Coef<'a> {
    tau: f32,
    s: &'a StepUniform,
    gp: &'a GroupParams,
}

/// One synapse of every replica of a group: `row_pass`'s arithmetic ([`synapse_update`]),
/// lane by lane, on separate arrays so that the loops vectorise.
#[expect(clippy::too_many_arguments, reason = "one synapse's values across a group, inlined")]
#[inline(always)]
fn synapse_lanes(
    learning: bool,
    w: &mut V,
    pw: &mut V,
    part: &mut V,
    acc: &mut V,
    ei: &V,
    xj: &V,
    xn: &V,
    k: &Coef<'_>,
) {
    let (w0, pw0) = (*w, *pw);
    for m in 0..LANES {
        part[m] += w0[m] * ei[m];
    }
    let mut w1 = w0;
    if learning {
        let mut pw1 = pw0;
        for m in 0..LANES {
            (w1[m], pw1[m]) = synapse_update(k.tau, k.s, k.gp.lane(m), w0[m], pw0[m], ei[m], xj[m]);
        }
        (*w, *pw) = (w1, pw1);
    }
    for m in 0..LANES {
        acc[m] += w1[m] * xn[m];
    }
}

/// A full group of [`LANES`] replicas, structure-of-arrays: the arithmetic of [`run_one`]
/// for each replica, with the loops over the replicas innermost.
fn run_lanes(sh: &Shared<'_>, g: &mut Group<'_>) {
    let (k, blk) = (&sh.k, &sh.blk);
    let (n, ne, d, n_out) = (k.n as usize, k.n_edges as usize, k.d as usize, k.n_out as usize);
    let (cols, rows, row0, col0) = (blk.cols as usize, blk.rows as usize, blk.row0 as usize, blk.col0 as usize);
    let lanes = lanes(blk.cols) as usize;
    let r0 = g.r0;
    // Gather the group's state into structure-of-arrays form.
    let soa = |v: &[f32], len: usize| -> Vec<V> { (0..len).map(|i| std::array::from_fn(|m| v[m * len + i])).collect() };
    let mut xv = [soa(g.x[0], n), soa(g.x[1], n)];
    let (mut p, mut a, mut e_hat, mut h, mut b) = (soa(g.p, n), soa(g.a, n), soa(g.e_hat, n), soa(g.h, n), soa(g.b, n));
    let (mut w, mut pw, mut part, c) = (soa(g.w, ne), soa(g.pw, ne), soa(g.part, cols), soa(g.c, n));
    // Through a local copy: built from the shared slice itself, the step loop measured about
    // 6% more instructions (callgrind).
    let rp: [ReplicaParams; LANES] = std::array::from_fn(|m| sh.replica[r0 + m]);
    let gp = GroupParams::new(&rp);
    let tau = k.tau;
    let (mut xs, mut xn) = (vec![[0.0f32; LANES]; cols], vec![[0.0f32; LANES]; cols]);
    let mut acc = vec![[0.0f32; LANES]; WG];
    // record_step's lanes for `h` and the errors (`squares` has its own): those past `used`
    // hold +0 and leave the tree unchanged.
    let record = match n.max(n_out).clamp(1, WG).next_power_of_two() {
        ..=8 => record_lanes::<8>,
        16 => record_lanes::<16>,
        32 => record_lanes::<32>,
        _ => record_lanes::<WG>,
    };
    let mut squares = Squares::new(ne);
    for (step, s) in sh.block.steps.iter().enumerate() {
        let src = ((sh.first + step as u64) % 2) as usize;
        let [x0, x1] = &mut xv;
        let (x_in, x_out) = if src == 0 { (&mut *x0, &mut *x1) } else { (&mut *x1, &mut *x0) };
        let value = |row: u32, x: &[V], j: usize| -> V { if j < d { sh.input_lanes(row, r0, j) } else { x[j] } };
        if sh.gather && step == 0 {
            // dense_gather
            a.iter_mut().for_each(|v| *v = [0.0; LANES]);
            for ii in 0..rows {
                acc[..lanes].iter_mut().for_each(|v| *v = [0.0; LANES]);
                for j in 0..cols {
                    let xj = value(s.row, x_in, col0 + j);
                    for m in 0..LANES {
                        acc[j][m] += w[ii * cols + j][m] * xj[m];
                    }
                }
                add_lanes(&mut a[row0 + ii], &lane_sum_v(&acc, lanes));
            }
        }
        // neuron_step: the flag of run_one, from a sum that is not finite where a value is
        // not (nor, rarely, where finite values overflow it, which the neurons in order then
        // clear), so that the loop has no branch.
        let mut probe = [0.0f32; LANES];
        for i in d..n {
            for m in 0..LANES {
                probe[m] += x_in[i][m] + p[i][m] + a[i][m];
            }
        }
        if !probe.iter().all(|v| v.is_finite()) {
            for m in 0..LANES {
                let code = (d..n).map(|i| nonfinite_code(s.row, x_in[i][m], p[i][m], a[i][m])).find(|&c| c != 0);
                flag_nonfinite(g.nonfinite, m, code.unwrap_or(0));
            }
        }
        for i in 0..d {
            a[i] = [0.0; LANES];
            x_out[i] = sh.input_lanes(s.row, r0, i);
            (e_hat[i], h[i]) = ([0.0; LANES], [0.0; LANES]);
        }
        neuron_lanes(
            k,
            s,
            [&mut a[d..], &mut x_out[d..], &mut e_hat[d..], &mut h[d..]],
            [&x_in[d..], &c[d..], &p[d..]],
        );
        // dense_step (row_pass, lane by lane); when the step records, the synapse pass also
        // sums record_step's squares of the step's `w` and `pw`, which it reads anyway.
        for (col, (xs, xn)) in (col0..).zip(xs.iter_mut().zip(xn.iter_mut())) {
            (*xs, *xn) = if col < d {
                (sh.input_lanes(s.row, r0, col), sh.input_lanes(s.row + 1, r0, col))
            } else {
                (x_in[col], x_out[col])
            };
        }
        part.iter_mut().for_each(|v| *v = [0.0; LANES]);
        let learning = k.learning != 0;
        let recording = s.record_row != NO_RECORD;
        if recording {
            squares.clear();
        }
        let coef = Coef { tau, s, gp: &gp };
        let (xs, xn) = (&xs[..cols], &xn[..cols]);
        for (ii, (w, pw)) in w.chunks_exact_mut(cols).zip(pw.chunks_exact_mut(cols)).enumerate() {
            let ei = e_hat[row0 + ii];
            acc[..lanes].iter_mut().for_each(|v| *v = [0.0; LANES]);
            let terms = w.iter_mut().zip(pw).zip(part.iter_mut().zip(acc.iter_mut())).zip(xs.iter().zip(xn));
            if recording {
                for (j, (((w, pw), (part, acc)), (xj, xv))) in terms.enumerate() {
                    squares.add(ii * cols + j, w, pw);
                    synapse_lanes(learning, w, pw, part, acc, &ei, xj, xv, &coef);
                }
            } else {
                for (((w, pw), (part, acc)), (xj, xv)) in terms {
                    synapse_lanes(learning, w, pw, part, acc, &ei, xj, xv, &coef);
                }
            }
            add_lanes(&mut a[row0 + ii], &lane_sum_v(&acc, lanes));
        }
        // record_step (record_replica, lane by lane): after the synapse pass, which changes
        // none of the values it reads, and summed its squares.
        if recording {
            record(sh, s, r0, &gp, &h, x_in, &mut squares, g.trace_row(s.record_row, k.trace_width));
        }
        // dense_reduce (one chunk)
        for (b, part) in b[col0..col0 + cols].iter_mut().zip(&part) {
            add_lanes(b, part);
        }
        // costate_step
        for i in 0..n {
            let bi = std::mem::replace(&mut b[i], [0.0; LANES]);
            if i >= d {
                let slot = sh.slots[i];
                let target = (slot != NOT_OUTPUT).then(|| sh.target_lanes(s.row, r0, slot as usize));
                costate_lanes(k, s, &gp, &mut p[i], [&bi, &x_in[i], &c[i]], target.as_ref());
            }
        }
    }
    // Scatter back into the engine's replica-major buffers.
    let aos = |v: &[V], out: &mut [f32]| {
        let len = v.len();
        for (i, vals) in v.iter().enumerate() {
            for m in 0..LANES {
                out[m * len + i] = vals[m];
            }
        }
    };
    let [x0, x1] = &xv;
    aos(x0, g.x[0]);
    aos(x1, g.x[1]);
    aos(&p, g.p);
    aos(&a, g.a);
    aos(&e_hat, g.e_hat);
    aos(&h, g.h);
    aos(&b, g.b);
    aos(&w, g.w);
    aos(&pw, g.pw);
    aos(&part, g.part);
}
