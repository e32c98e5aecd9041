// Per neuron j of every replica: the children's messages over its outgoing edges in the
// sparse block (by ascending target), from the step-n weights, before sparse_step updates
// them, summed per chunk of SPARSE_CHUNK_ROWS targets into the block's partial column sums
// part[chunk][j] (every chunk written, 0 where j has no child); dense_reduce adds them into
// b_j in chunk order. The CPU's sparse_step computes the same partials in its own pass
// (src/cpu/sparse_step.rs).

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
    let base = blk.part_off + r * blk.chunks * k.n + j;
    var chunk = 0u;
    var sum = 0.0;
    for (var m = graph[k.out_ptr_off + j]; m < graph[k.out_ptr_off + j + 1u]; m++) {
        let e = graph[k.out_edge_off + m];
        let i = graph[k.edge_dst_off + e];
        let c = (i - blk.row0) / SPARSE_CHUNK_ROWS;
        for (; chunk < c; chunk++) {
            aux[base + chunk * k.n] = sum;
            sum = 0.0;
        }
        sum += w[r * k.n_edges + blk.w_off + e] * aux[k.e_hat_off + r * k.n + i];
    }
    for (; chunk < blk.chunks; chunk++) {
        aux[base + chunk * k.n] = sum;
        sum = 0.0;
    }
}
