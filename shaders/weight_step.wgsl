// Per synapse j -> i of every replica, in place:
// pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw) and w <- w + tau s (-pw / r),
// both from the step-n values. CPU twin: src/cpu/weight_step.rs.

@compute @workgroup_size(WG)
fn weight_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid >= k.replicas * k.n_edges {
        return;
    }
    let r = gid / k.n_edges;
    let e = gid % k.n_edges;
    let xj = x_value(r, graph[k.edge_src_off + e]);
    let ei = aux[k.e_hat_off + r * k.n + graph[k.edge_dst_off + e]];
    let rp = replica_params(r);
    let w0 = w[gid];
    let pw0 = pw[gid];
    let dpw = -ei * xj - rp.r_w * w0;
    let dw = -pw0 / rp.r;
    w[gid] = flush(w0 + k.tau * (s.sign_state * dw));
    pw[gid] = flush(pw0 + k.tau * (s.sign_costate * dpw - rp.theta * pw0));
}
