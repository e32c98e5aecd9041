//! Runs that lose nothing: a `localprop run` killed with SIGKILL at any moment leaves a folder
//! that holds one complete run or a checkpoint that resumes to exactly the uninterrupted run;
//! SIGINT and SIGTERM end a run early with its checkpoint, trace and a summary marked
//! interrupted (exit status 130).

#[path = "../../tests/common/mod.rs"]
mod common;

use common::root;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use localprop::checkpoint;
use localprop_cli::output::Summary;

const BIN: &str = env!("CARGO_BIN_EXE_localprop");
/// Steps of the test run: long enough to be killed mid-way (about a second here).
const STEPS: u64 = 1_000_000;

fn scratch(name: &str) -> PathBuf {
    common::scratch_in("durable", name)
}

/// Fig. 1's experiment, recording every 100th step, with a checkpoint every 20,000 steps.
fn experiment(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml")).unwrap();
    let text = text.replace("record_every = 1", "record_every = 100\ncheckpoint_every = 20000");
    assert!(text.contains("checkpoint_every = 20000"), "the shipped file records every step");
    let path = dir.join("durable.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `localprop <verb> <path> --backend cpu --quiet --steps <steps> --out <out>`.
fn command(verb: &str, path: &Path, out: &Path, steps: u64) -> Command {
    let mut c = Command::new(BIN);
    c.args([verb, path.to_str().unwrap(), "--backend", "cpu", "--quiet", "--steps", &steps.to_string()]);
    c.args(["--out", out.to_str().unwrap()]);
    c
}

fn start(cfg: &Path, out: &Path, steps: u64) -> Child {
    command("run", cfg, out, steps).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("the binary runs")
}

fn resume(ck: &Path, out: &Path, steps: u64) {
    let done = command("resume", ck, out, steps).output().expect("the binary runs");
    assert!(done.status.success(), "resume failed: {}", String::from_utf8_lossy(&done.stderr));
}

fn summary(dir: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    Some(serde_json::from_str(&text).expect("a summary that exists is whole"))
}

/// The run files in `dir` (temporaries of an interrupted write aside), sorted.
fn run_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".tmp"))
        .collect();
    v.sort();
    v
}

/// Waits until `path` exists (the run has started writing), at most 20 s.
fn wait_for(path: &Path) {
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(20), "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A scratch folder, the experiment in it, and the summary and final checkpoint of its
/// uninterrupted run.
fn uninterrupted(name: &str) -> (PathBuf, PathBuf, Summary, checkpoint::Checkpoint) {
    let dir = scratch(name);
    let cfg = experiment(&dir);
    let whole = dir.join("whole");
    assert!(start(&cfg, &whole, STEPS).wait().unwrap().success());
    let reference = checkpoint::load(&whole.join("checkpoint.safetensors")).unwrap();
    assert_eq!(reference.state.step, STEPS);
    (dir, cfg, summary(&whole).unwrap(), reference)
}

#[test]
fn sigkill_at_any_moment_leaves_a_complete_run_or_a_checkpoint_that_resumes_to_it() {
    let (dir, cfg, whole, reference) = uninterrupted("kill");
    // The kills fall over the stepping (which starts once the first checkpoint is written)
    // and the writing of the outputs after it.
    let span = whole.wall_seconds * 1.2;

    let (mut complete, mut resumed) = (0, 0);
    for k in 0..24u64 {
        let out = dir.join(format!("killed-{k}"));
        let mut child = start(&cfg, &out, STEPS);
        // Moments spread over the run from its first checkpoint on, in a scrambled order.
        wait_for(&out.join("checkpoint.safetensors"));
        let at = span * ((k * 7) % 24) as f64 / 24.0;
        std::thread::sleep(Duration::from_secs_f64(at));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let ck = out.join("checkpoint.safetensors");
        let last =
            checkpoint::load(&ck).unwrap_or_else(|e| panic!("kill {k} at {at:.3} s: no loadable checkpoint: {e}"));
        match summary(&out) {
            Some(s) => {
                // A complete run: every file the summary lists, and nothing else.
                let mut listed = s.files.clone();
                listed.sort();
                assert_eq!(run_files(&out), listed, "kill {k}");
                assert!(!s.interrupted && s.steps == STEPS);
                assert_eq!(last.state, reference.state, "kill {k}: the complete run's state");
                complete += 1;
            }
            None if last.state.step == STEPS => {
                // Killed after the final checkpoint, while the trace, plots or summary were
                // being written: the state is the run's end.
                assert_eq!(last.state, reference.state, "kill {k}: the final checkpoint");
                complete += 1;
            }
            None => {
                // Killed mid-run: the checkpoint is a step of this run, and resuming it for
                // the steps left gives the uninterrupted run's state, bit for bit.
                assert!(
                    last.state.step < STEPS && last.state.step.is_multiple_of(20_000),
                    "kill {k}: step {}",
                    last.state.step
                );
                // The trace was streamed: its rows up to the checkpoint (at least) are on
                // disk, the uninterrupted run's rows.
                let partial = std::fs::read_to_string(out.join("trace.csv.tmp")).unwrap_or_default();
                let rows: Vec<&str> =
                    partial.lines().skip(1).filter(|l| l.ends_with(|c: char| c.is_ascii_digit())).collect();
                assert!(rows.len() as u64 >= last.state.step / 100, "kill {k}: {} rows on disk", rows.len());
                let whole_rows: Vec<String> = std::fs::read_to_string(dir.join("whole").join("trace.csv"))
                    .unwrap()
                    .lines()
                    .skip(1)
                    .take(rows.len().saturating_sub(1))
                    .map(str::to_string)
                    .collect();
                assert_eq!(rows[..whole_rows.len()], whole_rows[..], "kill {k}: the streamed rows");
                let again = dir.join(format!("resumed-{k}"));
                resume(&ck, &again, STEPS - last.state.step);
                let end = checkpoint::load(&again.join("checkpoint.safetensors")).unwrap();
                assert_eq!(end.state, reference.state, "kill {k} at step {}: resumed state", last.state.step);
                assert_eq!(end.t, reference.t);
                resumed += 1;
            }
        }
    }
    eprintln!("{resumed} kills mid-run, {complete} after the last step");
    assert!(resumed >= 12, "most kills fall mid-run ({resumed} did, {complete} complete)");
}

#[test]
fn sigint_and_sigterm_write_an_interrupted_run_that_resumes() {
    let (dir, cfg, _, reference) = uninterrupted("sigint");

    for signal in ["INT", "TERM"] {
        let out = dir.join(format!("sig{signal}"));
        let child = start(&cfg, &out, STEPS);
        wait_for(&out.join("checkpoint.safetensors"));
        std::thread::sleep(Duration::from_millis(100));
        // The shell's own `kill`: no procps needed.
        let sent = Command::new("sh").args(["-c", &format!("kill -{signal} {}", child.id())]).status().unwrap();
        assert!(sent.success());
        let done = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(130), "SIG{signal}: {stderr}");
        let s = summary(&out).expect("an interrupted run writes its summary");
        let rest = format!("--steps {} ` runs the rest", STEPS - s.steps).replace(" `", "`");
        assert!(
            stderr.contains("localprop resume") && stderr.contains(&rest),
            "SIG{signal}: says how to go on: {stderr}"
        );
        assert_eq!(s.planned_steps, STEPS);
        assert!(s.interrupted && s.steps < STEPS, "SIG{signal}: {} steps", s.steps);
        let mut listed = s.files.clone();
        listed.sort();
        assert_eq!(run_files(&out), listed);
        // The trace has every recorded step up to the stop (every 100th), the checkpoint
        // is at the stop, and resuming it gives the uninterrupted run.
        let rows = std::fs::read_to_string(out.join("trace.csv")).unwrap().lines().count() - 1;
        assert_eq!(rows as u64, s.steps.div_ceil(100), "SIG{signal}");
        let ck = checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
        assert_eq!(ck.state.step, s.steps);
        let again = dir.join(format!("resumed-{signal}"));
        resume(&out.join("checkpoint.safetensors"), &again, STEPS - s.steps);
        assert_eq!(checkpoint::load(&again.join("checkpoint.safetensors")).unwrap().state, reference.state);
    }
}

/// The peak resident memory of a `localprop run` of `steps` steps recording every step, in
/// kB (VmHWM, read until the process exits).
fn peak_kb(cfg: &Path, out: &Path, steps: u64) -> u64 {
    let mut child = start(cfg, out, steps);
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak = peak.max(line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0));
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(child.wait().unwrap().success());
    peak
}

#[test]
fn memory_stays_flat_in_the_length_of_the_run() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("SKIPPED: no /proc to read the peak memory from");
        return;
    }
    let dir = scratch("flat");
    let text = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml")).unwrap();
    let cfg = dir.join("every-step.toml");
    std::fs::write(&cfg, text).unwrap();
    // 1,500,000 recorded rows held in memory would take over 50 MB (and their CSV text as
    // much again); streamed, the long run's peak is the short run's.
    let short = peak_kb(&cfg, &dir.join("short"), 100_000);
    let long = peak_kb(&cfg, &dir.join("long"), 1_500_000);
    eprintln!("peak resident memory: {short} kB for 100,000 steps, {long} kB for 1,500,000");
    assert!(long < short + 16_000, "peak {long} kB for 1.5 M steps against {short} kB for 100,000");
    let rows = std::fs::read_to_string(dir.join("long").join("trace.csv")).unwrap().lines().count();
    assert_eq!(rows, 1_500_001, "every step's row and the header");
    std::fs::remove_dir_all(dir).unwrap();
}
