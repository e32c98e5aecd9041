//! Running an experiment file end to end: check everything, run, score, and write the
//! outputs (`trace.csv`, `summary.json`, `checkpoint.safetensors`, plots) into one folder.
//! The `localprop` command line is a thin layer over [`run`] and [`resume`].

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::baseline::{SgdMomentum, pass_order, train_prequential};
use crate::config::{Experiment, Interval, MaskConfig, PreparedData, SignalConfig, rekey};
use crate::output::{
    Diverged, PassSummary, RecurrentSummary, ReplicaSummary, Summary, TraceColumns, TraceFile, write_atomic,
};
use crate::plot::{self, Heatmap, LinePlot, Series};
use crate::recurrent::RecurrentLearner;
use crate::shard::{SHARD_KEY, Shard, ShardSummary};
use localprop::checkpoint::{self, Checkpoint};
use localprop::engine::{Backend, Divergence, Engine, Flow, OnDivergence};
use localprop::error::{Error, Result};
use localprop::network::Network;
use localprop::params::{Params, Policy, Speed, decimal};
use localprop::signal::Order;
use localprop::state::State;
use localprop::state::Trace;

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
    /// Set (by a signal handler, say) to end the run early: the current block finishes,
    /// then the checkpoint, trace, plots and a summary marked `interrupted` are written.
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Run only this shard of the sweep's replicas (`--shard K/N`; see [`crate::shard`]).
    pub shard: Option<Shard>,
}

/// The names of the files a run writes, for the summary and the docs.
pub const TRACE_FILE: &str = "trace.csv";
/// See [`TRACE_FILE`].
pub const SUMMARY_FILE: &str = "summary.json";
/// See [`TRACE_FILE`].
pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Checks an experiment file completely, data included, without running it; returns the
/// experiment, its total steps, its replica count and the kernel families of its network.
pub fn check(path: &Path) -> Result<Checked> {
    let exp = Experiment::load(path)?;
    let file = path.display().to_string();
    let net = exp.network()?;
    let data = exp.load_data(&file, &net)?;
    let replicas = exp.replica_params(&net).map_err(|e| rekey(e, &file, "params"))?.len();
    let plan = localprop::plan::Plan::new(&net, replicas, 0).0;
    let (kernels, kernels_gpu) = (plan.describe(true, false), plan.describe(true, true));
    let auto = localprop::engine::AutoWork::of(&net, replicas);
    let steps = exp.total_steps(data.as_ref())?;
    exp.check_memory(&file, Some(steps))?;
    Ok(Checked { steps, exp, replicas, kernels, kernels_gpu, auto })
}

/// What [`check`] found in an experiment file.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The experiment.
    pub exp: Experiment,
    /// Steps a run takes.
    pub steps: u64,
    /// Replicas.
    pub replicas: usize,
    /// The kernel family of each block of synapses on the CPU ([`localprop::plan::Plan::describe`]).
    pub kernels: String,
    /// The same on a GPU.
    pub kernels_gpu: String,
    /// What `--backend auto` weighs on a real GPU.
    pub auto: localprop::engine::AutoWork,
}

/// The folder a run of the experiment file at `path` writes into unless told otherwise:
/// `out/` and the experiment's `name`, or the file's stem when it has none; a shard's run
/// (`--shard K/N`) writes into its `shard-K-of-N` subfolder.
pub fn default_out(path: &Path, exp: &Experiment, shard: Option<Shard>) -> PathBuf {
    let name = if exp.name.is_empty() {
        path.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned())
    } else {
        exp.name.clone()
    };
    let whole = PathBuf::from("out").join(name);
    match shard {
        Some(s) => whole.join(format!("shard-{}-of-{}", s.index, s.count)),
        None => whole,
    }
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
    execute(exp, &path.display().to_string(), None, opts, opts.shard)
}

/// Continues the run saved in a checkpoint, for `opts.steps` steps (default: the
/// configuration's length), with the configuration stored in it.
pub fn resume(checkpoint_path: &Path, opts: &RunOptions) -> Result<Summary> {
    let ckpt = checkpoint::load(checkpoint_path)?;
    let file = checkpoint_path.display().to_string();
    // The run clears its folder's run files first: never the checkpoint it continues.
    let folder = |p: &Path| std::fs::canonicalize(p).ok();
    let dir = checkpoint_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if folder(dir).is_some_and(|d| Some(d) == folder(&opts.out)) {
        return Err(Error::param(
            "--out",
            opts.out.display(),
            "another folder than the checkpoint's: a run replaces its folder's checkpoint",
        ));
    }
    let mut exp = Experiment::from_json(&ckpt.config_json, &file)?;
    if let Some(steps) = opts.steps {
        exp.run.steps = Some(steps);
        exp.run.passes = None;
    }
    // A shard's checkpoint continues that shard.
    let shard = match ckpt.metadata.get(SHARD_KEY) {
        Some(text) => Some(
            text.parse::<Shard>()
                .map_err(|e| Error::Data { path: file.clone(), message: format!("metadata `{SHARD_KEY}`: {e}") })?,
        ),
        None => None,
    };
    if opts.shard.is_some_and(|s| Some(s) != shard) {
        return Err(Error::param("--shard", "given", "not used by resume: a shard's checkpoint continues its shard"));
    }
    execute(exp, &file, Some(ckpt), opts, shard)
}

/// Every file a run may write into its folder.
pub const RUN_FILES: [&str; 8] =
    [SUMMARY_FILE, CHECKPOINT_FILE, TRACE_FILE, "output.png", "loss.png", "energy.png", "accuracy.png", "sweep.png"];

/// Creates the output folder, or empties it of a previous run's files (complete, or killed
/// before its summary) and of their temporaries, so that the folder never holds two runs'
/// files. The summary goes first: a folder being cleared is never taken for a complete
/// run. Files of other names are left alone.
pub(crate) fn prepare_folder(out: &Path) -> Result<()> {
    let io = |path: &Path, source| Error::Io { path: path.display().to_string(), source };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    for name in RUN_FILES {
        for path in [out.join(name), out.join(format!("{name}.tmp"))] {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path, e)),
                _ => {}
            }
        }
    }
    Ok(())
}

pub(crate) fn refuse_existing(out: &Path, force: bool) -> Result<()> {
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

fn execute(
    exp: Experiment,
    file: &str,
    from: Option<Checkpoint>,
    opts: &RunOptions,
    shard: Option<Shard>,
) -> Result<Summary> {
    // Everything is checked before anything is written.
    refuse_existing(&opts.out, opts.force)?;
    let net = exp.network().map_err(|e| rekey(e, file, "network"))?;
    let data = exp.load_data(file, &net)?;
    let all = exp.replica_params(&net).map_err(|e| rekey(e, file, "params"))?;
    let range = shard.map_or(Ok(0..all.len()), |s| s.replicas(all.len()))?;
    let params = all[range.clone()].to_vec();
    let steps = exp.total_steps(data.as_ref())?;
    if steps == 0 {
        return Err(Error::param("--steps", 0, "at least 1"));
    }
    exp.check_memory(file, Some(steps))?;
    let backend = opts.backend.unwrap_or(exp.run.backend);
    let mut engine = Engine::with_backend(net.clone(), params.clone(), backend)?;
    engine.set_block_steps(exp.run.block_steps)?;
    engine.set_record_every(exp.run.record_every)?;
    // A replica that diverges is frozen and reported; the others go on.
    engine.set_on_divergence(OnDivergence::Continue);
    let mut frozen = Frozen::default();
    if let Some(ckpt) = from {
        let t = ckpt.t;
        check_same_data(&ckpt, data.as_ref(), file)?;
        let diverged = Frozen::listed(&ckpt, file)?;
        // The checkpoint's weights in this network's order (a version-1 file's are permuted).
        engine.set_state(&ckpt.into_state_for(&net)?)?;
        check_resumable(&engine, t, steps, file)?;
        frozen.resume(&mut engine, diverged)?;
    }
    let mut streams = exp.streams(params.len(), data.as_ref())?;
    prepare_folder(&opts.out)?;

    // The folder is resumable from the start: a checkpoint of the first state, replaced
    // every `run.checkpoint_every` and at the end.
    let checkpoint_path = opts.out.join(CHECKPOINT_FILE);
    let save = |engine: &mut Engine, frozen: &Frozen| -> Result<()> {
        let mut state = engine.state()?;
        frozen.put(&mut state);
        let ckpt = Checkpoint {
            t: engine.time(),
            n: net.n(),
            blocks: Checkpoint::blocks_of(&net),
            config_json: exp.to_json(),
            metadata: run_metadata(frozen, data.as_ref(), shard),
            state,
        };
        checkpoint::save(&checkpoint_path, &ckpt)
    };
    save(&mut engine, &frozen)?;

    let every = exp.run.checkpoint_every.interval().map_err(|m| Error::param("run.checkpoint_every", "", m))?;
    let bar = progress_bar(steps, opts.quiet);
    let start = Instant::now();
    let first_step = engine.step();
    // The trace goes to disk block by block; the scores and the plots' rows are taken as it goes.
    let mut trace = {
        let columns = TraceColumns {
            masks: exp.mask.is_some(),
            sign_per_replica: matches!(params[0].policy, Policy::HsfBall { .. }),
            first_replica: range.start,
            prefix: all.len() > 1,
        };
        TraceFile::create(&opts.out.join(TRACE_FILE), params.len(), net.outputs().len(), columns)?
    };
    let mut scores = Scores::new(&exp, data.as_ref(), params.len(), net.outputs().len(), first_step, steps);
    let (mut done, mut saved_at, mut interrupted) = (0u64, Instant::now(), false);
    let stop = || opts.stop.as_ref().is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed));
    let mut all_diverged = engine.diverged().iter().all(Option::is_some);
    while done < steps && !interrupted && !all_diverged {
        // A segment ends at the next step-count checkpoint, or after about 64 blocks when
        // the interval is a time (the clock is read between segments).
        let segment = match every {
            Interval::Steps(k) => k,
            Interval::Seconds(_) => (exp.run.block_steps as u64).saturating_mul(64),
        }
        .min(steps - done);
        let ran = engine.run_blocks(segment, &mut streams, |d, part| {
            trace.append(part)?;
            scores.add(part);
            bar.set_position(done + d);
            Ok(if stop() { Flow::Stop } else { Flow::Continue })
        })?;
        done += ran;
        // Before any checkpoint is replaced: the replicas that diverged since the last one
        // take their state from it.
        frozen.freeze_new(&engine, &checkpoint_path, &net, &params, &bar)?;
        all_diverged = engine.diverged().iter().all(Option::is_some);
        interrupted = !all_diverged && (ran < segment || (stop() && done < steps));
        let due = match every {
            Interval::Steps(_) => true,
            Interval::Seconds(s) => saved_at.elapsed().as_secs_f64() >= s,
        };
        if done < steps && due && !interrupted && !all_diverged {
            save(&mut engine, &frozen)?;
            saved_at = Instant::now();
        }
    }
    let (planned_steps, steps) = (steps, done);
    let wall = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    // What the run computed, most valuable first: the checkpoint (the run can go on from
    // it), the trace, then what is derived from them; the summary last, so that a folder
    // with a summary holds a complete run. When every replica diverged, the checkpoint on
    // disk stays the last one written, the last with a replica that was still finite.
    if !all_diverged {
        save(&mut engine, &frozen)?;
    }
    let plot_rows = trace.thinned().clone();
    trace.finish()?;

    let mut replicas = Vec::new();
    for (r, p) in params.iter().enumerate() {
        let mut summary = scores.summary(r, p);
        // Numbered among the sweep's replicas (a shard's start at its first).
        summary.replica = range.start + r;
        summary.diverged = frozen.get(r).map(|f| Diverged { replica: range.start + r, ..f.diverged.clone() });
        replicas.push(summary);
    }
    // Per-sample outcomes of replica 0 and of the baseline, for the running-accuracy plot.
    let mut outcomes: Vec<(&str, Outcomes)> = Vec::new();
    let mut baseline = None;
    if let Some(pd) = data.as_ref().filter(|_| matches!(exp.target, SignalConfig::Data)) {
        outcomes.push(("local propagation", std::mem::take(&mut scores.outcomes)));
        // The baseline has no checkpoint: it runs with fresh runs only, never on a resumed tail.
        if let Some(b) = exp.baseline.as_ref().filter(|b| first_step == 0 && b.method().is_none()) {
            let scored = scored_samples(&exp, pd.dataset.rows() as u64, first_step, steps);
            let opt = SgdMomentum { lr: b.lr, momentum: b.momentum };
            let (passes, per_sample) = run_baseline(&net, &params[0], pd, opt, &scored)?;
            baseline = Some(passes);
            outcomes.push(("backprop, SGD + momentum", per_sample));
        }
    }
    // A recurrent baseline, on replica 0's stream, for fresh runs that reached their end.
    let recurrent_baseline = match exp.baseline.as_ref() {
        Some(b) if b.method().is_some() && first_step == 0 && !interrupted => {
            Some(run_recurrent_baseline(&exp, &net, &params[0], b, data.as_ref(), steps)?)
        }
        _ => None,
    };

    let mut files = vec![TRACE_FILE.to_string(), SUMMARY_FILE.to_string(), CHECKPOINT_FILE.to_string()];
    files.extend(write_plots(&exp, &plot_rows, &replicas, &outcomes, &opts.out)?);
    let adapter = engine.backend_description().strip_prefix("gpu: ").map(str::to_string);
    let summary = Summary {
        name: exp.name.clone(),
        backend: engine.backend().name().to_string(),
        adapter,
        backend_reason: engine.backend_reason().to_string(),
        last_recorded_step: scores.last_step,
        first_step,
        steps,
        planned_steps,
        wall_seconds: wall,
        steps_per_second: steps as f64 / wall.max(1e-12),
        replicas,
        baseline,
        recurrent_baseline,
        files,
        interrupted,
        shard: shard.map(|shard| ShardSummary { shard, replicas: [range.start, range.end] }),
        config: serde_json::from_str(&exp.to_json()).expect("valid JSON"),
    };
    let json = serde_json::to_string_pretty(&summary).expect("a summary always serialises");
    write_atomic(&opts.out.join(SUMMARY_FILE), json.as_bytes())?;
    Ok(summary)
}

/// The checkpoint metadata entry that lists the diverged replicas ([`Diverged`], as JSON).
pub const DIVERGED_KEY: &str = "diverged";

/// The replicas of a run that diverged, each frozen with the state of its last finite
/// checkpoint: every checkpoint written after stores that state for it (the engine's own
/// values for it are NaN), and lists it in its `diverged` entry.
#[derive(Default)]
struct Frozen {
    replicas: std::collections::BTreeMap<usize, FrozenReplica>,
}

struct FrozenReplica {
    diverged: Diverged,
    /// `x`, `p`, `w`, `pw` of the replica.
    state: [Vec<f32>; 4],
}

/// Replica `r`'s ranges of `x`, `p`, `w`, `pw` in a state.
fn replica_ranges(s: &State, r: usize) -> [std::ops::Range<usize>; 4] {
    let (n, e) = (s.x.len() / s.replicas, s.w.len() / s.replicas);
    [r * n..(r + 1) * n, r * n..(r + 1) * n, r * e..(r + 1) * e, r * e..(r + 1) * e]
}

impl Frozen {
    fn get(&self, r: usize) -> Option<&FrozenReplica> {
        self.replicas.get(&r)
    }

    /// The `diverged` entry of a checkpoint, checked against it.
    fn listed(ckpt: &Checkpoint, file: &str) -> Result<Vec<Diverged>> {
        let Some(text) = ckpt.metadata.get(DIVERGED_KEY) else { return Ok(Vec::new()) };
        let bad =
            |m: String| Error::Data { path: file.to_string(), message: format!("metadata `{DIVERGED_KEY}`: {m}") };
        let list: Vec<Diverged> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let step = ckpt.state.step;
        for d in &list {
            if d.replica >= ckpt.state.replicas || d.step > step || d.state_step > d.step {
                return Err(bad(format!(
                    "replica {} diverged at step {} with its state of step {} does not fit {} replicas at step {step}",
                    d.replica, d.step, d.state_step, ckpt.state.replicas
                )));
            }
            if Divergence::from_text(d.step, &d.quantity, &d.value).is_none() {
                return Err(bad(format!(
                    "quantity `{}` with value `{}`: want one of {:?} with NaN, inf or -inf",
                    d.quantity,
                    d.value,
                    Divergence::QUANTITIES
                )));
            }
        }
        Ok(list)
    }

    /// Marks the replicas a resumed checkpoint lists; the checkpoint's state for them, now
    /// the engine's, is their frozen state.
    fn resume(&mut self, engine: &mut Engine, list: Vec<Diverged>) -> Result<()> {
        if list.is_empty() {
            return Ok(());
        }
        let state = engine.state()?;
        for d in list {
            engine.set_diverged(d.replica, Divergence::from_text(d.step, &d.quantity, &d.value))?;
            let replica = FrozenReplica::of(&state, d);
            self.replicas.insert(replica.diverged.replica, replica);
        }
        Ok(())
    }

    /// Freezes the replicas that diverged since the last checkpoint, with their state in it
    /// (each was finite there: a checkpoint holds only finite values), and reports them.
    fn freeze_new(
        &mut self,
        engine: &Engine,
        checkpoint_path: &Path,
        net: &Network,
        params: &[Params],
        bar: &indicatif::ProgressBar,
    ) -> Result<()> {
        let new: Vec<(usize, Divergence)> = (engine.diverged().iter().enumerate())
            .filter_map(|(r, d)| d.filter(|_| !self.replicas.contains_key(&r)).map(|d| (r, d)))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let last = checkpoint::load(checkpoint_path)?;
        let state = last.state_for(net)?;
        let alive = engine.diverged().iter().filter(|d| d.is_none()).count();
        const SHOWN: usize = 8;
        for (k, &(r, d)) in new.iter().enumerate() {
            let value = d.value_text();
            let diverged = Diverged {
                replica: r,
                step: d.step,
                quantity: d.quantity.to_string(),
                value: value.to_string(),
                state_step: state.step,
            };
            if k < SHOWN {
                bar.suspend(|| {
                    let others = match alive {
                        0 => "no replica goes on".to_string(),
                        1 => "1 replica goes on".to_string(),
                        k => format!("{k} replicas go on"),
                    };
                    eprintln!(
                        "replica {r} ({}) diverged at step {}: {} is {value}; frozen at its checkpoint of step {}, {others}",
                        describe_params(&params[r]),
                        d.step,
                        d.quantity,
                        state.step,
                    )
                });
            }
            self.replicas.insert(r, FrozenReplica::of(&state, diverged));
        }
        if new.len() > SHOWN {
            bar.suspend(|| eprintln!("... {} more replicas diverged (summary.json lists them)", new.len() - SHOWN));
        }
        Ok(())
    }

    /// Writes the frozen replicas' states into `state`.
    fn put(&self, state: &mut State) {
        for (&r, f) in &self.replicas {
            let [x, p, w, pw] = replica_ranges(state, r);
            state.x[x].copy_from_slice(&f.state[0]);
            state.p[p].copy_from_slice(&f.state[1]);
            state.w[w].copy_from_slice(&f.state[2]);
            state.pw[pw].copy_from_slice(&f.state[3]);
        }
    }
}

/// The checkpoint metadata entry with the CRC-32 of the data set's text
/// ([`crate::data::Dataset::text_crc32`]), as `crc32:` and 8 hex digits.
pub const DATA_CRC_KEY: &str = "data_crc32";

/// What a run adds to its checkpoints' metadata: the `diverged` list, when a replica
/// diverged, and the data set's CRC-32, when there is one.
fn run_metadata(
    frozen: &Frozen,
    data: Option<&PreparedData>,
    shard: Option<Shard>,
) -> std::collections::BTreeMap<String, String> {
    let mut meta = std::collections::BTreeMap::new();
    if let Some(shard) = shard {
        meta.insert(SHARD_KEY.to_string(), shard.to_string());
    }
    if !frozen.replicas.is_empty() {
        let list: Vec<&Diverged> = frozen.replicas.values().map(|f| &f.diverged).collect();
        meta.insert(DIVERGED_KEY.to_string(), serde_json::to_string(&list).expect("a list of records serialises"));
    }
    if let Some(d) = data {
        meta.insert(DATA_CRC_KEY.to_string(), format!("crc32:{:08x}", d.dataset.text_crc32));
    }
    meta
}

/// A resumed run must read the data its checkpoint was written with: the same text, by
/// CRC-32 (a checkpoint without the entry, from before it, is not checked).
fn check_same_data(ckpt: &Checkpoint, data: Option<&PreparedData>, file: &str) -> Result<()> {
    let (Some(want), Some(d)) = (ckpt.metadata.get(DATA_CRC_KEY), data) else { return Ok(()) };
    let got = format!("crc32:{:08x}", d.dataset.text_crc32);
    if *want != got {
        return Err(Error::Data {
            path: d.dataset.path.clone(),
            message: format!(
                "its text gives {got}, but checkpoint {file} was written with data giving {want}: the data changed \
                 since, and resuming would feed other samples than the run saw"
            ),
        });
    }
    Ok(())
}

impl FrozenReplica {
    fn of(state: &State, diverged: Diverged) -> Self {
        let [x, p, w, pw] = replica_ranges(state, diverged.replica);
        let state = [state.x[x].to_vec(), state.p[p].to_vec(), state.w[w].to_vec(), state.pw[pw].to_vec()];
        FrozenReplica { diverged, state }
    }
}

/// A replica's parameters as the terminal shows them: `q = 1, r = 0.1, ...`.
fn describe_params(p: &Params) -> String {
    let mut s =
        format!("q = {}, r = {}, r_w = {}, theta = {}", decimal(p.q), decimal(p.r), decimal(p.r_w), decimal(p.theta));
    if let Speed::Global(c) = p.c {
        s.push_str(&format!(", c = {}", decimal(c)));
    }
    s
}

/// A checkpoint's time `t` must be the engine's clock at its step (`step x tau`), and the
/// run must not count past `u64::MAX` steps.
fn check_resumable(engine: &Engine, t: f64, steps: u64, file: &str) -> Result<()> {
    let step = engine.step();
    if step.checked_add(steps).is_none() {
        return Err(Error::param(
            "--steps",
            steps,
            format!("the checkpoint is at step {step}; the run would pass the last step count, {}", u64::MAX),
        ));
    }
    let want = engine.time();
    if (t - want).abs() > 1e-9 * want.abs().max(1.0) {
        return Err(Error::Data {
            path: file.to_string(),
            message: format!(
                "metadata `t` = {t:?} does not match step {step} x tau {} = {want:?}; the file was edited or is damaged",
                decimal(engine.params()[0].tau)
            ),
        });
    }
    Ok(())
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

/// Each replica's results, accumulated from the trace's blocks as they come (memory flat in
/// the run's length, but for one outcome per scored data sample of replica 0, for the
/// accuracy plot): the last recorded values, the mean loss, the NMSE over the second half
/// of the rows the run was to record, the prequential accuracy per pass.
struct Scores {
    /// Rows from which the NMSE is taken: half the rows the run was to record.
    half: usize,
    /// Whether there is an NMSE (tracking runs of at least 2 planned rows).
    nmse: bool,
    rows: usize,
    last_step: Option<u64>,
    replicas: Vec<Score>,
    /// Classification runs: the samples to score, the next one, their labels.
    samples: Option<(std::iter::Peekable<Samples>, Vec<usize>)>,
    /// Replica 0's outcomes, for the accuracy plot.
    outcomes: Outcomes,
}

#[derive(Clone, Default)]
struct Score {
    last: [f32; 3],
    loss_sum: f64,
    /// Per output, over the second half of the rows.
    moments: Vec<Nmse>,
    passes: Vec<PassSummary>,
}

impl Scores {
    fn new(
        exp: &Experiment,
        data: Option<&PreparedData>,
        replicas: usize,
        n_out: usize,
        first_step: u64,
        steps: u64,
    ) -> Self {
        // Recorded steps in first_step..first_step + steps: the multiples of `every`.
        let every = exp.run.record_every;
        let planned = planned_rows(first_step, steps, every);
        let classification = matches!(exp.target, SignalConfig::Data);
        let samples = data.filter(|_| classification).map(|pd| {
            let labels = pd.dataset.labels.clone();
            (Samples::new(exp, pd.dataset.rows() as u64, first_step).peekable(), labels)
        });
        Scores {
            half: (planned / 2) as usize,
            nmse: !classification && planned >= 2,
            rows: 0,
            last_step: None,
            replicas: vec![
                Score { last: [f32::NAN; 3], moments: vec![Nmse::default(); n_out], ..Score::default() };
                replicas
            ],
            samples,
            outcomes: Vec::new(),
        }
    }

    fn add(&mut self, part: &Trace) {
        let (reps, no) = (part.replicas, part.n_out);
        for k in 0..part.rows() {
            for (r, sc) in self.replicas.iter_mut().enumerate() {
                let at = k * reps + r;
                sc.last = [part.loss[at], part.lagrangian[at], part.hamiltonian[at]];
                sc.loss_sum += part.loss[at] as f64;
                if self.nmse && self.rows >= self.half {
                    for (o, m) in sc.moments.iter_mut().enumerate() {
                        m.add(part.outputs[at * no + o] as f64, part.targets[at * no + o] as f64);
                    }
                }
            }
            if let Some((samples, labels)) = &mut self.samples {
                let step = part.step[k];
                // Samples whose step was not recorded are not scored.
                while samples.next_if(|s| s.2 < step).is_some() {}
                if let Some((pass, row, _)) = samples.next_if(|s| s.2 == step) {
                    for (r, sc) in self.replicas.iter_mut().enumerate() {
                        let outs = &part.outputs[(k * reps + r) * no..][..no];
                        // A diverged replica's NaN outputs predict nothing.
                        let ok = outs.iter().all(|v| v.is_finite()) && argmax(outs) == labels[row];
                        add_outcome(&mut sc.passes, pass, ok);
                        if r == 0 {
                            self.outcomes.push((pass, ok));
                        }
                    }
                }
            }
            self.rows += 1;
            self.last_step = Some(part.step[k]);
        }
    }

    fn summary(&self, r: usize, p: &Params) -> ReplicaSummary {
        let sc = &self.replicas[r];
        let mut params = serde_json::json!({ "q": decimal(p.q), "r": decimal(p.r), "r_w": decimal(p.r_w), "theta": decimal(p.theta) });
        if let Speed::Global(c) = p.c {
            params["c"] = decimal(c).into();
        }
        let nmse = self.nmse.then(|| sc.moments.iter().map(Nmse::value).collect());
        ReplicaSummary {
            replica: r,
            params,
            final_loss: sc.last[0] as f64,
            mean_loss: if self.rows == 0 { f64::NAN } else { sc.loss_sum / self.rows as f64 },
            final_lagrangian: sc.last[1] as f64,
            final_hamiltonian: sc.last[2] as f64,
            nmse,
            accuracy: self.samples.as_ref().map(|_| sc.passes.clone()),
            diverged: None,
        }
    }
}

/// The rows a run of `steps` steps from `first_step` records: the multiples of `every` among
/// its steps.
fn planned_rows(first_step: u64, steps: u64, every: u64) -> u64 {
    (first_step.saturating_add(steps)).div_ceil(every) - first_step.div_ceil(every)
}

/// The normalised mean squared error of an output against its target over the pairs added:
/// the sum of squared errors over the target's sum of squared deviations from its mean
/// (Welford), i.e. MSE / variance.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Nmse {
    count: f64,
    mean: f64,
    deviations: f64,
    errors: f64,
}

impl Nmse {
    /// Adds an output `x` and its target `z`.
    pub fn add(&mut self, x: f64, z: f64) {
        self.count += 1.0;
        let d = z - self.mean;
        self.mean += d / self.count;
        self.deviations += d * (z - self.mean);
        self.errors += (x - z) * (x - z);
    }

    /// MSE / variance; `None` (undefined) for a constant target, none added, or a non-finite
    /// output.
    pub fn value(&self) -> Option<f64> {
        Some(self.errors / self.deviations).filter(|v| v.is_finite())
    }
}

/// Per-sample prequential outcomes in stream order: `(pass, predicted right)`.
type Outcomes = Vec<(u64, bool)>;

/// The data samples a run scores, in stream order, as `(pass, row, prediction step)`: the
/// sample held at each step `sample x hold`, predicted at `offset` steps into its hold
/// ([`predict_offset`]), from the first whose prediction step is at or after `first_step`.
/// The local rule and the baseline score the same samples.
struct Samples {
    rows: u64,
    hold: u64,
    offset: u64,
    sample: u64,
    first_step: u64,
    order: Order,
    pass: Option<(u64, Vec<usize>)>,
}

impl Samples {
    fn new(exp: &Experiment, rows: u64, first_step: u64) -> Self {
        let hold = exp.data.as_ref().map_or(1, |d| d.hold);
        Samples {
            rows,
            hold,
            offset: predict_offset(exp),
            sample: first_step / hold,
            first_step,
            order: exp.order(),
            pass: None,
        }
    }
}

impl Iterator for Samples {
    type Item = (u64, usize, u64);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (sample, step) = (self.sample, self.sample.checked_mul(self.hold)?.checked_add(self.offset)?);
            self.sample += 1;
            if step < self.first_step {
                continue;
            }
            let (pass, pos) = (sample / self.rows, (sample % self.rows) as usize);
            if self.pass.as_ref().is_none_or(|(p, _)| *p != pass) {
                self.pass = Some((pass, pass_order(self.rows as usize, self.order, pass)));
            }
            return Some((pass, self.pass.as_ref().map_or(pos, |(_, o)| o[pos]), step));
        }
    }
}

/// The samples scored in `steps` steps from `first_step` (for the baseline).
fn scored_samples(exp: &Experiment, rows: u64, first_step: u64, steps: u64) -> Vec<(u64, usize, u64)> {
    Samples::new(exp, rows, first_step).take_while(|s| s.2 < first_step + steps).collect()
}

/// Adds one outcome to the accuracy per pass.
fn add_outcome(list: &mut Vec<PassSummary>, pass: u64, ok: bool) {
    if list.last().is_none_or(|p| p.pass as u64 != pass) {
        list.push(PassSummary { pass: pass as usize, samples: 0, accuracy: 0.0 });
    }
    let p = list.last_mut().expect("just pushed");
    p.accuracy = (p.accuracy * p.samples as f64 + f64::from(u8::from(ok))) / (p.samples + 1) as f64;
    p.samples += 1;
}

/// Accuracy per pass from per-sample outcomes `(pass, correct)`.
fn per_pass(outcomes: impl IntoIterator<Item = (u64, bool)>) -> Vec<PassSummary> {
    let mut list = Vec::new();
    for (pass, ok) in outcomes {
        add_outcome(&mut list, pass, ok);
    }
    list
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

/// The backprop baseline on the same samples in the same order as the local rule saw them;
/// returns its accuracy per pass and its per-sample outcomes.
/// The recurrent baseline `b` over the run's `steps` on replica 0's stream, scored as
/// [`Scores`] scores the replicas (the same recorded steps and rows). A learner that stops on a
/// non-finite value is reported as diverged, with no NMSE; the local rule's results stand.
fn run_recurrent_baseline(
    exp: &Experiment,
    net: &Network,
    params: &Params,
    b: &crate::config::BaselineConfig,
    data: Option<&PreparedData>,
    steps: u64,
) -> Result<RecurrentSummary> {
    let method = b.method().expect("a recurrent baseline");
    let opt = SgdMomentum { lr: b.lr, momentum: b.momentum };
    let mut learner = RecurrentLearner::new(net, params, method, opt)?;
    let mut streams = exp.streams(1, data)?.pop().expect("one replica's streams");
    let every = exp.run.record_every;
    let planned = planned_rows(0, steps, every);
    let half = planned / 2;
    let mut nmse = vec![Nmse::default(); net.outputs().len()];
    let (mut loss_sum, mut rows) = (0.0, 0u64);
    let start = Instant::now();
    let ran = learner.run_each(&mut streams, steps, |step, outcome, z| {
        if step % every != 0 {
            return;
        }
        loss_sum += outcome.loss;
        if rows >= half {
            for (m, (&x, &z)) in nmse.iter_mut().zip(outcome.outputs.iter().zip(z)) {
                m.add(x, z as f64);
            }
        }
        rows += 1;
    });
    let diverged = match ran {
        Ok(()) => None,
        Err(e @ Error::Param { .. }) => Some(e.to_string()),
        Err(e) => return Err(e),
    };
    Ok(RecurrentSummary {
        kind: b.kind.name().to_string(),
        window: b.window,
        lr: decimal(b.lr),
        momentum: decimal(b.momentum),
        nmse: (diverged.is_none() && planned >= 2).then(|| nmse.iter().map(Nmse::value).collect()),
        mean_loss: if diverged.is_some() || rows == 0 { f64::NAN } else { loss_sum / rows as f64 },
        memory_bytes: learner.memory_bytes() as u64,
        momentum_bytes: learner.momentum_bytes() as u64,
        ops_per_step: learner.ops_per_step(),
        wall_seconds: start.elapsed().as_secs_f64(),
        diverged,
    })
}

fn run_baseline(
    net: &localprop::Network,
    p: &Params,
    pd: &PreparedData,
    opt: SgdMomentum,
    scored: &[(u64, usize, u64)],
) -> Result<(Vec<PassSummary>, Outcomes)> {
    let mut passes: Vec<u64> = Vec::new();
    let mut order: Vec<Vec<usize>> = Vec::new();
    for &(pass, row, _) in scored {
        if passes.last() != Some(&pass) {
            passes.push(pass);
            order.push(Vec::new());
        }
        order.last_mut().expect("just pushed").push(row);
    }
    if order.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let results = train_prequential(net, p.activation, &pd.dataset, &pd.targets, &order, opt)?;
    let passes = &passes;
    let outcomes: Outcomes = results.iter().flat_map(|r| r.correct.iter().map(move |&c| (passes[r.pass], c))).collect();
    Ok((per_pass(outcomes.iter().copied()), outcomes))
}

/// A linear plot against time `t`, 1200 x 600.
fn time_plot<'a>(title: &'a str, y_label: &'a str, series: Vec<Series<'a>>) -> LinePlot<'a> {
    LinePlot { title, x_label: "t", y_label, series, log_x: false, log_y: false, size: (1200, 600) }
}

fn write_plots(
    exp: &Experiment,
    trace: &Trace,
    replicas: &[ReplicaSummary],
    outcomes: &[(&str, Outcomes)],
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
    if !outcomes.is_empty() {
        // Running prequential accuracy: the mean over the last `window` samples.
        let window = 100usize;
        let curves: Vec<(&str, Vec<f64>, Vec<f64>)> = outcomes
            .iter()
            .map(|(name, o)| {
                let (mut xs, mut ys, mut hits) = (Vec::new(), Vec::new(), 0usize);
                for (k, &(_, ok)) in o.iter().enumerate() {
                    hits += usize::from(ok);
                    if k >= window {
                        hits -= usize::from(o[k - window].1);
                    }
                    if k + 1 >= window {
                        xs.push(k as f64 + 1.0);
                        ys.push(hits as f64 / window as f64);
                    }
                }
                (*name, xs, ys)
            })
            .collect();
        let series: Vec<Series> = curves.iter().map(|(name, x, y)| Series { name, x, y }).collect();
        if series.iter().all(|s| !s.x.is_empty()) {
            let title = format!("{}: prequential accuracy over the last {window} samples", exp.name);
            let plot = LinePlot {
                title: &title,
                x_label: "samples seen",
                y_label: "accuracy",
                series,
                log_x: false,
                log_y: false,
                size: (1200, 600),
            };
            plot::line_plot(&out.join("accuracy.png"), &plot)?;
            files.push("accuracy.png".into());
        }
    }
    if !classification {
        files.extend(sweep_plot(exp, replicas, out)?);
    }
    Ok(files)
}

/// `sweep.png`, the NMSE of output 0 over a sweep of one or two axes, from the replicas'
/// summaries (all of them, in order); `None` for any other run.
pub fn sweep_plot(exp: &Experiment, replicas: &[ReplicaSummary], out: &Path) -> Result<Option<String>> {
    let axes = exp.sweep_axes();
    // A shard's replicas are part of the grid: its merge draws it.
    let grid = axes.iter().map(|(_, v)| v.len()).product::<usize>();
    if !axes.is_empty() && axes.len() <= 2 && replicas.len() == grid {
        let (ya, xa) = match axes.len() {
            1 => (None, &axes[0]),
            _ => (Some(&axes[axes.len() - 2]), &axes[axes.len() - 1]),
        };
        let values: Vec<f64> =
            replicas.iter().map(|r| r.nmse.as_ref().and_then(|v| v[0]).unwrap_or(f64::NAN)).collect();
        let x_ticks: Vec<String> = xa.1.iter().map(|v| format!("{v}")).collect();
        let y_ticks: Vec<String> = ya.map_or(vec![String::new()], |a| a.1.iter().map(|v| format!("{v}")).collect());
        plot::heatmap(
            &out.join("sweep.png"),
            &Heatmap {
                title: &format!("{}: NMSE of output 0 over the sweep", exp.name),
                x_label: xa.0.name(),
                y_label: ya.map_or("", |a| a.0.name()),
                x_ticks: &x_ticks,
                y_ticks: &y_ticks,
                values: &values,
                value_label: "NMSE",
                log_color: true,
            },
        )?;
        return Ok(Some("sweep.png".into()));
    }
    Ok(None)
}
