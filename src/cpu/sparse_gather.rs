//! CPU twin of `shaders/sparse_gather.wgsl`.

use super::{Buffers, sparse_row_sum, sparse_rows, x_value};
use crate::layout::{BlockUniform, StepUniform};

/// Per target neuron `i` of the sparse block and replica: `a_i += sum_j w_ij x_j` at the
/// current step, in the order of [`super::sparse_step`]'s sum (edge order, or lanes and tree
/// for a wide row).
pub fn sparse_gather(b: &mut Buffers, s: &StepUniform, src: usize, blk: &BlockUniform) {
    let k = b.params;
    let x_in = &b.x[src];
    let (inputs, edge_src) = (&b.inputs, &b.edge_src);
    sparse_rows(&b.row_ptr, blk, &k, &mut b.w, None, &mut b.a, None, |r, _, lo, w, _, ai, _| {
        *ai += sparse_row_sum(w.len(), |m| w[m] * x_value(&k, s.row, inputs, x_in, r, edge_src[lo + m] as usize));
    });
}
