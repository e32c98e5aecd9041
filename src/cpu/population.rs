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
        // About four tasks per thread: a group is too small to be a task alone.
        let per_task = groups.len().div_ceil(4 * rayon::current_num_threads());
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
    let unpad = |v: &[f32], out: &mut [f32]| {
        for (o, v) in out.chunks_mut(cols).zip(v.chunks(stride)) {
            o.copy_from_slice(&v[..cols]);
        }
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
                a[row0 + ii] += padded_row_sum(k.learning != 0, [w, pw, part8], [xs8, xn8], ei, k.tau, s, rp);
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
    unpad(&w, gw);
    unpad(&pw, gpw);
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
        for (v, out) in padded.into_iter().zip([&mut *w, &mut *pw]) {
            for (o, v) in out.chunks_mut(cols).zip(v.chunks(stride)) {
                o.copy_from_slice(&v[..cols]);
            }
        }
        [&*w, &*pw]
    };
    replica_step(k, s, ball_sign(k, [x, p, w, pw]))
}

/// The tree over the first `lanes` entries of `acc`, for every replica of a group
/// ([`super::lane_sum`] lane by lane; the halves are split so that the loops vectorise).
#[inline(always)]
fn lane_sum_v(acc: &mut [V], lanes: usize) -> V {
    let mut stride = lanes / 2;
    while stride > 0 {
        let (lo, hi) = acc.split_at_mut(stride);
        for (a, b) in lo.iter_mut().zip(hi.iter()) {
            for m in 0..LANES {
                a[m] += b[m];
            }
        }
        stride /= 2;
    }
    acc[0]
}

/// The per-replica constants of the trace row.
struct RecordCoef {
    q: V,
    r: V,
    r_w: V,
}

/// [`record_replica`] for every replica of a group, in `L` lanes (a power of two covering
/// every array, or `WG`): element `i` of each array goes to lane `i % WG` in order, then a
/// tree halves the lanes. The sums live in local arrays so that the loops over the group's
/// replicas vectorise. `trace` is the group's part of the recorded row, `[replica][width]`.
#[expect(clippy::too_many_arguments, reason = "one group's slices, called once per recorded step")]
fn record_lanes<const L: usize>(
    sh: &Shared<'_>,
    s: &StepUniform,
    r0: usize,
    rc: &RecordCoef,
    h: &[V],
    x: &[V],
    w: &[V],
    pw: &[V],
    trace: &mut [f32],
) {
    let (n_out, width) = (sh.k.n_out as usize, sh.k.trace_width as usize);
    let (mut hs, mut err, mut pw2, mut w2) =
        ([[0.0f32; LANES]; L], [[0.0; LANES]; L], [[0.0; LANES]; L], [[0.0; LANES]; L]);
    for (i, v) in h.iter().enumerate() {
        let l = i % WG % L;
        for m in 0..LANES {
            hs[l][m] += v[m];
        }
    }
    for o in 0..n_out {
        let (xo, l) = (x[sh.outputs[o] as usize], o % WG % L);
        for m in 0..LANES {
            let t = sh.target_at(s.row, r0 + m) + o;
            let dv = xo[m] - sh.targets[t];
            err[l][m] += sh.masks[t] * dv * dv;
            trace[m * width + TRACE_FIXED + o] = xo[m];
        }
    }
    for (e, (pw, w)) in pw.iter().zip(w).enumerate() {
        let l = e % WG % L;
        for m in 0..LANES {
            pw2[l][m] += pw[m] * pw[m];
            w2[l][m] += w[m] * w[m];
        }
    }
    // Each tree over as many lanes as its values fill: the lanes past them hold +0, which
    // changes no sum (as in `record_replica`).
    let cover = |count: usize| count.clamp(1, L).next_power_of_two();
    let (hs, err) = (lane_sum_v(&mut hs, cover(h.len())), lane_sum_v(&mut err, cover(n_out)));
    let (pw2, w2) = (lane_sum_v(&mut pw2, cover(w.len())), lane_sum_v(&mut w2, cover(w.len())));
    for m in 0..LANES {
        let loss = 0.5 * rc.q[m] * err[m];
        let kinetic = 0.5 * pw2[m] / rc.r[m];
        let potential = 0.5 * rc.r_w[m] * w2[m];
        let at = m * width;
        trace[at] = loss;
        trace[at + 1] = kinetic + potential + loss;
        trace[at + 2] = hs[m] - kinetic + potential + loss;
        // The step's sign: a group runs together only when its replicas share it (not hsf-ball).
        trace[at + 3] = s.sign_state;
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

/// The per-replica constants of the synapse update.
struct Coef<'a> {
    tau: f32,
    s: &'a StepUniform,
    r_w: &'a V,
    r: &'a V,
    theta: &'a V,
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
            let rp = ReplicaParams { q: 0.0, r: k.r[m], r_w: k.r_w[m], theta: k.theta[m] };
            (w1[m], pw1[m]) = synapse_update(k.tau, k.s, rp, w0[m], pw0[m], ei[m], xj[m]);
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
    let rp: [ReplicaParams; LANES] = std::array::from_fn(|m| sh.replica[r0 + m]);
    let (q, r, r_w, theta): (V, V, V, V) = (
        std::array::from_fn(|m| rp[m].q),
        std::array::from_fn(|m| rp[m].r),
        std::array::from_fn(|m| rp[m].r_w),
        std::array::from_fn(|m| rp[m].theta),
    );
    let tau = k.tau;
    let (mut xs, mut xn) = (vec![[0.0f32; LANES]; cols], vec![[0.0f32; LANES]; cols]);
    let mut acc = vec![[0.0f32; LANES]; WG];
    // record_step's lanes: those past `used` hold +0 and leave the tree unchanged.
    let record = match n.max(ne).max(n_out).clamp(1, WG).next_power_of_two() {
        ..=8 => record_lanes::<8>,
        16 => record_lanes::<16>,
        32 => record_lanes::<32>,
        _ => record_lanes::<WG>,
    };
    let rc = RecordCoef { q, r, r_w };
    for (step, s) in sh.block.steps.iter().enumerate() {
        let src = ((sh.first + step as u64) % 2) as usize;
        let [x0, x1] = &mut xv;
        let (x_in, x_out) = if src == 0 { (&mut *x0, &mut *x1) } else { (&mut *x1, &mut *x0) };
        let value = |row: u32, x: &[V], j: usize| -> V {
            if j < d { std::array::from_fn(|m| sh.input(row, r0 + m, j)) } else { x[j] }
        };
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
                let sum = lane_sum_v(&mut acc, lanes);
                for m in 0..LANES {
                    a[row0 + ii][m] += 0.0 + sum[m];
                }
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
            x_out[i] = std::array::from_fn(|m| sh.input(s.row, r0 + m, i));
            (e_hat[i], h[i]) = ([0.0; LANES], [0.0; LANES]);
        }
        neuron_lanes(
            k,
            s,
            [&mut a[d..], &mut x_out[d..], &mut e_hat[d..], &mut h[d..]],
            [&x_in[d..], &c[d..], &p[d..]],
        );
        // record_step (record_replica, lane by lane)
        if s.record_row != NO_RECORD {
            let at = s.record_row as usize * LANES * k.trace_width as usize;
            record(sh, s, r0, &rc, &h, x_in, &w, &pw, &mut g.trace[at..at + LANES * k.trace_width as usize]);
        }
        // dense_step (row_pass, lane by lane)
        for j in 0..cols {
            xs[j] = value(s.row, x_in, col0 + j);
            xn[j] = value(s.row + 1, x_out, col0 + j);
        }
        part.iter_mut().for_each(|v| *v = [0.0; LANES]);
        let learning = k.learning != 0;
        for ii in 0..rows {
            let ei = e_hat[row0 + ii];
            acc[..lanes].iter_mut().for_each(|v| *v = [0.0; LANES]);
            for j in 0..cols {
                let at = ii * cols + j;
                let coef = Coef { tau, s, r_w: &r_w, r: &r, theta: &theta };
                synapse_lanes(learning, &mut w[at], &mut pw[at], &mut part[j], &mut acc[j], &ei, &xs[j], &xn[j], &coef);
            }
            let sum = lane_sum_v(&mut acc, lanes);
            for m in 0..LANES {
                a[row0 + ii][m] += 0.0 + sum[m];
            }
        }
        // dense_reduce (one chunk)
        for j in 0..cols {
            for m in 0..LANES {
                b[col0 + j][m] += 0.0 + part[j][m];
            }
        }
        // costate_step
        for i in 0..n {
            let bi = b[i];
            b[i] = [0.0; LANES];
            if i >= d {
                // The targets and masks gathered first, so that the loop over the replicas
                // has no branch and vectorises.
                let slot = sh.slots[i];
                let (mut z, mut mask) = ([0.0f32; LANES], [0.0f32; LANES]);
                if slot != NOT_OUTPUT {
                    for m in 0..LANES {
                        let t = sh.target_at(s.row, r0 + m) + slot as usize;
                        (z[m], mask[m]) = (sh.targets[t], sh.masks[t]);
                    }
                }
                let costate =
                    |m: usize, target| costate_update(k, s, rp[m], p[i][m], bi[m], x_in[i][m], c[i][m], target);
                p[i] = if slot != NOT_OUTPUT {
                    std::array::from_fn(|m| costate(m, Some((z[m], mask[m]))))
                } else {
                    std::array::from_fn(|m| costate(m, None))
                };
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
