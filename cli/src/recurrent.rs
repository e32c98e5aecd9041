//! Online learners for recurrent networks, the baselines of the sequence tasks: truncated
//! backpropagation through time, e-prop and real-time recurrent learning, each taking one step
//! of the stream at a time, scored prequentially and updating the weights with
//! [`SgdMomentum`].
//!
//! # The model
//!
//! The engine's (theory, sections 2 and 7), computed in **f64** from the network's f32
//! initial weights and the parameters' f32 values (`c_i`, `tau`, `q`). Neurons `0..d` are input
//! neurons: the external inputs are set from the input stream at each step and the bias
//! neuron, when there is one, is held at 1. Every other neuron `i` starts at `x_i^0 = 0`, as in
//! the engine, and advances by one lockstep (Jacobi) explicit Euler step
//!
//! ```text
//! a_i^n = sum_j w_ij x_j^n,    x_i^{n+1} = x_i^n + c_i tau (-x_i^n + sigma(a_i^n)),
//! ```
//!
//! with the speeds of [`Params::c`] (global or per neuron). The loss of step `n` is
//! `E^n = (q/2) sum_o mask_o^n (x_o^n - z_o^n)^2`, measured on the state of step `n` before it
//! advances (what the engine records at step `n`); `err_o^n = q mask_o^n (x_o^n - z_o^n)` is
//! its derivative. Below, `m = n - d` is the number of non-input neurons, `E` the number of
//! synapses, `E_rec` those whose source is a non-input neuron, `O` the number of outputs and
//! `ct_i = c_i tau`.
//!
//! # Order of operations within a step
//!
//! [`RecurrentLearner::step`] with `(u^n, z^n, mask^n)`:
//!
//! 1. the input neurons are set to `u^n` (the bias to 1);
//! 2. the outputs `x_o^n` and the loss `E^n` are measured: prequentially, before any update
//!    that uses `z^n`;
//! 3. the method forms its gradient from what it holds (below), if an update is due;
//! 4. the weights take the [`SgdMomentum`] step, `v <- momentum v - lr grad; w <- w + v`;
//! 5. the state advances with the **updated** weights: `x^{n+1}` from `x^n` and `w^{n+1}`,
//!    and the method's forward-time learning state with it.
//!
//! So the transition `n -> n+1` always runs with the weights that already include the update
//! made from the loss of step `n`.
//!
//! # The methods and their approximations
//!
//! - [`Method::Rtrl`]: the sensitivities `P[k][e] = dx_k^n / dw_e` of every non-input neuron
//!   to every weight, carried forward with each transition:
//!   `P_k <- (1 - ct_k) P_k + ct_k sigma'(a_k) (sum_{l in pa(k), l >= d} w_kl P_l + [e into k] x_src(e))`.
//!   The gradient of step `n` is `sum_o err_o^n P_o`, applied at every step. `P` is propagated
//!   with the weights of each transition, so it ignores that the weights of earlier
//!   transitions differed from today's (the usual RTRL approximation); with `lr = 0` it is the
//!   exact gradient `dE^n / dw`. Refused above [`RTRL_MAX_NEURONS`] non-input neurons.
//! - [`Method::Tbptt`] with window `K` (TBPTT(K, K) of Williams and Peng): windows start at
//!   steps `0, K, 2K, ...`. The window from step `s` holds the state `x^s` fixed, runs the `K`
//!   transitions `s -> s+K` with the weights of the window (they change only at window ends)
//!   and sums the losses `E^{s+1} .. E^{s+K}`; at step `s + K`, once `E^{s+K}` is measured, the
//!   exact gradient of that sum is backpropagated through the `K` transitions and the update
//!   made. `K = 1` is the instantaneous one-step gradient `err^{n+1} dx^{n+1}/dw` with `x^n`
//!   fixed. Dropped: every dependence of `x^s` on the weights (through earlier windows).
//! - [`Method::Eprop`] (Bellec et al. 2020, *A solution to the learning dilemma for recurrent
//!   networks of spiking neurons*, Nat. Commun. 11, 3625, for rate units, no LSNN adaptation):
//!   the gradient is factored as `dE/dw_ij = sum_n L_i^n e_ij^n`.
//!   - **Eligibility trace**: `e_ij^{n+1} = J_i^n e_ij^n + ct_i sigma'(a_i^n) x_j^n`, `e^0 = 0`,
//!     with `J_i^n = dx_i^{n+1}/dx_i^n = 1 - ct_i + ct_i sigma'(a_i^n) w_ii`: the neuron's own
//!     dynamics only. Without a self-loop `J_i` is the leak `1 - ct_i`. **A self-loop is part
//!     of the neuron's own dynamics**: the paper's units have a hidden state (the membrane
//!     potential `h_j`) apart from their output (the spike `z_j`), and the trace follows
//!     `dh_j^{t+1}/dh_j^t` only; here both are the same `x_i`, so a self-loop `w_ii x_i` feeds
//!     the neuron's state back to itself exactly as the leak does. It is also local (the
//!     neuron reads its own `x_i`, `w_ii`, `sigma'(a_i)`), and with it `e_ij^n` is exactly
//!     `dx_i^n / dw_ij` when every other neuron's trajectory is held at its recorded values,
//!     and e-prop is exact for a network of one non-input neuron.
//!   - **Learning signal**: the exact factorisation needs `L_i^n = dE^n/dx_i^n + sum_{k != i}
//!     (dE/dx_k^{n+1})_total dx_k^{n+1}/dx_i^n`, which looks into the future. The paper keeps
//!     only the loss's direct dependence on the neuron's output at the same step, through its
//!     separate readout. Our outputs are neurons of the network, one transition downstream
//!     of the hidden neurons, so that choice would give hidden neurons no signal at all. We
//!     keep the direct terms of one transition instead: the output's own error plus the
//!     outputs' errors of the next step sent back along their incoming weights,
//!     `L_i^n = err_i^n [i output] + sum_{o output, o != i} err_o^{n+1} ct_o sigma'(a_o^n) w_oi`
//!     (the role of the paper's readout weights `B = W_out` in symmetric e-prop). Every term
//!     beyond one transition, and every path through hidden neurons, is dropped.
//!   - **One step late**: `L^n` needs `err^{n+1}`, so step `n` applies `L^{n-1} e^{n-1}` (no
//!     update at step 0), then advances the trace to `e^n` with the values of the transition
//!     `n-1 -> n` (`x^{n-1}`, `sigma'(a^{n-1})`, and the current weights, which are that
//!     transition's since the update of step `n` comes after). Like RTRL, the trace is carried
//!     with the weights of each transition.
//!
//! # Memory and work
//!
//! [`RecurrentLearner::memory_bytes`] counts the f64 learning state (8 bytes each) a method
//! keeps beyond the weights `w`, the momentum buffer `v` ([`RecurrentLearner::momentum_bytes`],
//! `8 E` for every method, counted apart), and the current state and its per-step scratch
//! (`x`, its successor, `sigma'(a)`, the errors, the outputs). It includes the gradient
//! buffer (`E` values) of every method:
//!
//! | method | values kept |
//! |---|---|
//! | TBPTT(K) | `K (2 n + O)` (the window's states `x`, `sigma'(a)` and errors) `+ 2 n` (the adjoints) `+ E` |
//! | e-prop | `E` (traces) `+ 5 n` (previous `x`, `sigma'(a)`, errors; signal; decay) `+ E` |
//! | RTRL | `2 m E` (the sensitivities and their successor) `+ E` |
//!
//! [`RecurrentLearner::ops_per_step`] counts multiply-adds per step (a product, or a product
//! added to a sum, is one; `sigma` is not counted), averaged over a window for TBPTT. Every
//! method pays the forward step `E + m`, the loss `O`, and `2 E` per update; then
//!
//! | method | learning work per step |
//! |---|---|
//! | TBPTT(K) | `E + E_rec + 2 m` (one transition backwards), `2 E / K` for the updates |
//! | e-prop | `E_out + 2 m` (signal, decays) `+ E` (gradient) `+ 2 E` (traces) `+ 2 E` (update) |
//! | RTRL | `O E` (gradient) `+ E (m + E_rec + 1)` (sensitivities) `+ 2 E` (update) |
//!
//! where `E_out` counts the synapses from a non-input neuron into a different output neuron.

use crate::baseline::SgdMomentum;
use localprop::error::{Error, Result};
use localprop::network::{EdgeIndex, Network};
use localprop::params::{Activation, Params};
use localprop::reference::sigma;
use localprop::signal::Streams;

/// The most non-input neurons [`Method::Rtrl`] accepts: its sensitivities take `16 m E` bytes
/// and `E (m + E_rec)` multiply-adds per step, about 4.3 MB and 18 million for 64 fully
/// connected neurons (self-loops included) with one input and a bias.
pub const RTRL_MAX_NEURONS: usize = 64;

/// Which online learner (see the module docs for the exact rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Truncated backpropagation through time, TBPTT(K, K): every `window` steps, the exact
    /// gradient of the window's summed loss with the window's start state held fixed.
    Tbptt {
        /// The window `K >= 1`, in steps; `1` is the instantaneous one-step gradient.
        window: usize,
    },
    /// e-prop for rate units: per-synapse eligibility traces along the neuron's own dynamics
    /// times a one-transition learning signal, applied one step late.
    Eprop,
    /// Real-time recurrent learning: the exact online gradient from the sensitivities
    /// `dx_k/dw_e`, for at most [`RTRL_MAX_NEURONS`] non-input neurons.
    Rtrl,
}

impl Method {
    /// A short name: `tbptt`, `e-prop` or `rtrl`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Tbptt { .. } => "tbptt",
            Method::Eprop => "e-prop",
            Method::Rtrl => "rtrl",
        }
    }
}

/// What one [`RecurrentLearner::step`] measured, before its update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepOutcome<'a> {
    /// The outputs `x_o^n`, in the order of [`Network::outputs`].
    pub outputs: &'a [f64],
    /// The loss `E^n = (q/2) sum_o mask_o (x_o^n - z_o^n)^2`.
    pub loss: f64,
    /// Whether the weights were updated at this step (every step for RTRL and, from step 1,
    /// e-prop; at steps `K, 2K, ...` for TBPTT(K)).
    pub updated: bool,
}

/// The network's structure and the constants of the dynamics, in f64.
struct Model {
    n: usize,
    d: usize,
    inputs: usize,
    bias: bool,
    ix: EdgeIndex,
    outputs: Vec<usize>,
    /// The self-loop of each neuron, if it has one.
    self_edge: Vec<Option<usize>>,
    /// `c_i tau` (0 for input neurons).
    ct: Vec<f64>,
    q: f64,
    activation: Activation,
}

impl Model {
    fn new(net: &Network, params: &Params) -> Model {
        let ix = net.index();
        let mut self_edge = vec![None; net.n()];
        for (e, (&j, &i)) in ix.src.iter().zip(&ix.dst).enumerate() {
            if j == i {
                self_edge[i as usize] = Some(e);
            }
        }
        let tau = params.tau as f64;
        Model {
            n: net.n(),
            d: net.d(),
            inputs: net.inputs(),
            bias: net.has_bias(),
            ix,
            outputs: net.outputs().iter().map(|&o| o as usize).collect(),
            self_edge,
            ct: params.c.per_neuron(net).iter().map(|&c| c as f64 * tau).collect(),
            q: params.q as f64,
            activation: params.activation,
        }
    }

    fn edges(&self) -> usize {
        self.ix.src.len()
    }

    /// Synapses whose source is a non-input neuron.
    fn recurrent_edges(&self) -> usize {
        self.ix.src.iter().filter(|&&j| j as usize >= self.d).count()
    }

    /// Synapses from a non-input neuron into a different output neuron (e-prop's signal).
    fn edges_into_outputs(&self) -> usize {
        let ix = &self.ix;
        self.outputs
            .iter()
            .flat_map(|&o| ix.incoming(o).filter(move |&e| ix.src[e] as usize >= self.d && ix.src[e] as usize != o))
            .count()
    }
}

/// The weights, their velocities, the neuron state and the per-step scratch every method uses.
struct Core {
    model: Model,
    lr: f64,
    momentum: f64,
    w: Vec<f64>,
    v: Vec<f64>,
    grad: Vec<f64>,
    /// `x^n` (input neurons included).
    x: Vec<f64>,
    /// `x^{n+1}`, swapped with `x` at the end of a step.
    x_next: Vec<f64>,
    /// `sigma'(a_i^n)` (0 for input neurons).
    g: Vec<f64>,
    /// `err_i^n` (0 except at outputs).
    err: Vec<f64>,
    /// The outputs measured at the last step.
    out: Vec<f64>,
}

impl Core {
    /// One Euler step of every non-input neuron from `x` with the current weights into
    /// `x_next`, recording `sigma'(a)` in `g`; the input neurons keep their values.
    fn forward(&mut self) {
        let m = &self.model;
        let ix = &m.ix;
        self.x_next[..m.d].copy_from_slice(&self.x[..m.d]);
        for i in m.d..m.n {
            let a: f64 = ix.incoming(i).map(|e| self.w[e] * self.x[ix.src[e] as usize]).sum();
            let (s, g) = sigma(m.activation, a);
            self.g[i] = g;
            self.x_next[i] = self.x[i] + m.ct[i] * (-self.x[i] + s);
        }
    }

    /// The heavy-ball step with `grad`; fails if a weight is no longer finite.
    fn update(&mut self, step: u64) -> Result<()> {
        let (lr, momentum) = (self.lr, self.momentum);
        for ((w, v), &g) in self.w.iter_mut().zip(&mut self.v).zip(&self.grad) {
            *v = momentum * *v - lr * g;
            *w += *v;
        }
        match self.w.iter().position(|w| !w.is_finite()) {
            None => Ok(()),
            Some(e) => Err(self.diverged(format!("weight {e} is {} after the update of step {step}", self.w[e]))),
        }
    }

    fn diverged(&self, what: String) -> Error {
        Error::param(
            "baseline.lr",
            self.lr,
            format!("a smaller learning rate (or momentum {}): the run diverged, {what}", self.momentum),
        )
    }
}

/// TBPTT's window: the states, `sigma'(a)` and output errors of the steps since its start.
struct Tbptt {
    window: usize,
    /// Transitions recorded so far in the window (`0..window`).
    len: usize,
    /// `x^{s+t}`, `[t][neuron]`, `t < window`.
    xs: Vec<f64>,
    /// `sigma'(a^{s+t})`, `[t][neuron]`.
    gs: Vec<f64>,
    /// `err^{s+t+1}` at the outputs, `[t][output]`.
    errs: Vec<f64>,
    /// `dE_window / dx^{s+t}` (the adjoint).
    delta: Vec<f64>,
    /// `dE_window / da^{s+t}`.
    beta: Vec<f64>,
}

impl Tbptt {
    /// Records the step's output errors; at the window's end, backpropagates into `core.grad`
    /// and returns `true`.
    fn gradient(&mut self, core: &mut Core) -> bool {
        let m = &core.model;
        let n_out = m.outputs.len();
        if self.len == 0 {
            return false;
        }
        let t = self.len - 1;
        for (k, &o) in m.outputs.iter().enumerate() {
            self.errs[t * n_out + k] = core.err[o];
        }
        if self.len < self.window {
            return false;
        }
        let (n, d, ix) = (m.n, m.d, &m.ix);
        core.grad.fill(0.0);
        self.delta.fill(0.0);
        for (k, &o) in m.outputs.iter().enumerate() {
            self.delta[o] = self.errs[(self.window - 1) * n_out + k];
        }
        for t in (0..self.window).rev() {
            let (xt, gt) = (&self.xs[t * n..(t + 1) * n], &self.gs[t * n..(t + 1) * n]);
            for (((b, &dl), &ct), &g) in self.beta.iter_mut().zip(&self.delta).zip(&m.ct).zip(gt).skip(d) {
                *b = dl * ct * g;
            }
            for (e, gr) in core.grad.iter_mut().enumerate() {
                *gr += self.beta[ix.dst[e] as usize] * xt[ix.src[e] as usize];
            }
            if t == 0 {
                break; // the window's start state is held fixed
            }
            for j in d..n {
                let back: f64 = ix.outgoing(j).map(|e| core.w[e] * self.beta[ix.dst[e] as usize]).sum();
                self.delta[j] = (1.0 - m.ct[j]) * self.delta[j] + back;
            }
            for (k, &o) in m.outputs.iter().enumerate() {
                self.delta[o] += self.errs[(t - 1) * n_out + k];
            }
        }
        self.len = 0;
        true
    }

    /// Records `x^n` and `sigma'(a^n)` after [`Core::forward`].
    fn record(&mut self, core: &Core) {
        let n = core.model.n;
        let t = self.len;
        self.xs[t * n..(t + 1) * n].copy_from_slice(&core.x);
        self.gs[t * n..(t + 1) * n].copy_from_slice(&core.g);
        self.len += 1;
    }
}

/// e-prop's traces and the values of the previous step its late update needs.
struct Eprop {
    /// `e^n` per synapse.
    trace: Vec<f64>,
    /// `x^{n-1}`.
    x_prev: Vec<f64>,
    /// `sigma'(a^{n-1})`.
    g_prev: Vec<f64>,
    /// `err^{n-1}`.
    err_prev: Vec<f64>,
    /// The learning signal `L^{n-1}`.
    signal: Vec<f64>,
    /// The trace decay `J^{n-1}`.
    decay: Vec<f64>,
    /// Whether a previous step exists.
    started: bool,
}

impl Eprop {
    /// At step `n >= 1`: `grad = L^{n-1} e^{n-1}`, then the trace advances to `e^n`;
    /// returns whether there was a gradient.
    fn gradient(&mut self, core: &mut Core) -> bool {
        if !self.started {
            return false;
        }
        let m = &core.model;
        let (n, d, ix) = (m.n, m.d, &m.ix);
        for i in d..n {
            self.signal[i] = self.err_prev[i];
            let self_w = m.self_edge[i].map_or(0.0, |e| core.w[e]);
            self.decay[i] = 1.0 - m.ct[i] + m.ct[i] * self.g_prev[i] * self_w;
        }
        for &o in &m.outputs {
            let f = core.err[o] * m.ct[o] * self.g_prev[o];
            if f == 0.0 {
                continue;
            }
            for e in ix.incoming(o) {
                let j = ix.src[e] as usize;
                if j >= d && j != o {
                    self.signal[j] += f * core.w[e];
                }
            }
        }
        for (e, (gr, tr)) in core.grad.iter_mut().zip(&mut self.trace).enumerate() {
            let (j, i) = (ix.src[e] as usize, ix.dst[e] as usize);
            *gr = self.signal[i] * *tr;
            *tr = self.decay[i] * *tr + m.ct[i] * self.g_prev[i] * self.x_prev[j];
        }
        true
    }

    /// Keeps `x^n`, `sigma'(a^n)` and `err^n` for the next step.
    fn record(&mut self, core: &Core) {
        self.x_prev.copy_from_slice(&core.x);
        self.g_prev.copy_from_slice(&core.g);
        self.err_prev.copy_from_slice(&core.err);
        self.started = true;
    }
}

/// RTRL's sensitivities `dx_k/dw_e`, `[k - d][e]`.
struct Rtrl {
    p: Vec<f64>,
    p_next: Vec<f64>,
}

impl Rtrl {
    /// `grad = sum_o err_o^n P_o^n`.
    fn gradient(&self, core: &mut Core) {
        let m = &core.model;
        let ne = m.edges();
        core.grad.fill(0.0);
        for &o in &m.outputs {
            let eo = core.err[o];
            if eo != 0.0 {
                let row = &self.p[(o - m.d) * ne..(o - m.d + 1) * ne];
                core.grad.iter_mut().zip(row).for_each(|(g, &p)| *g += eo * p);
            }
        }
    }

    /// `P^{n+1}` from `P^n`, `x^n`, `sigma'(a^n)` and the weights of the transition, after
    /// [`Core::forward`].
    fn advance(&mut self, core: &Core) {
        let m = &core.model;
        let (d, ne, ix) = (m.d, m.edges(), &m.ix);
        for k in d..m.n {
            let row = (k - d) * ne..(k - d + 1) * ne;
            let leak = 1.0 - m.ct[k];
            let next = &mut self.p_next[row.clone()];
            next.iter_mut().zip(&self.p[row]).for_each(|(q, &p)| *q = leak * p);
            let h = m.ct[k] * core.g[k];
            for e in ix.incoming(k) {
                let l = ix.src[e] as usize;
                if l >= d {
                    let f = h * core.w[e];
                    next.iter_mut().zip(&self.p[(l - d) * ne..(l - d + 1) * ne]).for_each(|(q, &p)| *q += f * p);
                }
            }
            for e in ix.incoming(k) {
                next[e] += h * core.x[ix.src[e] as usize];
            }
        }
        std::mem::swap(&mut self.p, &mut self.p_next);
    }
}

/// The learning state of each method.
enum Learning {
    Tbptt(Tbptt),
    Eprop(Eprop),
    Rtrl(Rtrl),
}

/// An online learner for a recurrent network: its weights (from the network's initial ones),
/// the neuron state, and the learning state of its [`Method`]. Feed it the stream one step at
/// a time with [`RecurrentLearner::step`] (or [`RecurrentLearner::run`]).
pub struct RecurrentLearner {
    method: Method,
    core: Core,
    learning: Learning,
    step: u64,
    tau: f64,
}

/// A zeroed buffer of `len` values, or an error naming `field` when it cannot be had.
fn zeros(len: Option<usize>, field: &str, value: impl std::fmt::Display) -> Result<Vec<f64>> {
    let too_big = || Error::param(field, &value, "a size whose learning state fits in memory");
    let len = len.filter(|&l| l <= isize::MAX as usize / 8).ok_or_else(too_big)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_big())?;
    v.resize(len, 0.0);
    Ok(v)
}

impl RecurrentLearner {
    /// A learner for `net` with the dynamics of `params` (`c`, `tau`, `q`, the activation;
    /// the engine's other parameters play no part) and the optimiser `opt`, starting from the
    /// network's initial weights and the zero state.
    ///
    /// Errors name the field: invalid `params` as [`Params::validate`] does (`tau`,
    /// `c * tau`...); a learning rate that is not finite and `>= 0` is `baseline.lr`, a
    /// momentum outside `[0, 1)` is `baseline.momentum`, a TBPTT window of 0 (or one whose
    /// buffers cannot be allocated) is `baseline.window`, and RTRL on more than
    /// [`RTRL_MAX_NEURONS`] non-input neurons is `network.neurons`.
    pub fn new(net: &Network, params: &Params, method: Method, opt: SgdMomentum) -> Result<Self> {
        params.validate(net)?;
        if !(opt.lr.is_finite() && opt.lr >= 0.0) {
            return Err(Error::param("baseline.lr", opt.lr, "a finite number >= 0"));
        }
        if !(opt.momentum.is_finite() && (0.0..1.0).contains(&opt.momentum)) {
            return Err(Error::param("baseline.momentum", opt.momentum, "a number in [0, 1)"));
        }
        let (n, ne, n_out, m) = (net.n(), net.n_edges(), net.outputs().len(), net.n() - net.d());
        let learning = match method {
            Method::Tbptt { window: 0 } => {
                return Err(Error::param("baseline.window", 0, "a window of at least 1 step"));
            }
            Method::Tbptt { window } => {
                let field = |len: Option<usize>| zeros(len, "baseline.window", window);
                Learning::Tbptt(Tbptt {
                    window,
                    len: 0,
                    xs: field(window.checked_mul(n))?,
                    gs: field(window.checked_mul(n))?,
                    errs: field(window.checked_mul(n_out))?,
                    delta: vec![0.0; n],
                    beta: vec![0.0; n],
                })
            }
            Method::Eprop => Learning::Eprop(Eprop {
                trace: vec![0.0; ne],
                x_prev: vec![0.0; n],
                g_prev: vec![0.0; n],
                err_prev: vec![0.0; n],
                signal: vec![0.0; n],
                decay: vec![0.0; n],
                started: false,
            }),
            Method::Rtrl => {
                if m > RTRL_MAX_NEURONS {
                    return Err(Error::param(
                        "network.neurons",
                        m,
                        format!(
                            "at most {RTRL_MAX_NEURONS} non-input neurons for RTRL (its sensitivities take 16 x \
                             neurons x synapses bytes and neurons x synapses x recurrent synapses work per step); \
                             use TBPTT or e-prop"
                        ),
                    ));
                }
                let field = |len: Option<usize>| zeros(len, "network.neurons", m);
                Learning::Rtrl(Rtrl { p: field(m.checked_mul(ne))?, p_next: field(m.checked_mul(ne))? })
            }
        };
        let core = Core {
            model: Model::new(net, params),
            lr: opt.lr as f64,
            momentum: opt.momentum as f64,
            w: net.initial_weights().iter().map(|&w| w as f64).collect(),
            v: vec![0.0; ne],
            grad: vec![0.0; ne],
            x: vec![0.0; n],
            x_next: vec![0.0; n],
            g: vec![0.0; n],
            err: vec![0.0; n],
            out: vec![0.0; n_out],
        };
        let tau = localprop::params::decimal(params.tau);
        Ok(RecurrentLearner { method, core, learning, step: 0, tau })
    }

    /// Checks one step's inputs, targets and masks against the network.
    fn check_step(&self, u: &[f32], z: &[f32], mask: Option<&[f32]>) -> Result<()> {
        let m = &self.core.model;
        let n_out = m.outputs.len();
        let step = self.step;
        let streams = [("input", u, m.inputs), ("target", z, n_out), ("mask", mask.unwrap_or(z), n_out)];
        for (stream, values, want) in streams {
            let bad = |message: String| Err(Error::Stream { stream, replica: 0, message });
            if values.len() != want {
                return bad(format!("{} channels at step {step}, the network needs {want}", values.len()));
            }
            if let Some(k) = values.iter().position(|v| !v.is_finite()) {
                return bad(format!("channel {k} is {} at step {step}; values must be finite", values[k]));
            }
        }
        if let Some(v) = mask.and_then(|m| m.iter().find(|&&v| v != 0.0 && v != 1.0)) {
            let message = format!("value {v} at step {step}; masks are 0 or 1");
            return Err(Error::Stream { stream: "mask", replica: 0, message });
        }
        Ok(())
    }

    /// Takes step `n` of the stream: inputs `u^n` (one per external input), targets `z^n`
    /// and masks (`0` or `1`, one per output; `None` for all 1). Measures the outputs and the
    /// loss on `x^n`, then lets the method update the weights, then advances the state (the
    /// order of the module docs).
    ///
    /// A wrong number of values, a non-finite value or a mask other than 0 and 1 is an
    /// [`Error::Stream`] naming the stream; a loss or a weight that stops being finite is an
    /// [`Error::Param`] naming `baseline.lr`, with the step. After an error the learner is
    /// left as it was only for the stream errors.
    pub fn step(&mut self, u: &[f32], z: &[f32], mask: Option<&[f32]>) -> Result<StepOutcome<'_>> {
        self.check_step(u, z, mask)?;
        let core = &mut self.core;
        let m = &core.model;
        core.x[..m.inputs].iter_mut().zip(u).for_each(|(x, &u)| *x = u as f64);
        if m.bias {
            core.x[m.inputs] = 1.0;
        }
        let mut loss = 0.0;
        for (k, &o) in m.outputs.iter().enumerate() {
            let mk = mask.map_or(1.0, |mm| mm[k] as f64);
            let dv = core.x[o] - z[k] as f64;
            core.err[o] = m.q * mk * dv;
            loss += 0.5 * m.q * mk * dv * dv;
            core.out[k] = core.x[o];
        }
        if !loss.is_finite() {
            return Err(core.diverged(format!("the loss is {loss} at step {}", self.step)));
        }
        let updated = match &mut self.learning {
            Learning::Tbptt(t) => t.gradient(core),
            Learning::Eprop(e) => e.gradient(core),
            Learning::Rtrl(r) => {
                r.gradient(core);
                true
            }
        };
        if updated {
            core.update(self.step)?;
        }
        core.forward();
        match &mut self.learning {
            Learning::Tbptt(t) => t.record(core),
            Learning::Eprop(e) => e.record(core),
            Learning::Rtrl(r) => r.advance(core),
        }
        std::mem::swap(&mut core.x, &mut core.x_next);
        self.step += 1;
        Ok(StepOutcome { outputs: &self.core.out, loss, updated })
    }

    /// Runs `steps` steps from the streams, sampled as the engine samples them (step `n` at
    /// time `n tau`, counting from this learner's [`steps`](RecurrentLearner::steps)), and
    /// returns the loss of each step.
    ///
    /// The streams' widths must match the network (an input stream exactly when it has
    /// external inputs, a target and an optional mask per output), else an
    /// [`Error::Stream`]; errors of [`RecurrentLearner::step`] end the run.
    pub fn run(&mut self, streams: &mut Streams, steps: u64) -> Result<Vec<f64>> {
        let mut losses = Vec::new();
        self.run_each(streams, steps, |_, outcome, _| losses.push(outcome.loss))?;
        Ok(losses)
    }

    /// As [`RecurrentLearner::run`], calling `each(step, outcome, targets)` after every step
    /// instead of keeping the losses.
    pub fn run_each(
        &mut self,
        streams: &mut Streams,
        steps: u64,
        mut each: impl FnMut(u64, &StepOutcome<'_>, &[f32]),
    ) -> Result<()> {
        let m = &self.core.model;
        let n_out = m.outputs.len();
        let dims = [
            ("input", streams.input.as_ref().map_or(0, |i| i.dim()), m.inputs),
            ("target", streams.target.dim(), n_out),
            ("mask", streams.mask.as_ref().map_or(n_out, |k| k.dim()), n_out),
        ];
        for (stream, got, want) in dims {
            if got != want {
                let message = format!("{got} channels, the network needs {want}");
                return Err(Error::Stream { stream, replica: 0, message });
            }
        }
        let (mut u, mut z, mut mask) = (vec![0f32; m.inputs], vec![0f32; n_out], vec![1f32; n_out]);
        for _ in 0..steps {
            let (step, t) = (self.step, self.step as f64 * self.tau);
            if let Some(input) = streams.input.as_mut() {
                input.sample(step, t, &mut u);
            }
            streams.target.sample(step, t, &mut z);
            let with_mask = match streams.mask.as_mut() {
                Some(k) => {
                    k.sample(step, t, &mut mask);
                    Some(&mask[..])
                }
                None => None,
            };
            let outcome = self.step(&u, &z, with_mask)?;
            each(step, &outcome, &z);
        }
        Ok(())
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The current weights, in the network's weight-vector order ([`Network::edges`]).
    pub fn weights(&self) -> &[f64] {
        &self.core.w
    }

    /// The gradient of the last update (all zeros before the first), in weight-vector order:
    /// `dE^n/dw` for RTRL at step `n`, the window's summed loss for TBPTT, `L^{n-1} e^{n-1}`
    /// for e-prop at step `n`.
    pub fn gradient(&self) -> &[f64] {
        &self.core.grad
    }

    /// The current neuron state, all `n` neurons: after step `n`, `x^{n+1}` (the input
    /// neurons holding step `n`'s inputs).
    pub fn state(&self) -> &[f64] {
        &self.core.x
    }

    /// e-prop's eligibility traces in weight-vector order (`None` for the other methods):
    /// after step `n`, `e^n`, the derivative of `x_i^n` by `w_ij` along neuron `i`'s own
    /// dynamics.
    pub fn eligibility_trace(&self) -> Option<&[f64]> {
        match &self.learning {
            Learning::Eprop(e) => Some(&e.trace),
            _ => None,
        }
    }

    /// Bytes of learning state beyond the weights, the momentum buffer and the current state
    /// (the module docs give the formula per method); includes the gradient buffer.
    pub fn memory_bytes(&self) -> usize {
        let values = self.core.grad.len()
            + match &self.learning {
                Learning::Tbptt(t) => t.xs.len() + t.gs.len() + t.errs.len() + t.delta.len() + t.beta.len(),
                Learning::Eprop(e) => {
                    e.trace.len() + e.x_prev.len() + e.g_prev.len() + e.err_prev.len() + e.signal.len() + e.decay.len()
                }
                Learning::Rtrl(r) => r.p.len() + r.p_next.len(),
            };
        values * size_of::<f64>()
    }

    /// Bytes of the momentum buffer, `8 E` for every method (not in
    /// [`memory_bytes`](RecurrentLearner::memory_bytes)).
    pub fn momentum_bytes(&self) -> usize {
        self.core.v.len() * size_of::<f64>()
    }

    /// Multiply-adds per step, by the formulas of the module docs (for TBPTT the average over
    /// a window, updates included).
    pub fn ops_per_step(&self) -> f64 {
        let md = &self.core.model;
        let (e, m, o) = (md.edges() as f64, (md.n - md.d) as f64, md.outputs.len() as f64);
        let e_rec = md.recurrent_edges() as f64;
        let common = e + m + o;
        common
            + match self.method {
                Method::Tbptt { window } => e + e_rec + 2.0 * m + 2.0 * e / window as f64,
                Method::Eprop => md.edges_into_outputs() as f64 + 2.0 * m + e + 2.0 * e + 2.0 * e,
                Method::Rtrl => o * e + e * (m + e_rec + 1.0) + 2.0 * e,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use localprop::network::NetworkSpec;
    use localprop::params::Speed;
    use localprop::signal::Sinusoid;

    /// `|a - b| <= ATOL + RTOL max(|a|, |b|)` between an analytic gradient and a central
    /// difference with step `H` in f64. The difference's truncation error is about
    /// `H^2 |L'''| / 6 ~ 2e-11 |L'''|` and its rounding error about `eps |L| / H ~ 2e-11 |L|`;
    /// with losses and derivatives of order 1 to 100 here both stay below `1e-8`, while a
    /// missing or misplaced term is off by `1e-3` or more.
    const H: f64 = 1e-5;
    const ATOL: f64 = 1e-8;
    const RTOL: f64 = 1e-6;

    fn close(a: f64, b: f64, atol: f64, rtol: f64) -> bool {
        (a - b).abs() <= atol + rtol * a.abs().max(b.abs())
    }

    /// Asserts that `got` matches `want` elementwise, reporting the first few mismatches.
    fn assert_close(got: &[f64], want: &[f64], atol: f64, rtol: f64, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        let bad: Vec<String> = (0..got.len())
            .filter(|&k| !close(got[k], want[k], atol, rtol))
            .take(5)
            .map(|k| format!("[{k}] {} vs {}", got[k], want[k]))
            .collect();
        assert!(bad.is_empty(), "{what}: {}", bad.join(", "));
        assert!(want.iter().any(|&g| g.abs() > 1e-3), "{what}: a test of an all-zero gradient proves nothing");
    }

    const TAU: f32 = 0.1;

    /// 1 input, a bias, 3 fully connected tanh neurons with self-loops; outputs 3 and 4, so
    /// neuron 2 is hidden. Weights drawn larger than the default so the dynamics are far from
    /// linear.
    fn net() -> Network {
        NetworkSpec::fully_connected(1, 3, true)
            .bias(true)
            .outputs(vec![3, 4])
            .init(localprop::network::Init::Uniform { gain: 2.0 })
            .seed(3)
            .build()
            .unwrap()
    }

    fn params(c: Speed) -> Params {
        Params { c, tau: TAU, q: 2.0, ..Params::default() }
    }

    fn sgd(lr: f32) -> SgdMomentum {
        SgdMomentum { lr, momentum: 0.5 }
    }

    fn input(n: u64) -> Vec<f32> {
        vec![(0.7 * n as f64 * TAU as f64).sin() as f32]
    }

    fn target(n: u64) -> Vec<f32> {
        let t = n as f64 * TAU as f64;
        vec![(0.5 * (0.7 * t + 1.0).cos()) as f32, (0.3 * (1.3 * t).sin()) as f32]
    }

    /// Output 1 masked off at every third step.
    fn mask(n: u64) -> Vec<f32> {
        vec![1.0, if n.is_multiple_of(3) { 0.0 } else { 1.0 }]
    }

    /// An independent rollout of the dynamics from `x0` at step `first` with weights `w`:
    /// the states `x^first ..= x^{first+steps}` (inputs set) and their losses. With
    /// `clamp = Some((i, rec))`, every non-input neuron other than `i` follows `rec` (states
    /// indexed from step 0).
    fn rollout(
        net: &Network,
        p: &Params,
        w: &[f64],
        x0: &[f64],
        first: u64,
        steps: usize,
        clamp: Option<(usize, &[Vec<f64>])>,
    ) -> (Vec<Vec<f64>>, Vec<f64>) {
        let (d, n) = (net.d(), net.n());
        let c = p.c.per_neuron(net);
        let edges: Vec<(usize, usize)> = net.edges().collect();
        let (mut xs, mut losses) = (Vec::new(), Vec::new());
        let mut x = x0.to_vec();
        for k in 0..=steps {
            let step = first + k as u64;
            x[0] = input(step)[0] as f64;
            x[1] = 1.0;
            let (z, mk) = (target(step), mask(step));
            let loss: f64 = net
                .outputs()
                .iter()
                .enumerate()
                .map(|(s, &o)| 0.5 * p.q as f64 * mk[s] as f64 * (x[o as usize] - z[s] as f64).powi(2))
                .sum();
            xs.push(x.clone());
            losses.push(loss);
            if k == steps {
                break;
            }
            let mut a = vec![0.0; n];
            for (e, &(j, i)) in edges.iter().enumerate() {
                a[i] += w[e] * x[j];
            }
            let mut next = x.clone();
            for i in d..n {
                next[i] = x[i] + c[i] as f64 * p.tau as f64 * (a[i].tanh() - x[i]);
            }
            if let Some((keep, rec)) = clamp {
                for i in (d..n).filter(|&i| i != keep) {
                    next[i] = rec[step as usize + 1][i];
                }
            }
            x = next;
        }
        (xs, losses)
    }

    /// The central difference of `f(w)` along each weight.
    fn central_difference(w0: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        (0..w0.len())
            .map(|e| {
                let (mut wp, mut wm) = (w0.to_vec(), w0.to_vec());
                wp[e] += H;
                wm[e] -= H;
                (f(&wp) - f(&wm)) / (2.0 * H)
            })
            .collect()
    }

    fn initial(net: &Network) -> Vec<f64> {
        net.initial_weights().iter().map(|&w| w as f64).collect()
    }

    /// Runs `steps` steps and sums the gradients of the updates made.
    fn accumulate(l: &mut RecurrentLearner, steps: u64) -> Vec<f64> {
        let mut acc = vec![0.0; l.weights().len()];
        for n in 0..steps {
            if l.step(&input(n), &target(n), Some(&mask(n))).unwrap().updated {
                acc.iter_mut().zip(l.gradient()).for_each(|(a, g)| *a += g);
            }
        }
        acc
    }

    #[test]
    fn rtrl_gradient_matches_finite_difference_of_the_total_loss() {
        let net = net();
        // Per-neuron speeds: c tau = 0.5, 0.3, 0.8.
        let p = params(Speed::PerNeuron(vec![5.0, 3.0, 8.0]));
        let steps = 40;
        let mut l = RecurrentLearner::new(&net, &p, Method::Rtrl, sgd(0.0)).unwrap();
        let got = accumulate(&mut l, steps);
        let w0 = initial(&net);
        assert_eq!(l.weights(), &w0[..], "lr = 0 keeps the weights");
        let x0 = vec![0.0; net.n()];
        let total = |w: &[f64]| rollout(&net, &p, w, &x0, 0, steps as usize - 1, None).1.iter().sum::<f64>();
        assert_close(&got, &central_difference(&w0, total), ATOL, RTOL, "RTRL vs finite difference");
        // The learner's losses are the rollout's.
        let mut l = RecurrentLearner::new(&net, &p, Method::Rtrl, sgd(0.0)).unwrap();
        let (_, want) = rollout(&net, &p, &w0, &x0, 0, 9, None);
        for (n, want) in want.iter().enumerate() {
            let n = n as u64;
            let loss = l.step(&input(n), &target(n), Some(&mask(n))).unwrap().loss;
            assert!(close(loss, *want, 1e-14, 1e-12), "step {n}: {loss} vs {want}");
        }
    }

    #[test]
    fn tbptt_window_gradient_matches_finite_difference_with_the_start_held() {
        let net = net();
        let p = params(Speed::Global(5.0));
        let (window, windows) = (7usize, 3u64);
        let mut l = RecurrentLearner::new(&net, &p, Method::Tbptt { window }, sgd(0.0)).unwrap();
        let w0 = initial(&net);
        let (xs, _) = rollout(&net, &p, &w0, &vec![0.0; net.n()], 0, window * windows as usize, None);
        for n in 0..=window as u64 * windows {
            let updated = l.step(&input(n), &target(n), Some(&mask(n))).unwrap().updated;
            assert_eq!(updated, n > 0 && n % window as u64 == 0, "step {n}");
            if updated {
                let s = n - window as u64;
                let window_loss = |w: &[f64]| {
                    let (_, losses) = rollout(&net, &p, w, &xs[s as usize], s, window, None);
                    losses[1..].iter().sum::<f64>() // E^{s+1} ..= E^{s+K}
                };
                let want = central_difference(&w0, window_loss);
                assert_close(l.gradient(), &want, ATOL, RTOL, &format!("window ending at step {n}"));
            }
        }
    }

    #[test]
    fn tbptt_over_the_whole_run_equals_rtrl() {
        let net = net();
        let p = params(Speed::PerNeuron(vec![5.0, 3.0, 8.0]));
        let steps = 30u64;
        // The window ending at step `steps` covers E^1 ..= E^steps from the zero state, whose
        // loss E^0 does not depend on the weights: RTRL's sum over steps 0 ..= steps.
        let mut t = RecurrentLearner::new(&net, &p, Method::Tbptt { window: steps as usize }, sgd(0.0)).unwrap();
        let mut r = RecurrentLearner::new(&net, &p, Method::Rtrl, sgd(0.0)).unwrap();
        let got = accumulate(&mut t, steps + 1);
        let want = accumulate(&mut r, steps + 1);
        assert_close(&got, &want, 1e-12, 1e-10, "TBPTT(N) vs RTRL");
        // A longer window has not ended yet.
        let mut long = RecurrentLearner::new(&net, &p, Method::Tbptt { window: 100 }, sgd(0.0)).unwrap();
        assert!(accumulate(&mut long, steps + 1).iter().all(|&g| g == 0.0));
    }

    #[test]
    fn tbptt_of_one_step_is_the_instantaneous_gradient() {
        // K = 1: at step n + 1, err^{n+1}_i ct_i sigma'(a_i^n) x_j^n for synapse j -> i.
        let net = net();
        let p = params(Speed::Global(5.0));
        let mut l = RecurrentLearner::new(&net, &p, Method::Tbptt { window: 1 }, sgd(0.0)).unwrap();
        let w0 = initial(&net);
        let (xs, _) = rollout(&net, &p, &w0, &vec![0.0; net.n()], 0, 6, None);
        for n in 0..6u64 {
            assert_eq!(l.step(&input(n), &target(n), Some(&mask(n))).unwrap().updated, n > 0);
        }
        let (x, x1) = (&xs[4], &xs[5]);
        let (z, mk) = (target(5), mask(5));
        let want: Vec<f64> = net
            .edges()
            .map(|(j, i)| match net.outputs().iter().position(|&o| o as usize == i) {
                None => 0.0,
                Some(k) => {
                    let a: f64 = net.edges().enumerate().filter(|e| e.1.1 == i).map(|(e, (s, _))| w0[e] * x[s]).sum();
                    let err = p.q as f64 * mk[k] as f64 * (x1[i] - z[k] as f64);
                    let ct = 5.0f32 as f64 * TAU as f64;
                    err * ct * (1.0 - a.tanh().powi(2)) * x[j]
                }
            })
            .collect();
        assert_close(l.gradient(), &want, 1e-14, 1e-12, "TBPTT(1)");
    }

    #[test]
    fn eprop_trace_is_the_derivative_with_other_neurons_clamped() {
        let net = net();
        let p = params(Speed::PerNeuron(vec![5.0, 3.0, 8.0]));
        let w0 = initial(&net);
        let x0 = vec![0.0; net.n()];
        let steps = 25usize;
        let (rec, _) = rollout(&net, &p, &w0, &x0, 0, steps, None);
        let mut l = RecurrentLearner::new(&net, &p, Method::Eprop, sgd(0.0)).unwrap();
        for n in 0..=steps as u64 {
            l.step(&input(n), &target(n), Some(&mask(n))).unwrap();
        }
        // After step N the trace is e^N = dx_i^N / dw_ij along i's own dynamics.
        let trace = l.eligibility_trace().unwrap().to_vec();
        let edges: Vec<(usize, usize)> = net.edges().collect();
        let want: Vec<f64> = (0..edges.len())
            .map(|e| {
                let i = edges[e].1;
                let x_i = |w: &[f64]| rollout(&net, &p, w, &x0, 0, steps, Some((i, &rec))).0[steps][i];
                let (mut wp, mut wm) = (w0.clone(), w0.clone());
                wp[e] += H;
                wm[e] -= H;
                (x_i(&wp) - x_i(&wm)) / (2.0 * H)
            })
            .collect();
        assert_close(&trace, &want, ATOL, RTOL, "e-prop trace vs clamped finite difference");
        // The clamped derivative differs from the full one (RTRL's), so the clamp matters.
        let self_loop = net.edge_index(3, 3).unwrap();
        let full = |w: &[f64]| rollout(&net, &p, w, &x0, 0, steps, None).0[steps][3];
        let (mut wp, mut wm) = (w0.clone(), w0.clone());
        wp[self_loop] += H;
        wm[self_loop] -= H;
        assert!((trace[self_loop] - (full(&wp) - full(&wm)) / (2.0 * H)).abs() > 1e-4);
    }

    #[test]
    fn eprop_equals_rtrl_for_a_single_neuron() {
        // One input, a bias and one neuron with a self-loop, which is the output.
        let net = NetworkSpec::fully_connected(1, 1, true)
            .bias(true)
            .outputs(vec![2])
            .init(localprop::network::Init::Uniform { gain: 2.0 })
            .seed(7)
            .build()
            .unwrap();
        let p = params(Speed::Global(5.0));
        let target1 = |n: u64| vec![target(n)[0]];
        let steps = 40u64;
        let (mut e, mut r) = (
            RecurrentLearner::new(&net, &p, Method::Eprop, sgd(0.0)).unwrap(),
            RecurrentLearner::new(&net, &p, Method::Rtrl, sgd(0.0)).unwrap(),
        );
        let (mut ge, mut gr) = (vec![0.0; 3], vec![0.0; 3]);
        // e-prop applies step n's signal at step n + 1: its steps 0 ..= N match RTRL's 0 .. N.
        for n in 0..=steps {
            if e.step(&input(n), &target1(n), None).unwrap().updated {
                ge.iter_mut().zip(e.gradient()).for_each(|(a, g)| *a += g);
            }
            if n < steps {
                assert!(r.step(&input(n), &target1(n), None).unwrap().updated);
                gr.iter_mut().zip(r.gradient()).for_each(|(a, g)| *a += g);
            }
        }
        assert_close(&ge, &gr, 1e-14, 1e-12, "e-prop vs RTRL, one neuron");
    }

    #[test]
    fn eprop_learning_signal_reaches_hidden_neurons() {
        // The hidden neuron 2 feeds the outputs: its synapses get a gradient, one step back.
        let net = net();
        let p = params(Speed::Global(5.0));
        let mut l = RecurrentLearner::new(&net, &p, Method::Eprop, sgd(0.0)).unwrap();
        let acc = accumulate(&mut l, 20);
        let hidden: Vec<usize> = net.edges().enumerate().filter(|e| e.1.1 == 2).map(|e| e.0).collect();
        assert!(hidden.iter().all(|&e| acc[e].abs() > 1e-6), "{acc:?}");
    }

    /// Follow `z = 0.8 sin(t + 1)` from the input `sin t`: the mean loss of the first and last
    /// quarters of `steps`.
    fn quarters(method: Method, lr: f32, steps: u64) -> (f64, f64) {
        let net = NetworkSpec::fully_connected(1, 4, true).bias(true).seed(2).build().unwrap();
        let p = Params { c: Speed::Global(5.0), tau: 0.1, ..Params::default() };
        let mut l = RecurrentLearner::new(&net, &p, method, SgdMomentum { lr, momentum: 0.5 }).unwrap();
        let input = Sinusoid::new(1.0, 1.0 / std::f64::consts::TAU);
        let target = Sinusoid { amplitude: 0.8, phase: 1.0, ..input.clone() };
        let losses = l.run(&mut Streams::new(target).with_input(input), steps).unwrap();
        let q = steps as usize / 4;
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        (mean(&losses[..q]), mean(&losses[losses.len() - q..]))
    }

    #[test]
    fn every_learner_learns_to_follow_a_sinusoid() {
        // Learning rates from a grid of 0.01 .. 0.2 (momentum 0.5), each well inside its range
        // of good ones. TBPTT(1) needs a larger one: its gradient reaches only the output's
        // incoming synapses, scaled by `c tau sigma'`.
        let steps = 4000;
        let cases = [
            (Method::Rtrl, 0.02),
            (Method::Eprop, 0.05),
            (Method::Tbptt { window: 1 }, 0.2),
            (Method::Tbptt { window: 8 }, 0.02),
        ];
        for (method, lr) in cases {
            let (first, last) = quarters(method, lr, steps);
            let (_, frozen) = quarters(method, 0.0, steps);
            assert!(
                last < 0.25 * first && last < 0.25 * frozen,
                "{method:?}, lr {lr}: first quarter {first}, last {last}, last with lr = 0 {frozen}"
            );
        }
    }

    #[test]
    fn memory_and_work_follow_their_formulas() {
        let net = net();
        let p = params(Speed::Global(5.0));
        let (n, e, m, o) = (5usize, 15usize, 3usize, 2usize);
        assert_eq!((net.n(), net.n_edges()), (n, e));
        let e_rec = 9.0; // 3 neurons x 3 non-input sources
        let e_out = 4.0; // into outputs 3 and 4 from the other two non-input neurons each
        let (ef, mf, of) = (e as f64, m as f64, o as f64);
        let common = ef + mf + of;
        let k = 8;
        let cases = [
            (
                Method::Tbptt { window: k },
                k * (2 * n + o) + 2 * n + e,
                common + ef + e_rec + 2.0 * mf + 2.0 * ef / k as f64,
            ),
            (Method::Eprop, 2 * e + 5 * n, common + e_out + 2.0 * mf + 5.0 * ef),
            (Method::Rtrl, 2 * m * e + e, common + of * ef + ef * (mf + e_rec + 1.0) + 2.0 * ef),
        ];
        for (method, values, ops) in cases {
            let l = RecurrentLearner::new(&net, &p, method, sgd(0.1)).unwrap();
            assert_eq!(l.memory_bytes(), 8 * values, "{method:?}");
            assert_eq!(l.momentum_bytes(), 8 * e);
            assert_eq!(l.ops_per_step(), ops, "{method:?}");
            assert_eq!(l.method(), method);
        }
    }

    #[test]
    fn bad_settings_are_errors_naming_the_field() {
        let net = net();
        let p = params(Speed::Global(5.0));
        let field = |r: Result<RecurrentLearner>| match r {
            Err(Error::Param { field, .. }) => field,
            Err(e) => panic!("expected a parameter error, got {e}"),
            Ok(_) => panic!("expected a parameter error"),
        };
        let new = |method, lr, momentum| RecurrentLearner::new(&net, &p, method, SgdMomentum { lr, momentum });
        assert_eq!(field(new(Method::Tbptt { window: 0 }, 0.1, 0.0)), "baseline.window");
        assert_eq!(field(new(Method::Tbptt { window: usize::MAX }, 0.1, 0.0)), "baseline.window");
        for lr in [f32::NAN, f32::INFINITY, -0.1] {
            assert_eq!(field(new(Method::Eprop, lr, 0.0)), "baseline.lr", "{lr}");
        }
        for momentum in [1.0, -0.1, f32::NAN] {
            assert_eq!(field(new(Method::Rtrl, 0.1, momentum)), "baseline.momentum", "{momentum}");
        }
        let big = NetworkSpec::fully_connected(1, RTRL_MAX_NEURONS + 1, false).build().unwrap();
        let r = RecurrentLearner::new(&big, &p, Method::Rtrl, sgd(0.1));
        assert_eq!(field(r), "network.neurons");
        assert!(RecurrentLearner::new(&big, &p, Method::Eprop, sgd(0.1)).is_ok());
        let fast = params(Speed::Global(30.0)); // c tau = 3
        assert_eq!(field(RecurrentLearner::new(&net, &fast, Method::Rtrl, sgd(0.1))), "c * tau");

        // Streams: sizes, values, masks.
        let mut l = new(Method::Rtrl, 0.1, 0.0).unwrap();
        let stream = |r: Result<StepOutcome<'_>>| match r {
            Err(Error::Stream { stream, .. }) => stream,
            r => panic!("expected a stream error, got {r:?}"),
        };
        assert_eq!(stream(l.step(&[], &[0.0, 0.0], None)), "input");
        assert_eq!(stream(l.step(&[f32::NAN], &[0.0, 0.0], None)), "input");
        assert_eq!(stream(l.step(&[0.0], &[0.0], None)), "target");
        assert_eq!(stream(l.step(&[0.0], &[0.0, 0.0], Some(&[1.0]))), "mask");
        assert_eq!(stream(l.step(&[0.0], &[0.0, 0.0], Some(&[1.0, 0.5]))), "mask");
        assert_eq!(l.steps(), 0, "a rejected step is not taken");
        let mut s = Streams::new(Sinusoid::new(1.0, 0.1));
        assert!(matches!(l.run(&mut s, 3), Err(Error::Stream { stream: "input", .. })));
        let mut s = Streams::new(Sinusoid::new(1.0, 0.1)).with_input(Sinusoid::new(1.0, 0.1));
        assert!(matches!(l.run(&mut s, 3), Err(Error::Stream { stream: "target", .. })));

        // Divergence names the learning rate.
        let lin = Params { activation: Activation::Identity, ..p.clone() };
        let mut l = RecurrentLearner::new(&net, &lin, Method::Rtrl, SgdMomentum { lr: 1e30, momentum: 0.0 }).unwrap();
        let r = (0..50u64).try_for_each(|n| l.step(&[1.0], &[5.0, -5.0], None).map(|_| ()).map_err(|e| (n, e)));
        match r {
            Err((_, Error::Param { field, .. })) => assert_eq!(field, "baseline.lr"),
            r => panic!("expected divergence, got {r:?}"),
        }
    }
}
