//! The `localprop` command line end to end: every shipped experiment checks and runs (small
//! versions) and writes every documented output; the trace, summary and checkpoint agree;
//! `resume` continues bit for bit (from version-1 checkpoints too); bad files fail with a
//! named problem and write nothing.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::root;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use localprop::checkpoint;
use localprop::{Backend, Engine};
use localprop_cli::config::Experiment;
use localprop_cli::output::Summary;
use safetensors::Dtype;
use safetensors::tensor::TensorView;

const BIN: &str = env!("CARGO_BIN_EXE_localprop");

fn configs() -> Vec<PathBuf> {
    let dir = root().join("examples/configs");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "the paper's figures, digits and the sweep are shipped: {v:?}");
    v
}

fn scratch(name: &str) -> PathBuf {
    common::scratch_in("cli", name)
}

fn localprop(args: &[&str]) -> Output {
    localprop_in(root(), args)
}

fn ok(out: &Output) -> String {
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "failed: {e}\n{o}");
    o.into_owned()
}

fn read_trace(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().split(',').map(str::to_string).collect();
    (header, lines.map(|l| l.split(',').map(str::to_string).collect()).collect())
}

#[test]
fn every_shipped_experiment_passes_check() {
    for cfg in configs() {
        let out = ok(&localprop(&["check", cfg.to_str().unwrap()]));
        assert!(out.contains(": ok ("), "{out}");
    }
}

#[test]
fn small_runs_of_every_shipped_experiment_write_every_output() {
    for cfg in configs() {
        let name = cfg.file_stem().unwrap().to_str().unwrap().to_string();
        let dir = scratch(&name);
        let steps = 400;
        ok(&localprop(&[
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--steps",
            &steps.to_string(),
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ]));
        let summary: Summary =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        for f in &summary.files {
            let bytes = std::fs::read(dir.join(f)).unwrap_or_else(|_| panic!("{name}: {f} listed but missing"));
            assert!(!bytes.is_empty(), "{name}: {f} is empty");
            if f.ends_with(".png") {
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}: {f}");
            }
        }
        for f in ["trace.csv", "summary.json", "checkpoint.safetensors", "loss.png", "energy.png"] {
            assert!(summary.files.iter().any(|g| g == f), "{name}: {f} not written");
        }
        let exp = Experiment::load(&cfg).unwrap();
        let net = exp.network().unwrap();
        let replicas = exp.replica_params(&net).unwrap().len();
        assert_eq!(summary.replicas.len(), replicas);
        assert_eq!((summary.steps, summary.first_step, summary.backend.as_str()), (steps, 0, "cpu"));
        assert_eq!(summary.config["network"], serde_json::to_value(&exp.network).unwrap());

        // trace.csv: documented columns, one row per recorded step, and the summary agrees.
        let (header, rows) = read_trace(&dir.join("trace.csv"));
        let n_out = net.outputs().len();
        let per = 3 + n_out * (2 + usize::from(exp.mask.is_some()));
        assert_eq!(header.len(), 3 + replicas * per, "{name}: {header:?}");
        assert_eq!(&header[..3], ["step", "t", "sign"]);
        let pre = if replicas > 1 { "r0_" } else { "" };
        assert_eq!(header[3], format!("{pre}loss"));
        assert_eq!(header[6], format!("{pre}out0"));
        assert_eq!(header[7], format!("{pre}target0"));
        assert_eq!(rows.len() as u64, steps.div_ceil(exp.run.record_every));
        for (k, s) in summary.replicas.iter().enumerate() {
            let col = 3 + k * per;
            let loss: Vec<f64> = rows.iter().map(|r| r[col].parse::<f32>().unwrap() as f64).collect();
            assert_eq!(s.final_loss, *loss.last().unwrap(), "{name}: final loss of replica {k}");
            let mean = loss.iter().sum::<f64>() / loss.len() as f64;
            assert!(
                (s.mean_loss - mean).abs() <= 1e-9 * mean.abs().max(1.0),
                "{name}: mean loss {} vs {mean}",
                s.mean_loss
            );
            if let Some(Some(nmse)) = s.nmse.as_ref().map(|v| v[0]) {
                let half = rows.len() / 2;
                let x: Vec<f64> = rows[half..].iter().map(|r| r[col + 3].parse().unwrap()).collect();
                let z: Vec<f64> = rows[half..].iter().map(|r| r[col + 4].parse().unwrap()).collect();
                let m = z.iter().sum::<f64>() / z.len() as f64;
                let var = z.iter().map(|v| (v - m).powi(2)).sum::<f64>() / z.len() as f64;
                let mse = x.iter().zip(&z).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / z.len() as f64;
                assert!((nmse - mse / var).abs() <= 1e-6 * (mse / var), "{name}: NMSE {nmse} vs {}", mse / var);
            }
        }
        if matches!(exp.target, localprop_cli::config::SignalConfig::Data) {
            let acc = summary.replicas[0].accuracy.as_ref().expect("classification accuracy");
            let hold = exp.data.as_ref().unwrap().hold;
            assert_eq!(acc[0].samples as u64, steps / hold, "{name}: every fully shown sample is scored once");
            assert!(summary.baseline.is_some() == exp.baseline.is_some());
        }

        // The checkpoint holds the state an in-process run of the same steps ends in.
        let ckpt = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
        let mut exp_steps = exp.clone();
        exp_steps.run.steps = Some(steps);
        exp_steps.run.passes = None;
        let data = exp.load_data("test", &net).unwrap();
        let mut engine = Engine::with_backend(net.clone(), exp.replica_params(&net).unwrap(), Backend::Cpu).unwrap();
        engine.set_block_steps(exp.run.block_steps).unwrap();
        engine.set_record_every(exp.run.record_every).unwrap();
        engine.run(steps, &mut exp.streams(replicas, data.as_ref()).unwrap()).unwrap();
        assert_eq!(ckpt.state, engine.state().unwrap(), "{name}: checkpoint state");
        assert_eq!(ckpt.state.step, steps);
        assert_eq!(Experiment::from_json(&ckpt.config_json, "ckpt").unwrap().network, exp.network);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn sequence_task_files_run_end_to_end_with_a_finite_nmse() {
    // 10,000 steps: 100 time units of the patched cosines, several patches (in 2,000 steps,
    // 20 time units, the scored half can be one constant patch, whose NMSE is undefined).
    for name in ["mackey-glass", "delayed-recall", "patched-cosines-predict"] {
        let cfg = root().join("examples/configs").join(format!("{name}.toml"));
        let dir = scratch(&format!("task-{name}"));
        let printed = ok(&localprop(&[
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--steps",
            "10000",
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ]));
        assert!(printed.contains("NMSE"), "{name}: {printed}");
        let summary: Summary =
            serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
        let r = &summary.replicas[0];
        let nmse = r.nmse.as_ref().and_then(|v| v[0]);
        assert!(nmse.is_some_and(|v| v.is_finite() && v > 0.0), "{name}: NMSE {nmse:?}");
        assert!(r.diverged.is_none() && r.final_loss.is_finite(), "{name}: {r:?}");
        assert_eq!(summary.steps, 10000);

        // The target is a sample of the input's sequence: it changes only where a hold
        // starts (that it is the input shifted is checked in the engine and config tests).
        let exp = Experiment::load(&cfg).unwrap();
        let Some(localprop_cli::config::SignalConfig::Sequence { hold, .. }) = exp.input else {
            panic!("{name}: a sequence input")
        };
        let (_, rows) = read_trace(&dir.join("trace.csv"));
        let target: Vec<f32> = rows.iter().map(|r| r[7].parse().unwrap()).collect();
        for (n, pair) in target.windows(2).enumerate() {
            if !(n as u64 + 1).is_multiple_of(hold) {
                assert_eq!(pair[0], pair[1], "{name}: the target changes within a hold at step {}", n + 1);
            }
        }
        assert!(target.iter().any(|&z| z != target[0]), "{name}: a constant target");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn resume_continues_bit_for_bit() {
    // The sequence tasks read their streams by step: resumed at step 530 (mid-hold), the
    // input and its shifted target go on as in the whole run.
    for cfg in ["fig3-patched-q100.toml", "digits-online.toml", "mackey-glass.toml", "delayed-recall.toml"] {
        let cfg = root().join("examples/configs").join(cfg);
        let (a, b, whole) = (scratch("resume-a"), scratch("resume-b"), scratch("resume-whole"));
        let run = |steps: &str, out: &Path| {
            ok(&localprop(&[
                "run",
                cfg.to_str().unwrap(),
                "--backend",
                "cpu",
                "--steps",
                steps,
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ]))
        };
        run("530", &a);
        run("900", &whole);
        let ck = a.join("checkpoint.safetensors");
        ok(&localprop(&[
            "resume",
            ck.to_str().unwrap(),
            "--steps",
            "370",
            "--backend",
            "cpu",
            "--out",
            b.to_str().unwrap(),
            "--quiet",
        ]));
        let (resumed, whole_ck) = (
            checkpoint::load(&b.join("checkpoint.safetensors")).unwrap(),
            checkpoint::load(&whole.join("checkpoint.safetensors")).unwrap(),
        );
        assert_eq!(resumed.state, whole_ck.state, "{cfg:?}: resumed state");
        assert_eq!(resumed.t, whole_ck.t);
        let (h1, rows_b) = read_trace(&b.join("trace.csv"));
        let (h2, rows_whole) = read_trace(&whole.join("trace.csv"));
        assert_eq!(h1, h2);
        assert_eq!(rows_b, rows_whole[530..], "{cfg:?}: the resumed trace is the tail of the whole one");
        let summary: Summary = serde_json::from_str(&std::fs::read_to_string(b.join("summary.json")).unwrap()).unwrap();
        assert_eq!((summary.first_step, summary.steps), (530, 370));
        for d in [a, b, whole] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}

#[test]
fn resume_reads_a_version_1_checkpoint() {
    // A layered net with a bias, whose version-1 checkpoints listed the synapses by target
    // (CSR order), not in today's weight-vector order: resuming from the old file must give
    // what resuming from the new one gives, bit for bit.
    let cfg = root().join("examples/configs/digits-online.toml");
    let (a, old, new) = (scratch("v1-a"), scratch("v1-old"), scratch("v1-new"));
    let cli = |args: &[&str]| ok(&localprop(&[args, &["--backend", "cpu", "--quiet"]].concat()));
    cli(&["run", cfg.to_str().unwrap(), "--steps", "40", "--out", a.to_str().unwrap()]);
    let ck = a.join("checkpoint.safetensors");
    let ckpt = checkpoint::load(&ck).unwrap();
    let net = Experiment::from_json(&ckpt.config_json, "ckpt").unwrap().network().unwrap();
    let (r, n, e) = (ckpt.state.replicas, ckpt.n, net.n_edges());
    let mut csr: Vec<(usize, usize)> = net.edges().collect();
    csr.sort_by_key(|&(j, i)| (i, j));
    assert_ne!(csr, net.edges().collect::<Vec<_>>());
    let le_f32 = |v: &[f32]| v.iter().flat_map(|a| a.to_le_bytes()).collect::<Vec<u8>>();
    let in_csr = |v: &[f32]| {
        let mut out = Vec::with_capacity(v.len());
        for row in v.chunks_exact(e) {
            out.extend(csr.iter().map(|&(j, i)| row[net.edge_index(j, i).unwrap()]));
        }
        le_f32(&out)
    };
    let index = |pick: fn(&(usize, usize)) -> usize| {
        csr.iter().flat_map(|edge| (pick(edge) as u32).to_le_bytes()).collect::<Vec<u8>>()
    };
    let bytes = [
        ("x", Dtype::F32, vec![r, n], le_f32(&ckpt.state.x)),
        ("p", Dtype::F32, vec![r, n], le_f32(&ckpt.state.p)),
        ("w", Dtype::F32, vec![r, e], in_csr(&ckpt.state.w)),
        ("pw", Dtype::F32, vec![r, e], in_csr(&ckpt.state.pw)),
        ("edge_src", Dtype::U32, vec![e], index(|&(j, _)| j)),
        ("edge_dst", Dtype::U32, vec![e], index(|&(_, i)| i)),
    ];
    let views: Vec<(&str, TensorView)> = bytes
        .iter()
        .map(|(name, dtype, shape, data)| (*name, TensorView::new(*dtype, shape.clone(), data).unwrap()))
        .collect();
    let meta: std::collections::HashMap<String, String> = [
        ("format", "localprop-checkpoint".to_string()),
        ("version", "1".into()),
        ("config", ckpt.config_json.clone()),
        ("step", ckpt.state.step.to_string()),
        ("t", format!("{:?}", ckpt.t)),
        ("replicas", r.to_string()),
        ("n", n.to_string()),
        ("n_edges", e.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let v1 = a.join("v1.safetensors");
    std::fs::write(&v1, safetensors::serialize(views, Some(meta)).unwrap()).unwrap();

    cli(&["resume", v1.to_str().unwrap(), "--steps", "25", "--out", old.to_str().unwrap()]);
    cli(&["resume", ck.to_str().unwrap(), "--steps", "25", "--out", new.to_str().unwrap()]);
    let from_old = checkpoint::load(&old.join("checkpoint.safetensors")).unwrap();
    let from_new = checkpoint::load(&new.join("checkpoint.safetensors")).unwrap();
    assert_eq!(from_old.state, from_new.state, "resumed from version 1 and from version 2");
    assert_eq!(from_old.blocks, checkpoint::Checkpoint::blocks_of(&net), "written back as version 2");
    assert_eq!(from_old.state.step, 65);
    for d in [a, old, new] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

/// Writes `text` as an experiment file in `dir` and runs it into `dir/out`.
fn run_bad(dir: &Path, text: &str) -> (Output, PathBuf) {
    let file = dir.join("bad.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let o = localprop(&["run", file.to_str().unwrap(), "--backend", "cpu", "--out", out.to_str().unwrap(), "--quiet"]);
    (o, out)
}

#[test]
fn bad_files_name_the_problem_exit_non_zero_and_write_nothing() {
    let fig1 = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml")).unwrap();
    let digits = std::fs::read_to_string(root().join("examples/configs/digits-online.toml")).unwrap();
    let dir = scratch("bad");
    let short_csv = dir.join("short.csv");
    std::fs::write(&short_csv, "1,2,3,0\n4,5,6,1\n7,8,2\n").unwrap();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown key",
            fig1.replace("theta = 1.0", "theta = 1.0\ntheeta = 2.0"),
            vec!["`params.theeta`", "unknown field"],
        ),
        ("wrong type", fig1.replace("q = 10.0", "q = \"ten\""), vec!["`params.q`", "invalid type", "ten"]),
        ("negative r", fig1.replace("r = 0.1", "r = -0.1"), vec!["`params.r`", "-0.1", "> 0"]),
        ("c tau out of range", fig1.replace("tau = 0.01", "tau = 0.05"), vec!["`params.c * tau`", "50 * 0.05", "<= 2"]),
        (
            "tbptt without its window",
            format!("{fig1}\n[baseline]\nkind = \"tbptt\"\nlr = 0.1\n"),
            vec!["`baseline.window`", "TBPTT"],
        ),
        (
            "a window for e-prop",
            format!("{fig1}\n[baseline]\nkind = \"eprop\"\nlr = 0.1\nwindow = 5\n"),
            vec!["`baseline.window`", "eprop"],
        ),
        ("backprop on a stream", format!("{fig1}\n[baseline]\nlr = 0.1\n"), vec!["`baseline`", "data experiment"]),
        (
            "an unknown baseline",
            format!("{fig1}\n[baseline]\nkind = \"bptt\"\nlr = 0.1\n"),
            vec!["`baseline.kind`", "bptt", "rtrl"],
        ),
        (
            "rtrl on 100 neurons",
            format!("{}\n[baseline]\nkind = \"rtrl\"\nlr = 0.1\n", fig1.replace("neurons = 5", "neurons = 100")),
            vec!["`baseline.kind`", "64", "100"],
        ),
        (
            "e-prop on data",
            digits.replace("[baseline]", "[baseline]\nkind = \"eprop\""),
            vec!["`baseline.kind`", "eprop", "backprop"],
        ),
        (
            "missing data file",
            digits.replace("../../data/digits.csv.gz", "no-such-digits.csv"),
            vec!["`data.path`", "no-such-digits.csv", "no such file"],
        ),
        (
            "wrong column count",
            digits
                .replace("../../data/digits.csv.gz", short_csv.to_str().unwrap())
                .replace("sizes = [64, 32, 10]", "sizes = [3, 4, 2]"),
            vec!["short.csv", "line 3", "3 columns", "4"],
        ),
    ];
    for (what, text, needles) in cases {
        let (o, out) = run_bad(&dir, &text);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{what}: accepted");
        for n in needles {
            assert!(err.contains(n), "{what}: {err:?} does not mention {n:?}");
        }
        assert!(!out.exists(), "{what}: wrote into --out");
        let check = localprop(&["check", dir.join("bad.toml").to_str().unwrap()]);
        assert!(!check.status.success(), "{what}: check accepted it");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_output_folder_holding_a_run_is_not_overwritten_without_force() {
    let cfg = root().join("examples/configs/fig1-sinusoid-q10.toml");
    let dir = scratch("force");
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "run",
            cfg.to_str().unwrap(),
            "--backend",
            "cpu",
            "--steps",
            "50",
            "--out",
            dir.to_str().unwrap(),
            "--quiet",
        ];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| Command::new(BIN).args(a).output().unwrap();
    ok(&run(args(&[])));
    let before = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let again = run(args(&["--seed", "9"]));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read(dir.join("checkpoint.safetensors")).unwrap(), before, "the saved run was touched");
    ok(&run(args(&["--seed", "9", "--force"])));
    assert_ne!(std::fs::read(dir.join("checkpoint.safetensors")).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn python_reads_the_checkpoint_with_the_safetensors_package() {
    let probe = Command::new("python3").args(["-c", "import safetensors, numpy"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("LOCALPROP_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "LOCALPROP_REQUIRE_PYTHON=1 but python3 with safetensors and numpy is missing"
        );
        eprintln!("SKIPPED: python3 with safetensors and numpy not found");
        return;
    }
    let configs = root().join("examples/configs");
    let dir = scratch("python");
    // The sweep's net is the Fig. 1 net (5 neurons, self-loops, a bias): one dense block.
    // Without self-loops it is one sparse block.
    let sparse_cfg = dir.join("sparse.toml");
    let fig1 = std::fs::read_to_string(configs.join("fig1-sinusoid-q10.toml")).unwrap();
    std::fs::write(&sparse_cfg, fig1.replace("self_loops = true", "self_loops = false")).unwrap();
    // The documented way to read a checkpoint (src/checkpoint.rs), ending in the weight
    // matrix of the last replica, W[i, j] = weight of j -> i.
    let script = r#"
import json, sys
import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open
path = sys.argv[1]
t = load_file(path)
with safe_open(path, "np") as f:
    meta = f.metadata()
print(json.dumps({k: [str(v.dtype), list(v.shape), float(v.astype("float64").sum())] for k, v in t.items()}))
print(json.dumps({k: meta[k] for k in ["format", "version", "step", "t", "replicas", "n", "n_edges", "blocks"]}))
print(json.loads(meta["config"])["name"])
replicas, n = t["x"].shape
W = np.zeros((replicas, n, n), np.float32)
for k, b in enumerate(json.loads(meta["blocks"])):
    w = t[f"blocks.{k}.w"]
    if b["kind"] == "dense":
        (r0, r1), (c0, c1) = b["rows"], b["cols"]
        W[:, r0:r1, c0:c1] = w
    else:
        W[:, t[f"blocks.{k}.dst"], t[f"blocks.{k}.src"]] = w
print(json.dumps(W[-1].tolist()))
"#;
    for (cfg, dense) in [(configs.join("sweep-q-r.toml"), true), (sparse_cfg, false)] {
        let out_dir = dir.join(if dense { "dense" } else { "sparse" });
        let args =
            ["run", cfg.to_str().unwrap(), "--backend", "cpu", "--steps", "77", "--out", out_dir.to_str().unwrap()];
        ok(&localprop(&[&args[..], &["--quiet"]].concat()));
        let path = out_dir.join("checkpoint.safetensors");
        let out = Command::new("python3").args(["-c", script, path.to_str().unwrap()]).output().unwrap();
        let text = ok(&out);
        let lines: Vec<&str> = text.lines().collect();
        let tensors: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let meta: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        let ckpt = checkpoint::load(&path).unwrap();
        let (r, n, e) = (ckpt.state.replicas, ckpt.n, ckpt.n_edges());
        assert_eq!(tensors["x"][0], "float32");
        assert_eq!(tensors["x"][1], serde_json::json!([r, n]));
        let sum: f64 = ckpt.state.x.iter().map(|&v| v as f64).sum();
        let py = tensors["x"][2].as_f64().unwrap();
        assert!((py - sum).abs() <= 1e-9 * sum.abs().max(1.0), "python sums x to {py}, rust to {sum}");
        assert_eq!(meta["format"], "localprop-checkpoint");
        assert_eq!(meta["version"], "2");
        assert_eq!(meta["step"], "77");
        let blocks: serde_json::Value = serde_json::from_str(meta["blocks"].as_str().unwrap()).unwrap();
        let mut names: Vec<&str> = tensors.as_object().unwrap().keys().map(String::as_str).collect();
        names.sort();
        for old in ["w", "pw", "edge_src", "edge_dst"] {
            assert!(tensors.get(old).is_none(), "version-1 tensor `{old}` in {names:?}");
        }
        if dense {
            assert_eq!((meta["replicas"].as_str(), r), (Some("20"), 20));
            assert_eq!(lines[2], "sweep-q-r");
            assert_eq!(blocks, serde_json::json!([{"kind": "dense", "rows": [1, 6], "cols": [0, 6]}]));
            assert_eq!(names, ["blocks.0.pw", "blocks.0.w", "p", "x"], "a dense net has no index tensors");
            assert_eq!(tensors["blocks.0.w"][0], "float32");
            assert_eq!(tensors["blocks.0.w"][1], serde_json::json!([20, 5, 6]));
        } else {
            assert_eq!((meta["replicas"].as_str(), r, e), (Some("1"), 1, 25));
            assert_eq!(blocks, serde_json::json!([{"kind": "sparse", "edges": 25}]));
            assert_eq!(names, ["blocks.0.dst", "blocks.0.pw", "blocks.0.src", "blocks.0.w", "p", "x"]);
            assert_eq!(tensors["blocks.0.w"][1], serde_json::json!([1, 25]));
            assert_eq!(tensors["blocks.0.src"][0], "uint32");
            assert_eq!(tensors["blocks.0.dst"][1], serde_json::json!([25]));
        }
        // Python's weight matrix holds every weight of the last replica where it belongs.
        let matrix: Vec<Vec<f64>> = serde_json::from_str(lines[3]).unwrap();
        let net = Experiment::from_json(&ckpt.config_json, "ckpt").unwrap().network().unwrap();
        let w = &ckpt.state.w[(r - 1) * e..r * e];
        for (k, (j, i)) in net.edges().enumerate() {
            assert_eq!(matrix[i][j] as f32, w[k], "{cfg:?}: weight of {j} -> {i}");
        }
        let nonzero = matrix.iter().flatten().filter(|&&v| v != 0.0).count();
        assert!(nonzero <= e, "{cfg:?}: {nonzero} weights in a net of {e} synapses");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_records_at_the_interval_asked_and_refuses_zero() {
    let out = localprop(&["bench", "--quick", "--cases", "paper-net-x1", "--record-every", "7"]);
    let text = ok(&out);
    assert!(text.contains("| paper-net-x1 | cpu | 1 x 30 | 1/7 |"), "{text}");
    let bad = localprop(&["bench", "--quick", "--record-every", "0"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--record-every"));
}

/// `bench --crossover` times both backends on the quick sweep and names `auto`'s thresholds
/// (in CI on lavapipe, a software adapter, which it says). Without an adapter it skips, unless
/// `LOCALPROP_REQUIRE_GPU=1`.
#[test]
fn bench_crossover_times_both_backends_against_autos_thresholds() {
    let out = localprop(&["bench", "--crossover", "--quick", "--seconds", "0.01"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("no GPU adapter found") {
        assert_ne!(std::env::var("LOCALPROP_REQUIRE_GPU").as_deref(), Ok("1"), "LOCALPROP_REQUIRE_GPU=1: {err}");
        eprintln!("SKIPPED: {err}");
        return;
    }
    let text = ok(&out);
    for row in ["| paper-net-x1 | replicas 1 |", "| paper-net-x64 | replicas 64 |", "| fc-64 | synapse updates 4160 |"]
    {
        assert!(text.contains(row), "{row} missing:\n{text}");
    }
    assert!(text.contains("`auto` takes the GPU from 1024 (AUTO_GPU_REPLICAS)"), "{text}");
    assert!(text.contains("`auto` takes the GPU from 262144 (AUTO_GPU_SYNAPSES)"), "{text}");
    let bad = localprop(&["bench", "--crossover", "--cases", "fc"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--cases"));
}

/// Runs the binary in `dir` (not the package root).
fn localprop_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN).args(args).current_dir(dir).env("WGPU_BACKEND", "vulkan").output().expect("the binary runs")
}

#[test]
fn a_digits_run_resumes_from_another_directory() {
    // The data path is stored absolute, so the checkpoint's configuration finds the data
    // from anywhere.
    let (dir, elsewhere) = (scratch("resume-cwd"), scratch("resume-cwd-elsewhere"));
    let cfg = "examples/configs/digits-online.toml";
    ok(&localprop(&["run", cfg, "--backend", "cpu", "--steps", "30", "--quiet", "--out", dir.to_str().unwrap()]));
    let ck = dir.join("checkpoint.safetensors");
    let out = elsewhere.join("resumed");
    let args = [
        "resume",
        ck.to_str().unwrap(),
        "--backend",
        "cpu",
        "--steps",
        "20",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    ok(&localprop_in(&elsewhere, &args));
    assert!(out.join("summary.json").exists());
}

#[test]
fn resume_refuses_a_clock_that_disagrees_and_a_step_count_that_would_wrap() {
    let dir = scratch("resume-clock");
    let cfg = "examples/configs/fig1-sinusoid-q10.toml";
    ok(&localprop(&["run", cfg, "--backend", "cpu", "--steps", "40", "--quiet", "--out", dir.to_str().unwrap()]));
    let good = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(good.t, 40.0 * 0.01);
    let resume = |ck: &checkpoint::Checkpoint, name: &str, steps: &str| {
        let path = dir.join(format!("{name}.safetensors"));
        checkpoint::save(&path, ck).unwrap();
        let out = dir.join(name);
        localprop(&[
            "resume",
            path.to_str().unwrap(),
            "--backend",
            "cpu",
            "--steps",
            steps,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // Positive control: an unedited copy resumes.
    ok(&resume(&good, "same", "10"));

    let mut edited = good.clone();
    edited.t = 7.0;
    let out = resume(&edited, "edited-t", "10");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("metadata `t` = 7.0") && e.contains("step 40"), "{e}");
    assert!(!dir.join("edited-t").exists(), "nothing written");

    let mut late = good.clone();
    late.state.step = u64::MAX - 5;
    late.t = late.state.step as f64 * 0.01;
    let out = resume(&late, "late", "10");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("`--steps` = 10") && e.contains(&u64::MAX.to_string()), "{e}");
}

#[test]
fn zero_steps_and_passes_past_64_bits_are_refused_before_anything_is_written() {
    let dir = scratch("zero-steps");
    let out = dir.join("run");
    let bad =
        localprop(&["run", "examples/configs/fig1-sinusoid-q10.toml", "--steps", "0", "--out", out.to_str().unwrap()]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("`--steps` = 0"));
    assert!(!out.exists(), "no folder for a refused run");

    let text = std::fs::read_to_string(root().join("examples/configs/digits-online.toml")).unwrap();
    let data = root().join("data/digits.csv.gz");
    let huge = text
        .replace("passes = 2", "passes = 4611686018427387904")
        .replace("\"../../data/digits.csv.gz\"", &format!("{:?}", data.to_str().unwrap()));
    let cfg = dir.join("huge.toml");
    std::fs::write(&cfg, huge).unwrap();
    let out = localprop(&["check", cfg.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("`run.passes` = 4611686018427387904") && e.contains("64 bits"), "{e}");
}

#[test]
fn a_folder_holds_one_run_whatever_was_there_before() {
    let dir = scratch("one-run");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();
    let (fig1, digits) = ("examples/configs/fig1-sinusoid-q10.toml", "examples/configs/digits-online.toml");
    // A tracking run writes output.png; a data run with --force after it must not leave it.
    ok(&localprop(&["run", fig1, "--steps", "30", "--backend", "cpu", "--quiet", "--out", out_s]));
    assert!(out.join("output.png").exists());
    // Leftovers of a killed write, and a file of the user's own.
    std::fs::write(out.join("trace.csv.tmp"), "half a trace").unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let refused = localprop(&["run", digits, "--steps", "40", "--quiet", "--out", out_s]);
    assert!(!refused.status.success(), "a complete run is not overwritten without --force");
    ok(&localprop(&["run", digits, "--steps", "40", "--backend", "cpu", "--quiet", "--force", "--out", out_s]));
    let folder = || {
        let mut v: Vec<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    let listed = || {
        let summary: Summary =
            serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
        let mut v = summary.files.clone();
        v.push("notes.txt".into());
        v.sort();
        v
    };
    assert!(!out.join("output.png").exists());
    assert_eq!(folder(), listed(), "the folder holds the summary's files, and the user's own");

    // A run killed before its summary left its files: the next run, without --force, clears
    // them first.
    std::fs::remove_file(out.join("summary.json")).unwrap();
    std::fs::write(out.join("output.png"), "stale").unwrap();
    std::fs::write(out.join("checkpoint.safetensors.tmp"), "half a checkpoint").unwrap();
    ok(&localprop(&["run", digits, "--steps", "20", "--backend", "cpu", "--quiet", "--out", out_s]));
    assert_eq!(folder(), listed());
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");

    // resume never writes into the folder of the checkpoint it continues.
    let ck = out.join("checkpoint.safetensors");
    let before = std::fs::read(&ck).unwrap();
    let same = localprop(&["resume", ck.to_str().unwrap(), "--force", "--quiet", "--out", out_s]);
    let e = String::from_utf8_lossy(&same.stderr);
    assert!(!same.status.success() && e.contains("--out"), "{e}");
    assert_eq!(std::fs::read(&ck).unwrap(), before, "the checkpoint is untouched");
}

#[test]
fn a_run_that_cannot_fit_is_refused_quickly_with_what_needs_how_much() {
    let dir = scratch("budget");
    let fig1 = "examples/configs/fig1-sinusoid-q10.toml";
    // 60,000 fully connected neurons: 3.6 G synapses, about 43 GB with w and pw.
    let text = std::fs::read_to_string(root().join(fig1)).unwrap().replace("neurons = 5", "neurons = 60000");
    let big = dir.join("big.toml");
    std::fs::write(&big, text).unwrap();
    let t = std::time::Instant::now();
    let out = localprop(&["check", big.to_str().unwrap(), "--max-memory", "8G"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{e}");
    assert!(
        e.contains("`(memory)`")
            && e.contains("w and pw of every replica 28.80 GB")
            && e.contains("--max-memory of 8.59 GB"),
        "{e}"
    );
    assert!(t.elapsed().as_secs_f64() < 5.0, "refused before anything is built");
    // The trace rows a run holds count too (two blocks' worth: the rest is streamed to
    // disk); a small budget refuses even Fig. 1, a fair one runs it.
    let out = dir.join("run");
    let small = localprop(&["run", fig1, "--max-memory", "10K", "--quiet", "--out", out.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&small.stderr);
    assert!(!small.status.success() && e.contains("trace rows held in memory"), "{e}");
    assert!(!out.exists());
    ok(&localprop(&[
        "run",
        fig1,
        "--backend",
        "cpu",
        "--max-memory",
        "256M",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let bad = localprop(&["check", fig1, "--max-memory", "lots"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--max-memory"));
}

#[test]
fn data_and_experiment_files_are_read_within_caps() {
    let dir = scratch("caps");
    let text = std::fs::read_to_string(root().join("examples/configs/digits-online.toml")).unwrap();
    let with_data = |path: &str| {
        let cfg = dir.join("data.toml");
        std::fs::write(&cfg, text.replace("\"../../data/digits.csv.gz\"", &format!("{path:?}"))).unwrap();
        cfg
    };
    // A device that never ends.
    let out = localprop(&["check", with_data("/dev/zero").to_str().unwrap()]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("/dev/zero") && e.contains("not a regular file"), "{e}");
    // A small archive that inflates past the cap (a quarter of --max-memory, here 16 MiB).
    let bomb = dir.join("bomb.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&bomb).unwrap(), flate2::Compression::best());
    std::io::Write::write_all(&mut gz, &vec![b'0'; 40 << 20]).unwrap();
    gz.finish().unwrap();
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1 << 20);
    let cfg = with_data(bomb.to_str().unwrap());
    let out = localprop(&["check", cfg.to_str().unwrap(), "--max-memory", "64M"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("the gzip data, inflated holds more than 16.8 MB"), "{e}");
    // Positive control: the shipped data within the same budget.
    let data = root().join("data/digits.csv.gz");
    ok(&localprop(&["check", with_data(data.to_str().unwrap()).to_str().unwrap(), "--max-memory", "64M"]));
    // An experiment "file" that never ends.
    let out = localprop(&["check", "/dev/zero"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && e.contains("not a regular file"), "{e}");
}

/// The paper's net under `hamilton` with no damping, swept over `q`: replicas with `q = 0`
/// stay finite for about 1,000 steps, one with `q = 1000` diverges near step 210.
fn diverging_sweep(dir: &Path, qs: &str, steps: u64) -> PathBuf {
    let text = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml"))
        .unwrap()
        .replace("policy = \"hsf-every-step\"", "policy = \"hamilton\"")
        .replace("theta = 1.0", "theta = 0.0")
        .replace("steps = 20000", &format!("steps = {steps}\ncheckpoint_every = 200"));
    let path = dir.join("diverging.toml");
    std::fs::write(&path, format!("{text}\n[sweep]\nq = {qs}\n")).unwrap();
    path
}

fn summary_of(dir: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_diverging_replica_is_frozen_and_reported_while_the_others_go_on() {
    let dir = scratch("diverge-some");
    let cfg = diverging_sweep(&dir, "[0.0, 1000.0, 0.0]", 800);
    let (out, whole, b) = (dir.join("a"), dir.join("whole"), dir.join("b"));
    let run = |steps: &str, to: &Path| {
        let args = ["run", cfg.to_str().unwrap(), "--backend", "cpu", "--steps", steps, "--quiet", "--out"];
        localprop(&[&args[..], &[to.to_str().unwrap()]].concat())
    };
    let done = run("500", &out);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    let s = summary_of(&out);
    let d = s.replicas[1].diverged.as_ref().unwrap_or_else(|| panic!("replica 1 not reported: {s:?}"));
    assert!(d.step > 200 && d.step < 500, "{d:?}");
    assert_eq!(d.state_step, 400 - 200 * u64::from(d.step <= 400), "frozen at the last checkpoint before {}", d.step);
    assert!(stderr.contains("replica 1 (q = 1000, ") && stderr.contains(&format!("diverged at step {}", d.step)));
    assert!(stderr.contains("2 replicas go on"), "{stderr}");
    assert_eq!((s.replicas[0].diverged.as_ref(), s.replicas[2].diverged.as_ref()), (None, None));
    assert!(s.replicas[0].final_loss.is_finite() && s.steps == 500);
    // The trace: replica 1's values are NaN from its step on, the others' finite throughout.
    let (header, rows) = read_trace(&out.join("trace.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for row in &rows {
        let step: u64 = row[0].parse().unwrap();
        assert_eq!(row[col("r1_loss")] == "NaN", step >= d.step, "step {step}: {}", row[col("r1_loss")]);
        assert_ne!(row[col("r0_loss")], "NaN");
    }
    // The checkpoint holds replica 1's frozen (finite) state and lists it.
    let ck = checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.state.step, 500);
    let listed: Vec<localprop_cli::output::Diverged> = serde_json::from_str(&ck.metadata["diverged"]).unwrap();
    assert_eq!(listed, vec![d.clone()]);
    let st = &ck.state;
    assert!(st.x.iter().chain(&st.p).chain(&st.w).chain(&st.pw).all(|v| v.is_finite()));
    // Resume keeps it frozen; the others continue bit for bit.
    ok(&run("800", &whole));
    let ck_path = out.join("checkpoint.safetensors");
    let args = ["resume", ck_path.to_str().unwrap(), "--steps", "300", "--backend", "cpu", "--quiet", "--out"];
    ok(&localprop(&[&args[..], &[b.to_str().unwrap()]].concat()));
    let (sb, sw) = (summary_of(&b), summary_of(&whole));
    assert_eq!(sb.replicas[1].diverged, sw.replicas[1].diverged);
    let (_, tail) = read_trace(&b.join("trace.csv"));
    let (_, all) = read_trace(&whole.join("trace.csv"));
    assert_eq!(tail, all[500..], "the resumed trace is the tail of the whole run's");
    let (ckb, ckw) = (
        checkpoint::load(&b.join("checkpoint.safetensors")).unwrap(),
        checkpoint::load(&whole.join("checkpoint.safetensors")).unwrap(),
    );
    assert_eq!(ckb.state, ckw.state);
    assert_eq!(ckb.metadata, ckw.metadata);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_run_whose_replicas_all_diverge_keeps_its_trace_and_last_finite_checkpoint() {
    let dir = scratch("diverge-all");
    let cfg = diverging_sweep(&dir, "[1000.0, 1000.0]", 5000);
    let out = dir.join("out");
    let args = ["run", cfg.to_str().unwrap(), "--backend", "cpu", "--quiet", "--out"];
    let done = localprop(&[&args[..], &[out.to_str().unwrap()]].concat());
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("every replica diverged"), "{stderr}");
    let s = summary_of(&out);
    let step = s.replicas[0].diverged.as_ref().expect("replica 0 diverged").step;
    assert!(s.replicas.iter().all(|r| r.diverged.as_ref().is_some_and(|d| d.step == step)));
    // It stopped soon after, and wrote the trace up to then.
    assert!(s.steps < step + 1000 && s.planned_steps == 5000, "{} of {} steps", s.steps, s.planned_steps);
    let (_, rows) = read_trace(&out.join("trace.csv"));
    assert_eq!(rows.len() as u64, s.steps);
    assert_ne!(rows[step as usize - 1][3], "NaN");
    // The checkpoint is the last one before the divergence, finite, and resumable.
    let ck = checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.state.step, step / 200 * 200);
    assert!(!ck.metadata.contains_key("diverged"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resume_refuses_data_that_changed_since_the_checkpoint() {
    let dir = scratch("resume-data");
    let root = root();
    let text = std::fs::read_to_string(root.join("examples/configs/digits-online.toml"))
        .unwrap()
        .replace("../../data/digits.csv.gz", "digits.csv");
    std::fs::write(dir.join("digits.toml"), text).unwrap();
    let mut csv = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(root.join("data/digits.csv.gz")).unwrap()),
        &mut csv,
    )
    .unwrap();
    std::fs::write(dir.join("digits.csv"), &csv).unwrap();
    let cfg = dir.join("digits.toml");
    let out = dir.join("a");
    ok(&localprop(&[
        "run",
        cfg.to_str().unwrap(),
        "--backend",
        "cpu",
        "--steps",
        "30",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    let ck = out.join("checkpoint.safetensors");
    let meta = checkpoint::load(&ck).unwrap().metadata;
    assert!(meta["data_crc32"].starts_with("crc32:"), "{meta:?}");
    let resume = |to: &str| {
        let to = dir.join(to);
        localprop(&[
            "resume",
            ck.to_str().unwrap(),
            "--backend",
            "cpu",
            "--steps",
            "10",
            "--quiet",
            "--out",
            to.to_str().unwrap(),
        ])
    };
    // The same text gzipped is the same data.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &csv).unwrap();
    std::fs::write(dir.join("digits.csv"), gz.finish().unwrap()).unwrap();
    ok(&resume("b"));
    // One changed value is not.
    let edited = String::from_utf8(csv).unwrap().replacen(",0,", ",1,", 1);
    std::fs::write(dir.join("digits.csv"), edited).unwrap();
    let refused = resume("c");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("digits.csv") && stderr.contains("the data changed"),
        "{stderr}"
    );
    assert!(!dir.join("c").exists(), "a refused resume wrote its folder");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn final_values_name_their_step_when_the_last_step_is_not_recorded() {
    let dir = scratch("record-every");
    let text = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml")).unwrap();
    let cfg = dir.join("sparse.toml");
    std::fs::write(&cfg, text.replace("record_every = 1\n", "record_every = 1000\n")).unwrap();
    let run = |steps: &str, out: &str| {
        let out = dir.join(out);
        let args = ["run", cfg.to_str().unwrap(), "--backend", "cpu", "--steps", steps, "--quiet", "--out"];
        (ok(&localprop(&[&args[..], &[out.to_str().unwrap()]].concat())), summary_of(&out))
    };
    let (stdout, s) = run("500", "short");
    assert_eq!(s.last_recorded_step, Some(0));
    assert!(stdout.contains("final values are those of step 0, the last recorded"), "{stdout}");
    let (stdout, s) = run("2001", "long");
    assert_eq!(s.last_recorded_step, Some(2000));
    assert!(!stdout.contains("final values are those of step"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hsf_ball_runs_from_a_file_with_a_sign_per_replica_in_the_trace() {
    let dir = scratch("hsf-ball");
    let fig1 = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml")).unwrap();
    let ball = fig1.replace("policy = \"hsf-every-step\"", "policy = \"hsf-ball\"\nhsf_radius = 3.0")
        + "\n[sweep]\nq = [1.0, 10.0]\n";
    let cfg = dir.join("ball.toml");
    std::fs::write(&cfg, &ball).unwrap();
    let out = dir.join("out");
    ok(&localprop(&[
        "run",
        cfg.to_str().unwrap(),
        "--steps",
        "3000",
        "--backend",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]));
    let summary: Summary = serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert!(summary.replicas.iter().all(|r| r.diverged.is_none()));
    let csv = std::fs::read_to_string(out.join("trace.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["step", "t", "r0_sign"]);
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name}"));
    let (s0, s1) = (col("r0_sign"), col("r1_sign"));
    assert!(!header.contains(&"sign"));
    let rows: Vec<Vec<f32>> = lines.map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert_eq!(rows.len(), 3000);
    let signs = |c: usize| rows.iter().map(|r| r[c]).collect::<Vec<_>>();
    let (a, b) = (signs(s0), signs(s1));
    for s in [&a, &b] {
        assert!(s.iter().all(|&v| v == 1.0 || v == -1.0));
        assert!(s.contains(&1.0) && s.contains(&-1.0), "each replica leaves the ball and comes back");
    }
    assert!(a.iter().zip(&b).any(|(x, y)| x != y), "the replicas take their own signs");

    // The radius belongs to hsf-ball only, and hsf-ball needs it.
    for (text, key) in [
        (ball.replace("hsf_radius = 3.0", ""), "params.hsf_radius"),
        (ball.replace("hsf_radius = 3.0", "hsf_radius = -1.0"), "radius"),
        (fig1.replace("learning = true", "learning = true\nhsf_radius = 3.0"), "params.hsf_radius"),
    ] {
        std::fs::write(&cfg, text).unwrap();
        let bad = localprop(&["check", cfg.to_str().unwrap()]);
        let e = String::from_utf8_lossy(&bad.stderr);
        assert!(!bad.status.success() && e.contains(key), "{e}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_sweep_run_in_shards_and_merged_is_the_whole_run_bit_for_bit() {
    let dir = scratch("shards");
    let cfg = root().join("examples/configs/sweep-q-r.toml");
    let cfg = cfg.to_str().unwrap();
    let run = |out: &Path, extra: &[&str]| {
        let steps = if extra.contains(&"--steps") { &[][..] } else { &["--steps", "400"][..] };
        let mut args = vec!["run", cfg, "--backend", "cpu", "--quiet", "--out", out.to_str().unwrap()];
        args.extend(steps);
        args.extend(extra);
        ok(&localprop(&args));
    };
    let whole = dir.join("whole");
    run(&whole, &[]);
    let shard = |k: usize| dir.join(format!("s{k}"));
    run(&shard(0), &["--shard", "0/3"]);
    run(&shard(2), &["--shard", "2/3"]);
    // Shard 1 interrupted halfway (as a killed job would be), resumed to the end.
    run(&shard(1), &["--shard", "1/3", "--steps", "150"]);
    let ck1 = shard(1).join("checkpoint.safetensors");
    let resumed = dir.join("s1-resumed");
    ok(&localprop(&["resume", ck1.to_str().unwrap(), "--steps", "250", "--quiet", "--out", resumed.to_str().unwrap()]));
    // A resumed shard is a run of its own from step 150: its trace starts there. Merge the
    // folders that ran from step 0 only; so rerun shard 1 whole, and check the resumed
    // state equals it.
    run(&shard(1), &["--shard", "1/3", "--force"]);
    let state = |d: &Path| checkpoint::load(&d.join("checkpoint.safetensors")).unwrap().state;
    assert_eq!(state(&resumed), state(&shard(1)), "a resumed shard continues its own replicas");

    let merged = dir.join("merged");
    let folders = [shard(2), shard(0), shard(1)];
    let mut args = vec!["merge"];
    args.extend(folders.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--out", merged.to_str().unwrap()]);
    ok(&localprop(&args));
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(read(&merged, "trace.csv"), read(&whole, "trace.csv"), "the same trace, byte for byte");
    assert_eq!(state(&merged), state(&whole), "the same state, bit for bit");
    let summary = |d: &Path| -> Summary { serde_json::from_slice(&read(d, "summary.json")).unwrap() };
    let (m, w) = (summary(&merged), summary(&whole));
    assert_eq!(m.replicas, w.replicas, "the same scores");
    assert_eq!((m.files, m.shard, m.config), (w.files, None, w.config));
    assert!(merged.join("sweep.png").exists());

    // Refused: a missing shard, a shard twice, shards of another sweep, shards past the replicas.
    let merge = |folders: &[&Path]| {
        let mut args = vec!["merge", "--force", "--out", merged.to_str().unwrap()];
        args.extend(folders.iter().map(|f| f.to_str().unwrap()));
        let out = localprop(&args);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(merge(&[&shard(0), &shard(2)]).contains("also 1/3"));
    assert!(merge(&[&shard(0), &shard(0), &shard(1), &shard(2)]).contains("each shard once"));
    assert!(merge(&[&shard(0), &resumed, &shard(2)]).contains("not of the same sweep"));
    assert!(merge(&[&whole]).contains("not a shard"));
    let e = localprop(&["run", cfg, "--shard", "0/21", "--out", dir.join("x").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("at most 20 shards"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn partition_prints_the_split_of_a_file_and_of_the_cases_and_refuses_zero_devices() {
    let cfg = root().join("examples/configs/digits-online.toml");
    let out = ok(&localprop(&["partition", cfg.to_str().unwrap(), "--devices", "1,2,64"]));
    // [64 + bias, 32, 10] on 2 devices: the 32 hidden then the 10 outputs, by synapses
    // (32 x 65 = 2080 and 10 x 33 = 330): the cut falls among the hidden neurons.
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("digits-online.toml")).collect();
    assert_eq!(rows.len(), 2, "1 and 2 devices; 64 is more than the 42 neurons: {out}");
    assert!(rows[0].contains("| 2410 | 1 | 2410 | 0 | 0 B |"), "{out}");
    assert!(rows[1].contains("| 2410 | 2 |"), "{out}");
    let cases = ok(&localprop(&["partition", "--quick", "--cases", "fc-256", "--devices", "4"]));
    // 256 neurons on 4 devices: each sends its 64 x to the 3 others and gets 3 x 64 partial sums back.
    assert!(cases.contains("| fc-256 | 65792 | 4 | 16448 | 768 | 6.0 KiB | 3.0 KiB |"), "{cases}");
    let bad = localprop(&["partition", cfg.to_str().unwrap(), "--devices", "0"]);
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && e.contains("--devices"), "{e}");
}

#[test]
fn a_recurrent_baseline_runs_on_the_runs_stream_and_network_and_is_scored_as_the_replicas_are() {
    use localprop_cli::baseline::SgdMomentum;
    use localprop_cli::config::Experiment;
    use localprop_cli::experiment::Nmse;
    use localprop_cli::recurrent::{Method, RecurrentLearner};
    let fig1 = std::fs::read_to_string(root().join("examples/configs/fig1-sinusoid-q10.toml")).unwrap();
    let dir = scratch("recurrent-baseline");
    let steps = 3000u64;
    let kinds = [
        ("kind = \"rtrl\"", Method::Rtrl),
        ("kind = \"eprop\"", Method::Eprop),
        ("kind = \"tbptt\"\nwindow = 7", Method::Tbptt { window: 7 }),
    ];
    for (kind, method) in kinds {
        let text = format!("{fig1}\n[baseline]\n{kind}\nlr = 0.05\nmomentum = 0.5\n");
        let file = dir.join("a.toml");
        std::fs::write(&file, &text).unwrap();
        let out = dir.join("out");
        let steps_s = steps.to_string();
        let args =
            ["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--steps", &steps_s, "--force", "--quiet"];
        let printed = ok(&localprop(&args));
        let b = summary_of(&out).recurrent_baseline.expect("a recurrent baseline");
        assert!(printed.contains(" baseline (lr 0.05, momentum 0.5): NMSE "), "{printed}");
        assert!(b.diverged.is_none() && b.memory_bytes > 0 && b.ops_per_step > 0.0, "{b:?}");

        // The same learner, stream and scoring, by hand: equal to the bit.
        let exp = Experiment::load(&file).unwrap();
        let net = exp.network().unwrap();
        let params = exp.replica_params(&net).unwrap()[0].clone();
        let mut learner =
            RecurrentLearner::new(&net, &params, method, SgdMomentum { lr: 0.05, momentum: 0.5 }).unwrap();
        let mut streams = exp.streams(1, None).unwrap().pop().unwrap();
        let every = exp.run.record_every;
        let (half, mut row, mut nmse) = (steps.div_ceil(every) / 2, 0, Nmse::default());
        learner
            .run_each(&mut streams, steps, |step, o, z| {
                if step % every == 0 {
                    if row >= half {
                        nmse.add(o.outputs[0], z[0] as f64);
                    }
                    row += 1;
                }
            })
            .unwrap();
        assert_eq!(b.nmse, Some(vec![nmse.value()]), "{kind}");
        assert_eq!(b.memory_bytes, learner.memory_bytes() as u64);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sequence_compares_the_learners_and_refuses_zero_seeds() {
    let dir = scratch("sequence");
    let out = dir.join("out");
    let printed = ok(&localprop(&[
        "sequence",
        "--quick",
        "--seeds",
        "1",
        "--steps",
        "400",
        "--delays",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]));
    for learner in ["local", "tbptt(1)", "tbptt(10)", "tbptt(100)", "e-prop", "rtrl"] {
        assert!(printed.contains(&format!("| delayed-recall D=3 | {learner} |")), "{learner}: {printed}");
    }
    for file in ["results.csv", "results.md", "over-time.png", "recall.png"] {
        assert!(out.join(file).exists(), "{file}");
    }
    let bad = localprop(&["sequence", "--seeds", "0", "--out", out.to_str().unwrap()]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("--seeds"));
    std::fs::remove_dir_all(&dir).unwrap();
}
