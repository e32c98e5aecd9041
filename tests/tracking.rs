//! The paper's tracking experiments as claims: online learning works (docs/model.md).
//!
//! Setup, as in `examples/tracking.rs` (where the parameter choices are measured and
//! explained): 5 tanh neurons fully connected with self-loops, plus a bias neuron, no
//! external input, the output is the first non-input neuron; `r = 0.1`, `r_w = 1`,
//! `hsf-every-step`, `c = 50`, `tau = 0.01`, `theta = 1`, 20,000 steps (t = 0..200), one
//! [`Engine::run`] over the whole horizon. NMSE is measured over the second half.
//!
//! Measured with these settings (seeds 1-5): sinusoid NMSE 0.611 (q = 10), 0.042 (q = 100),
//! 0.0053 (q = 1000), identical across seeds to about 3 digits, against 1.01-1.22 with
//! frozen weights; patched cosines at q = 100: 0.05-0.16 learning against 1.03-1.82 frozen.
//! The thresholds below leave wide margins under those numbers.
//!
//! All runs are computed once (about a second) and shared by the tests.

use std::sync::OnceLock;

use localprop::signal::{PatchedCosines, Sinusoid};
use localprop::{Engine, NetworkSpec, Params, Streams, Trace};

/// Network seeds (initial weights); the patched target of seed `s` is drawn from `1000 + s`.
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];
const STEPS: u64 = 20_000;
/// Accuracy weights of the paper's Figs. 1 (10), 3 (100) and 2 (1000).
const QS: [f32; 3] = [10.0, 100.0, 1000.0];

fn params(q: f32, learning: bool) -> Params {
    Params { learning, ..Params::tracking(q) }
}

/// Runs `params` as independent replicas of the network of `seed`, each on its own copy of
/// the target, over the whole horizon.
fn run(seed: u64, params: Vec<Params>, target: impl Fn() -> Streams) -> Trace {
    let net = NetworkSpec::fully_connected(0, 5, true).bias(true).seed(seed).build().expect("valid network");
    let replicas = params.len();
    let mut engine = Engine::with_replicas(net, params).expect("valid parameters");
    let mut streams: Vec<Streams> = (0..replicas).map(|_| target()).collect();
    engine.run(STEPS, &mut streams).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"))
}

fn nmse(trace: &Trace, replica: usize) -> f64 {
    trace.nmse(replica, 0, trace.rows() / 2)
}

/// The runs of one seed.
struct SeedRuns {
    seed: u64,
    /// Sinusoid, learning, one replica per q in [`QS`].
    sinusoid: Trace,
    /// Sinusoid, frozen weights (q = 1000; with frozen weights the output does not depend on q).
    sinusoid_frozen: Trace,
    /// Patched cosines at q = 100, learning.
    patched: Trace,
    /// Patched cosines at q = 100, frozen weights (a second engine: replicas share `learning`).
    patched_frozen: Trace,
}

fn runs() -> &'static [SeedRuns] {
    static RUNS: OnceLock<Vec<SeedRuns>> = OnceLock::new();
    RUNS.get_or_init(|| {
        let sine = || Streams::new(Sinusoid::new(1.0, 0.1));
        SEEDS
            .iter()
            .map(|&seed| {
                let patched = || Streams::new(PatchedCosines::new(1000 + seed, 5.0, 20.0).unwrap());
                SeedRuns {
                    seed,
                    sinusoid: run(seed, QS.iter().map(|&q| params(q, true)).collect(), sine),
                    sinusoid_frozen: run(seed, vec![params(1000.0, false)], sine),
                    patched: run(seed, vec![params(100.0, true)], patched),
                    patched_frozen: run(seed, vec![params(100.0, false)], patched),
                }
            })
            .collect()
    })
}

#[test]
fn tracking_learns_sinusoid_far_better_than_frozen() {
    let q1000 = QS.iter().position(|&q| q == 1000.0).expect("q = 1000 is run");
    for s in runs() {
        let (learned, frozen) = (nmse(&s.sinusoid, q1000), nmse(&s.sinusoid_frozen, 0));
        assert!(
            learned * 10.0 <= frozen,
            "seed {}: q = 1000 NMSE {learned:.4} learning vs {frozen:.4} frozen, want at least 10x lower",
            s.seed
        );
    }
}

#[test]
fn tracking_error_falls_as_accuracy_weight_q_grows() {
    for s in runs() {
        let errs: Vec<f64> = (0..QS.len()).map(|k| nmse(&s.sinusoid, k)).collect();
        // Strictly decreasing, and by a clear margin (measured: about 14x and 8x per step).
        for k in 1..QS.len() {
            assert!(
                errs[k] * 2.0 < errs[k - 1],
                "seed {}: NMSE {errs:?} for q = {QS:?}; q = {} should at least halve the error of q = {}",
                s.seed,
                QS[k],
                QS[k - 1]
            );
        }
    }
}

#[test]
fn tracking_follows_patched_cosines_better_than_frozen() {
    for s in runs() {
        let (learned, frozen) = (nmse(&s.patched, 0), nmse(&s.patched_frozen, 0));
        // Measured: at least 7.7x better on every seed; ask for 3x.
        assert!(
            learned * 3.0 < frozen,
            "seed {}: patched cosines at q = 100, NMSE {learned:.4} learning vs {frozen:.4} frozen, want 3x lower",
            s.seed
        );
    }
}

#[test]
fn tracking_energies_stay_finite() {
    for s in runs() {
        let traces = [
            ("sinusoid", &s.sinusoid),
            ("sinusoid frozen", &s.sinusoid_frozen),
            ("patched", &s.patched),
            ("patched frozen", &s.patched_frozen),
        ];
        for (name, t) in traces {
            assert_eq!(t.rows(), STEPS as usize, "seed {} {name}: every step is recorded", s.seed);
            for (what, v) in [("loss", &t.loss), ("lagrangian", &t.lagrangian), ("hamiltonian", &t.hamiltonian)] {
                if let Some(k) = v.iter().position(|a| !a.is_finite()) {
                    panic!("seed {} {name}: {what} is {} at row {k}", s.seed, v[k]);
                }
            }
            // The scaled Lagrangian is a sum of non-negative terms.
            if let Some(k) = t.lagrangian.iter().position(|&a| a < 0.0) {
                panic!("seed {} {name}: negative Lagrangian {} at row {k}", s.seed, t.lagrangian[k]);
            }
        }
    }
}
