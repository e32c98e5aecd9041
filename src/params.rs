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
    /// HSF flipping when the state leaves a ball (the one non-local policy): all four
    /// equations of step `n` multiplied by `s_n = +1` while the replica's step-`n` state has
    /// `|x|^2 + |p|^2 + |w|^2 + |pw|^2 <= radius^2` (every value [`crate::State`] stores:
    /// all neurons' `x` and scaled `p`, all synapses' `w` and scaled `pw`), else `-1`. Each
    /// replica takes its own sign, reduced from its state on the device at every step
    /// (docs/model.md, section 5).
    HsfBall {
        /// The radius `R > 0` of the ball.
        radius: f32,
    },
}

impl Policy {
    /// The signs `(s_state, s_costate)` that multiply the `x, w` and the `p, pw` equations at
    /// step `n`, time `t = n tau`, for a policy whose signs follow a schedule: computed on the
    /// host in f64, the same for every replica and on both backends. `None` for
    /// [`Policy::HsfBall`], whose signs depend on each replica's state ([`Policy::ball_sign`]).
    pub fn scheduled_signs(self, step: u64, t: f64) -> Option<(f32, f32)> {
        match self {
            Policy::Hamilton => Some((1.0, 1.0)),
            Policy::ReverseCostate => Some((1.0, -1.0)),
            Policy::Hsf { frequency } => {
                let s = if (std::f64::consts::TAU * frequency * t).cos() >= 0.0 { 1.0 } else { -1.0 };
                Some((s, s))
            }
            Policy::HsfEveryStep => {
                let s = if step.is_multiple_of(2) { 1.0 } else { -1.0 };
                Some((s, s))
            }
            Policy::HsfBall { .. } => None,
        }
    }

    /// The sign of every equation of a step under [`Policy::HsfBall`], for a replica whose
    /// state at that step has the squared norm `norm2`: `+1` while `norm2 <= radius^2`, else
    /// `-1` (also for a NaN norm), compared in f64. `None` for the other policies. The kernels
    /// make the same comparison in f32 ([`crate::layout::KernelParams::radius2`]).
    pub fn ball_sign(self, norm2: f64) -> Option<f32> {
        match self {
            Policy::HsfBall { radius } => {
                let r = radius as f64;
                Some(if norm2 <= r * r { 1.0 } else { -1.0 })
            }
            _ => None,
        }
    }

    /// The name used in experiment files.
    pub fn name(self) -> &'static str {
        Self::NAMES[match self {
            Policy::Hamilton => 0,
            Policy::ReverseCostate => 1,
            Policy::Hsf { .. } => 2,
            Policy::HsfEveryStep => 3,
            Policy::HsfBall { .. } => 4,
        }]
    }

    /// Every policy's [`name`](Policy::name), as experiment files write them.
    pub const NAMES: [&'static str; 5] = ["hamilton", "reverse-costate", "hsf", "hsf-every-step", "hsf-ball"];

    /// The policy called `name`, with the parameter that policy takes as experiment files give
    /// it: `hsf` needs `hsf_frequency`, `hsf-ball` needs `hsf_radius`, the others take none.
    /// The error names the unknown name, or the missing or unused parameter.
    pub fn named(name: &str, hsf_frequency: Option<f64>, hsf_radius: Option<f32>) -> Result<Policy> {
        let missing = |key: &str| Err(Error::param(key, "missing", format!("required by policy = {name:?}")));
        let policy = match (name, hsf_frequency, hsf_radius) {
            _ if !Self::NAMES.contains(&name) => {
                let allowed = format!("one of {}", Self::NAMES.join(", "));
                return Err(Error::param("policy", format!("{name:?}"), allowed));
            }
            (_, Some(f), _) if name != "hsf" => {
                return Err(Error::param("hsf_frequency", f, "only used by policy = \"hsf\""));
            }
            (_, _, Some(r)) if name != "hsf-ball" => {
                return Err(Error::param("hsf_radius", r, "only used by policy = \"hsf-ball\""));
            }
            ("hsf", Some(frequency), _) => Policy::Hsf { frequency },
            ("hsf", None, _) => return missing("hsf_frequency"),
            ("hsf-ball", _, Some(radius)) => Policy::HsfBall { radius },
            ("hsf-ball", _, None) => return missing("hsf_radius"),
            ("hamilton", ..) => Policy::Hamilton,
            ("reverse-costate", ..) => Policy::ReverseCostate,
            _ => Policy::HsfEveryStep,
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
        if let Policy::HsfBall { radius } = self.policy {
            check("policy.radius", radius, radius > 0.0, "a finite number > 0")?;
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
        let all = [
            Policy::Hamilton,
            Policy::ReverseCostate,
            Policy::Hsf { frequency: 0.25 },
            Policy::HsfEveryStep,
            Policy::HsfBall { radius: 3.0 },
        ];
        assert_eq!(all.map(Policy::name), Policy::NAMES);
        for p in all {
            let (frequency, radius) = match p {
                Policy::Hsf { frequency } => (Some(frequency), None),
                Policy::HsfBall { radius } => (None, Some(radius)),
                _ => (None, None),
            };
            assert_eq!(Policy::named(p.name(), frequency, radius).unwrap(), p);
            // Its parameter missing, or the other policy's parameter given.
            let wrong = match p {
                Policy::Hsf { .. } => [(None, None, "hsf_frequency"), (frequency, Some(1.0), "hsf_radius")],
                Policy::HsfBall { .. } => [(None, None, "hsf_radius"), (Some(1.0), radius, "hsf_frequency")],
                _ => [(Some(1.0), None, "hsf_frequency"), (None, Some(1.0), "hsf_radius")],
            };
            for (f, r, key) in wrong {
                let Err(Error::Param { field, .. }) = Policy::named(p.name(), f, r) else {
                    panic!("{p:?} {f:?} {r:?}")
                };
                assert_eq!(field, key);
            }
        }
        let Err(Error::Param { field, allowed, .. }) = Policy::named("hsf-sometimes", None, None) else { panic!() };
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
