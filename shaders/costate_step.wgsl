// Per neuron of every replica, in place: the scaled costate update
// p_i <- p_i + tau (s' (c_i p_i - b_i - q mask_i (x_i - z_i)) - theta p_i), where
// b_i = sum_k w_ki e_hat_k was summed by the synapse pass; b_i is zeroed for the next sum.
// CPU twin: src/cpu/costate_step.rs.

@compute @workgroup_size(WG)
fn costate_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid < k.replicas * k.n {
        costate_item(gid);
    }
}

// Neuron gid % n of replica gid / n (also small_net's).
fn costate_item(gid: u32) {
    let r = gid / k.n;
    let i = gid % k.n;
    let back = aux[k.b_off + gid];
    aux[k.b_off + gid] = 0.0;
    if i < k.d {
        return;
    }
    let rp = replica_params(r);
    let slot = graph[k.out_slot_off + i];
    var err = 0.0;
    if slot != NOT_OUTPUT {
        let t = (s.row * k.replicas + r) * k.n_out + slot;
        err = rp.q * stream[k.masks_off + t] * (x_in[gid] - stream[k.targets_off + t]);
    }
    p[gid] = costate_update(replica_step(s, r).sign_costate, rp, p[gid], back, aux[k.c_off + gid], err);
}
