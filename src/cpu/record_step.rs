//! CPU twin of `shaders/record_step.wgsl`.

use super::{Buffers, full_tree, replica_step};
use crate::layout::{ReplicaParams, StepUniform, TRACE_FIXED, WORKGROUP_SIZE};

/// One workgroup per replica: sums the state power, the masked squared errors, `|pw|^2` and
/// `|w|^2` of step `n`, and writes the trace row `loss, Lagrangian, Hamiltonian, sign,
/// outputs...` (the energies scaled by `1/phi`; the sign is the one the replica's state
/// equations take at this step).
///
/// Summation order is the GPU's: lane `l` of `WG` accumulates elements `l, l + WG, ...`,
/// then a tree reduction halves the lanes; so the two paths differ only by FMA contraction.
pub fn record_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, replica, outputs, h, x, w, pw, targets, masks, trace, sign, .. } = b;
    let x_in = &x[src];
    let (n, ne, n_out, width) = (k.n as usize, k.n_edges as usize, k.n_out as usize, k.trace_width as usize);
    for r in 0..k.replicas as usize {
        let base = (s.record_row as usize * k.replicas as usize + r) * width;
        let tbase = (s.row as usize * k.replicas as usize + r) * n_out;
        record_replica(
            replica[r],
            replica_step(k, s, sign[r]).sign_state,
            outputs,
            &h[r * n..(r + 1) * n],
            &x_in[r * n..(r + 1) * n],
            &w[r * ne..(r + 1) * ne],
            &pw[r * ne..(r + 1) * ne],
            &targets[tbase..tbase + n_out],
            &masks[tbase..tbase + n_out],
            &mut trace[base..base + width],
        );
    }
}

/// One replica's trace row, from its own slices (also the fused population path's).
#[expect(clippy::too_many_arguments, reason = "one replica's slices of the kernel's buffers")]
#[inline]
pub(crate) fn record_replica(
    rp: ReplicaParams,
    sign: f32,
    outputs: &[u32],
    h: &[f32],
    x: &[f32],
    w: &[f32],
    pw: &[f32],
    targets: &[f32],
    masks: &[f32],
    trace: &mut [f32],
) {
    // Lanes at and past `used` hold +0 (a lane that added a value holds `0 + v`, never -0),
    // and adding +0 changes nothing: the tree over `used` lanes is the tree over all `WG`.
    // So a small net keeps as few lanes as cover it (8, 16, 32) and skips the others.
    let used = h.len().max(w.len()).max(outputs.len()).clamp(1, WG).next_power_of_two();
    let f = match used {
        ..=8 => record_lanes::<8>,
        16 => record_lanes::<16>,
        32 => record_lanes::<32>,
        _ => record_lanes::<WG>,
    };
    f(rp, outputs, h, x, w, pw, targets, masks, trace);
    trace[3] = sign;
}

const WG: usize = WORKGROUP_SIZE as usize;

/// [`record_replica`] in `L` lanes (`L = WG`, or any power of two covering every array):
/// element `i` of each array goes to lane `i % WG` in order, then a tree halves the lanes.
#[expect(clippy::too_many_arguments, reason = "one replica's slices of the kernel's buffers")]
#[inline]
fn record_lanes<const L: usize>(
    rp: ReplicaParams,
    outputs: &[u32],
    h: &[f32],
    x: &[f32],
    w: &[f32],
    pw: &[f32],
    targets: &[f32],
    masks: &[f32],
    trace: &mut [f32],
) {
    // (state power, masked squared error, pw^2, w^2), lane by lane; each loop reads its
    // arrays once, in order, and the loop over a chunk's lanes vectorises.
    let (mut hs, mut err, mut pw2, mut w2) = ([0.0f32; L], [0.0f32; L], [0.0f32; L], [0.0f32; L]);
    for h in h.chunks(WG) {
        for l in 0..h.len() {
            hs[l % L] += h[l];
        }
    }
    for (o, &out) in outputs.iter().enumerate() {
        let xo = x[out as usize];
        let dv = xo - targets[o];
        err[o % WG % L] += masks[o] * dv * dv;
        trace[TRACE_FIXED + o] = xo;
    }
    for (pw, w) in pw.chunks(WG).zip(w.chunks(WG)) {
        for l in 0..pw.len() {
            pw2[l % L] += pw[l] * pw[l];
            w2[l % L] += w[l] * w[l];
        }
    }
    for acc in [&mut hs, &mut err, &mut pw2, &mut w2] {
        full_tree(acc);
    }
    let loss = 0.5 * rp.q * err[0];
    let kinetic = 0.5 * pw2[0] / rp.r;
    let potential = 0.5 * rp.r_w * w2[0];
    trace[0] = loss;
    trace[1] = kinetic + potential + loss;
    trace[2] = hs[0] - kinetic + potential + loss;
}
