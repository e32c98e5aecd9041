// A whole small network per invocation: invocation r runs every step of the block for replica
// r (one dense block of at most CHUNK_ROWS rows and WG columns, at most WG neurons), its
// state, costates, weights and sums in private arrays, with the arithmetic of the kernels
// in the order of the step's dispatch list (src/plan.rs): state_norm under hsf-ball (the
// replica's sign of the step, from its private state), dense_gather on the first step after
// a state was set, neuron_step, record_step (recorded steps), dense_step, dense_reduce,
// costate_step. One dispatch per block instead of four or more per step.
// The host appends the network's shape as constants (P_N neurons, P_D inputs, P_E synapses,
// the block's P_ROWS x P_COLS from P_ROW0, P_COL0; P_LANES lanes of a row sum, P_USED lanes
// of the record sums, P_OUT outputs, P_OUTPUTS and P_SLOT; src/gpu/kernels.rs), so every
// loop bound is a constant and the arrays can live in registers. The step table is in
// `stream` at k.steps_off, its header (steps, gather, steps per dispatch, 0). A dispatch
// runs the steps from s.row (the uniform of its first step) on, at most `steps per
// dispatch` of them: the whole block on a GPU; fewer on llvmpipe/lavapipe, which end every
// invocation after 65,535 loop iterations in all. The host binds the ping-pong pair whose
// x_out is the buffer of the dispatch's last step: an odd number of steps starts from
// x_in, an even one from x_out. CPU twin: src/cpu/population.rs.

// Step `i` of the block's step table.
fn table_step(i: u32) -> StepUniform {
    let at = k.steps_off + 4u + 4u * i;
    return StepUniform(bitcast<u32>(stream[at]), bitcast<u32>(stream[at + 1u]), stream[at + 2u], stream[at + 3u]);
}

// Neuron j of replica r at stream row `row`: its input for input neurons, else xs[j].
fn value_at(row: u32, r: u32, j: u32, xs: ptr<function, array<f32, P_N>>) -> f32 {
    if j < P_D {
        return stream[(row * k.replicas + r) * P_D + j];
    }
    return (*xs)[j];
}

// state_norm's sign (shaders/state_norm.wgsl) from the replica's private state: each array is
// one chunk (P_N and P_E are below NORM_CHUNK), lane l takes its values l, l + WG, ... in
// order, and a tree halves the P_USED lanes (lanes past them would hold +0 and change
// nothing); the norm is (x + p) + (w + pw).
fn ball_sign(
    x: ptr<function, array<f32, P_N>>,
    pc: ptr<function, array<f32, P_N>>,
    wl: ptr<function, array<f32, P_E>>,
    pwl: ptr<function, array<f32, P_E>>,
) -> f32 {
    var sums: array<vec4<f32>, P_USED>;
    for (var l = 0u; l < P_USED; l++) {
        var v = vec4<f32>(0.0);
        for (var i = l; i < P_N; i += WG) {
            v.x += (*x)[i] * (*x)[i];
            v.y += (*pc)[i] * (*pc)[i];
        }
        for (var e = l; e < P_E; e += WG) {
            v.z += (*wl)[e] * (*wl)[e];
            v.w += (*pwl)[e] * (*pwl)[e];
        }
        sums[l] = v;
    }
    for (var stride = P_USED / 2u; stride > 0u; stride /= 2u) {
        for (var l = 0u; l < stride; l++) {
            sums[l] += sums[l + stride];
        }
    }
    let t = sums[0];
    return select(-1.0, 1.0, (t.x + t.y) + (t.z + t.w) <= k.radius2);
}

// The tree over a row sum's P_LANES lanes (cpu::lane_sum).
fn lane_tree(acc: ptr<function, array<f32, P_LANES>>) -> f32 {
    for (var stride = P_LANES / 2u; stride > 0u; stride /= 2u) {
        for (var l = 0u; l < stride; l++) {
            (*acc)[l] += (*acc)[l + stride];
        }
    }
    return (*acc)[0];
}

@compute @workgroup_size(WG)
fn population(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = invocation_id(wg, nwg, lid);
    if r >= k.replicas {
        return;
    }
    let first = s.row;
    let last = min(bitcast<u32>(stream[k.steps_off]), first + bitcast<u32>(stream[k.steps_off + 2u]));
    let gather = bitcast<u32>(stream[k.steps_off + 1u]) != 0u;
    let from_in = (last - first) % 2u == 1u;
    let rp = replica_params(r);
    var x: array<f32, P_N>;
    var xo: array<f32, P_N>;
    var pc: array<f32, P_N>;
    var a: array<f32, P_N>;
    var eh: array<f32, P_N>;
    var h: array<f32, P_N>;
    var b: array<f32, P_N>;
    var c: array<f32, P_N>;
    for (var i = 0u; i < P_N; i++) {
        let g = r * P_N + i;
        x[i] = select(x_out[g], x_in[g], from_in);
        pc[i] = p[g];
        a[i] = aux[k.a_off + g];
        eh[i] = aux[k.e_hat_off + g];
        h[i] = aux[k.h_off + g];
        b[i] = aux[k.b_off + g];
        c[i] = aux[k.c_off + g];
    }
    var wl: array<f32, P_E>;
    var pwl: array<f32, P_E>;
    for (var e = 0u; e < P_E; e++) {
        wl[e] = w[r * P_E + e];
        pwl[e] = pw[r * P_E + e];
    }
    var xs: array<f32, P_COLS>;
    var xn: array<f32, P_COLS>;
    var part: array<f32, P_COLS>;
    var flag = 0u;
    for (var st = first; st < last; st++) {
        var s = table_step(st);
        if k.ball != 0u {
            // state_norm
            let sign = ball_sign(&x, &pc, &wl, &pwl);
            s.sign_state = sign;
            s.sign_costate = sign;
        }
        if gather && st == 0u {
            // dense_gather
            for (var i = 0u; i < P_N; i++) {
                a[i] = 0.0;
            }
            for (var ii = 0u; ii < P_ROWS; ii++) {
                var acc: array<f32, P_LANES>;
                for (var j = 0u; j < P_COLS; j++) {
                    acc[j] += wl[ii * P_COLS + j] * value_at(s.row, r, P_COL0 + j, &x);
                }
                a[P_ROW0 + ii] += 0.0 + lane_tree(&acc);
            }
        }
        // neuron_step
        for (var i = 0u; i < P_N; i++) {
            let ai = a[i];
            a[i] = 0.0;
            if i < P_D {
                xo[i] = value_at(s.row, r, i, &x);
                eh[i] = 0.0;
                h[i] = 0.0;
            } else {
                if flag == 0u {
                    flag = nonfinite_code(s.row, x[i], pc[i], ai);
                }
                let u = neuron_update(s.sign_state, ai, x[i], c[i], pc[i]);
                xo[i] = u.x;
                eh[i] = u.y;
                h[i] = u.z;
            }
        }
        // record_step: lane l takes elements l, l + WG, ...; a tree over the P_USED lanes
        // (lanes past them would hold +0 and change nothing).
        if s.record_row != NO_RECORD {
            let base = k.trace_off + (s.record_row * k.replicas + r) * k.trace_width;
            let tbase = (s.row * k.replicas + r) * P_OUT;
            var sums: array<vec4<f32>, P_USED>;
            for (var l = 0u; l < P_USED; l++) {
                var v = vec4<f32>(0.0);
                for (var i = l; i < P_N; i += WG) {
                    v.x += h[i];
                }
                for (var o = l; o < P_OUT; o += WG) {
                    let xv = x[P_OUTPUTS[o]];
                    let dv = xv - stream[k.targets_off + tbase + o];
                    v.y += stream[k.masks_off + tbase + o] * dv * dv;
                    aux[base + TRACE_FIXED + o] = xv;
                }
                for (var e = l; e < P_E; e += WG) {
                    v.z += pwl[e] * pwl[e];
                    v.w += wl[e] * wl[e];
                }
                sums[l] = v;
            }
            for (var stride = P_USED / 2u; stride > 0u; stride /= 2u) {
                for (var l = 0u; l < stride; l++) {
                    sums[l] += sums[l + stride];
                }
            }
            let loss = 0.5 * rp.q * sums[0].y;
            let kinetic = 0.5 * sums[0].z / rp.r;
            let potential = 0.5 * rp.r_w * sums[0].w;
            aux[base] = loss;
            aux[base + 1u] = kinetic + potential + loss;
            aux[base + 2u] = sums[0].x - kinetic + potential + loss;
            aux[base + 3u] = s.sign_state;
        }
        // dense_step
        for (var j = 0u; j < P_COLS; j++) {
            xs[j] = value_at(s.row, r, P_COL0 + j, &x);
            xn[j] = value_at(s.row + 1u, r, P_COL0 + j, &xo);
            part[j] = 0.0;
        }
        for (var ii = 0u; ii < P_ROWS; ii++) {
            let ei = eh[P_ROW0 + ii];
            var acc: array<f32, P_LANES>;
            for (var j = 0u; j < P_COLS; j++) {
                let at = ii * P_COLS + j;
                let w0 = wl[at];
                part[j] += w0 * ei;
                var w1 = w0;
                if k.learning != 0u {
                    let u = synapse_update(s, rp, w0, pwl[at], ei, xs[j]);
                    w1 = u.x;
                    wl[at] = u.x;
                    pwl[at] = u.y;
                }
                acc[j] += w1 * xn[j];
            }
            a[P_ROW0 + ii] += 0.0 + lane_tree(&acc);
        }
        // dense_reduce (one chunk)
        for (var j = 0u; j < P_COLS; j++) {
            b[P_COL0 + j] += 0.0 + part[j];
        }
        // costate_step
        for (var i = P_D; i < P_N; i++) {
            let bi = b[i];
            b[i] = 0.0;
            var err = 0.0;
            let slot = P_SLOT[i];
            if slot != NOT_OUTPUT {
                let t = (s.row * k.replicas + r) * P_OUT + slot;
                err = rp.q * stream[k.masks_off + t] * (x[i] - stream[k.targets_off + t]);
            }
            pc[i] = costate_update(s.sign_costate, rp, pc[i], bi, c[i], err);
        }
        for (var i = 0u; i < P_D; i++) {
            b[i] = 0.0;
        }
        x = xo;
    }
    for (var i = 0u; i < P_N; i++) {
        let g = r * P_N + i;
        x_out[g] = x[i];
        p[g] = pc[i];
        aux[k.a_off + g] = a[i];
        aux[k.e_hat_off + g] = eh[i];
        aux[k.h_off + g] = h[i];
        aux[k.b_off + g] = b[i];
    }
    for (var e = 0u; e < P_E; e++) {
        w[r * P_E + e] = wl[e];
        pw[r * P_E + e] = pwl[e];
    }
    flag_nonfinite(r, flag);
}
