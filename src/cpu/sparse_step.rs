//! CPU twin of `shaders/sparse_step.wgsl`.

use super::{Buffers, flush, lane_sum, sparse_rows};
use crate::layout::{BlockUniform, StepUniform, WIDE_FAN_IN, WORKGROUP_SIZE};

const WG: usize = WORKGROUP_SIZE as usize;

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
    let (edge_src, e_hat, replica) = (&b.edge_src, &b.e_hat, &b.replica);
    let part = Some(&mut b.part[..]);
    sparse_rows(&b.row_ptr, blk, &k, &mut b.w, Some(&mut b.pw), &mut b.a, part, |r, i, lo, w, pw, ai, part| {
        let (pw, part) = (pw.expect("costates"), part.expect("partials"));
        let ei = e_hat[r * n + i];
        let rp = replica[r];
        let (cur, next) = (&cur[r * n..(r + 1) * n], &next[r * n..(r + 1) * n]);
        // One edge: its partial, its update, and its term of the next pre-activation.
        let mut edge = |m: usize, w: &mut f32, pw: &mut f32| -> f32 {
            let j = edge_src[lo + m] as usize;
            let w0 = *w;
            part[j] += w0 * ei;
            let mut w1 = w0;
            if learning {
                let xj = cur[j];
                let pw0 = *pw;
                let dpw = -ei * xj - rp.r_w * w0;
                let dw = -pw0 / rp.r;
                w1 = flush(w0 + tau * (s.sign_state * dw));
                *w = w1;
                *pw = flush(pw0 + tau * (s.sign_costate * dpw - rp.theta * pw0));
            }
            w1 * next[j]
        };
        if w.len() >= WIDE_FAN_IN as usize {
            // sparse_wide_step's lanes: edge m into lane m % WG, then the tree.
            let mut acc = [0.0f32; WG];
            for (m, (w, pw)) in w.iter_mut().zip(pw.iter_mut()).enumerate() {
                acc[m % WG] += edge(m, w, pw);
            }
            *ai += lane_sum(acc, WG);
        } else {
            let mut acc = 0.0f32;
            for (m, (w, pw)) in w.iter_mut().zip(pw.iter_mut()).enumerate() {
                acc += edge(m, w, pw);
            }
            *ai += acc;
        }
    });
}
