//! `localprop.Network`: a built network, made by the engine's [`NetworkSpec`] builders.

use numpy::ndarray::{Array2, ArrayD, IxDyn};
use numpy::{AllowTypeChange, IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayLikeDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::{OrRaise, error};
use localprop::{Init, Network, NetworkSpec, Topology};

/// A network: neurons numbered inputs first (``0..inputs``), then the bias neuron (index
/// ``inputs``, when there is one), then every other neuron; synapses stored as the engine
/// stores them (dense blocks, then a sparse block), in the order of ``synapses``, which is the
/// order of the state's ``w`` and ``pw``.
///
/// Made by ``Network.layered``, ``Network.fully_connected``, ``Network.random_sparse``,
/// ``Network.edges`` or ``Network.tracking``. Each takes ``bias`` (a bias neuron feeding every
/// non-input neuron), ``outputs`` (output neuron indices; by default the last layer, or the
/// first non-input neuron), ``init`` (``"uniform"``, ``"normal"`` or ``"zero"``; by default
/// uniform), ``init_gain`` (the scale ``g`` of ``U(-g/sqrt(fan_in), g/sqrt(fan_in))`` or
/// ``N(0, (g/sqrt(fan_in))^2)``; by default 1) and ``seed`` (of the weights and of random edges).
#[pyclass(name = "Network", module = "localprop", frozen)]
pub struct PyNetwork {
    pub spec: NetworkSpec,
    pub net: Network,
}

/// The options every builder takes, applied to `spec`, and the network built.
fn finish(
    py: Python<'_>,
    spec: NetworkSpec,
    bias: bool,
    outputs: Option<Vec<usize>>,
    init: Option<&str>,
    init_gain: Option<f32>,
    seed: u64,
) -> PyResult<PyNetwork> {
    let mut spec = spec.bias(bias).seed(seed);
    if let Some(outputs) = outputs {
        spec = spec.outputs(outputs);
    }
    if init.is_some() || init_gain.is_some() {
        let default = Init::default();
        spec = spec.init(Init::named(init.unwrap_or(default.name()), init_gain.unwrap_or(default.gain())).or_raise()?);
    }
    // Large networks take a while to draw their weights: without the GIL.
    let net = py.detach(|| spec.build()).or_raise()?;
    Ok(PyNetwork { spec, net })
}

#[pymethods]
impl PyNetwork {
    /// Layers ``sizes[0] -> sizes[1] -> ...``, each fully connected to the next; ``sizes[0]``
    /// is the number of external inputs, the last layer holds the outputs.
    #[staticmethod]
    #[pyo3(signature = (sizes, *, bias = false, outputs = None, init = None, init_gain = None, seed = 0))]
    fn layered(
        py: Python<'_>,
        sizes: Vec<usize>,
        bias: bool,
        outputs: Option<Vec<usize>>,
        init: Option<&str>,
        init_gain: Option<f32>,
        seed: u64,
    ) -> PyResult<Self> {
        finish(py, NetworkSpec::layered(&sizes), bias, outputs, init, init_gain, seed)
    }

    /// ``neurons`` non-input neurons, each fed by every input and every other neuron (and by
    /// itself when ``self_loops``).
    #[staticmethod]
    #[pyo3(signature = (inputs, neurons, self_loops = false, *, bias = false, outputs = None, init = None, init_gain = None, seed = 0))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn fully_connected(
        py: Python<'_>,
        inputs: usize,
        neurons: usize,
        self_loops: bool,
        bias: bool,
        outputs: Option<Vec<usize>>,
        init: Option<&str>,
        init_gain: Option<f32>,
        seed: u64,
    ) -> PyResult<Self> {
        finish(py, NetworkSpec::fully_connected(inputs, neurons, self_loops), bias, outputs, init, init_gain, seed)
    }

    /// Each non-input neuron draws ``fan_in`` distinct parents uniformly from the inputs and
    /// the non-input neurons (itself only when ``self_loops``), seeded by ``seed``.
    #[staticmethod]
    #[pyo3(signature = (inputs, neurons, fan_in, self_loops = false, *, bias = false, outputs = None, init = None, init_gain = None, seed = 0))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn random_sparse(
        py: Python<'_>,
        inputs: usize,
        neurons: usize,
        fan_in: usize,
        self_loops: bool,
        bias: bool,
        outputs: Option<Vec<usize>>,
        init: Option<&str>,
        init_gain: Option<f32>,
        seed: u64,
    ) -> PyResult<Self> {
        let spec = NetworkSpec::random_sparse(inputs, neurons, fan_in, self_loops);
        finish(py, spec, bias, outputs, init, init_gain, seed)
    }

    /// An explicit list of ``(source, target)`` synapses in the numbering above; targets must
    /// not be input neurons.
    #[staticmethod]
    #[pyo3(signature = (inputs, neurons, edges, *, bias = false, outputs = None, init = None, init_gain = None, seed = 0))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn edges(
        py: Python<'_>,
        inputs: usize,
        neurons: usize,
        edges: Vec<(usize, usize)>,
        bias: bool,
        outputs: Option<Vec<usize>>,
        init: Option<&str>,
        init_gain: Option<f32>,
        seed: u64,
    ) -> PyResult<Self> {
        finish(py, NetworkSpec::edges(inputs, neurons, edges), bias, outputs, init, init_gain, seed)
    }

    /// The paper's tracking network: 5 fully connected tanh neurons with self-loops, a bias,
    /// no input, output neuron 1, weights drawn with seed 1 (use it with ``Params.tracking``).
    #[staticmethod]
    fn tracking(py: Python<'_>) -> PyResult<Self> {
        let spec = NetworkSpec::tracking();
        let net = py.detach(|| spec.build()).or_raise()?;
        Ok(PyNetwork { spec, net })
    }

    /// Number of neurons, inputs and bias included.
    #[getter]
    fn n(&self) -> usize {
        self.net.n()
    }

    /// Number of input neurons: the external inputs and the bias.
    #[getter]
    fn d(&self) -> usize {
        self.net.d()
    }

    /// Number of external inputs.
    #[getter]
    fn inputs(&self) -> usize {
        self.net.inputs()
    }

    /// Whether the network has a bias neuron (index ``inputs``).
    #[getter]
    fn bias(&self) -> bool {
        self.net.has_bias()
    }

    /// The output neurons.
    #[getter]
    fn outputs(&self) -> Vec<u32> {
        self.net.outputs().to_vec()
    }

    /// Number of synapses.
    #[getter]
    fn n_edges(&self) -> usize {
        self.net.n_edges()
    }

    /// Layer widths of a layered network, inputs first; ``None`` for other topologies.
    #[getter]
    fn layers(&self) -> Option<Vec<usize>> {
        self.net.layers().map(<[usize]>::to_vec)
    }

    /// The topology's name: ``layered``, ``fully-connected``, ``random-sparse`` or ``edges``.
    #[getter]
    fn topology(&self) -> &'static str {
        self.spec.topology.name()
    }

    /// The seed of the weights (and of random edges).
    #[getter]
    fn seed(&self) -> u64 {
        self.spec.seed
    }

    /// ``(source, target)`` of every synapse, ``uint32``, shape ``(n_edges, 2)``, in the order
    /// of the state's ``w`` and ``pw``.
    #[getter]
    fn synapses<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<u32>> {
        let flat: Vec<u32> = self.net.edges().flat_map(|(j, i)| [j as u32, i as u32]).collect();
        Array2::from_shape_vec((self.net.n_edges(), 2), flat).expect("two values per edge").into_pyarray(py)
    }

    /// The initial weights, ``float32``, shape ``(n_edges,)``, in the order of ``synapses``.
    #[getter]
    fn initial_weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        PyArray1::from_slice(py, self.net.initial_weights())
    }

    /// Weights in the order of ``synapses`` (shape ``(..., n_edges)``: one replica's ``w``, or
    /// the ``w`` of a state, ``(replicas, n_edges)``) as dense matrices of shape
    /// ``(..., n, n)``: ``W[..., i, j]`` is the weight of ``j -> i``, 0 where there is no synapse.
    fn weight_matrix<'py>(
        &self,
        py: Python<'py>,
        w: PyArrayLikeDyn<'py, f32, AllowTypeChange>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let (n, e) = (self.net.n(), self.net.n_edges());
        let shape = w.shape().to_vec();
        if shape.last() != Some(&e) {
            return Err(error(format!("`w` has shape {shape:?}; want (..., n_edges) with n_edges = {e}")));
        }
        let w: Vec<f32> = w.as_array().iter().copied().collect();
        let lead: usize = shape[..shape.len() - 1].iter().product();
        let mut out = vec![0f32; lead * n * n];
        let edges: Vec<(usize, usize)> = self.net.edges().collect();
        for (k, matrix) in out.chunks_exact_mut(n * n).enumerate() {
            for (&(j, i), &v) in edges.iter().zip(&w[k * e..(k + 1) * e]) {
                matrix[i * n + j] = v;
            }
        }
        let mut dims = shape[..shape.len() - 1].to_vec();
        dims.extend([n, n]);
        Ok(ArrayD::from_shape_vec(IxDyn(&dims), out).expect("sizes agree").into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        let shape = match &self.spec.topology {
            Topology::Layered { sizes } => format!("sizes={sizes:?}"),
            Topology::FullyConnected { inputs, neurons, self_loops } => {
                format!("inputs={inputs}, neurons={neurons}, self_loops={}", py_bool(*self_loops))
            }
            Topology::RandomSparse { inputs, neurons, fan_in, self_loops } => {
                format!("inputs={inputs}, neurons={neurons}, fan_in={fan_in}, self_loops={}", py_bool(*self_loops))
            }
            Topology::Edges { inputs, neurons, edges } => {
                format!("inputs={inputs}, neurons={neurons}, edges=<{} edges>", edges.len())
            }
        };
        format!(
            "Network({}: {shape}, bias={}, outputs={:?}, init={}, seed={}; n={}, n_edges={})",
            self.spec.topology.name(),
            py_bool(self.net.has_bias()),
            self.net.outputs(),
            self.spec.init.name(),
            self.spec.seed,
            self.net.n(),
            self.net.n_edges()
        )
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}
