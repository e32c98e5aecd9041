//! Experiment files: a TOML description of a network, its parameters, its streams and how
//! long to run, as `localprop run` reads it. The format is documented key by key in
//! `docs/experiment-format.md`; `examples/configs/` holds commented examples.
//!
//! Reading is strict: an unknown key, a value of the wrong type, a key that does not apply
//! to the chosen kind, or a value out of range is an [`Error::Config`] that names the file,
//! the key path, the value and what is allowed. Nothing is run or written before the whole
//! file (data file included) has been checked.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Normalize};
use localprop::engine::Backend;
use localprop::error::{Error, Result};
use localprop::network::{Init, Network, NetworkSpec, Topology};
use localprop::params::{Activation, Params, Policy, Speed};
use localprop::signal::sequence::{self, HeldSequence, Source};
use localprop::signal::{Constant, HeldSamples, Order, PatchedCosines, Signal, Sinusoid, Streams};

/// A whole experiment file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// A short name (used for the default output folder).
    #[serde(default)]
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// The network.
    pub network: NetworkConfig,
    /// The dynamics' parameters.
    #[serde(default)]
    pub params: ParamsConfig,
    /// External inputs (absent: the network must have none).
    #[serde(default)]
    pub input: Option<SignalConfig>,
    /// Targets of the outputs.
    pub target: SignalConfig,
    /// Target masks (absent: every target counts).
    #[serde(default)]
    pub mask: Option<MaskConfig>,
    /// A data set for `kind = "data"` streams.
    #[serde(default)]
    pub data: Option<DataConfig>,
    /// How long and how to run.
    #[serde(default)]
    pub run: RunConfig,
    /// A grid of per-replica parameters (one replica per combination).
    #[serde(default)]
    pub sweep: Option<SweepConfig>,
    /// A backprop baseline on the same data stream (data experiments only).
    #[serde(default)]
    pub baseline: Option<BaselineConfig>,
}

/// `[network]`: `kind` selects which of the other keys apply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// `layered`, `fully-connected`, `random-sparse` or `edges` ([`Topology::NAMES`]).
    #[serde(deserialize_with = "topology_name")]
    pub kind: String,
    /// Layer widths, inputs first (`layered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Vec<usize>>,
    /// External inputs (`fully-connected`, `random-sparse`, `edges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<usize>,
    /// Non-input neurons (`fully-connected`, `random-sparse`, `edges`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neurons: Option<usize>,
    /// Self-loops (`fully-connected`, `random-sparse`; default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_loops: Option<bool>,
    /// Parents per neuron (`random-sparse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fan_in: Option<usize>,
    /// `[source, target]` pairs (`edges`).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "exact_arrays")]
    pub edges: Option<Vec<[usize; 2]>>,
    /// A bias neuron feeding every non-input neuron.
    #[serde(default)]
    pub bias: bool,
    /// Output neurons (default: the last layer, or the first non-input neuron).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<usize>>,
    /// `uniform`, `normal` or `zero` ([`Init::NAMES`]; default [`Init::default`]).
    #[serde(default = "default_init", deserialize_with = "init_name")]
    pub init: String,
    /// Scale of the initial weights (times `1/sqrt(fan_in)`; default [`Init::default`]'s).
    #[serde(default = "default_init_gain")]
    pub init_gain: f32,
    /// Seed of the weights (and of the random edges).
    #[serde(default)]
    pub seed: u64,
}

fn default_init() -> String {
    Init::default().name().into()
}
fn default_init_gain() -> f32 {
    Init::default().gain()
}

/// A name from one of the engine's lists of names (`Topology::NAMES`, `Policy::NAMES`...),
/// checked as the file is read so that an unknown one is an error at its line, listing them.
fn name_in<'de, D: serde::Deserializer<'de>>(
    d: D,
    names: &'static [&'static str],
) -> std::result::Result<String, D::Error> {
    let name = String::deserialize(d)?;
    match names.contains(&name.as_str()) {
        true => Ok(name),
        false => Err(serde::de::Error::unknown_variant(&name, names)),
    }
}
fn topology_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    name_in(d, &Topology::NAMES)
}
fn init_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    name_in(d, &Init::NAMES)
}
fn policy_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    name_in(d, &Policy::NAMES)
}
fn normalize_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    name_in(d, &Normalize::NAMES)
}
fn order_name<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    name_in(d, &Order::NAMES)
}

/// `[params]`: the engine's [`Params`] as a file gives them, every key optional, the
/// defaults [`Params::default`]'s. The policy is a name with its parameter beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParamsConfig {
    /// Speed: one number, or one per non-input neuron.
    pub c: Speed,
    /// Euler step.
    pub tau: f32,
    /// Accuracy weight.
    pub q: f32,
    /// Kinetic weight (1/r acts as the learning rate).
    pub r: f32,
    /// Weight regulariser of `(r_w/2)|w|^2` (the paper's `r_w` is half of this value).
    pub r_w: f32,
    /// Dissipation.
    pub theta: f32,
    /// `tanh`, `logistic` or `identity`.
    pub activation: Activation,
    /// One of [`Policy::NAMES`].
    #[serde(deserialize_with = "policy_name")]
    pub policy: String,
    /// Flip frequency `f` of `policy = "hsf"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsf_frequency: Option<f64>,
    /// Radius `R` of the ball of `policy = "hsf-ball"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsf_radius: Option<f32>,
    /// Whether the weights learn.
    pub learning: bool,
}

impl Default for ParamsConfig {
    fn default() -> Self {
        let Params { c, tau, q, r, r_w, theta, activation, policy, learning } = Params::default();
        let (hsf_frequency, hsf_radius) = match policy {
            Policy::Hsf { frequency } => (Some(frequency), None),
            Policy::HsfBall { radius } => (None, Some(radius)),
            _ => (None, None),
        };
        let policy = policy.name().into();
        ParamsConfig { c, tau, q, r, r_w, theta, activation, policy, hsf_frequency, hsf_radius, learning }
    }
}

/// An input or target stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SignalConfig {
    /// The same values at every step.
    Constant {
        /// One value per channel.
        values: Vec<f32>,
    },
    /// `offset + amplitude sin(2 pi frequency t + phase + k phase_step)` on channel `k`.
    Sinusoid {
        /// Channels (must match the inputs or outputs).
        #[serde(default = "one_usize")]
        channels: usize,
        /// Amplitude.
        #[serde(default = "one_f64")]
        amplitude: f64,
        /// Cycles per unit of time.
        frequency: f64,
        /// Phase of channel 0 (radians).
        #[serde(default)]
        phase: f64,
        /// Phase added per channel (radians).
        #[serde(default)]
        phase_step: f64,
        /// Offset.
        #[serde(default)]
        offset: f64,
    },
    /// The paper's patched cosines and constants (one channel).
    PatchedCosines {
        /// Seed of the patches.
        #[serde(default)]
        seed: u64,
        /// Shortest patch (time units).
        #[serde(default = "five")]
        min_len: f64,
        /// Longest patch (time units).
        #[serde(default = "twenty")]
        max_len: f64,
    },
    /// From `[data]`: the features as inputs, the one-hot labels as targets.
    Data,
    /// A sequence of samples from a source, each held for `hold` steps (one channel;
    /// [`HeldSequence`]): the input of a sequence task (or a target to track).
    Sequence {
        /// `mackey-glass`, `random` or `patched-cosines` ([`Source::NAMES`]).
        source: String,
        /// Seed of the source.
        #[serde(default)]
        seed: u64,
        /// Steps each sample is held.
        #[serde(default = "ten", deserialize_with = "hold_steps")]
        hold: u64,
        /// Time between samples (`mackey-glass`, `patched-cosines`; default 1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dt: Option<f64>,
        /// Shortest patch (`patched-cosines`; default 5).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_len: Option<f64>,
        /// Longest patch (`patched-cosines`; default 20).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<f64>,
    },
    /// Targets only: the `[input]` sequence (which must be `kind = "sequence"`) `shift`
    /// samples away: `+1` predicts the next sample, `-D` recalls the sample `D` back (`0`
    /// before the first, unmasked).
    ShiftedInput {
        /// Samples between the target and the input shown at the same step.
        #[serde(deserialize_with = "shift_samples")]
        shift: i64,
    },
}

/// An integer whose type error names its key: inside a stream's table, serde reports the
/// table (`target`), not the key.
struct Whole<T>(&'static str, std::marker::PhantomData<T>);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> serde::de::Visitor<'de> for Whole<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.0)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }
}

fn hold_steps<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    d.deserialize_any(Whole("`hold`, a whole number of steps >= 1", std::marker::PhantomData))
}
fn shift_samples<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    d.deserialize_any(Whole(
        "`shift`, a whole number of samples (1: the next sample, -5: five back)",
        std::marker::PhantomData,
    ))
}

/// The time between samples of a `sequence` stream when `dt` is not given.
pub const DEFAULT_SEQUENCE_DT: f64 = 1.0;

/// The [`Source`] of a `kind = "sequence"` stream's keys, every given key checked against
/// the source (an [`Error::Param`] names `source`, `dt`, `min_len` or `max_len`; [`rekey`]
/// puts the stream's section before it).
pub fn sequence_source(
    source: &str,
    seed: u64,
    dt: Option<f64>,
    min_len: Option<f64>,
    max_len: Option<f64>,
) -> Result<Source> {
    let dt_or = dt.unwrap_or(DEFAULT_SEQUENCE_DT);
    let (built, uses): (Source, &[&str]) = match source {
        "mackey-glass" => (Source::MackeyGlass { seed, dt: dt_or }, &["dt"]),
        "random" => (Source::Random { seed }, &[]),
        "patched-cosines" => (
            Source::PatchedCosines {
                seed,
                dt: dt_or,
                min_len: min_len.unwrap_or_else(five),
                max_len: max_len.unwrap_or_else(twenty),
            },
            &["dt", "min_len", "max_len"],
        ),
        other => {
            return Err(Error::param("source", format!("{other:?}"), format!("one of {}", Source::NAMES.join(", "))));
        }
    };
    debug_assert_eq!(built.name(), source);
    let keys: String = uses.iter().map(|k| format!(", `{k}`")).collect();
    for (key, given) in [("dt", dt.is_some()), ("min_len", min_len.is_some()), ("max_len", max_len.is_some())] {
        if given && !uses.contains(&key) {
            return Err(Error::param(
                key,
                "given",
                format!("not used by source = {source:?} (it uses `seed`, `hold`{keys})"),
            ));
        }
    }
    built.check()?;
    Ok(built)
}

fn one_usize() -> usize {
    1
}
fn one_f64() -> f64 {
    1.0
}
fn five() -> f64 {
    5.0
}
fn twenty() -> f64 {
    20.0
}

/// Target masks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum MaskConfig {
    /// Fixed 0/1 per output.
    Constant {
        /// One 0 or 1 per output.
        values: Vec<f32>,
    },
    /// Data experiments: each sample's target is hidden for its first `hidden_steps` steps,
    /// and the prediction is read at the last hidden step (prequential evaluation).
    Prequential {
        /// Steps of each hold during which the target is masked.
        hidden_steps: u64,
    },
}

/// `[data]`: a CSV data set, its rows held for `hold` steps each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The CSV file (plain or gzip), relative to the experiment file.
    pub path: PathBuf,
    /// Column of the label (negative counts from the end; -1 = last).
    #[serde(default = "minus_one")]
    pub label_column: isize,
    /// `none`, `max-abs`, `z-score` or `range` (with `normalize_range`): [`Normalize::NAMES`].
    #[serde(default = "default_normalize")]
    #[serde(deserialize_with = "normalize_name")]
    pub normalize: String,
    /// `[min, max]` mapped to `[0, 1]` when `normalize = "range"`.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "exact_array")]
    pub normalize_range: Option<[f32; 2]>,
    /// Steps each sample is held.
    #[serde(default = "ten")]
    pub hold: u64,
    /// `sequential` or `shuffled` (a new seeded order per pass): [`Order::NAMES`].
    #[serde(default = "default_order")]
    #[serde(deserialize_with = "order_name")]
    pub order: String,
    /// Seed of the shuffles.
    #[serde(default)]
    pub shuffle_seed: u64,
    /// Target of the label's output.
    #[serde(default = "on")]
    pub target_on: f32,
    /// Target of the other outputs.
    #[serde(default = "off")]
    pub target_off: f32,
}

/// `[T; N]` from a sequence of exactly `N` values. (serde's own array reads the first `N` and
/// ignores the rest: an edge `[1, 2, 3]` would silently become `[1, 2]`.)
fn exact<T: std::fmt::Debug, const N: usize>(v: Vec<T>) -> std::result::Result<[T; N], String> {
    let len = v.len();
    <[T; N]>::try_from(v).map_err(|v| format!("{v:?} has {len} values; need exactly {N}"))
}

fn exact_array<'de, D, T, const N: usize>(d: D) -> std::result::Result<Option<[T; N]>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + std::fmt::Debug,
{
    exact(Vec::deserialize(d)?).map(Some).map_err(serde::de::Error::custom)
}

fn exact_arrays<'de, D, T, const N: usize>(d: D) -> std::result::Result<Option<Vec<[T; N]>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + std::fmt::Debug,
{
    let all: Vec<Vec<T>> = Vec::deserialize(d)?;
    let exact = all.into_iter().enumerate().map(|(k, v)| exact(v).map_err(|e| format!("entry {k}: {e}")));
    exact.collect::<std::result::Result<_, _>>().map(Some).map_err(serde::de::Error::custom)
}

fn default_normalize() -> String {
    Normalize::default().name().into()
}
fn default_order() -> String {
    Order::default().name().into()
}
fn minus_one() -> isize {
    -1
}
fn ten() -> u64 {
    10
}
fn on() -> f32 {
    0.8
}
fn off() -> f32 {
    -0.8
}

/// `[run]`, every key optional (the defaults are [`RunConfig::default`]'s).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Steps to run (give this or `passes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Passes over the data set (data experiments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passes: Option<u64>,
    /// Record every n-th step in the trace.
    pub record_every: u64,
    /// `cpu`, `gpu` or `auto` (the command line's `--backend` overrides it).
    pub backend: Backend,
    /// Steps per block.
    pub block_steps: usize,
    /// How often a long run saves its checkpoint: a number of steps (`50000`), or a time
    /// (`"90s"`, `"10min"`, `"2h"`).
    pub checkpoint_every: CheckpointEvery,
}

/// `run.checkpoint_every`: steps, or a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CheckpointEvery {
    /// Every this many steps.
    Steps(u64),
    /// Every this long: a number and `s`, `min` or `h`.
    Time(String),
}

impl Default for CheckpointEvery {
    fn default() -> Self {
        CheckpointEvery::Time("10min".into())
    }
}

/// [`CheckpointEvery`] parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Interval {
    /// Every this many steps (at least 1).
    Steps(u64),
    /// Every this many seconds (finite, > 0).
    Seconds(f64),
}

impl CheckpointEvery {
    /// The interval, or what is wrong with it.
    pub fn interval(&self) -> std::result::Result<Interval, String> {
        match self {
            CheckpointEvery::Steps(0) => Err("0: give at least 1 step, or a time such as \"10min\"".into()),
            CheckpointEvery::Steps(k) => Ok(Interval::Steps(*k)),
            CheckpointEvery::Time(text) => {
                let (number, unit) = crate::budget::number_and_unit(text);
                let scale = match unit {
                    "s" => 1.0,
                    "min" => 60.0,
                    "h" => 3600.0,
                    _ => f64::NAN,
                };
                match number {
                    Some(v) if scale.is_finite() && v.is_finite() && v > 0.0 => Ok(Interval::Seconds(v * scale)),
                    _ => Err(format!(
                        "{text:?}: give a number of steps, or a time > 0 such as \"90s\", \"10min\", \"2h\""
                    )),
                }
            }
        }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            steps: None,
            passes: None,
            record_every: 1,
            backend: Backend::Auto,
            block_steps: localprop::engine::DEFAULT_BLOCK_STEPS,
            checkpoint_every: CheckpointEvery::default(),
        }
    }
}

/// `[sweep]`: lists of values; one replica per combination (in the order q, r, r_w, theta,
/// c, the last varying fastest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Values of `q`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<Vec<f32>>,
    /// Values of `r`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<Vec<f32>>,
    /// Values of `r_w`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r_w: Option<Vec<f32>>,
    /// Values of `theta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theta: Option<Vec<f32>>,
    /// Values of a global `c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<Vec<f32>>,
}

/// `[baseline]`: another learner on the same network, initial weights and stream, with
/// heavy-ball SGD: plain backprop for layered data experiments, or an online recurrent
/// learner (TBPTT, e-prop, RTRL; [`crate::recurrent`]) for streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    /// Which learner (default `backprop`).
    #[serde(default, skip_serializing_if = "BaselineKind::is_backprop")]
    pub kind: BaselineKind,
    /// Learning rate.
    pub lr: f32,
    /// Momentum.
    #[serde(default)]
    pub momentum: f32,
    /// TBPTT's window, in steps (`kind = "tbptt"` only, where it is required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
}

/// `baseline.kind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineKind {
    /// Per-sample backprop on a layered network (data experiments, [`crate::baseline`]).
    #[default]
    Backprop,
    /// Truncated backprop through time, TBPTT(K, K), with `window = K`.
    Tbptt,
    /// e-prop for rate units.
    Eprop,
    /// Real-time recurrent learning (small networks).
    Rtrl,
}

impl BaselineKind {
    fn is_backprop(&self) -> bool {
        *self == BaselineKind::Backprop
    }

    /// The name in files.
    pub fn name(self) -> &'static str {
        match self {
            BaselineKind::Backprop => "backprop",
            BaselineKind::Tbptt => "tbptt",
            BaselineKind::Eprop => "eprop",
            BaselineKind::Rtrl => "rtrl",
        }
    }
}

impl BaselineConfig {
    /// The recurrent learner this baseline is, `None` for backprop.
    pub fn method(&self) -> Option<crate::recurrent::Method> {
        use crate::recurrent::Method;
        match self.kind {
            BaselineKind::Backprop => None,
            BaselineKind::Tbptt => Some(Method::Tbptt { window: self.window.unwrap_or(0) }),
            BaselineKind::Eprop => Some(Method::Eprop),
            BaselineKind::Rtrl => Some(Method::Rtrl),
        }
    }
}

/// A parameter a sweep varies: `[sweep]`'s keys, in the order replicas enumerate them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepAxis {
    /// [`Params::q`].
    Q,
    /// [`Params::r`].
    R,
    /// [`Params::r_w`].
    RW,
    /// [`Params::theta`].
    Theta,
    /// [`Params::c`], one speed for every neuron.
    C,
}

impl SweepAxis {
    /// Every axis, in the order replicas enumerate them (the last varying fastest).
    pub const ALL: [SweepAxis; 5] = [SweepAxis::Q, SweepAxis::R, SweepAxis::RW, SweepAxis::Theta, SweepAxis::C];

    /// The key in `[sweep]` and the parameter's name.
    pub fn name(self) -> &'static str {
        match self {
            SweepAxis::Q => "q",
            SweepAxis::R => "r",
            SweepAxis::RW => "r_w",
            SweepAxis::Theta => "theta",
            SweepAxis::C => "c",
        }
    }

    /// Sets this parameter of `p` to `v`.
    pub fn set(self, p: &mut Params, v: f32) {
        match self {
            SweepAxis::Q => p.q = v,
            SweepAxis::R => p.r = v,
            SweepAxis::RW => p.r_w = v,
            SweepAxis::Theta => p.theta = v,
            SweepAxis::C => p.c = Speed::Global(v),
        }
    }
}

impl SweepConfig {
    /// The values given for `axis`, if any.
    pub fn values(&self, axis: SweepAxis) -> Option<&Vec<f32>> {
        match axis {
            SweepAxis::Q => self.q.as_ref(),
            SweepAxis::R => self.r.as_ref(),
            SweepAxis::RW => self.r_w.as_ref(),
            SweepAxis::Theta => self.theta.as_ref(),
            SweepAxis::C => self.c.as_ref(),
        }
    }
}

/// One swept parameter and its values.
pub type Axis = (SweepAxis, Vec<f32>);

/// A data set ready for streaming: features, one-hot targets.
#[derive(Clone, Debug)]
pub struct PreparedData {
    /// The data set (normalised).
    pub dataset: Dataset,
    /// One-hot targets, `[rows][classes]`.
    pub targets: Arc<Vec<f32>>,
    /// Features, `[rows][dim]`.
    pub features: Arc<Vec<f32>>,
}

/// The name names the default output folder `out/<name>`: one plain folder name, never a
/// path that could leave `out/`.
fn check_name(file: &str, name: &str) -> Result<()> {
    use std::path::Component;
    let mut parts = Path::new(name).components();
    let plain = matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None))
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control);
    if name.is_empty() || plain {
        Ok(())
    } else {
        Err(config_err(
            file,
            "name",
            format!("{name:?}: must be one plain folder name (no '/', '\\', '..' or leading '/')"),
        ))
    }
}

fn config_err(file: &str, key: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Config { file: file.to_string(), key: key.into(), message: message.into() }
}

/// The most bytes of configuration a checkpoint header stores (as an escaped JSON string):
/// safetensors readers refuse headers over 100,000,000 bytes, and the rest of the header
/// (tensor entries, the blocks) is kept under the remaining 4 MB.
pub const MAX_STORED_CONFIG: usize = 96_000_000;

/// The largest experiment file read (64 MiB: room for millions of explicit edges).
pub const MAX_EXPERIMENT_BYTES: u64 = 64 << 20;

impl Experiment {
    /// Reads and checks an experiment file; relative data paths are resolved against the
    /// file's folder.
    pub fn load(path: &Path) -> Result<Experiment> {
        let shown = path.display().to_string();
        let io = |source| Error::Io { path: shown.clone(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() || meta.len() > MAX_EXPERIMENT_BYTES {
            let what = if meta.is_file() { format!("{} bytes", meta.len()) } else { "not a regular file".into() };
            return Err(config_err(
                &shown,
                "(file)",
                format!("{what}: an experiment file is a regular file of at most {MAX_EXPERIMENT_BYTES} bytes"),
            ));
        }
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_EXPERIMENT_BYTES), &mut text).map_err(io)?;
        // Absolute, so that the data path stored in checkpoints and summaries resolves from
        // any working directory (`resume` from elsewhere).
        let base = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        Self::from_toml(&text, &path.display().to_string(), &base)
    }

    /// Parses an experiment from TOML text (`file` names it in errors), resolves relative
    /// data paths against `base` and checks every value.
    pub fn from_toml(text: &str, file: &str, base: &Path) -> Result<Experiment> {
        let de = toml::Deserializer::parse(text).map_err(|e| config_err(file, "(syntax)", e.to_string()))?;
        let mut exp: Experiment = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = match line {
                Some(l) => format!("{} (line {l})", inner.message()),
                None => inner.message().to_string(),
            };
            config_err(file, if key == "." { "(top level)".into() } else { key }, message)
        })?;
        if let Some(data) = &mut exp.data
            && data.path.is_relative()
        {
            data.path = base.join(&data.path);
        }
        exp.check(file)?;
        Ok(exp)
    }

    /// Parses a configuration stored as JSON (in a checkpoint or a summary).
    pub fn from_json(text: &str, file: &str) -> Result<Experiment> {
        let mut de = serde_json::Deserializer::from_str(text);
        let exp: Experiment = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| config_err(file, e.path().to_string(), e.inner().to_string()))?;
        exp.check(file)?;
        Ok(exp)
    }

    /// The configuration as JSON (what summaries and checkpoints store).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an experiment always serialises")
    }

    /// Every check that needs no data file: keys that apply to the kinds, ranges, and the
    /// network and parameters built once.
    fn check(&self, file: &str) -> Result<()> {
        // Before the network is built: a file whose run cannot fit is refused, not aborted.
        self.check_memory(file, self.run.steps)?;
        let net = self.network().map_err(|e| rekey(e, file, "network"))?;
        let params = self.replica_params(&net).map_err(|e| rekey(e, file, "params"))?;
        let _ = params;
        check_name(file, &self.name)?;
        let run = &self.run;
        match (run.steps, run.passes) {
            (Some(_), Some(_)) => return Err(config_err(file, "run", "give `steps` or `passes`, not both")),
            (None, None) => return Err(config_err(file, "run", "give `steps` (or `passes` with [data])")),
            (None, Some(_)) if self.data.is_none() => {
                return Err(config_err(file, "run.passes", "passes need a [data] section; use `steps`"));
            }
            (Some(0), _) | (_, Some(0)) => return Err(config_err(file, "run", "the run must have at least one step")),
            _ => {}
        }
        if run.record_every == 0 {
            return Err(config_err(file, "run.record_every", "0: must be an integer >= 1"));
        }
        if let Err(message) = run.checkpoint_every.interval() {
            return Err(config_err(file, "run.checkpoint_every", message));
        }
        if run.block_steps == 0 || run.block_steps > localprop::layout::MAX_BLOCK_STEPS {
            return Err(config_err(
                file,
                "run.block_steps",
                format!("{}: must be an integer from 1 to {}", run.block_steps, localprop::layout::MAX_BLOCK_STEPS),
            ));
        }
        let uses_data = matches!(self.target, SignalConfig::Data) || matches!(self.input, Some(SignalConfig::Data));
        match (&self.data, uses_data) {
            (None, true) => return Err(config_err(file, "data", "`kind = \"data\"` streams need a [data] section")),
            (Some(_), false) => {
                return Err(config_err(file, "data", "a [data] section is only used by `kind = \"data\"` streams"));
            }
            _ => {}
        }
        if let Some(d) = &self.data {
            for (key, v) in [("data.target_on", d.target_on), ("data.target_off", d.target_off)] {
                if !v.is_finite() {
                    return Err(config_err(file, key, format!("{v}: must be finite")));
                }
            }
            if d.hold == 0 {
                return Err(config_err(file, "data.hold", "0: each sample must be held for at least 1 step"));
            }
            if uses_data && run.record_every != 1 {
                return Err(config_err(
                    file,
                    "run.record_every",
                    format!("{}: data experiments record every step to score predictions; use 1", run.record_every),
                ));
            }
            Normalize::named(&d.normalize, d.normalize_range).map_err(|e| rekey(e, file, "data"))?;
        }
        if let Some(MaskConfig::Prequential { hidden_steps }) = &self.mask {
            let Some(d) = &self.data else {
                return Err(config_err(file, "mask", "`prequential` masks need a [data] section"));
            };
            if *hidden_steps == 0 || *hidden_steps >= d.hold {
                return Err(config_err(
                    file,
                    "mask.hidden_steps",
                    format!("{hidden_steps}: must be between 1 and data.hold - 1 = {}", d.hold - 1),
                ));
            }
        }
        if let Some(MaskConfig::Constant { values }) = &self.mask {
            if values.len() != net.outputs().len() {
                return Err(config_err(
                    file,
                    "mask.values",
                    format!("{} values: need one per output ({})", values.len(), net.outputs().len()),
                ));
            }
            if let Some(v) = values.iter().find(|&&v| v != 0.0 && v != 1.0) {
                return Err(config_err(file, "mask.values", format!("{v}: masks are 0 or 1")));
            }
        }
        if let Some(b) = &self.baseline {
            if !(b.lr.is_finite() && b.lr > 0.0) {
                return Err(config_err(file, "baseline.lr", format!("{}: must be a finite number > 0", b.lr)));
            }
            if !(b.momentum.is_finite() && (0.0..1.0).contains(&b.momentum)) {
                return Err(config_err(file, "baseline.momentum", format!("{}: must be in [0, 1)", b.momentum)));
            }
            match (b.kind, b.window) {
                (BaselineKind::Tbptt, None | Some(0)) => {
                    return Err(config_err(file, "baseline.window", "TBPTT needs its window, in steps (at least 1)"));
                }
                (BaselineKind::Tbptt, _) | (_, None) => {}
                (kind, Some(_)) => {
                    return Err(config_err(
                        file,
                        "baseline.window",
                        format!("only for kind = \"tbptt\", not {:?}", kind.name()),
                    ));
                }
            }
            match b.kind {
                BaselineKind::Backprop if !uses_data => {
                    return Err(config_err(
                        file,
                        "baseline",
                        "the backprop baseline needs a data experiment (for streams: kind = \"tbptt\", \"eprop\" or \"rtrl\")",
                    ));
                }
                BaselineKind::Backprop if net.layers().is_none() => {
                    return Err(config_err(file, "baseline", "the backprop baseline needs a layered network"));
                }
                BaselineKind::Backprop => {}
                kind if uses_data => {
                    return Err(config_err(
                        file,
                        "baseline.kind",
                        format!("{:?} learns from streams; a data experiment takes kind = \"backprop\"", kind.name()),
                    ));
                }
                BaselineKind::Rtrl if net.n() - net.d() > crate::recurrent::RTRL_MAX_NEURONS => {
                    return Err(config_err(
                        file,
                        "baseline.kind",
                        format!(
                            "RTRL is for at most {} non-input neurons (its cost grows as n^4); this network has {}",
                            crate::recurrent::RTRL_MAX_NEURONS,
                            net.n() - net.d()
                        ),
                    ));
                }
                _ => {}
            }
        }
        for (key, signal, want) in
            [("input", self.input.as_ref(), net.inputs()), ("target", Some(&self.target), net.outputs().len())]
        {
            self.check_signal(file, key, signal, want)?;
        }
        self.check_stored_size(file)
    }

    /// Checkpoints store the configuration in their header, which safetensors readers cap
    /// at [`MAX_STORED_CONFIG`] bytes with the rest of the header: a file whose
    /// configuration does not fit is refused here, before a run starts.
    fn check_stored_size(&self, file: &str) -> Result<()> {
        // As the header holds it: a JSON string, quotes and backslashes escaped.
        let stored = serde_json::to_string(&self.to_json()).expect("a string serialises").len();
        if stored > MAX_STORED_CONFIG {
            let edges = match &self.network.edges {
                Some(e) if !e.is_empty() => format!(" ({} explicit edges)", e.len()),
                _ => String::new(),
            };
            return Err(config_err(
                file,
                "(file)",
                format!(
                    "the configuration takes {stored} bytes as a checkpoint stores it{edges}, {} description; \
                     a checkpoint's header holds at most {MAX_STORED_CONFIG}",
                    if self.description.len() > 1 << 20 { "with a long" } else { "including the" }
                ),
            ));
        }
        Ok(())
    }

    fn check_signal(&self, file: &str, key: &str, signal: Option<&SignalConfig>, want: usize) -> Result<()> {
        let channels = match signal {
            None if want > 0 => {
                return Err(config_err(file, key, format!("missing: the network has {want} inputs")));
            }
            None => return Ok(()),
            Some(SignalConfig::Constant { values }) => {
                if let Some(v) = values.iter().find(|v| !v.is_finite()) {
                    return Err(config_err(file, format!("{key}.values"), format!("{v}: values must be finite")));
                }
                values.len()
            }
            Some(SignalConfig::Sinusoid { channels, amplitude, frequency, phase, phase_step, offset }) => {
                for (name, v) in [
                    ("amplitude", amplitude),
                    ("frequency", frequency),
                    ("phase", phase),
                    ("phase_step", phase_step),
                    ("offset", offset),
                ] {
                    if !v.is_finite() {
                        return Err(config_err(file, format!("{key}.{name}"), format!("{v}: must be finite")));
                    }
                }
                // The values are computed in f64 and stored as f32.
                if !((offset.abs() + amplitude.abs()) as f32).is_finite() {
                    return Err(config_err(
                        file,
                        format!("{key}.amplitude"),
                        format!(
                            "{amplitude:e} (offset {offset:e}): the signal must fit in f32 (|offset| + |amplitude| <= {:e})",
                            f32::MAX
                        ),
                    ));
                }
                *channels
            }
            Some(SignalConfig::PatchedCosines { seed, min_len, max_len }) => {
                PatchedCosines::new(*seed, *min_len, *max_len).map_err(|e| rekey(e, file, key))?;
                1
            }
            Some(SignalConfig::Data) => return Ok(()), // sized when the data is loaded
            Some(SignalConfig::Sequence { source, seed, hold, dt, min_len, max_len }) => {
                if *hold == 0 {
                    return Err(config_err(
                        file,
                        format!("{key}.hold"),
                        "0: each sample must be held for at least 1 step",
                    ));
                }
                sequence_source(source, *seed, *dt, *min_len, *max_len).map_err(|e| rekey(e, file, key))?;
                1
            }
            Some(SignalConfig::ShiftedInput { shift }) => {
                if key != "target" {
                    return Err(config_err(
                        file,
                        format!("{key}.kind"),
                        "\"shifted-input\" is a target kind: it shifts the [input] sequence",
                    ));
                }
                if !matches!(self.input, Some(SignalConfig::Sequence { .. })) {
                    return Err(config_err(
                        file,
                        "target.kind",
                        "\"shifted-input\" needs [input] with kind = \"sequence\": the target is that sequence, shifted",
                    ));
                }
                if shift.unsigned_abs() > sequence::MAX_SHIFT {
                    let max = sequence::MAX_SHIFT;
                    return Err(config_err(
                        file,
                        "target.shift",
                        format!("{shift}: a whole number of samples from -{max} to {max}"),
                    ));
                }
                1
            }
        };
        if channels != want {
            let what = if key == "input" { "inputs" } else { "outputs" };
            return Err(config_err(file, key, format!("{channels} channels, but the network has {want} {what}")));
        }
        Ok(())
    }

    /// Checks the memory the run needs ([`crate::budget`]) against the budget, from the
    /// network's numbers alone (nothing is built). `steps`: the run's length, for the trace it
    /// holds (`None`: not known yet, before the data set is read).
    pub fn check_memory(&self, file: &str, steps: Option<u64>) -> Result<()> {
        let spec = self.network_spec().map_err(|e| rekey(e, file, "network"))?;
        let (n, edges) = crate::budget::counts(&spec).map_err(|e| rekey(e, file, "network"))?;
        let replicas = self.sweep_axes().iter().fold(1u64, |a, (_, v)| a.saturating_mul(v.len() as u64));
        let outputs = match (&spec.outputs, &spec.topology) {
            (Some(o), _) => o.len(),
            (None, Topology::Layered { sizes }) => sizes.last().copied().unwrap_or(1),
            _ => 1,
        } as u64;
        let inputs = match &spec.topology {
            Topology::Layered { sizes } => sizes.first().copied().unwrap_or(0),
            Topology::FullyConnected { inputs, .. }
            | Topology::RandomSparse { inputs, .. }
            | Topology::Edges { inputs, .. } => *inputs,
        } as u64;
        let shape = crate::budget::Shape {
            n,
            edges,
            dense: matches!(spec.topology, Topology::Layered { .. })
                || matches!(spec.topology, Topology::FullyConnected { self_loops: true, .. }),
            replicas,
            outputs,
            d: inputs + spec.bias as u64,
            // The trace is streamed to disk: the rows of the two blocks in flight are held.
            records: steps
                .map_or(0, |s| s.div_ceil(self.run.record_every.max(1)))
                .min((self.run.block_steps as u64).saturating_mul(2)),
            block_steps: self.run.block_steps as u64,
        };
        let mut needs = crate::budget::Needs::of(shape);
        // A patched-cosines stream keeps every patch it drew (about 48 bytes each, one per
        // `min_len` of time at most), per replica.
        for signal in [self.input.as_ref(), Some(&self.target)].into_iter().flatten() {
            if let (SignalConfig::PatchedCosines { min_len, .. }, Some(steps)) = (signal, steps) {
                let t_end = steps as f64 * self.params.tau as f64;
                let patches = (t_end / min_len.max(f64::MIN_POSITIVE)).ceil().min(u64::MAX as f64) as u64;
                needs.parts.push((
                    "patched-cosines patches",
                    patches.saturating_add(1).saturating_mul(48).saturating_mul(replicas),
                ));
            }
        }
        // So does a patched-cosines sequence, up to the last sample read (an input's, or its
        // shifted target's `shift` ahead); one sequence serves every replica.
        let ahead = match self.target {
            SignalConfig::ShiftedInput { shift } => shift.max(0) as u64,
            _ => 0,
        };
        for (signal, ahead) in [(self.input.as_ref(), ahead), (Some(&self.target), 0)] {
            if let (Some(SignalConfig::Sequence { source, hold, dt, min_len, .. }), Some(steps)) = (signal, steps)
                && source == "patched-cosines"
            {
                let samples = (steps / (*hold).max(1)).saturating_add(ahead).saturating_add(1) as f64;
                let (dt, min_len) = (dt.unwrap_or(DEFAULT_SEQUENCE_DT), min_len.unwrap_or_else(five));
                // Values out of range are reported by the stream's own checks.
                if dt.is_finite() && dt > 0.0 && min_len.is_finite() && min_len > 0.0 {
                    let patches = (samples * dt / min_len).ceil().min(u64::MAX as f64) as u64;
                    needs.parts.push(("patched-cosines patches", patches.saturating_add(1).saturating_mul(48)));
                }
            }
        }
        needs.check().map_err(|m| config_err(file, "(memory)", m))
    }

    /// The network this file describes.
    pub fn network(&self) -> Result<Network> {
        self.network_spec()?.build()
    }

    /// The network spec, after checking that every given key applies to the kind.
    pub fn network_spec(&self) -> Result<NetworkSpec> {
        let n = &self.network;
        let given = [
            ("sizes", n.sizes.is_some()),
            ("inputs", n.inputs.is_some()),
            ("neurons", n.neurons.is_some()),
            ("self_loops", n.self_loops.is_some()),
            ("fan_in", n.fan_in.is_some()),
            ("edges", n.edges.is_some()),
        ];
        let inputs = n.inputs.unwrap_or(0);
        let neurons = n.neurons.unwrap_or(0);
        let self_loops = n.self_loops.unwrap_or(false);
        // Each kind's topology from the keys it uses, and those it requires.
        let (topology, allowed, required): (Topology, &[&str], &[&str]) = match n.kind.as_str() {
            "layered" => (Topology::Layered { sizes: n.sizes.clone().unwrap_or_default() }, &["sizes"], &["sizes"]),
            "fully-connected" => (
                Topology::FullyConnected { inputs, neurons, self_loops },
                &["inputs", "neurons", "self_loops"],
                &["neurons"],
            ),
            "random-sparse" => (
                Topology::RandomSparse { inputs, neurons, fan_in: n.fan_in.unwrap_or(0), self_loops },
                &["inputs", "neurons", "self_loops", "fan_in"],
                &["neurons", "fan_in"],
            ),
            "edges" => (
                Topology::Edges { inputs, neurons, edges: n.edges.iter().flatten().map(|&[j, i]| (j, i)).collect() },
                &["inputs", "neurons", "edges"],
                &["neurons", "edges"],
            ),
            other => {
                return Err(Error::param(
                    "kind",
                    format!("{other:?}"),
                    format!("one of {}", Topology::NAMES.join(", ")),
                ));
            }
        };
        debug_assert_eq!(topology.name(), n.kind);
        let kind = format!("{:?}", n.kind);
        for (key, present) in given {
            if present && !allowed.contains(&key) {
                return Err(Error::param(key, "given", format!("not used by kind = {kind} (it uses {allowed:?})")));
            }
        }
        for key in required {
            if !given.iter().any(|(k, p)| k == key && *p) {
                return Err(Error::param(*key, "missing", format!("required by kind = {kind}")));
            }
        }
        let init = Init::named(&n.init, n.init_gain)?;
        Ok(NetworkSpec { topology, bias: n.bias, outputs: n.outputs.clone(), init, seed: n.seed })
    }

    /// The parameters without the sweep.
    pub fn base_params(&self) -> Result<Params> {
        let p = &self.params;
        Ok(Params {
            c: p.c.clone(),
            tau: p.tau,
            q: p.q,
            r: p.r,
            r_w: p.r_w,
            theta: p.theta,
            activation: p.activation,
            policy: Policy::named(&p.policy, p.hsf_frequency, p.hsf_radius)?,
            learning: p.learning,
        })
    }

    /// The swept axes, in replica order (the last varies fastest).
    pub fn sweep_axes(&self) -> Vec<Axis> {
        let Some(s) = &self.sweep else { return Vec::new() };
        SweepAxis::ALL.into_iter().filter_map(|axis| s.values(axis).map(|v| (axis, v.clone()))).collect()
    }

    /// One parameter set per replica: the base parameters, with each sweep combination.
    pub fn replica_params(&self, net: &Network) -> Result<Vec<Params>> {
        let base = self.base_params()?;
        base.validate(net)?;
        let axes = self.sweep_axes();
        if let Some((axis, _)) = axes.iter().find(|(_, v)| v.is_empty()) {
            return Err(Error::param(format!("sweep.{}", axis.name()), "[]", "at least one value"));
        }
        let mut list = vec![base];
        for (axis, values) in &axes {
            let mut next = Vec::with_capacity(list.len() * values.len());
            for p in &list {
                for &v in values {
                    let mut q = p.clone();
                    axis.set(&mut q, v);
                    next.push(q);
                }
            }
            list = next;
        }
        for (k, p) in list.iter().enumerate() {
            p.validate(net).map_err(|e| match e {
                Error::Param { field, value, allowed } if !axes.is_empty() => {
                    Error::Param { field: format!("{field} (sweep replica {k})"), value, allowed }
                }
                other => other,
            })?;
        }
        Ok(list)
    }

    /// Loads and prepares the data set, if the experiment has one; checks it against `net`,
    /// the experiment's network (feature count = inputs, classes = outputs).
    pub fn load_data(&self, file: &str, net: &Network) -> Result<Option<PreparedData>> {
        let Some(d) = &self.data else { return Ok(None) };
        if !d.path.exists() {
            return Err(config_err(file, "data.path", format!("{}: no such file", d.path.display())));
        }
        let mut dataset = Dataset::load_csv(&d.path, d.label_column)?;
        dataset.normalize(Normalize::named(&d.normalize, d.normalize_range)?)?;
        if matches!(self.input, Some(SignalConfig::Data)) && dataset.dim != net.inputs() {
            return Err(config_err(
                file,
                "data.path",
                format!(
                    "{} has {} features per row, the network has {} inputs",
                    d.path.display(),
                    dataset.dim,
                    net.inputs()
                ),
            ));
        }
        if matches!(self.target, SignalConfig::Data) && dataset.classes != net.outputs().len() {
            return Err(config_err(
                file,
                "data.path",
                format!(
                    "{} has {} classes, the network has {} outputs",
                    d.path.display(),
                    dataset.classes,
                    net.outputs().len()
                ),
            ));
        }
        let targets = Arc::new(dataset.one_hot(d.target_on, d.target_off));
        let features = Arc::new(dataset.features.clone());
        Ok(Some(PreparedData { dataset, targets, features }))
    }

    /// The sample order of the data streams.
    pub fn order(&self) -> Order {
        self.data.as_ref().map_or(Order::Sequential, |d| {
            Order::named(&d.order, d.shuffle_seed).expect("the order's name is checked as the file is read")
        })
    }

    /// Total steps: `run.steps`, or `passes x rows x hold` (an error naming `run.passes`
    /// where that product does not fit 64 bits).
    pub fn total_steps(&self, data: Option<&PreparedData>) -> Result<u64> {
        match (self.run.steps, self.run.passes, data, &self.data) {
            (Some(s), _, _, _) => Ok(s),
            (None, Some(p), Some(pd), Some(d)) => {
                let rows = pd.dataset.rows() as u64;
                p.checked_mul(rows).and_then(|v| v.checked_mul(d.hold)).ok_or_else(|| {
                    Error::param("run.passes", p, format!("passes x {rows} rows x hold {} steps fit 64 bits", d.hold))
                })
            }
            _ => Ok(0),
        }
    }

    /// The streams of every replica (each replica gets its own copy of the same streams).
    pub fn streams(&self, replicas: usize, data: Option<&PreparedData>) -> Result<Vec<Streams>> {
        // Built once, not per replica: only the prequential mask needs the output count.
        let n_out = match self.mask {
            Some(MaskConfig::Prequential { .. }) => self.network()?.outputs().len(),
            _ => 0,
        };
        // A sequence is built once: every replica's copy, and a shifted target, read it.
        let input_sequence = match &self.input {
            Some(cfg @ SignalConfig::Sequence { .. }) => Some(Self::held_sequence(cfg)?),
            _ => None,
        };
        let target_sequence = match &self.target {
            cfg @ SignalConfig::Sequence { .. } => Some(Self::held_sequence(cfg)?),
            SignalConfig::ShiftedInput { shift } => {
                let input = input_sequence.as_ref().ok_or_else(|| {
                    Error::param("target.kind", "\"shifted-input\"", "an [input] of kind = \"sequence\" to shift")
                })?;
                Some(input.shifted(*shift).map_err(|e| rekey_param(e, "target"))?)
            }
            _ => None,
        };
        (0..replicas)
            .map(|_| {
                let target = match &target_sequence {
                    Some(seq) => Box::new(seq.clone()),
                    None => self.signal(&self.target, data, false)?,
                };
                let mut s = Streams { input: None, target, mask: None };
                s.input = match (&input_sequence, &self.input) {
                    (Some(seq), _) => Some(Box::new(seq.clone())),
                    (None, Some(input)) => Some(self.signal(input, data, true)?),
                    (None, None) => None,
                };
                s.mask = match &self.mask {
                    None => None,
                    Some(MaskConfig::Constant { values }) => Some(Box::new(Constant(values.clone()))),
                    Some(MaskConfig::Prequential { hidden_steps }) => {
                        let hold = self.data.as_ref().map_or(1, |d| d.hold);
                        let hidden = *hidden_steps;
                        Some(Box::new(localprop::signal::FnSignal::new(n_out, move |step, _, out: &mut [f32]| {
                            out.fill(if step % hold < hidden { 0.0 } else { 1.0 })
                        })))
                    }
                };
                Ok(s)
            })
            .collect()
    }

    /// The stream of a `kind = "sequence"` configuration.
    fn held_sequence(cfg: &SignalConfig) -> Result<HeldSequence> {
        match cfg {
            SignalConfig::Sequence { source, seed, hold, dt, min_len, max_len } => {
                HeldSequence::new(sequence_source(source, *seed, *dt, *min_len, *max_len)?, *hold)
            }
            _ => Err(Error::param("kind", "not \"sequence\"", "a sequence stream")),
        }
    }

    fn signal(&self, cfg: &SignalConfig, data: Option<&PreparedData>, input: bool) -> Result<Box<dyn Signal>> {
        Ok(match cfg {
            SignalConfig::Constant { values } => Box::new(Constant(values.clone())),
            SignalConfig::Sinusoid { channels, amplitude, frequency, phase, phase_step, offset } => {
                Box::new(Sinusoid {
                    dim: *channels,
                    amplitude: *amplitude,
                    frequency: *frequency,
                    phase: *phase,
                    phase_step: *phase_step,
                    offset: *offset,
                })
            }
            SignalConfig::PatchedCosines { seed, min_len, max_len } => {
                Box::new(PatchedCosines::new(*seed, *min_len, *max_len)?)
            }
            SignalConfig::Data => {
                let (pd, d) = data.zip(self.data.as_ref()).ok_or_else(|| {
                    Error::param("data", "not loaded", "load the data set before building its streams")
                })?;
                let (rows, dim) = if input {
                    (pd.features.clone(), pd.dataset.dim)
                } else {
                    (pd.targets.clone(), pd.dataset.classes)
                };
                Box::new(HeldSamples::new(rows, dim, d.hold, self.order())?)
            }
            SignalConfig::Sequence { .. } => Box::new(Self::held_sequence(cfg)?),
            SignalConfig::ShiftedInput { .. } => {
                return Err(Error::param("target.kind", "\"shifted-input\"", "built with its [input] sequence"));
            }
        })
    }
}

/// A library error about a field, as one about `section.field` (still an [`Error::Param`]).
fn rekey_param(e: Error, section: &str) -> Error {
    match e {
        Error::Param { field, value, allowed } => Error::Param { field: format!("{section}.{field}"), value, allowed },
        other => other,
    }
}

/// Turns a library error about a field into a configuration error about `section.field`.
pub fn rekey(e: Error, file: &str, section: &str) -> Error {
    match e {
        Error::Param { field, value, allowed } => {
            config_err(file, format!("{section}.{field}"), format!("{value}: {allowed}"))
        }
        Error::Network(message) => config_err(file, section, message),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIG: &str = r#"
        name = "t"
        [network]
        kind = "fully-connected"
        neurons = 5
        self_loops = true
        bias = true
        [params]
        c = 50.0
        tau = 0.01
        q = 100.0
        r = 0.1
        r_w = 1.0
        theta = 1.0
        policy = "hsf-every-step"
        [target]
        kind = "sinusoid"
        frequency = 0.1
        [run]
        steps = 1000
    "#;

    fn parse(text: &str) -> Result<Experiment> {
        Experiment::from_toml(text, "test.toml", Path::new("."))
    }

    #[test]
    fn a_complete_file_builds_network_params_and_streams() {
        let exp = parse(FIG).unwrap();
        let net = exp.network().unwrap();
        assert_eq!((net.n(), net.d()), (6, 1));
        let params = exp.replica_params(&net).unwrap();
        assert_eq!(params.len(), 1);
        assert_eq!(params[0].policy, Policy::HsfEveryStep);
        assert_eq!(exp.total_steps(None).unwrap(), 1000);
        assert_eq!(exp.streams(1, None).unwrap().len(), 1);
        let again = Experiment::from_json(&exp.to_json(), "json").unwrap();
        assert_eq!(again, exp);
    }

    /// FIG with a data target and a `[data]` section holding `extra` (the file is not read).
    fn data(extra: &str) -> String {
        let target = "kind = \"sinusoid\"\n        frequency = 0.1";
        format!("{}\n[data]\npath = \"x.csv\"\n{extra}\n", FIG.replace(target, "kind = \"data\""))
    }

    #[test]
    fn errors_name_the_key_path_and_the_value() {
        let cases = [
            (FIG.replace("r = 0.1", "r = -0.1"), "params.r", "-0.1"),
            (FIG.replace("r = 0.1", "r = \"fast\""), "params.r", "fast"),
            (FIG.replace("tau = 0.01", "tau = 0.1"), "params.c * tau", "50 * 0.1 = 5"),
            (FIG.replace("neurons = 5", "neurons = 5\nfan_in = 3"), "network.fan_in", "not used"),
            (FIG.replace("theta = 1.0", "theta = 1.0\nspeed = 3"), "params.speed", "unknown field `speed`"),
            (FIG.replace("kind = \"sinusoid\"", "kind = \"square\""), "target.kind", "unknown variant `square`"),
            (FIG.replace("steps = 1000", "steps = 0"), "run", "at least one step"),
            (FIG.replace("frequency = 0.1", "frequency = 0.1\nchannels = 2"), "target", "2 channels"),
            (FIG.replace("name = \"t\"", "name = \"../../x\""), "name", "\"../../x\""),
            (data("target_on = nan"), "data.target_on", "NaN"),
            (data("normalize = \"range\"\nnormalize_range = [0.0, 1.0, 2.0]"), "data.normalize_range", "has 3 values"),
            (FIG.replace("steps = 1000", "steps = 1000\ncheckpoint_every = 0"), "run.checkpoint_every", "0"),
            (
                FIG.replace("steps = 1000", "steps = 1000\ncheckpoint_every = \"10 fortnights\""),
                "run.checkpoint_every",
                "fortnights",
            ),
            (FIG.replace("steps = 1000", "steps = 1000\ncheckpoint_every = \"-5s\""), "run.checkpoint_every", "-5s"),
            (data("target_off = -inf"), "data.target_off", "-inf"),
            (FIG.replace("name = \"t\"", "name = \"/tmp/x\""), "name", "\"/tmp/x\""),
            (FIG.replace("name = \"t\"", "name = \"a/b\""), "name", "\"a/b\""),
            (FIG.replace("name = \"t\"", "name = \"..\""), "name", "\"..\""),
            (FIG.replace("frequency = 0.1", "frequency = 0.1\namplitude = 1e300"), "target.amplitude", "1e300"),
            (FIG.replace("frequency = 0.1", "frequency = 0.1\noffset = -4e38"), "target.amplitude", "-4e38"),
            (
                FIG.replace("kind = \"fully-connected\"", "kind = \"edges\"")
                    .replace("self_loops = true", "edges = [[0, 1], [1, 2, 3]]"),
                "network.edges",
                "entry 1: [1, 2, 3] has 3 values",
            ),
            (
                FIG.replace("kind = \"fully-connected\"", "kind = \"edges\"")
                    .replace("self_loops = true", "edges = [[0, 1], [2]]"),
                "network.edges",
                "entry 1: [2] has 1 values",
            ),
        ];
        for (text, key, value) in cases {
            let e = parse(&text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(&format!("`{key}`")) && msg.contains(value), "{key}: {msg}");
            assert!(msg.starts_with("test.toml"), "{msg}");
        }
    }

    /// A sequence task: one input, a Mackey-Glass sequence held 3 steps, the next sample
    /// as the target.
    const SEQ: &str = r#"
        [network]
        kind = "fully-connected"
        inputs = 1
        neurons = 4
        self_loops = true
        bias = true
        [params]
        c = 50.0
        tau = 0.01
        policy = "hsf-every-step"
        [input]
        kind = "sequence"
        source = "mackey-glass"
        seed = 2
        hold = 3
        [target]
        kind = "shifted-input"
        shift = 1
        [run]
        steps = 100
    "#;

    #[test]
    fn sequence_stream_errors_name_the_key() {
        let source = |s: &str| SEQ.replace("source = \"mackey-glass\"", s);
        // The input's kind replaced, and the sequence's own fields taken out.
        let input_kind = |kind: &str| {
            SEQ.replace("kind = \"sequence\"", kind)
                .replace("source = \"mackey-glass\"", "")
                .replace("seed = 2", "")
                .replace("hold = 3", "")
        };
        let cases = [
            (source("source = \"mackey-glas\""), "input.source", "one of mackey-glass, random, patched-cosines"),
            (SEQ.replace("hold = 3", "hold = 0"), "input.hold", "0: each sample"),
            (SEQ.replace("hold = 3", "hold = -2"), "input", "`hold`, a whole number of steps"),
            (SEQ.replace("hold = 3", "hold = 3\ndt = 0.015"), "input.dt", "0.015: a multiple of the integration step"),
            (source("source = \"random\"\ndt = 1.0"), "input.dt", "not used by source = \"random\""),
            (source("source = \"mackey-glass\"\nmax_len = 9.0"), "input.max_len", "not used by source"),
            (source("source = \"patched-cosines\"\ndt = 0.0"), "input.dt", "0: a finite time"),
            (source("source = \"patched-cosines\"\nmin_len = -1.0"), "input.min_len", "-1"),
            (SEQ.replace("shift = 1", "shift = 1000001"), "target.shift", "1000001: a whole number of samples"),
            (SEQ.replace("shift = 1", "shift = 1.5"), "target", "`shift`, a whole number of samples"),
            (SEQ.replace("shift = 1", "shift = 1\nhold = 3"), "target", "unknown field `hold`"),
            (SEQ.replace("kind = \"shifted-input\"\n        shift = 1", "kind = \"shifted-input\""), "target", "shift"),
            (
                input_kind("kind = \"sinusoid\"\nfrequency = 1.0"),
                "target.kind",
                "needs [input] with kind = \"sequence\"",
            ),
            (input_kind("kind = \"shifted-input\"\nshift = 1"), "input.kind", "a target kind"),
            (SEQ.replace("inputs = 1", "inputs = 2"), "input", "1 channels, but the network has 2 inputs"),
        ];
        for (text, key, value) in cases {
            let msg = parse(&text).unwrap_err().to_string();
            assert!(msg.contains(&format!("`{key}`")) && msg.contains(value), "{key}: {msg}");
        }
        // 34 samples 1 time unit apart in patches of 1e-9: 3.4e10 patches, about 1.6 TB.
        let tiny = source("source = \"patched-cosines\"\nmin_len = 1e-9\nmax_len = 1e-9");
        let msg = parse(&tiny).unwrap_err().to_string();
        assert!(msg.contains("`(memory)`") && msg.contains("patched-cosines patches"), "{msg}");
    }

    #[test]
    fn a_shifted_input_target_is_the_input_sequence_shift_samples_away() {
        for (shift, source) in [(1i64, "mackey-glass"), (-2, "random"), (1, "patched-cosines")] {
            let text = SEQ
                .replace("shift = 1", &format!("shift = {shift}"))
                .replace("source = \"mackey-glass\"", &format!("source = {source:?}"));
            let exp = parse(&text).unwrap();
            assert_eq!(Experiment::from_json(&exp.to_json(), "json").unwrap(), exp);
            let mut streams = exp.streams(2, None).unwrap();
            let read = |s: &mut Box<dyn Signal>, step: u64| {
                let mut v = [f32::NAN];
                s.sample(step, step as f64 * 0.01, &mut v);
                v[0]
            };
            let mut inputs = Vec::new();
            for s in &mut streams {
                let input = s.input.as_mut().unwrap();
                inputs.push((0..90).map(|n| read(input, n)).collect::<Vec<f32>>());
            }
            assert_eq!(inputs[0], inputs[1], "{source}: every replica reads the same sequence");
            for s in &mut streams {
                for n in 0..60u64 {
                    let z = read(&mut s.target, n);
                    let from = n as i64 + 3 * shift;
                    let want = if from < 0 { 0.0 } else { inputs[0][from as usize] };
                    assert_eq!(z, want, "{source}, shift {shift}: target at step {n}");
                }
            }
        }
    }

    #[test]
    fn a_configuration_too_large_for_a_checkpoint_header_is_refused() {
        // Backslashes take 1 byte in a TOML literal string, 4 once stored: 30 MB is 120 MB.
        let long = |len: usize| {
            FIG.replace("name = \"t\"", &format!("name = \"t\"\ndescription = '''{}'''", "\\".repeat(len)))
        };
        let msg = parse(&long(30_000_000)).unwrap_err().to_string();
        assert!(msg.contains("`(file)`") && msg.contains("with a long description"), "{msg}");
        assert!(msg.contains(&format!("at most {MAX_STORED_CONFIG}")), "{msg}");
        // A long one that fits is stored whole.
        assert_eq!(parse(&long(1_000_000)).unwrap().description.len(), 1_000_000);
    }

    #[test]
    fn patches_too_short_for_memory_are_refused_before_the_run() {
        let patched = |len: &str| {
            FIG.replace(
                "kind = \"sinusoid\"\n        frequency = 0.1",
                &format!("kind = \"patched-cosines\"\n        min_len = {len}\n        max_len = {len}"),
            )
        };
        // 10 time units in patches of 1e-9: 10^10 patches, about 480 GB.
        let msg = parse(&patched("1e-9")).unwrap_err().to_string();
        assert!(msg.contains("`(memory)`") && msg.contains("patched-cosines patches"), "{msg}");
        assert!(parse(&patched("5.0")).is_ok());
    }

    #[test]
    fn checkpoint_intervals_parse() {
        let every = |v: &str| parse(&FIG.replace("steps = 1000", &format!("steps = 1000\ncheckpoint_every = {v}")));
        let interval = |v: &str| every(v).unwrap().run.checkpoint_every.interval().unwrap();
        assert_eq!(interval("5000"), Interval::Steps(5000));
        assert_eq!(interval("\"90s\""), Interval::Seconds(90.0));
        assert_eq!(interval("\"1.5 min\""), Interval::Seconds(90.0));
        assert_eq!(interval("\"2h\""), Interval::Seconds(7200.0));
        assert_eq!(parse(FIG).unwrap().run.checkpoint_every.interval().unwrap(), Interval::Seconds(600.0));
    }

    #[test]
    fn plain_names_and_exact_edges_are_accepted() {
        for name in ["", "fig1", "run.2", "a b", "sweep-64x64_q"] {
            let exp = parse(&FIG.replace("name = \"t\"", &format!("name = {name:?}"))).unwrap();
            assert_eq!(exp.name, name);
        }
        let edges = FIG
            .replace("kind = \"fully-connected\"", "kind = \"edges\"")
            .replace("self_loops = true", "edges = [[1, 2], [2, 3]]");
        assert_eq!(parse(&edges).unwrap().network.edges, Some(vec![[1, 2], [2, 3]]));
        let loud = FIG.replace("frequency = 0.1", "frequency = 0.1\namplitude = 3e38");
        assert!(parse(&loud).is_ok(), "an amplitude within f32 is accepted");
    }

    #[test]
    fn a_sweep_makes_one_replica_per_combination() {
        let text = format!("{FIG}\n[sweep]\nq = [10.0, 100.0]\nr = [0.1, 1.0, 10.0]\n");
        let exp = parse(&text).unwrap();
        let net = exp.network().unwrap();
        let params = exp.replica_params(&net).unwrap();
        let pairs: Vec<(f32, f32)> = params.iter().map(|p| (p.q, p.r)).collect();
        assert_eq!(pairs, [(10.0, 0.1), (10.0, 1.0), (10.0, 10.0), (100.0, 0.1), (100.0, 1.0), (100.0, 10.0)]);
        let bad = format!("{FIG}\n[sweep]\nr = [0.1, -1.0]\n");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.contains("r (sweep replica 1)") && e.contains("-1"), "{e}");
    }
}
