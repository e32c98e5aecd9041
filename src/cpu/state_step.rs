//! CPU twin of `shaders/state_step.wgsl`.

use super::{Buffers, each_into3, flush, x_value};
use crate::activation::activate;
use crate::layout::StepUniform;

/// Per neuron of every replica: `a_i = sum_j w_ij x_j`, the Euler state update
/// `x_i <- x_i + tau s c_i (sigma(a_i) - x_i)` into the other ping-pong buffer, the message
/// `e_hat_i = c_i sigma'(a_i) p_i` and the state power `h_i = p_i c_i (sigma(a_i) - x_i)`.
/// Input neurons copy their input into the next buffer.
///
/// The loop over invocations is split over threads for large networks ([`super::PARALLEL_FROM`]);
/// each invocation's arithmetic is the shader's, in the shader's order.
pub fn state_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, row_ptr, edge_src, w, x, inputs, c, p, e_hat, h, .. } = b;
    let [x0, x1] = x;
    let (x_in, x_out) = if src == 0 { (&*x0, x1) } else { (&*x1, x0) };
    let (n, ne) = (k.n as usize, k.n_edges as usize);
    let k = &*k;
    let (inputs, row_ptr, edge_src, w, c, p) = (&*inputs, &*row_ptr, &*edge_src, &*w, &*c, &*p);
    // One invocation; returns (x_out, e_hat, h) of neuron `gid`.
    let work = k.replicas as usize * (n + ne);
    each_into3(x_out, e_hat, h, work, |gid| {
        let r = gid / n;
        let i = gid % n;
        if i < k.d as usize {
            return [x_value(k, s, inputs, x_in, r, i), 0.0, 0.0];
        }
        let mut a = 0.0f32;
        for e in row_ptr[i] as usize..row_ptr[i + 1] as usize {
            a += w[r * ne + e] * x_value(k, s, inputs, x_in, r, edge_src[e] as usize);
        }
        let (sig, dsig) = activate(k.activation, a);
        let xi = x_in[gid];
        let ci = c[gid];
        let pi = p[gid];
        let dx = ci * (sig - xi);
        [flush(xi + k.tau * (s.sign_state * dx)), ci * dsig * pi, pi * dx]
    });
}
