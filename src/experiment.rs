//! Running an experiment file end to end: check everything, run, score, and write the
//! outputs (`trace.csv`, `summary.json`, `checkpoint.safetensors`, plots) into one folder.
//! The `localprop` command line is a thin layer over [`run`] and [`resume`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::baseline::{SgdMomentum, pass_order, train_prequential};
use crate::engine::{Backend, Engine};
use crate::error::{Error, Result};
use crate::io::checkpoint::{self, Checkpoint};
use crate::io::config::{Experiment, MaskConfig, PreparedData, SignalConfig, rekey};
use crate::io::output::{PassSummary, ReplicaSummary, Summary, mean, trace_csv, write_atomic};
use crate::io::plot::{self, Heatmap, LinePlot, Series};
use crate::params::{Params, Speed, decimal};
use crate::state::Trace;

/// Command-line choices that override or complete the experiment file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Backend (overrides `run.backend`).
    pub backend: Option<Backend>,
    /// Output folder.
    pub out: PathBuf,
    /// Steps (overrides `run.steps` / `run.passes`).
    pub steps: Option<u64>,
    /// Network seed (overrides `network.seed`).
    pub seed: Option<u64>,
    /// No progress bar.
    pub quiet: bool,
    /// Write into a folder that already holds a run.
    pub force: bool,
}

/// The names of the files a run writes, for the summary and the docs.
pub const TRACE_FILE: &str = "trace.csv";
/// See [`TRACE_FILE`].
pub const SUMMARY_FILE: &str = "summary.json";
/// See [`TRACE_FILE`].
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Checks an experiment file completely, data included, without running it; returns the
/// experiment, its total steps and its replica count.
pub fn check(path: &Path) -> Result<(Experiment, u64, usize)> {
    let exp = Experiment::load(path)?;
    let file = path.display().to_string();
    let data = exp.load_data(&file)?;
    let net = exp.network()?;
    let replicas = exp.replica_params(&net).map_err(|e| rekey(e, &file, "params"))?.len();
    Ok((exp.clone(), exp.total_steps(data.as_ref()), replicas))
}

/// Runs the experiment in the file at `path`.
pub fn run(path: &Path, opts: &RunOptions) -> Result<Summary> {
    let mut exp = Experiment::load(path)?;
    if let Some(seed) = opts.seed {
        exp.network.seed = seed;
    }
    if let Some(steps) = opts.steps {
        exp.run.steps = Some(steps);
        exp.run.passes = None;
    }
    execute(exp, &path.display().to_string(), None, opts)
}

/// Continues the run saved in a checkpoint, for `opts.steps` steps (default: the
/// configuration's length), with the configuration stored in it.
pub fn resume(checkpoint_path: &Path, opts: &RunOptions) -> Result<Summary> {
    let ckpt = checkpoint::load(checkpoint_path)?;
    let file = checkpoint_path.display().to_string();
    let mut exp = Experiment::from_json(&ckpt.config_json, &file)?;
    if let Some(steps) = opts.steps {
        exp.run.steps = Some(steps);
        exp.run.passes = None;
    }
    execute(exp, &file, Some(ckpt), opts)
}

fn refuse_existing(out: &Path, force: bool) -> Result<()> {
    if !force && out.join(SUMMARY_FILE).exists() {
        return Err(Error::Io {
            path: out.display().to_string(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "already holds a run (summary.json); choose another --out or pass --force to overwrite it",
            ),
        });
    }
    Ok(())
}

fn execute(exp: Experiment, file: &str, from: Option<Checkpoint>, opts: &RunOptions) -> Result<Summary> {
    // Everything is checked before anything is written.
    refuse_existing(&opts.out, opts.force)?;
    let data = exp.load_data(file)?;
    let net = exp.network().map_err(|e| rekey(e, file, "network"))?;
    let params = exp.replica_params(&net).map_err(|e| rekey(e, file, "params"))?;
    let steps = exp.total_steps(data.as_ref());
    let backend = opts.backend.unwrap_or(exp.run.backend.backend());
    let mut engine = Engine::with_backend(net.clone(), params.clone(), backend)?;
    engine.set_block_steps(exp.run.block_steps)?;
    engine.set_record_every(exp.run.record_every)?;
    if let Some(ckpt) = &from {
        ckpt.check_network(&net)?;
        engine.set_state(&ckpt.state)?;
    }
    let mut streams = exp.streams(params.len(), data.as_ref())?;
    std::fs::create_dir_all(&opts.out).map_err(|source| Error::Io { path: opts.out.display().to_string(), source })?;

    let bar = progress_bar(steps, opts.quiet);
    let start = Instant::now();
    let trace = engine.run_with_progress(steps, &mut streams, |done| bar.set_position(done))?;
    let wall = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let first_step = engine.step() - steps;

    let mut replicas = Vec::new();
    for (r, p) in params.iter().enumerate() {
        replicas.push(score_replica(&exp, &trace, r, p, data.as_ref(), first_step));
    }
    let baseline = match (&exp.baseline, data.as_ref()) {
        (Some(b), Some(pd)) => Some(run_baseline(&exp, &net, &params[0], pd, b.lr, b.momentum, first_step, steps)?),
        _ => None,
    };

    let mut files = vec![TRACE_FILE.to_string(), SUMMARY_FILE.to_string(), CHECKPOINT_FILE.to_string()];
    files.extend(write_plots(&exp, &trace, &replicas, baseline.as_deref(), &opts.out)?);
    let adapter = engine.backend_description().strip_prefix("gpu: ").map(str::to_string);
    let summary = Summary {
        name: exp.name.clone(),
        backend: engine.backend().name().to_string(),
        adapter,
        first_step,
        steps,
        wall_seconds: wall,
        steps_per_second: steps as f64 / wall.max(1e-12),
        replicas,
        baseline,
        files,
        config: serde_json::from_str(&exp.to_json()).expect("valid JSON"),
    };
    write_atomic(&opts.out.join(TRACE_FILE), trace_csv(&trace, exp.mask.is_some()).as_bytes())?;
    let state = engine.state()?;
    let ckpt = Checkpoint {
        t: engine.time(),
        n: net.n(),
        edge_src: net.edge_src().to_vec(),
        edge_dst: net.edge_dst().to_vec(),
        config_json: exp.to_json(),
        metadata: Default::default(),
        state,
    };
    checkpoint::save(&opts.out.join(CHECKPOINT_FILE), &ckpt)?;
    let json = serde_json::to_string_pretty(&summary).expect("a summary always serialises");
    write_atomic(&opts.out.join(SUMMARY_FILE), json.as_bytes())?;
    Ok(summary)
}

fn progress_bar(steps: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps  {per_sec}  ETA {eta}")
            .expect("a valid template"),
    );
    bar
}

/// The step within each hold at which a data sample's prediction is read: the last step of
/// its hidden target (prequential), else the last step of the hold.
fn predict_offset(exp: &Experiment) -> u64 {
    let hold = exp.data.as_ref().map_or(1, |d| d.hold);
    match exp.mask {
        Some(MaskConfig::Prequential { hidden_steps }) => hidden_steps - 1,
        _ => hold - 1,
    }
}

fn score_replica(
    exp: &Experiment,
    trace: &Trace,
    r: usize,
    p: &Params,
    data: Option<&PreparedData>,
    first_step: u64,
) -> ReplicaSummary {
    let rows = trace.rows();
    let loss: Vec<f32> = (0..rows).map(|row| trace.loss[row * trace.replicas + r]).collect();
    let last = rows.saturating_sub(1) * trace.replicas + r;
    let mut params =
        serde_json::json!({ "q": decimal(p.q), "r": decimal(p.r), "r_w": decimal(p.r_w), "theta": decimal(p.theta) });
    if let Speed::Global(c) = p.c {
        params["c"] = decimal(c).into();
    }
    let classification = matches!(exp.target, SignalConfig::Data);
    let nmse = (!classification && rows >= 2)
        .then(|| (0..trace.n_out).map(|o| Some(trace.nmse(r, o, rows / 2)).filter(|v| v.is_finite())).collect());
    let accuracy = match (classification, data, &exp.data) {
        (true, Some(pd), Some(d)) => Some(accuracy_per_pass(exp, trace, r, pd, d.hold, first_step)),
        _ => None,
    };
    ReplicaSummary {
        replica: r,
        params,
        final_loss: loss.last().copied().unwrap_or(f32::NAN) as f64,
        mean_loss: mean(loss.iter().copied()),
        final_lagrangian: trace.lagrangian.get(last).copied().unwrap_or(f32::NAN) as f64,
        final_hamiltonian: trace.hamiltonian.get(last).copied().unwrap_or(f32::NAN) as f64,
        nmse,
        accuracy,
    }
}

/// Prequential accuracy: each sample is predicted (argmax of the outputs) at its
/// prediction step; samples whose prediction step lies outside the run are not scored.
fn accuracy_per_pass(
    exp: &Experiment,
    trace: &Trace,
    r: usize,
    pd: &PreparedData,
    hold: u64,
    first_step: u64,
) -> Vec<PassSummary> {
    let rows = pd.dataset.rows() as u64;
    let offset = predict_offset(exp);
    let last_step = first_step + trace.rows() as u64;
    let mut per_pass: Vec<(usize, usize)> = Vec::new();
    let first_sample = first_step.div_ceil(hold);
    let mut sample = first_sample;
    let mut order: Option<(u64, Vec<usize>)> = None;
    loop {
        let step = sample * hold + offset;
        if step < first_step {
            sample += 1;
            continue;
        }
        if step >= last_step {
            break;
        }
        let (pass, pos) = (sample / rows, (sample % rows) as usize);
        if order.as_ref().is_none_or(|(p, _)| *p != pass) {
            order = Some((pass, pass_order(rows as usize, exp.order(), pass)));
        }
        let row = order.as_ref().map_or(pos, |(_, o)| o[pos]);
        let tr = (step - first_step) as usize;
        let outs = &trace.outputs[(tr * trace.replicas + r) * trace.n_out..][..trace.n_out];
        let predicted = argmax(outs);
        let k = pass as usize;
        if per_pass.len() <= k {
            per_pass.resize(k + 1, (0, 0));
        }
        per_pass[k].0 += 1;
        per_pass[k].1 += usize::from(predicted == pd.dataset.labels[row]);
        sample += 1;
    }
    per_pass
        .into_iter()
        .enumerate()
        .filter(|(_, (n, _))| *n > 0)
        .map(|(pass, (n, ok))| PassSummary { pass, samples: n, accuracy: ok as f64 / n as f64 })
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The backprop baseline on the same samples in the same order as the local rule saw them.
#[expect(clippy::too_many_arguments, reason = "one call site; the pieces are unrelated")]
fn run_baseline(
    exp: &Experiment,
    net: &crate::Network,
    p: &Params,
    pd: &PreparedData,
    lr: f32,
    momentum: f32,
    first_step: u64,
    steps: u64,
) -> Result<Vec<PassSummary>> {
    let hold = exp.data.as_ref().map_or(1, |d| d.hold);
    let rows = pd.dataset.rows() as u64;
    let samples = (first_step + steps) / hold - first_step / hold;
    let passes = samples.div_ceil(rows.max(1));
    let first_pass = first_step / hold / rows.max(1);
    let order: Vec<Vec<usize>> =
        (first_pass..first_pass + passes).map(|k| pass_order(rows as usize, exp.order(), k)).collect();
    let results = train_prequential(net, p.activation, &pd.dataset, &pd.targets, &order, SgdMomentum { lr, momentum })?;
    Ok(results
        .into_iter()
        .map(|r| PassSummary { pass: r.pass + first_pass as usize, samples: r.samples, accuracy: r.accuracy })
        .collect())
}

/// A linear plot against time `t`, 1200 x 600.
fn time_plot<'a>(title: &'a str, y_label: &'a str, series: Vec<Series<'a>>) -> LinePlot<'a> {
    LinePlot { title, x_label: "t", y_label, series, log_x: false, log_y: false, size: (1200, 600) }
}

fn write_plots(
    exp: &Experiment,
    trace: &Trace,
    replicas: &[ReplicaSummary],
    baseline: Option<&[PassSummary]>,
    out: &Path,
) -> Result<Vec<String>> {
    let mut files = Vec::new();
    if trace.rows() == 0 {
        return Ok(files);
    }
    let t: Vec<f64> = trace.t.clone();
    let col =
        |v: &[f32], r: usize| -> Vec<f64> { (0..trace.rows()).map(|row| v[row * trace.replicas + r] as f64).collect() };
    let classification = matches!(exp.target, SignalConfig::Data);
    if !classification {
        let shown = trace.n_out.min(4);
        let outs: Vec<(String, Vec<f64>, String, Vec<f64>)> = (0..shown)
            .map(|o| {
                let x = trace.output_series(0, o).iter().map(|&v| v as f64).collect();
                let z = trace.target_series(0, o).iter().map(|&v| v as f64).collect();
                (format!("output {o}"), x, format!("target {o}"), z)
            })
            .collect();
        let mut series = Vec::new();
        for (xn, x, zn, z) in &outs {
            series.push(Series { name: zn, x: &t, y: z });
            series.push(Series { name: xn, x: &t, y: x });
        }
        let title = format!("{}: output and target (replica 0)", exp.name);
        plot::line_plot(&out.join("output.png"), &time_plot(&title, "value", series))?;
        files.push("output.png".into());
    }
    let loss = col(&trace.loss, 0);
    let lag = col(&trace.lagrangian, 0);
    let ham = col(&trace.hamiltonian, 0);
    let title = format!("{}: loss (q/2) sum mask (x - z)^2 (replica 0)", exp.name);
    plot::line_plot(&out.join("loss.png"), &time_plot(&title, "loss", vec![Series { name: "loss", x: &t, y: &loss }]))?;
    let title = format!("{}: scaled Lagrangian and Hamiltonian (replica 0)", exp.name);
    let energies = vec![Series { name: "Lagrangian", x: &t, y: &lag }, Series { name: "Hamiltonian", x: &t, y: &ham }];
    plot::line_plot(&out.join("energy.png"), &time_plot(&title, "energy / phi", energies))?;
    files.extend(["loss.png".to_string(), "energy.png".to_string()]);
    if classification && let Some(acc) = &replicas[0].accuracy {
        let passes: Vec<f64> = acc.iter().map(|a| a.pass as f64 + 1.0).collect();
        let local: Vec<f64> = acc.iter().map(|a| a.accuracy).collect();
        let mut series = vec![Series { name: "local propagation", x: &passes, y: &local }];
        let (bp, bx): (Vec<f64>, Vec<f64>) =
            baseline.unwrap_or(&[]).iter().map(|a| (a.accuracy, a.pass as f64 + 1.0)).unzip();
        if !bp.is_empty() {
            series.push(Series { name: "backprop SGD + momentum", x: &bx, y: &bp });
        }
        plot::line_plot(
            &out.join("accuracy.png"),
            &LinePlot {
                title: &format!("{}: prequential accuracy per pass", exp.name),
                x_label: "pass",
                y_label: "accuracy",
                series,
                log_x: false,
                log_y: false,
                size: (900, 600),
            },
        )?;
        files.push("accuracy.png".into());
    }
    let axes = exp.sweep_axes();
    if !axes.is_empty() && !classification {
        let (ya, xa) = match axes.len() {
            1 => (None, &axes[0]),
            _ => (Some(&axes[axes.len() - 2]), &axes[axes.len() - 1]),
        };
        if axes.len() <= 2 {
            let values: Vec<f64> =
                replicas.iter().map(|r| r.nmse.as_ref().and_then(|v| v[0]).unwrap_or(f64::NAN)).collect();
            let x_ticks: Vec<String> = xa.1.iter().map(|v| format!("{v}")).collect();
            let y_ticks: Vec<String> = ya.map_or(vec![String::new()], |a| a.1.iter().map(|v| format!("{v}")).collect());
            plot::heatmap(
                &out.join("sweep.png"),
                &Heatmap {
                    title: &format!("{}: NMSE of output 0 over the sweep", exp.name),
                    x_label: xa.0,
                    y_label: ya.map_or("", |a| a.0),
                    x_ticks: &x_ticks,
                    y_ticks: &y_ticks,
                    values: &values,
                    value_label: "NMSE",
                    log_color: true,
                },
            )?;
            files.push("sweep.png".into());
        }
    }
    Ok(files)
}
