// One workgroup per replica: sums the state power, the masked squared errors, |pw|^2 and
// |w|^2 of step n, and writes the trace row (loss, Lagrangian, Hamiltonian, the sign of the
// replica's state equations, outputs...), the energies scaled by 1/phi. Lane l accumulates
// elements l, l + WG, ..., then a tree reduction halves the lanes; the CPU twin
// (src/cpu/record_step.rs) sums in exactly this order.

var<workgroup> acc: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn record_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) l: u32,
) {
    let r = wg.x + wg.y * nwg.x;
    if r < k.replicas {
        record_item(r, l);
    }
}

// Replica r's trace row, thread l of its workgroup (also small_net's). Called by every
// thread of the workgroup (it has barriers).
fn record_item(r: u32, l: u32) {
    let base = k.trace_off + (s.record_row * k.replicas + r) * k.trace_width;
    let tbase = (s.row * k.replicas + r) * k.n_out;
    // (state power, masked squared error, pw^2, w^2)
    var a = vec4<f32>(0.0);
    for (var i = l; i < k.n; i += WG) {
        a.x += aux[k.h_off + r * k.n + i];
    }
    for (var o = l; o < k.n_out; o += WG) {
        let xo = x_in[r * k.n + graph[k.outputs_off + o]];
        let dv = xo - stream[k.targets_off + tbase + o];
        a.y += stream[k.masks_off + tbase + o] * dv * dv;
        aux[base + TRACE_FIXED + o] = xo;
    }
    for (var e = l; e < k.n_edges; e += WG) {
        let pwe = pw[r * k.n_edges + e];
        let we = w[r * k.n_edges + e];
        a.z += pwe * pwe;
        a.w += we * we;
    }
    acc[l] = a;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if l < stride {
            acc[l] += acc[l + stride];
        }
        workgroupBarrier();
    }
    if l == 0u {
        let rp = replica_params(r);
        let sums = acc[0];
        let loss = 0.5 * rp.q * sums.y;
        let kinetic = 0.5 * sums.z / rp.r;
        let potential = 0.5 * rp.r_w * sums.w;
        aux[base] = loss;
        aux[base + 1u] = kinetic + potential + loss;
        aux[base + 2u] = sums.x - kinetic + potential + loss;
        aux[base + 3u] = replica_step(s, r).sign_state;
    }
}
