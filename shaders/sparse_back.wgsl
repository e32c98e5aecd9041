// Per neuron j of every replica: b_j += sum_k w_kj e_hat_k over its outgoing edges in the
// sparse block (by ascending target), from the step-n weights, before sparse_step updates
// them. Input neurons are skipped. CPU twin: src/cpu/sparse_back.rs.

@compute @workgroup_size(WG)
fn sparse_back(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid >= k.replicas * k.n {
        return;
    }
    let r = gid / k.n;
    let j = gid % k.n;
    if j < k.d {
        return;
    }
    var sum = 0.0;
    for (var m = graph[k.out_ptr_off + j]; m < graph[k.out_ptr_off + j + 1u]; m++) {
        let e = graph[k.out_edge_off + m];
        sum += w[r * k.n_edges + blk.w_off + e] * aux[k.e_hat_off + r * k.n + graph[k.edge_dst_off + e]];
    }
    aux[k.b_off + gid] += sum;
}
