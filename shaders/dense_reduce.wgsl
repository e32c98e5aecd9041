// Per block, per replica and column j: b_j += sum_c part[c][j], the chunks' partial column
// sums added in chunk order; then, for a dense block, per replica and row i:
// a_i += sum_t row_part[t][i], the tiles' row sums added in tile order. CPU twin:
// src/cpu/dense_reduce.rs (columns; the CPU's dense_step adds the rows' tile sums itself).

// aux[at] + aux[at + stride] + ... (count terms), in order, from 0.
fn sum_parts(at: u32, count: u32, stride: u32) -> f32 {
    var sum = 0.0;
    for (var c = 0u; c < count; c++) {
        sum += aux[at + c * stride];
    }
    return sum;
}

@compute @workgroup_size(WG)
fn dense_reduce(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    dense_reduce_item(blk, invocation_id(wg, nwg, lid));
}

// Invocation gid of block b's reduction: columns [replica][col], then rows [replica][row]
// (also small_net's).
fn dense_reduce_item(b: BlockUniform, gid: u32) {
    let columns = k.replicas * b.cols;
    if gid < columns {
        let r = gid / b.cols;
        let j = gid % b.cols;
        let sum = sum_parts(b.part_off + r * b.chunks * b.cols + j, b.chunks, b.cols);
        aux[k.b_off + r * k.n + b.col0 + j] += sum;
        return;
    }
    let g = gid - columns;
    if b.tiles == 0u || g >= k.replicas * b.rows {
        return;
    }
    let r = g / b.rows;
    let i = g % b.rows;
    let sum = sum_parts(b.row_part_off + r * b.tiles * b.rows + i, b.tiles, b.rows);
    aux[k.a_off + r * k.n + b.row0 + i] += sum;
}
