// Per dense block, per replica and column j: b_j += sum_c part[c][j], the chunks' partial
// column sums added in chunk order. CPU twin: src/cpu/dense_reduce.rs.

@compute @workgroup_size(WG)
fn dense_reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let gid = invocation_id(wg, nwg, lid);
    if gid >= k.replicas * blk.cols {
        return;
    }
    let r = gid / blk.cols;
    let j = gid % blk.cols;
    var sum = 0.0;
    for (var c = 0u; c < blk.chunks; c++) {
        sum += aux[blk.part_off + (r * blk.chunks + c) * blk.cols + j];
    }
    aux[k.b_off + r * k.n + blk.col0 + j] += sum;
}
