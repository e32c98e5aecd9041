//! `localprop.Engine`, the `Trace` a run returns and the `State` it reads and writes.

use std::sync::{Arc, Mutex, PoisonError};

use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{
    AllowTypeChange, IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayLikeDyn, PyArrayMethods, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySlice};

use crate::network::PyNetwork;
use crate::params::PyParams;
use crate::streams::{Failure, Kind, Shape, Source, tuple};
use crate::{OrRaise, error};
use localprop::engine::DEFAULT_BLOCK_STEPS;
use localprop::{Backend, Engine, Flow, OnDivergence, Params, Policy, State, Streams, Trace};
use localprop_cli::output::TraceColumns;

/// Runs the lockstep dynamics of one network for one or more replicas, on the CPU or a GPU.
///
/// ``Engine(network, params, backend="auto", replicas=None, *, record_every=1,
/// block_steps=None, on_divergence="error")``
///
/// - ``params``: one ``Params`` for every replica, or a list with one per replica (they must
///   share ``tau``, the activation, the policy and ``learning``).
/// - ``backend``: ``"cpu"``, ``"gpu"`` (an error without an adapter) or ``"auto"`` (a real GPU
///   for large work, never a software adapter unless ``WGPU_ADAPTER_NAME`` names it; else
///   the CPU; ``backend_reason`` says why).
/// - ``replicas``: how many copies of one ``Params`` to run (by default 1, or the list's length).
/// - ``record_every``: record every n-th step in the trace.
/// - ``block_steps``: steps prepared, run and read back at once (default 256).
/// - ``on_divergence``: ``"error"`` raises ``LocalpropError`` at the first non-finite step;
///   ``"continue"`` marks the replica (``diverged``), records NaN for it and goes on.
#[pyclass(name = "Engine", module = "localprop")]
pub struct PyEngine {
    engine: Engine,
    network: Py<PyNetwork>,
    /// The engine's settings, kept to rebuild it ([`PyEngine::rebuild`]).
    record_every: u64,
    block_steps: usize,
    on_divergence: OnDivergence,
    /// Set when a GPU run stopped with an error while a block was in flight: the engine's
    /// pipeline then still holds that block's records, which would be taken for the next
    /// run's. Such an engine runs again only after `set_state`, which rebuilds it.
    stale: Option<String>,
}

/// `params` as one set per replica.
fn replica_params(params: &Bound<'_, PyAny>, replicas: Option<usize>) -> PyResult<Vec<Params>> {
    if let Ok(one) = params.cast::<PyParams>() {
        let k = replicas.unwrap_or(1);
        if k == 0 {
            return Err(error("invalid parameter `replicas` = 0: at least one replica"));
        }
        return Ok(vec![one.get().inner.clone(); k]);
    }
    let list: Vec<Bound<'_, PyParams>> =
        params.extract().map_err(|_| error("`params`: want a Params, or a list of Params (one per replica)"))?;
    if let Some(k) = replicas.filter(|&k| k != list.len()) {
        return Err(error(format!("`replicas` = {k} but `params` lists {} parameter sets", list.len())));
    }
    Ok(list.iter().map(|p| p.get().inner.clone()).collect())
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (network, params, backend = "auto", replicas = None, *, record_every = 1, block_steps = None, on_divergence = "error"))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        py: Python<'_>,
        network: Bound<'_, PyNetwork>,
        params: Bound<'_, PyAny>,
        backend: &str,
        replicas: Option<usize>,
        record_every: u64,
        block_steps: Option<usize>,
        on_divergence: &str,
    ) -> PyResult<Self> {
        let params = replica_params(&params, replicas)?;
        let backend: Backend = backend.parse().or_raise()?;
        let on_divergence = divergence_policy(on_divergence)?;
        let net = network.get().net.clone();
        // A GPU backend looks for an adapter and makes a device: without the GIL.
        let mut engine = py.detach(|| Engine::with_backend(net, params, backend)).or_raise()?;
        engine.set_record_every(record_every).or_raise()?;
        let block_steps = block_steps.unwrap_or(DEFAULT_BLOCK_STEPS);
        py.detach(|| engine.set_block_steps(block_steps)).or_raise()?;
        engine.set_on_divergence(on_divergence);
        Ok(PyEngine { engine, network: network.unbind(), record_every, block_steps, on_divergence, stale: None })
    }

    /// Runs ``steps`` steps and returns the recorded steps as a ``Trace``.
    ///
    /// Each stream is an array or a callable. An array holds one row per step of this run:
    /// shape ``(steps, channels)``, shared by the replicas, or ``(replicas, steps, channels)``.
    /// A callable ``f(step, t)`` returns the values at that step (``t = step * tau``): shape
    /// ``(channels,)``, or ``(replicas, channels)``, or a number when there is one channel;
    /// it is called once per step, in step order, with the GIL held.
    ///
    /// - ``targets`` (required): one channel per output.
    /// - ``inputs``: one channel per external input (required when the network has inputs).
    ///   The last step also reads the inputs of the step after it (its synapse pass sums the
    ///   next pre-activations), so a callable is called for ``steps + 1`` steps, and a following
    ///   run calls it again for that step: it must return the same values then. An array may
    ///   have ``steps + 1`` rows for this; with ``steps`` rows its last row is held.
    /// - ``masks``: 0 or 1 per output and step (by default 1).
    ///
    /// The GIL is released while the engine steps (taken back for callables, and once per
    /// block to let Ctrl-C through: ``KeyboardInterrupt`` after the current block, the
    /// engine's state at the end of it). Arrays are copied once at the start of the run, and
    /// their values checked then (finite; masks 0 or 1), before any step.
    ///
    /// An error in the middle of a run (a callable's exception, a divergence) is raised with
    /// the steps before it taken: on the CPU the engine stands at the end of the last whole
    /// block and can run on. On a GPU a block may still be in flight, so the engine refuses to
    /// run again until ``set_state`` (``engine.set_state(engine.state)`` to go on) rebuilds it.
    #[pyo3(signature = (steps, inputs = None, targets = None, masks = None))]
    fn run(
        &mut self,
        py: Python<'_>,
        steps: u64,
        inputs: Option<Bound<'_, PyAny>>,
        targets: Option<Bound<'_, PyAny>>,
        masks: Option<Bound<'_, PyAny>>,
    ) -> PyResult<PyTrace> {
        if let Some(why) = &self.stale {
            return Err(error(format!(
                "this engine's last run stopped with an error while a block of steps was in flight on the GPU ({why}); \
                 `set_state(...)` (`engine.state` reads the current one) rebuilds it to go on"
            )));
        }
        let net = self.engine.network();
        let (replicas, n_in, n_out, first) =
            (self.engine.replicas(), net.inputs(), net.outputs().len(), self.engine.step());
        let Some(targets) = targets else {
            return Err(error(format!("`targets` is required: one channel per output ({n_out})")));
        };
        let failure: Failure = Arc::new(Mutex::new(None));
        let shape = |channels| Shape { steps: steps as usize, replicas, channels, first };
        let source = |obj: Option<Bound<'_, PyAny>>, kind, channels| {
            obj.map(|o| Source::new(&o, kind, shape(channels), &failure)).transpose()
        };
        let inputs = source(inputs, Kind::Inputs, n_in)?;
        let targets = Source::new(&targets, Kind::Targets, shape(n_out), &failure)?;
        let masks = source(masks, Kind::Masks, n_out)?;
        let mut streams: Vec<Streams> = (0..replicas)
            .map(|r| Streams {
                input: inputs.as_ref().map(|s| s.signal(r)),
                target: targets.signal(r),
                mask: masks.as_ref().map(|s| s.signal(r)),
            })
            .collect();

        let mut trace = Trace::new(replicas, n_out);
        let mut interrupt = None;
        let (engine, block) = (&mut self.engine, self.block_steps as u64);
        let ran = if engine.backend() == Backend::Cpu {
            // On the CPU a block runs when it is submitted: one block per call costs nothing,
            // and an error (a stream's, a divergence) leaves no block in flight.
            py.detach(|| {
                let mut done = 0;
                while done < steps {
                    let len = (steps - done).min(block);
                    let ran = engine.run_blocks(len, &mut streams, |_, part| {
                        trace.extend_from(part);
                        Ok(Flow::Continue)
                    })?;
                    done += ran;
                    if ran < len {
                        break; // every replica diverged
                    }
                    if done < steps
                        && let Err(e) = Python::attach(|py| py.check_signals())
                    {
                        interrupt = Some(e);
                        break;
                    }
                }
                Ok(())
            })
        } else {
            // On the GPU the next block is prepared while the device computes one: an error
            // mid-run can leave a block in flight (see `stale`).
            let ran = py.detach(|| {
                engine.run_blocks(steps, &mut streams, |_, part| {
                    trace.extend_from(part);
                    Ok(match Python::attach(|py| py.check_signals()) {
                        Ok(()) => Flow::Continue,
                        Err(e) => {
                            interrupt = Some(e);
                            Flow::Stop
                        }
                    })
                })
            });
            if let Err(e) = &ran {
                self.stale = Some(e.to_string());
            }
            ran.map(|_| ())
        };
        // The callable's own error first: the engine's is only about the NaN left in its place.
        let failed = failure.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(e) = failed {
            if self.stale.is_some() {
                self.stale = Some(format!("a stream callable raised {e}"));
            }
            return Err(e);
        }
        ran.or_raise()?;
        if let Some(e) = interrupt {
            return Err(e);
        }
        let sign_per_replica = matches!(self.engine.params()[0].policy, Policy::HsfBall { .. });
        PyTrace::new(py, trace, masks.is_some(), sign_per_replica)
    }

    /// The full state, read now (on a GPU: read back, waiting for the steps in flight). Its
    /// arrays are the engine's values copied once and handed to numpy without a further copy.
    #[getter]
    fn state(&mut self, py: Python<'_>) -> PyResult<PyState> {
        let engine = &mut self.engine;
        let state = py.detach(|| engine.state()).or_raise()?;
        let (n, e) = (self.engine.network().n(), self.engine.network().n_edges());
        Ok(PyState::from_state(py, state, n, e))
    }

    /// Replaces the state: with ``state`` (a ``State``), or with the arrays given, the others
    /// kept (``x``, ``p``: ``(replicas, n)``; ``w``, ``pw``: ``(replicas, n_edges)``, the
    /// synapses in the order of ``network.synapses``; ``step``, by default the state's or the
    /// engine's). The arrays are copied (twice: into a state, then into the engine's buffers).
    /// Sizes and finiteness are checked first; on an error nothing changes.
    #[pyo3(signature = (state = None, *, x = None, p = None, w = None, pw = None, step = None))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn set_state(
        &mut self,
        py: Python<'_>,
        state: Option<Bound<'_, PyState>>,
        x: Option<Bound<'_, PyAny>>,
        p: Option<Bound<'_, PyAny>>,
        w: Option<Bound<'_, PyAny>>,
        pw: Option<Bound<'_, PyAny>>,
        step: Option<u64>,
    ) -> PyResult<()> {
        let (replicas, n, e) = (self.engine.replicas(), self.engine.network().n(), self.engine.network().n_edges());
        let mut base = match &state {
            Some(s) => s.get().to_state(py)?,
            None if x.is_none() || p.is_none() || w.is_none() || pw.is_none() => {
                let engine = &mut self.engine;
                py.detach(|| engine.state()).or_raise()?
            }
            None => State { step: self.engine.step(), replicas, x: vec![], p: vec![], w: vec![], pw: vec![] },
        };
        let fields = [
            ("x", x, &mut base.x, (n, "n")),
            ("p", p, &mut base.p, (n, "n")),
            ("w", w, &mut base.w, (e, "n_edges")),
            ("pw", pw, &mut base.pw, (e, "n_edges")),
        ];
        for (name, given, slot, per) in fields {
            if let Some(a) = given {
                *slot = matrix(name, &a, replicas, per)?;
            }
        }
        if let Some(step) = step {
            base.step = step;
        }
        base.check(replicas, n, e).or_raise()?;
        if self.stale.is_some() {
            self.rebuild(py)?;
        }
        let engine = &mut self.engine;
        py.detach(|| engine.set_state(&base)).or_raise()
    }

    /// Steps recorded: every ``record_every``-th.
    #[getter]
    fn record_every(&self) -> u64 {
        self.record_every
    }

    /// Steps prepared, run and read back at once.
    #[getter]
    fn block_steps(&self) -> usize {
        self.block_steps
    }

    /// The messages ``e_hat_i = c_i sigma'(a_i) p_i`` and the state powers
    /// ``h_i = p_i c_i (sigma(a_i) - x_i)`` computed by the last step, each ``(replicas, n)``.
    fn last_messages<'py>(&mut self, py: Python<'py>) -> PyResult<Pair<'py>> {
        let engine = &mut self.engine;
        let (e_hat, h) = py.detach(|| engine.last_messages()).or_raise()?;
        let (r, n) = (self.engine.replicas(), self.engine.network().n());
        Ok((array2(py, e_hat, r, n), array2(py, h, r, n)))
    }

    /// Steps taken so far.
    #[getter]
    fn step(&self) -> u64 {
        self.engine.step()
    }

    /// The time ``step * tau``.
    #[getter]
    fn time(&self) -> f64 {
        self.engine.time()
    }

    /// Number of replicas.
    #[getter]
    fn replicas(&self) -> usize {
        self.engine.replicas()
    }

    /// ``"cpu"`` or ``"gpu"``.
    #[getter]
    fn backend(&self) -> &'static str {
        self.engine.backend().name()
    }

    /// ``"cpu"``, or ``"gpu: "`` and the adapter.
    #[getter]
    fn backend_description(&self) -> String {
        self.engine.backend_description()
    }

    /// Why the engine runs where it does (``"auto: ..."`` for ``backend="auto"``).
    #[getter]
    fn backend_reason(&self) -> String {
        self.engine.backend_reason().to_string()
    }

    /// The kernel family that runs each block of synapses.
    #[getter]
    fn kernel_families(&self) -> String {
        self.engine.kernel_families()
    }

    /// The network.
    #[getter]
    fn network(&self, py: Python<'_>) -> Py<PyNetwork> {
        self.network.clone_ref(py)
    }

    /// The parameters of each replica.
    #[getter]
    fn params(&self) -> Vec<PyParams> {
        self.engine.params().iter().map(|p| PyParams { inner: p.clone() }).collect()
    }

    /// Per replica, ``None``, or where it diverged (with ``on_divergence="continue"``): a dict
    /// with ``step``, ``quantity`` (``x``, ``p``, ``a``, ``loss``, ...) and ``value``.
    #[getter]
    fn diverged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for d in self.engine.diverged() {
            match d {
                None => list.append(py.None())?,
                Some(d) => {
                    let dict = PyDict::new(py);
                    dict.set_item("step", d.step)?;
                    dict.set_item("quantity", d.quantity)?;
                    dict.set_item("value", d.value_text())?;
                    list.append(dict)?;
                }
            }
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!(
            "Engine(backend={:?}, replicas={}, step={}, n={}, n_edges={}, kernels={:?})",
            self.engine.backend_description(),
            self.engine.replicas(),
            self.engine.step(),
            self.engine.network().n(),
            self.engine.network().n_edges(),
            self.engine.kernel_families()
        )
    }
}

impl PyEngine {
    /// A fresh engine of the same network, parameters, backend and settings, with the marks
    /// of the replicas that diverged, in place of this one (its state is set after).
    fn rebuild(&mut self, py: Python<'_>) -> PyResult<()> {
        let (net, params, backend) =
            (self.engine.network().clone(), self.engine.params().to_vec(), self.engine.backend());
        let mut fresh = py.detach(|| Engine::with_backend(net, params, backend)).or_raise()?;
        fresh.set_record_every(self.record_every).or_raise()?;
        let block_steps = self.block_steps;
        py.detach(|| fresh.set_block_steps(block_steps)).or_raise()?;
        fresh.set_on_divergence(self.on_divergence);
        for (r, d) in self.engine.diverged().iter().enumerate() {
            fresh.set_diverged(r, *d).or_raise()?;
        }
        self.engine = fresh;
        self.stale = None;
        Ok(())
    }
}

/// Two arrays, as a tuple.
type Pair<'py> = (Bound<'py, PyArray2<f32>>, Bound<'py, PyArray2<f32>>);

fn divergence_policy(name: &str) -> PyResult<OnDivergence> {
    match name {
        "error" => Ok(OnDivergence::Error),
        "continue" => Ok(OnDivergence::Continue),
        _ => Err(error(format!("invalid parameter `on_divergence` = {name:?}: one of error, continue"))),
    }
}

/// A `(replicas, per)` array's values, row-major, or an error naming `name` and both shapes.
fn matrix(name: &str, a: &Bound<'_, PyAny>, replicas: usize, (per, what): (usize, &str)) -> PyResult<Vec<f32>> {
    let a: PyArrayLikeDyn<'_, f32, AllowTypeChange> =
        a.extract().map_err(|e| error(format!("`{name}`: {e}; want an array of numbers")))?;
    let dims = a.shape();
    if dims != [replicas, per] {
        return Err(error(format!(
            "`{name}` has shape {}; the engine needs (replicas, {what}) = {}",
            tuple(dims),
            tuple(&[replicas, per])
        )));
    }
    Ok(a.as_slice().map_or_else(|_| a.as_array().iter().copied().collect(), <[f32]>::to_vec))
}

/// `v` as a `(rows, cols)` array, moved into numpy without a copy.
fn array2(py: Python<'_>, v: Vec<f32>, rows: usize, cols: usize) -> Bound<'_, PyArray2<f32>> {
    Array2::from_shape_vec((rows, cols), v).expect("rows x cols values").into_pyarray(py)
}

/// The recorded steps of a run: one row per recorded step. The arrays are the engine's own
/// columns, handed to numpy without a copy.
///
/// - ``step`` (``uint64``), ``t`` (``float64``): shape ``(rows,)``.
/// - ``sign``, the sign each replica's state equations took at that step (the same for every
///   replica but under ``hsf-ball``), and ``loss``, ``lagrangian``, ``hamiltonian`` (scaled by ``1/phi``, from the state at that
///   step, before its update): shape ``(rows, replicas)``.
/// - ``outputs``, ``targets``, ``masks``: shape ``(rows, replicas, n_out)``.
#[pyclass(name = "Trace", module = "localprop", frozen)]
pub struct PyTrace {
    /// Step of each row.
    #[pyo3(get)]
    step: Py<PyArray1<u64>>,
    /// Time of each row.
    #[pyo3(get)]
    t: Py<PyArray1<f64>>,
    /// Sign of the state equations at each row's step, per replica.
    #[pyo3(get)]
    sign: Py<PyArray2<f32>>,
    /// Loss per row and replica.
    #[pyo3(get)]
    loss: Py<PyArray2<f32>>,
    /// Scaled Lagrangian per row and replica.
    #[pyo3(get)]
    lagrangian: Py<PyArray2<f32>>,
    /// Scaled Hamiltonian per row and replica.
    #[pyo3(get)]
    hamiltonian: Py<PyArray2<f32>>,
    /// Outputs per row, replica and output.
    #[pyo3(get)]
    outputs: Py<PyArray3<f32>>,
    /// Targets per row, replica and output.
    #[pyo3(get)]
    targets: Py<PyArray3<f32>>,
    /// Masks per row, replica and output.
    #[pyo3(get)]
    masks: Py<PyArray3<f32>>,
    /// Number of replicas.
    #[pyo3(get)]
    replicas: usize,
    /// Outputs per replica.
    #[pyo3(get)]
    n_out: usize,
    /// Whether the run had masks (``to_pandas`` then has mask columns, as ``trace.csv`` does).
    #[pyo3(get)]
    has_masks: bool,
    /// Whether each replica took its own sign (``hsf-ball``): ``to_pandas`` then has a sign
    /// column per replica, as ``trace.csv`` does.
    #[pyo3(get)]
    sign_per_replica: bool,
}

impl PyTrace {
    fn new(py: Python<'_>, trace: Trace, has_masks: bool, sign_per_replica: bool) -> PyResult<Self> {
        let (rows, replicas, n_out) = (trace.rows(), trace.replicas, trace.n_out);
        let fits = |v: &[f32], per: usize| v.len() == rows * replicas * per;
        let columns = [(&trace.sign, 1), (&trace.loss, 1), (&trace.lagrangian, 1), (&trace.hamiltonian, 1)];
        if !columns.iter().all(|(v, per)| fits(v, *per))
            || [&trace.outputs, &trace.targets, &trace.masks].iter().any(|v| !fits(v, n_out))
        {
            return Err(error(format!(
                "the engine returned a trace of {rows} steps whose columns do not all have them"
            )));
        }
        let per_replica = |v: Vec<f32>| array2(py, v, rows, replicas).unbind();
        let per_output =
            |v: Vec<f32>| Array3::from_shape_vec((rows, replicas, n_out), v).expect("sizes").into_pyarray(py).unbind();
        Ok(PyTrace {
            step: Array1::from_vec(trace.step).into_pyarray(py).unbind(),
            t: Array1::from_vec(trace.t).into_pyarray(py).unbind(),
            sign: per_replica(trace.sign),
            loss: per_replica(trace.loss),
            lagrangian: per_replica(trace.lagrangian),
            hamiltonian: per_replica(trace.hamiltonian),
            outputs: per_output(trace.outputs),
            targets: per_output(trace.targets),
            masks: per_output(trace.masks),
            replicas,
            n_out,
            has_masks,
            sign_per_replica,
        })
    }

    fn rows(&self, py: Python<'_>) -> usize {
        self.step.bind(py).len()
    }
}

#[pymethods]
impl PyTrace {
    /// Normalised mean squared error of output ``output`` of ``replica`` over the rows from
    /// ``start`` on (by default the second half, as the command line's summary computes it):
    /// the mean of ``(x_o - z_o)^2`` over the target's variance there; NaN for a constant target.
    #[pyo3(signature = (replica = 0, output = 0, start = None))]
    fn nmse(&self, py: Python<'_>, replica: usize, output: usize, start: Option<usize>) -> PyResult<f64> {
        let rows = self.rows(py);
        let start = start.unwrap_or(rows / 2);
        if replica >= self.replicas || output >= self.n_out || start >= rows {
            return Err(error(format!(
                "nmse(replica={replica}, output={output}, start={start}): the trace has {} replicas, {} outputs, {rows} rows",
                self.replicas, self.n_out
            )));
        }
        // The engine's own definition, on copies of the two columns it reads.
        let copy = |a: &Py<PyArray3<f32>>| a.bind(py).to_vec().map_err(|e| error(e.to_string()));
        let trace = Trace {
            step: vec![0; rows],
            outputs: copy(&self.outputs)?,
            targets: copy(&self.targets)?,
            ..Trace::new(self.replicas, self.n_out)
        };
        Ok(trace.nmse(replica, output, start))
    }

    /// The trace as a ``pandas.DataFrame`` with the columns of the command line's
    /// ``trace.csv``: ``step``, ``t``, ``sign``, then per replica (prefixed ``r<k>_`` when
    /// there are several) ``loss``, ``lagrangian``, ``hamiltonian``, and ``out<o>``,
    /// ``target<o>`` (and ``mask<o>`` when the run had masks) per output. Needs pandas.
    fn to_pandas<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pandas = py.import("pandas")?;
        let layout =
            TraceColumns { masks: self.has_masks, sign_per_replica: self.sign_per_replica, ..Default::default() };
        let names = localprop_cli::output::trace_header(&Trace::new(self.replicas, self.n_out), layout);
        let all = PySlice::full(py);
        let mut columns: Vec<Bound<'py, PyAny>> =
            vec![self.step.bind(py).clone().into_any(), self.t.bind(py).clone().into_any()];
        if !self.sign_per_replica {
            columns.push(self.sign.bind(py).get_item((&all, 0))?);
        }
        for r in 0..self.replicas {
            if self.sign_per_replica {
                columns.push(self.sign.bind(py).get_item((&all, r))?);
            }
            for energy in [&self.loss, &self.lagrangian, &self.hamiltonian] {
                columns.push(energy.bind(py).get_item((&all, r))?);
            }
            for o in 0..self.n_out {
                columns.push(self.outputs.bind(py).get_item((&all, r, o))?);
                columns.push(self.targets.bind(py).get_item((&all, r, o))?);
                if self.has_masks {
                    columns.push(self.masks.bind(py).get_item((&all, r, o))?);
                }
            }
        }
        debug_assert_eq!(names.len(), columns.len());
        let dict = PyDict::new(py);
        for (name, column) in names.iter().zip(columns) {
            dict.set_item(name, column)?;
        }
        pandas.getattr("DataFrame")?.call1((dict,))
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.rows(py)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Trace(rows={}, replicas={}, n_out={})", self.rows(py), self.replicas, self.n_out)
    }
}

/// The full dynamic state of an engine at step ``step``: ``x`` and ``p`` (neuron states and
/// scaled costates, ``(replicas, n)``), ``w`` and ``pw`` (weights and scaled weight
/// costates, ``(replicas, n_edges)``, in the order of ``network.synapses``), all ``float32``.
///
/// ``State(x, p, w, pw, step=0)`` makes one from arrays (copied as ``float32``).
#[pyclass(name = "State", module = "localprop", frozen)]
pub struct PyState {
    /// Steps taken.
    #[pyo3(get)]
    step: u64,
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
}

impl PyState {
    /// A state's vectors moved into numpy, `n` neurons and `e` synapses per replica.
    pub fn from_state(py: Python<'_>, s: State, n: usize, e: usize) -> Self {
        let r = s.replicas;
        PyState {
            step: s.step,
            x: array2(py, s.x, r, n).unbind(),
            p: array2(py, s.p, r, n).unbind(),
            w: array2(py, s.w, r, e).unbind(),
            pw: array2(py, s.pw, r, e).unbind(),
        }
    }

    /// A state of the arrays given (the same arrays, not copies).
    pub fn from_arrays(py: Python<'_>, step: u64, [x, p, w, pw]: [&Py<PyArray2<f32>>; 4]) -> Self {
        PyState { step, x: x.clone_ref(py), p: p.clone_ref(py), w: w.clone_ref(py), pw: pw.clone_ref(py) }
    }

    /// The engine's state, copied out of the arrays (their replica counts must agree).
    pub fn to_state(&self, py: Python<'_>) -> PyResult<State> {
        let replicas = self.x.bind(py).shape()[0];
        let mut vectors = Vec::new();
        for (name, a) in [("x", &self.x), ("p", &self.p), ("w", &self.w), ("pw", &self.pw)] {
            let a = a.bind(py).readonly();
            if a.shape()[0] != replicas {
                return Err(error(format!("the state's `{name}` has {} replicas, its `x` {replicas}", a.shape()[0])));
            }
            vectors.push(a.as_slice().map_or_else(|_| a.as_array().iter().copied().collect(), <[f32]>::to_vec));
        }
        let [x, p, w, pw] = <[Vec<f32>; 4]>::try_from(vectors).expect("four vectors");
        Ok(State { step: self.step, replicas, x, p, w, pw })
    }
}

#[pymethods]
impl PyState {
    #[new]
    #[pyo3(signature = (x, p, w, pw, step = 0))]
    fn new(
        py: Python<'_>,
        x: Bound<'_, PyAny>,
        p: Bound<'_, PyAny>,
        w: Bound<'_, PyAny>,
        pw: Bound<'_, PyAny>,
        step: u64,
    ) -> PyResult<Self> {
        let own = |name: &str, a: Bound<'_, PyAny>| -> PyResult<Py<PyArray2<f32>>> {
            let a: PyArrayLikeDyn<'_, f32, AllowTypeChange> =
                a.extract().map_err(|e| error(format!("`{name}`: {e}; want an array of numbers")))?;
            let dims = a.shape().to_vec();
            let [replicas, per] = dims[..] else {
                return Err(error(format!("`{name}` has shape {}; want (replicas, values)", tuple(&dims))));
            };
            let values = a.as_array().iter().copied().collect();
            Ok(array2(py, values, replicas, per).unbind())
        };
        Ok(PyState { step, x: own("x", x)?, p: own("p", p)?, w: own("w", w)?, pw: own("pw", pw)? })
    }

    /// Number of replicas.
    #[getter]
    fn replicas(&self, py: Python<'_>) -> usize {
        self.x.bind(py).shape()[0]
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "State(step={}, x: {}, w: {})",
            self.step,
            tuple(self.x.bind(py).shape()),
            tuple(self.w.bind(py).shape())
        )
    }
}
