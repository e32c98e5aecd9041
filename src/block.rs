//! A block of steps as the executors consume it: per-step scalars and the streams'
//! values, laid out as the GPU buffers are.

use crate::layout::StepUniform;

/// Everything an executor needs to run `steps.len()` consecutive steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    /// The first step's index.
    pub first_step: u64,
    /// Per-step scalars (row, record row, signs).
    pub steps: Vec<StepUniform>,
    /// Inputs, `[row][replica][d]`, the bias column set to 1.
    pub inputs: Vec<f32>,
    /// Targets, `[row][replica][n_out]`.
    pub targets: Vec<f32>,
    /// Masks, `[row][replica][n_out]`.
    pub masks: Vec<f32>,
    /// Number of recorded steps (rows of the trace block).
    pub records: usize,
}

/// What an executor hands back for a block it ran.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlockResult {
    /// Trace rows, `[record_row][replica][trace_width]`.
    pub rows: Vec<f32>,
    /// Per replica, the neuron pass's first [`crate::layout::nonfinite_code`] of the block
    /// (0: every value it read was finite).
    pub nonfinite: Vec<u32>,
}
