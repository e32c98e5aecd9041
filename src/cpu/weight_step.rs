//! CPU twin of `shaders/weight_step.wgsl`.

use super::{Buffers, each_pair_in_place, flush, x_value};
use crate::layout::StepUniform;

/// Per synapse `j -> i` of every replica, in place:
/// `pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw)` and `w <- w + tau s (-pw / r)`,
/// both from the step-`n` values.
///
/// The loop over invocations is split over threads for large networks ([`super::PARALLEL_FROM`]).
pub fn weight_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, replica, edge_src, edge_dst, x, inputs, e_hat, w, pw, .. } = b;
    let x_in = &x[src];
    let (n, ne) = (k.n as usize, k.n_edges as usize);
    let (k, replica, edge_src, edge_dst, inputs, e_hat) = (&*k, &*replica, &*edge_src, &*edge_dst, &*inputs, &*e_hat);
    // One invocation: synapse `gid`'s step-n weight and costate in, step-n+1 out.
    each_pair_in_place(w, pw, |gid, w0, pw0| {
        let r = gid / ne;
        let e = gid % ne;
        let xj = x_value(k, s, inputs, x_in, r, edge_src[e] as usize);
        let ei = e_hat[r * n + edge_dst[e] as usize];
        let rp = replica[r];
        let dpw = -ei * xj - rp.r_w * w0;
        let dw = -pw0 / rp.r;
        (flush(w0 + k.tau * (s.sign_state * dw)), flush(pw0 + k.tau * (s.sign_costate * dpw - rp.theta * pw0)))
    });
}
