//! Sweeps split into shards that run anywhere and merge exactly: `localprop run FILE --shard
//! K/N` runs the `K`-th of `N` contiguous ranges of the sweep's replicas, and `localprop merge
//! DIR...` joins the shards' folders into the folder the whole run would have written.
//!
//! Replicas never interact, and each replica's arithmetic is the same whichever replicas
//! share its engine (on the CPU, bit for bit for any grouping and thread count), so on the
//! same backend a merged folder holds exactly the unsharded run's trace, checkpoint state and
//! scores. Each shard is a complete run on its own: it checkpoints, can be interrupted and
//! resumed (the checkpoint records its shard), and writes its own summary. The merge checks
//! that the shards are one sweep's, all there, complete and at the same step.

use std::io::{BufRead, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use localprop::checkpoint::{self, Checkpoint};
use localprop::error::{Error, Result};
use localprop::state::State;

use crate::config::Experiment;
use crate::experiment::{CHECKPOINT_FILE, DIVERGED_KEY, SUMMARY_FILE, TRACE_FILE};
use crate::output::{Diverged, Summary, write_atomic};

/// The checkpoint metadata entry of a shard's run: `K/N`.
pub const SHARD_KEY: &str = "shard";

/// Shard `index` of `count` (0-based, as Slurm's `SLURM_ARRAY_TASK_ID` with
/// `--array=0-(N-1)`): the `index`-th of `count` contiguous, nearly equal ranges of the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: usize,
    /// How many shards the sweep is split into.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;

    /// `K/N` with `0 <= K < N`.
    fn from_str(text: &str) -> Result<Shard> {
        let bad = || Error::param("--shard", text, "K/N with 0 <= K < N (K counts from 0), such as 0/4");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The replicas of this shard among `total`: `index * total / count ..
    /// (index + 1) * total / count`. An error when there are fewer replicas than shards.
    pub fn replicas(self, total: usize) -> Result<Range<usize>> {
        if self.count > total {
            return Err(Error::param(
                "--shard",
                self,
                format!("at most {total} shards: the sweep has {total} replicas, and each shard runs at least one"),
            ));
        }
        Ok(self.index * total / self.count..(self.index + 1) * total / self.count)
    }
}

/// What a shard's summary says of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardSummary {
    /// Which shard of how many.
    #[serde(flatten)]
    pub shard: Shard,
    /// Its replicas among the sweep's, `[start, end)`.
    pub replicas: [usize; 2],
}

fn data_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Data { path: path.display().to_string(), message: message.into() }
}

/// Merges the folders of a sweep's shards into `out`: `trace.csv` with every replica's
/// columns in order, `checkpoint.safetensors` with every replica's state, `summary.json` with
/// every replica's scores (and the longest shard's wall time), `sweep.png` over the whole
/// grid, and shard 0's plots of replica 0. Refuses folders that are not all the shards of one
/// sweep, complete and at the same step.
pub fn merge(dirs: &[PathBuf], out: &Path, force: bool) -> Result<Summary> {
    let mut shards = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let path = dir.join(SUMMARY_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(source.kind(), format!("{source} (a shard's folder holds a complete run)")),
        })?;
        let summary: Summary = serde_json::from_str(&text).map_err(|e| data_err(&path, e.to_string()))?;
        let Some(info) = summary.shard.clone() else {
            return Err(data_err(&path, "not a shard's run (no `shard` entry; it ran without --shard)"));
        };
        if summary.interrupted {
            return Err(data_err(&path, "the shard was interrupted: resume it to the end first"));
        }
        shards.push((dir.clone(), summary, info));
    }
    shards.sort_by_key(|(_, _, info)| info.shard.index);
    let Some((_, first, info0)) = shards.first() else {
        return Err(Error::param("merge", "no folders", "the folders of every shard"));
    };
    let (first, info0) = (first.clone(), info0.clone());
    let (count, config, steps) = (info0.shard.count, first.config.clone(), (first.first_step, first.steps));
    for (dir, s, info) in &shards {
        let path = dir.join(SUMMARY_FILE);
        if info.shard.count != count || s.config != config || (s.first_step, s.steps) != steps {
            return Err(data_err(
                &path,
                format!(
                    "shard {} is not of the same sweep as shard {}: the shard count, configuration and steps must agree",
                    info.shard, info0.shard
                ),
            ));
        }
    }
    let indices: Vec<usize> = shards.iter().map(|(_, _, i)| i.shard.index).collect();
    if indices != (0..count).collect::<Vec<_>>() {
        let missing: Vec<String> =
            (0..count).filter(|k| !indices.contains(k)).map(|k| format!("{k}/{count}")).collect();
        return Err(Error::param(
            "merge",
            format!("shards {indices:?} of {count}"),
            if missing.is_empty() { "each shard once".to_string() } else { format!("also {}", missing.join(", ")) },
        ));
    }
    let exp = Experiment::from_json(&config.to_string(), "<summary>")?;
    let total = shards.last().map_or(0, |(_, _, i)| i.replicas[1]);
    let mut at = 0;
    for (dir, _, info) in &shards {
        if info.replicas[0] != at || info.replicas[1] <= at {
            return Err(data_err(&dir.join(SUMMARY_FILE), format!("replicas {:?} do not follow {at}", info.replicas)));
        }
        at = info.replicas[1];
    }

    crate::experiment::refuse_existing(out, force)?;
    crate::experiment::prepare_folder(out)?;
    let mut files = vec![TRACE_FILE.to_string(), SUMMARY_FILE.to_string(), CHECKPOINT_FILE.to_string()];
    merge_checkpoints(
        &shards.iter().map(|(d, _, i)| (d.as_path(), i)).collect::<Vec<_>>(),
        &out.join(CHECKPOINT_FILE),
    )?;
    merge_traces(&shards.iter().map(|(d, _, _)| d.join(TRACE_FILE)).collect::<Vec<_>>(), &out.join(TRACE_FILE))?;

    let replicas: Vec<_> = shards.iter().flat_map(|(_, s, _)| s.replicas.iter().cloned()).collect();
    debug_assert_eq!(replicas.len(), total);
    // Replica 0's plots are shard 0's; the sweep is drawn anew over every replica.
    for name in ["output.png", "loss.png", "energy.png", "accuracy.png"] {
        let from = shards[0].0.join(name);
        if let Ok(bytes) = std::fs::read(&from) {
            write_atomic(&out.join(name), &bytes)?;
            files.push(name.into());
        }
    }
    files.extend(crate::experiment::sweep_plot(&exp, &replicas, out)?);
    let wall = shards.iter().map(|(_, s, _)| s.wall_seconds).fold(0.0, f64::max);
    let summary = Summary {
        replicas,
        shard: None,
        files,
        wall_seconds: wall,
        steps_per_second: first.steps as f64 / wall.max(1e-12),
        ..first
    };
    let json = serde_json::to_string_pretty(&summary).expect("a summary always serialises");
    write_atomic(&out.join(SUMMARY_FILE), json.as_bytes())?;
    Ok(summary)
}

/// One checkpoint holding every shard's replicas, in order, with their divergences.
fn merge_checkpoints(shards: &[(&Path, &ShardSummary)], path: &Path) -> Result<()> {
    let mut merged: Option<Checkpoint> = None;
    let mut diverged: Vec<Diverged> = Vec::new();
    for &(dir, info) in shards {
        let file = dir.join(CHECKPOINT_FILE);
        let ck = checkpoint::load(&file)?;
        if ck.metadata.get(SHARD_KEY) != Some(&info.shard.to_string()) {
            return Err(data_err(&file, format!("not the checkpoint of shard {}", info.shard)));
        }
        if ck.state.replicas != info.replicas[1] - info.replicas[0] {
            return Err(data_err(
                &file,
                format!("{} replicas, the summary says {:?}", ck.state.replicas, info.replicas),
            ));
        }
        if let Some(text) = ck.metadata.get(DIVERGED_KEY) {
            let list: Vec<Diverged> = serde_json::from_str(text).map_err(|e| data_err(&file, e.to_string()))?;
            diverged.extend(list.into_iter().map(|d| Diverged { replica: d.replica + info.replicas[0], ..d }));
        }
        match &mut merged {
            None => merged = Some(ck),
            Some(m) => {
                let same = m.state.step == ck.state.step
                    && m.t == ck.t
                    && m.n == ck.n
                    && m.blocks == ck.blocks
                    && m.config_json == ck.config_json;
                if !same {
                    return Err(data_err(
                        &file,
                        "its step, time, network or configuration differ from shard 0's checkpoint",
                    ));
                }
                let State { replicas, x, p, w, pw, .. } = ck.state;
                m.state.replicas += replicas;
                m.state.x.extend(x);
                m.state.p.extend(p);
                m.state.w.extend(w);
                m.state.pw.extend(pw);
            }
        }
    }
    let mut merged = merged.expect("at least one shard");
    merged.metadata.remove(SHARD_KEY);
    merged.metadata.remove(DIVERGED_KEY);
    if !diverged.is_empty() {
        merged.metadata.insert(DIVERGED_KEY.into(), serde_json::to_string(&diverged).expect("records serialise"));
    }
    checkpoint::save(path, &merged)
}

/// One `trace.csv` whose rows hold every shard's replica columns, in order, after the fixed
/// columns (`step,t` and `sign` where there is one for all), which must agree row by row.
fn merge_traces(paths: &[PathBuf], out: &Path) -> Result<()> {
    let open = |p: &PathBuf| {
        std::fs::File::open(p)
            .map(|f| std::io::BufReader::with_capacity(1 << 20, f).lines())
            .map_err(|source| Error::Io { path: p.display().to_string(), source })
    };
    let mut readers = paths.iter().map(open).collect::<Result<Vec<_>>>()?;
    let tmp = localprop::io::temporary(out).expect("a trace file name");
    let io = |source| Error::Io { path: tmp.display().to_string(), source };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
    let mut fixed = 0;
    for row in 0usize.. {
        let mut line = String::new();
        let mut ended = 0;
        for (k, reader) in readers.iter_mut().enumerate() {
            let Some(text) = reader.next() else {
                ended += 1;
                continue;
            };
            let text = text.map_err(|source| Error::Io { path: paths[k].display().to_string(), source })?;
            if row == 0 && k == 0 {
                fixed = if text.split(',').nth(2) == Some("sign") { 3 } else { 2 };
            }
            // Where the fixed columns end: the `fixed`-th comma.
            let end = |s: &str| s.match_indices(',').nth(fixed - 1).map_or(s.len(), |(i, _)| i);
            let cut = end(&text);
            if k == 0 {
                line.push_str(&text);
            } else if text[..cut] != line[..end(&line)] {
                let _ = std::fs::remove_file(&tmp);
                return Err(data_err(
                    &paths[k],
                    format!("line {}: its step, time or sign differ from shard 0's", row + 1),
                ));
            } else {
                line.push_str(&text[cut..]);
            }
        }
        if ended == readers.len() {
            break;
        }
        if ended > 0 {
            let _ = std::fs::remove_file(&tmp);
            return Err(data_err(out, format!("the shards' traces have different lengths (line {})", row + 1)));
        }
        line.push('\n');
        w.write_all(line.as_bytes()).map_err(io)?;
    }
    let f = w.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    localprop::io::rename_into_place(&tmp, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_replicas_once_in_order_and_bad_ones_are_refused() {
        for total in [1usize, 2, 7, 20, 4096] {
            for count in [1usize, 2, 3, 5, 7, 64].into_iter().filter(|&c| c <= total) {
                let ranges: Vec<_> = (0..count).map(|index| Shard { index, count }.replicas(total).unwrap()).collect();
                assert_eq!(ranges.first().unwrap().start, 0);
                assert_eq!(ranges.last().unwrap().end, total);
                assert!(ranges.windows(2).all(|w| w[0].end == w[1].start && !w[0].is_empty()));
                let (min, max) = ranges.iter().fold((usize::MAX, 0), |(a, b), r| (a.min(r.len()), b.max(r.len())));
                assert!(max - min <= 1, "nearly equal: {ranges:?}");
            }
        }
        assert_eq!("3/8".parse::<Shard>().unwrap(), Shard { index: 3, count: 8 });
        assert_eq!(Shard { index: 3, count: 8 }.to_string(), "3/8");
        for bad in ["8/8", "1", "a/2", "-1/2", "1/0", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert!(Shard { index: 0, count: 3 }.replicas(2).is_err());
    }
}
