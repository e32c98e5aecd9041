//! CPU twin of `shaders/record_step.wgsl`.
#![expect(clippy::needless_range_loop, reason = "mirrors the WGSL kernel")]

use super::Buffers;
use crate::layout::{ReplicaParams, StepUniform, TRACE_FIXED, WORKGROUP_SIZE};

/// One workgroup per replica: sums the state power, the masked squared errors, `|pw|^2` and
/// `|w|^2` of step `n`, and writes the trace row `loss, Lagrangian, Hamiltonian, outputs...`
/// (all scaled by `1/phi`).
///
/// Summation order is the GPU's: lane `l` of `WG` accumulates elements `l, l + WG, ...`,
/// then a tree reduction halves the lanes; so the two paths differ only by FMA contraction.
pub fn record_step(b: &mut Buffers, s: &StepUniform, src: usize) {
    let Buffers { params: k, replica, outputs, h, x, w, pw, targets, masks, trace, .. } = b;
    let x_in = &x[src];
    let (n, ne, n_out, width) = (k.n as usize, k.n_edges as usize, k.n_out as usize, k.trace_width as usize);
    for r in 0..k.replicas as usize {
        let base = (s.record_row as usize * k.replicas as usize + r) * width;
        let tbase = (s.row as usize * k.replicas as usize + r) * n_out;
        record_replica(
            replica[r],
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
    outputs: &[u32],
    h: &[f32],
    x: &[f32],
    w: &[f32],
    pw: &[f32],
    targets: &[f32],
    masks: &[f32],
    trace: &mut [f32],
) {
    const WG: usize = WORKGROUP_SIZE as usize;
    let (n, ne, n_out) = (h.len(), w.len(), outputs.len());
    // acc[l] = (state power, masked squared error, pw^2, w^2)
    let mut acc = [[0.0f32; 4]; WG];
    // Lanes past every array's length stay zero (and add zeros in the tree).
    for (l, a) in acc.iter_mut().enumerate().take(n.max(ne).max(n_out)) {
        let mut i = l;
        while i < n {
            a[0] += h[i];
            i += WG;
        }
        let mut o = l;
        while o < n_out {
            let xo = x[outputs[o] as usize];
            let dv = xo - targets[o];
            a[1] += masks[o] * dv * dv;
            trace[TRACE_FIXED + o] = xo;
            o += WG;
        }
    }
    // |pw|^2 and |w|^2 in the same lanes, one pass over the arrays in order (lane l still adds
    // elements l, l + WG, ... in turn): the loop over a chunk's lanes vectorises, and each
    // cache line is read once.
    let (mut pw2, mut w2) = ([0.0f32; WG], [0.0f32; WG]);
    for (pw, w) in pw.chunks(WG).zip(w.chunks(WG)) {
        for l in 0..pw.len() {
            pw2[l] += pw[l] * pw[l];
            w2[l] += w[l] * w[l];
        }
    }
    for (l, a) in acc.iter_mut().enumerate().take(ne.min(WG)) {
        (a[2], a[3]) = (pw2[l], w2[l]);
    }
    // Lanes at and past `used` hold +0 (a lane that added a value holds `0 + v`, never -0),
    // and adding +0 changes nothing: the tree over `used` lanes is the tree over all `WG`.
    let used = n.max(ne).max(n_out).clamp(1, WG).next_power_of_two();
    let mut stride = used / 2;
    while stride > 0 {
        for l in 0..stride {
            for m in 0..4 {
                acc[l][m] += acc[l + stride][m];
            }
        }
        stride /= 2;
    }
    let loss = 0.5 * rp.q * acc[0][1];
    let kinetic = 0.5 * acc[0][2] / rp.r;
    let potential = 0.5 * rp.r_w * acc[0][3];
    trace[0] = loss;
    trace[1] = kinetic + potential + loss;
    trace[2] = acc[0][0] - kinetic + potential + loss;
}
