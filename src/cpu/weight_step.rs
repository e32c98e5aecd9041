//! CPU twin of `shaders/weight_step.wgsl`.

use super::{Buffers, flush, x_value};
use crate::layout::StepUniform;

/// Per synapse `j -> i` of every replica, in place:
/// `pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw)` and `w <- w + tau s (-pw / r)`,
/// both from the step-`n` values.
pub fn weight_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, replica, edge_src, edge_dst, x, inputs, e_hat, w, pw, .. } = b;
    let x_in = &x[src];
    let (n, ne) = (k.n as usize, k.n_edges as usize);
    for gid in 0..k.replicas as usize * ne {
        let r = gid / ne;
        let e = gid % ne;
        let xj = x_value(k, s, inputs, x_in, r, edge_src[e] as usize);
        let ei = e_hat[r * n + edge_dst[e] as usize];
        let rp = replica[r];
        let w0 = w[gid];
        let pw0 = pw[gid];
        let dpw = -ei * xj - rp.r_w * w0;
        let dw = -pw0 / rp.r;
        w[gid] = flush(w0 + k.tau * (s.sign_state * dw));
        pw[gid] = flush(pw0 + k.tau * (s.sign_costate * dpw - rp.theta * pw0));
    }
}
