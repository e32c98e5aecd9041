//! The `localprop` command line: run experiment files, resume checkpoints, check files,
//! list GPU adapters, and the backprop-limit experiment.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use localprop::Backend;
use localprop_cli::bp_limit;
use localprop_cli::experiment::{self, RunOptions};
use localprop_cli::shard::Shard;

#[derive(Parser)]
#[command(name = "localprop", version, about = "Hamiltonian local propagation: run, resume and check experiments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Memory a run may use, such as `8G` or `512M` (default: the memory the system reports
    /// available); a run estimated to need more is refused before it starts.
    #[arg(long, global = true, value_parser = localprop_cli::budget::parse_size)]
    max_memory: Option<u64>,
}

/// `--backend`: one of the engine's backends, by name.
fn backend_arg() -> impl TypedValueParser<Value = Backend> {
    clap::builder::PossibleValuesParser::new(Backend::ALL.map(Backend::name)).try_map(|name| name.parse::<Backend>())
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment file and write trace.csv, summary.json, checkpoint.safetensors and plots.
    Run {
        /// The experiment file (TOML; see docs/experiment-format.md).
        experiment: PathBuf,
        /// Backend (default: the file's `run.backend`, itself `auto` by default).
        #[arg(long, value_parser = backend_arg())]
        backend: Option<Backend>,
        /// Output folder (default: out/ and the experiment's name).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Steps to run, overriding the file's `run.steps` or `run.passes`.
        #[arg(long)]
        steps: Option<u64>,
        /// Network seed, overriding the file's `network.seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Overwrite an output folder that already holds a run.
        #[arg(long)]
        force: bool,
        /// Run only shard K of N (K from 0) of the sweep's replicas, into
        /// out/NAME/shard-K-of-N by default; `localprop merge` joins the shards' folders.
        #[arg(long, value_name = "K/N")]
        shard: Option<Shard>,
    },
    /// Join the folders of a sweep's shards (`run --shard K/N`) into the folder the whole run
    /// would have written.
    Merge {
        /// The shards' output folders, every shard once, in any order.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an output folder that already holds a run.
        #[arg(long)]
        force: bool,
    },
    /// Continue the run saved in a checkpoint.
    Resume {
        /// A checkpoint.safetensors written by `run` or `resume`.
        checkpoint: PathBuf,
        /// Steps to run (default: the configuration's length).
        #[arg(long)]
        steps: Option<u64>,
        /// Output folder (default: the checkpoint's folder with -resumed appended).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Backend.
        #[arg(long, value_parser = backend_arg())]
        backend: Option<Backend>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Overwrite an output folder that already holds a run.
        #[arg(long)]
        force: bool,
    },
    /// Check an experiment file (data included) without running it.
    Check {
        /// The experiment file.
        experiment: PathBuf,
    },
    /// List the GPU adapters, their backend and main limits, and when `auto` takes the one it
    /// would use; with an experiment file, also the kernel family each block of its network
    /// runs in.
    Info {
        /// An experiment file.
        experiment: Option<PathBuf>,
    },
    /// Time the step on the benchmark cases and print synapse updates/s against the copy
    /// bandwidth measured in the same run (BENCHMARKS.md).
    Bench {
        /// Backends to time: `cpu`, `gpu`, or both (`auto` times the GPU too when one exists).
        #[arg(long, value_parser = backend_arg(), default_value = "cpu")]
        backend: Backend,
        /// The small cases only, briefly (for CI).
        #[arg(long)]
        quick: bool,
        /// Only cases whose name contains one of these (comma-separated).
        #[arg(long, value_delimiter = ',')]
        cases: Vec<String>,
        /// Seconds to time each case (after a warm-up block).
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Also write the rows as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Record every this many steps in every case, instead of each case's own interval
        /// (every step for the paper net, every 100th for the large cases); the peers of
        /// benches/peer record nothing.
        #[arg(long)]
        record_every: Option<u64>,
        /// Instead of the table: time the CPU and the GPU on networks of growing size (the
        /// paper net at 1 to 65,536 replicas, fully connected nets of 32 to 2,048 neurons)
        /// and print where the GPU overtakes the CPU, against the thresholds `auto` uses.
        #[arg(long, conflicts_with_all = ["backend", "cases", "record_every"])]
        crossover: bool,
    },
    /// The plan for one network split over several devices: each device's neurons and
    /// synapses, and the bytes that cross between devices per step (docs/scaling.md).
    Partition {
        /// An experiment file (default: the benchmark cases).
        experiment: Option<PathBuf>,
        /// Device counts (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "2,4,8")]
        devices: Vec<usize>,
        /// Only benchmark cases whose name contains one of these (comma-separated).
        #[arg(long, value_delimiter = ',')]
        cases: Vec<String>,
        /// The small benchmark cases only.
        #[arg(long)]
        quick: bool,
    },
    /// Learning in time: local propagation against TBPTT, e-prop and RTRL on the sequence
    /// tasks (docs/tasks.md), each tuned on a grid, then scored over seeds.
    Sequence {
        /// Output folder for results.csv, results.md, over-time.png and recall.png.
        #[arg(long, default_value = "out/sequence")]
        out: PathBuf,
        /// Evaluation seeds (1..=N).
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// Steps per run (default: the task files' 100,000).
        #[arg(long)]
        steps: Option<u64>,
        /// Recall delays, in samples (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1,5,10,20,50")]
        delays: Vec<i64>,
        /// One grid point per learner (for a quick check; the scores are then untuned).
        #[arg(long)]
        quick: bool,
    },
    /// The backprop limit: gradient error of the local rule against backprop as the speed grows.
    BpLimit {
        /// Output folder for bp_limit.csv and bp_limit.png.
        #[arg(long, default_value = "out/bp-limit")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    if let Some(bytes) = cli.max_memory {
        localprop_cli::budget::set_max_memory(bytes);
    }
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A flag set by Ctrl-C, SIGTERM or SIGHUP: the run finishes its block and writes its outputs
/// marked interrupted. A second signal ends the process at once (exit 130).
fn stop_on_signals() -> Option<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let set = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(INTERRUPTED);
        }
        eprintln!(
            "\ninterrupted: finishing the current block, then writing the checkpoint, trace and summary \
             (interrupt again to quit at once, losing what this run did since its last checkpoint)"
        );
    });
    match set {
        Ok(()) => Some(stop),
        Err(e) => {
            log::warn!("no signal handler ({e}): Ctrl-C ends the run without writing its outputs");
            None
        }
    }
}

/// The exit status of a run stopped by a signal (128 + SIGINT, as shells report it).
const INTERRUPTED: i32 = 130;

/// `report`, and the exit status: 130 for an interrupted run, 1 when every replica diverged.
fn finish(summary: &localprop_cli::output::Summary, out: &std::path::Path, checkpoint: &str) -> ExitCode {
    report(summary, out);
    if summary.replicas.iter().all(|r| r.diverged.is_some()) {
        eprintln!(
            "error: every replica diverged; {} holds the trace up to then and the last checkpoint before it \
             (try a smaller tau, c tau, a larger theta, or another sign policy)",
            out.display()
        );
        return ExitCode::FAILURE;
    }
    if summary.interrupted {
        eprintln!(
            "interrupted after {} of {} steps (at step {}); `localprop resume {} --steps {}` runs the rest",
            summary.steps,
            summary.planned_steps,
            summary.first_step + summary.steps,
            out.join(checkpoint).display(),
            summary.planned_steps - summary.steps
        );
        return ExitCode::from(INTERRUPTED as u8);
    }
    ExitCode::SUCCESS
}

fn dispatch(command: Command) -> localprop::Result<ExitCode> {
    match command {
        Command::Run { experiment, backend, out, steps, seed, quiet, force, shard } => {
            let exp = experiment::check(&experiment)?.exp;
            let out = out.unwrap_or_else(|| experiment::default_out(&experiment, &exp, shard));
            let stop = stop_on_signals();
            let opts = RunOptions { backend, out, steps, seed, quiet, force, stop, shard };
            explain_mesa_runtime_dir(opts.backend.unwrap_or(exp.run.backend));
            let summary = experiment::run(&experiment, &opts)?;
            return Ok(finish(&summary, &opts.out, experiment::CHECKPOINT_FILE));
        }
        Command::Resume { checkpoint, steps, out, backend, quiet, force } => {
            let out = out.unwrap_or_else(|| {
                let dir =
                    checkpoint.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let name = dir.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
                dir.with_file_name(format!("{name}-resumed"))
            });
            let stop = stop_on_signals();
            let opts = RunOptions { backend, out, steps, seed: None, quiet, force, stop, shard: None };
            explain_mesa_runtime_dir(opts.backend.unwrap_or(Backend::Auto));
            let summary = experiment::resume(&checkpoint, &opts)?;
            return Ok(finish(&summary, &opts.out, experiment::CHECKPOINT_FILE));
        }
        Command::Merge { shards, out, force } => {
            let summary = localprop_cli::shard::merge(&shards, &out, force)?;
            return Ok(finish(&summary, &out, experiment::CHECKPOINT_FILE));
        }
        Command::Check { experiment } => {
            let experiment::Checked { exp, steps, replicas, kernels, kernels_gpu, .. } =
                experiment::check(&experiment)?;
            println!(
                "{}: ok ({}, {steps} steps, {replicas} replica{})",
                experiment.display(),
                if exp.name.is_empty() { "unnamed" } else { &exp.name },
                if replicas == 1 { "" } else { "s" }
            );
            println!("kernels: {kernels}");
            if kernels_gpu != kernels {
                println!("kernels on a GPU: {kernels_gpu}");
            }
        }
        Command::Info { experiment } => {
            info();
            if let Some(path) = experiment {
                let checked = experiment::check(&path)?;
                println!("{}: kernels: {}", path.display(), checked.kernels);
                if checked.kernels_gpu != checked.kernels {
                    println!("{}: kernels on a GPU: {}", path.display(), checked.kernels_gpu);
                }
                let on = if checked.auto.takes_gpu() { "the GPU" } else { "the CPU" };
                println!("{}: `auto` with a real GPU: {}: {on}", path.display(), checked.auto);
            }
        }
        Command::BpLimit { out } => bp_limit::run(&out)?,
        Command::Sequence { out, seeds, steps, delays, quick } => sequence(&out, seeds, steps, &delays, quick)?,
        Command::Partition { experiment, devices, cases, quick } => partition(experiment, &devices, &cases, quick)?,
        Command::Bench { backend, quick, cases, seconds, json, record_every, crossover } => {
            bench(backend, quick, &cases, seconds, record_every, json, crossover)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report(s: &localprop_cli::output::Summary, out: &std::path::Path) {
    let mut on = s.adapter.as_deref().map_or(s.backend.clone(), |a| format!("{} ({a})", s.backend));
    if s.backend_reason.starts_with("auto") {
        on.push_str(&format!(" [{}]", s.backend_reason));
    }
    println!(
        "{}: {} steps from step {} on {on} in {:.2} s ({:.0} steps/s)",
        if s.name.is_empty() { "run" } else { &s.name },
        s.steps,
        s.first_step,
        s.wall_seconds,
        s.steps_per_second
    );
    let last = s.first_step + s.steps.saturating_sub(1);
    match s.last_recorded_step {
        Some(at) if at < last => println!(
            "  (final values are those of step {at}, the last recorded; run.record_every does not reach step {last})"
        ),
        None => println!("  (no step was recorded)"),
        _ => {}
    }
    for r in s.replicas.iter().take(8) {
        if let Some(d) = &r.diverged {
            println!(
                "  replica {} {}: diverged at step {} ({} is {}), frozen at its checkpoint of step {}",
                r.replica, r.params, d.step, d.quantity, d.value, d.state_step
            );
            continue;
        }
        let mut line = format!(
            "  replica {} {}: final loss {:.4e}, mean loss {:.4e}",
            r.replica, r.params, r.final_loss, r.mean_loss
        );
        match r.nmse.as_ref().map(|n| n[0]) {
            Some(Some(n)) => line.push_str(&format!(", NMSE {n:.4}")),
            Some(None) => line.push_str(", NMSE undefined (constant target over the second half)"),
            None => {}
        }
        if let Some(acc) = &r.accuracy {
            let a: Vec<String> = acc.iter().map(|p| format!("{:.2}%", 100.0 * p.accuracy)).collect();
            line.push_str(&format!(", prequential accuracy per pass {}", a.join(", ")));
        }
        println!("{line}");
    }
    if s.replicas.len() > 8 {
        println!("  ... {} replicas in all (see summary.json)", s.replicas.len());
    }
    let diverged = s.replicas.iter().filter(|r| r.diverged.is_some()).count();
    if diverged > 0 {
        println!("  {diverged} of {} replicas diverged (their trace holds NaN from then on)", s.replicas.len());
    }
    if let Some(b) = &s.baseline {
        let a: Vec<String> = b.iter().map(|p| format!("{:.2}%", 100.0 * p.accuracy)).collect();
        println!("  backprop baseline: prequential accuracy per pass {}", a.join(", "));
    }
    if let Some(b) = &s.recurrent_baseline {
        let name = b.window.map_or(b.kind.clone(), |k| format!("{}({k})", b.kind));
        let score = match (&b.diverged, b.nmse.as_ref().map(|n| n[0])) {
            (Some(why), _) => format!("stopped: {why}"),
            (None, Some(Some(n))) => format!("NMSE {n:.4}, mean loss {:.4e}", b.mean_loss),
            (None, _) => format!("mean loss {:.4e}", b.mean_loss),
        };
        println!(
            "  {name} baseline (lr {}, momentum {}): {score}; keeps {} B of learning state, {:.0} multiply-adds per step",
            b.lr, b.momentum, b.memory_bytes, b.ops_per_step
        );
    }
    println!("wrote {} in {}", s.files.join(", "), out.display());
}

fn sequence(
    out: &std::path::Path,
    seeds: u64,
    steps: Option<u64>,
    delays: &[i64],
    quick: bool,
) -> localprop::Result<()> {
    use localprop_cli::sequence;
    if seeds == 0 {
        return Err(localprop::Error::param("--seeds", 0, "at least 1"));
    }
    if let Some(&d) = delays.iter().find(|&&d| d < 1) {
        return Err(localprop::Error::param("--delays", d, "delays of at least 1 sample"));
    }
    let tasks = sequence::tasks(delays)?;
    let steps = match steps {
        Some(0) => return Err(localprop::Error::param("--steps", 0, "at least 2")),
        Some(s) => s,
        None => tasks[0].exp.run.steps.unwrap_or(100_000),
    };
    let start = std::time::Instant::now();
    let runs = sequence::compare(&tasks, seeds, steps, quick, |m| eprintln!("{m}"))?;
    let table = sequence::write(&runs, out)?;
    println!("{table}");
    println!(
        "{} runs in {:.0} s; wrote results.csv, results.md, over-time.png, recall.png in {}",
        runs.len(),
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

fn partition(experiment: Option<PathBuf>, devices: &[usize], only: &[String], quick: bool) -> localprop::Result<()> {
    use localprop_cli::{bench, partition};
    if let Some(&bad) = devices.iter().find(|&&k| k == 0) {
        return Err(localprop::Error::param("--devices", bad, "device counts of at least 1"));
    }
    let nets = match experiment {
        Some(path) => {
            let exp = localprop_cli::config::Experiment::load(&path)?;
            vec![(path.display().to_string(), exp.network()?)]
        }
        None => bench::cases_named(quick, only)
            .into_iter()
            // The partition is the same for every replica: one row per network.
            .filter(|c| c.replicas == 1)
            .map(|c| Ok((c.name, c.spec.build()?)))
            .collect::<localprop::Result<Vec<_>>>()?,
    };
    let mut rows = Vec::new();
    for (name, net) in &nets {
        let neurons = net.n() - net.d();
        let over: Vec<String> = devices.iter().filter(|&&k| k > neurons).map(usize::to_string).collect();
        if !over.is_empty() {
            eprintln!("{name}: {neurons} non-input neurons, not split over {} devices", over.join(", "));
        }
        rows.extend(partition::rows(name, net, devices)?);
    }
    println!("{}", partition::table(&rows));
    Ok(())
}

fn bench(
    backend: Backend,
    quick: bool,
    only: &[String],
    seconds: f64,
    record_every: Option<u64>,
    json: Option<PathBuf>,
    crossover: bool,
) -> localprop::Result<()> {
    use localprop_cli::bench;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(localprop::Error::param("--seconds", seconds, "a finite number of seconds > 0"));
    }
    if record_every == Some(0) {
        return Err(localprop::Error::param("--record-every", 0, "at least 1"));
    }
    let seconds = if quick { seconds.min(0.2) } else { seconds };
    if crossover {
        return bench_crossover(quick, seconds, json);
    }
    let copy_mib = if quick { 64 } else { 512 };
    let cpu_bw = bench::cpu_bandwidth(copy_mib << 20);
    println!(
        "CPU memory bandwidth ({copy_mib} MiB updated in place, read + write, {} threads): {:.2} GB/s",
        rayon::current_num_threads(),
        cpu_bw / 1e9
    );
    let mut backends = Vec::new();
    if matches!(backend, Backend::Cpu | Backend::Auto) {
        backends.push((Backend::Cpu, cpu_bw));
    }
    if matches!(backend, Backend::Gpu | Backend::Auto) {
        match localprop::gpu::GpuContext::headless() {
            Ok(ctx) => {
                let bw = bench::gpu_copy_bandwidth(&ctx, if quick { 64 << 20 } else { 1 << 30 })?;
                let name = ctx.adapter.as_ref().map_or("caller's device".into(), localprop::gpu::describe);
                println!("GPU copy bandwidth ({name}, copy_buffer_to_buffer, read + write): {:.2} GB/s", bw / 1e9);
                backends.push((Backend::Gpu, bw));
            }
            Err(e) if backend == Backend::Auto => println!("no GPU timed: {e}"),
            Err(e) => return Err(e),
        }
    }
    let mut rows = Vec::new();
    for mut case in bench::cases_named(quick, only) {
        case.record_every = record_every.unwrap_or(case.record_every);
        for &(b, bw) in &backends {
            let row = bench::run_case(&case, b, seconds, bw)?;
            eprintln!(
                "{} on {}: {} synapse updates/s, {:.1}% of the measured bandwidth",
                row.case,
                row.backend,
                bench::si(row.synapse_updates_per_s),
                100.0 * row.bandwidth_fraction
            );
            rows.push(row);
        }
    }
    println!("{}", bench::table(&rows));
    write_json(json, &rows)
}

/// `bench --crossover`: each case of [`localprop_cli::bench::crossover_cases`] on the CPU and
/// the GPU, and where the GPU overtakes the CPU.
fn bench_crossover(quick: bool, seconds: f64, json: Option<PathBuf>) -> localprop::Result<()> {
    use localprop_cli::bench;
    explain_mesa_runtime_dir(Backend::Gpu);
    let adapter = localprop::gpu::pick_adapter()?.get_info();
    println!("GPU: {}", localprop::gpu::describe(&adapter));
    if adapter.device_type == localprop::wgpu::DeviceType::Cpu {
        println!(
            "note: a software adapter; `auto` takes none unless it is named (WGPU_ADAPTER_NAME), so this sweep \
             says nothing about its thresholds on a real GPU"
        );
    }
    let mut pairs = Vec::new();
    for case in bench::crossover_cases(quick) {
        let localprop::engine::AutoWork { population, work } =
            localprop::engine::AutoWork::of(&case.spec.build()?, case.replicas);
        // No bandwidth is measured in the sweep: the rows' fractions are not a number.
        let cpu = bench::run_case(&case, Backend::Cpu, seconds, f64::NAN)?;
        let gpu = bench::run_case(&case, Backend::Gpu, seconds, f64::NAN)?;
        eprintln!(
            "{}: cpu {} steps/s, gpu {} steps/s",
            case.name,
            bench::si(cpu.steps_per_s),
            bench::si(gpu.steps_per_s)
        );
        pairs.push(bench::Pair { population, work, cpu, gpu });
    }
    println!("{}", bench::crossover_table(&pairs));
    write_json(json, &pairs)
}

/// Writes `rows` as pretty JSON to `path` when one is given.
fn write_json<T: serde::Serialize>(path: Option<PathBuf>, rows: &T) -> localprop::Result<()> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(rows).expect("rows serialize");
        std::fs::write(&path, text)
            .map_err(|source| localprop::Error::Io { path: path.display().to_string(), source })?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Mesa's Vulkan drivers print `error: XDG_RUNTIME_DIR is invalid or not set in the
/// environment.` when that variable is unset, on every GPU probe, which reads like an error
/// of ours: say once, before it, that it is harmless.
fn explain_mesa_runtime_dir(backend: Backend) {
    let unset = std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|d| !std::path::Path::new(&d).is_dir());
    if backend != Backend::Cpu
        && unset
        && cfg!(target_os = "linux")
        && std::path::Path::new("/usr/share/vulkan/icd.d").is_dir()
    {
        eprintln!(
            "note: Mesa's Vulkan drivers may print \"error: XDG_RUNTIME_DIR is invalid or not set\" below; it is \
             harmless here (set XDG_RUNTIME_DIR to a folder of yours to silence it)"
        );
    }
}

fn info() {
    explain_mesa_runtime_dir(Backend::Auto);
    let adapters = localprop::gpu::adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found; `--backend auto` runs on the CPU");
    }
    for a in &adapters {
        let l = a.limits();
        println!("{}", localprop::gpu::describe(&a.get_info()));
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, {} workgroups per dimension, {} storage buffers per stage",
            l.max_storage_buffer_binding_size >> 20,
            l.max_buffer_size >> 20,
            l.max_compute_workgroups_per_dimension,
            l.max_storage_buffers_per_shader_stage
        );
    }
    use localprop::engine::{AUTO_GPU_REPLICAS, AUTO_GPU_SYNAPSES, adapter_named, auto_refuses};
    let info = match localprop::gpu::pick_adapter() {
        Ok(a) => a.get_info(),
        Err(e) => {
            println!("`auto` runs on the CPU ({e})");
            return;
        }
    };
    match auto_refuses(&info, adapter_named()) {
        Some(why) => println!("`auto` runs on the CPU: {why}"),
        None => println!(
            "`auto` takes {} for at least {AUTO_GPU_REPLICAS} replicas of a net the `population` kernel runs, or \
             at least {AUTO_GPU_SYNAPSES} synapse updates per step of any other, and the CPU below \
             (`bench --crossover` measures where this GPU overtakes the CPU)",
            localprop::gpu::describe(&info)
        ),
    }
}
