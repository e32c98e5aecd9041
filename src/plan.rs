//! The step as a fixed list of dispatches, shared by the CPU and GPU executors.
//!
//! One step `n` is the one-pass form of the lockstep Euler step (docs/model.md): every
//! synapse's `w` and `pw` is read and written once. The pre-activations `a^n` were summed by
//! the previous step's synapse pass (or by the gathers, on the first step after the state was
//! set). Dispatches run in this order, each seeing everything the previous ones wrote:
//!
//! | kernel | per | reads | writes |
//! |---|---|---|---|
//! | `state_norm` (`hsf-ball` only) | replica | `x[n%2]`, `p`, `w`, `pw` | the replica's sign of the step |
//! | `dense_gather`, `sparse_gather` (first step only) | block | `w`, `x[n%2]`, inputs | `a` (adds) |
//! | `neuron_step` | neuron | `a`, `x[n%2]`, `p`, `c` | `x[(n+1)%2]`, `e_hat`, `h`; zeroes `a` |
//! | `record_step` (recorded steps) | replica | `h`, `x[n%2]`, `w`, `pw`, targets | trace row |
//! | `dense_step` | dense block, tile of rows x columns | `w`, `pw`, `e_hat`, both `x` | `w`, `pw`, column partials, row partials |
//! | `dense_reduce` | block, column and row | column and row partials | `b`, `a` (adds) |
//! | `sparse_back` (GPU; the CPU's `sparse_step` does it) | neuron | `w` (by source), `e_hat` | column partials of the sparse block |
//! | `sparse_step` | target neuron (fan-in below `WIDE_FAN_IN`) | `w`, `pw`, `e_hat`, both `x` | `w`, `pw`, `a` (adds) |
//! | `sparse_wide_step` (GPU; the CPU's `sparse_step` does it) | wide row, one workgroup | `w`, `pw`, `e_hat`, both `x` | `w`, `pw`, `a` (adds) |
//! | `dense_reduce` | sparse block, column | column partials | `b` (adds) |
//! | `costate_step` | neuron | `b`, `p`, `x[n%2]`, targets | `p`; zeroes `b` |
//!
//! Two kernels fuse this list for small networks (GPU and CPU alike unless noted):
//! `population` runs every step of a block for one replica in one invocation
//! ([`Plan::population`]), and `small_net` (GPU) runs one step for one replica in one
//! workgroup, calling the kernels above in this order with barriers between them
//! ([`Plan::small_net`]).
//!
//! `x` is ping-ponged because every synapse reads both its source's step-`n` and step-`n+1`
//! state; `p`, `w` and `pw` are updated in place because each is read, after every reader of
//! the old value, only by the invocation that writes it. The sums `a` and `b` add the blocks in
//! the order of this list, so both executors sum in the same order.

use crate::layout::{
    BlockUniform, CHUNK_ROWS, KernelParams, SPARSE_CHUNK_ROWS, TILE_COLS, WIDE_FAN_IN, WORKGROUP_SIZE,
};

/// The rows of a CSR block with at least [`WIDE_FAN_IN`] entries, ascending.
pub fn wide_rows(row_ptr: &[u32]) -> impl Iterator<Item = u32> + '_ {
    row_ptr.windows(2).enumerate().filter(|(_, p)| p[1] - p[0] >= WIDE_FAN_IN).map(|(i, _)| i as u32)
}

/// The kernels, one name each across `shaders/`, the GPU host and `src/cpu/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Per dense block: `a += w x` at the current step (first step after the state is set).
    DenseGather,
    /// Per sparse block: `a += w x` at the current step (first step after the state is set).
    SparseGather,
    /// Per neuron: `sigma(a)`, the state update into the other `x` buffer, `e_hat`, `h`.
    NeuronStep,
    /// Per replica (one workgroup): loss, Lagrangian, Hamiltonian and outputs into the trace.
    RecordStep,
    /// Per dense block and tile of `CHUNK_ROWS x TILE_COLS`: the fused synapse pass
    /// (children's messages, weight costates and weights, the next step's pre-activations),
    /// into per-chunk column sums and per-tile row sums.
    DenseStep,
    /// Per block, column and row: adds the chunks' partial column sums into `b` (dense
    /// blocks, and the sparse block's chunks of rows), and a dense block's tiles' row sums
    /// into `a`, in chunk and tile order. (The CPU's `dense_step` adds the row sums itself,
    /// in the same order.)
    DenseReduce,
    /// Per neuron: the children's messages over the sparse block's outgoing edges, summed per
    /// chunk of targets into the block's partial column sums (GPU only: the CPU's
    /// `sparse_step` computes them in its pass).
    SparseBack,
    /// Per target neuron of the sparse block narrower than `WIDE_FAN_IN`: weight costates,
    /// weights, the next step's pre-activation.
    SparseStep,
    /// Per wide row of the sparse block (one workgroup): the same, the row's edges over the
    /// workgroup's lanes (GPU only: the CPU's `sparse_step` sums wide rows in these lanes).
    SparseWideStep,
    /// Per neuron: the scaled costate update from `b`.
    CostateStep,
    /// Per replica of a small network ([`Plan::population`]): every step of a block, the
    /// whole list above in one invocation.
    Population,
    /// Per replica of a network of a few dense tiles ([`Plan::small_net`], GPU only): one
    /// step, the list above (gathers aside) in one workgroup, with barriers between kernels.
    SmallNet,
    /// Per replica (one workgroup), first in every step under `hsf-ball` only: the squared
    /// norm of the replica's step-`n` state and from it the sign of the step's equations,
    /// which the step's other kernels read.
    StateNorm,
}

const _: () = {
    let mut k = 0;
    while k < Kernel::ALL.len() {
        assert!(Kernel::ALL[k] as usize == k, "Kernel::ALL is in declaration order");
        k += 1;
    }
};

impl Kernel {
    /// Every kernel, in declaration order: `ALL[k as usize] == k` (the GPU host indexes its
    /// pipelines so; checked at compile time below).
    pub const ALL: [Kernel; 13] = [
        Kernel::DenseGather,
        Kernel::SparseGather,
        Kernel::NeuronStep,
        Kernel::RecordStep,
        Kernel::DenseStep,
        Kernel::DenseReduce,
        Kernel::SparseBack,
        Kernel::SparseStep,
        Kernel::SparseWideStep,
        Kernel::CostateStep,
        Kernel::Population,
        Kernel::SmallNet,
        Kernel::StateNorm,
    ];

    /// The kernel's stem: its shader file, entry point and CPU module.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::DenseGather => "dense_gather",
            Kernel::SparseGather => "sparse_gather",
            Kernel::NeuronStep => "neuron_step",
            Kernel::RecordStep => "record_step",
            Kernel::DenseStep => "dense_step",
            Kernel::DenseReduce => "dense_reduce",
            Kernel::SparseBack => "sparse_back",
            Kernel::SparseStep => "sparse_step",
            Kernel::SparseWideStep => "sparse_wide_step",
            Kernel::CostateStep => "costate_step",
            Kernel::Population => "population",
            Kernel::SmallNet => "small_net",
            Kernel::StateNorm => "state_norm",
        }
    }
}

/// One kernel launch: which kernel, over which block of synapses, and how many invocations
/// (a multiple of the workgroup size is launched; invocations past `invocations` return at
/// once; the dense kernels use one workgroup per chunk of rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch {
    /// The kernel.
    pub kernel: Kernel,
    /// Index into the block table ([`Plan::blocks`]); 0 for per-neuron kernels.
    pub block: usize,
    /// Invocations that do work.
    pub invocations: u64,
}

impl Dispatch {
    /// Workgroups needed.
    pub fn workgroups(&self) -> u64 {
        self.invocations.div_ceil(WORKGROUP_SIZE as u64)
    }
}

/// The blocks of synapses of a network as the kernels see them: the dense blocks in order,
/// then the sparse block if there is one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// One entry per block.
    pub blocks: Vec<BlockUniform>,
    /// Whether the last entry of `blocks` is the sparse block.
    pub sparse: bool,
    /// Rows of the sparse block with at least `WIDE_FAN_IN` synapses (`sparse_wide_step`).
    pub wide_rows: u32,
    /// Whether the network is small enough for the `population` kernel: one dense block of
    /// at most `CHUNK_ROWS` rows and `WG` columns, and at most `WG` neurons.
    pub population: bool,
    /// Whether the network is only dense blocks of at most [`SMALL_NET_TILES`] tiles in
    /// all: few enough that one workgroup per replica runs a whole step (`small_net`, GPU).
    pub small_net: bool,
}

/// The most tiles (of `CHUNK_ROWS x TILE_COLS` synapses) a network may have in all for the
/// GPU's `small_net`: a step of the kernel-by-kernel path would launch at most this many
/// workgroups per replica and kernel, too few to hide four or more dispatches per step.
/// (Chosen, not yet measured on a GPU: BENCHMARKS.md.)
pub const SMALL_NET_TILES: u32 = 64;

impl Plan {
    /// The block table of `net`, with the dense blocks' partial sums laid out from `part_off`
    /// in `aux` for `replicas` replicas; returns the plan and the partials' length.
    pub fn new(net: &crate::Network, replicas: usize, part_off: usize) -> (Plan, usize) {
        let mut blocks = Vec::new();
        let mut at = part_off;
        for b in net.dense_blocks() {
            let (rows, cols) = (b.rows.len() as u32, b.cols.len() as u32);
            let chunks = rows.div_ceil(CHUNK_ROWS);
            let tile_cols = cols.clamp(1, TILE_COLS);
            let tiles = cols.div_ceil(tile_cols).max(1);
            let part_off = at as u32;
            at += replicas * (chunks * cols) as usize;
            blocks.push(BlockUniform {
                row0: b.rows.start as u32,
                rows,
                col0: b.cols.start as u32,
                cols,
                w_off: b.offset as u32,
                part_off,
                chunks,
                tiles,
                tile_cols,
                row_part_off: at as u32,
                ..BlockUniform::default()
            });
            at += replicas * (tiles * rows) as usize;
        }
        let sparse = net.sparse_block().inspect(|s| {
            let (rows, n) = ((net.n() - net.d()) as u32, net.n() as u32);
            let chunks = rows.div_ceil(SPARSE_CHUNK_ROWS);
            blocks.push(BlockUniform {
                row0: net.d() as u32,
                rows,
                col0: 0,
                cols: n,
                w_off: s.offset as u32,
                part_off: at as u32,
                chunks,
                ..BlockUniform::default()
            });
            at += replicas * (chunks * n) as usize;
        });
        let population = sparse.is_none()
            && blocks.len() == 1
            && blocks[0].rows <= CHUNK_ROWS
            && blocks[0].cols <= WORKGROUP_SIZE
            && net.n() <= WORKGROUP_SIZE as usize;
        let wide_rows = net.sparse_block().map_or(0, |s| wide_rows(&s.row_ptr).count() as u32);
        let tiles: u32 = blocks.iter().map(|b| b.chunks * b.tiles).sum();
        let small_net = sparse.is_none() && !blocks.is_empty() && tiles <= SMALL_NET_TILES;
        (Plan { blocks, sparse: sparse.is_some(), wide_rows, population, small_net }, at - part_off)
    }

    /// The kernel family of each block, for `localprop info` and `bench`: `population` when
    /// the network takes it (and `population` is on), else `dense R x C (chunks x tiles tiles
    /// of rows x cols)` per dense block and `sparse R rows (CSR)` for the sparse block, the
    /// whole after `small_net:` when the network takes that (and `small_net` is on).
    pub fn describe(&self, population: bool, small_net: bool) -> String {
        if population && self.population {
            let b = &self.blocks[0];
            return format!(
                "population ({} x {} synapses; one invocation per replica runs a block of steps)",
                b.rows, b.cols
            );
        }
        let last = self.blocks.len().wrapping_sub(1);
        let family = |(i, b): (usize, &BlockUniform)| {
            if self.sparse && i == last {
                match self.wide_rows {
                    0 => format!("sparse {} rows (CSR)", b.rows),
                    w => format!("sparse {} rows (CSR; {w} of fan-in >= {WIDE_FAN_IN} by workgroup)", b.rows),
                }
            } else {
                let tile_rows = CHUNK_ROWS.min(b.rows);
                format!(
                    "dense {} x {} ({} x {} tiles of {tile_rows} x {})",
                    b.rows, b.cols, b.chunks, b.tiles, b.tile_cols
                )
            }
        };
        let blocks = self.blocks.iter().enumerate().map(family).collect::<Vec<_>>().join(", ");
        if small_net && self.small_net {
            return format!("small_net (one workgroup per replica runs each step): {blocks}");
        }
        blocks
    }

    /// The dispatches of one step in `small_net`: the gathers when `gather`, then one
    /// workgroup per replica.
    pub fn small_net_step(&self, k: &KernelParams, gather: bool) -> Vec<Dispatch> {
        let mut list: Vec<Dispatch> =
            self.step(k, false, gather).into_iter().filter(|d| d.kernel == Kernel::DenseGather).collect();
        let invocations = k.replicas as u64 * WORKGROUP_SIZE as u64;
        list.push(Dispatch { kernel: Kernel::SmallNet, block: 0, invocations });
        list
    }

    /// The dispatches of one step; `gather` adds the gathers of the pre-activations first, and
    /// under `hsf-ball` ([`KernelParams::ball`]) `state_norm` comes before everything.
    pub fn step(&self, k: &KernelParams, record: bool, gather: bool) -> Vec<Dispatch> {
        let (r, n) = (k.replicas as u64, k.n as u64);
        let wg = WORKGROUP_SIZE as u64;
        let dense = |kernel, (block, b): (usize, &BlockUniform)| Dispatch {
            kernel,
            block,
            invocations: match kernel {
                Kernel::DenseReduce => r * (b.cols as u64 + if b.tiles > 0 { b.rows as u64 } else { 0 }),
                Kernel::DenseStep => r * (b.chunks * b.tiles) as u64 * wg,
                _ => r * b.chunks as u64 * wg,
            },
        };
        let n_dense = self.blocks.len() - usize::from(self.sparse);
        let dense_blocks = || self.blocks[..n_dense].iter().enumerate();
        let sparse = self.sparse.then(|| (n_dense, self.blocks[n_dense].rows as u64));
        let mut list = Vec::new();
        if k.ball != 0 {
            list.push(Dispatch { kernel: Kernel::StateNorm, block: 0, invocations: r * wg });
        }
        if gather {
            list.extend(dense_blocks().map(|b| dense(Kernel::DenseGather, b)));
            if let Some((block, rows)) = sparse {
                list.push(Dispatch { kernel: Kernel::SparseGather, block, invocations: r * rows });
            }
        }
        list.push(Dispatch { kernel: Kernel::NeuronStep, block: 0, invocations: r * n });
        if record {
            list.push(Dispatch { kernel: Kernel::RecordStep, block: 0, invocations: r * wg });
        }
        for b in dense_blocks() {
            list.push(dense(Kernel::DenseStep, b));
            list.push(dense(Kernel::DenseReduce, b));
        }
        if let Some((block, rows)) = sparse {
            list.push(Dispatch { kernel: Kernel::SparseBack, block, invocations: r * n });
            list.push(Dispatch { kernel: Kernel::SparseStep, block, invocations: r * rows });
            if self.wide_rows > 0 {
                let invocations = r * self.wide_rows as u64 * wg;
                list.push(Dispatch { kernel: Kernel::SparseWideStep, block, invocations });
            }
            list.push(dense(Kernel::DenseReduce, (block, &self.blocks[block])));
        }
        list.push(Dispatch { kernel: Kernel::CostateStep, block: 0, invocations: r * n });
        list
    }
}
