//! Reference gradients, written independently of the engine and its kernels (f64, the
//! standard library's `tanh` and `exp`, plain loops over the edge list). They are the
//! oracles of the claims that backpropagation is the infinite-speed limit of the local rule.
//!
//! Loss: `(q/2) sum_o mask_o (x_o - z_o)^2`; delta: `dLoss/da_i`; gradient: `dLoss/dw_ij`.

use crate::error::{Error, Result};
use crate::network::Network;
use crate::params::Activation;

/// A forward and backward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradients {
    /// Neuron values (inputs included).
    pub x: Vec<f64>,
    /// Pre-activations (0 for inputs).
    pub a: Vec<f64>,
    /// `dLoss/da_i` (0 for inputs).
    pub delta: Vec<f64>,
    /// `dLoss/dw` per edge, in CSR order.
    pub grad: Vec<f64>,
    /// The loss.
    pub loss: f64,
}

/// `(sigma(a), sigma'(a))` in f64 with the standard library's `tanh` and `exp` (independent of
/// the kernels' closed forms).
pub fn sigma(act: Activation, a: f64) -> (f64, f64) {
    match act {
        Activation::Tanh => {
            let t = a.tanh();
            (t, 1.0 - t * t)
        }
        Activation::Logistic => {
            let s = 1.0 / (1.0 + (-a).exp());
            (s, s * (1.0 - s))
        }
        Activation::Identity => (a, 1.0),
    }
}

/// The problem: weights (CSR order), the input neurons' values (`d` of them, bias included),
/// targets and masks per output, `q` and the activation.
#[derive(Clone, Copy, Debug)]
pub struct Problem<'a> {
    /// Weights in CSR order.
    pub w: &'a [f32],
    /// Values of the `d` input neurons.
    pub inputs: &'a [f32],
    /// Target per output.
    pub targets: &'a [f32],
    /// Mask per output (`None`: all 1).
    pub masks: Option<&'a [f32]>,
    /// Accuracy weight.
    pub q: f32,
    /// Nonlinearity.
    pub activation: Activation,
}

impl Problem<'_> {
    fn check(&self, net: &Network) -> Result<()> {
        let sizes = [
            ("w", self.w.len(), net.n_edges()),
            ("inputs", self.inputs.len(), net.d()),
            ("targets", self.targets.len(), net.outputs().len()),
            ("masks", self.masks.map_or(net.outputs().len(), <[f32]>::len), net.outputs().len()),
        ];
        for (field, got, want) in sizes {
            if got != want {
                return Err(Error::param(field, format!("{got} values"), format!("{want} values")));
            }
        }
        Ok(())
    }

    /// `dLoss/dx_i` of the output terms, and the loss, at state `x`.
    fn output_error(&self, net: &Network, x: &[f64]) -> (Vec<f64>, f64) {
        let mut err = vec![0.0; net.n()];
        let mut loss = 0.0;
        for (k, &o) in net.outputs().iter().enumerate() {
            let m = self.masks.map_or(1.0, |m| m[k] as f64);
            let dv = x[o as usize] - self.targets[k] as f64;
            err[o as usize] = self.q as f64 * m * dv;
            loss += 0.5 * self.q as f64 * m * dv * dv;
        }
        (err, loss)
    }

    fn grads(&self, net: &Network, x: Vec<f64>, a: Vec<f64>, delta: Vec<f64>, loss: f64) -> Gradients {
        let grad = net.edges().map(|(j, i)| delta[i] * x[j]).collect();
        Gradients { x, a, delta, grad, loss }
    }
}

/// Plain backpropagation through a feed-forward network (any DAG; neurons are visited in a
/// topological order found by Kahn's algorithm). Fails on a graph with a cycle.
pub fn backprop(net: &Network, prob: &Problem) -> Result<Gradients> {
    prob.check(net)?;
    let (n, d) = (net.n(), net.d());
    let ix = net.index();
    let mut indegree: Vec<usize> = (0..n).map(|i| ix.incoming(i).count()).collect();
    let mut order: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let j = order[head];
        head += 1;
        for e in ix.outgoing(j) {
            let i = ix.dst[e] as usize;
            indegree[i] -= 1;
            if indegree[i] == 0 {
                order.push(i);
            }
        }
    }
    if order.len() != n {
        return Err(Error::Network("backprop needs an acyclic network; this one has a cycle".into()));
    }
    let mut x = vec![0.0; n];
    let mut a = vec![0.0; n];
    let mut g = vec![0.0; n];
    for &i in &order {
        if i < d {
            x[i] = prob.inputs[i] as f64;
            continue;
        }
        a[i] = ix.incoming(i).map(|e| prob.w[e] as f64 * x[ix.src[e] as usize]).sum();
        (x[i], g[i]) = sigma(prob.activation, a[i]);
    }
    let (err, loss) = prob.output_error(net, &x);
    let mut delta = vec![0.0; n];
    for &i in order.iter().rev() {
        if i < d {
            continue;
        }
        let back: f64 = ix.outgoing(i).map(|e| prob.w[e] as f64 * delta[ix.dst[e] as usize]).sum();
        delta[i] = g[i] * (back + err[i]);
    }
    Ok(prob.grads(net, x, a, delta, loss))
}

/// The gradient at the fixed point `x = sigma(W x + inputs)` of a recurrent network, by
/// implicit differentiation (recurrent backpropagation): `delta = G (W^T delta + dLoss/dx)`,
/// `G = diag(sigma'(a))`, `dLoss/dW = delta x^T`. Both fixed points are found by iteration,
/// which converges when the network is contractive; fails if either has not converged to
/// `1e-12` within `max_iter` sweeps.
pub fn fixed_point_gradient(net: &Network, prob: &Problem, max_iter: usize) -> Result<Gradients> {
    prob.check(net)?;
    let (n, d) = (net.n(), net.d());
    let ix = net.index();
    let mut x = vec![0.0; n];
    for (xi, &u) in x.iter_mut().zip(prob.inputs) {
        *xi = u as f64;
    }
    let mut a = vec![0.0; n];
    let mut g = vec![0.0; n];
    let mut converged = false;
    for _ in 0..max_iter {
        let mut change: f64 = 0.0;
        let prev = x.clone();
        for i in d..n {
            a[i] = ix.incoming(i).map(|e| prob.w[e] as f64 * prev[ix.src[e] as usize]).sum();
            (x[i], g[i]) = sigma(prob.activation, a[i]);
            change = change.max((x[i] - prev[i]).abs());
        }
        if change < 1e-12 {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(Error::Network(format!("the state did not reach a fixed point in {max_iter} sweeps")));
    }
    let (err, loss) = prob.output_error(net, &x);
    let mut delta = vec![0.0; n];
    converged = false;
    for _ in 0..max_iter {
        let prev = delta.clone();
        let mut change: f64 = 0.0;
        for i in d..n {
            let back: f64 = ix.outgoing(i).map(|e| prob.w[e] as f64 * prev[ix.dst[e] as usize]).sum();
            delta[i] = g[i] * (back + err[i]);
            change = change.max((delta[i] - prev[i]).abs());
        }
        if change < 1e-12 {
            converged = true;
            break;
        }
    }
    if !converged {
        return Err(Error::Network(format!("the adjoint did not reach a fixed point in {max_iter} sweeps")));
    }
    Ok(prob.grads(net, x, a, delta, loss))
}

/// One lockstep explicit Euler step of the dynamics in f64, in the split form of the theory
/// (every right-hand side from the step-`n` values, sums in plain order), for every replica:
/// the oracle the engine's one-pass step is compared with. `inputs` are the values of the
/// input neurons `[replica][d]` (bias included) and `targets` `[replica][n_out]` at step
/// `state.step`; returns the next `x`, `p`, `w`, `pw`, laid out as [`crate::State`]. Under
/// `hsf-ball` each replica's sign comes from [`state_norm2`] of its part of `state`.
pub fn euler_step(
    net: &Network,
    params: &[crate::Params],
    state: &crate::State,
    inputs: &[f32],
    targets: &[f32],
) -> [Vec<f64>; 4] {
    let (n, d, ne, n_out) = (net.n(), net.d(), net.n_edges(), net.outputs().len());
    let ix = net.index();
    let slots = net.output_slots();
    let mut out: [Vec<f64>; 4] = std::array::from_fn(|_| Vec::new());
    for (r, prm) in params.iter().enumerate() {
        let t = state.step as f64 * prm.tau as f64;
        let (ss, sc) = prm.policy.scheduled_signs(state.step, t).unwrap_or_else(|| {
            let s = prm.policy.ball_sign(state_norm2(state, r)).expect("a policy without a schedule is hsf-ball");
            (s, s)
        });
        let (ss, sc, tau) = (ss as f64, sc as f64, prm.tau as f64);
        let (q, rr, rw, theta) = (prm.q as f64, prm.r as f64, prm.r_w as f64, prm.theta as f64);
        let c = prm.c.per_neuron(net);
        let x: Vec<f64> =
            (0..n).map(|j| if j < d { inputs[r * d + j] as f64 } else { state.x[r * n + j] as f64 }).collect();
        let p: Vec<f64> = state.p[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
        let w: Vec<f64> = state.w[r * ne..(r + 1) * ne].iter().map(|&v| v as f64).collect();
        let pw: Vec<f64> = state.pw[r * ne..(r + 1) * ne].iter().map(|&v| v as f64).collect();
        let mut e_hat = vec![0.0; n];
        let mut x1 = x.clone();
        for i in d..n {
            let a: f64 = ix.incoming(i).map(|e| w[e] * x[ix.src[e] as usize]).sum();
            let (s, ds) = sigma(prm.activation, a);
            x1[i] = x[i] + tau * ss * c[i] as f64 * (s - x[i]);
            e_hat[i] = c[i] as f64 * ds * p[i];
        }
        let mut p1 = p.clone();
        for i in d..n {
            let back: f64 = ix.outgoing(i).map(|e| w[e] * e_hat[ix.dst[e] as usize]).sum();
            let err = match slots[i] {
                crate::network::NOT_OUTPUT => 0.0,
                k => q * (x[i] - targets[r * n_out + k as usize] as f64),
            };
            p1[i] = p[i] + tau * (sc * (c[i] as f64 * p[i] - back - err) - theta * p[i]);
        }
        let (mut w1, mut pw1) = (w.clone(), pw.clone());
        if prm.learning {
            for e in 0..ne {
                let (j, i) = (ix.src[e] as usize, ix.dst[e] as usize);
                pw1[e] = pw[e] + tau * (sc * (-e_hat[i] * x[j] - rw * w[e]) - theta * pw[e]);
                w1[e] = w[e] + tau * ss * (-pw[e] / rr);
            }
        }
        for (acc, v) in out.iter_mut().zip([x1, p1, w1, pw1]) {
            acc.extend(v);
        }
    }
    out
}

/// The squared norm `|x|^2 + |p|^2 + |w|^2 + |pw|^2` of replica `r`'s part of `state`, in f64
/// over every value it stores (input neurons' `x` and `p` included): what `hsf-ball` compares
/// with `R^2`.
pub fn state_norm2(state: &crate::State, r: usize) -> f64 {
    [state.x_of(r), state.p_of(r), state.w_of(r), state.pw_of(r)]
        .into_iter()
        .flatten()
        .map(|&v| v as f64 * v as f64)
        .sum()
}
