//! CPU twin of `shaders/neuron_step.wgsl`.

use super::{Buffers, each_neuron, flush, x_value};
use crate::activation::activate;
use crate::layout::StepUniform;

/// Per neuron of every replica, from the pre-activation `a_i` the synapse pass summed (then
/// zeroed for the next sum): the Euler state update `x_i <- x_i + tau s c_i (sigma(a_i) - x_i)`
/// into the other ping-pong buffer, the message `e_hat_i = c_i sigma'(a_i) p_i` and the state
/// power `h_i = p_i c_i (sigma(a_i) - x_i)`. Input neurons copy their input into the next
/// buffer.
pub fn neuron_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, x, inputs, c, p, e_hat, h, a, .. } = b;
    let [x0, x1] = x;
    let (x_in, x_out) = if src == 0 { (&*x0, x1) } else { (&*x1, x0) };
    let n = k.n as usize;
    let (k, inputs, c, p) = (&*k, &*inputs, &*c, &*p);
    // One invocation: (x_out, e_hat, h, a) of neuron `gid` from its pre-activation.
    each_neuron([x_out, e_hat, h, a], |gid, [_, _, _, ai]| {
        let r = gid / n;
        let i = gid % n;
        if i < k.d as usize {
            return [x_value(k, s.row, inputs, x_in, r, i), 0.0, 0.0, 0.0];
        }
        let (sig, dsig) = activate(k.activation, ai);
        let xi = x_in[gid];
        let ci = c[gid];
        let pi = p[gid];
        let dx = ci * (sig - xi);
        [flush(xi + k.tau * (s.sign_state * dx)), ci * dsig * pi, pi * dx, 0.0]
    });
}
