//! The WGSL sources of the kernels, assembled with a prelude generated from the Rust
//! constants, and their compute pipelines.

use crate::layout::{
    BLOCK_WORDS, BlockUniform, CHUNK_ROWS, FLUSH_BELOW, KernelParams, NO_RECORD, NORM_CHUNK, SPARSE_CHUNK_ROWS,
    TRACE_FIXED, WIDE_FAN_IN, WORKGROUP_SIZE, lanes,
};
use crate::network::NOT_OUTPUT;
use crate::plan::{Kernel, Plan};

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
        Kernel::SparseWideStep => include_str!("../../shaders/sparse_wide_step.wgsl"),
        Kernel::CostateStep => include_str!("../../shaders/costate_step.wgsl"),
        Kernel::Population => include_str!("../../shaders/population.wgsl"),
        Kernel::SmallNet => include_str!("../../shaders/small_net.wgsl"),
        Kernel::StateNorm => include_str!("../../shaders/state_norm.wgsl"),
    }
}

/// The constants every shader uses, generated from their single Rust definitions.
pub fn prelude() -> String {
    format!(
        "// Generated from src/layout.rs and src/network.rs; do not edit.\n\
         const WG: u32 = {WORKGROUP_SIZE}u;\n\
         const CHUNK_ROWS: u32 = {CHUNK_ROWS}u;\n\
         const SPARSE_CHUNK_ROWS: u32 = {SPARSE_CHUNK_ROWS}u;\n\
         const WIDE_FAN_IN: u32 = {WIDE_FAN_IN}u;\n\
         const NO_RECORD: u32 = {NO_RECORD}u;\n\
         const NOT_OUTPUT: u32 = {NOT_OUTPUT}u;\n\
         const TRACE_FIXED: u32 = {TRACE_FIXED}u;\n\
         const BLOCK_WORDS: u32 = {BLOCK_WORDS}u;\n\
         const NORM_CHUNK: u32 = {NORM_CHUNK}u;\n\
         const FLUSH_BELOW: f32 = {FLUSH_BELOW:e};\n"
    )
}

/// The shape of a network as the `population` kernel reads it: the constants appended to
/// its source, so that every loop bound is known when the pipeline is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PopulationShape {
    /// Neurons.
    pub n: u32,
    /// Input neurons.
    pub d: u32,
    /// Synapses.
    pub n_edges: u32,
    /// The dense block.
    pub block: BlockUniform,
    /// Output neurons.
    pub outputs: Vec<u32>,
    /// Output slot of each neuron, or `NOT_OUTPUT`.
    pub slots: Vec<u32>,
}

impl PopulationShape {
    /// The shape of the network behind `k`, `plan`, `outputs` and `slots`.
    pub fn new(k: &KernelParams, plan: &Plan, outputs: &[u32], slots: &[u32]) -> Self {
        PopulationShape {
            n: k.n,
            d: k.d,
            n_edges: k.n_edges,
            block: plan.blocks.first().copied().unwrap_or_default(),
            outputs: outputs.to_vec(),
            slots: slots.to_vec(),
        }
    }

    /// The paper's 5-neuron net (2 inputs with the bias, 3 neurons, self-loops): the shape
    /// the kernel is validated with when no network is at hand.
    pub fn example() -> Self {
        let block = BlockUniform { row0: 2, rows: 3, col0: 0, cols: 5, tiles: 1, tile_cols: 5, ..Default::default() };
        PopulationShape {
            n: 5,
            d: 2,
            n_edges: 15,
            block,
            outputs: vec![4],
            slots: vec![NOT_OUTPUT, NOT_OUTPUT, NOT_OUTPUT, NOT_OUTPUT, 0],
        }
    }

    /// An upper bound on the loop iterations of one step of the `population` kernel (every
    /// loop of shaders/population.wgsl, the first step's gather included).
    pub fn loop_iterations(&self) -> usize {
        let (n, ne, n_out) = (self.n as usize, self.n_edges as usize, self.outputs.len());
        let (rows, cols) = (self.block.rows as usize, self.block.cols as usize);
        let lanes = lanes(self.block.cols) as usize;
        let used = lanes_used(self.n, self.n_edges, n_out as u32) as usize;
        let wg = WORKGROUP_SIZE as usize;
        let record = used * (3 + n.div_ceil(wg) + n_out.div_ceil(wg) + ne.div_ceil(wg)) + 2 * used;
        // hsf-ball's state norm (counted for every policy: an upper bound).
        let norm = used * (3 + n.div_ceil(wg) + ne.div_ceil(wg)) + 2 * used;
        let synapses = 2 * rows * (1 + cols + lanes);
        1 + 4 * n + record + norm + synapses + 3 * cols
    }

    /// The WGSL constants.
    pub fn constants(&self) -> String {
        let b = &self.block;
        let n_out = self.outputs.len() as u32;
        let used = lanes_used(self.n, self.n_edges, n_out);
        let list = |v: &[u32]| v.iter().map(|o| format!("{o}u")).collect::<Vec<_>>().join(", ");
        let outputs = if self.outputs.is_empty() { "0u".to_string() } else { list(&self.outputs) };
        format!(
            "// The network's shape, generated by src/gpu/kernels.rs.\n\
             const P_N: u32 = {}u;\nconst P_D: u32 = {}u;\nconst P_E: u32 = {}u;\n\
             const P_ROWS: u32 = {}u;\nconst P_COLS: u32 = {}u;\nconst P_ROW0: u32 = {}u;\nconst P_COL0: u32 = {}u;\n\
             const P_LANES: u32 = {}u;\nconst P_USED: u32 = {used}u;\nconst P_OUT: u32 = {n_out}u;\n\
             const P_OUTPUTS = array<u32, {}>({outputs});\nconst P_SLOT = array<u32, {}>({});\n",
            self.n,
            self.d,
            self.n_edges,
            b.rows,
            b.cols,
            b.row0,
            b.col0,
            lanes(b.cols),
            n_out.max(1),
            self.n,
            list(&self.slots),
        )
    }
}

/// Lanes of the record sums of a population: enough for the longest of the summed arrays.
fn lanes_used(n: u32, n_edges: u32, n_out: u32) -> u32 {
    lanes(n.max(n_edges).max(n_out))
}

/// The complete WGSL module of a kernel: prelude, `common.wgsl`, the kernel's file (for
/// `population`, with the shape of [`PopulationShape::example`]).
pub fn kernel_source(kernel: Kernel) -> String {
    kernel_source_for(kernel, &PopulationShape::example())
}

/// The complete WGSL module of a kernel, `population` specialised to `shape`.
/// `small_net` calls the per-step kernels' item functions: its module holds their files too.
pub fn kernel_source_for(kernel: Kernel, shape: &PopulationShape) -> String {
    let shape = if kernel == Kernel::Population { shape.constants() } else { String::new() };
    let mut body = String::new();
    if kernel == Kernel::SmallNet {
        for part in [
            Kernel::StateNorm,
            Kernel::NeuronStep,
            Kernel::RecordStep,
            Kernel::DenseStep,
            Kernel::DenseReduce,
            Kernel::CostateStep,
        ] {
            body.push_str(kernel_wgsl(part));
            body.push('\n');
        }
    }
    format!("{}\n{shape}{}\n{body}{}", prelude(), COMMON_WGSL, kernel_wgsl(kernel))
}
