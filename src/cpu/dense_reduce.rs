//! CPU twin of `shaders/dense_reduce.wgsl`.

use super::Buffers;
use crate::layout::BlockUniform;

/// Per dense block, per replica and column `j`: `b_j += sum_c part[c][j]`, the chunks'
/// partial column sums added in chunk order. (The GPU's `dense_reduce` also adds each row's
/// tile sums into `a`; the CPU's [`super::dense_step`] adds them itself, in the same order.)
pub fn dense_reduce(b: &mut Buffers, blk: &BlockUniform) {
    let n = b.params.n as usize;
    let (cols, chunks) = (blk.cols as usize, blk.chunks as usize);
    let mut sum = vec![0.0f32; cols];
    for r in 0..b.params.replicas as usize {
        let part = &b.part[blk.part_off as usize + r * chunks * cols..][..chunks * cols];
        // Chunk by chunk over contiguous rows; each column's sum still adds the chunks in order.
        sum.fill(0.0);
        for c in 0..chunks {
            for (s, p) in sum.iter_mut().zip(&part[c * cols..(c + 1) * cols]) {
                *s += p;
            }
        }
        for (bj, s) in b.b[r * n + blk.col0 as usize..][..cols].iter_mut().zip(&sum) {
            *bj += s;
        }
    }
}
