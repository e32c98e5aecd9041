//! The backprop-limit experiment (`localprop bp-limit`): the gradient error of the local rule
//! against backprop as the propagation speed grows, for a layered net with a time-varying
//! input, and the exact agreement at `c tau = 1` with a constant input.
//!
//! Setup: layers `[4, 16, 16, 3]` with a bias (depth 3), tanh, seed 11, targets
//! `(0.5, -0.3, 0.1)`, `q = 1`, `reverse-costate`, `theta = 0`, weights frozen. The mismatch
//! is `max |e_i x_j - dLoss/dw_ij| / max |dLoss/dw|` over all synapses, against
//! [`localprop::reference::backprop`] at the same instant.
//!
//! - Exact limit: constant input, `c tau = 1`, read after `2D + 1` steps.
//! - Speed sweep: input `u_k(t) = sin(omega t + k)` with `omega = 1`, `tau = 1e-3`,
//!   `c = 2.5 .. 320` (`c tau <= 0.32`); 10 time units to settle, then the mean mismatch over
//!   100 instants 0.1 apart. Theory: `O(omega / c)`, a log-log slope of -1.

use std::path::Path;

use crate::output::write_atomic;
use crate::plot::{self, LinePlot, Series};
use localprop::engine::Engine;
use localprop::error::Result;
use localprop::network::{Network, NetworkSpec};
use localprop::params::{Params, Speed};
use localprop::reference::{Problem, backprop};
use localprop::signal::{Constant, FnSignal, Streams};

const SIZES: [usize; 4] = [4, 16, 16, 3];
const TARGETS: [f32; 3] = [0.5, -0.3, 0.1];
const OMEGA: f64 = 1.0;
/// The speeds of the sweep.
pub const SPEEDS: [f32; 8] = [2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0];

fn input_at(t: f64) -> Vec<f32> {
    (0..SIZES[0]).map(|k| (OMEGA * t + k as f64).sin() as f32).collect()
}

fn frozen(c: f32, tau: f32) -> Params {
    Params { c: Speed::Global(c), tau, q: 1.0, theta: 0.0, learning: false, ..Params::default() }
}

/// Relative gradient mismatch of the engine's current state against backprop at `inputs`.
pub fn gradient_mismatch(engine: &mut Engine, inputs: &[f32], targets: &[f32]) -> Result<f64> {
    let net = engine.network().clone();
    let params = engine.params().to_vec();
    let state = engine.state()?;
    let local = state.local_signals(&net, &params, inputs)?;
    let mut all = inputs.to_vec();
    if net.has_bias() {
        all.push(1.0);
    }
    let prob =
        Problem { w: &state.w, inputs: &all, targets, masks: None, q: params[0].q, activation: params[0].activation };
    let want = backprop(&net, &prob)?;
    let scale = want.grad.iter().fold(1e-30f64, |m, g| m.max(g.abs()));
    Ok(local.grad.iter().zip(&want.grad).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max) / scale)
}

fn network() -> Result<Network> {
    NetworkSpec::layered(&SIZES).bias(true).seed(11).build()
}

/// The exact-limit check: mismatch after `2D + 1` steps at `c tau = 1`, constant input.
pub fn exact_limit() -> Result<f64> {
    let net = network()?;
    let depth = net.depth().unwrap_or(1) as u64;
    let inputs = input_at(0.3);
    let mut engine = Engine::new(net, frozen(10.0, 0.1))?;
    let mut streams = [Streams::new(Constant(TARGETS.to_vec())).with_input(Constant(inputs.clone()))];
    engine.run(2 * depth + 1, &mut streams)?;
    gradient_mismatch(&mut engine, &inputs, &TARGETS)
}

/// The speed sweep: mean mismatch per speed in [`SPEEDS`].
pub fn speed_sweep() -> Result<Vec<f64>> {
    let tau = 1e-3f32;
    let mut out = Vec::new();
    for &c in &SPEEDS {
        let mut engine = Engine::new(network()?, frozen(c, tau))?;
        let mut streams = [Streams::new(Constant(TARGETS.to_vec()))
            .with_input(FnSignal::new(SIZES[0], |_, t, o: &mut [f32]| o.copy_from_slice(&input_at(t))))];
        engine.run(10_000, &mut streams)?;
        let mut sum = 0.0;
        for _ in 0..100 {
            engine.run(100, &mut streams)?;
            let u = input_at(engine.time());
            sum += gradient_mismatch(&mut engine, &u, &TARGETS)?;
        }
        out.push(sum / 100.0);
    }
    Ok(out)
}

/// Least-squares slope of `log y` against `log x`.
pub fn log_log_slope(x: &[f64], y: &[f64]) -> f64 {
    let (lx, ly): (Vec<f64>, Vec<f64>) = x.iter().zip(y).map(|(a, b)| (a.ln(), b.ln())).unzip();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum::<f64>() / lx.iter().map(|a| (a - mx).powi(2)).sum::<f64>()
}

/// Runs both parts, prints the table, writes `bp_limit.csv` and `bp_limit.png` into `out`.
pub fn run(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).map_err(|source| localprop::Error::Io { path: out.display().to_string(), source })?;
    let exact = exact_limit()?;
    println!("Exact limit: layers {SIZES:?} + bias, c tau = 1, constant input, after 2D + 1 = 7 steps:");
    println!("  max |e_i x_j - dLoss/dw_ij| / max |dLoss/dw| = {exact:.2e}\n");
    let errs = speed_sweep()?;
    let cs: Vec<f64> = SPEEDS.iter().map(|&c| c as f64).collect();
    let slope = log_log_slope(&cs, &errs);
    println!("Speed sweep: input sin(t + k), tau = 1e-3, mean relative gradient mismatch:\n");
    println!("| c | c / omega | mismatch |");
    println!("|---|---|---|");
    let mut csv = String::from("c,c_over_omega,mismatch\n");
    for (c, e) in cs.iter().zip(&errs) {
        println!("| {c} | {} | {e:.3e} |", c / OMEGA);
        csv.push_str(&format!("{c},{},{e:?}\n", c / OMEGA));
    }
    println!("\nfitted log-log slope: {slope:.3} (theory: -1, i.e. O(omega / c))");
    write_atomic(&out.join("bp_limit.csv"), csv.as_bytes())?;
    let reference: Vec<f64> = cs.iter().map(|c| errs[0] * cs[0] / c).collect();
    plot::line_plot(
        &out.join("bp_limit.png"),
        &LinePlot {
            title: &format!("Local gradient vs backprop as the speed grows (slope {slope:.2})"),
            x_label: "speed c (omega = 1)",
            y_label: "relative gradient mismatch",
            series: vec![
                Series { name: "measured", x: &cs, y: &errs },
                Series { name: "slope -1 reference", x: &cs, y: &reference },
            ],
            log_x: true,
            log_y: true,
            size: (1000, 700),
        },
    )?;
    println!("wrote bp_limit.csv, bp_limit.png in {}", out.display());
    Ok(())
}
