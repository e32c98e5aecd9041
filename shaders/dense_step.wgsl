// Per dense block: one workgroup per replica and tile of CHUNK_ROWS rows x tile_cols
// columns; the one pass over the synapses. Thread l takes the tile's columns l, l + WG, ...
// in order; for each, over the tile's rows in order, from the step-n w and pw: the partial
// column sum part_j += w_ij e_hat_i, the updates pw <- pw + tau (s' (-e_hat_i x_j - r_w w) -
// theta pw) and w <- w + tau s (-pw / r) (when learning), and its lane of the next
// pre-activation, acc_i += w_ij' x_j'. A tree over the lanes then gives the tile's row sums,
// which dense_reduce adds into a_i in tile order. Consecutive threads touch consecutive
// columns of a row: every load and store of w and pw is coalesced. CPU twin:
// src/cpu/dense_step.rs.

@compute @workgroup_size(WG)
fn dense_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = workgroup_index(wg, nwg);
    if item < k.replicas * blk.chunks * blk.tiles {
        dense_step_item(blk, item, lid);
    }
}

// Tile item % (chunks x tiles) of replica item / (chunks x tiles) of block b (also
// small_net's). Called by every thread of the workgroup (it has barriers).
fn dense_step_item(b: BlockUniform, item: u32, lid: u32) {
    let per_replica = b.chunks * b.tiles;
    let r = item / per_replica;
    let chunk = (item % per_replica) / b.tiles;
    let tile = item % b.tiles;
    let first = chunk * CHUNK_ROWS;
    let rows = min(CHUNK_ROWS, b.rows - first);
    let c0 = tile * b.tile_cols;
    let c1 = min(b.cols, c0 + b.tile_cols);
    let rp = replica_params(r);
    let st = replica_step(s, r);
    // The rows' messages, read once (the same address for every thread: a broadcast).
    var e: array<f32, CHUNK_ROWS>;
    for (var ii = 0u; ii < rows; ii++) {
        e[ii] = aux[k.e_hat_off + r * k.n + b.row0 + first + ii];
    }
    var acc: array<f32, CHUNK_ROWS>;
    for (var j = c0 + lid; j < c1; j += WG) {
        let xj = x_value(r, b.col0 + j);
        let xn = x_next(r, b.col0 + j);
        var part = 0.0;
        for (var ii = 0u; ii < rows; ii++) {
            let ei = e[ii];
            let at = r * k.n_edges + b.w_off + (first + ii) * b.cols + j;
            let w0 = w[at];
            let pw0 = pw[at];
            part += w0 * ei;
            var w1 = w0;
            if k.learning != 0u {
                let u = synapse_update(st, rp, w0, pw0, ei, xj);
                w1 = u.x;
                w[at] = u.x;
                pw[at] = u.y;
            }
            acc[ii] += w1 * xn;
        }
        aux[b.part_off + (r * b.chunks + chunk) * b.cols + j] = part;
    }
    row_tree(lid, rows, c1 - c0, acc);
    if lid < rows {
        aux[b.row_part_off + (r * b.tiles + tile) * b.rows + first + lid] = lanes[lid * WG];
    }
}
