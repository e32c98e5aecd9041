//! CPU twin of `shaders/state_norm.wgsl`.

use rayon::prelude::*;

use super::{Buffers, PARALLEL_FROM, full_tree};
use crate::layout::{KernelParams, NORM_CHUNK, WORKGROUP_SIZE};

const WG: usize = WORKGROUP_SIZE as usize;

/// Under `hsf-ball`, first in every step: per replica, the squared norm of its step-`n`
/// state, `|x|^2 + |p|^2 + |w|^2 + |pw|^2` over every value the state stores (`x[n % 2]` and
/// `p` of all neurons, inputs included; `w` and `pw` of all synapses), and from it the sign
/// of every equation of the step, `+1` while the norm is at most `R^2`
/// ([`KernelParams::radius2`]) and `-1` otherwise, into [`Buffers::sign`].
///
/// Each array is summed by chunks of [`NORM_CHUNK`] values in the GPU's order (value `m` of a
/// chunk into lane `m % WG`, then the tree over the lanes), the chunks' sums added in order
/// from 0; the norm is `(x + p) + (w + pw)`. A large state's chunks are summed over threads
/// and then added in that order, so the sign is the same for any thread count.
pub fn state_norm(b: &mut Buffers, src: usize) {
    let Buffers { params: k, x, p, w, pw, sign, .. } = b;
    let (n, ne, replicas) = (k.n as usize, k.n_edges as usize, k.replicas as usize);
    let x = &x[src];
    let arrays = |r: usize| -> [&[f32]; 4] {
        [&x[r * n..(r + 1) * n], &p[r * n..(r + 1) * n], &w[r * ne..(r + 1) * ne], &pw[r * ne..(r + 1) * ne]]
    };
    if replicas * 2 * (n + ne) < PARALLEL_FROM {
        for (r, sign) in sign.iter_mut().enumerate() {
            *sign = ball_sign(k, arrays(r));
        }
        return;
    }
    // One work item per chunk, listed in order: (replica, array, values).
    let chunks: Vec<(usize, usize, &[f32])> = (0..replicas)
        .flat_map(|r| arrays(r).into_iter().enumerate().map(move |(m, v)| (r, m, v)))
        .flat_map(|(r, m, v)| v.chunks(NORM_CHUNK as usize).map(move |c| (r, m, c)))
        .collect();
    let sums: Vec<f32> = chunks.par_iter().map(|&(_, _, c)| chunk_squares(c)).collect();
    let mut per_replica = vec![[0.0f32; 4]; replicas];
    for (&(r, m, _), s) in chunks.iter().zip(sums) {
        per_replica[r][m] += s;
    }
    for (sign, sums) in sign.iter_mut().zip(per_replica) {
        *sign = sign_of(k, sums);
    }
}

/// `hsf-ball`'s sign for one replica's state `[x, p, w, pw]`: each array's chunks of
/// [`NORM_CHUNK`] values summed in order from 0 ([`chunk_squares`]), then
/// `(x + p) + (w + pw)` compared with `R^2`. Also the `population` path's `state_norm`.
pub(crate) fn ball_sign(k: &KernelParams, arrays: [&[f32]; 4]) -> f32 {
    sign_of(k, arrays.map(|v| v.chunks(NORM_CHUNK as usize).fold(0.0f32, |s, c| s + chunk_squares(c))))
}

/// `+1` while the squared norm `(x + p) + (w + pw)` of the arrays' sums is at most
/// [`KernelParams::radius2`], else `-1` (also for a NaN norm).
fn sign_of(k: &KernelParams, [x, p, w, pw]: [f32; 4]) -> f32 {
    if (x + p) + (w + pw) <= k.radius2 { 1.0 } else { -1.0 }
}

/// A chunk's sum of squares as a workgroup sums it: value `m` into lane `m % WG` in order,
/// then the tree over the lanes.
fn chunk_squares(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; WG];
    for c in v.chunks(WG) {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    full_tree(&mut acc);
    acc[0]
}
