//! The WGSL sources of the kernels, assembled with a prelude generated from the Rust
//! constants, and their compute pipelines.

use crate::layout::{CHUNK_ROWS, FLUSH_BELOW, NO_RECORD, SPARSE_CHUNK_ROWS, TRACE_FIXED, WORKGROUP_SIZE};
use crate::network::NOT_OUTPUT;
use crate::plan::Kernel;

/// `shaders/common.wgsl`: structs, bindings and helpers shared by every kernel.
pub const COMMON_WGSL: &str = include_str!("../../shaders/common.wgsl");

/// The kernel's own WGSL file (`shaders/<stem>.wgsl`).
pub fn kernel_wgsl(kernel: Kernel) -> &'static str {
    match kernel {
        Kernel::DenseGather => include_str!("../../shaders/dense_gather.wgsl"),
        Kernel::SparseGather => include_str!("../../shaders/sparse_gather.wgsl"),
        Kernel::NeuronStep => include_str!("../../shaders/neuron_step.wgsl"),
        Kernel::RecordStep => include_str!("../../shaders/record_step.wgsl"),
        Kernel::DenseStep => include_str!("../../shaders/dense_step.wgsl"),
        Kernel::DenseReduce => include_str!("../../shaders/dense_reduce.wgsl"),
        Kernel::SparseBack => include_str!("../../shaders/sparse_back.wgsl"),
        Kernel::SparseStep => include_str!("../../shaders/sparse_step.wgsl"),
        Kernel::CostateStep => include_str!("../../shaders/costate_step.wgsl"),
    }
}

/// The constants every shader uses, generated from their single Rust definitions.
pub fn prelude() -> String {
    format!(
        "// Generated from src/layout.rs and src/network.rs; do not edit.\n\
         const WG: u32 = {WORKGROUP_SIZE}u;\n\
         const CHUNK_ROWS: u32 = {CHUNK_ROWS}u;\n\
         const SPARSE_CHUNK_ROWS: u32 = {SPARSE_CHUNK_ROWS}u;\n\
         const NO_RECORD: u32 = {NO_RECORD}u;\n\
         const NOT_OUTPUT: u32 = {NOT_OUTPUT}u;\n\
         const TRACE_FIXED: u32 = {TRACE_FIXED}u;\n\
         const FLUSH_BELOW: f32 = {FLUSH_BELOW:e};\n"
    )
}

/// The complete WGSL module of a kernel: prelude, `common.wgsl`, the kernel's file.
pub fn kernel_source(kernel: Kernel) -> String {
    format!("{}\n{}\n{}", prelude(), COMMON_WGSL, kernel_wgsl(kernel))
}
