//! The `localprop` command line: run experiment files, resume checkpoints, check files,
//! list GPU adapters, and the backprop-limit experiment.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use localprop::experiment::{self, RunOptions};
use localprop::{Backend, bp_limit};

#[derive(Parser)]
#[command(name = "localprop", version, about = "Hamiltonian local propagation: run, resume and check experiments")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Cpu,
    Gpu,
    Auto,
}

impl From<BackendArg> for Backend {
    fn from(b: BackendArg) -> Backend {
        match b {
            BackendArg::Cpu => Backend::Cpu,
            BackendArg::Gpu => Backend::Gpu,
            BackendArg::Auto => Backend::Auto,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment file and write trace.csv, summary.json, checkpoint.safetensors and plots.
    Run {
        /// The experiment file (TOML; see docs/experiment-format.md).
        experiment: PathBuf,
        /// Backend (default: the file's `run.backend`, itself `auto` by default).
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
        /// Output folder (default: out/<experiment name>).
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
    },
    /// Continue the run saved in a checkpoint.
    Resume {
        /// A checkpoint.safetensors written by `run` or `resume`.
        checkpoint: PathBuf,
        /// Steps to run (default: the configuration's length).
        #[arg(long)]
        steps: Option<u64>,
        /// Output folder (default: <checkpoint folder>-resumed).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Backend.
        #[arg(long, value_enum)]
        backend: Option<BackendArg>,
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
    /// List the GPU adapters, their backend and main limits, and the one `auto` picks.
    Info,
    /// The backprop limit: gradient error of the local rule against backprop as the speed grows.
    BpLimit {
        /// Output folder for bp_limit.csv and bp_limit.png.
        #[arg(long, default_value = "out/bp-limit")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match dispatch(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Command) -> localprop::Result<()> {
    match command {
        Command::Run { experiment, backend, out, steps, seed, quiet, force } => {
            let (exp, _, _) = experiment::check(&experiment)?;
            let name = if exp.name.is_empty() {
                experiment.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned())
            } else {
                exp.name.clone()
            };
            let out = out.unwrap_or_else(|| PathBuf::from("out").join(name));
            let opts = RunOptions { backend: backend.map(Into::into), out, steps, seed, quiet, force };
            let summary = experiment::run(&experiment, &opts)?;
            report(&summary, &opts.out);
        }
        Command::Resume { checkpoint, steps, out, backend, quiet, force } => {
            let out = out.unwrap_or_else(|| {
                let dir =
                    checkpoint.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let name = dir.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned());
                dir.with_file_name(format!("{name}-resumed"))
            });
            let opts = RunOptions { backend: backend.map(Into::into), out, steps, seed: None, quiet, force };
            let summary = experiment::resume(&checkpoint, &opts)?;
            report(&summary, &opts.out);
        }
        Command::Check { experiment } => {
            let (exp, steps, replicas) = experiment::check(&experiment)?;
            println!(
                "{}: ok ({}, {steps} steps, {replicas} replica{})",
                experiment.display(),
                if exp.name.is_empty() { "unnamed" } else { &exp.name },
                if replicas == 1 { "" } else { "s" }
            );
        }
        Command::Info => info(),
        Command::BpLimit { out } => bp_limit::run(&out)?,
    }
    Ok(())
}

fn report(s: &localprop::io::output::Summary, out: &std::path::Path) {
    let on = s.adapter.as_deref().map_or(s.backend.clone(), |a| format!("{} ({a})", s.backend));
    println!(
        "{}: {} steps from step {} on {on} in {:.2} s ({:.0} steps/s)",
        if s.name.is_empty() { "run" } else { &s.name },
        s.steps,
        s.first_step,
        s.wall_seconds,
        s.steps_per_second
    );
    for r in s.replicas.iter().take(8) {
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
    if let Some(b) = &s.baseline {
        let a: Vec<String> = b.iter().map(|p| format!("{:.2}%", 100.0 * p.accuracy)).collect();
        println!("  backprop baseline: prequential accuracy per pass {}", a.join(", "));
    }
    println!("wrote {} in {}", s.files.join(", "), out.display());
}

fn info() {
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
    match localprop::gpu::pick_adapter() {
        Ok(a) => println!("`auto` picks: {}", localprop::gpu::describe(&a.get_info())),
        Err(e) => println!("`auto` picks the CPU ({e})"),
    }
}
