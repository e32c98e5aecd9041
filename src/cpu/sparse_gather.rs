//! CPU twin of `shaders/sparse_gather.wgsl`.

use super::{Buffers, lane_sum, sparse_rows, x_value};
use crate::layout::{BlockUniform, StepUniform, WIDE_FAN_IN, WORKGROUP_SIZE};

const WG: usize = WORKGROUP_SIZE as usize;

/// Per target neuron `i` of the sparse block and replica: `a_i += sum_j w_ij x_j` at the
/// current step, in the order of [`super::sparse_step`]'s sum (edge order, or lanes and tree
/// for a wide row).
pub fn sparse_gather(b: &mut Buffers, s: &StepUniform, src: usize, blk: &BlockUniform) {
    let k = b.params;
    let x_in = &b.x[src];
    let (inputs, edge_src) = (&b.inputs, &b.edge_src);
    sparse_rows(&b.row_ptr, blk, &k, &mut b.w, None, &mut b.a, None, |r, _, lo, w, _, ai, _| {
        let term = |m: usize, w: f32| w * x_value(&k, s.row, inputs, x_in, r, edge_src[lo + m] as usize);
        if w.len() >= WIDE_FAN_IN as usize {
            let mut acc = [0.0f32; WG];
            for (m, w) in w.iter().enumerate() {
                acc[m % WG] += term(m, *w);
            }
            *ai += lane_sum(acc, WG);
        } else {
            let mut acc = 0.0f32;
            for (m, w) in w.iter().enumerate() {
                acc += term(m, *w);
            }
            *ai += acc;
        }
    });
}
