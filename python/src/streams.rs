//! numpy arrays and Python callables as the engine's streams ([`Signal`]).
//!
//! An array is copied once, when a run starts (so the run needs no GIL to read it); row `k`
//! holds the values of the run's `k`-th step. A callable `f(step, t)` is called once per step
//! for all replicas, with the GIL taken back for the call; its result is kept for the other
//! replicas and for a second sample of the same step.

use std::sync::{Arc, Mutex, PoisonError};

use numpy::{AllowTypeChange, PyArrayLikeDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::{error, raise};
use localprop::signal::Signal;

/// Which stream, as `Engine.run` names its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `inputs`: sampled once more than the run has steps (the last step's synapse pass reads
    /// the next step's inputs).
    Inputs,
    /// `targets`.
    Targets,
    /// `masks`.
    Masks,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Inputs => "inputs",
            Kind::Targets => "targets",
            Kind::Masks => "masks",
        }
    }

    /// The engine's name of the stream, in its errors.
    fn stream(self) -> &'static str {
        match self {
            Kind::Inputs => "input",
            Kind::Targets => "target",
            Kind::Masks => "mask",
        }
    }
}

/// What a run needs to know to read a stream argument.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Steps of the run.
    pub steps: usize,
    /// Replicas of the engine.
    pub replicas: usize,
    /// Channels the network needs (inputs, or outputs).
    pub channels: usize,
    /// The engine's step when the run starts.
    pub first: u64,
}

/// The first error a Python callable raised during a run, raised again once the run returns.
pub type Failure = Arc<Mutex<Option<PyErr>>>;

/// One stream argument of a run, from which each replica's [`Signal`] is made.
pub enum Source {
    /// Values copied from an array: `[replica][row][channel]`, or `[row][channel]` shared.
    Array { data: Arc<Vec<f32>>, rows: usize, channels: usize, per_replica: bool, first: u64 },
    /// A Python callable, shared by the replicas.
    Callable(Arc<Mutex<Callback>>),
}

impl Source {
    /// The stream given as `obj`: a callable, or an array of shape `(steps, channels)` or
    /// `(replicas, steps, channels)` (for inputs, `steps + 1` rows are allowed too: the last
    /// one is the inputs of the step after the run; with `steps` rows the last row is held).
    pub fn new(obj: &Bound<'_, PyAny>, kind: Kind, shape: Shape, failure: &Failure) -> PyResult<Source> {
        let name = kind.name();
        if obj.is_callable() {
            return Ok(Source::Callable(Arc::new(Mutex::new(Callback {
                f: obj.clone().unbind(),
                kind,
                shape,
                step: None,
                values: vec![0.0; shape.replicas * shape.channels],
                failure: failure.clone(),
            }))));
        }
        let array: PyArrayLikeDyn<'_, f32, AllowTypeChange> = obj.extract().map_err(|e| {
            error(format!("`{name}`: {e}; want an array of shape (steps, channels) or (replicas, steps, channels), or a callable f(step, t)"))
        })?;
        let dims = array.shape().to_vec();
        let want = format!(
            "want (steps, channels) or (replicas, steps, channels) with steps = {}{} and replicas = {} (use a[:, None] \
             for one channel)",
            shape.steps,
            if kind == Kind::Inputs { format!(" (or {})", shape.steps + 1) } else { String::new() },
            shape.replicas
        );
        let (per_replica, rows, channels) = match dims[..] {
            [rows, channels] => (false, rows, channels),
            [replicas, rows, channels] if replicas == shape.replicas => (true, rows, channels),
            _ => return Err(error(format!("`{name}` has shape {}; {want}", tuple(&dims)))),
        };
        if rows != shape.steps && !(kind == Kind::Inputs && rows == shape.steps + 1) {
            return Err(error(format!("`{name}` has shape {}: {rows} rows; {want}", tuple(&dims))));
        }
        let data = match array.as_slice() {
            Ok(s) => s.to_vec(),
            Err(_) => array.as_array().iter().copied().collect(),
        };
        let source = Source::Array { data: Arc::new(data), rows, channels, per_replica, first: shape.first };
        source.check(kind, shape.replicas)?;
        Ok(source)
    }

    /// Checks an array's values before any step, as the engine checks each value it samples
    /// (finite; masks 0 or 1), with the engine's message for the first bad one in step order:
    /// an error in the middle of a run would leave the steps before it taken.
    fn check(&self, kind: Kind, replicas: usize) -> PyResult<()> {
        let Source::Array { data, rows, channels, per_replica, first } = self else { return Ok(()) };
        let replicas = if *per_replica { replicas } else { 1 };
        for row in 0..*rows {
            for replica in 0..replicas {
                let at = (replica * rows + row) * channels;
                for (channel, &v) in data[at..at + channels].iter().enumerate() {
                    let step = first + row as u64;
                    let message = match kind {
                        Kind::Masks if v != 0.0 && v != 1.0 => format!("value {v} at step {step}; masks are 0 or 1"),
                        Kind::Inputs | Kind::Targets if !v.is_finite() => {
                            format!("channel {channel} is {v} at step {step}; values must be finite")
                        }
                        _ => continue,
                    };
                    return Err(raise(localprop::Error::Stream { stream: kind.stream(), replica, message }));
                }
            }
        }
        Ok(())
    }

    /// The signal of replica `replica`.
    pub fn signal(&self, replica: usize) -> Box<dyn Signal> {
        match self {
            Source::Array { data, rows, channels, per_replica, first } => Box::new(ArraySignal {
                data: data.clone(),
                offset: if *per_replica { replica * rows * channels } else { 0 },
                rows: *rows,
                channels: *channels,
                first: *first,
            }),
            Source::Callable(callback) => Box::new(CallableSignal { callback: callback.clone(), replica }),
        }
    }
}

/// A shape as Python prints it: `(3,)`, `(2, 5)`.
pub fn tuple(dims: &[usize]) -> String {
    match dims {
        [one] => format!("({one},)"),
        _ => format!("({})", dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// One replica's rows of an array.
struct ArraySignal {
    data: Arc<Vec<f32>>,
    offset: usize,
    rows: usize,
    channels: usize,
    first: u64,
}

impl Signal for ArraySignal {
    fn dim(&self) -> usize {
        self.channels
    }

    fn sample(&mut self, step: u64, _: f64, out: &mut [f32]) {
        // Only the inputs' extra sample, at the step after the run, can pass the last row.
        let row = (step.saturating_sub(self.first) as usize).min(self.rows - 1);
        let at = self.offset + row * self.channels;
        out.copy_from_slice(&self.data[at..at + self.channels]);
    }
}

/// A Python callable `f(step, t)` and its last result, `[replica][channel]`.
pub struct Callback {
    f: Py<PyAny>,
    kind: Kind,
    shape: Shape,
    /// The step whose values `values` holds.
    step: Option<u64>,
    values: Vec<f32>,
    failure: Failure,
}

impl Callback {
    /// Calls `f(step, t)` and keeps its values for every replica; on an error (raised by `f`,
    /// or a result of the wrong shape) keeps the error and NaN, which stops the run.
    fn call(&mut self, step: u64, t: f64) {
        self.step = Some(step);
        let failed = self.failure.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        let result = if failed { Ok(()) } else { Python::attach(|py| self.values_of(py, step, t)) };
        if failed || result.is_err() {
            self.values.fill(f32::NAN);
        }
        if let Err(e) = result {
            self.failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
        }
    }

    fn values_of(&mut self, py: Python<'_>, step: u64, t: f64) -> PyResult<()> {
        let out = self.f.call1(py, (step, t))?;
        let Shape { replicas, channels, .. } = self.shape;
        let name = self.kind.name();
        let array: PyArrayLikeDyn<'_, f32, AllowTypeChange> = out
            .bind(py)
            .extract()
            .map_err(|e| error(format!("`{name}({step}, {t:?})` returned no array of numbers: {e}")))?;
        let dims = array.shape().to_vec();
        let values: Vec<f32> = array.as_array().iter().copied().collect();
        match dims[..] {
            [] if channels == 1 => self.values.fill(values[0]),
            [c] if c == channels => self.values.chunks_exact_mut(channels).for_each(|r| r.copy_from_slice(&values)),
            [r, c] if r == replicas && c == channels => self.values.copy_from_slice(&values),
            _ => {
                return Err(error(format!(
                    "`{name}({step}, {t:?})` returned shape {}; want ({channels},) or (replicas, channels) = \
                     ({replicas}, {channels})",
                    tuple(&dims)
                )));
            }
        }
        Ok(())
    }
}

/// One replica's values of a [`Callback`].
struct CallableSignal {
    callback: Arc<Mutex<Callback>>,
    replica: usize,
}

impl Signal for CallableSignal {
    fn dim(&self) -> usize {
        self.callback.lock().unwrap_or_else(PoisonError::into_inner).shape.channels
    }

    fn sample(&mut self, step: u64, t: f64, out: &mut [f32]) {
        let mut callback = self.callback.lock().unwrap_or_else(PoisonError::into_inner);
        if callback.step != Some(step) {
            callback.call(step, t);
        }
        let c = callback.shape.channels;
        out.copy_from_slice(&callback.values[self.replica * c..(self.replica + 1) * c]);
    }
}
