//! `localprop sequence`: learning in time, measured. Local propagation against the online
//! recurrent baselines ([`crate::recurrent`]: TBPTT, e-prop, RTRL) on the sequence tasks of
//! docs/tasks.md (Mackey-Glass and patched-cosines prediction, delayed recall at several
//! delays), on the same network, stream and initial weights, each learner tuned on its own
//! grid of the same size on a tuning seed and then scored over evaluation seeds.
//!
//! **The score.** The target is shown to every learner online, and each of them moves its
//! output towards a target within the steps it is held, so a low error over every step can
//! come from following the target rather than predicting or recalling it. The score is
//! therefore the NMSE at the **first step of each hold**, over the second half of the run: the
//! output there was computed before the learner saw that target (for the local rule, before
//! the new target reached the costates; for the baselines, before their prequential update),
//! so it measures prediction (or recall) alone. The NMSE over every step of the second half is
//! reported beside it, and so is a reference that learns nothing: repeating the current input
//! (about the score of a prediction task's trivial answer; about 2 for recall, whose target is
//! independent of the input).
//!
//! **Seeds.** A seed sets the network's initial weights and the input sequence's seed. The
//! tuning seed is [`TUNING_SEED`]; the evaluation seeds are `1..=seeds`, none of them the
//! tuning seed.
//!
//! **Memory and work.** A baseline reports the f64 learning state it keeps beyond the weights
//! and the current state, momentum buffer included ([`crate::recurrent`]); the local rule keeps
//! `p̂w` per synapse and `p̂` per neuron in f32 (`4 (E + m)` bytes: `p̂w` is also its
//! velocity, `w' = -p̂w / r`), and does about `4 E + 4 m` multiply-adds per step to learn
//! (per synapse: the children's sum, the `p̂w` and `w` updates, the next pre-activation) on
//! top of the forward step `E + m`, as docs/model.md's one-pass step.

use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::baseline::SgdMomentum;
use crate::config::{Experiment, SignalConfig};
use crate::experiment::Nmse;
use crate::plot::{LinePlot, Series, line_plot};
use crate::recurrent::{Method, RecurrentLearner};
use localprop::engine::{Backend, Engine, Flow};
use localprop::error::{Error, Result};
use localprop::params::Params;

/// The seed the grids are tuned on (never an evaluation seed).
pub const TUNING_SEED: u64 = 1000;

/// The delays of the recall task, in samples.
pub const DELAYS: [i64; 5] = [1, 5, 10, 20, 50];

/// The shipped task files, embedded so that the command runs from any folder.
const FILES: [(&str, &str); 3] = [
    ("mackey-glass", include_str!("../../examples/configs/mackey-glass.toml")),
    ("patched-cosines", include_str!("../../examples/configs/patched-cosines-predict.toml")),
    ("delayed-recall", include_str!("../../examples/configs/delayed-recall.toml")),
];

/// A learner of the comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Learner {
    /// Local propagation with the file's policy and speed.
    Local,
    /// An online recurrent baseline.
    Baseline(Method),
    /// A reference that learns nothing: the output is the current input (`s_k` for
    /// `s_{k+shift}`), what a task gives away for free. Not tuned, not in [`Learner::ALL`].
    RepeatInput,
}

impl Learner {
    /// Every learner, in table order.
    pub const ALL: [Learner; 6] = [
        Learner::Local,
        Learner::Baseline(Method::Tbptt { window: 1 }),
        Learner::Baseline(Method::Tbptt { window: 10 }),
        Learner::Baseline(Method::Tbptt { window: 100 }),
        Learner::Baseline(Method::Eprop),
        Learner::Baseline(Method::Rtrl),
    ];

    /// Its name in the tables: `local`, `tbptt(10)`, `eprop`, `rtrl`.
    pub fn name(self) -> String {
        match self {
            Learner::Local => "local".into(),
            Learner::Baseline(Method::Tbptt { window }) => format!("tbptt({window})"),
            Learner::Baseline(m) => m.name().into(),
            Learner::RepeatInput => "repeat input".into(),
        }
    }
}

/// One point of a learner's tuning grid: `(q, theta)` for the local rule, `(lr, momentum)`
/// for a baseline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Setting {
    /// `q` or `lr`.
    pub a: f32,
    /// `theta` or `momentum`.
    pub b: f32,
}

/// Each learner's grid: 8 points for every learner. The local rule varies the accuracy weight
/// `q` and the friction `theta` around the files' values (docs/tasks.md); the baselines vary
/// the learning rate (the loss carries the files' `q = 300`, so rates are small) and the
/// momentum.
pub fn grid(learner: Learner, quick: bool) -> Vec<Setting> {
    let (a, b): (&[f32], &[f32]) = match (learner, quick) {
        (Learner::Local, false) => (&[100.0, 300.0, 1000.0, 3000.0], &[1.0, 5.0]),
        (Learner::Local, true) => (&[300.0], &[5.0]),
        (Learner::Baseline(_), false) => (&[1e-4, 3e-4, 1e-3, 3e-3], &[0.0, 0.5]),
        (Learner::Baseline(_), true) => (&[1e-3], &[0.0]),
        (Learner::RepeatInput, _) => (&[0.0], &[0.0]),
    };
    a.iter().flat_map(|&a| b.iter().map(move |&b| Setting { a, b })).collect()
}

/// One task: a file's experiment, with the recall delay where there is one.
#[derive(Clone, Debug)]
pub struct Task {
    /// `mackey-glass`, `patched-cosines`, or `delayed-recall`.
    pub name: &'static str,
    /// The recall delay `D` in samples (`shift = -D`), for delayed recall.
    pub delay: Option<i64>,
    /// The experiment.
    pub exp: Experiment,
}

/// The tasks: the two prediction files, and delayed recall at each of `delays`.
pub fn tasks(delays: &[i64]) -> Result<Vec<Task>> {
    let mut list = Vec::new();
    for (name, text) in FILES {
        let exp = Experiment::from_toml(text, &format!("examples/configs/{name}.toml"), Path::new("."))?;
        if name == "delayed-recall" {
            for &d in delays {
                let mut exp = exp.clone();
                exp.target = SignalConfig::ShiftedInput { shift: -d };
                list.push(Task { name, delay: Some(d), exp });
            }
        } else {
            list.push(Task { name, delay: None, exp });
        }
    }
    Ok(list)
}

/// What one run scored.
#[derive(Clone, Debug, Serialize)]
pub struct RunScore {
    /// Task name.
    pub task: String,
    /// Recall delay in samples, for delayed recall.
    pub delay: Option<i64>,
    /// Learner name.
    pub learner: String,
    /// `tune` or `eval`.
    pub phase: &'static str,
    /// The seed.
    pub seed: u64,
    /// `q` (local) or `lr` (baselines).
    pub a: f32,
    /// `theta` (local) or `momentum` (baselines).
    pub b: f32,
    /// NMSE at the first step of each hold, over the second half (`None`: diverged or
    /// undefined).
    pub nmse_first: Option<f64>,
    /// NMSE over every step of the second half.
    pub nmse_all: Option<f64>,
    /// Bytes of learning state kept.
    pub memory_bytes: u64,
    /// Multiply-adds per step (forward step and learning).
    pub ops_per_step: f64,
    /// Seconds the run took.
    pub seconds: f64,
    /// The first-step NMSE over each twentieth of the run, in order: the score over time.
    #[serde(skip)]
    pub curve: Vec<Option<f64>>,
}

/// The windows the score over time is taken in.
pub const WINDOWS: u64 = 20;

/// The two NMSEs of a run, fed step by step.
struct Score {
    hold: u64,
    from: u64,
    steps: u64,
    first: Nmse,
    all: Nmse,
    windows: Vec<Nmse>,
}

impl Score {
    fn new(exp: &Experiment, steps: u64) -> Score {
        let hold = match exp.input {
            Some(SignalConfig::Sequence { hold, .. }) => hold,
            _ => 1,
        };
        let windows = vec![Nmse::default(); WINDOWS as usize];
        Score { hold, from: steps / 2, steps, first: Nmse::default(), all: Nmse::default(), windows }
    }

    fn add(&mut self, step: u64, x: f64, z: f64) {
        if step.is_multiple_of(self.hold) {
            let w = (step as u128 * WINDOWS as u128 / self.steps.max(1) as u128) as usize;
            self.windows[w.min(WINDOWS as usize - 1)].add(x, z);
        }
        if step >= self.from {
            self.all.add(x, z);
            if step.is_multiple_of(self.hold) {
                self.first.add(x, z);
            }
        }
    }
}

/// `exp` with the network's and the input sequence's seed set to `seed`.
fn seeded(exp: &Experiment, seed: u64) -> Experiment {
    let mut exp = exp.clone();
    exp.network.seed = seed;
    if let Some(SignalConfig::Sequence { seed: s, .. }) = &mut exp.input {
        *s = seed;
    }
    exp
}

/// Runs `learner` with `setting` on `task` for `steps` steps with `seed`.
pub fn run(
    task: &Task,
    learner: Learner,
    setting: Setting,
    seed: u64,
    steps: u64,
    phase: &'static str,
) -> Result<RunScore> {
    let exp = seeded(&task.exp, seed);
    let net = exp.network()?;
    let base = exp.replica_params(&net)?.remove(0);
    let mut streams = exp.streams(1, None)?;
    let mut score = Score::new(&exp, steps);
    let start = std::time::Instant::now();
    let (e, m) = (net.n_edges() as u64, (net.n() - net.d()) as u64);
    let mut diverged = false;
    let (memory_bytes, ops_per_step) = match learner {
        Learner::Local => {
            let params = Params { q: setting.a, theta: setting.b, ..base };
            let mut engine = Engine::with_backend(net.clone(), vec![params], Backend::Cpu)?;
            engine.set_record_every(1)?;
            engine.set_on_divergence(localprop::OnDivergence::Continue);
            engine.run_blocks(steps, &mut streams, |_, part| {
                for k in 0..part.rows() {
                    score.add(part.step[k], part.outputs[k * part.n_out] as f64, part.targets[k * part.n_out] as f64);
                }
                Ok(Flow::Continue)
            })?;
            (4 * (e + m), (5 * e + 5 * m) as f64)
        }
        Learner::Baseline(method) => {
            let opt = SgdMomentum { lr: setting.a, momentum: setting.b };
            let mut learner = RecurrentLearner::new(&net, &base, method, opt)?;
            let ran = learner.run_each(&mut streams[0], steps, |step, o, z| score.add(step, o.outputs[0], z[0] as f64));
            match ran {
                // A learner that meets a non-finite value scores nothing.
                Err(Error::Param { .. }) => diverged = true,
                other => other?,
            }
            ((learner.memory_bytes() + learner.momentum_bytes()) as u64, learner.ops_per_step())
        }
        Learner::RepeatInput => {
            let s = &mut streams[0];
            let input = s.input.as_mut().ok_or_else(|| Error::param("input", "none", "a sequence input"))?;
            let (mut u, mut z) = (vec![0f32; input.dim()], vec![0f32; s.target.dim()]);
            for step in 0..steps {
                let t = step as f64 * localprop::params::decimal(base.tau);
                input.sample(step, t, &mut u);
                s.target.sample(step, t, &mut z);
                score.add(step, u[0] as f64, z[0] as f64);
            }
            (0, 0.0)
        }
    };
    Ok(RunScore {
        task: task.name.into(),
        delay: task.delay,
        learner: learner.name(),
        phase,
        seed,
        a: setting.a,
        b: setting.b,
        nmse_first: score.first.value().filter(|_| !diverged),
        nmse_all: score.all.value().filter(|_| !diverged),
        memory_bytes,
        ops_per_step,
        seconds: start.elapsed().as_secs_f64(),
        curve: score.windows.iter().map(Nmse::value).collect(),
    })
}

/// The whole comparison: every task and learner, tuned on [`TUNING_SEED`], then scored on
/// seeds `1..=seeds`. Returns every run (tuning runs included), in a stable order.
pub fn compare(
    tasks: &[Task],
    seeds: u64,
    steps: u64,
    quick: bool,
    progress: impl Fn(&str) + Sync,
) -> Result<Vec<RunScore>> {
    let pairs: Vec<(&Task, Learner)> = tasks.iter().flat_map(|t| Learner::ALL.map(|l| (t, l))).collect();
    let tune: Vec<(&Task, Learner, Setting)> =
        pairs.iter().flat_map(|&(t, l)| grid(l, quick).into_iter().map(move |s| (t, l, s))).collect();
    progress(&format!("tuning: {} runs of {steps} steps", tune.len()));
    let tuned: Vec<RunScore> =
        tune.par_iter().map(|&(t, l, s)| run(t, l, s, TUNING_SEED, steps, "tune")).collect::<Result<_>>()?;
    let best: Vec<(&Task, Learner, Setting)> = pairs
        .iter()
        .map(|&(t, l)| {
            let mine = tuned.iter().filter(|r| r.task == t.name && r.delay == t.delay && r.learner == l.name());
            let top = mine.min_by(|x, y| key(x).total_cmp(&key(y))).expect("a grid is never empty");
            (t, l, Setting { a: top.a, b: top.b })
        })
        .collect();
    let reference = tasks.iter().map(|t| (t, Learner::RepeatInput, Setting { a: 0.0, b: 0.0 }));
    let eval: Vec<(&Task, Learner, Setting, u64)> = best
        .iter()
        .copied()
        .chain(reference)
        .flat_map(|(t, l, s)| (1..=seeds).map(move |seed| (t, l, s, seed)))
        .collect();
    progress(&format!("scoring: {} runs", eval.len()));
    let scored: Vec<RunScore> =
        eval.par_iter().map(|&(t, l, s, seed)| run(t, l, s, seed, steps, "eval")).collect::<Result<_>>()?;
    Ok(tuned.into_iter().chain(scored).collect())
}

/// The tuning key: a diverged or undefined score ranks last.
fn key(r: &RunScore) -> f64 {
    r.nmse_first.unwrap_or(f64::INFINITY)
}

/// Mean and sample standard deviation of the finite values, and how many were not.
fn spread(v: impl Iterator<Item = Option<f64>>) -> (f64, f64, usize) {
    let (mut ok, mut bad) = (Vec::new(), 0);
    for x in v {
        match x {
            Some(x) if x.is_finite() => ok.push(x),
            _ => bad += 1,
        }
    }
    let n = ok.len() as f64;
    let mean = ok.iter().sum::<f64>() / n;
    let sd = if ok.len() > 1 { (ok.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() } else { 0.0 };
    (mean, sd, bad)
}

fn label(task: &str, delay: Option<i64>) -> String {
    delay.map_or(task.to_string(), |d| format!("{task} D={d}"))
}

/// The markdown table of the evaluation runs: per task and learner, the tuned setting, the
/// mean ± standard deviation over seeds of both NMSEs, memory and work.
pub fn table(runs: &[RunScore]) -> String {
    let mut s = String::from(
        "| task | learner | tuned (q, theta / lr, momentum) | NMSE, first step of each hold | NMSE, every step | \
         learning state | multiply-adds per step |\n|---|---|---|---|---|---|---|\n",
    );
    let mut keys: Vec<(String, Option<i64>, String)> = Vec::new();
    for r in runs.iter().filter(|r| r.phase == "eval") {
        let k = (r.task.clone(), r.delay, r.learner.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Each task's rows together, the reference after its learners.
    let mut tasks: Vec<(String, Option<i64>)> = Vec::new();
    for (t, d, _) in &keys {
        if !tasks.contains(&(t.clone(), *d)) {
            tasks.push((t.clone(), *d));
        }
    }
    keys.sort_by_key(|(t, d, _)| tasks.iter().position(|x| x.0 == *t && x.1 == *d));
    for (task, delay, learner) in keys {
        let mine: Vec<&RunScore> = runs
            .iter()
            .filter(|r| r.phase == "eval" && r.task == task && r.delay == delay && r.learner == learner)
            .collect();
        let (m1, s1, bad) = spread(mine.iter().map(|r| r.nmse_first));
        let (m2, s2, _) = spread(mine.iter().map(|r| r.nmse_all));
        let diverged = if bad > 0 { format!(" ({bad} of {} diverged)", mine.len()) } else { String::new() };
        let r0 = mine[0];
        let tuned = if learner == Learner::RepeatInput.name() { "-".into() } else { format!("{}, {}", r0.a, r0.b) };
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} ± {:.4}{} | {:.4} ± {:.4} | {} B | {:.0} |\n",
            label(&task, delay),
            learner,
            tuned,
            m1,
            s1,
            diverged,
            m2,
            s2,
            r0.memory_bytes,
            r0.ops_per_step
        ));
    }
    s
}

/// Writes `results.csv` (every run), `results.md` (the table), `over-time.png` (the
/// prediction score over time on the first prediction task, seed 1, per learner) and
/// `recall.png` (the recall score against the delay, per learner) into `out`; returns the
/// table.
pub fn write(runs: &[RunScore], out: &Path) -> Result<String> {
    let io = |p: &Path, source| Error::Io { path: p.display().to_string(), source };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut csv =
        String::from("task,delay,learner,phase,seed,a,b,nmse_first,nmse_all,memory_bytes,ops_per_step,seconds\n");
    let num = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in runs {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{:.3}\n",
            r.task,
            r.delay.map_or(String::new(), |d| d.to_string()),
            r.learner,
            r.phase,
            r.seed,
            r.a,
            r.b,
            num(r.nmse_first),
            num(r.nmse_all),
            r.memory_bytes,
            r.ops_per_step,
            r.seconds
        ));
    }
    let path = out.join("results.csv");
    crate::output::write_atomic(&path, csv.as_bytes())?;
    let table = table(runs);
    let path = out.join("results.md");
    let mut f = std::fs::File::create(&path).map_err(|e| io(&path, e))?;
    f.write_all(table.as_bytes()).map_err(|e| io(&path, e))?;

    // The recall curve: mean first-step NMSE over the seeds against the delay.
    let names: Vec<String> = Learner::ALL.iter().chain([&Learner::RepeatInput]).map(|l| l.name()).collect();
    let mut delays: Vec<i64> = runs.iter().filter(|r| r.phase == "eval").filter_map(|r| r.delay).collect();
    delays.sort_unstable();
    delays.dedup();
    let mut curves: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for name in &names {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for &d in &delays {
            let (m, _, bad) = spread(
                runs.iter()
                    .filter(|r| r.phase == "eval" && r.delay == Some(d) && &r.learner == name)
                    .map(|r| r.nmse_first),
            );
            if bad == 0 && m.is_finite() {
                x.push(d as f64);
                y.push(m);
            }
        }
        if !x.is_empty() {
            curves.push((name.clone(), x, y));
        }
    }
    // The prediction score over time on the first prediction task, evaluation seed 1.
    let over_time: Vec<(String, Vec<f64>, Vec<f64>)> = names
        .iter()
        .filter_map(|name| {
            let r =
                runs.iter().find(|r| r.phase == "eval" && r.seed == 1 && r.delay.is_none() && &r.learner == name)?;
            let (x, y): (Vec<f64>, Vec<f64>) = r
                .curve
                .iter()
                .enumerate()
                .filter_map(|(k, v)| v.map(|v| ((k + 1) as f64 / r.curve.len() as f64, v)))
                .unzip();
            (!x.is_empty()).then(|| (name.clone(), x, y))
        })
        .collect();
    if let Some(task) = runs.iter().find(|r| r.phase == "eval" && r.delay.is_none()).map(|r| r.task.clone()) {
        let title = format!("{task}, seed 1: NMSE at the first step of each hold, per twentieth of the run");
        line_plot(
            &out.join("over-time.png"),
            &LinePlot {
                title: &title,
                x_label: "fraction of the run",
                y_label: "NMSE (log)",
                series: over_time.iter().map(|(n, x, y)| Series::new(n, x, y)).collect(),
                log_y: true,
                ..Default::default()
            },
        )?;
    }
    if !curves.is_empty() {
        line_plot(
            &out.join("recall.png"),
            &LinePlot {
                title: "Delayed recall: NMSE at the first step of each hold (mean over seeds)",
                x_label: "delay D (samples)",
                y_label: "NMSE (1 = guessing the mean)",
                series: curves.iter().map(|(n, x, y)| Series::new(n, x, y)).collect(),
                log_x: true,
                ..Default::default()
            },
        )?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_learner_gets_a_grid_of_the_same_size() {
        for quick in [false, true] {
            let sizes: Vec<usize> = Learner::ALL.iter().map(|&l| grid(l, quick).len()).collect();
            assert!(sizes.iter().all(|&s| s == sizes[0]), "{sizes:?}");
        }
        assert_eq!(grid(Learner::Local, false).len(), 8);
    }

    #[test]
    fn the_tasks_are_the_files_with_recall_at_each_delay_and_seeds_reach_network_and_stream() {
        let tasks = tasks(&[1, 7]).unwrap();
        let names: Vec<String> = tasks.iter().map(|t| label(t.name, t.delay)).collect();
        assert_eq!(names, ["mackey-glass", "patched-cosines", "delayed-recall D=1", "delayed-recall D=7"]);
        assert_eq!(tasks[3].exp.target, SignalConfig::ShiftedInput { shift: -7 });
        let e = seeded(&tasks[0].exp, 42);
        assert_eq!(e.network.seed, 42);
        assert!(matches!(e.input, Some(SignalConfig::Sequence { seed: 42, .. })));
    }

    #[test]
    fn the_first_step_score_takes_only_each_holds_first_step_of_the_second_half() {
        let tasks = tasks(&[]).unwrap();
        let mut s = Score::new(&tasks[0].exp, 100); // hold 10: steps 50, 60, 70, 80, 90
        for step in 0..100u64 {
            // Right at each hold's first step, wrong by 1 elsewhere; the target varies.
            let z = (step / 10) as f64;
            s.add(step, if step % 10 == 0 { z } else { z + 1.0 }, z);
        }
        assert_eq!(s.first.value(), Some(0.0));
        // Every step of the second half: 45 errors of 1 over 50 steps; the target's variance is 2.
        assert!((s.all.value().unwrap() - (45.0 / 50.0) / 2.0).abs() < 1e-12, "{:?}", s.all.value());
    }

    #[test]
    fn a_short_comparison_scores_every_learner_and_writes_its_files() {
        let mut tasks = tasks(&[2]).unwrap();
        tasks.remove(1); // patched cosines may hold a constant patch over so short a run
        let runs = compare(&tasks, 2, 600, true, |_| {}).unwrap();
        // 2 tasks x 6 learners: one tuning run each, then 2 seeds each, and the reference.
        assert_eq!(runs.iter().filter(|r| r.phase == "tune").count(), 12);
        assert_eq!(runs.iter().filter(|r| r.phase == "eval").count(), 28);
        assert!(runs.iter().all(|r| r.seed != TUNING_SEED || r.phase == "tune"));
        let local = runs.iter().find(|r| r.learner == "local" && r.phase == "eval").unwrap();
        assert!(local.nmse_first.is_some_and(f64::is_finite), "{local:?}");
        let dir = std::env::temp_dir().join(format!("localprop-sequence-{}", std::process::id()));
        let table = write(&runs, &dir).unwrap();
        assert!(table.contains("| delayed-recall D=2 | rtrl |"), "{table}");
        let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 40);
        // Repeating the input for the sample 2 back: independent values of equal spread, NMSE about 2.
        let repeat = runs.iter().find(|r| r.learner == "repeat input" && r.delay == Some(2)).unwrap();
        assert!((1.2..2.8).contains(&repeat.nmse_first.unwrap()), "{repeat:?}");
        assert!(dir.join("recall.png").exists() && dir.join("over-time.png").exists());
        assert_eq!(local.curve.len(), WINDOWS as usize);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
