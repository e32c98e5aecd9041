// Per target neuron i of the sparse block and replica with fan-in below WIDE_FAN_IN (wider
// rows are sparse_wide_step's), over its incoming edges in order:
// pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw) and w <- w + tau s (-pw / r) (when
// learning) from the step-n values, and the next pre-activation a_i += sum_j w_ij' x_j'.
// CPU twin: src/cpu/sparse_step.rs.

@compute @workgroup_size(WG)
fn sparse_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid >= k.replicas * blk.rows {
        return;
    }
    let r = gid / blk.rows;
    let i = blk.row0 + gid % blk.rows;
    let lo = graph[k.row_ptr_off + i];
    let hi = graph[k.row_ptr_off + i + 1u];
    if hi - lo >= WIDE_FAN_IN {
        return; // sparse_wide_step's
    }
    let ei = aux[k.e_hat_off + r * k.n + i];
    let rp = replica_params(r);
    let st = replica_step(s, r);
    var acc = 0.0;
    for (var e = lo; e < hi; e++) {
        let j = graph[k.edge_src_off + e];
        let at = r * k.n_edges + blk.w_off + e;
        let w0 = w[at];
        var w1 = w0;
        if k.learning != 0u {
            let u = synapse_update(st, rp, w0, pw[at], ei, x_value(r, j));
            w1 = u.x;
            w[at] = u.x;
            pw[at] = u.y;
        }
        acc += w1 * x_next(r, j);
    }
    aux[k.a_off + r * k.n + i] += acc;
}
