// Per target neuron i of the sparse block and replica: a_i += sum_j w_ij x_j at the current
// step, in edge order (the order of sparse_step's sum). CPU twin: src/cpu/sparse_gather.rs.

@compute @workgroup_size(WG)
fn sparse_gather(
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
    var acc = 0.0;
    for (var e = graph[k.row_ptr_off + i]; e < graph[k.row_ptr_off + i + 1u]; e++) {
        acc += w[r * k.n_edges + blk.w_off + e] * x_value(r, graph[k.edge_src_off + e]);
    }
    aux[k.a_off + r * k.n + i] += acc;
}
