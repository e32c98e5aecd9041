//! Parameters of the dynamics, sign policies, and their validation.

use crate::error::{Error, Result};
use crate::network::Network;

/// The neuron nonlinearity `sigma`. One closed form serves the CPU and the GPU
/// (see [`crate::activation`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Activation {
    /// `tanh(a)`, the default.
    #[default]
    Tanh,
    /// `1 / (1 + exp(-a))`.
    Logistic,
    /// `a`.
    Identity,
}

impl Activation {
    /// The code the kernels use (`0` tanh, `1` logistic, `2` identity).
    pub fn code(self) -> u32 {
        match self {
            Activation::Tanh => 0,
            Activation::Logistic => 1,
            Activation::Identity => 2,
        }
    }

    /// The name used in experiment files.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Logistic => "logistic",
            Activation::Identity => "identity",
        }
    }
}

/// How the Hamiltonian vector field is signed at each step (theory, section 6).
/// The rescaling terms `-theta (.)` of the scaled costates are never flipped.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Policy {
    /// The true Hamilton equations, all signs `+1`. Forward integration is unstable;
    /// kept for reference.
    Hamilton,
    /// The costate equations (`p` and `pw`) always multiplied by `-1` (the paper's eq. 18).
    /// With `c -> inf` the weights follow heavy-ball gradient descent.
    #[default]
    ReverseCostate,
    /// Hamiltonian Sign Flip (the paper's eq. 23): all four equations multiplied by
    /// `s(t) = sign(cos(2 pi frequency t))`, `+1` where the cosine is `>= 0`.
    Hsf {
        /// The flip frequency `f`, in cycles per unit of time.
        frequency: f64,
    },
    /// HSF flipping at every Euler step: `s_n = +1` for even `n`, `-1` for odd.
    HsfEveryStep,
}

impl Policy {
    /// The signs `(s_state, s_costate)` that multiply the `x, w` and the `p, pw` equations at
    /// step `n`, time `t = n tau`. Computed on the host in f64, shared by both backends.
    pub fn signs(self, step: u64, t: f64) -> (f32, f32) {
        match self {
            Policy::Hamilton => (1.0, 1.0),
            Policy::ReverseCostate => (1.0, -1.0),
            Policy::Hsf { frequency } => {
                let s = if (std::f64::consts::TAU * frequency * t).cos() >= 0.0 { 1.0 } else { -1.0 };
                (s, s)
            }
            Policy::HsfEveryStep => {
                let s = if step.is_multiple_of(2) { 1.0 } else { -1.0 };
                (s, s)
            }
        }
    }

    /// The name used in experiment files.
    pub fn name(self) -> &'static str {
        Self::NAMES[match self {
            Policy::Hamilton => 0,
            Policy::ReverseCostate => 1,
            Policy::Hsf { .. } => 2,
            Policy::HsfEveryStep => 3,
        }]
    }

    /// Every policy's [`name`](Policy::name), as experiment files write them.
    pub const NAMES: [&'static str; 4] = ["hamilton", "reverse-costate", "hsf", "hsf-every-step"];

    /// The policy called `name`, with the parameter that policy takes as experiment files give
    /// it: `hsf` needs `hsf_frequency`, the others take none. The error names the unknown
    /// name, or the missing or unused parameter.
    pub fn named(name: &str, hsf_frequency: Option<f64>) -> Result<Policy> {
        let policy = match (name, hsf_frequency) {
            ("hsf", Some(frequency)) => Policy::Hsf { frequency },
            ("hsf", None) => return Err(Error::param("hsf_frequency", "missing", "required by policy = \"hsf\"")),
            (_, Some(f)) if Self::NAMES.contains(&name) => {
                return Err(Error::param("hsf_frequency", f, "only used by policy = \"hsf\""));
            }
            ("hamilton", None) => Policy::Hamilton,
            ("reverse-costate", None) => Policy::ReverseCostate,
            ("hsf-every-step", None) => Policy::HsfEveryStep,
            _ => return Err(Error::param("policy", format!("{name:?}"), format!("one of {}", Self::NAMES.join(", ")))),
        };
        debug_assert_eq!(policy.name(), name);
        Ok(policy)
    }
}

/// The propagation speed `c`: one value for every neuron, or one per non-input neuron.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(untagged))]
pub enum Speed {
    /// The same `c` for every non-input neuron.
    Global(f32),
    /// `c_i` for each non-input neuron, in order (`d()..n()`).
    PerNeuron(Vec<f32>),
}

impl Speed {
    /// The speed of every neuron of `net` (`0` for input neurons, which have no dynamics).
    pub fn per_neuron(&self, net: &Network) -> Vec<f32> {
        let d = net.d();
        (0..net.n())
            .map(|i| match self {
                _ if i < d => 0.0,
                Speed::Global(c) => *c,
                Speed::PerNeuron(cs) => cs[i - d],
            })
            .collect()
    }
}

/// Every parameter of the dynamics for one replica (theory, sections 2-7).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(default, deny_unknown_fields))]
pub struct Params {
    /// Propagation speed `c > 0`, with `0 < c tau <= 2`.
    pub c: Speed,
    /// Euler step `tau > 0`.
    pub tau: f32,
    /// Accuracy weight `q >= 0` of the loss `(q/2) sum_o mask_o (x_o - z_o)^2`.
    pub q: f32,
    /// Kinetic weight `r > 0` of `(r/2)|w'|^2`; `1/r` acts as the learning rate.
    pub r: f32,
    /// Weight regulariser `r_w >= 0` of `(r_w/2)|w|^2`. The paper writes `r_w |w|^2`, so its
    /// value corresponds to twice ours: the paper's `r_w = 1` is `r_w = 2` here.
    pub r_w: f32,
    /// Dissipation `theta >= 0`, `phi(t) = exp(theta t)`; acts as friction.
    pub theta: f32,
    /// The nonlinearity.
    pub activation: Activation,
    /// The sign policy.
    pub policy: Policy,
    /// Whether weights (and their costates) evolve; `false` freezes them.
    pub learning: bool,
}

impl Default for Params {
    /// `c = 1, tau = 0.1, q = 1, r = 1, r_w = 0, theta = 0`, tanh, reverse-costate, learning on.
    fn default() -> Self {
        Params {
            c: Speed::Global(1.0),
            tau: 0.1,
            q: 1.0,
            r: 1.0,
            r_w: 0.0,
            theta: 0.0,
            activation: Activation::Tanh,
            policy: Policy::ReverseCostate,
            learning: true,
        }
    }
}

/// The f64 nearest the shortest decimal that reads back as `v` (`0.01f32` gives `0.01`,
/// not `0.009999999776`): how f32 parameters become times and report values, so that
/// `t = n tau` is what a user who wrote `tau = 0.01` expects.
pub fn decimal(v: f32) -> f64 {
    v.to_string().parse().unwrap_or(v as f64)
}

fn check(field: &str, v: f32, ok: bool, allowed: &str) -> Result<()> {
    if v.is_finite() && ok { Ok(()) } else { Err(Error::param(field, v, allowed)) }
}

impl Params {
    /// The parameters of the paper's tracking task as this crate runs it (docs/model.md,
    /// section 6): `c = 50`, `tau = 0.01` (`c tau = 0.5`), `r = 0.1`, `r_w = 1`,
    /// `theta = 1`, the Hamiltonian Sign Flip at every step, and accuracy weight `q` (the
    /// paper's Figs. 1, 3 and 2 use 10, 100, 1000). `examples/configs/fig1-sinusoid-q10.toml`
    /// takes them with `q = 10` and `r_w = 2` (the paper's `r_w = 1` in its convention).
    pub fn tracking(q: f32) -> Params {
        Params {
            c: Speed::Global(50.0),
            tau: 0.01,
            q,
            r: 0.1,
            r_w: 1.0,
            theta: 1.0,
            policy: Policy::HsfEveryStep,
            ..Params::default()
        }
    }

    /// Checks every value against its range and against the network; the error names the
    /// field and the value.
    pub fn validate(&self, net: &Network) -> Result<()> {
        check("tau", self.tau, self.tau > 0.0, "a finite number > 0")?;
        check("q", self.q, self.q >= 0.0, "a finite number >= 0")?;
        check("r", self.r, self.r > 0.0, "a finite number > 0")?;
        check("r_w", self.r_w, self.r_w >= 0.0, "a finite number >= 0")?;
        check("theta", self.theta, self.theta >= 0.0, "a finite number >= 0")?;
        if let Policy::Hsf { frequency } = self.policy
            && !(frequency.is_finite() && frequency > 0.0)
        {
            return Err(Error::param("policy.frequency", frequency, "a finite number > 0"));
        }
        let cs: Vec<(String, f32)> = match &self.c {
            Speed::Global(c) => vec![("c".to_string(), *c)],
            Speed::PerNeuron(cs) => {
                let want = net.n() - net.d();
                if cs.len() != want {
                    return Err(Error::param(
                        "c",
                        format!("a list of {} speeds", cs.len()),
                        format!("one speed per non-input neuron ({want})"),
                    ));
                }
                cs.iter().enumerate().map(|(k, &c)| (format!("c[{k}]"), c)).collect()
            }
        };
        for (field, c) in cs {
            check(&field, c, c > 0.0, "a finite number > 0")?;
            let ct = c * self.tau;
            if !(ct > 0.0 && ct <= 2.0) {
                return Err(Error::param(
                    format!("{field} * tau"),
                    format!("{c} * {} = {ct}", self.tau),
                    "0 < c tau <= 2 (explicit Euler is unstable beyond 2; 1 is one hop per step)",
                ));
            }
        }
        Ok(())
    }

    /// Checks that a list of replica parameters can run together: each valid, and the
    /// shared settings (`tau`, activation, policy, learning) equal across replicas.
    pub fn validate_replicas(list: &[Params], net: &Network) -> Result<()> {
        let Some(first) = list.first() else {
            return Err(Error::param("replicas", 0, "at least one replica"));
        };
        for (k, p) in list.iter().enumerate() {
            p.validate(net).map_err(|e| match e {
                Error::Param { field, value, allowed } if list.len() > 1 => {
                    Error::Param { field: format!("replicas[{k}].{field}"), value, allowed }
                }
                other => other,
            })?;
            let shared = [
                ("tau", p.tau != first.tau, p.tau.to_string()),
                ("activation", p.activation != first.activation, p.activation.name().into()),
                ("policy", p.policy != first.policy, format!("{:?}", p.policy)),
                ("learning", p.learning != first.learning, p.learning.to_string()),
            ];
            if let Some((field, _, value)) = shared.into_iter().find(|s| s.1) {
                return Err(Error::param(
                    format!("replicas[{k}].{field}"),
                    value,
                    "the same value in every replica (replicas share one step schedule)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_is_made_from_its_name_and_only_with_its_parameter() {
        let all = [Policy::Hamilton, Policy::ReverseCostate, Policy::Hsf { frequency: 0.25 }, Policy::HsfEveryStep];
        assert_eq!(all.map(Policy::name), Policy::NAMES);
        for p in all {
            let frequency = match p {
                Policy::Hsf { frequency } => Some(frequency),
                _ => None,
            };
            assert_eq!(Policy::named(p.name(), frequency).unwrap(), p);
            let wrong = if frequency.is_some() { None } else { Some(1.0) };
            let Err(Error::Param { field, .. }) = Policy::named(p.name(), wrong) else { panic!("{p:?}") };
            assert_eq!(field, "hsf_frequency");
        }
        let Err(Error::Param { field, allowed, .. }) = Policy::named("hsf-sometimes", None) else { panic!() };
        assert_eq!(field, "policy");
        assert!(Policy::NAMES.iter().all(|n| allowed.contains(n)), "{allowed}");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn params_read_back_from_json_and_missing_keys_take_the_defaults() {
        for p in [Params::tracking(10.0), Params { policy: Policy::Hsf { frequency: 0.5 }, ..Params::default() }] {
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Params>(&text).unwrap(), p, "{text}");
        }
        let some: Params = serde_json::from_str(r#"{"q": 3.0, "c": [1.0, 2.0], "activation": "logistic"}"#).unwrap();
        let want = Params {
            q: 3.0,
            c: Speed::PerNeuron(vec![1.0, 2.0]),
            activation: Activation::Logistic,
            ..Params::default()
        };
        assert_eq!(some, want);
        assert!(serde_json::from_str::<Params>(r#"{"qq": 3.0}"#).is_err(), "an unknown key is refused");
    }
}
