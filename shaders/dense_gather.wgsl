// Per dense block: one workgroup per replica and chunk of rows; a_i += sum_j w_ij x_j at the
// current step, in the tiles, lanes and tree of dense_step (the tiles' sums added in tile
// order, as dense_reduce adds them), so that a resumed run sums exactly what the
// uninterrupted run summed. CPU twin: src/cpu/dense_gather.rs.

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
    var sum = 0.0;
    for (var tile = 0u; tile < blk.tiles; tile++) {
        let c0 = tile * blk.tile_cols;
        let c1 = min(blk.cols, c0 + blk.tile_cols);
        var acc: array<f32, CHUNK_ROWS>;
        for (var j = c0 + lid; j < c1; j += WG) {
            let xj = x_value(r, blk.col0 + j);
            for (var ii = 0u; ii < rows; ii++) {
                acc[ii] += w[r * k.n_edges + blk.w_off + (first + ii) * blk.cols + j] * xj;
            }
        }
        row_tree(lid, rows, c1 - c0, acc);
        if lid < rows {
            sum += lanes[lid * WG];
        }
        // Every thread has read its row's sum before the next tile overwrites the lanes.
        workgroupBarrier();
    }
    if lid < rows {
        aux[k.a_off + r * k.n + blk.row0 + first + lid] += sum;
    }
}
