// One workgroup per replica runs one whole step of a network of dense blocks with few tiles
// (plan::SMALL_NET_TILES): the step's dispatch list (src/plan.rs; state_norm first under
// hsf-ball) as loops over each kernel's work items, calling the kernels' own item functions,
// with a barrier wherever the list has a dispatch boundary. One dispatch per step instead of
// four or more. The gathers of the first step after a state is set run before it as their
// own dispatches. CPU twin: the CPU executor's per-step list (src/cpu/mod.rs), which sums in
// the same order.

// Dense block i of the block table in `graph`.
fn table_block(i: u32) -> BlockUniform {
    let at = k.blocks_off + i * BLOCK_WORDS;
    return BlockUniform(
        graph[at],
        graph[at + 1u],
        graph[at + 2u],
        graph[at + 3u],
        graph[at + 4u],
        graph[at + 5u],
        graph[at + 6u],
        graph[at + 7u],
        graph[at + 8u],
        graph[at + 9u],
        0u,
        0u,
    );
}

@compute @workgroup_size(WG)
fn small_net(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = workgroup_index(wg, nwg);
    if r >= k.replicas {
        return;
    }
    // state_norm (hsf-ball): the replica's sign of this step, read by the items below.
    if k.ball != 0u {
        state_norm_item(r, lid);
        storageBarrier();
    }
    // neuron_step
    for (var i = lid; i < k.n; i += WG) {
        neuron_item(r * k.n + i);
    }
    storageBarrier();
    // record_step
    if s.record_row != NO_RECORD {
        record_item(r, lid);
        storageBarrier();
    }
    // dense_step and dense_reduce, block by block
    for (var bi = 0u; bi < k.n_blocks; bi++) {
        let b = table_block(bi);
        let tiles = b.chunks * b.tiles;
        for (var t = 0u; t < tiles; t++) {
            dense_step_item(b, r * tiles + t, lid);
            // The next tile's row_tree overwrites the lanes this one's sums were read from.
            workgroupBarrier();
        }
        storageBarrier();
        for (var g = lid; g < b.cols + b.rows; g += WG) {
            let gid = select(k.replicas * b.cols + r * b.rows + (g - b.cols), r * b.cols + g, g < b.cols);
            dense_reduce_item(b, gid);
        }
        storageBarrier();
    }
    // costate_step
    for (var i = lid; i < k.n; i += WG) {
        costate_item(r * k.n + i);
    }
}
