//! CPU twin of `shaders/sparse_back.wgsl`.
#![expect(clippy::needless_range_loop, reason = "mirrors the WGSL kernel")]

use super::{Buffers, each_neuron};
use crate::layout::BlockUniform;

/// Per neuron `j` of every replica: `b_j += sum_k w_kj e_hat_k` over its outgoing edges in the
/// sparse block (by ascending target), from the step-`n` weights, before `sparse_step`
/// updates them. Input neurons have no costate and are skipped.
pub fn sparse_back(b: &mut Buffers, blk: &BlockUniform) {
    let Buffers { params: k, out_ptr, out_edge, edge_dst, w, e_hat, b: back, .. } = b;
    let (n, ne, off) = (k.n as usize, k.n_edges as usize, blk.w_off as usize);
    let (k, out_ptr, out_edge, edge_dst, w, e_hat) = (&*k, &*out_ptr, &*out_edge, &*edge_dst, &*w, &*e_hat);
    each_neuron([back], |gid, [bj]| {
        let r = gid / n;
        let j = gid % n;
        if j < k.d as usize {
            return [bj];
        }
        let mut sum = 0.0f32;
        for m in out_ptr[j] as usize..out_ptr[j + 1] as usize {
            let e = out_edge[m] as usize;
            sum += w[r * ne + off + e] * e_hat[r * n + edge_dst[e] as usize];
        }
        [bj + sum]
    });
}
