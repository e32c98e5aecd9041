//! The graph: neurons, synapses, outputs, and the index structures every kernel gathers from.
//!
//! Neurons are numbered in one range: the external inputs `0..inputs`, then the bias neuron
//! (at index `inputs`, when there is one), then every other neuron. The first
//! `d = inputs + bias` neurons are *input neurons*: clamped to `u(t)` (the bias to 1), with
//! no parents, no state equation and no costate. Edges `j -> i` never end in an input
//! neuron; otherwise any directed graph is allowed (cycles and self-loops included).
//!
//! Edges are stored once, sorted by target and then source (CSR by target), so a neuron's
//! incoming synapses are `row_ptr[i]..row_ptr[i+1]`; the weight vector uses the same order.
//! A second index lists, for each source, the positions of its outgoing edges, so that the
//! costate kernel can gather its children's messages locally.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::rng::Rng;

/// How the edges of a network are laid out.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Topology {
    /// Layers `sizes[0] -> sizes[1] -> ...`, each layer fully connected to the next;
    /// `sizes[0]` is the number of external inputs, the last layer holds the outputs.
    Layered {
        /// Layer widths, inputs first; at least two layers.
        sizes: Vec<usize>,
    },
    /// `neurons` non-input neurons, each fed by every input and every other neuron
    /// (and by itself when `self_loops`).
    FullyConnected {
        /// Number of external inputs (0 allowed).
        inputs: usize,
        /// Number of non-input neurons.
        neurons: usize,
        /// Whether each neuron feeds itself.
        self_loops: bool,
    },
    /// Each non-input neuron draws `fan_in` distinct parents, uniformly, from all neurons
    /// (inputs and non-inputs; itself only when `self_loops`).
    RandomSparse {
        /// Number of external inputs.
        inputs: usize,
        /// Number of non-input neurons.
        neurons: usize,
        /// Parents per neuron (not counting the bias edge).
        fan_in: usize,
        /// Whether a neuron may draw itself as a parent.
        self_loops: bool,
    },
    /// An explicit edge list `(source, target)` in the crate's neuron numbering.
    Edges {
        /// Number of external inputs.
        inputs: usize,
        /// Number of non-input neurons.
        neurons: usize,
        /// `(source, target)` pairs; targets must not be input neurons.
        edges: Vec<(usize, usize)>,
    },
}

/// How initial weights are drawn (all seeded; `fan_in` counts the bias edge).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Init {
    /// `w ~ U(-gain / sqrt(fan_in), gain / sqrt(fan_in))`, the default with `gain = 1`.
    Uniform {
        /// Scale of the interval.
        gain: f32,
    },
    /// `w ~ N(0, (gain / sqrt(fan_in))^2)`.
    Normal {
        /// Scale of the standard deviation.
        gain: f32,
    },
    /// All weights zero.
    Zero,
}

impl Topology {
    /// Every topology's [`name`](Topology::name), as experiment files write them (`kind`).
    pub const NAMES: [&'static str; 4] = ["layered", "fully-connected", "random-sparse", "edges"];

    /// The name used in experiment files.
    pub fn name(&self) -> &'static str {
        Self::NAMES[match self {
            Topology::Layered { .. } => 0,
            Topology::FullyConnected { .. } => 1,
            Topology::RandomSparse { .. } => 2,
            Topology::Edges { .. } => 3,
        }]
    }
}

impl Default for Init {
    fn default() -> Self {
        Init::Uniform { gain: 1.0 }
    }
}

impl Init {
    /// Every initialisation's [`name`](Init::name), as experiment files write them.
    pub const NAMES: [&'static str; 3] = ["uniform", "normal", "zero"];

    /// The name used in experiment files.
    pub fn name(self) -> &'static str {
        Self::NAMES[match self {
            Init::Uniform { .. } => 0,
            Init::Normal { .. } => 1,
            Init::Zero => 2,
        }]
    }

    /// The initialisation called `name` with scale `gain` (which `zero` ignores). The error
    /// names an unknown name or a gain that is not finite (it is checked whatever the name:
    /// a non-finite value does not survive the JSON that checkpoints store).
    pub fn named(name: &str, gain: f32) -> Result<Init> {
        if !gain.is_finite() {
            return Err(Error::param("init_gain", gain, "a finite number"));
        }
        Ok(match name {
            "uniform" => Init::Uniform { gain },
            "normal" => Init::Normal { gain },
            "zero" => Init::Zero,
            _ => return Err(Error::param("init", format!("{name:?}"), format!("one of {}", Self::NAMES.join(", ")))),
        })
    }

    /// The scale of the initial weights (`1` for [`Init::Zero`], where it plays no part).
    pub fn gain(self) -> f32 {
        match self {
            Init::Uniform { gain } | Init::Normal { gain } => gain,
            Init::Zero => 1.0,
        }
    }
}

/// A complete description of a network, from which [`Network::build`] makes the graph.
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    /// The edge layout.
    pub topology: Topology,
    /// Add a bias neuron (an input held at 1) feeding every non-input neuron.
    pub bias: bool,
    /// Output neurons, in the crate's numbering. `None`: the last layer for
    /// [`Topology::Layered`], else the first non-input neuron.
    pub outputs: Option<Vec<usize>>,
    /// Weight initialisation.
    pub init: Init,
    /// Seed for the weights (and for the edges of [`Topology::RandomSparse`]).
    pub seed: u64,
}

impl NetworkSpec {
    /// A spec with the given topology, no bias, default outputs, default init, seed 0.
    pub fn new(topology: Topology) -> Self {
        NetworkSpec { topology, bias: false, outputs: None, init: Init::default(), seed: 0 }
    }

    /// Layered feed-forward, e.g. `&[64, 32, 10]`.
    pub fn layered(sizes: &[usize]) -> Self {
        Self::new(Topology::Layered { sizes: sizes.to_vec() })
    }

    /// The paper's tracking network: 5 fully connected tanh neurons with self-loops, a bias,
    /// no input, the output neuron 1, weights drawn with seed 1 (with [`crate::Params::tracking`]).
    pub fn tracking() -> Self {
        Self::fully_connected(0, 5, true).bias(true).seed(1)
    }

    /// Fully connected recurrent net of `neurons` non-inputs fed by `inputs` inputs.
    pub fn fully_connected(inputs: usize, neurons: usize, self_loops: bool) -> Self {
        Self::new(Topology::FullyConnected { inputs, neurons, self_loops })
    }

    /// Random sparse net with `fan_in` parents per neuron.
    pub fn random_sparse(inputs: usize, neurons: usize, fan_in: usize, self_loops: bool) -> Self {
        Self::new(Topology::RandomSparse { inputs, neurons, fan_in, self_loops })
    }

    /// Explicit edge list.
    pub fn edges(inputs: usize, neurons: usize, edges: Vec<(usize, usize)>) -> Self {
        Self::new(Topology::Edges { inputs, neurons, edges })
    }

    /// Sets [`NetworkSpec::bias`].
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Sets [`NetworkSpec::outputs`].
    pub fn outputs(mut self, outputs: Vec<usize>) -> Self {
        self.outputs = Some(outputs);
        self
    }

    /// Sets [`NetworkSpec::init`].
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

    /// Sets [`NetworkSpec::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Builds the network.
    pub fn build(&self) -> Result<Network> {
        Network::build(self)
    }
}

/// A dense block of synapses: every source in `cols` feeds every target in `rows`. Its
/// weights are stored row-major from `offset` in the weight vector: synapse
/// `cols.start + j -> rows.start + i` sits at `offset + i * cols.len() + j`. No edge list
/// exists for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenseBlock {
    /// Target neurons (the rows).
    pub rows: Range<usize>,
    /// Source neurons (the columns).
    pub cols: Range<usize>,
    /// Position of the first synapse in the weight vector.
    pub offset: usize,
}

impl DenseBlock {
    /// Number of synapses, `rows x cols`.
    pub fn len(&self) -> usize {
        self.rows.len() * self.cols.len()
    }

    /// Whether the block holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The sparse part of a network: explicit edges in CSR order by target (sources ascending
/// within a target), stored from `offset` in the weight vector, with the index arrays the
/// kernels gather through. Edge indices below are relative to `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparseBlock {
    /// Position of the first edge in the weight vector.
    pub offset: usize,
    /// Row pointers by target, length `n + 1`.
    pub row_ptr: Vec<u32>,
    /// Source of each edge.
    pub src: Vec<u32>,
    /// Target of each edge.
    pub dst: Vec<u32>,
    /// Pointers into `out_edge` by source, length `n + 1`.
    pub out_ptr: Vec<u32>,
    /// Edge indices grouped by source (ascending target within a source).
    pub out_edge: Vec<u32>,
}

impl SparseBlock {
    fn from_sorted(offset: usize, n: usize, edges: &[(usize, usize)]) -> SparseBlock {
        let e = edges.len();
        let mut row_ptr = vec![0u32; n + 1];
        let mut out_ptr = vec![0u32; n + 1];
        for &(j, i) in edges {
            row_ptr[i + 1] += 1;
            out_ptr[j + 1] += 1;
        }
        for k in 0..n {
            row_ptr[k + 1] += row_ptr[k];
            out_ptr[k + 1] += out_ptr[k];
        }
        let mut fill = out_ptr.clone();
        let mut out_edge = vec![0u32; e];
        for (k, &(j, _)) in edges.iter().enumerate() {
            out_edge[fill[j] as usize] = k as u32;
            fill[j] += 1;
        }
        SparseBlock {
            offset,
            row_ptr,
            src: edges.iter().map(|&(j, _)| j as u32).collect(),
            dst: edges.iter().map(|&(_, i)| i as u32).collect(),
            out_ptr,
            out_edge,
        }
    }

    /// Number of edges.
    pub fn len(&self) -> usize {
        self.src.len()
    }

    /// Whether the block holds no edge.
    pub fn is_empty(&self) -> bool {
        self.src.is_empty()
    }
}

/// Every edge with its position in the weight vector, indexed both ways; built on demand by
/// [`Network::index`] (it is an edge list: meant for small networks, references and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeIndex {
    /// Source of each synapse, in weight-vector order.
    pub src: Vec<u32>,
    /// Target of each synapse, in weight-vector order.
    pub dst: Vec<u32>,
    /// Pointers into `in_edge` by target, length `n + 1`.
    pub in_ptr: Vec<u32>,
    /// Synapse positions grouped by target (ascending source within a target).
    pub in_edge: Vec<u32>,
    /// Pointers into `out_edge` by source, length `n + 1`.
    pub out_ptr: Vec<u32>,
    /// Synapse positions grouped by source (ascending target within a source).
    pub out_edge: Vec<u32>,
}

impl EdgeIndex {
    /// Positions of the synapses into `i`, by ascending source.
    pub fn incoming(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.in_edge[self.in_ptr[i] as usize..self.in_ptr[i + 1] as usize].iter().map(|&e| e as usize)
    }

    /// Positions of the synapses out of `j`, by ascending target.
    pub fn outgoing(&self, j: usize) -> impl Iterator<Item = usize> + '_ {
        self.out_edge[self.out_ptr[j] as usize..self.out_ptr[j + 1] as usize].iter().map(|&e| e as usize)
    }
}

/// The graph, stored as blocks of synapses, with its initial weights. Immutable once built.
///
/// The weight vector (and every per-synapse vector: [`crate::State::w`], `pw`) holds the
/// dense blocks in order, each row-major, then the sparse block in CSR order. Fully
/// connected networks with self-loops are one dense block; layered networks are one dense
/// block per layer (plus a one-column block for the bias of every layer after the first);
/// random sparse networks, explicit edges and fully connected networks without self-loops
/// are one sparse block.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    inputs: usize,
    bias: bool,
    n: usize,
    n_edges: usize,
    layers: Option<Vec<usize>>,
    dense: Vec<DenseBlock>,
    sparse: Option<SparseBlock>,
    outputs: Vec<u32>,
    weights: Vec<f32>,
}

/// Marks a neuron that is not an output in [`Network::output_slots`].
pub const NOT_OUTPUT: u32 = u32::MAX;

impl Network {
    /// Builds the network a spec describes, validating every index.
    ///
    /// Sizes are checked before anything is allocated: a network with no non-input neurons,
    /// or whose neuron or edge count does not fit 32-bit indices (or overflows `usize`), is an
    /// [`Error::Network`], never a panic or an attempt to allocate the edge list. Dense
    /// connectivity (fully connected with self-loops, layered) never makes an edge list.
    pub fn build(spec: &NetworkSpec) -> Result<Network> {
        let bias = usize::from(spec.bias);
        let (inputs, neurons) = match &spec.topology {
            Topology::Layered { sizes } => {
                if sizes.len() < 2 || sizes[1..].contains(&0) {
                    return Err(Error::Network(format!(
                        "layered sizes {sizes:?}: need an input layer and at least one non-empty layer after it"
                    )));
                }
                let Some(neurons) = sizes[1..].iter().try_fold(0usize, |acc, &s| acc.checked_add(s)) else {
                    return Err(Error::Network(format!(
                        "layered sizes {sizes:?}: more than {} non-input neurons do not fit 32-bit indices",
                        usize::MAX
                    )));
                };
                (sizes[0], neurons)
            }
            Topology::FullyConnected { inputs, neurons, .. }
            | Topology::RandomSparse { inputs, neurons, .. }
            | Topology::Edges { inputs, neurons, .. } => (*inputs, *neurons),
        };
        if neurons == 0 {
            return Err(Error::Network("the network has no non-input neurons".into()));
        }
        let Some(n) = inputs.checked_add(bias).and_then(|d| d.checked_add(neurons)) else {
            return Err(Error::Network(format!(
                "{inputs} inputs + {bias} bias + {neurons} non-input neurons overflow usize: the neurons do not fit \
                 32-bit indices"
            )));
        };
        let d = inputs + bias; // <= n, so no overflow

        // The edge count, before any edge is made: explicit edges plus one bias edge per neuron.
        // `inputs + neurons <= n` does not overflow and `neurons >= 1` from here on.
        let explicit = match &spec.topology {
            Topology::Layered { sizes } => {
                sizes.windows(2).try_fold(0usize, |acc, w| w[0].checked_mul(w[1]).and_then(|e| e.checked_add(acc)))
            }
            Topology::FullyConnected { self_loops, .. } => {
                neurons.checked_mul(inputs + neurons - usize::from(!self_loops))
            }
            Topology::RandomSparse { fan_in, self_loops, .. } => {
                let pool = inputs + neurons - usize::from(!self_loops);
                if *fan_in > pool {
                    return Err(Error::param(
                        "fan_in",
                        fan_in,
                        format!("at most {pool} (the number of possible parents)"),
                    ));
                }
                neurons.checked_mul(*fan_in)
            }
            Topology::Edges { edges, .. } => Some(edges.len()),
        };
        let e = match explicit.and_then(|e| e.checked_add(bias * neurons)) {
            Some(e) if n < u32::MAX as usize && e < u32::MAX as usize => e,
            e => {
                let e = e.map_or_else(|| format!("more than {}", usize::MAX), |e| e.to_string());
                return Err(Error::Network(format!("{n} neurons and {e} edges do not fit 32-bit indices")));
            }
        };

        let outputs: Vec<usize> = match (&spec.outputs, &spec.topology) {
            (Some(o), _) => o.clone(),
            (None, Topology::Layered { sizes }) => (n - sizes[sizes.len() - 1]..n).collect(),
            (None, _) => vec![d],
        };
        if outputs.is_empty() {
            return Err(Error::Network("no output neurons".into()));
        }
        for (k, &o) in outputs.iter().enumerate() {
            if o < d || o >= n {
                return Err(Error::Network(format!("output {o} is not a non-input neuron (those are {d}..{n})")));
            }
            if outputs[..k].contains(&o) {
                return Err(Error::Network(format!("output {o} is listed twice")));
            }
        }
        if let Init::Uniform { gain } | Init::Normal { gain } = spec.init
            && !gain.is_finite()
        {
            return Err(Error::param("init.gain", gain, "a finite number"));
        }

        let mut rng = Rng::new(spec.seed);
        let mut dense = Vec::new();
        let mut sparse_edges = None;
        match &spec.topology {
            Topology::Layered { sizes } => {
                let mut offset = 0;
                let (mut prev, mut start) = (0..d, d); // the first layer is fed by the inputs and the bias
                for &size in &sizes[1..] {
                    let rows = start..start + size;
                    let main = DenseBlock { rows: rows.clone(), cols: prev, offset };
                    offset += main.len();
                    dense.push(main);
                    if spec.bias && start > d {
                        let b = DenseBlock { rows: rows.clone(), cols: inputs..inputs + 1, offset };
                        offset += b.len();
                        dense.push(b);
                    }
                    (prev, start) = (rows, start + size);
                }
            }
            Topology::FullyConnected { self_loops: true, .. } => {
                // Inputs, bias and every neuron: the columns are all `n` neurons.
                dense.push(DenseBlock { rows: d..n, cols: 0..n, offset: 0 });
            }
            Topology::FullyConnected { self_loops: false, .. } => {
                let mut edges = Vec::with_capacity(e);
                for i in d..n {
                    edges.extend((0..inputs).map(|j| (j, i)));
                    edges.extend((d..n).filter(|&j| j != i).map(|j| (j, i)));
                }
                sparse_edges = Some(edges);
            }
            Topology::RandomSparse { fan_in, self_loops, .. } => {
                // The possible parents of `i`: the inputs, then the non-input neurons, without
                // `i` itself unless self-loops are allowed; `k`-th of them, without a list.
                let m = inputs + (n - d) - usize::from(!self_loops);
                let parent = |i: usize, k: usize| {
                    if k < inputs {
                        return k;
                    }
                    let j = d + (k - inputs);
                    if !self_loops && j >= i { j + 1 } else { j }
                };
                let mut edges = Vec::with_capacity(e);
                let mut chosen: Vec<usize> = Vec::with_capacity(*fan_in);
                for i in d..n {
                    // `fan_in` distinct positions drawn uniformly (Floyd's algorithm: one draw
                    // each, no rejection, O(fan_in^2) with fan_in small), then sorted.
                    chosen.clear();
                    for top in m - fan_in..m {
                        let k = rng.below(top as u64 + 1) as usize;
                        chosen.push(if chosen.contains(&k) { top } else { k });
                    }
                    chosen.sort_unstable();
                    edges.extend(chosen.iter().map(|&k| (parent(i, k), i)));
                }
                sparse_edges = Some(edges);
            }
            Topology::Edges { edges, .. } => {
                let mut all = Vec::with_capacity(e);
                all.extend_from_slice(edges);
                for &(j, i) in &all {
                    if j >= n || i >= n {
                        return Err(Error::Network(format!("edge ({j} -> {i}) names a neuron outside 0..{n}")));
                    }
                    if i < d {
                        return Err(Error::Network(format!(
                            "edge ({j} -> {i}) ends in input neuron {i}; inputs are 0..{d} and have no parents"
                        )));
                    }
                }
                sparse_edges = Some(all);
            }
        }
        let sparse = match sparse_edges {
            None => None,
            Some(mut edges) => {
                if spec.bias {
                    edges.extend((d..n).map(|i| (inputs, i)));
                }
                edges.sort_unstable_by_key(|&(j, i)| (i, j));
                if let Some(w) = edges.windows(2).find(|w| w[0] == w[1]) {
                    let (j, i) = w[0];
                    return Err(Error::Network(if spec.bias && j == inputs {
                        format!(
                            "duplicate edge ({j} -> {i}): neuron {j} is the bias neuron, which `bias` already connects \
                             to every non-input neuron; drop the explicit edge or turn `bias` off"
                        )
                    } else {
                        format!("duplicate edge ({j} -> {i})")
                    }));
                }
                let offset = dense.iter().map(DenseBlock::len).sum();
                Some(SparseBlock::from_sorted(offset, n, &edges))
            }
        };
        let mut net = Network {
            inputs,
            bias: spec.bias,
            n,
            n_edges: e,
            layers: match &spec.topology {
                Topology::Layered { sizes } => Some(sizes.clone()),
                _ => None,
            },
            dense,
            sparse,
            outputs: outputs.iter().map(|&o| o as u32).collect(),
            weights: Vec::new(),
        };
        debug_assert_eq!(
            net.dense.iter().map(DenseBlock::len).sum::<usize>() + net.sparse.as_ref().map_or(0, SparseBlock::len),
            e
        );
        net.weights = net.initial_weights_drawn(spec.init, &mut rng);
        Ok(net)
    }

    /// Draws the initial weights neuron by neuron, each neuron's incoming synapses by
    /// ascending source (the same draws whatever the storage layout).
    fn initial_weights_drawn(&self, init: Init, rng: &mut Rng) -> Vec<f32> {
        let mut weights = vec![0f32; self.n_edges];
        if init == Init::Zero {
            return weights;
        }
        let mut runs: Vec<(usize, usize, usize)> = Vec::new(); // (first source, position, length)
        for i in self.d()..self.n {
            runs.clear();
            for b in self.dense.iter().filter(|b| b.rows.contains(&i)) {
                runs.push((b.cols.start, b.offset + (i - b.rows.start) * b.cols.len(), b.cols.len()));
            }
            if let Some(s) = &self.sparse {
                let (lo, hi) = (s.row_ptr[i] as usize, s.row_ptr[i + 1] as usize);
                runs.extend((lo..hi).map(|k| (s.src[k] as usize, s.offset + k, 1)));
            }
            runs.sort_unstable();
            let fan_in: usize = runs.iter().map(|r| r.2).sum();
            let scale = 1.0 / (fan_in.max(1) as f64).sqrt();
            for &(_, at, len) in &runs {
                for w in &mut weights[at..at + len] {
                    *w = match init {
                        Init::Uniform { gain } => (gain as f64 * scale * rng.range(-1.0, 1.0)) as f32,
                        Init::Normal { gain } => (gain as f64 * scale * rng.normal()) as f32,
                        Init::Zero => 0.0,
                    };
                }
            }
        }
        weights
    }

    /// Total number of neurons, inputs included.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of external inputs (the user's input channels).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Whether neuron `inputs()` is a bias neuron held at 1.
    pub fn has_bias(&self) -> bool {
        self.bias
    }

    /// Number of input neurons, `inputs() + bias`; neurons `d()..n()` are the others.
    pub fn d(&self) -> usize {
        self.inputs + usize::from(self.bias)
    }

    /// Number of edges (synapses).
    pub fn n_edges(&self) -> usize {
        self.n_edges
    }

    /// The dense blocks, in weight-vector order.
    pub fn dense_blocks(&self) -> &[DenseBlock] {
        &self.dense
    }

    /// The sparse block, if the network has one (after the dense blocks).
    pub fn sparse_block(&self) -> Option<&SparseBlock> {
        self.sparse.as_ref()
    }

    /// Source and target of every synapse, in weight-vector order (an edge list: `O(E)`).
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let dense =
            self.dense.iter().flat_map(|b| b.rows.clone().flat_map(move |i| b.cols.clone().map(move |j| (j, i))));
        let sparse = self.sparse.iter().flat_map(|s| s.src.iter().zip(&s.dst).map(|(&j, &i)| (j as usize, i as usize)));
        dense.chain(sparse)
    }

    /// Every synapse indexed by target and by source ([`EdgeIndex`]; `O(E)` memory).
    pub fn index(&self) -> EdgeIndex {
        let (src, dst): (Vec<u32>, Vec<u32>) = self.edges().map(|(j, i)| (j as u32, i as u32)).unzip();
        let group = |key: &[u32], by: &[u32]| {
            let mut order: Vec<u32> = (0..key.len() as u32).collect();
            order.sort_unstable_by_key(|&e| (key[e as usize], by[e as usize]));
            let mut ptr = vec![0u32; self.n + 1];
            for &k in key {
                ptr[k as usize + 1] += 1;
            }
            for k in 0..self.n {
                ptr[k + 1] += ptr[k];
            }
            (ptr, order)
        };
        let (in_ptr, in_edge) = group(&dst, &src);
        let (out_ptr, out_edge) = group(&src, &dst);
        EdgeIndex { src, dst, in_ptr, in_edge, out_ptr, out_edge }
    }

    /// The output neurons, in the order their targets are given.
    pub fn outputs(&self) -> &[u32] {
        &self.outputs
    }

    /// For every neuron, its position in [`Network::outputs`], or [`NOT_OUTPUT`].
    pub fn output_slots(&self) -> Vec<u32> {
        let mut slots = vec![NOT_OUTPUT; self.n];
        for (k, &o) in self.outputs.iter().enumerate() {
            slots[o as usize] = k as u32;
        }
        slots
    }

    /// The initial weights, in weight-vector order.
    pub fn initial_weights(&self) -> &[f32] {
        &self.weights
    }

    /// Layer widths, for networks built as [`Topology::Layered`].
    pub fn layers(&self) -> Option<&[usize]> {
        self.layers.as_deref()
    }

    /// Depth (number of weight layers) of a layered network.
    pub fn depth(&self) -> Option<usize> {
        self.layers.as_ref().map(|l| l.len() - 1)
    }

    /// The position of synapse `source -> target` in the weight vector, if it exists.
    pub fn edge_index(&self, source: usize, target: usize) -> Option<usize> {
        if let Some(b) = self.dense.iter().find(|b| b.rows.contains(&target) && b.cols.contains(&source)) {
            return Some(b.offset + (target - b.rows.start) * b.cols.len() + (source - b.cols.start));
        }
        let s = self.sparse.as_ref()?;
        let row = *s.row_ptr.get(target)? as usize..*s.row_ptr.get(target + 1)? as usize;
        let found = s.src[row.clone()].binary_search(&(source as u32)).ok()?;
        Some(s.offset + row.start + found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_their_variants() {
        let inits = [Init::Uniform { gain: 0.5 }, Init::Normal { gain: 2.0 }, Init::Zero];
        assert_eq!(inits.map(Init::name), Init::NAMES);
        for init in inits {
            assert_eq!(Init::named(init.name(), init.gain()).unwrap(), init);
        }
        assert!(Init::named("uniform", f32::NAN).is_err());
        assert!(Init::named("xavier", 1.0).is_err());
        let topologies = [
            Topology::Layered { sizes: vec![1, 2] },
            Topology::FullyConnected { inputs: 1, neurons: 2, self_loops: false },
            Topology::RandomSparse { inputs: 1, neurons: 2, fan_in: 1, self_loops: false },
            Topology::Edges { inputs: 1, neurons: 2, edges: vec![] },
        ];
        assert_eq!(topologies.each_ref().map(Topology::name), Topology::NAMES);
    }

    #[test]
    fn dense_topologies_are_dense_blocks_without_edge_lists() {
        let fc = NetworkSpec::fully_connected(2, 4, true).bias(true).build().unwrap();
        assert_eq!(fc.dense_blocks(), &[DenseBlock { rows: 3..7, cols: 0..7, offset: 0 }]);
        assert!(fc.sparse_block().is_none());
        assert_eq!(fc.edge_index(5, 4), Some(7 + 5));
        let layered = NetworkSpec::layered(&[3, 4, 2]).bias(true).build().unwrap();
        let blocks = layered.dense_blocks();
        assert_eq!(blocks.len(), 3, "{blocks:?}");
        assert_eq!((blocks[0].rows.clone(), blocks[0].cols.clone()), (4..8, 0..4));
        assert_eq!((blocks[1].rows.clone(), blocks[1].cols.clone(), blocks[1].offset), (8..10, 4..8, 16));
        assert_eq!((blocks[2].rows.clone(), blocks[2].cols.clone(), blocks[2].offset), (8..10, 3..4, 24));
        assert_eq!(layered.n_edges(), 26);
        // Every synapse once, each found where `edges` puts it.
        for (k, (j, i)) in layered.edges().enumerate() {
            assert_eq!(layered.edge_index(j, i), Some(k));
        }
        let sparse = NetworkSpec::fully_connected(0, 4, false).build().unwrap();
        assert!(sparse.dense_blocks().is_empty());
        assert_eq!(sparse.sparse_block().unwrap().len(), 12);
    }

    #[test]
    fn initial_weights_do_not_depend_on_the_storage_layout() {
        // The same synapses drawn dense (self-loops) or sparse (explicit edges): same values.
        let dense = NetworkSpec::fully_connected(1, 3, true).bias(true).seed(4).build().unwrap();
        let edges: Vec<(usize, usize)> = dense.edges().filter(|&(j, _)| j != 1).collect();
        let sparse = NetworkSpec::edges(1, 3, edges).bias(true).seed(4).build().unwrap();
        for (k, (j, i)) in dense.edges().enumerate() {
            let e = sparse.edge_index(j, i).unwrap();
            assert_eq!(dense.initial_weights()[k], sparse.initial_weights()[e], "{j} -> {i}");
        }
    }

    #[test]
    fn random_sparse_parents_are_distinct_uniform_and_exclude_self_and_bias() {
        let net = NetworkSpec::random_sparse(10, 200, 7, false).bias(true).seed(5).build().unwrap();
        let (d, n) = (net.d(), net.n());
        let mut hits = vec![0usize; n];
        for i in d..n {
            let ix = net.index();
            let parents: Vec<usize> = ix.incoming(i).map(|e| ix.src[e] as usize).collect();
            assert_eq!(parents.len(), 8, "7 drawn parents + the bias");
            assert!(parents.windows(2).all(|w| w[0] < w[1]), "distinct, sorted: {parents:?}");
            assert!(!parents.contains(&i), "no self-loop");
            assert_eq!(parents.iter().filter(|&&j| j == 10).count(), 1, "the bias edge only once");
            for &j in &parents {
                hits[j] += 1;
            }
        }
        // 200 x 7 draws over 209 candidates: each about 6.7 times; none far off.
        let drawn: Vec<usize> = (0..n).filter(|&j| j != 10).map(|j| hits[j]).collect();
        assert!(drawn.iter().all(|&h| h <= 20), "{drawn:?}");
        assert!(drawn.iter().filter(|&&h| h == 0).count() < 10, "{drawn:?}");
        let again = NetworkSpec::random_sparse(10, 200, 7, false).bias(true).seed(5).build().unwrap();
        assert_eq!(again, net, "seeded");
    }
}
