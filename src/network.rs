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

use crate::error::{Error, Result};
use crate::rng::Rng;

/// How the edges of a network are laid out.
#[derive(Clone, Debug, PartialEq)]
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

impl Default for Init {
    fn default() -> Self {
        Init::Uniform { gain: 1.0 }
    }
}

/// A complete description of a network, from which [`Network::build`] makes the graph.
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

/// The graph with its index structures and initial weights. Immutable once built.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    inputs: usize,
    bias: bool,
    n: usize,
    layers: Option<Vec<usize>>,
    row_ptr: Vec<u32>,
    edge_src: Vec<u32>,
    edge_dst: Vec<u32>,
    out_ptr: Vec<u32>,
    out_edge: Vec<u32>,
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
    /// [`Error::Network`], never a panic or an attempt to allocate the edge list.
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

        let mut rng = Rng::new(spec.seed);
        let mut edges = match &spec.topology {
            Topology::Layered { sizes } => {
                let mut edges = Vec::with_capacity(e);
                let mut start_prev = 0; // the input layer starts at 0
                let mut start = d;
                for l in 1..sizes.len() {
                    let prev_len = sizes[l - 1];
                    for i in start..start + sizes[l] {
                        for j in start_prev..start_prev + prev_len {
                            edges.push((j, i));
                        }
                    }
                    start_prev = start;
                    start += sizes[l];
                }
                edges
            }
            Topology::FullyConnected { self_loops, .. } => {
                let mut edges = Vec::with_capacity(e);
                for i in d..n {
                    edges.extend((0..inputs).map(|j| (j, i)));
                    edges.extend((d..n).filter(|&j| *self_loops || j != i).map(|j| (j, i)));
                }
                edges
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
                edges
            }
            Topology::Edges { edges, .. } => {
                let mut all = Vec::with_capacity(e);
                all.extend_from_slice(edges);
                all
            }
        };
        let layers = match &spec.topology {
            Topology::Layered { sizes } => Some(sizes.clone()),
            _ => None,
        };
        for &(j, i) in &edges {
            if j >= n || i >= n {
                return Err(Error::Network(format!("edge ({j} -> {i}) names a neuron outside 0..{n}")));
            }
            if i < d {
                return Err(Error::Network(format!(
                    "edge ({j} -> {i}) ends in input neuron {i}; inputs are 0..{d} and have no parents"
                )));
            }
        }
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
        debug_assert_eq!(edges.len(), e, "the edge count computed up front");

        let mut row_ptr = vec![0u32; n + 1];
        let mut out_ptr = vec![0u32; n + 1];
        for &(j, i) in &edges {
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

        let outputs: Vec<usize> = match (&spec.outputs, &layers) {
            (Some(o), _) => o.clone(),
            (None, Some(sizes)) => (n - sizes[sizes.len() - 1]..n).collect(),
            (None, None) => vec![d],
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
        let mut weights = vec![0f32; e];
        for i in d..n {
            let (lo, hi) = (row_ptr[i] as usize, row_ptr[i + 1] as usize);
            let scale = 1.0 / ((hi - lo).max(1) as f64).sqrt();
            for w in &mut weights[lo..hi] {
                *w = match spec.init {
                    Init::Uniform { gain } => (gain as f64 * scale * rng.range(-1.0, 1.0)) as f32,
                    Init::Normal { gain } => (gain as f64 * scale * rng.normal()) as f32,
                    Init::Zero => 0.0,
                };
            }
        }
        Ok(Network {
            inputs,
            bias: spec.bias,
            n,
            layers,
            row_ptr,
            edge_src: edges.iter().map(|&(j, _)| j as u32).collect(),
            edge_dst: edges.iter().map(|&(_, i)| i as u32).collect(),
            out_ptr,
            out_edge,
            outputs: outputs.iter().map(|&o| o as u32).collect(),
            weights,
        })
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
        self.edge_src.len()
    }

    /// CSR row pointers by target, length `n() + 1`.
    pub fn row_ptr(&self) -> &[u32] {
        &self.row_ptr
    }

    /// Source of each edge, in CSR order.
    pub fn edge_src(&self) -> &[u32] {
        &self.edge_src
    }

    /// Target of each edge, in CSR order.
    pub fn edge_dst(&self) -> &[u32] {
        &self.edge_dst
    }

    /// Pointers into [`Network::out_edge`] by source, length `n() + 1`.
    pub fn out_ptr(&self) -> &[u32] {
        &self.out_ptr
    }

    /// Edge indices grouped by source (ascending target within a source).
    pub fn out_edge(&self) -> &[u32] {
        &self.out_edge
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

    /// The initial weights, in CSR order.
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

    /// The position of edge `source -> target` in CSR order, if it exists.
    pub fn edge_index(&self, source: usize, target: usize) -> Option<usize> {
        let row = *self.row_ptr.get(target)? as usize..*self.row_ptr.get(target + 1)? as usize;
        let found = self.edge_src[row.clone()].binary_search(&(source as u32)).ok()?;
        Some(row.start + found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_sparse_parents_are_distinct_uniform_and_exclude_self_and_bias() {
        let net = NetworkSpec::random_sparse(10, 200, 7, false).bias(true).seed(5).build().unwrap();
        let (d, n) = (net.d(), net.n());
        let mut hits = vec![0usize; n];
        for i in d..n {
            let row = net.row_ptr()[i] as usize..net.row_ptr()[i + 1] as usize;
            let parents: Vec<usize> = net.edge_src()[row].iter().map(|&j| j as usize).collect();
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
