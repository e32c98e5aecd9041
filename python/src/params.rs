//! `localprop.Params`: the engine's [`Params`], named and checked as the engine names and
//! checks them.

use pyo3::prelude::*;

use crate::{OrRaise, error};
use localprop::params::decimal;
use localprop::{Activation, NetworkSpec, Params, Policy, Speed};

/// Every parameter of the dynamics for one replica. Keywords only; an omitted keyword keeps
/// the engine's default (``Params()``: ``c = 1``, ``tau = 0.1``, ``q = 1``, ``r = 1``,
/// ``r_w = 0``, ``theta = 0``, ``tanh``, ``reverse-costate``, learning on).
///
/// - ``c``: propagation speed ``> 0``, one value or one per non-input neuron; ``0 < c tau <= 2``.
/// - ``tau``: Euler step ``> 0``.
/// - ``q``: accuracy weight ``>= 0`` of ``(q/2) sum_o mask_o (x_o - z_o)^2``.
/// - ``r``: kinetic weight ``> 0``; ``1/r`` acts as the learning rate.
/// - ``r_w``: weight regulariser ``>= 0`` of ``(r_w/2)|w|^2`` (the paper's ``r_w = 1`` is 2 here).
/// - ``theta``: dissipation ``>= 0``, ``phi = exp(theta t)``.
/// - ``activation``: ``"tanh"``, ``"logistic"`` or ``"identity"``.
/// - ``policy``: the sign policy, ``"hamilton"``, ``"reverse-costate"``, ``"hsf"`` (with
///   ``hsf_frequency``, the flip frequency), ``"hsf-every-step"`` or ``"hsf-ball"`` (with
///   ``hsf_radius``: each replica's equations flip while its state is outside that ball).
/// - ``learning``: ``False`` freezes the weights and their costates.
///
/// Values are checked at once (the error names the field and the value); a list of speeds is
/// checked against the network when an ``Engine`` is made. The engine keeps them as float32;
/// the attributes give the shortest decimal of that value (``Params(tau=0.01).tau == 0.01``),
/// as the engine's reports do.
#[pyclass(name = "Params", module = "localprop", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyParams {
    pub inner: Params,
}

/// `c`: one speed, or one per non-input neuron.
#[derive(FromPyObject)]
enum SpeedArg {
    Global(f32),
    PerNeuron(Vec<f32>),
}

/// The activation called `name`, by the engine's own names (its serde names).
fn activation(name: &str) -> PyResult<Activation> {
    serde_json::from_value(serde_json::Value::String(name.into()))
        .map_err(|e| error(format!("invalid parameter `activation` = {name:?}: {e}")))
}

/// `base` with the keywords given replaced, checked as far as it can be without a network
/// (a list of speeds only for its values: its length is checked by the engine).
#[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
fn with(
    base: &Params,
    c: Option<SpeedArg>,
    tau: Option<f32>,
    q: Option<f32>,
    r: Option<f32>,
    r_w: Option<f32>,
    theta: Option<f32>,
    activation_name: Option<&str>,
    policy: Option<&str>,
    hsf_frequency: Option<f64>,
    hsf_radius: Option<f32>,
    learning: Option<bool>,
) -> PyResult<PyParams> {
    let mut p = base.clone();
    if let Some(c) = c {
        p.c = match c {
            SpeedArg::Global(c) => Speed::Global(c),
            SpeedArg::PerNeuron(cs) => Speed::PerNeuron(cs),
        };
    }
    for (slot, v) in [(&mut p.tau, tau), (&mut p.q, q), (&mut p.r, r), (&mut p.r_w, r_w), (&mut p.theta, theta)] {
        if let Some(v) = v {
            *slot = v;
        }
    }
    if let Some(name) = activation_name {
        p.activation = activation(name)?;
    }
    if policy.is_some() || hsf_frequency.is_some() || hsf_radius.is_some() {
        // `Policy::named` says whether the policy takes a frequency or a radius.
        p.policy = Policy::named(policy.unwrap_or(p.policy.name()), hsf_frequency, hsf_radius).or_raise()?;
    }
    if let Some(learning) = learning {
        p.learning = learning;
    }
    // A stand-in network with as many non-input neurons as the list of speeds has (one
    // without), no synapses: every check but the network's own.
    let neurons = match &p.c {
        Speed::Global(_) => 1,
        Speed::PerNeuron(cs) => cs.len(),
    };
    if neurons == 0 {
        return Err(error("invalid parameter `c` = []: a speed, or a list of one speed per non-input neuron"));
    }
    let stand_in = NetworkSpec::edges(0, neurons, Vec::new()).build().or_raise()?;
    p.validate(&stand_in).or_raise()?;
    Ok(PyParams { inner: p })
}

#[pymethods]
impl PyParams {
    #[new]
    #[pyo3(signature = (*, c = None, tau = None, q = None, r = None, r_w = None, theta = None, activation = None, policy = None, hsf_frequency = None, hsf_radius = None, learning = None))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        c: Option<SpeedArg>,
        tau: Option<f32>,
        q: Option<f32>,
        r: Option<f32>,
        r_w: Option<f32>,
        theta: Option<f32>,
        activation: Option<&str>,
        policy: Option<&str>,
        hsf_frequency: Option<f64>,
        hsf_radius: Option<f32>,
        learning: Option<bool>,
    ) -> PyResult<Self> {
        with(&Params::default(), c, tau, q, r, r_w, theta, activation, policy, hsf_frequency, hsf_radius, learning)
    }

    /// A copy with the keywords given replaced (the same keywords as ``Params()``).
    #[pyo3(signature = (*, c = None, tau = None, q = None, r = None, r_w = None, theta = None, activation = None, policy = None, hsf_frequency = None, hsf_radius = None, learning = None))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn replace(
        &self,
        c: Option<SpeedArg>,
        tau: Option<f32>,
        q: Option<f32>,
        r: Option<f32>,
        r_w: Option<f32>,
        theta: Option<f32>,
        activation: Option<&str>,
        policy: Option<&str>,
        hsf_frequency: Option<f64>,
        hsf_radius: Option<f32>,
        learning: Option<bool>,
    ) -> PyResult<Self> {
        with(&self.inner, c, tau, q, r, r_w, theta, activation, policy, hsf_frequency, hsf_radius, learning)
    }

    /// The paper's tracking task with accuracy weight ``q``: ``c = 50``, ``tau = 0.01``,
    /// ``r = 0.1``, ``r_w = 1``, ``theta = 1``, the Hamiltonian Sign Flip at every step
    /// (the paper's Figs. 1, 3 and 2 use ``q`` = 10, 100, 1000).
    #[staticmethod]
    fn tracking(q: f32) -> PyResult<Self> {
        let inner = Params::tracking(q);
        with(&inner, None, None, None, None, None, None, None, None, None, None, None)
    }

    /// Propagation speed: one value, or a list with one per non-input neuron.
    #[getter]
    fn c<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match &self.inner.c {
            Speed::Global(c) => decimal(*c).into_pyobject(py)?.into_any(),
            Speed::PerNeuron(cs) => cs.iter().map(|&c| decimal(c)).collect::<Vec<_>>().into_pyobject(py)?.into_any(),
        })
    }

    /// Euler step.
    #[getter]
    fn tau(&self) -> f64 {
        decimal(self.inner.tau)
    }

    /// Accuracy weight.
    #[getter]
    fn q(&self) -> f64 {
        decimal(self.inner.q)
    }

    /// Kinetic weight.
    #[getter]
    fn r(&self) -> f64 {
        decimal(self.inner.r)
    }

    /// Weight regulariser.
    #[getter]
    fn r_w(&self) -> f64 {
        decimal(self.inner.r_w)
    }

    /// Dissipation.
    #[getter]
    fn theta(&self) -> f64 {
        decimal(self.inner.theta)
    }

    /// The activation's name.
    #[getter]
    fn activation(&self) -> &'static str {
        self.inner.activation.name()
    }

    /// The sign policy's name.
    #[getter]
    fn policy(&self) -> &'static str {
        self.inner.policy.name()
    }

    /// The flip frequency of the ``hsf`` policy; ``None`` under the others.
    #[getter]
    fn hsf_frequency(&self) -> Option<f64> {
        match self.inner.policy {
            Policy::Hsf { frequency } => Some(frequency),
            _ => None,
        }
    }

    /// The radius of the ``hsf-ball`` policy; ``None`` under the others.
    #[getter]
    fn hsf_radius(&self) -> Option<f64> {
        match self.inner.policy {
            Policy::HsfBall { radius } => Some(decimal(radius)),
            _ => None,
        }
    }

    /// Whether the weights learn.
    #[getter]
    fn learning(&self) -> bool {
        self.inner.learning
    }

    fn __repr__(&self) -> String {
        let p = &self.inner;
        let c = match &p.c {
            Speed::Global(c) => format!("{c:?}"),
            Speed::PerNeuron(cs) => format!("{cs:?}"),
        };
        let frequency = match (self.hsf_frequency(), self.hsf_radius()) {
            (Some(f), _) => format!(", hsf_frequency={f:?}"),
            (_, Some(r)) => format!(", hsf_radius={r:?}"),
            _ => String::new(),
        };
        format!(
            "Params(c={c}, tau={:?}, q={:?}, r={:?}, r_w={:?}, theta={:?}, activation='{}', policy='{}'{frequency}, \
             learning={})",
            p.tau,
            p.q,
            p.r,
            p.r_w,
            p.theta,
            p.activation.name(),
            p.policy.name(),
            if p.learning { "True" } else { "False" }
        )
    }
}
