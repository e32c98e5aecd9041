//! What a run writes: `trace.csv` and `summary.json` (formats in
//! `docs/experiment-format.md`), each written whole to a temporary file and renamed into
//! place, so an interrupted run never leaves a half-written file.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use localprop::error::{Error, Result};
use localprop::state::Trace;

pub use localprop::io::write_atomic;

/// Which columns `trace.csv` has besides the fixed ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceColumns {
    /// `mask<o>` per output: the run has masks.
    pub masks: bool,
    /// A `sign` per replica instead of one for all: the policy signs each replica on its own
    /// (`hsf-ball`); every other policy gives all replicas the same sign at a step.
    pub sign_per_replica: bool,
    /// The number of the trace's first replica among the run's: a shard's (`--shard`) first.
    pub first_replica: usize,
    /// Prefix the columns with `r<k>_` even for one replica: a shard of a sweep.
    pub prefix: bool,
}

/// The header of `trace.csv`: `step,t,sign`, then per replica (prefix `r<k>_` when there is
/// more than one) `loss,lagrangian,hamiltonian`, `out<o>` and `target<o>` for each output,
/// and `mask<o>` when the run has masks. With [`TraceColumns::sign_per_replica`], `sign`
/// moves into each replica's columns (`step,t,r0_sign,r0_loss,...`).
pub fn trace_header(trace: &Trace, columns: TraceColumns) -> Vec<String> {
    let mut cols = vec!["step".to_string(), "t".into()];
    if !columns.sign_per_replica {
        cols.push("sign".into());
    }
    for r in 0..trace.replicas {
        let pre = match columns.prefix || trace.replicas > 1 {
            true => format!("r{}_", columns.first_replica + r),
            false => String::new(),
        };
        if columns.sign_per_replica {
            cols.push(format!("{pre}sign"));
        }
        for name in ["loss", "lagrangian", "hamiltonian"] {
            cols.push(format!("{pre}{name}"));
        }
        for o in 0..trace.n_out {
            cols.push(format!("{pre}out{o}"));
            cols.push(format!("{pre}target{o}"));
            if columns.masks {
                cols.push(format!("{pre}mask{o}"));
            }
        }
    }
    cols
}

/// `trace.csv` as text (f32 values printed shortest-exact, so they read back bit for bit).
pub fn trace_csv(trace: &Trace, columns: TraceColumns) -> String {
    let mut s = trace_header(trace, columns).join(",");
    s.push('\n');
    trace_rows(trace, columns, &mut s);
    s
}

/// Appends the rows of `trace` to `s` as [`trace_csv`] writes them.
pub fn trace_rows(trace: &Trace, columns: TraceColumns, s: &mut String) {
    use std::fmt::Write as _;
    let (rr, no) = (trace.replicas, trace.n_out);
    for row in 0..trace.rows() {
        let _ = write!(s, "{},{:?}", trace.step[row], trace.t[row]);
        if !columns.sign_per_replica {
            let _ = write!(s, ",{}", trace.sign[row * rr]);
        }
        for r in 0..rr {
            let k = row * rr + r;
            if columns.sign_per_replica {
                let _ = write!(s, ",{}", trace.sign[k]);
            }
            let _ = write!(s, ",{},{},{}", trace.loss[k], trace.lagrangian[k], trace.hamiltonian[k]);
            for o in 0..no {
                let i = k * no + o;
                let _ = write!(s, ",{},{}", trace.outputs[i], trace.targets[i]);
                if columns.masks {
                    let _ = write!(s, ",{}", trace.masks[i]);
                }
            }
        }
        s.push('\n');
    }
}

/// `trace.csv` written as a run goes: the header, then each block's rows appended to
/// `trace.csv.tmp` and flushed, so that a run killed midway leaves the rows up to its last
/// block there; [`TraceFile::finish`] syncs it and renames it to `trace.csv`. Memory stays
/// flat however long the run: besides the rows of one block, it keeps replica 0's rows
/// thinned to at most [`PLOT_ROWS`] (every row until then, then every 2nd, 4th, ...) for the
/// plots.
pub struct TraceFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    columns: TraceColumns,
    text: String,
    rows: usize,
    stride: usize,
    thinned: Trace,
}

/// The most rows of replica 0 a [`TraceFile`] keeps for the plots (between this and twice
/// this).
pub const PLOT_ROWS: usize = 1 << 15;

impl TraceFile {
    /// Creates `path`'s temporary and writes the header for `replicas` and `n_out` outputs.
    pub fn create(path: &Path, replicas: usize, n_out: usize, columns: TraceColumns) -> Result<Self> {
        let tmp = localprop::io::temporary(path).expect("a trace file name");
        let io = |source| Error::Io { path: tmp.display().to_string(), source };
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut out = TraceFile {
            path: path.to_path_buf(),
            tmp: tmp.clone(),
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            columns,
            text: String::new(),
            rows: 0,
            stride: 1,
            thinned: Trace::new(1, n_out),
        };
        let header = trace_header(&Trace::new(replicas, n_out), columns).join(",");
        out.write(format!("{header}\n").as_bytes())?;
        Ok(out)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|source| Error::Io { path: self.tmp.display().to_string(), source })
    }

    /// Appends a block's rows and flushes them to the file.
    pub fn append(&mut self, part: &Trace) -> Result<()> {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        trace_rows(part, self.columns, &mut text);
        let written = self.write(text.as_bytes()).and_then(|()| {
            self.file.flush().map_err(|source| Error::Io { path: self.tmp.display().to_string(), source })
        });
        self.text = text;
        written?;
        let no = part.n_out;
        for k in 0..part.rows() {
            if self.rows.is_multiple_of(self.stride) {
                let t = &mut self.thinned;
                let at = k * part.replicas;
                t.step.push(part.step[k]);
                t.t.push(part.t[k]);
                t.sign.push(part.sign[at]);
                t.loss.push(part.loss[at]);
                t.lagrangian.push(part.lagrangian[at]);
                t.hamiltonian.push(part.hamiltonian[at]);
                t.outputs.extend_from_slice(&part.outputs[at * no..(at + 1) * no]);
                t.targets.extend_from_slice(&part.targets[at * no..(at + 1) * no]);
                if !part.masks.is_empty() {
                    t.masks.extend_from_slice(&part.masks[at * no..(at + 1) * no]);
                }
                if t.rows() >= 2 * PLOT_ROWS {
                    self.halve();
                }
            }
            self.rows += 1;
        }
        Ok(())
    }

    /// Keeps every other thinned row (those at multiples of twice the stride).
    fn halve(&mut self) {
        let t = &mut self.thinned;
        let no = t.n_out;
        let keep = |v: &mut Vec<f32>, width: usize| {
            let rows = v.len() / width.max(1);
            for (to, from) in (0..rows).step_by(2).enumerate() {
                v.copy_within(from * width..(from + 1) * width, to * width);
            }
            v.truncate(rows.div_ceil(2) * width);
        };
        let rows = t.step.len();
        for (to, from) in (0..rows).step_by(2).enumerate() {
            t.step[to] = t.step[from];
            t.t[to] = t.t[from];
            t.sign[to] = t.sign[from];
        }
        t.step.truncate(rows.div_ceil(2));
        t.t.truncate(rows.div_ceil(2));
        t.sign.truncate(rows.div_ceil(2));
        for v in [&mut t.loss, &mut t.lagrangian, &mut t.hamiltonian] {
            keep(v, 1);
        }
        for v in [&mut t.outputs, &mut t.targets, &mut t.masks] {
            keep(v, no);
        }
        self.stride *= 2;
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Replica 0's rows, thinned (see [`TraceFile`]).
    pub fn thinned(&self) -> &Trace {
        &self.thinned
    }

    /// Syncs the file and renames it into place ([`localprop::io::rename_into_place`]).
    pub fn finish(mut self) -> Result<()> {
        let io = |path: &Path, source| Error::Io { path: path.display().to_string(), source };
        self.file.flush().map_err(|e| io(&self.tmp, e))?;
        self.file.get_ref().sync_all().map_err(|e| io(&self.tmp, e))?;
        localprop::io::rename_into_place(&self.tmp, &self.path)
    }
}

/// What `summary.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The experiment's name.
    pub name: String,
    /// `cpu` or `gpu`.
    pub backend: String,
    /// The adapter, for GPU runs.
    pub adapter: Option<String>,
    /// Why the run took its backend: `asked for`, or `auto: ...` with `auto`'s reason.
    #[serde(default)]
    pub backend_reason: String,
    /// First step of this run (non-zero when resumed).
    pub first_step: u64,
    /// Steps run.
    pub steps: u64,
    /// Steps the run was to take (more than `steps` when it was interrupted).
    #[serde(default)]
    pub planned_steps: u64,
    /// Wall-clock seconds of the stepping (without writing outputs).
    pub wall_seconds: f64,
    /// `steps / wall_seconds`.
    pub steps_per_second: f64,
    /// The last recorded step, at which the replicas' `final_*` values are (`null` when no
    /// step was recorded); before the run's last step when `record_every` does not divide it.
    #[serde(default)]
    pub last_recorded_step: Option<u64>,
    /// Per replica results.
    pub replicas: Vec<ReplicaSummary>,
    /// The backprop baseline's passes, for data experiments with `[baseline]`.
    pub baseline: Option<Vec<PassSummary>>,
    /// The recurrent baseline, for stream experiments with `[baseline] kind = "tbptt"`,
    /// `"eprop"` or `"rtrl"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrent_baseline: Option<RecurrentSummary>,
    /// Files written into the output folder.
    pub files: Vec<String>,
    /// The run was stopped early (Ctrl-C, SIGTERM, SIGHUP) after `steps` steps; `localprop
    /// resume` continues it from its checkpoint.
    #[serde(default)]
    pub interrupted: bool,
    /// The shard of a sweep this run was (`--shard K/N`), and its replicas; absent for a
    /// whole run and for a merged one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::ShardSummary>,
    /// The exact configuration that ran (after command-line overrides).
    pub config: serde_json::Value,
}

/// One replica's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicaSummary {
    /// Replica index.
    pub replica: usize,
    /// Its parameters `q, r, r_w, theta` (and `c` when global).
    pub params: serde_json::Value,
    /// Loss at the last recorded step (`null`, read back as NaN, when not finite: a
    /// replica that diverged).
    #[serde(deserialize_with = "nan_if_null")]
    pub final_loss: f64,
    /// Mean loss over the recorded steps (`null` as above).
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_loss: f64,
    /// Scaled Lagrangian at the last recorded step (`null` as above).
    #[serde(deserialize_with = "nan_if_null")]
    pub final_lagrangian: f64,
    /// Scaled Hamiltonian at the last recorded step (`null` as above).
    #[serde(deserialize_with = "nan_if_null")]
    pub final_hamiltonian: f64,
    /// Tracking tasks: mean squared error over the second half of the rows the run was to
    /// record (of a run stopped early, the part of it reached) divided by the target's
    /// variance there, per output; `null` for an output whose target is constant there
    /// (the ratio is undefined), or when no row of that half was reached.
    pub nmse: Option<Vec<Option<f64>>>,
    /// Classification tasks: prequential accuracy per pass.
    pub accuracy: Option<Vec<PassSummary>>,
    /// Where the replica diverged, when it did; its trace holds NaN from that step on and
    /// the losses above are then `null`.
    #[serde(default)]
    pub diverged: Option<Diverged>,
}

/// A number that JSON wrote as `null` (serde_json writes NaN and infinities so) as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A replica that diverged during a run: the other replicas went on, and it was frozen at
/// its last finite checkpoint. Also stored, as a JSON list, in the checkpoint's `diverged`
/// metadata entry, so that `resume` keeps it frozen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diverged {
    /// Replica index.
    pub replica: usize,
    /// The first step at which one of its values was not finite.
    pub step: u64,
    /// Which value: `x`, `p`, `a` (a pre-activation: a weight or the sum), a recorded `loss`,
    /// `lagrangian` or `hamiltonian`, or `w` or `pw` at the end of a stretch of steps.
    pub quantity: String,
    /// `NaN`, `inf` or `-inf`.
    pub value: String,
    /// The step of the state that the checkpoints hold for it: its last checkpoint before
    /// it diverged.
    pub state_step: u64,
}

/// A recurrent baseline's run ([`crate::recurrent`]) on replica 0's stream, network and
/// initial weights, scored as the replicas are: at the recorded steps, the NMSE over the
/// second half of the rows the run was to record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecurrentSummary {
    /// `tbptt`, `eprop` or `rtrl`.
    pub kind: String,
    /// TBPTT's window, in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Learning rate.
    pub lr: f64,
    /// Momentum.
    pub momentum: f64,
    /// Per output, as [`ReplicaSummary::nmse`]; `null` entries where undefined or diverged.
    pub nmse: Option<Vec<Option<f64>>>,
    /// Mean loss over the recorded steps (`null` when it diverged).
    #[serde(deserialize_with = "nan_if_null")]
    pub mean_loss: f64,
    /// Bytes of learning state it keeps beyond the weights, the momentum and the current
    /// state (f64 values).
    pub memory_bytes: u64,
    /// Bytes of the momentum buffer.
    pub momentum_bytes: u64,
    /// Multiply-adds per step.
    pub ops_per_step: f64,
    /// Seconds it ran.
    pub wall_seconds: f64,
    /// Why it stopped before the end (a loss or weight that was not finite), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diverged: Option<String>,
}

/// Accuracy over one pass of a data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassSummary {
    /// Pass index (0 = first).
    pub pass: usize,
    /// Samples scored in the pass.
    pub samples: usize,
    /// Fraction predicted correctly.
    pub accuracy: f64,
}

/// Mean of f32 values in f64.
pub fn mean(v: impl IntoIterator<Item = f32>) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for x in v {
        s += x as f64;
        n += 1;
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_csv_has_one_row_per_record_and_documented_columns() {
        let mut t = Trace::new(2, 1);
        t.step = vec![0, 1];
        t.t = vec![0.0, 0.1];
        t.sign = vec![1.0, 1.0, -1.0, -1.0];
        t.loss = vec![0.5, 0.25, 0.125, 1.0];
        t.lagrangian = vec![1.0; 4];
        t.hamiltonian = vec![2.0; 4];
        t.outputs = vec![0.1, 0.2, 0.3, 0.4];
        t.targets = vec![1.0; 4];
        t.masks = vec![1.0; 4];
        let csv = trace_csv(&t, TraceColumns::default());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "step,t,sign,r0_loss,r0_lagrangian,r0_hamiltonian,r0_out0,r0_target0,\
             r1_loss,r1_lagrangian,r1_hamiltonian,r1_out0,r1_target0"
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2], "1,0.1,-1,0.125,1,2,0.3,1,1,1,2,0.4,1");
    }

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("localprop-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert!(write_atomic(&dir.join("missing/b.json"), b"x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
