// Per dense block: one workgroup per replica and chunk of CHUNK_ROWS rows; the one pass over
// the synapses. Thread l takes columns l, l + WG, ... in order; for each, over the chunk's
// rows in order, from the step-n w and pw: the partial column sum part_j += w_ij e_hat_i,
// the updates pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw) and w <- w + tau s (-pw / r)
// (when learning), and its lane of the next pre-activation, acc_i += w_ij' x_j'. A tree over
// the lanes then adds each row's sum into a_i. CPU twin: src/cpu/dense_step.rs.

@compute @workgroup_size(WG)
fn dense_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = workgroup_index(wg, nwg);
    if item >= k.replicas * blk.chunks {
        return;
    }
    let r = item / blk.chunks;
    let chunk = item % blk.chunks;
    let first = chunk * CHUNK_ROWS;
    let rows = min(CHUNK_ROWS, blk.rows - first);
    let rp = replica_params(r);
    var acc: array<f32, CHUNK_ROWS>;
    for (var j = lid; j < blk.cols; j += WG) {
        let xj = x_value(r, blk.col0 + j);
        let xn = x_next(r, blk.col0 + j);
        var part = 0.0;
        for (var ii = 0u; ii < rows; ii++) {
            let i = blk.row0 + first + ii;
            let ei = aux[k.e_hat_off + r * k.n + i];
            let at = r * k.n_edges + blk.w_off + (first + ii) * blk.cols + j;
            let w0 = w[at];
            let pw0 = pw[at];
            part += w0 * ei;
            var w1 = w0;
            if k.learning != 0u {
                let dpw = -ei * xj - rp.r_w * w0;
                let dw = -pw0 / rp.r;
                w1 = flush(w0 + k.tau * (s.sign_state * dw));
                w[at] = w1;
                pw[at] = flush(pw0 + k.tau * (s.sign_costate * dpw - rp.theta * pw0));
            }
            acc[ii] += w1 * xn;
        }
        aux[blk.part_off + item * blk.cols + j] = part;
    }
    add_row_sums(lid, r, first, rows, acc);
}
