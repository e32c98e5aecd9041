//! CPU twin of `shaders/costate_step.wgsl`.
#![expect(clippy::needless_range_loop, reason = "mirrors the WGSL kernel")]

use super::{Buffers, each_in_place, flush};
use crate::layout::StepUniform;
use crate::network::NOT_OUTPUT;

/// Per neuron of every replica, in place: the scaled costate update
/// `p_i <- p_i + tau (s' (c_i p_i - sum_k w_ki e_hat_k - q mask_i (x_i - z_i)) - theta p_i)`,
/// gathering the children's messages through the by-source edge index. Input neurons have
/// no costate.
///
/// The loop over invocations is split over threads for large networks ([`super::PARALLEL_FROM`]).
pub fn costate_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers {
        params: k, replica, out_ptr, out_edge, edge_dst, out_slot, w, x, c, p, e_hat, targets, masks, ..
    } = b;
    let x_in = &x[src];
    let (n, ne) = (k.n as usize, k.n_edges as usize);
    let k = &*k;
    let (replica, out_ptr, out_edge, edge_dst, out_slot) = (&*replica, &*out_ptr, &*out_edge, &*edge_dst, &*out_slot);
    let (w, c, e_hat, targets, masks) = (&*w, &*c, &*e_hat, &*targets, &*masks);
    // One invocation; `pi` is this neuron's step-n costate, the result its step-n+1 costate.
    let work = k.replicas as usize * (n + ne);
    each_in_place(p, work, |gid, pi| {
        let r = gid / n;
        let i = gid % n;
        if i < k.d as usize {
            return pi;
        }
        let mut back = 0.0f32;
        for m in out_ptr[i] as usize..out_ptr[i + 1] as usize {
            let e = out_edge[m] as usize;
            back += w[r * ne + e] * e_hat[r * n + edge_dst[e] as usize];
        }
        let rp = replica[r];
        let slot = out_slot[i];
        let mut err = 0.0f32;
        if slot != NOT_OUTPUT {
            let t = (s.row as usize * k.replicas as usize + r) * k.n_out as usize + slot as usize;
            err = rp.q * masks[t] * (x_in[gid] - targets[t]);
        }
        let dp = c[gid] * pi - back - err;
        flush(pi + k.tau * (s.sign_costate * dp - rp.theta * pi))
    });
}
