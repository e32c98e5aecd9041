// Per target neuron i of the sparse block and replica: a_i += sum_j w_ij x_j at the current
// step, in the order of sparse_step's sum (edge order) or sparse_wide_step's (lanes, tree).
// CPU twin: src/cpu/sparse_gather.rs.

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
    let lo = graph[k.row_ptr_off + i];
    let hi = graph[k.row_ptr_off + i + 1u];
    // Narrow rows: one sum in edge order. Wide rows: WG lanes (edge m into lane m % WG), then
    // the tree, as sparse_wide_step sums them.
    let wide = hi - lo >= WIDE_FAN_IN;
    var acc: array<f32, WG>;
    for (var e = lo; e < hi; e++) {
        let lane = select(0u, (e - lo) % WG, wide);
        acc[lane] += w[r * k.n_edges + blk.w_off + e] * x_value(r, graph[k.edge_src_off + e]);
    }
    if wide {
        for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
            for (var l = 0u; l < stride; l++) {
                acc[l] += acc[l + stride];
            }
        }
    }
    aux[k.a_off + r * k.n + i] += acc[0];
}
