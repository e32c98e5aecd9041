// Per replica and wide row i of the sparse block (fan-in >= WIDE_FAN_IN; the list is in
// `graph` at k.wide_off): one workgroup, thread l taking the row's edges l, l + WG, ... in
// order: pw <- pw + tau (s' (-e_hat_i x_j - r_w w) - theta pw) and w <- w + tau s (-pw / r)
// (when learning) from the step-n values, and its lane of the next pre-activation,
// acc += w_ij' x_j'; a tree over the WG lanes then adds the row's sum into a_i. Consecutive
// threads touch consecutive edges: the loads and stores of w and pw are coalesced. No CPU
// twin of its own: the CPU's sparse_step sums wide rows in these lanes (src/cpu/sparse_step.rs).

@compute @workgroup_size(WG)
fn sparse_wide_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let item = workgroup_index(wg, nwg);
    if item >= k.replicas * k.n_wide {
        return;
    }
    let r = item / k.n_wide;
    let i = graph[k.wide_off + item % k.n_wide];
    let lo = graph[k.row_ptr_off + i];
    let hi = graph[k.row_ptr_off + i + 1u];
    let ei = aux[k.e_hat_off + r * k.n + i];
    let rp = replica_params(r);
    let st = replica_step(s, r);
    var acc: array<f32, CHUNK_ROWS>;
    for (var e = lo + lid; e < hi; e += WG) {
        let j = graph[k.edge_src_off + e];
        let at = r * k.n_edges + blk.w_off + e;
        var w1 = w[at];
        if k.learning != 0u {
            let u = synapse_update(st, rp, w1, pw[at], ei, x_value(r, j));
            w1 = u.x;
            w[at] = u.x;
            pw[at] = u.y;
        }
        acc[0] += w1 * x_next(r, j);
    }
    row_tree(lid, 1u, hi - lo, acc);
    if lid == 0u {
        aux[k.a_off + r * k.n + i] += lanes[0];
    }
}
