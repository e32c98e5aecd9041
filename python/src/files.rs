//! Experiment files, run by the command line's own runner, and checkpoints.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::OrRaise;
use crate::engine::PyState;
use crate::network::PyNetwork;
use localprop::Backend;
use localprop::checkpoint::{self, Checkpoint, CheckpointBlock};
use localprop_cli::config::Experiment;
use localprop_cli::experiment::{self, RunOptions};
use localprop_cli::shard::Shard;

/// Runs the experiment file at ``path`` as ``localprop run`` does, writing the same files
/// (``checkpoint.safetensors``, ``trace.csv``, the plots, ``summary.json``) into ``out``
/// (by default ``out/<name>``), and returns the summary (``summary.json``) as a dict.
///
/// ``backend`` (``"cpu"``, ``"gpu"``, ``"auto"``), ``steps`` and ``seed`` override the file;
/// ``shard="K/N"`` runs only shard ``K`` of ``N`` of a sweep's replicas (into
/// ``out/<name>/shard-K-of-N`` by default), as ``localprop run --shard`` does, for
/// :func:`merge` to join (docs/scaling.md);
/// ``force`` writes into a folder that already holds a run; ``quiet`` hides the progress bar
/// (shown only on a terminal). The GIL is released while it runs. Ctrl-C stops it after the
/// current block: the folder then holds the checkpoint, the trace and a summary marked
/// ``interrupted``, and ``KeyboardInterrupt`` is raised.
#[pyfunction]
#[pyo3(signature = (path, *, backend = None, out = None, steps = None, seed = None, force = false, quiet = false, shard = None))]
#[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
pub fn run_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    backend: Option<&str>,
    out: Option<PathBuf>,
    steps: Option<u64>,
    seed: Option<u64>,
    force: bool,
    quiet: bool,
    shard: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let backend: Option<Backend> = backend.map(str::parse).transpose().or_raise()?;
    let shard: Option<Shard> = shard.map(str::parse).transpose().or_raise()?;
    let out = match out {
        Some(out) => out,
        None => experiment::default_out(&path, &Experiment::load(&path).or_raise()?, shard),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let opts = RunOptions { backend, out, steps, seed, quiet, force, stop: Some(stop.clone()), shard };
    // The run goes on in a thread of its own; this one waits without the GIL and looks for
    // Ctrl-C between waits (Python's handlers run in the main thread only).
    let (result, interrupt) = std::thread::scope(|scope| {
        let run = scope.spawn(|| experiment::run(&path, &opts));
        let mut interrupt = None;
        while !run.is_finished() {
            py.detach(|| std::thread::sleep(Duration::from_millis(10)));
            if interrupt.is_none()
                && let Err(e) = py.check_signals()
            {
                stop.store(true, Ordering::Relaxed);
                interrupt = Some(e);
            }
        }
        (run.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)), interrupt)
    });
    let summary = result.or_raise()?;
    if let Some(e) = interrupt {
        return Err(e);
    }
    let json = serde_json::to_string(&summary).expect("a summary always serialises");
    py.import("json")?.call_method1("loads", (json,))
}

/// Joins the output folders of a sweep's shards (``run_file(..., shard="K/N")``, every shard
/// once, in any order) into ``out``, the folder the whole run would have written (the same
/// trace, checkpoint state and scores), and returns its summary as a dict. ``force`` writes
/// into a folder that already holds a run. As ``localprop merge``; see docs/scaling.md.
#[pyfunction]
#[pyo3(signature = (shards, out, *, force = false))]
pub fn merge<'py>(py: Python<'py>, shards: Vec<PathBuf>, out: PathBuf, force: bool) -> PyResult<Bound<'py, PyAny>> {
    let summary = py.detach(|| localprop_cli::shard::merge(&shards, &out, force)).or_raise()?;
    let json = serde_json::to_string(&summary).expect("a summary always serialises");
    py.import("json")?.call_method1("loads", (json,))
}

/// Reads a checkpoint (``checkpoint.safetensors``, version 2 or 1), checked as ``localprop
/// resume`` checks it (format, shapes, finite values, checksum).
#[pyfunction]
pub fn load_checkpoint(py: Python<'_>, path: PathBuf) -> PyResult<PyCheckpoint> {
    let ckpt = py.detach(|| checkpoint::load(&path)).or_raise()?;
    let (replicas, n, e) = (ckpt.state.replicas, ckpt.n, ckpt.n_edges());
    let s = ckpt.state;
    let array =
        |v: Vec<f32>, cols| Array2::from_shape_vec((replicas, cols), v).expect("sizes").into_pyarray(py).unbind();
    let config = py.import("json")?.call_method1("loads", (&ckpt.config_json,))?.unbind();
    Ok(PyCheckpoint {
        step: s.step,
        t: ckpt.t,
        replicas,
        n,
        n_edges: e,
        x: array(s.x, n),
        p: array(s.p, n),
        w: array(s.w, e),
        pw: array(s.pw, e),
        config,
        metadata: ckpt.metadata.clone(),
        config_json: ckpt.config_json,
        blocks: ckpt.blocks,
    })
}

/// A checkpoint's contents (the format is in ``docs/experiment-format.md``).
///
/// ``x``, ``p`` (``(replicas, n)``) and ``w``, ``pw`` (``(replicas, n_edges)``, the synapses
/// in the order of ``synapses``: the blocks' in order, each dense block row by row), ``step``,
/// ``t``, the experiment's configuration ``config`` (a dict), the run's extra ``metadata``
/// (``data_crc32``, ``diverged``) and the ``blocks``. ``state_for(network)`` is the state to
/// run ``network`` from.
#[pyclass(name = "Checkpoint", module = "localprop", frozen)]
pub struct PyCheckpoint {
    /// Steps taken.
    #[pyo3(get)]
    step: u64,
    /// The time.
    #[pyo3(get)]
    t: f64,
    /// Replicas.
    #[pyo3(get)]
    replicas: usize,
    /// Neurons, inputs and bias included.
    #[pyo3(get)]
    n: usize,
    /// Synapses.
    #[pyo3(get)]
    n_edges: usize,
    /// Neuron states.
    #[pyo3(get)]
    x: Py<PyArray2<f32>>,
    /// Scaled neuron costates.
    #[pyo3(get)]
    p: Py<PyArray2<f32>>,
    /// Weights.
    #[pyo3(get)]
    w: Py<PyArray2<f32>>,
    /// Scaled weight costates.
    #[pyo3(get)]
    pw: Py<PyArray2<f32>>,
    /// The configuration, parsed.
    #[pyo3(get)]
    config: Py<PyAny>,
    /// Extra metadata entries.
    #[pyo3(get)]
    metadata: std::collections::BTreeMap<String, String>,
    config_json: String,
    blocks: Vec<CheckpointBlock>,
}

#[pymethods]
impl PyCheckpoint {
    /// The blocks of synapses, in order: ``{"kind": "dense", "rows": (r0, r1), "cols": (c0,
    /// c1)}`` or ``{"kind": "sparse", "src": array, "dst": array}``.
    #[getter]
    fn blocks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for b in &self.blocks {
            let d = PyDict::new(py);
            match b {
                CheckpointBlock::Dense { rows, cols } => {
                    d.set_item("kind", "dense")?;
                    d.set_item("rows", (rows.start, rows.end))?;
                    d.set_item("cols", (cols.start, cols.end))?;
                }
                CheckpointBlock::Sparse { src, dst } => {
                    d.set_item("kind", "sparse")?;
                    d.set_item("src", PyArray1::from_slice(py, src))?;
                    d.set_item("dst", PyArray1::from_slice(py, dst))?;
                }
            }
            list.append(d)?;
        }
        Ok(list)
    }

    /// ``(source, target)`` of every synapse, ``uint32``, shape ``(n_edges, 2)``, in the order
    /// of ``w`` and ``pw``.
    #[getter]
    fn synapses<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<u32>> {
        let flat: Vec<u32> =
            self.blocks.iter().flat_map(CheckpointBlock::edges).flat_map(|(j, i)| [j as u32, i as u32]).collect();
        Array2::from_shape_vec((self.n_edges, 2), flat).expect("two values per synapse").into_pyarray(py)
    }

    /// The state as stored.
    #[getter]
    fn state(&self, py: Python<'_>) -> PyState {
        PyState::from_arrays(py, self.step, [&self.x, &self.p, &self.w, &self.pw])
    }

    /// The state to run ``network`` from: ``w`` and ``pw`` in the network's order (a
    /// version-1 checkpoint's are put into it); an error if the checkpoint was not taken of
    /// this network.
    fn state_for(&self, py: Python<'_>, network: PyRef<'_, PyNetwork>) -> PyResult<PyState> {
        let ckpt = Checkpoint {
            state: self.state(py).to_state(py)?,
            blocks: self.blocks.clone(),
            n: self.n,
            t: self.t,
            config_json: self.config_json.clone(),
            metadata: self.metadata.clone(),
        };
        let state = ckpt.into_state_for(&network.net).or_raise()?;
        Ok(PyState::from_state(py, state, network.net.n(), network.net.n_edges()))
    }

    fn __repr__(&self) -> String {
        format!(
            "Checkpoint(step={}, t={:?}, replicas={}, n={}, n_edges={}, blocks={})",
            self.step,
            self.t,
            self.replicas,
            self.n,
            self.n_edges,
            self.blocks.len()
        )
    }
}
