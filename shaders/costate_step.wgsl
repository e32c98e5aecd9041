// Per neuron of every replica, in place: the scaled costate update
// p_i <- p_i + tau (s' (c_i p_i - sum_k w_ki e_hat_k - q mask_i (x_i - z_i)) - theta p_i),
// gathering the children's messages through the by-source edge index.
// CPU twin: src/cpu/costate_step.rs.

@compute @workgroup_size(WG)
fn costate_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid >= k.replicas * k.n {
        return;
    }
    let r = gid / k.n;
    let i = gid % k.n;
    if i < k.d {
        return;
    }
    var back = 0.0;
    for (var m = graph[k.out_ptr_off + i]; m < graph[k.out_ptr_off + i + 1u]; m++) {
        let e = graph[k.out_edge_off + m];
        back += w[r * k.n_edges + e] * aux[k.e_hat_off + r * k.n + graph[k.edge_dst_off + e]];
    }
    let rp = replica_params(r);
    let slot = graph[k.out_slot_off + i];
    var err = 0.0;
    if slot != NOT_OUTPUT {
        let t = (s.row * k.replicas + r) * k.n_out + slot;
        err = rp.q * stream[k.masks_off + t] * (x_in[gid] - stream[k.targets_off + t]);
    }
    let pi = p[gid];
    let dp = aux[k.c_off + gid] * pi - back - err;
    p[gid] = flush(pi + k.tau * (s.sign_costate * dp - rp.theta * pi));
}
