//! CPU twin of `shaders/sparse_step.wgsl`.

use super::{Buffers, replica_step, sparse_row_sum, sparse_rows, synapse_update};
use crate::layout::{BlockUniform, StepUniform};

/// Per target neuron `i` of the sparse block and replica, over its incoming edges in order:
/// the partial column sum of the row's chunk `part_j += w_ij e_hat_i` (rows in order),
/// `pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw)` and `w <- w + tau s (-pw / r)`
/// (when learning) from the step-`n` values, and the next step's pre-activation
/// `a_i += sum_j w_ij' x_j'` summed in edge order, or, for a row of at least `WIDE_FAN_IN`
/// edges, in the lanes and tree of the GPU's `sparse_wide_step` (edge `m` into lane
/// `m % WG`), which updates such rows on the GPU.
///
/// The partial sums are the GPU's `sparse_back` (which gathers them by source before the
/// GPU's `sparse_step` runs): for each source, its edges into a chunk by ascending target.
pub fn sparse_step(b: &mut Buffers, s: &StepUniform, src: usize, blk: &BlockUniform) {
    let (k, tau, learning) = (b.params, b.params.tau, b.params.learning != 0);
    let n = k.n as usize;
    // Every neuron's value at this step and the next, inputs included, `[replica][n]`: one
    // load per edge for each, with no branch on input neurons.
    let (cur, next) = b.columns(blk, src, s.row, Some(s.row + 1));
    let next = next.expect("next-step values");
    let (edge_src, e_hat, replica, sign) = (&b.edge_src, &b.e_hat, &b.replica, &b.sign);
    let part = Some(&mut b.part[..]);
    sparse_rows(&b.row_ptr, blk, &k, &mut b.w, Some(&mut b.pw), &mut b.a, part, |r, i, lo, w, pw, ai, part| {
        let (pw, part) = (pw.expect("costates"), part.expect("partials"));
        let ei = e_hat[r * n + i];
        let (rp, s) = (replica[r], &replica_step(&k, s, sign[r]));
        let (cur, next) = (&cur[r * n..(r + 1) * n], &next[r * n..(r + 1) * n]);
        // One edge: its partial, its update, and its term of the next pre-activation.
        *ai += sparse_row_sum(w.len(), |m| {
            let j = edge_src[lo + m] as usize;
            let w0 = w[m];
            part[j] += w0 * ei;
            let mut w1 = w0;
            if learning {
                (w1, pw[m]) = synapse_update(tau, s, rp, w0, pw[m], ei, cur[j]);
                w[m] = w1;
            }
            w1 * next[j]
        });
    });
}
