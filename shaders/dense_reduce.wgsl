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
    let gid = invocation_id(wg, nwg, lid);
    let columns = k.replicas * blk.cols;
    if gid < columns {
        let r = gid / blk.cols;
        let j = gid % blk.cols;
        let sum = sum_parts(blk.part_off + r * blk.chunks * blk.cols + j, blk.chunks, blk.cols);
        aux[k.b_off + r * k.n + blk.col0 + j] += sum;
        return;
    }
    let g = gid - columns;
    if blk.tiles == 0u || g >= k.replicas * blk.rows {
        return;
    }
    let r = g / blk.rows;
    let i = g % blk.rows;
    let sum = sum_parts(blk.row_part_off + r * blk.tiles * blk.rows + i, blk.tiles, blk.rows);
    aux[k.a_off + r * k.n + blk.row0 + i] += sum;
}
