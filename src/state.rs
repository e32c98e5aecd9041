//! Snapshots of the engine's state and the per-step records of a run.

use crate::error::{Error, Result};

/// The full dynamic state of an engine: every replica's `x`, `p`, `w`, `pw` at step `step`.
///
/// Layout: `x` and `p` are `[replica][neuron]` (all `n` neurons; for input neurons `x`
/// holds the input applied at the last step and `p` is 0), `w` and `pw` are
/// `[replica][edge]` in the network's weight-vector order ([`crate::Network::edges`]). `p` and `pw` are the
/// scaled costates `p / phi`, `pw / phi`.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Steps taken; the time is `step * tau`.
    pub step: u64,
    /// Number of replicas.
    pub replicas: usize,
    /// Neuron states.
    pub x: Vec<f32>,
    /// Scaled neuron costates.
    pub p: Vec<f32>,
    /// Weights.
    pub w: Vec<f32>,
    /// Scaled weight costates.
    pub pw: Vec<f32>,
}

impl State {
    /// Checks the sizes against `n` neurons and `e` edges and that every value is finite.
    pub fn check(&self, replicas: usize, n: usize, e: usize) -> Result<()> {
        if self.replicas != replicas {
            return Err(Error::State(format!("{} replicas, the engine has {replicas}", self.replicas)));
        }
        for (name, v, want) in self.fields(n, e) {
            check_len(name, v, replicas, want)?;
            if let Some(k) = v.iter().position(|a| !a.is_finite()) {
                return Err(Error::State(format!("`{name}[{k}]` is {}, not finite", v[k])));
            }
        }
        Ok(())
    }

    /// Each vector with its name and its length per replica.
    fn fields(&self, n: usize, e: usize) -> [(&'static str, &[f32], usize); 4] {
        [("x", &self.x, n), ("p", &self.p, n), ("w", &self.w, e), ("pw", &self.pw, e)]
    }

    /// `x` of one replica.
    pub fn x_of(&self, replica: usize) -> &[f32] {
        let n = self.x.len() / self.replicas;
        &self.x[replica * n..(replica + 1) * n]
    }

    /// `p` of one replica.
    pub fn p_of(&self, replica: usize) -> &[f32] {
        let n = self.p.len() / self.replicas;
        &self.p[replica * n..(replica + 1) * n]
    }

    /// `w` of one replica.
    pub fn w_of(&self, replica: usize) -> &[f32] {
        let e = self.w.len() / self.replicas;
        &self.w[replica * e..(replica + 1) * e]
    }

    /// `pw` of one replica.
    pub fn pw_of(&self, replica: usize) -> &[f32] {
        let e = self.pw.len() / self.replicas;
        &self.pw[replica * e..(replica + 1) * e]
    }
}

/// Checks that the state vector `name` holds `replicas x want` values.
fn check_len(name: &str, v: &[f32], replicas: usize, want: usize) -> Result<()> {
    let total = replicas.checked_mul(want);
    if total != Some(v.len()) {
        let total = total.map_or_else(|| "more than usize::MAX".to_string(), |t| t.to_string());
        return Err(Error::State(format!("`{name}` has {} values, want {replicas} x {want} = {total}", v.len())));
    }
    Ok(())
}

/// The records of the recorded steps of a run: one row per recorded step, each with a value
/// per replica (and per output). Energies are scaled by `1/phi`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Number of replicas.
    pub replicas: usize,
    /// Outputs per replica.
    pub n_out: usize,
    /// Step index of each row.
    pub step: Vec<u64>,
    /// Time `step * tau` of each row.
    pub t: Vec<f64>,
    /// The sign `s_n` multiplying the replica's state equations at that step, as the kernels
    /// applied it, `[row][replica]`: the HSF sign, +1 for `hamilton` and `reverse-costate`
    /// (the same for every replica), and under `hsf-ball` each replica's own, from its state.
    pub sign: Vec<f32>,
    /// `(q/2) sum_o mask_o (x_o - z_o)^2`, `[row][replica]`.
    pub loss: Vec<f32>,
    /// Scaled Lagrangian `|pw|^2/(2r) + (r_w/2)|w|^2 + loss`, `[row][replica]`.
    pub lagrangian: Vec<f32>,
    /// Scaled Hamiltonian `sum_i p_i c_i(sigma(a_i) - x_i) - |pw|^2/(2r) + (r_w/2)|w|^2 + loss`.
    pub hamiltonian: Vec<f32>,
    /// Outputs `x_o` at the step, `[row][replica][n_out]`.
    pub outputs: Vec<f32>,
    /// Targets `z_o` at the step, `[row][replica][n_out]`.
    pub targets: Vec<f32>,
    /// Masks at the step, `[row][replica][n_out]`.
    pub masks: Vec<f32>,
}

impl Trace {
    /// An empty trace.
    pub fn new(replicas: usize, n_out: usize) -> Self {
        Trace { replicas, n_out, ..Default::default() }
    }

    /// Number of recorded steps.
    pub fn rows(&self) -> usize {
        self.step.len()
    }

    /// Appends the rows of `other` (same shape).
    pub fn append(&mut self, other: Trace) {
        self.step.extend(other.step);
        self.t.extend(other.t);
        self.sign.extend(other.sign);
        self.loss.extend(other.loss);
        self.lagrangian.extend(other.lagrangian);
        self.hamiltonian.extend(other.hamiltonian);
        self.outputs.extend(other.outputs);
        self.targets.extend(other.targets);
        self.masks.extend(other.masks);
    }

    /// Appends a copy of the rows of `other` (same shape).
    pub fn extend_from(&mut self, other: &Trace) {
        self.step.extend_from_slice(&other.step);
        self.t.extend_from_slice(&other.t);
        self.sign.extend_from_slice(&other.sign);
        self.loss.extend_from_slice(&other.loss);
        self.lagrangian.extend_from_slice(&other.lagrangian);
        self.hamiltonian.extend_from_slice(&other.hamiltonian);
        self.outputs.extend_from_slice(&other.outputs);
        self.targets.extend_from_slice(&other.targets);
        self.masks.extend_from_slice(&other.masks);
    }

    /// Removes every row, keeping the shape and the allocations.
    pub fn clear(&mut self) {
        self.step.clear();
        self.t.clear();
        self.sign.clear();
        self.loss.clear();
        self.lagrangian.clear();
        self.hamiltonian.clear();
        self.outputs.clear();
        self.targets.clear();
        self.masks.clear();
    }

    /// Output `o` of `replica` over all rows.
    pub fn output_series(&self, replica: usize, o: usize) -> Vec<f32> {
        self.series(&self.outputs, replica, o)
    }

    /// Target `o` of `replica` over all rows.
    pub fn target_series(&self, replica: usize, o: usize) -> Vec<f32> {
        self.series(&self.targets, replica, o)
    }

    fn series(&self, v: &[f32], replica: usize, o: usize) -> Vec<f32> {
        (0..self.rows()).map(|row| v[(row * self.replicas + replica) * self.n_out + o]).collect()
    }

    /// Normalised mean squared error of output `o` of `replica` over rows `from..`:
    /// the mean of `(x_o - z_o)^2` divided by the variance of `z_o` over those rows
    /// (computed in f64). `NaN` when the target is constant there.
    pub fn nmse(&self, replica: usize, o: usize, from: usize) -> f64 {
        let x = self.output_series(replica, o);
        let z = self.target_series(replica, o);
        let (x, z) = (&x[from..], &z[from..]);
        let m = z.len() as f64;
        let mean = z.iter().map(|&v| v as f64).sum::<f64>() / m;
        let var = z.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / m;
        let mse = x.iter().zip(z).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum::<f64>() / m;
        mse / var
    }
}

/// The local learning signals of a state: the messages `e_hat_i = c_i sigma'(a_i) p_i` per
/// neuron and `e_hat_i x_j` per synapse, `[replica][..]`. At `c tau = 1` under
/// `reverse-costate` these relax to the backprop delta and gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalSignals {
    /// `e_hat` per neuron (0 for inputs).
    pub e_hat: Vec<f32>,
    /// `e_hat_i x_j` per edge, CSR order.
    pub grad: Vec<f32>,
}

impl State {
    /// Evaluates [`LocalSignals`] at this state, with `inputs` (`[replica][net.inputs()]`)
    /// as the values of the input neurons (the bias is 1), using the kernels' closed forms.
    ///
    /// `params` holds one parameter set per replica. An [`Error::Param`] names `params`,
    /// `params[r].c` or `inputs` when their sizes do not fit, and an [`Error::State`] the
    /// state's own vectors when they do not fit `net`.
    pub fn local_signals(
        &self,
        net: &crate::Network,
        params: &[crate::Params],
        inputs: &[f32],
    ) -> Result<LocalSignals> {
        let (n, d, ne, n_in) = (net.n(), net.d(), net.n_edges(), net.inputs());
        if params.len() != self.replicas {
            return Err(Error::param(
                "params",
                format!("{} parameter sets", params.len()),
                format!("one per replica of the state ({})", self.replicas),
            ));
        }
        for (r, p) in params.iter().enumerate() {
            if let crate::Speed::PerNeuron(cs) = &p.c
                && cs.len() != n - d
            {
                return Err(Error::param(
                    format!("params[{r}].c"),
                    format!("a list of {} speeds", cs.len()),
                    format!("one speed per non-input neuron ({})", n - d),
                ));
            }
        }
        let want_inputs = self.replicas.checked_mul(n_in);
        if want_inputs != Some(inputs.len()) {
            let want = want_inputs.map_or_else(|| "more than usize::MAX".to_string(), |w| w.to_string());
            return Err(Error::param(
                "inputs",
                format!("{} values", inputs.len()),
                format!("{} replicas x {n_in} external inputs = {want} values", self.replicas),
            ));
        }
        for (name, v, want) in self.fields(n, ne) {
            check_len(name, v, self.replicas, want)?;
        }
        let ix = net.index();
        let mut e_hat = vec![0.0f32; self.replicas * n];
        let mut grad = vec![0.0f32; self.replicas * ne];
        for (r, p) in params.iter().enumerate().take(self.replicas) {
            let c = p.c.per_neuron(net);
            let value = |j: usize| -> f32 {
                if j < n_in {
                    inputs[r * n_in + j]
                } else if j < d {
                    1.0
                } else {
                    self.x[r * n + j]
                }
            };
            for i in d..n {
                let a: f32 = ix.incoming(i).map(|e| self.w[r * ne + e] * value(ix.src[e] as usize)).sum();
                let (_, ds) = crate::activation::activate(p.activation.code(), a);
                e_hat[r * n + i] = c[i] * ds * self.p[r * n + i];
            }
            for e in 0..ne {
                grad[r * ne + e] = e_hat[r * n + ix.dst[e] as usize] * value(ix.src[e] as usize);
            }
        }
        Ok(LocalSignals { e_hat, grad })
    }
}
