//! The step as a fixed list of dispatches, shared by the CPU and GPU executors.
//!
//! One step `n` runs, in order (each dispatch sees everything the previous ones wrote):
//!
//! | kernel | invocations | reads | writes |
//! |---|---|---|---|
//! | `state_step` | `R n` | `x[n%2]`, inputs, `w`, `p` | `x[(n+1)%2]`, `e_hat`, `h` |
//! | `costate_step` | `R n` | `x[n%2]`, `e_hat`, `w`, targets | `p` (in place) |
//! | `record_step` (recorded steps only) | `R` workgroups | `h`, `x[n%2]`, `w`, `pw` | trace row |
//! | `weight_step` (when learning) | `R E` | `x[n%2]`, inputs, `e_hat`, `w`, `pw` | `w`, `pw` (in place) |
//!
//! `x` is ping-ponged because every neuron reads its parents' step-`n` values; `p`, `w` and
//! `pw` are updated in place because each invocation reads only its own entry of them after
//! every reader of the old value has run (`weight_step` comes last since the first two read `w`).

use crate::layout::{KernelParams, WORKGROUP_SIZE};

/// The kernels, one name each across `shaders/`, the GPU host and `src/cpu/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Per neuron: `a`, `sigma(a)`, the state update into the other `x` buffer, `e_hat`, `h`.
    StateStep,
    /// Per neuron: the scaled costate update from the children's `e_hat`.
    CostateStep,
    /// Per replica (one workgroup): loss, Lagrangian, Hamiltonian and outputs into the trace.
    RecordStep,
    /// Per synapse: the weight costate and the weight.
    WeightStep,
}

impl Kernel {
    /// Every kernel, in dispatch order.
    pub const ALL: [Kernel; 4] = [Kernel::StateStep, Kernel::CostateStep, Kernel::RecordStep, Kernel::WeightStep];

    /// The kernel's stem: its shader file, entry point and CPU module.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::StateStep => "state_step",
            Kernel::CostateStep => "costate_step",
            Kernel::RecordStep => "record_step",
            Kernel::WeightStep => "weight_step",
        }
    }
}

/// One kernel launch: which kernel and how many invocations (a multiple of the workgroup
/// size is launched; invocations past `invocations` return at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The kernel.
    pub kernel: Kernel,
    /// Invocations that do work.
    pub invocations: u64,
}

impl Dispatch {
    /// Workgroups needed.
    pub fn workgroups(&self) -> u64 {
        self.invocations.div_ceil(WORKGROUP_SIZE as u64)
    }
}

/// The dispatches of one step.
pub fn step_dispatches(k: &KernelParams, record: bool, learning: bool) -> Vec<Dispatch> {
    let (r, n, e) = (k.replicas as u64, k.n as u64, k.n_edges as u64);
    let mut list = vec![
        Dispatch { kernel: Kernel::StateStep, invocations: r * n },
        Dispatch { kernel: Kernel::CostateStep, invocations: r * n },
    ];
    if record {
        list.push(Dispatch { kernel: Kernel::RecordStep, invocations: r * WORKGROUP_SIZE as u64 });
    }
    if learning {
        list.push(Dispatch { kernel: Kernel::WeightStep, invocations: r * e });
    }
    list
}
