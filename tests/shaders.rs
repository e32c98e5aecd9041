//! Every shader parses and validates with naga, and the WGSL structs have the layout of
//! their Rust twins. Needs no GPU, so a broken shader fails CI everywhere.

use localprop::gpu::kernels::kernel_source;
use localprop::layout::{BlockUniform, KernelParams, ReplicaParams, StepUniform};
use localprop::plan::Kernel;
use naga::valid::{Capabilities, ValidationFlags, Validator};

fn module(kernel: Kernel) -> naga::Module {
    let src = kernel_source(kernel);
    naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}: {}", kernel.name(), e.emit_to_string(&src)))
}

#[test]
fn every_kernel_parses_and_validates_with_naga() {
    for kernel in Kernel::ALL {
        let m = module(kernel);
        Validator::new(ValidationFlags::all(), Capabilities::empty())
            .validate(&m)
            .unwrap_or_else(|e| panic!("{}: {e:?}", kernel.name()));
        // small_net's module also holds the per-step kernels whose item functions it calls.
        let names: Vec<&str> = m.entry_points.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.last(), Some(&kernel.name()), "the last entry point is named after the kernel");
        assert!(names.len() == 1 || kernel == Kernel::SmallNet, "{}: entry points {names:?}", kernel.name());
        for ep in &m.entry_points {
            assert_eq!(ep.workgroup_size, [localprop::layout::WORKGROUP_SIZE, 1, 1]);
        }
    }
}

/// `(size, [(member, offset)])` of the WGSL struct `name`.
fn wgsl_layout(m: &naga::Module, name: &str) -> (u32, Vec<(String, u32)>) {
    let ty =
        m.types.iter().find(|(_, t)| t.name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no struct {name}"));
    match &ty.1.inner {
        naga::TypeInner::Struct { members, span } => {
            (*span, members.iter().map(|mb| (mb.name.clone().unwrap_or_default(), mb.offset)).collect())
        }
        other => panic!("{name} is not a struct: {other:?}"),
    }
}

/// `(field, offset)` of Rust struct fields, by `offset_of!`.
macro_rules! offsets {
    ($t:ty: $($f:ident),*) => { vec![$((stringify!($f).to_string(), std::mem::offset_of!($t, $f) as u32)),*] };
}

fn assert_same_layout(m: &naga::Module, name: &str, size: usize, rust: Vec<(String, u32)>) {
    let (span, members) = wgsl_layout(m, name);
    assert_eq!(span as usize, size, "size of {name}");
    let named: Vec<(String, u32)> = members.into_iter().filter(|(n, _)| !n.starts_with("_pad")).collect();
    assert_eq!(named, rust, "members and offsets of {name} (WGSL left, Rust right)");
}

#[test]
fn wgsl_structs_match_rust_layouts() {
    let m = module(Kernel::NeuronStep);
    assert_same_layout(
        &m,
        "KernelParams",
        size_of::<KernelParams>(),
        offsets!(KernelParams: n, d, n_edges, replicas, n_out, activation, trace_width, learning, row_ptr_off,
            edge_src_off, edge_dst_off, out_ptr_off, out_edge_off, outputs_off, out_slot_off, c_off, e_hat_off, h_off,
            a_off, b_off, trace_off, targets_off, masks_off, tau, steps_off, wide_off, n_wide, blocks_off, n_blocks,
            flags_off, sign_off, ball, radius2),
    );
    assert_same_layout(
        &m,
        "BlockUniform",
        size_of::<BlockUniform>(),
        offsets!(BlockUniform: row0, rows, col0, cols, w_off, part_off, chunks, tiles, tile_cols, row_part_off),
    );
    assert_same_layout(
        &m,
        "StepUniform",
        size_of::<StepUniform>(),
        offsets!(StepUniform: row, record_row, sign_state, sign_costate),
    );
    assert_same_layout(&m, "ReplicaParams", size_of::<ReplicaParams>(), offsets!(ReplicaParams: q, r, r_w, theta));
}
