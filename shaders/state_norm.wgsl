// Under hsf-ball only, first in every step: one workgroup per replica sums the squared norm of
// the replica's step-n state, |x|^2 + |p|^2 + |w|^2 + |pw|^2 over every value the state
// stores (x[n % 2] and p of all neurons, inputs included; w and pw of all synapses), and
// writes the sign of every equation of the step, +1 while the norm is at most R^2
// (k.radius2) and -1 otherwise, at aux[k.sign_off + r], where the step's other kernels read
// it (replica_step). Each array is summed by chunks of NORM_CHUNK values: thread l takes the
// chunk's values l, l + WG, ... in order, a tree halves the lanes, and the chunks' sums are
// added in order from 0; the norm is then (x + p) + (w + pw). CPU twin: src/cpu/state_norm.rs.

var<workgroup> norm_lanes: array<f32, WG>;

@compute @workgroup_size(WG)
fn state_norm(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = workgroup_index(wg, nwg);
    if r < k.replicas {
        state_norm_item(r, lid);
    }
}

// Thread lid's lane of the squares of array `which` (0 x, 1 p, 2 w, 3 pw) over the values
// c0..c1 from `base`.
fn lane_squares(which: u32, base: u32, c0: u32, c1: u32, lid: u32) -> f32 {
    var acc = 0.0;
    switch which {
        case 0u: {
            for (var i = c0 + lid; i < c1; i += WG) {
                let v = x_in[base + i];
                acc += v * v;
            }
        }
        case 1u: {
            for (var i = c0 + lid; i < c1; i += WG) {
                let v = p[base + i];
                acc += v * v;
            }
        }
        case 2u: {
            for (var i = c0 + lid; i < c1; i += WG) {
                let v = w[base + i];
                acc += v * v;
            }
        }
        default: {
            for (var i = c0 + lid; i < c1; i += WG) {
                let v = pw[base + i];
                acc += v * v;
            }
        }
    }
    return acc;
}

// Replica r's sign, thread lid of its workgroup (also small_net's). Called by every thread of
// the workgroup (it has barriers); the sign is written by thread 0.
fn state_norm_item(r: u32, lid: u32) {
    var sums = vec4<f32>(0.0);
    for (var which = 0u; which < 4u; which++) {
        let len = select(k.n, k.n_edges, which >= 2u);
        for (var c0 = 0u; c0 < len; c0 += NORM_CHUNK) {
            norm_lanes[lid] = lane_squares(which, r * len, c0, min(len, c0 + NORM_CHUNK), lid);
            workgroupBarrier();
            for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
                if lid < stride {
                    norm_lanes[lid] += norm_lanes[lid + stride];
                }
                workgroupBarrier();
            }
            sums[which] += norm_lanes[0];
            // The next chunk overwrites the lanes every thread has just read.
            workgroupBarrier();
        }
    }
    if lid == 0u {
        let norm2 = (sums.x + sums.y) + (sums.z + sums.w);
        aux[k.sign_off + r] = select(-1.0, 1.0, norm2 <= k.radius2);
    }
}
