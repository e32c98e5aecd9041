// Declarations shared by every kernel. The host prepends a generated prelude with the
// constants WG, NO_RECORD, NOT_OUTPUT, TRACE_FIXED, NORM_CHUNK and FLUSH_BELOW
// (src/gpu/kernels.rs), so each is defined once, in Rust (src/layout.rs). The CPU twins live
// in src/cpu/.

// Mirrors layout::KernelParams (checked by tests/shaders.rs).
struct KernelParams {
    n: u32,
    d: u32,
    n_edges: u32,
    replicas: u32,
    n_out: u32,
    activation: u32,
    trace_width: u32,
    learning: u32,
    row_ptr_off: u32,
    edge_src_off: u32,
    edge_dst_off: u32,
    out_ptr_off: u32,
    out_edge_off: u32,
    outputs_off: u32,
    out_slot_off: u32,
    c_off: u32,
    e_hat_off: u32,
    h_off: u32,
    a_off: u32,
    b_off: u32,
    trace_off: u32,
    targets_off: u32,
    masks_off: u32,
    tau: f32,
    steps_off: u32,
    wide_off: u32,
    n_wide: u32,
    blocks_off: u32,
    n_blocks: u32,
    flags_off: u32,
    sign_off: u32,
    ball: u32,
    radius2: f32,
    _pad1: u32,
    _pad2: u32,
    _pad3: u32,
}

// Mirrors layout::BlockUniform; bound at a dynamic offset, one entry per block of synapses.
struct BlockUniform {
    row0: u32,
    rows: u32,
    col0: u32,
    cols: u32,
    w_off: u32,
    part_off: u32,
    chunks: u32,
    tiles: u32,
    tile_cols: u32,
    row_part_off: u32,
    _pad0: u32,
    _pad1: u32,
}

// Mirrors layout::StepUniform; bound at a dynamic offset, one entry per step of the block.
struct StepUniform {
    row: u32,
    record_row: u32,
    sign_state: f32,
    sign_costate: f32,
}

// Mirrors layout::ReplicaParams; stored at the start of `aux`.
struct ReplicaParams {
    q: f32,
    r: f32,
    r_w: f32,
    theta: f32,
}

@group(0) @binding(0) var<uniform> k: KernelParams;
@group(0) @binding(1) var<uniform> s: StepUniform;
@group(0) @binding(2) var<storage, read> graph: array<u32>;
@group(0) @binding(3) var<storage, read_write> p: array<f32>;
@group(0) @binding(4) var<storage, read_write> w: array<f32>;
@group(0) @binding(5) var<storage, read_write> pw: array<f32>;
@group(0) @binding(6) var<storage, read_write> aux: array<f32>;
@group(0) @binding(7) var<storage, read> stream: array<f32>;
@group(0) @binding(8) var<uniform> blk: BlockUniform;
// The ping-pong pair: step n reads x[n % 2] and writes x[(n + 1) % 2].
@group(1) @binding(0) var<storage, read> x_in: array<f32>;
@group(1) @binding(1) var<storage, read_write> x_out: array<f32>;

// Dispatches beyond 65535 workgroups are folded into the y dimension.
fn invocation_id(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.x + wg.y * nwg.x) * WG + lid;
}

// The value of neuron j of replica r at this step: the block's input for input neurons,
// else the current state (cpu::x_value).
fn x_value(r: u32, j: u32) -> f32 {
    if j < k.d {
        return stream[(s.row * k.replicas + r) * k.d + j];
    }
    return x_in[r * k.n + j];
}

// The value of neuron j of replica r at the next step: the next row's input for input
// neurons, else the state neuron_step wrote (cpu::x_value at row + 1).
fn x_next(r: u32, j: u32) -> f32 {
    if j < k.d {
        return stream[((s.row + 1u) * k.replicas + r) * k.d + j];
    }
    return x_out[r * k.n + j];
}

// The index of this workgroup in a dispatch folded beyond 65535 workgroups.
fn workgroup_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

fn replica_params(r: u32) -> ReplicaParams {
    return ReplicaParams(aux[4u * r], aux[4u * r + 1u], aux[4u * r + 2u], aux[4u * r + 3u]);
}

// The step `st` as replica r runs it: under hsf-ball (k.ball) both signs are the replica's
// own, chosen by state_norm from its state at the start of the step; else the step's
// (cpu::replica_step).
fn replica_step(st: StepUniform, r: u32) -> StepUniform {
    if k.ball != 0u {
        let sign = aux[k.sign_off + r];
        return StepUniform(st.row, st.record_row, sign, sign);
    }
    return st;
}

// Stored state values below FLUSH_BELOW in magnitude become 0 (cpu::flush).
fn flush(v: f32) -> f32 {
    return select(v, 0.0, abs(v) < FLUSH_BELOW);
}

// (sigma(a), sigma'(a)) in the closed forms of src/activation.rs.
fn activate(code: u32, a: f32) -> vec2<f32> {
    if code == 0u {
        let e = exp(-2.0 * abs(a));
        let t = (1.0 - e) / (1.0 + e);
        let s = select(t, -t, a < 0.0);
        return vec2<f32>(s, 1.0 - s * s);
    }
    if code == 1u {
        let s = 1.0 / (1.0 + exp(-a));
        return vec2<f32>(s, s * (1.0 - s));
    }
    return vec2<f32>(a, 1.0);
}

// A non-input neuron's (x_next, e_hat, h) from its pre-activation, state, speed and costate
// (cpu::neuron_step::neuron_update).
fn neuron_update(sign_state: f32, a: f32, xi: f32, ci: f32, pi: f32) -> vec3<f32> {
    let act = activate(k.activation, a);
    let dx = ci * (act.x - xi);
    return vec3<f32>(flush(xi + k.tau * (sign_state * dx)), ci * act.y * pi, pi * dx);
}

// One synapse's (w, pw) at step n + 1 from its step-n values, its target's message and its
// source's state (cpu::dense_step::row_pass).
fn synapse_update(st: StepUniform, rp: ReplicaParams, w0: f32, pw0: f32, ei: f32, xj: f32) -> vec2<f32> {
    let dpw = -ei * xj - rp.r_w * w0;
    let dw = -pw0 / rp.r;
    return vec2<f32>(
        flush(w0 + k.tau * (st.sign_state * dw)),
        flush(pw0 + k.tau * (st.sign_costate * dpw - rp.theta * pw0)),
    );
}

// A non-input neuron's next costate from its costate, children's messages, speed and output
// error q mask (x - z) (cpu::costate_step::costate_update).
fn costate_update(sign_costate: f32, rp: ReplicaParams, pi: f32, bi: f32, ci: f32, err: f32) -> f32 {
    let dp = ci * pi - bi - err;
    return flush(pi + k.tau * (sign_costate * dp - rp.theta * pi));
}

// Lanes of a row sum over `cols` columns: the smallest power of two >= min(cols, WG)
// (layout::lanes).
fn lanes_of(cols: u32) -> u32 {
    let c = clamp(cols, 1u, WG);
    return select(1u << (32u - countLeadingZeros(c - 1u)), 1u, c == 1u);
}

// The lanes of a dense tile's row sums: thread l's partial sum of each of its chunk's rows.
var<workgroup> lanes: array<f32, CHUNK_ROWS * WG>;

// The row sums of a tile of `cols` columns: thread `lid` holds lane `lid` of every row in
// `acc`; a tree halves the tile's lanes (lane l adds lane l + stride, stride = lanes/2, ...,
// 1), as cpu::lane_sum does. Row ii's sum is left in lanes[ii * WG]. Called by every thread
// of the workgroup (it has barriers; the last one makes the sums visible to all).
fn row_tree(lid: u32, rows: u32, cols: u32, acc: array<f32, CHUNK_ROWS>) {
    for (var ii = 0u; ii < CHUNK_ROWS; ii++) {
        lanes[ii * WG + lid] = acc[ii];
    }
    workgroupBarrier();
    for (var stride = lanes_of(cols) / 2u; stride > 0u; stride /= 2u) {
        if lid < stride {
            for (var ii = 0u; ii < rows; ii++) {
                lanes[ii * WG + lid] += lanes[ii * WG + lid + stride];
            }
        }
        workgroupBarrier();
    }
}

// Whether `v` is finite (neither infinite nor NaN), read from its bits so that no compiler
// assumption about NaN can remove the test.
fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

// The code of a non-finite value: row * 8 + quantity * 2 + nan + 1.
fn nonfinite_of(row: u32, quantity: u32, v: f32) -> u32 {
    return row * 8u + quantity * 2u + select(0u, 1u, (bitcast<u32>(v) & 0x007fffffu) != 0u) + 1u;
}

// 0 when x, p and a are finite, else the code of the first that is not (x, p, a):
// layout::nonfinite_code.
fn nonfinite_code(row: u32, x: f32, p: f32, a: f32) -> u32 {
    if !is_finite(x) {
        return nonfinite_of(row, 0u, x);
    }
    if !is_finite(p) {
        return nonfinite_of(row, 1u, p);
    }
    if !is_finite(a) {
        return nonfinite_of(row, 2u, a);
    }
    return 0u;
}

// Keeps replica r's first non-zero code of the block (steps run in order; neurons of one
// step that race write codes of the same row).
fn flag_nonfinite(r: u32, code: u32) {
    if code != 0u && aux[k.flags_off + r] == 0.0 {
        aux[k.flags_off + r] = f32(code);
    }
}
