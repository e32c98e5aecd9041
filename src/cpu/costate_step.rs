//! CPU twin of `shaders/costate_step.wgsl`.

use super::{Buffers, each_neuron, flush, replica_step};
use crate::layout::{KernelParams, ReplicaParams, StepUniform};
use crate::network::NOT_OUTPUT;

/// Per neuron of every replica, in place: the scaled costate update
/// `p_i <- p_i + tau (s' (c_i p_i - b_i - q mask_i (x_i - z_i)) - theta p_i)`, where
/// `b_i = sum_k w_ki e_hat_k` was summed by the synapse pass (and is zeroed here for the next
/// sum). Input neurons have no costate.
pub fn costate_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, replica, out_slot, x, c, p, b: back, targets, masks, sign, .. } = b;
    let x_in = &x[src];
    let n = k.n as usize;
    let (k, replica, out_slot, c, targets, masks, sign) = (&*k, &*replica, &*out_slot, &*c, &*targets, &*masks, &*sign);
    // One invocation; `pi` is this neuron's step-n costate, the result its step-n+1 costate.
    each_neuron([p, back], |gid, [pi, bi]| {
        let r = gid / n;
        let i = gid % n;
        if i < k.d as usize {
            return [pi, 0.0];
        }
        let t = (s.row as usize * k.replicas as usize + r) * k.n_out as usize;
        let slot = out_slot[i];
        let target = (slot != NOT_OUTPUT).then(|| (targets[t + slot as usize], masks[t + slot as usize]));
        [costate_update(k, &replica_step(k, s, sign[r]), replica[r], pi, bi, x_in[gid], c[gid], target), 0.0]
    });
}

/// A non-input neuron's next costate from its costate, children's messages, state, speed and
/// (for an output) its target and mask.
#[expect(clippy::too_many_arguments, reason = "one neuron's values, inlined into the kernel")]
#[inline]
pub(crate) fn costate_update(
    k: &KernelParams,
    s: &StepUniform,
    rp: ReplicaParams,
    pi: f32,
    bi: f32,
    xi: f32,
    ci: f32,
    target: Option<(f32, f32)>,
) -> f32 {
    let mut err = 0.0f32;
    if let Some((z, mask)) = target {
        err = rp.q * mask * (xi - z);
    }
    let dp = ci * pi - bi - err;
    flush(pi + k.tau * (s.sign_costate * dp - rp.theta * pi))
}
