//! CPU twin of `shaders/dense_gather.wgsl`.

use super::{Buffers, DenseItem, dense_items, for_items, lane_sum};
use crate::layout::{BlockUniform, StepUniform, WORKGROUP_SIZE, lanes};

const WG: usize = WORKGROUP_SIZE as usize;

/// Per dense block, per replica and chunk of rows: `a_i += sum_j w_ij x_j` at the current
/// step, in the tiles, lanes and tree of [`super::dense_step`], so that a run resumed from a saved
/// state sums exactly what the uninterrupted run's previous synapse pass summed.
pub fn dense_gather(b: &mut Buffers, s: &StepUniform, src: usize, blk: &BlockUniform) {
    let (xs, _) = b.columns(blk, src, s.row, None);
    let cols = blk.cols as usize;
    let items = dense_items(b, blk, false);
    for_items(items, blk, |item: DenseItem<'_>| {
        let DenseItem { r, rows, w, a, .. } = item;
        let xj = &xs[r * cols..(r + 1) * cols];
        let tc = (blk.tile_cols as usize).max(1);
        for ii in 0..rows {
            let mut sum = 0.0f32;
            for (w, x) in w[ii * cols..(ii + 1) * cols].chunks(tc).zip(xj.chunks(tc)) {
                let mut acc = [0.0f32; WG];
                for (w, x) in w.chunks(WG).zip(x.chunks(WG)) {
                    for l in 0..w.len() {
                        acc[l] += w[l] * x[l];
                    }
                }
                sum += lane_sum(acc, lanes(w.len() as u32) as usize);
            }
            a[ii] += sum;
        }
    });
}
