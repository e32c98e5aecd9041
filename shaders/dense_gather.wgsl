// Per dense block: one workgroup per replica and chunk of rows; a_i += sum_j w_ij x_j at the
// current step, in the lanes and tree of dense_step, so that a resumed run sums exactly what
// the uninterrupted run summed. CPU twin: src/cpu/dense_gather.rs.

@compute @workgroup_size(WG)
fn dense_gather(
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
    var acc: array<f32, CHUNK_ROWS>;
    for (var j = lid; j < blk.cols; j += WG) {
        let xj = x_value(r, blk.col0 + j);
        for (var ii = 0u; ii < rows; ii++) {
            acc[ii] += w[r * k.n_edges + blk.w_off + (first + ii) * blk.cols + j] * xj;
        }
    }
    add_row_sums(lid, r, first, rows, acc);
}
