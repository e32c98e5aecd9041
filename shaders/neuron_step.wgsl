// Per neuron of every replica, from the pre-activation a_i the synapse pass summed (zeroed
// here for the next sum): the Euler state update into the other ping-pong buffer, the
// message e_hat_i = c_i sigma'(a_i) p_i and the state power h_i = p_i c_i (sigma(a_i) - x_i).
// Input neurons copy their input. A non-finite x, p or a is flagged for the replica
// (flag_nonfinite). CPU twin: src/cpu/neuron_step.rs.

@compute @workgroup_size(WG)
fn neuron_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid < k.replicas * k.n {
        neuron_item(gid);
    }
}

// Neuron gid % n of replica gid / n (also small_net's).
fn neuron_item(gid: u32) {
    let r = gid / k.n;
    let i = gid % k.n;
    let a = aux[k.a_off + gid];
    aux[k.a_off + gid] = 0.0;
    if i < k.d {
        x_out[gid] = x_value(r, i);
        aux[k.e_hat_off + gid] = 0.0;
        aux[k.h_off + gid] = 0.0;
        return;
    }
    flag_nonfinite(r, nonfinite_code(s.row, x_in[gid], p[gid], a));
    let u = neuron_update(replica_step(s, r).sign_state, a, x_in[gid], aux[k.c_off + gid], p[gid]);
    x_out[gid] = u.x;
    aux[k.e_hat_off + gid] = u.y;
    aux[k.h_off + gid] = u.z;
}
