//! CPU twin of `shaders/dense_step.wgsl`.

use super::{Buffers, DenseItem, dense_items, for_items, lane_sum, replica_step};
use crate::layout::{BlockUniform, ReplicaParams, StepUniform, WORKGROUP_SIZE, lanes};

const WG: usize = WORKGROUP_SIZE as usize;

/// Per dense block, per replica and chunk of `CHUNK_ROWS` rows (a workgroup on the GPU): the
/// one pass over the synapses. For each synapse `j -> i`, from its step-`n` `w` and `pw`:
/// the chunk's partial column sum `part_j += w_ij e_hat_i` (rows in order), the updates
/// `pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw)` and `w <- w + tau s (-pw / r)`
/// (when learning), and the next step's pre-activation `a_i += sum_j w_ij' x_j'`, summed per
/// tile of `tile_cols` columns in `WG` lanes (lane `l` takes the tile's columns `l, l + WG, ...`
/// in order) and a tree over the lanes, the tiles' sums then added in tile order.
///
/// The GPU runs the same sums in the same order (thread `l` of a tile's workgroup is lane
/// `l`; `dense_reduce` adds the tiles' row sums); the loop nest differs (rows outside, columns
/// inside, so that the inner loop runs over contiguous memory and vectorises, and each row's
/// tiles in turn), which changes no value.
pub fn dense_step(b: &mut Buffers, s: &StepUniform, src: usize, blk: &BlockUniform) {
    let (k, learning, tau) = (b.params, b.params.learning != 0, b.params.tau);
    let (xs, xn) = b.columns(blk, src, s.row, Some(s.row + 1));
    let xn = xn.expect("next-step columns");
    let cols = blk.cols as usize;
    let items = dense_items(b, blk, true);
    for_items(items, blk, |item: DenseItem<'_>| {
        let DenseItem { r, rows, w, pw, part, a, e_hat, rp, sign } = item;
        let s = &replica_step(&k, s, sign);
        let (xj, xn) = (&xs[r * cols..(r + 1) * cols], &xn[r * cols..(r + 1) * cols]);
        let part = part.expect("partials");
        part.fill(0.0);
        for ii in 0..rows {
            let ei = e_hat[ii];
            let (w, pw) = (&mut w[ii * cols..(ii + 1) * cols], &mut pw[ii * cols..(ii + 1) * cols]);
            a[ii] += tiled_row_sum(learning, w, pw, xj, xn, part, ei, tau, s, rp, blk.tile_cols as usize);
        }
    });
}

/// One row of a chunk, tile by tile: each tile of `tile_cols` columns in its lanes
/// ([`row_pass`]: `WG` lanes, or 8 for tiles of at most 8 columns such as the paper's net's
/// rows, where lane `l` is column `l` either way) and their tree, the tiles' sums added in
/// tile order from 0 (what `dense_reduce` adds into `a` on the GPU).
#[expect(clippy::too_many_arguments, reason = "the row's buffers and scalars, inlined into the pass")]
#[inline(always)]
pub(crate) fn tiled_row_sum(
    learning: bool,
    w: &mut [f32],
    pw: &mut [f32],
    xj: &[f32],
    xn: &[f32],
    part: &mut [f32],
    ei: f32,
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
    tile_cols: usize,
) -> f32 {
    let tc = tile_cols.max(1);
    let tiles = w.chunks_mut(tc).zip(pw.chunks_mut(tc)).zip(xj.chunks(tc).zip(xn.chunks(tc))).zip(part.chunks_mut(tc));
    let mut sum = 0.0f32;
    for (((w, pw), (xj, xn)), part) in tiles {
        let lanes = lanes(w.len() as u32) as usize;
        sum += match (learning, w.len() <= 8) {
            (true, true) => lane_sum(row_pass8::<true>(w, pw, xj, xn, part, ei, tau, s, rp), lanes),
            (false, true) => lane_sum(row_pass8::<false>(w, pw, xj, xn, part, ei, tau, s, rp), lanes),
            (true, false) => lane_sum(row_pass::<true, WG>(w, pw, xj, xn, part, ei, tau, s, rp), lanes),
            (false, false) => lane_sum(row_pass::<false, WG>(w, pw, xj, xn, part, ei, tau, s, rp), lanes),
        };
    }
    sum
}

/// [`row_pass`] for a tile of at most 8 columns, in 8 lanes, on arrays of 8 (the tile padded
/// with zeros) so that the lanes stay in registers and the loop over them vectorises (a loop
/// of the tile's own length would index them in memory, and the tree would wait on the
/// stores). A padded lane computes `w = pw = +0` and adds `+0` to its lane, as an unused
/// lane holds: the sums are the same. Only the tile's own columns are written back.
#[expect(clippy::too_many_arguments, reason = "the row's buffers and scalars, inlined into the pass")]
#[inline(always)]
fn row_pass8<const LEARN: bool>(
    w: &mut [f32],
    pw: &mut [f32],
    xj: &[f32],
    xn: &[f32],
    part: &mut [f32],
    ei: f32,
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
) -> [f32; 8] {
    let len = w.len();
    let load = |v: &[f32]| -> [f32; 8] {
        match v.try_into() {
            Ok(v) => v,
            Err(_) => std::array::from_fn(|l| if l < len { v[l] } else { 0.0 }),
        }
    };
    let (xj, xn) = (load(xj), load(xn));
    let (mut w8, mut pw8, mut part8) = (load(w), load(pw), load(part));
    let acc = pass8::<LEARN>(&mut w8, &mut pw8, &mut part8, &xj, &xn, ei, tau, s, rp);
    w.copy_from_slice(&w8[..len]);
    pw.copy_from_slice(&pw8[..len]);
    part.copy_from_slice(&part8[..len]);
    acc
}

/// [`row_pass8`] on a row kept padded to 8 columns (the population path's replica that runs
/// alone): on its arrays where they are, with no copy in or out (whose run-time length
/// compiles to calls to `memcpy`). Returns the row's next pre-activation.
#[expect(clippy::too_many_arguments, reason = "the row's arrays and scalars, inlined into the pass")]
#[inline(always)]
pub(crate) fn padded_row_sum(
    learning: bool,
    w: &mut [f32; 8],
    pw: &mut [f32; 8],
    part: &mut [f32; 8],
    [xj, xn]: [&[f32; 8]; 2],
    ei: f32,
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
) -> f32 {
    let acc = if learning {
        pass8::<true>(w, pw, part, xj, xn, ei, tau, s, rp)
    } else {
        pass8::<false>(w, pw, part, xj, xn, ei, tau, s, rp)
    };
    // As `tiled_row_sum` for its one tile of 8 columns: the sum of tiles from 0.
    0.0 + lane_sum(acc, 8)
}

/// The 8 lanes of [`row_pass8`] and [`padded_row_sum`]. Each array is an argument of its own,
/// so that the compiler knows them apart and the loop vectorises (references packed into
/// one array argument carry no such promise, and it was compiled to scalar code).
#[expect(clippy::too_many_arguments, reason = "the row's arrays and scalars, inlined into the pass")]
#[inline(always)]
fn pass8<const LEARN: bool>(
    w: &mut [f32; 8],
    pw: &mut [f32; 8],
    part: &mut [f32; 8],
    xj: &[f32; 8],
    xn: &[f32; 8],
    ei: f32,
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
) -> [f32; 8] {
    let mut acc = [0.0f32; 8];
    for l in 0..8 {
        synapse_item::<LEARN>(&mut acc[l], &mut w[l], &mut pw[l], xj[l], xn[l], &mut part[l], ei, tau, s, rp);
    }
    acc
}

/// One synapse `j -> i` of a row: adds `w e_hat_i` to its column's partial, updates `w` and
/// `pw` when learning ([`super::synapse_update`]), and adds `w' x_j'` to its lane.
#[expect(clippy::too_many_arguments, reason = "one synapse's values and the row's scalars, inlined")]
#[inline(always)]
fn synapse_item<const LEARN: bool>(
    acc: &mut f32,
    w: &mut f32,
    pw: &mut f32,
    xj: f32,
    xn: f32,
    part: &mut f32,
    ei: f32,
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
) {
    let w0 = *w;
    *part += w0 * ei;
    let mut w1 = w0;
    if LEARN {
        (w1, *pw) = super::synapse_update(tau, s, rp, w0, *pw, ei, xj);
        *w = w1;
    }
    *acc += w1 * xn;
}

/// One tile of a row: returns the `L = WG` lanes of its next pre-activation (tiles of at most
/// 8 columns go to [`row_pass8`]).
#[expect(clippy::too_many_arguments, reason = "the row's buffers and scalars, inlined into the pass")]
#[inline(always)]
fn row_pass<const LEARN: bool, const L: usize>(
    w: &mut [f32],
    pw: &mut [f32],
    xj: &[f32],
    xn: &[f32],
    part: &mut [f32],
    ei: f32,
    tau: f32,
    s: &StepUniform,
    rp: ReplicaParams,
) -> [f32; L] {
    let mut acc = [0.0f32; L];
    let one = |acc: &mut f32, w: &mut f32, pw: &mut f32, xj: f32, xn: f32, part: &mut f32| {
        synapse_item::<LEARN>(acc, w, pw, xj, xn, part, ei, tau, s, rp);
    };
    let mut wc = w.chunks_exact_mut(L);
    let mut pwc = pw.chunks_exact_mut(L);
    let mut pc = part.chunks_exact_mut(L);
    let (mut xjc, mut xnc) = (xj.chunks_exact(L), xn.chunks_exact(L));
    for ((((w, pw), part), xj), xn) in (&mut wc).zip(&mut pwc).zip(&mut pc).zip(&mut xjc).zip(&mut xnc) {
        for l in 0..L {
            one(&mut acc[l], &mut w[l], &mut pw[l], xj[l], xn[l], &mut part[l]);
        }
    }
    let (w, pw, part) = (wc.into_remainder(), pwc.into_remainder(), pc.into_remainder());
    let (xj, xn) = (xjc.remainder(), xnc.remainder());
    for l in 0..w.len() {
        one(&mut acc[l], &mut w[l], &mut pw[l], xj[l], xn[l], &mut part[l]);
    }
    acc
}
