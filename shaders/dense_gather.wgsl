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
    if item < k.replicas * blk.chunks {
        dense_gather_item(blk, item, lid);
    }
}

// Chunk item % chunks of replica item / chunks of block b. Called by every thread of the
// workgroup (it has barriers).
fn dense_gather_item(b: BlockUniform, item: u32, lid: u32) {
    let r = item / b.chunks;
    let chunk = item % b.chunks;
    let first = chunk * CHUNK_ROWS;
    let rows = min(CHUNK_ROWS, b.rows - first);
    var sum = 0.0;
    for (var tile = 0u; tile < b.tiles; tile++) {
        let c0 = tile * b.tile_cols;
        let c1 = min(b.cols, c0 + b.tile_cols);
        var acc: array<f32, CHUNK_ROWS>;
        for (var j = c0 + lid; j < c1; j += WG) {
            let xj = x_value(r, b.col0 + j);
            for (var ii = 0u; ii < rows; ii++) {
                acc[ii] += w[r * k.n_edges + b.w_off + (first + ii) * b.cols + j] * xj;
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
        aux[k.a_off + r * k.n + b.row0 + first + lid] += sum;
    }
}
