//! Input, target and mask streams, evaluated at each step's time `t_n = n tau`.
//!
//! A [`Signal`] writes its `dim()` channels for step `n` at time `t`; the engine calls it
//! once per step, in step order, so stateful signals (data sets held for K steps, closures)
//! are fine. Every signal here is deterministic given its seed.
//!
//! [`sequence`] holds the sequence-learning streams: seeded samples held for some steps as
//! an input, and targets that are the same samples shifted (predict the next, recall one
//! back).

use std::f64::consts::TAU;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::rng::Rng;

pub mod sequence;
pub use sequence::{HeldSequence, MackeyGlass, Sequence, Source};

/// A stream of `dim()` values per step.
pub trait Signal: Send {
    /// Number of channels.
    fn dim(&self) -> usize;
    /// Writes the values at step `step`, time `t`, into `out` (length `dim()`).
    fn sample(&mut self, step: u64, t: f64, out: &mut [f32]);
}

/// The same values at every step.
#[derive(Clone, Debug, PartialEq)]
pub struct Constant(pub Vec<f32>);

impl Signal for Constant {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn sample(&mut self, _: u64, _: f64, out: &mut [f32]) {
        out.copy_from_slice(&self.0);
    }
}

/// `offset + amplitude sin(2 pi frequency t + phase + k phase_step)` on channel `k`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sinusoid {
    /// Number of channels.
    pub dim: usize,
    /// Peak amplitude.
    pub amplitude: f64,
    /// Cycles per unit of time (the paper's `sin(2 pi t / 10)` has frequency 0.1).
    pub frequency: f64,
    /// Phase of channel 0, in radians.
    pub phase: f64,
    /// Phase added per channel, in radians.
    pub phase_step: f64,
    /// Constant offset.
    pub offset: f64,
}

impl Sinusoid {
    /// One channel, `amplitude sin(2 pi frequency t)`.
    pub fn new(amplitude: f64, frequency: f64) -> Self {
        Sinusoid { dim: 1, amplitude, frequency, phase: 0.0, phase_step: 0.0, offset: 0.0 }
    }
}

impl Signal for Sinusoid {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sample(&mut self, _: u64, t: f64, out: &mut [f32]) {
        for (k, v) in out.iter_mut().enumerate() {
            let arg = TAU * self.frequency * t + self.phase + k as f64 * self.phase_step;
            *v = (self.offset + self.amplitude * arg.sin()) as f32;
        }
    }
}

/// One patch of [`PatchedCosines`]: `[start, end)` with a cosine or a constant.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Patch {
    Cosine { start: f64, end: f64, amplitude: f64, frequency: f64, phase: f64 },
    Constant { start: f64, end: f64, level: f64 },
}

impl Patch {
    fn end(&self) -> f64 {
        match *self {
            Patch::Cosine { end, .. } | Patch::Constant { end, .. } => end,
        }
    }
    fn value(&self, t: f64) -> f64 {
        match *self {
            Patch::Cosine { start, amplitude, frequency, phase, .. } => {
                amplitude * (TAU * frequency * (t - start) + phase).cos()
            }
            Patch::Constant { level, .. } => level,
        }
    }
}

/// The paper's "patched intervals of cosines and constants" target, purposely hard to
/// predict (its Fig. 3). One channel.
///
/// Construction (seeded, documented so the run can be reproduced anywhere): time is cut
/// into consecutive patches of length `U(min_len, max_len)`; each patch is, with equal
/// probability, a cosine `A cos(2 pi f (t - start) + phi)` with `A ~ U(0.3, 1)`,
/// `f ~ U(0.05, 0.3)`, `phi ~ U(0, 2 pi)`, or a constant `~ U(-0.8, 0.8)`. Patches join
/// with jumps. Patches are drawn lazily as `t` grows, so the signal has no horizon.
#[derive(Clone, Debug)]
pub struct PatchedCosines {
    rng: Rng,
    min_len: f64,
    max_len: f64,
    patches: Vec<Patch>,
}

impl PatchedCosines {
    /// Patches of length between `min_len` and `max_len` time units, drawn from `seed`.
    ///
    /// Both lengths must be finite and `> 0`, with `min_len <= max_len`; otherwise an
    /// [`Error::Param`] names the offending one.
    pub fn new(seed: u64, min_len: f64, max_len: f64) -> Result<Self> {
        for (field, len) in [("min_len", min_len), ("max_len", max_len)] {
            if !(len.is_finite() && len > 0.0) {
                return Err(Error::param(field, len, "a finite patch length > 0"));
            }
        }
        if min_len > max_len {
            return Err(Error::param("max_len", max_len, format!("at least `min_len` = {min_len}")));
        }
        Ok(PatchedCosines { rng: Rng::new(seed), min_len, max_len, patches: Vec::new() })
    }

    /// The value at time `t >= 0` (patches before `t` are kept, so any `t` may be asked).
    pub fn value(&mut self, t: f64) -> f64 {
        while self.patches.last().is_none_or(|p| p.end() <= t) {
            let start = self.patches.last().map_or(0.0, Patch::end);
            let end = start + self.rng.range(self.min_len, self.max_len);
            let patch = if self.rng.uniform() < 0.5 {
                Patch::Cosine {
                    start,
                    end,
                    amplitude: self.rng.range(0.3, 1.0),
                    frequency: self.rng.range(0.05, 0.3),
                    phase: self.rng.range(0.0, TAU),
                }
            } else {
                Patch::Constant { start, end, level: self.rng.range(-0.8, 0.8) }
            };
            self.patches.push(patch);
        }
        let k = self.patches.partition_point(|p| p.end() <= t);
        self.patches[k].value(t)
    }
}

impl Signal for PatchedCosines {
    fn dim(&self) -> usize {
        1
    }
    fn sample(&mut self, _: u64, t: f64, out: &mut [f32]) {
        out[0] = self.value(t) as f32;
    }
}

/// The order in which [`HeldSamples`] visits its rows in each pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Order {
    /// Rows in file order, every pass. The default.
    #[default]
    Sequential,
    /// A fresh seeded permutation per pass (pass `k` uses seed `seed + k`), the same for
    /// every stream built with the same seed, so inputs and targets stay paired.
    Shuffled {
        /// Seed of pass 0.
        seed: u64,
    },
}

impl Order {
    /// Every order's [`name`](Order::name), as experiment files write them.
    pub const NAMES: [&'static str; 2] = ["sequential", "shuffled"];

    /// The name used in experiment files.
    pub fn name(self) -> &'static str {
        Self::NAMES[match self {
            Order::Sequential => 0,
            Order::Shuffled { .. } => 1,
        }]
    }

    /// The order called `name`, shuffled with `seed` (which `sequential` ignores).
    pub fn named(name: &str, seed: u64) -> Result<Order> {
        match name {
            "sequential" => Ok(Order::Sequential),
            "shuffled" => Ok(Order::Shuffled { seed }),
            _ => Err(Error::param("order", format!("{name:?}"), format!("one of {}", Self::NAMES.join(", ")))),
        }
    }
}

/// Rows of a data set, each held for `hold` steps: step `n` shows row `perm(n / hold)`.
#[derive(Clone, Debug)]
pub struct HeldSamples {
    rows: Arc<Vec<f32>>,
    dim: usize,
    hold: u64,
    order: Order,
    pass: Option<(u64, Vec<usize>)>,
}

impl HeldSamples {
    /// `rows` holds `rows.len() / dim` rows of `dim` values, each shown for `hold` steps.
    ///
    /// Needs `dim >= 1`, at least one row, `rows.len()` a multiple of `dim`, and `hold >= 1`;
    /// otherwise an [`Error::Param`] names `dim`, `rows` or `hold`.
    pub fn new(rows: Arc<Vec<f32>>, dim: usize, hold: u64, order: Order) -> Result<Self> {
        if dim == 0 {
            return Err(Error::param("dim", dim, "at least 1 value per row"));
        }
        if rows.is_empty() || !rows.len().is_multiple_of(dim) {
            return Err(Error::param(
                "rows",
                format!("{} values", rows.len()),
                format!("at least one row, and a whole number of rows of `dim` = {dim} values"),
            ));
        }
        if hold == 0 {
            return Err(Error::param("hold", hold, "at least 1 step per row"));
        }
        Ok(HeldSamples { rows, dim, hold, order, pass: None })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The index of the row shown at step `step`.
    pub fn row_at(&mut self, step: u64) -> usize {
        let len = self.len() as u64;
        let k = step / self.hold;
        let (pass, pos) = (k / len, (k % len) as usize);
        match self.order {
            Order::Sequential => pos,
            Order::Shuffled { seed } => {
                if self.pass.as_ref().is_none_or(|(p, _)| *p != pass) {
                    let mut perm: Vec<usize> = (0..len as usize).collect();
                    Rng::new(seed.wrapping_add(pass)).shuffle(&mut perm);
                    self.pass = Some((pass, perm));
                }
                self.pass.as_ref().map_or(pos, |(_, perm)| perm[pos])
            }
        }
    }
}

impl Signal for HeldSamples {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sample(&mut self, step: u64, _: f64, out: &mut [f32]) {
        let row = self.row_at(step);
        out.copy_from_slice(&self.rows[row * self.dim..(row + 1) * self.dim]);
    }
}

/// A user closure `f(step, t, out)` as a signal.
pub struct FnSignal<F> {
    dim: usize,
    f: F,
}

impl<F: FnMut(u64, f64, &mut [f32]) + Send> FnSignal<F> {
    /// A signal of `dim` channels computed by `f`.
    pub fn new(dim: usize, f: F) -> Self {
        FnSignal { dim, f }
    }
}

impl<F: FnMut(u64, f64, &mut [f32]) + Send> Signal for FnSignal<F> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sample(&mut self, step: u64, t: f64, out: &mut [f32]) {
        (self.f)(step, t, out)
    }
}

/// The streams of one replica: inputs (none for a network without external inputs),
/// targets for the outputs, and optional target masks (`0` or `1`; `1` when absent).
pub struct Streams {
    /// External inputs, `net.inputs()` channels.
    pub input: Option<Box<dyn Signal>>,
    /// Targets, one channel per output neuron.
    pub target: Box<dyn Signal>,
    /// Masks, one channel per output neuron.
    pub mask: Option<Box<dyn Signal>>,
}

impl Streams {
    /// Targets only (no external inputs, no masks).
    pub fn new(target: impl Signal + 'static) -> Self {
        Streams { input: None, target: Box::new(target), mask: None }
    }

    /// Adds the input stream.
    pub fn with_input(mut self, input: impl Signal + 'static) -> Self {
        self.input = Some(Box::new(input));
        self
    }

    /// Adds the mask stream.
    pub fn with_mask(mut self, mask: impl Signal + 'static) -> Self {
        self.mask = Some(Box::new(mask));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patched_cosines_are_seeded_and_order_independent() {
        let mut a = PatchedCosines::new(7, 5.0, 20.0).unwrap();
        let mut b = PatchedCosines::new(7, 5.0, 20.0).unwrap();
        let forward: Vec<f64> = (0..2000).map(|k| a.value(k as f64 * 0.1)).collect();
        let backward: Vec<f64> = (0..2000).rev().map(|k| b.value(k as f64 * 0.1)).collect();
        let backward: Vec<f64> = backward.into_iter().rev().collect();
        assert_eq!(forward, backward);
        let mut c = PatchedCosines::new(8, 5.0, 20.0).unwrap();
        assert!((0..2000).any(|k| c.value(k as f64 * 0.1) != forward[k]));
        assert!(forward.iter().all(|v| v.abs() <= 1.0));
    }

    #[test]
    fn held_samples_hold_each_row_and_shuffle_per_pass() {
        let rows = Arc::new((0..10).map(|v| v as f32).collect::<Vec<_>>());
        let mut s = HeldSamples::new(rows.clone(), 1, 3, Order::Sequential).unwrap();
        let seen: Vec<usize> = (0..12).map(|n| s.row_at(n)).collect();
        assert_eq!(seen, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
        let mut sh = HeldSamples::new(rows, 1, 1, Order::Shuffled { seed: 3 }).unwrap();
        let pass0: Vec<usize> = (0..10).map(|n| sh.row_at(n)).collect();
        let pass1: Vec<usize> = (10..20).map(|n| sh.row_at(n)).collect();
        let mut sorted = pass0.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(pass0, pass1);
    }
}
