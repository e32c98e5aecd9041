//! CPU twin of `shaders/neuron_step.wgsl`.

use super::{Buffers, each_neuron, flag_nonfinite, flush, replica_step, x_value};
use crate::activation::activate;
use crate::layout::{KernelParams, StepUniform, nonfinite_code};

/// Per neuron of every replica, from the pre-activation `a_i` the synapse pass summed (then
/// zeroed for the next sum): the Euler state update `x_i <- x_i + tau s c_i (sigma(a_i) - x_i)`
/// into the other ping-pong buffer, the message `e_hat_i = c_i sigma'(a_i) p_i` and the state
/// power `h_i = p_i c_i (sigma(a_i) - x_i)`. Input neurons copy their input into the next
/// buffer. A replica with a non-finite `x`, `p` or `a` gets its code
/// ([`crate::layout::nonfinite_code`], the first neuron's in order).
pub fn neuron_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, x, inputs, c, p, e_hat, h, a, nonfinite, sign, .. } = b;
    let [x0, x1] = x;
    let (x_in, x_out) = if src == 0 { (&*x0, x1) } else { (&*x1, x0) };
    let (n, d) = (k.n as usize, k.d as usize);
    // The flag of `neuron_item` (`flag_nonfinite`), in a pass of its own so that the
    // neuron loop below stays free of writes to shared values. A replica's neurons are
    // looked at in order only when the sum of its values is not finite (as it is when one
    // of them is not, or, rarely, when finite values overflow it).
    for (r, ((x, p), a)) in x_in.chunks(n).zip(p.chunks(n)).zip(a.chunks(n)).enumerate() {
        if !(probe_sum(&x[d..]) + probe_sum(&p[d..]) + probe_sum(&a[d..])).is_finite() {
            let code = (d..n).map(|i| nonfinite_code(s.row, x[i], p[i], a[i])).find(|&c| c != 0).unwrap_or(0);
            flag_nonfinite(nonfinite, r, code);
        }
    }
    let (k, inputs, c, p, sign) = (&*k, &*inputs, &*c, &*p, &*sign);
    // One invocation: (x_out, e_hat, h, a) of neuron `gid` from its pre-activation.
    each_neuron([x_out, e_hat, h, a], |gid, [_, _, _, ai]| {
        let r = gid / n;
        let i = gid % n;
        if i < k.d as usize {
            return [x_value(k, s.row, inputs, x_in, r, i), 0.0, 0.0, 0.0];
        }
        let (x1, e, h) = neuron_update(k, &replica_step(k, s, sign[r]), ai, x_in[gid], c[gid], p[gid]);
        [x1, e, h, 0.0]
    });
}

/// A non-input neuron's `(x_next, e_hat, h)` from its pre-activation, state, speed and costate.
#[inline(always)]
pub(crate) fn neuron_update(k: &KernelParams, s: &StepUniform, ai: f32, xi: f32, ci: f32, pi: f32) -> (f32, f32, f32) {
    let (sig, dsig) = activate(k.activation, ai);
    let dx = ci * (sig - xi);
    (flush(xi + k.tau * (s.sign_state * dx)), ci * dsig * pi, pi * dx)
}

/// The sum of `v` in 16 lanes (in no particular order: only whether it is finite matters;
/// not [`super::lane_sum`], the workgroup tree of the kernels' sums). Not finite where a
/// value is not, or, rarely, where finite values overflow it: a caller then looks at the
/// values one by one.
pub(crate) fn probe_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let mut chunks = v.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}
