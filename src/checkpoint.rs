//! Checkpoints: the full dynamic state of a run, with the network's blocks of synapses and
//! the experiment configuration, in one [safetensors](https://github.com/huggingface/safetensors)
//! file that Python (`safetensors`, `numpy`, `torch`) reads directly.
//!
//! # File format (version 2)
//!
//! This is the contract with every reader and writer of checkpoints, Rust or Python.
//!
//! A checkpoint is a standard safetensors file: an 8-byte little-endian `u64` header length,
//! a JSON header, then the raw tensor bytes. All values are **little-endian** and tensors are
//! row-major (C order).
//!
//! The synapses are stored as the network stores them ([`crate::Network`], docs/model.md
//! section 1): a list of **blocks**, in weight-vector order. A *dense* block connects every
//! source in a range of columns `c0..c1` to every target in a range of rows `r0..r1` and has
//! no index arrays; a *sparse* block lists its synapses one by one (in the network, CSR by
//! target). The metadata entry `blocks` describes them; for block `k` (0-based, in that
//! order) the file holds:
//!
//! | tensor            | dtype | shape                      | contents                            |
//! |-------------------|-------|----------------------------|-------------------------------------|
//! | `x`               | `F32` | `[replicas, n]`            | neuron states, [`State::x`]         |
//! | `p`               | `F32` | `[replicas, n]`            | scaled neuron costates `p / phi`, [`State::p`] |
//! | `blocks.{k}.w`    | `F32` | dense: `[replicas, r1 - r0, c1 - c0]`; sparse: `[replicas, nnz]` | weights of the block's synapses, [`State::w`] |
//! | `blocks.{k}.pw`   | `F32` | as `blocks.{k}.w`          | scaled weight costates `pw / phi`, [`State::pw`] |
//! | `blocks.{k}.src`  | `U32` | `[nnz]` (sparse only)      | source neuron of each synapse, in order |
//! | `blocks.{k}.dst`  | `U32` | `[nnz]` (sparse only)      | target neuron of each synapse, in order |
//!
//! and no other tensor. In a dense block, `blocks.{k}.w[r, i, j]` is the weight of synapse
//! `c0 + j -> r0 + i` in replica `r`; in a sparse block, `blocks.{k}.w[r, m]` is the weight of
//! `src[m] -> dst[m]`. Concatenating the blocks' synapses in order (each dense block row by
//! row) gives the network's weight-vector order ([`crate::Network::edges`]): the state's flat
//! `w` of replica `r` is `blocks.0.w[r]` flattened, then `blocks.1.w[r]`, and so on. A network
//! without synapses has no blocks, or only empty ones.
//!
//! The header's `__metadata__` (a string-to-string map) holds:
//!
//! | key        | value                                                                       |
//! |------------|-----------------------------------------------------------------------------|
//! | `format`   | exactly `localprop-checkpoint`                                              |
//! | `version`  | exactly `2`                                                                 |
//! | `config`   | the full experiment configuration, as a JSON document                       |
//! | `step`     | steps taken ([`State::step`]), a decimal `u64`                              |
//! | `t`        | the time, a decimal `f64` as Rust's `{:?}` prints it (`0.30000000000000004`, `1e-7`): the shortest text that parses back to the same `f64`, so `float(meta["t"])` in Python is exact |
//! | `replicas` | number of replicas, a decimal integer ≥ 1                                   |
//! | `n`        | number of neurons (inputs and bias included), a decimal integer             |
//! | `n_edges`  | number of synapses, a decimal integer: the sum of the blocks' sizes         |
//! | `blocks`   | a JSON list, one object per block in order: `{"kind": "dense", "rows": [r0, r1], "cols": [c0, c1]}` or `{"kind": "sparse", "edges": nnz}` |
//! | `checksum` | `crc32:` and 8 lowercase hex digits: the CRC-32 (IEEE, Python's `zlib.crc32`) of every tensor's raw bytes, tensors in name order, as one stream. Written by every save; optional on load (files from before it have none), checked when present |
//!
//! Any other `__metadata__` entries are free-form extra metadata ([`Checkpoint::metadata`]);
//! the keys above are reserved.
//!
//! [`load`] (and [`from_bytes`], the same on bytes) accepts a file only if all of this holds:
//! the file is a well-formed safetensors file (not truncated), `format` is right and `version`
//! is `2` (or `1`, below), every reserved key is present and parses (`t` finite), `config` is
//! valid JSON, `replicas` ≥ 1, `blocks` is a list of objects of exactly the two forms above (no
//! other keys) whose ranges satisfy `start <= end <= n`, `n_edges` is the sum of the blocks'
//! sizes, each tensor the blocks call for is present with the dtype and shape above and no
//! other tensor is, every float is finite, every `src`, `dst` index is `< n`, and the tensors'
//! bytes give the `checksum` where there is one (a byte changed since the file was written is
//! caught there if nowhere else). [`save`] checks the same of the [`Checkpoint`] before it
//! writes, so whatever it writes, [`load`] reads back, bit for bit.
//!
//! ## Version 1
//!
//! Version 1 (written before networks were stored as blocks) is still read. It has no
//! `blocks` entry and exactly six tensors: `x`, `p` as above, `w`, `pw` (`F32`,
//! `[replicas, n_edges]`) and `edge_src`, `edge_dst` (`U32`, `[n_edges]`): synapse `m`
//! carries `w[r, m]` from `edge_src[m]` into `edge_dst[m]`. [`load`] returns it as one sparse
//! block holding those lists; its synapses were in CSR order by target, which for a layered
//! network with a bias is not the weight-vector order of today, so
//! [`Checkpoint::state_for`] puts the weights back in the network's order. [`save`] always
//! writes version 2.
//!
//! # Safety of saving
//!
//! [`save`] writes the whole file to the sibling `<name>.tmp` (replacing any stale one),
//! fsyncs it, then renames it over `<name>` (an atomic replace on POSIX file systems) and
//! fsyncs the directory (best effort). If anything fails, the temporary file is removed and
//! an existing checkpoint at the path is left untouched: a reader sees the old file or the
//! new one, never a mix. Two concurrent saves to the same path are not supported (they share
//! the temporary name).
//!
//! # Reading a checkpoint from Python
//!
//! ```text
//! # pip install safetensors numpy
//! import json
//! import numpy as np
//! from safetensors import safe_open
//! from safetensors.numpy import load_file
//!
//! d = load_file("run.safetensors")
//! with safe_open("run.safetensors", "np") as f:
//!     meta = f.metadata()            # dict of str -> str
//! assert meta["format"] == "localprop-checkpoint" and meta["version"] == "2"
//! step, t = int(meta["step"]), float(meta["t"])
//! config = json.loads(meta["config"])
//! import zlib                        # optional: verify the checksum
//! crc = 0
//! for name in sorted(d):
//!     crc = zlib.crc32(d[name].tobytes(), crc)
//! assert meta.get("checksum", f"crc32:{crc:08x}") == f"crc32:{crc:08x}"
//! x, p = d["x"], d["p"]              # float32, shape (replicas, n)
//!
//! # Every block into one weight matrix per replica: W[r, i, j] = weight of j -> i.
//! replicas, n = x.shape
//! W = np.zeros((replicas, n, n), np.float32)
//! for k, b in enumerate(json.loads(meta["blocks"])):
//!     w = d[f"blocks.{k}.w"]
//!     if b["kind"] == "dense":       # w: float32, shape (replicas, r1 - r0, c1 - c0)
//!         (r0, r1), (c0, c1) = b["rows"], b["cols"]
//!         W[:, r0:r1, c0:c1] = w     # w[r, i, j]: weight of c0 + j -> r0 + i
//!     else:                          # w: float32, shape (replicas, nnz)
//!         src, dst = d[f"blocks.{k}.src"], d[f"blocks.{k}.dst"]   # uint32, shape (nnz,)
//!         W[:, dst, src] = w
//! ```
//!
//! (`pw` reads the same way from `blocks.{k}.pw`.) A Python program can write a checkpoint
//! with `safetensors.numpy.save_file(tensors, path, metadata=meta)` as long as it follows the
//! format above (`float32`/`uint32` arrays of the right shapes, every metadata value a
//! string).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::ops::Range;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::network::Network;
use crate::state::State;

/// The value of the `format` metadata entry.
pub const FORMAT: &str = "localprop-checkpoint";

/// The value of the `version` metadata entry this build writes.
pub const VERSION: &str = "2";

/// The versions [`load`] reads.
pub const READ_VERSIONS: [&str; 2] = ["1", "2"];

/// The metadata keys the format itself uses; extra metadata may not use them.
pub const RESERVED_KEYS: [&str; 10] =
    ["format", "version", "config", "step", "t", "replicas", "n", "n_edges", "blocks", "checksum"];

/// The tensors of a version-1 checkpoint, in the order that format listed them.
const TENSORS_V1: [&str; 6] = ["x", "p", "w", "pw", "edge_src", "edge_dst"];

/// One block of synapses of a checkpoint (see the [module docs](self)): its synapses' weights
/// are a contiguous run of the state's weight vector, the blocks in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointBlock {
    /// Every source in `cols` feeds every target in `rows`; the weights are row-major:
    /// synapse `cols.start + j -> rows.start + i` is the block's `i * cols.len() + j`-th.
    Dense {
        /// Target neurons (the rows).
        rows: Range<usize>,
        /// Source neurons (the columns).
        cols: Range<usize>,
    },
    /// Explicit synapses `src[m] -> dst[m]`, in order; `src` and `dst` have the same length.
    Sparse {
        /// Source neuron of each synapse.
        src: Vec<u32>,
        /// Target neuron of each synapse.
        dst: Vec<u32>,
    },
}

impl CheckpointBlock {
    /// Number of synapses: `rows x cols` for a dense block, `src.len()` for a sparse one.
    pub fn len(&self) -> usize {
        match self {
            CheckpointBlock::Dense { rows, cols } => rows.len().saturating_mul(cols.len()),
            CheckpointBlock::Sparse { src, .. } => src.len(),
        }
    }

    /// Whether the block holds no synapse.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(source, target)` of every synapse of the block, in weight order (a dense block row
    /// by row).
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let (dense, sparse) = match self {
            CheckpointBlock::Dense { rows, cols } => (Some((rows.clone(), cols.clone())), None),
            CheckpointBlock::Sparse { src, dst } => (None, Some((src, dst))),
        };
        let dense =
            dense.into_iter().flat_map(|(rows, cols)| rows.flat_map(move |i| cols.clone().map(move |j| (j, i))));
        let sparse =
            sparse.into_iter().flat_map(|(src, dst)| src.iter().zip(dst).map(|(&j, &i)| (j as usize, i as usize)));
        dense.chain(sparse)
    }
}

/// What a checkpoint holds besides the tensors.
///
/// The tensors are the state's `x`, `p`, and per block its part of `w`, `pw` (and the edge
/// lists of a sparse block); the rest goes into the file's metadata (see the
/// [module docs](self) for the format).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The engine's state; [`State::step`] is stored as the `step` metadata entry. `w` and
    /// `pw` are flat, `[replica][synapse]`, the synapses in the order of [`Checkpoint::blocks`].
    pub state: State,
    /// The blocks of synapses, in weight-vector order ([`Checkpoint::blocks_of`]).
    pub blocks: Vec<CheckpointBlock>,
    /// Number of neurons, inputs and bias included ([`Network::n`]).
    pub n: usize,
    /// The time of the state (usually `step * tau`); must be finite.
    pub t: f64,
    /// The full experiment configuration, as a JSON document; stored verbatim.
    pub config_json: String,
    /// Extra string metadata, stored next to the format's own entries; its keys may not be
    /// any of [`RESERVED_KEYS`].
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// The blocks of `net` as a checkpoint stores them: its dense blocks, then its sparse
    /// block (with a copy of its edge lists), in weight-vector order.
    pub fn blocks_of(net: &Network) -> Vec<CheckpointBlock> {
        let dense =
            net.dense_blocks().iter().map(|b| CheckpointBlock::Dense { rows: b.rows.clone(), cols: b.cols.clone() });
        let sparse = net.sparse_block().map(|s| CheckpointBlock::Sparse { src: s.src.clone(), dst: s.dst.clone() });
        dense.chain(sparse).collect()
    }

    /// Number of synapses, the sum of the blocks' sizes.
    pub fn n_edges(&self) -> usize {
        self.blocks.iter().fold(0usize, |acc, b| acc.saturating_add(b.len()))
    }

    /// `(source, target)` of every synapse, in the order of the state's `w` and `pw`.
    pub fn edges(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.blocks.iter().flat_map(CheckpointBlock::edges)
    }

    /// The state to run `net` from: [`Checkpoint::state`] with `w` and `pw` in the network's
    /// weight-vector order.
    ///
    /// If the checkpoint's synapses, in order, are `net`'s ([`Network::edges`]), that is the
    /// state as it is. If they are the same synapses in another order (a version-1 file,
    /// whose synapses are in CSR order), `w` and `pw` are permuted into the network's order.
    /// Otherwise (another neuron count, another number of synapses, a synapse the network
    /// does not have) it is an [`Error::State`] naming the first difference; an inconsistent
    /// checkpoint (state sizes, block ranges) is one too.
    pub fn state_for(&self, net: &Network) -> Result<State> {
        Ok(match self.order_for(net)? {
            None => self.state.clone(),
            Some(to) => permuted(&self.state, &to),
        })
    }

    /// [`Checkpoint::state_for`] without a copy of the state when its order is the network's
    /// (for large networks: the state is most of a checkpoint's memory).
    pub fn into_state_for(self, net: &Network) -> Result<State> {
        Ok(match self.order_for(net)? {
            None => self.state,
            Some(to) => permuted(&self.state, &to),
        })
    }

    /// Checks the checkpoint against `net` ([`Checkpoint::state_for`]) and returns `None` when
    /// its synapses are in the network's order, else the network's position of each of its
    /// synapses.
    fn order_for(&self, net: &Network) -> Result<Option<Vec<u32>>> {
        if self.n != net.n() {
            return Err(Error::State(format!("the checkpoint has {} neurons, the network {}", self.n, net.n())));
        }
        let e = check_blocks(&self.blocks, self.n).map_err(|m| Error::State(format!("the checkpoint's {m}")))?;
        if e != net.n_edges() {
            return Err(Error::State(format!("the checkpoint has {e} edges, the network {}", net.n_edges())));
        }
        let s = &self.state;
        s.check(s.replicas, self.n, e).map_err(|err| match err {
            Error::State(m) => Error::State(format!("the checkpoint's state: {m}")),
            other => other,
        })?;
        if self.same_blocks_as(net) {
            return Ok(None);
        }
        let Some(first) = self.edges().zip(net.edges()).position(|(a, b)| a != b) else {
            return Ok(None);
        };
        // Where each of the checkpoint's synapses sits in the network's weight vector (the
        // network's synapse count fits 32 bits); the counts are equal, so a map that hits every
        // position at most once is a permutation.
        let mut to = Vec::with_capacity(e);
        let mut taken = vec![false; e];
        for (k, (j, i)) in self.edges().enumerate() {
            let why = match net.edge_index(j, i) {
                Some(at) if !taken[at] => {
                    taken[at] = true;
                    to.push(at as u32);
                    continue;
                }
                Some(_) => "appears twice in the checkpoint",
                None => "is not a synapse of the network",
            };
            let (s0, d0) = self.edges().nth(first).expect("first < e");
            let (ns, nd) = net.edges().nth(first).expect("first < e");
            return Err(Error::State(format!(
                "edge {first} of the checkpoint is {s0} -> {d0}, of the network {ns} -> {nd}, and the checkpoint's \
                 edge {k}, {j} -> {i}, {why}: the checkpoint was not taken of this network"
            )));
        }
        Ok(Some(to))
    }

    /// Whether the blocks are `net`'s blocks, one for one (then the orders agree).
    fn same_blocks_as(&self, net: &Network) -> bool {
        let sparse = usize::from(net.sparse_block().is_some());
        if self.blocks.len() != net.dense_blocks().len() + sparse {
            return false;
        }
        let dense = net
            .dense_blocks()
            .iter()
            .zip(&self.blocks)
            .all(|(b, c)| matches!(c, CheckpointBlock::Dense { rows, cols } if *rows == b.rows && *cols == b.cols));
        let sparse = match (net.sparse_block(), self.blocks.last()) {
            (None, _) => true,
            (Some(s), Some(CheckpointBlock::Sparse { src, dst })) => *src == s.src && *dst == s.dst,
            (Some(_), _) => false,
        };
        dense && sparse
    }
}

/// `state` with synapse `k` of every replica's `w` and `pw` moved to position `to[k]`.
fn permuted(state: &State, to: &[u32]) -> State {
    let e = to.len();
    let permute = |v: &[f32]| {
        let mut out = vec![0f32; v.len()];
        for (from, into) in v.chunks_exact(e).zip(out.chunks_exact_mut(e)) {
            for (&a, &at) in from.iter().zip(to) {
                into[at as usize] = a;
            }
        }
        out
    };
    State {
        step: state.step,
        replicas: state.replicas,
        x: state.x.clone(),
        p: state.p.clone(),
        w: permute(&state.w),
        pw: permute(&state.pw),
    }
}

/// Writes `ckpt` to `path` in the checkpoint format (version 2), atomically replacing any
/// file there.
///
/// The checkpoint is checked first, nothing is written unless it passes: sizes of the state
/// against `replicas`, `n` and the blocks' synapse count, finite values and `t`, block ranges
/// within `0..n`, sparse blocks with `src` and `dst` of one length and indices `< n` are an
/// [`Error::State`]; a `config_json` that is not JSON or an extra metadata key that is
/// reserved is an [`Error::Data`]. I/O failures are an [`Error::Io`] naming the file; in every
/// error case an existing file at `path` is left as it was and no temporary file remains.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    let bytes = encode(path, ckpt)?;
    crate::io::write_atomic(path, &bytes)
}

/// The bytes [`save`] writes for `ckpt` (version 2), with the same checks first; `name` names
/// the checkpoint in errors. [`from_bytes`] reads them back, bit for bit.
pub fn to_bytes(ckpt: &Checkpoint, name: &str) -> Result<Vec<u8>> {
    encode(Path::new(name), ckpt)
}

/// Reads and validates a checkpoint written by [`save`] (or by anyone following the format),
/// version 2 or 1.
///
/// A file that cannot be read is an [`Error::Io`]; one that is not a valid checkpoint
/// (truncated, not safetensors, wrong `format` or `version`, a missing or unexpected tensor,
/// a wrong dtype or shape, a non-finite value, an edge index out of range, unparsable
/// metadata, `blocks` that do not fit `n` or `n_edges`) is an [`Error::Data`] naming the
/// path and the problem. Never panics.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    from_bytes(&bytes, &path.display().to_string())
}

/// Reads and validates a checkpoint from the bytes of a file (version 2 or 1), as [`load`]
/// does once it has read them; `name` names the bytes in errors (a path, `<upload>`...).
///
/// Bytes that are not a valid checkpoint (truncated, not safetensors, wrong `format` or
/// `version`, a missing or unexpected tensor, a wrong dtype or shape, a non-finite value, an
/// edge index out of range, unparsable metadata, `blocks` that do not fit `n` or `n_edges`, a
/// `checksum` the tensors do not give) are an [`Error::Data`] naming `name` and the problem.
/// Never panics, whatever the bytes; allocates in proportion to their length.
pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Checkpoint> {
    decode(bytes).map_err(|message| Error::Data { path: name.to_string(), message })
}

/// One tensor ready to serialize.
#[derive(Clone, Debug)]
struct Tensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The names of block `k`'s tensors.
fn block_name(k: usize, field: &str) -> String {
    format!("blocks.{k}.{field}")
}

/// Checks that every block fits `n` neurons (ranges `start <= end <= n`, sparse `src` and
/// `dst` of one length with indices `< n`) and returns the total number of synapses.
fn check_blocks(blocks: &[CheckpointBlock], n: usize) -> std::result::Result<usize, String> {
    let mut total = 0usize;
    for (k, b) in blocks.iter().enumerate() {
        let len = match b {
            CheckpointBlock::Dense { rows, cols } => {
                for (name, r) in [("rows", rows), ("cols", cols)] {
                    check_range(k, name, r.start, r.end, n)?;
                }
                rows.len()
                    .checked_mul(cols.len())
                    .ok_or_else(|| format!("block {k} has more than usize::MAX synapses"))?
            }
            CheckpointBlock::Sparse { src, dst } => {
                if src.len() != dst.len() {
                    return Err(format!("block {k} has {} entries in `src` but {} in `dst`", src.len(), dst.len()));
                }
                check_indices(k, src, dst, n)?;
                src.len()
            }
        };
        total = total.checked_add(len).ok_or("blocks hold more than usize::MAX synapses in all")?;
    }
    Ok(total)
}

/// Checks that the range `start..end` of block `k` is a range of neurons.
fn check_range(k: usize, name: &str, start: usize, end: usize, n: usize) -> std::result::Result<(), String> {
    if start > end || end > n {
        return Err(format!("block {k}: `{name}` [{start}, {end}] is not a range within 0..{n} (start <= end <= n)"));
    }
    Ok(())
}

/// Checks that every index of sparse block `k` is a neuron index (`< n`).
fn check_indices(k: usize, src: &[u32], dst: &[u32], n: usize) -> std::result::Result<(), String> {
    for (field, v) in [("src", src), ("dst", dst)] {
        if let Some(m) = v.iter().position(|&i| i as usize >= n) {
            return Err(format!("`{}[{m}]` = {} is not a neuron index (n = {n})", block_name(k, field), v[m]));
        }
    }
    Ok(())
}

/// The `blocks` metadata entry: a JSON list with one object per block.
fn blocks_json(blocks: &[CheckpointBlock]) -> String {
    let items: Vec<String> = blocks
        .iter()
        .map(|b| match b {
            CheckpointBlock::Dense { rows, cols } => format!(
                r#"{{"kind": "dense", "rows": [{}, {}], "cols": [{}, {}]}}"#,
                rows.start, rows.end, cols.start, cols.end
            ),
            CheckpointBlock::Sparse { src, .. } => format!(r#"{{"kind": "sparse", "edges": {}}}"#, src.len()),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// Checks `ckpt` and splits it into the file's tensors and metadata.
fn parts(path: &Path, ckpt: &Checkpoint) -> Result<(Vec<Tensor>, HashMap<String, String>)> {
    let shown = path.display();
    let state_err = |m: String| Error::State(format!("cannot save checkpoint `{shown}`: {m}"));
    let data_err = |m: String| Error::Data { path: shown.to_string(), message: format!("cannot save: {m}") };
    let s = &ckpt.state;
    let (r, n) = (s.replicas, ckpt.n);
    if r == 0 {
        return Err(state_err("0 replicas; a checkpoint needs at least one".into()));
    }
    let e = check_blocks(&ckpt.blocks, n).map_err(state_err)?;
    s.check(r, n, e).map_err(|err| match err {
        Error::State(m) => state_err(m),
        other => other,
    })?;
    if !ckpt.t.is_finite() {
        return Err(state_err(format!("the time t = {} is not finite", ckpt.t)));
    }
    if let Err(err) = serde_json::from_str::<serde_json::Value>(&ckpt.config_json) {
        return Err(data_err(format!("the configuration is not valid JSON: {err}")));
    }
    let mut meta = HashMap::with_capacity(ckpt.metadata.len() + RESERVED_KEYS.len());
    for (k, v) in &ckpt.metadata {
        if RESERVED_KEYS.contains(&k.as_str()) {
            return Err(data_err(format!("extra metadata key `{k}` is reserved by the checkpoint format")));
        }
        meta.insert(k.clone(), v.clone());
    }
    for (k, v) in [
        ("format", FORMAT.to_string()),
        ("version", VERSION.to_string()),
        ("config", ckpt.config_json.clone()),
        ("step", s.step.to_string()),
        ("t", format!("{:?}", ckpt.t)),
        ("replicas", r.to_string()),
        ("n", n.to_string()),
        ("n_edges", e.to_string()),
        ("blocks", blocks_json(&ckpt.blocks)),
    ] {
        meta.insert(k.to_string(), v);
    }
    let le = |v: &[f32]| v.iter().flat_map(|a| a.to_le_bytes()).collect::<Vec<u8>>();
    let mut tensors = vec![
        Tensor { name: "x".into(), dtype: Dtype::F32, shape: vec![r, n], bytes: le(&s.x) },
        Tensor { name: "p".into(), dtype: Dtype::F32, shape: vec![r, n], bytes: le(&s.p) },
    ];
    // Block `k`'s part of every replica's weight vector, replica after replica.
    let of_block = |v: &[f32], at: Range<usize>| -> Vec<u8> {
        v.chunks_exact(e.max(1)).take(r).flat_map(|row| row[at.clone()].iter().flat_map(|a| a.to_le_bytes())).collect()
    };
    let mut offset = 0;
    for (k, b) in ckpt.blocks.iter().enumerate() {
        let at = offset..offset + b.len();
        offset = at.end;
        let shape = match b {
            CheckpointBlock::Dense { rows, cols } => vec![r, rows.len(), cols.len()],
            CheckpointBlock::Sparse { src, .. } => vec![r, src.len()],
        };
        for (field, v) in [("w", &s.w), ("pw", &s.pw)] {
            tensors.push(Tensor {
                name: block_name(k, field),
                dtype: Dtype::F32,
                shape: shape.clone(),
                bytes: of_block(v, at.clone()),
            });
        }
        if let CheckpointBlock::Sparse { src, dst } = b {
            for (field, v) in [("src", src), ("dst", dst)] {
                tensors.push(Tensor {
                    name: block_name(k, field),
                    dtype: Dtype::U32,
                    shape: vec![v.len()],
                    bytes: v.iter().flat_map(|a| a.to_le_bytes()).collect(),
                });
            }
        }
    }
    meta.insert("checksum".into(), checksum(tensors.iter().map(|t| (t.name.as_str(), t.bytes.as_slice()))));
    Ok((tensors, meta))
}

/// `crc32:` and the CRC-32 of the tensors' bytes, in name order, as one stream.
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut sorted: Vec<(&str, &[u8])> = tensors.collect();
    sorted.sort_by_key(|&(name, _)| name);
    let mut crc = crc32fast::Hasher::new();
    for (_, bytes) in sorted {
        crc.update(bytes);
    }
    format!("crc32:{:08x}", crc.finalize())
}

/// Checks and serializes `ckpt` into the bytes of a checkpoint file.
fn encode(path: &Path, ckpt: &Checkpoint) -> Result<Vec<u8>> {
    let (tensors, meta) = parts(path, ckpt)?;
    serialize(path, &tensors, meta)
}

/// Serializes tensors and metadata as a safetensors file.
fn serialize(path: &Path, tensors: &[Tensor], meta: HashMap<String, String>) -> Result<Vec<u8>> {
    let err = |m: String| Error::Data { path: path.display().to_string(), message: format!("cannot serialize: {m}") };
    let views = tensors
        .iter()
        .map(|t| {
            TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.as_str(), v))
                .map_err(|e| err(format!("tensor `{}`: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(meta)).map_err(|e| err(e.to_string()))
}

/// A block as the `blocks` metadata entry describes it.
enum BlockSpec {
    Dense { rows: Range<usize>, cols: Range<usize> },
    Sparse { edges: usize },
}

/// Parses and checks the `blocks` metadata entry against `n` neurons.
fn parse_blocks(text: &str, n: usize) -> std::result::Result<Vec<BlockSpec>, String> {
    use serde_json::Value;
    let err = |m: String| format!("metadata `blocks`: {m}");
    let value: Value = serde_json::from_str(text).map_err(|e| err(format!("not valid JSON: {e}")))?;
    let list = value.as_array().ok_or_else(|| err("not a JSON list of blocks".into()))?;
    let int = |v: &Value| v.as_u64().and_then(|u| usize::try_from(u).ok());
    let mut specs = Vec::with_capacity(list.len());
    for (k, item) in list.iter().enumerate() {
        let obj = item.as_object().ok_or_else(|| err(format!("block {k} is not a JSON object")))?;
        let kind =
            obj.get("kind").and_then(Value::as_str).ok_or_else(|| err(format!("block {k} has no `kind` string")))?;
        let keys: &[&str] = match kind {
            "dense" => &["kind", "rows", "cols"],
            "sparse" => &["kind", "edges"],
            other => return Err(err(format!("block {k} has kind `{other}`, want `dense` or `sparse`"))),
        };
        if let Some(key) = obj.keys().find(|key| !keys.contains(&key.as_str())) {
            return Err(err(format!("block {k} ({kind}) has the unknown key `{key}`")));
        }
        if kind == "dense" {
            let range = |name: &str| {
                let pair = obj.get(name).and_then(Value::as_array).filter(|a| a.len() == 2);
                let Some((start, end)) = pair.and_then(|a| Some((int(&a[0])?, int(&a[1])?))) else {
                    return Err(err(format!("block {k}: `{name}` is not [start, end], two non-negative integers")));
                };
                check_range(k, name, start, end, n).map_err(err)?;
                Ok(start..end)
            };
            specs.push(BlockSpec::Dense { rows: range("rows")?, cols: range("cols")? });
        } else {
            let edges = obj.get("edges").and_then(int);
            let edges = edges.ok_or_else(|| err(format!("block {k}: `edges` is not a non-negative integer")))?;
            specs.push(BlockSpec::Sparse { edges });
        }
    }
    Ok(specs)
}

/// Checks that the blocks `specs` hold `n_edges` synapses in all.
fn check_n_edges(specs: &[BlockSpec], n_edges: usize) -> std::result::Result<(), String> {
    let mut total = 0usize;
    for (k, spec) in specs.iter().enumerate() {
        let len = match spec {
            BlockSpec::Dense { rows, cols } => rows.len().checked_mul(cols.len()),
            BlockSpec::Sparse { edges } => Some(*edges),
        };
        total = len.and_then(|len| total.checked_add(len)).ok_or_else(|| {
            format!("metadata `blocks`: the blocks up to block {k} hold more than usize::MAX synapses")
        })?;
    }
    if total != n_edges {
        return Err(format!(
            "metadata `n_edges` = {n_edges}, but the blocks in metadata `blocks` hold {total} synapses"
        ));
    }
    Ok(())
}

/// Parses and validates the bytes of a checkpoint file; the error says what is wrong.
fn decode(bytes: &[u8]) -> std::result::Result<Checkpoint, String> {
    let invalid =
        |e: safetensors::SafeTensorError| format!("not a valid safetensors file (truncated or corrupt?): {e}");
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(invalid)?;
    let meta = header.metadata().as_ref().ok_or("the header has no `__metadata__`; not a localprop checkpoint")?;
    let get = |key: &str| meta.get(key).map(String::as_str).ok_or_else(|| format!("metadata entry `{key}` is missing"));
    let format = meta.get("format").map(String::as_str);
    if format != Some(FORMAT) {
        let found = format.map_or_else(|| "missing".to_string(), |f| format!("`{f}`"));
        return Err(format!("metadata `format` is {found}, want `{FORMAT}`; not a localprop checkpoint"));
    }
    let version = get("version")?;
    if !READ_VERSIONS.contains(&version) {
        return Err(format!(
            "unsupported checkpoint version `{version}` (this build reads versions {})",
            READ_VERSIONS.join(" and ")
        ));
    }
    let int = |key: &str| -> std::result::Result<usize, String> {
        let v = get(key)?;
        v.parse().map_err(|e| format!("metadata `{key}` = `{v}` is not a non-negative integer: {e}"))
    };
    let replicas = int("replicas")?;
    if replicas == 0 {
        return Err("metadata `replicas` is 0; a checkpoint needs at least one replica".into());
    }
    let n = int("n")?;
    let n_edges = int("n_edges")?;
    let step_text = get("step")?;
    let step: u64 =
        step_text.parse().map_err(|e| format!("metadata `step` = `{step_text}` is not a u64 step count: {e}"))?;
    let t_text = get("t")?;
    let t: f64 = t_text.parse().map_err(|e| format!("metadata `t` = `{t_text}` is not a number: {e}"))?;
    if !t.is_finite() {
        return Err(format!("metadata `t` = `{t_text}` is not finite"));
    }
    let config_json = get("config")?.to_string();
    if let Err(e) = serde_json::from_str::<serde_json::Value>(&config_json) {
        return Err(format!("metadata `config` is not valid JSON: {e}"));
    }
    let specs = match version {
        "1" => None,
        _ => {
            let specs = parse_blocks(get("blocks")?, n)?;
            check_n_edges(&specs, n_edges)?;
            Some(specs)
        }
    };
    check_tensor_names(&tensors, specs.as_deref())?;
    let state_shape = [replicas, n];
    let x = f32_tensor(&tensors, "x", &state_shape, "[replicas, n]")?;
    let p = f32_tensor(&tensors, "p", &state_shape, "[replicas, n]")?;
    let (blocks, w, pw) = match &specs {
        None => decode_v1(&tensors, replicas, n, n_edges)?,
        Some(specs) => decode_v2(&tensors, specs, replicas, n, n_edges)?,
    };
    // Last, so that a structural problem is named as such rather than as a damaged file.
    if let Some(stored) = meta.get("checksum") {
        let names = sorted_names(&tensors);
        let data = names.iter().map(|name| (name.as_str(), tensors.tensor(name).map_or(&[][..], |t| t.data())));
        let got = checksum(data);
        if *stored != got {
            return Err(format!(
                "metadata `checksum` = `{stored}`, but the tensors' bytes give `{got}`: the file was damaged or edited after it was written"
            ));
        }
    }
    let metadata = meta
        .iter()
        .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Checkpoint { state: State { step, replicas, x, p, w, pw }, blocks, n, t, config_json, metadata })
}

/// The names of `tensors`, sorted.
fn sorted_names(tensors: &SafeTensors<'_>) -> Vec<String> {
    let mut names: Vec<String> = tensors.names().into_iter().map(String::from).collect();
    names.sort();
    names
}

/// Checks that the file holds no tensor but those of its version: version 1's six, or, for
/// a version-2 file with blocks `specs`, `x`, `p` and each block's.
fn check_tensor_names(tensors: &SafeTensors<'_>, specs: Option<&[BlockSpec]>) -> std::result::Result<(), String> {
    let Some(specs) = specs else {
        if let Some(name) = sorted_names(tensors).into_iter().find(|name| !TENSORS_V1.contains(&name.as_str())) {
            return Err(format!(
                "unexpected tensor `{name}` (a version-1 checkpoint holds only {})",
                TENSORS_V1.join(", ")
            ));
        }
        return Ok(());
    };
    let mut expected: HashSet<String> = ["x", "p"].into_iter().map(String::from).collect();
    for (k, spec) in specs.iter().enumerate() {
        expected.extend(["w", "pw"].map(|f| block_name(k, f)));
        if let BlockSpec::Sparse { .. } = spec {
            expected.extend(["src", "dst"].map(|f| block_name(k, f)));
        }
    }
    if let Some(name) = sorted_names(tensors).into_iter().find(|name| !expected.contains(name)) {
        return Err(format!(
            "unexpected tensor `{name}` (a checkpoint holds only `x`, `p` and, for each block `k` that metadata \
             `blocks` lists ({} here), `blocks.{{k}}.w`, `blocks.{{k}}.pw`, and `blocks.{{k}}.src`, `blocks.{{k}}.dst` \
             for a sparse block)",
            specs.len()
        ));
    }
    Ok(())
}

/// The blocks of a file with the state's flat `w` and `pw`.
type Synapses = (Vec<CheckpointBlock>, Vec<f32>, Vec<f32>);

/// The blocks and the flat `w`, `pw` of a version-1 file: one sparse block, its edge lists.
fn decode_v1(
    tensors: &SafeTensors<'_>,
    replicas: usize,
    n: usize,
    n_edges: usize,
) -> std::result::Result<Synapses, String> {
    let edge_shape = [replicas, n_edges];
    let w = f32_tensor(tensors, "w", &edge_shape, "[replicas, n_edges]")?;
    let pw = f32_tensor(tensors, "pw", &edge_shape, "[replicas, n_edges]")?;
    let src = u32_tensor(tensors, "edge_src", n_edges, "[n_edges]")?;
    let dst = u32_tensor(tensors, "edge_dst", n_edges, "[n_edges]")?;
    for (name, v) in [("edge_src", &src), ("edge_dst", &dst)] {
        if let Some(m) = v.iter().position(|&i| i as usize >= n) {
            return Err(format!("`{name}[{m}]` = {} is not a neuron index (n = {n})", v[m]));
        }
    }
    Ok((vec![CheckpointBlock::Sparse { src, dst }], w, pw))
}

/// The blocks and the flat `w`, `pw` of a version-2 file whose `blocks` entry is `specs`.
fn decode_v2(
    tensors: &SafeTensors<'_>,
    specs: &[BlockSpec],
    replicas: usize,
    n: usize,
    n_edges: usize,
) -> std::result::Result<Synapses, String> {
    // Check every tensor before the weight vectors are allocated.
    let mut blocks = Vec::with_capacity(specs.len());
    let mut parts: Vec<(&[u8], &[u8], usize)> = Vec::with_capacity(specs.len());
    for (k, spec) in specs.iter().enumerate() {
        let (shape, what, len) = match spec {
            BlockSpec::Dense { rows, cols } => {
                (vec![replicas, rows.len(), cols.len()], "[replicas, rows, cols]", rows.len() * cols.len())
            }
            BlockSpec::Sparse { edges } => (vec![replicas, *edges], "[replicas, edges]", *edges),
        };
        let [w, pw] = ["w", "pw"].map(|f| {
            let name = block_name(k, f);
            let bytes = tensor_bytes(tensors, &name, Dtype::F32, &shape, what)?;
            check_finite(&name, bytes, &shape)?;
            Ok::<_, String>(bytes)
        });
        parts.push((w?, pw?, len));
        blocks.push(match spec {
            BlockSpec::Dense { rows, cols } => CheckpointBlock::Dense { rows: rows.clone(), cols: cols.clone() },
            BlockSpec::Sparse { edges } => {
                let src = u32_tensor(tensors, &block_name(k, "src"), *edges, "[edges]")?;
                let dst = u32_tensor(tensors, &block_name(k, "dst"), *edges, "[edges]")?;
                check_indices(k, &src, &dst, n)?;
                CheckpointBlock::Sparse { src, dst }
            }
        });
    }
    // Every block's tensors hold `replicas x len` values, so this fits unless it is 0.
    let size = replicas.checked_mul(n_edges).ok_or("metadata `replicas` x `n_edges` overflows usize")?;
    let (mut w, mut pw) = (vec![0f32; size], vec![0f32; size]);
    let mut offset = 0;
    for (bw, bpw, len) in parts {
        if len == 0 {
            continue;
        }
        for (v, bytes) in [(&mut w, bw), (&mut pw, bpw)] {
            for (row, from) in v.chunks_exact_mut(n_edges).zip(bytes.chunks_exact(len * 4)) {
                for (a, c) in row[offset..offset + len].iter_mut().zip(from.chunks_exact(4)) {
                    *a = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
        }
        offset += len;
    }
    Ok((blocks, w, pw))
}

/// The bytes of tensor `name` after checking its dtype and shape (`what` names the shape).
fn tensor_bytes<'a>(
    tensors: &SafeTensors<'a>,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    what: &str,
) -> std::result::Result<&'a [u8], String> {
    let view = tensors.tensor(name).map_err(|_| format!("tensor `{name}` is missing"))?;
    if view.dtype() != dtype {
        return Err(format!("tensor `{name}` has dtype {}, want {dtype}", view.dtype()));
    }
    if view.shape() != shape {
        return Err(format!("tensor `{name}` has shape {:?}, want {what} = {shape:?}", view.shape()));
    }
    Ok(view.data())
}

/// Checks that the `F32` values `bytes` of tensor `name` of shape `shape` are all finite; the
/// error gives the first bad value's index.
fn check_finite(name: &str, bytes: &[u8], shape: &[usize]) -> std::result::Result<(), String> {
    let Some((k, a)) = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .enumerate()
        .find(|(_, a)| !a.is_finite())
    else {
        return Ok(());
    };
    let mut index = vec![0; shape.len()];
    let mut rest = k;
    for (i, &s) in index.iter_mut().zip(shape).rev() {
        (*i, rest) = (rest % s.max(1), rest / s.max(1));
    }
    let index: Vec<String> = index.iter().map(usize::to_string).collect();
    Err(format!("tensor `{name}` holds {a} at [{}]; every value must be finite", index.join(", ")))
}

/// Reads an `F32` tensor of shape `shape`, checking that every value is finite.
fn f32_tensor(
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize],
    what: &str,
) -> std::result::Result<Vec<f32>, String> {
    let bytes = tensor_bytes(tensors, name, Dtype::F32, shape, what)?;
    check_finite(name, bytes, shape)?;
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Reads a `U32` tensor of shape `[len]`.
fn u32_tensor(tensors: &SafeTensors<'_>, name: &str, len: usize, what: &str) -> std::result::Result<Vec<u32>, String> {
    let bytes = tensor_bytes(tensors, name, Dtype::U32, &[len], what)?;
    Ok(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("localprop-checkpoint-{}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> =
                fs::read_dir(&self.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// 2 replicas, 4 neurons, 4 edges in two blocks (a dense block `0, 1 -> 2`, then a sparse
    /// block `2 -> 3, 3 -> 3`), awkward float values.
    fn sample() -> Checkpoint {
        let odd = [-0.0f32, f32::from_bits(1), f32::MAX, f32::MIN_POSITIVE, 0.1, -std::f32::consts::PI, 1e-30, 7.0];
        let x: Vec<f32> = odd.to_vec();
        let p: Vec<f32> = odd.iter().rev().copied().collect();
        let w: Vec<f32> = odd.iter().map(|a| a * 0.5).collect();
        let pw: Vec<f32> = odd.iter().map(|a| -a).collect();
        Checkpoint {
            state: State { step: u64::MAX, replicas: 2, x, p, w, pw },
            blocks: vec![
                CheckpointBlock::Dense { rows: 2..3, cols: 0..2 },
                CheckpointBlock::Sparse { src: vec![2, 3], dst: vec![3, 3] },
            ],
            n: 4,
            t: 0.1 + 0.2,
            config_json: r#"{"tau": 0.1, "name": "h\u00e9llo \"q\"", "net": {"layers": [2, 3, 1]}}"#.to_string(),
            metadata: BTreeMap::from([
                ("git".to_string(), "abc123".to_string()),
                ("note".to_string(), "ünïcode ✓".to_string()),
            ]),
        }
    }

    /// A checkpoint of `net` with `replicas` replicas whose every value is distinct: the
    /// weight of synapse `j -> i` in replica `r` is `f(r, j, i)`, its costate `-f - 0.5`.
    fn of_network(net: &Network, replicas: usize) -> Checkpoint {
        let n = net.n();
        let w: Vec<f32> = (0..replicas).flat_map(|r| net.edges().map(move |(j, i)| f(r, j, i))).collect();
        Checkpoint {
            state: State {
                step: 3,
                replicas,
                x: (0..replicas * n).map(|k| k as f32 * 0.25).collect(),
                p: (0..replicas * n).map(|k| -(k as f32)).collect(),
                pw: w.iter().map(|a| -a - 0.5).collect(),
                w,
            },
            blocks: Checkpoint::blocks_of(net),
            n,
            t: 0.03,
            config_json: "{}".into(),
            metadata: BTreeMap::new(),
        }
    }

    fn f(r: usize, j: usize, i: usize) -> f32 {
        (r * 1000 + i * 10 + j) as f32
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|a| a.to_bits()).collect()
    }

    fn assert_bit_identical(a: &Checkpoint, b: &Checkpoint) {
        for (name, u, v) in [
            ("x", &a.state.x, &b.state.x),
            ("p", &a.state.p, &b.state.p),
            ("w", &a.state.w, &b.state.w),
            ("pw", &a.state.pw, &b.state.pw),
        ] {
            assert_eq!(bits(u), bits(v), "{name}");
        }
        assert_eq!(a.t.to_bits(), b.t.to_bits());
        assert_eq!(a, b);
    }

    /// Writes a file from (possibly broken) parts.
    fn write_parts(path: &Path, tensors: &[Tensor], meta: HashMap<String, String>) {
        fs::write(path, serialize(path, tensors, meta).unwrap()).unwrap();
    }

    /// The parts of `ckpt` written as a version-1 file: flat `w`, `pw` in the checkpoint's
    /// synapse order with `edge_src`, `edge_dst`, no `blocks` entry.
    fn v1_parts(ckpt: &Checkpoint) -> (Vec<Tensor>, HashMap<String, String>) {
        let (tensors, mut meta) = parts(Path::new("v1"), ckpt).unwrap();
        meta.remove("blocks");
        meta.remove("checksum"); // version 1 had none
        meta.insert("version".into(), "1".into());
        let (r, e) = (ckpt.state.replicas, ckpt.n_edges());
        let mut v1: Vec<Tensor> = tensors.into_iter().filter(|t| t.name == "x" || t.name == "p").collect();
        let le = |v: &[f32]| v.iter().flat_map(|a| a.to_le_bytes()).collect::<Vec<u8>>();
        v1.push(Tensor { name: "w".into(), dtype: Dtype::F32, shape: vec![r, e], bytes: le(&ckpt.state.w) });
        v1.push(Tensor { name: "pw".into(), dtype: Dtype::F32, shape: vec![r, e], bytes: le(&ckpt.state.pw) });
        for (name, pick) in [("edge_src", 0), ("edge_dst", 1)] {
            let v: Vec<u8> =
                ckpt.edges().flat_map(|(j, i)| ((if pick == 0 { j } else { i }) as u32).to_le_bytes()).collect();
            v1.push(Tensor { name: name.into(), dtype: Dtype::U32, shape: vec![e], bytes: v });
        }
        (v1, meta)
    }

    /// Writes `parts` edited by `edit` and returns the load error's text.
    fn load_error_of(
        tag: &str,
        (mut tensors, mut meta): (Vec<Tensor>, HashMap<String, String>),
        edit: impl FnOnce(&mut Vec<Tensor>, &mut HashMap<String, String>),
    ) -> String {
        let dir = TempDir::new(tag);
        let path = dir.path("bad.safetensors");
        edit(&mut tensors, &mut meta);
        write_parts(&path, &tensors, meta);
        match load(&path) {
            Err(Error::Data { path: p, message }) => {
                assert_eq!(p, path.display().to_string());
                let text = Error::Data { path: p, message: message.clone() }.to_string();
                assert!(text.contains("bad.safetensors"), "{text}");
                message
            }
            other => panic!("{tag}: expected Error::Data, got {other:?}"),
        }
    }

    /// Saves a broken variant of `sample()` made by `edit` and returns the load error's text.
    fn load_error(tag: &str, edit: impl FnOnce(&mut Vec<Tensor>, &mut HashMap<String, String>)) -> String {
        load_error_of(tag, parts(Path::new("sample"), &sample()).unwrap(), edit)
    }

    fn tensor<'a>(tensors: &'a mut [Tensor], name: &str) -> &'a mut Tensor {
        tensors.iter_mut().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let dir = TempDir::new("round-trip");
        let path = dir.path("run.safetensors");
        let ckpt = sample();
        save(&path, &ckpt).unwrap();
        let back = load(&path).unwrap();
        assert_bit_identical(&ckpt, &back);
        assert_eq!(back.state.step, u64::MAX);
        assert_eq!(back.t, 0.30000000000000004);
        assert_eq!(back.config_json, ckpt.config_json);
        assert_eq!(back.blocks, sample().blocks);
        assert_eq!(dir.entries(), ["run.safetensors"]);

        // Times that stress the decimal form.
        for t in [0.0, -0.0, 1e-300, 5e-324, 123_456_789.123_456_79, f64::MAX, -1.0 / 3.0] {
            let c = Checkpoint { t, ..sample() };
            save(&path, &c).unwrap();
            assert_bit_identical(&c, &load(&path).unwrap());
        }

        // Real networks of every layout, one replica and three.
        for spec in [
            crate::NetworkSpec::fully_connected(2, 4, true).bias(true),
            crate::NetworkSpec::layered(&[3, 4, 2]).bias(true),
            crate::NetworkSpec::random_sparse(2, 6, 3, false).bias(true),
            crate::NetworkSpec::fully_connected(0, 3, false),
        ] {
            let net = spec.build().unwrap();
            for replicas in [1, 3] {
                let c = of_network(&net, replicas);
                save(&path, &c).unwrap();
                let back = load(&path).unwrap();
                assert_bit_identical(&c, &back);
                assert_eq!(back.state_for(&net).unwrap(), c.state);
            }
        }
    }

    #[test]
    fn round_trip_without_edges() {
        let dir = TempDir::new("no-edges");
        let path = dir.path("empty.safetensors");
        let empty = State { step: 0, replicas: 3, x: vec![1.0; 6], p: vec![0.0; 6], w: vec![], pw: vec![] };
        for blocks in [
            vec![],
            vec![
                CheckpointBlock::Dense { rows: 1..2, cols: 0..0 },
                CheckpointBlock::Sparse { src: vec![], dst: vec![] },
                CheckpointBlock::Dense { rows: 2..2, cols: 0..2 },
            ],
        ] {
            let ckpt = Checkpoint {
                state: empty.clone(),
                blocks,
                n: 2,
                t: 0.0,
                config_json: "{}".into(),
                metadata: BTreeMap::new(),
            };
            save(&path, &ckpt).unwrap();
            assert_bit_identical(&ckpt, &load(&path).unwrap());
        }
        // Empty blocks between others.
        let mut c = sample();
        c.blocks.insert(1, CheckpointBlock::Dense { rows: 3..3, cols: 0..4 });
        c.blocks.push(CheckpointBlock::Sparse { src: vec![], dst: vec![] });
        save(&path, &c).unwrap();
        assert_bit_identical(&c, &load(&path).unwrap());
    }

    #[test]
    fn metadata_and_shapes_as_documented() {
        let dir = TempDir::new("layout");
        let path = dir.path("run.safetensors");
        let ckpt = sample();
        save(&path, &ckpt).unwrap();
        let bytes = fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta["format"], "localprop-checkpoint");
        assert_eq!(meta["version"], "2");
        assert_eq!(meta["step"], "18446744073709551615");
        assert_eq!(meta["t"], "0.30000000000000004");
        assert_eq!((meta["replicas"].as_str(), meta["n"].as_str(), meta["n_edges"].as_str()), ("2", "4", "4"));
        assert_eq!(
            meta["blocks"],
            r#"[{"kind": "dense", "rows": [2, 3], "cols": [0, 2]}, {"kind": "sparse", "edges": 2}]"#
        );
        assert_eq!(meta["git"], "abc123");
        assert_eq!(meta.len(), RESERVED_KEYS.len() + 2);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<&str> = st.names();
        names.sort();
        assert_eq!(
            names,
            ["blocks.0.pw", "blocks.0.w", "blocks.1.dst", "blocks.1.pw", "blocks.1.src", "blocks.1.w", "p", "x"]
        );
        for (name, dtype, shape) in [
            ("x", Dtype::F32, vec![2, 4]),
            ("p", Dtype::F32, vec![2, 4]),
            ("blocks.0.w", Dtype::F32, vec![2, 1, 2]),
            ("blocks.0.pw", Dtype::F32, vec![2, 1, 2]),
            ("blocks.1.w", Dtype::F32, vec![2, 2]),
            ("blocks.1.pw", Dtype::F32, vec![2, 2]),
            ("blocks.1.src", Dtype::U32, vec![2]),
            ("blocks.1.dst", Dtype::U32, vec![2]),
        ] {
            let t = st.tensor(name).unwrap();
            assert_eq!((t.dtype(), t.shape()), (dtype, shape.as_slice()), "{name}");
        }
        // Little-endian: x[0, 1] is the smallest subnormal, bits 0x00000001.
        assert_eq!(&st.tensor("x").unwrap().data()[4..8], &[1, 0, 0, 0]);
        // Each block holds its run of every replica's weight vector.
        let f32s = |name: &str| -> Vec<u32> {
            st.tensor(name).unwrap().data().chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
        };
        let w = bits(&ckpt.state.w);
        assert_eq!(f32s("blocks.0.w"), [w[0], w[1], w[4], w[5]]);
        assert_eq!(f32s("blocks.1.w"), [w[2], w[3], w[6], w[7]]);
        let pw = bits(&ckpt.state.pw);
        assert_eq!(f32s("blocks.1.pw"), [pw[2], pw[3], pw[6], pw[7]]);
        assert_eq!(f32s("blocks.1.src"), [2, 3]);
        assert_eq!(f32s("blocks.1.dst"), [3, 3]);
    }

    #[test]
    fn a_dense_checkpoint_has_no_index_tensors_and_its_weights_are_matrices() {
        let dir = TempDir::new("dense");
        let path = dir.path("run.safetensors");
        // The fig. 1 net: 5 neurons with self-loops and a bias, one dense block 1..6 x 0..6.
        let net = crate::NetworkSpec::fully_connected(0, 5, true).bias(true).build().unwrap();
        let ckpt = of_network(&net, 2);
        assert_eq!(ckpt.blocks, [CheckpointBlock::Dense { rows: 1..6, cols: 0..6 }]);
        save(&path, &ckpt).unwrap();
        let bytes = fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta["blocks"], r#"[{"kind": "dense", "rows": [1, 6], "cols": [0, 6]}]"#);
        assert_eq!(meta["n_edges"], "30");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names: Vec<&str> = st.names();
        names.sort();
        assert_eq!(names, ["blocks.0.pw", "blocks.0.w", "p", "x"], "no edge lists for a dense block");
        let w = st.tensor("blocks.0.w").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, [2, 5, 6].as_slice()));
        let values: Vec<f32> = w.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        for r in 0..2 {
            for i in 0..5 {
                for j in 0..6 {
                    // w[r, i, j] is the weight of j -> 1 + i.
                    assert_eq!(values[(r * 5 + i) * 6 + j], f(r, j, 1 + i), "[{r}, {i}, {j}]");
                }
            }
        }
        let back = load(&path).unwrap();
        assert_bit_identical(&ckpt, &back);
        assert_eq!(back.state_for(&net).unwrap(), ckpt.state);
    }

    #[test]
    fn a_flipped_byte_in_any_tensor_is_caught_by_the_checksum() {
        let net = crate::NetworkSpec::layered(&[2, 3, 2]).bias(true).build().unwrap();
        let ckpt = of_network(&net, 2);
        let dir = TempDir::new("flip");
        let path = dir.path("ok.safetensors");
        save(&path, &ckpt).unwrap();
        let bytes = fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let stored = header.metadata().as_ref().unwrap()["checksum"].clone();
        assert!(stored.starts_with("crc32:") && stored.len() == 14, "{stored}");
        // The data starts after the 8-byte length and the header; flip the low bit of a
        // mantissa byte in each tensor, which leaves every value finite.
        let start = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let tensors = SafeTensors::deserialize(&bytes).unwrap();
        for name in sorted_names(&tensors) {
            let (begin, _) = header.info(&name).unwrap().data_offsets;
            let mut bad = bytes.clone();
            bad[start + begin] ^= 1;
            let flipped = dir.path("flipped.safetensors");
            fs::write(&flipped, &bad).unwrap();
            let e = load(&flipped).unwrap_err().to_string();
            assert!(e.contains("metadata `checksum`") && e.contains(&stored), "{name}: {e}");
        }
        // Positive control: the unflipped bytes load, and a file without the key still loads.
        assert_bit_identical(&ckpt, &load(&path).unwrap());
        let (tensors, mut meta) = parts(&path, &ckpt).unwrap();
        meta.remove("checksum");
        write_parts(&path, &tensors, meta);
        assert_bit_identical(&ckpt, &load(&path).unwrap());
    }

    #[test]
    fn a_version_1_file_loads_and_is_put_in_the_networks_order() {
        let dir = TempDir::new("v1");
        let path = dir.path("old.safetensors");
        // A layered net with a bias: its weight vector has each layer's bias column after the
        // layer's block, while version 1 listed every synapse by target, then source.
        let net = crate::NetworkSpec::layered(&[2, 3, 2]).bias(true).build().unwrap();
        let e = net.n_edges();
        let mut csr: Vec<(usize, usize)> = net.edges().collect();
        csr.sort_by_key(|&(j, i)| (i, j));
        assert_ne!(csr, net.edges().collect::<Vec<_>>(), "the orders differ, or this test shows nothing");
        let ours = of_network(&net, 2);
        let old = Checkpoint {
            state: State {
                w: (0..2).flat_map(|r| csr.iter().map(move |&(j, i)| f(r, j, i))).collect(),
                pw: (0..2).flat_map(|r| csr.iter().map(move |&(j, i)| -f(r, j, i) - 0.5)).collect(),
                ..ours.state.clone()
            },
            blocks: vec![CheckpointBlock::Sparse {
                src: csr.iter().map(|&(j, _)| j as u32).collect(),
                dst: csr.iter().map(|&(_, i)| i as u32).collect(),
            }],
            ..ours.clone()
        };
        let (tensors, meta) = v1_parts(&old);
        assert!(!meta.contains_key("blocks"));
        write_parts(&path, &tensors, meta);

        let back = load(&path).unwrap();
        assert_bit_identical(&old, &back);
        assert_eq!(back.n_edges(), e);
        // In the network's order, every weight where the network looks for it.
        let state = back.state_for(&net).unwrap();
        assert_eq!(state, ours.state);
        for r in 0..2 {
            for (k, (j, i)) in net.edges().enumerate() {
                assert_eq!(state.w[r * e + k], f(r, j, i), "replica {r}: {j} -> {i}");
                assert_eq!(state.pw[r * e + k], -f(r, j, i) - 0.5, "replica {r}: {j} -> {i}");
            }
        }
        // Saved again, it is a version-2 file with one sparse block, and still loads.
        let again = dir.path("again.safetensors");
        save(&again, &back).unwrap();
        let back2 = load(&again).unwrap();
        assert_bit_identical(&old, &back2);
        assert_eq!(back2.state_for(&net).unwrap(), ours.state);

        // A version-1 file whose order is the network's (a dense net): taken as it is.
        let fc = crate::NetworkSpec::fully_connected(1, 3, true).bias(true).build().unwrap();
        let c = of_network(&fc, 1);
        let (tensors, meta) = v1_parts(&c);
        write_parts(&path, &tensors, meta);
        let back = load(&path).unwrap();
        assert!(matches!(&back.blocks[..], [CheckpointBlock::Sparse { .. }]));
        assert_eq!(back.state_for(&fc).unwrap(), c.state);

        // Version-1 files are validated as strictly as before.
        let v1 = || v1_parts(&sample());
        let m = load_error_of("v1-missing", v1(), |t, _| t.retain(|t| t.name != "edge_dst"));
        assert!(m.contains("tensor `edge_dst` is missing"), "{m}");
        let m = load_error_of("v1-shape", v1(), |t, _| tensor(t, "w").shape = vec![8]);
        assert!(m.contains("tensor `w` has shape [8], want [replicas, n_edges] = [2, 4]"), "{m}");
        let m = load_error_of("v1-range", v1(), |t, _| {
            tensor(t, "edge_dst").bytes[8..12].copy_from_slice(&4u32.to_le_bytes())
        });
        assert!(m.contains("`edge_dst[2]` = 4 is not a neuron index (n = 4)"), "{m}");
        let m = load_error_of("v1-nan", v1(), |t, _| {
            tensor(t, "pw").bytes[20..24].copy_from_slice(&f32::NAN.to_le_bytes())
        });
        assert!(m.contains("tensor `pw` holds NaN at [1, 1]"), "{m}");
        let m = load_error_of("v1-extra", v1(), |t, _| {
            t.push(Tensor { name: "blocks.0.w".into(), dtype: Dtype::F32, shape: vec![1], bytes: vec![0; 4] })
        });
        assert!(m.contains("unexpected tensor `blocks.0.w` (a version-1 checkpoint holds only"), "{m}");
    }

    #[test]
    fn truncated_or_garbage_files_are_rejected() {
        let dir = TempDir::new("truncated");
        let path = dir.path("run.safetensors");
        save(&path, &sample()).unwrap();
        let full = fs::read(&path).unwrap();
        for keep in [0, 5, 8, 20, full.len() / 2, full.len() - 1] {
            fs::write(&path, &full[..keep]).unwrap();
            let err = load(&path).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Data { .. }), "{keep}: {err:?}");
            assert!(text.contains("not a valid safetensors file") && text.contains("run.safetensors"), "{text}");
        }
        fs::write(&path, b"this is not a checkpoint at all, just some text").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("not a valid safetensors file"));
        // Trailing bytes are an error too.
        let mut long = full.clone();
        long.push(0);
        fs::write(&path, &long).unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("not a valid safetensors file"));
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let dir = TempDir::new("missing");
        let err = load(&dir.path("nope.safetensors")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.safetensors"), "{err}");
    }

    #[test]
    fn missing_tensor_is_named() {
        let m = load_error("missing-x", |t, _| t.retain(|t| t.name != "x"));
        assert!(m.contains("tensor `x` is missing"), "{m}");
        let m = load_error("missing-tensor", |t, _| t.retain(|t| t.name != "blocks.0.pw"));
        assert!(m.contains("tensor `blocks.0.pw` is missing"), "{m}");
        let m = load_error("missing-edges", |t, _| t.retain(|t| t.name != "blocks.1.dst"));
        assert!(m.contains("tensor `blocks.1.dst` is missing"), "{m}");
    }

    #[test]
    fn wrong_shape_or_dtype_is_named() {
        let m = load_error("shape", |t, _| tensor(t, "x").shape = vec![4, 2]);
        assert!(m.contains("tensor `x` has shape [4, 2], want [replicas, n] = [2, 4]"), "{m}");
        let m = load_error("shape-dense", |t, _| tensor(t, "blocks.0.w").shape = vec![2, 2]);
        assert!(m.contains("tensor `blocks.0.w` has shape [2, 2], want [replicas, rows, cols] = [2, 1, 2]"), "{m}");
        let m = load_error("shape-sparse", |t, _| tensor(t, "blocks.1.pw").shape = vec![4]);
        assert!(m.contains("tensor `blocks.1.pw` has shape [4], want [replicas, edges] = [2, 2]"), "{m}");
        let m = load_error("shape-index", |t, _| {
            let s = tensor(t, "blocks.1.src");
            (s.shape, s.bytes) = (vec![1], vec![0; 4]);
        });
        assert!(m.contains("tensor `blocks.1.src` has shape [1], want [edges] = [2]"), "{m}");
        let m = load_error("dtype", |t, _| tensor(t, "blocks.1.src").dtype = Dtype::I32);
        assert!(m.contains("tensor `blocks.1.src` has dtype I32, want U32"), "{m}");
        let m = load_error("dtype-w", |t, _| tensor(t, "blocks.0.w").dtype = Dtype::U32);
        assert!(m.contains("tensor `blocks.0.w` has dtype U32, want F32"), "{m}");
        let m = load_error("n-mismatch", |_, meta| {
            meta.insert("n".into(), "5".into());
        });
        assert!(m.contains("tensor `x` has shape [2, 4], want [replicas, n] = [2, 5]"), "{m}");
        let m = load_error("extra", |t, _| {
            t.push(Tensor { name: "extra".into(), dtype: Dtype::F32, shape: vec![1], bytes: vec![0; 4] })
        });
        assert!(m.contains("unexpected tensor `extra`"), "{m}");
        // Version-1 names and index arrays of a dense block are not part of version 2.
        for name in ["edge_src", "w", "blocks.0.src", "blocks.2.w"] {
            let m = load_error("extra-name", |t, _| {
                t.push(Tensor { name: name.into(), dtype: Dtype::U32, shape: vec![1], bytes: vec![0; 4] })
            });
            assert!(m.contains(&format!("unexpected tensor `{name}`")), "{m}");
        }
    }

    #[test]
    fn non_finite_values_are_named() {
        let m =
            load_error("nan", |t, _| tensor(t, "blocks.1.w").bytes[12..16].copy_from_slice(&f32::NAN.to_le_bytes()));
        assert!(m.contains("tensor `blocks.1.w` holds NaN at [1, 1]"), "{m}");
        let m = load_error("nan-dense", |t, _| {
            tensor(t, "blocks.0.pw").bytes[12..16].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes())
        });
        assert!(m.contains("tensor `blocks.0.pw` holds -inf at [1, 0, 1]"), "{m}");
        let m = load_error("inf", |t, _| tensor(t, "p").bytes[0..4].copy_from_slice(&f32::INFINITY.to_le_bytes()));
        assert!(m.contains("tensor `p` holds inf at [0, 0]"), "{m}");
    }

    #[test]
    fn bad_metadata_is_named() {
        let m = load_error("format", |_, meta| {
            meta.insert("format".into(), "something-else".into());
        });
        assert!(m.contains("`format` is `something-else`, want `localprop-checkpoint`"), "{m}");
        let m = load_error("no-format", |_, meta| {
            meta.remove("format");
        });
        assert!(m.contains("`format` is missing"), "{m}");
        let m = load_error("version", |_, meta| {
            meta.insert("version".into(), "3".into());
        });
        assert!(m.contains("unsupported checkpoint version `3` (this build reads versions 1 and 2)"), "{m}");
        let m = load_error("step", |_, meta| {
            meta.insert("step".into(), "-1".into());
        });
        assert!(m.contains("metadata `step` = `-1`"), "{m}");
        let m = load_error("t", |_, meta| {
            meta.insert("t".into(), "NaN".into());
        });
        assert!(m.contains("metadata `t` = `NaN` is not finite"), "{m}");
        let m = load_error("t-text", |_, meta| {
            meta.insert("t".into(), "soon".into());
        });
        assert!(m.contains("metadata `t` = `soon` is not a number"), "{m}");
        let m = load_error("no-config", |_, meta| {
            meta.remove("config");
        });
        assert!(m.contains("metadata entry `config` is missing"), "{m}");
        let m = load_error("config", |_, meta| {
            meta.insert("config".into(), "{not json".into());
        });
        assert!(m.contains("metadata `config` is not valid JSON"), "{m}");
        let m = load_error("replicas", |_, meta| {
            meta.insert("replicas".into(), "0".into());
        });
        assert!(m.contains("`replicas` is 0"), "{m}");
        let m = load_error("n-text", |_, meta| {
            meta.insert("n_edges".into(), "four".into());
        });
        assert!(m.contains("metadata `n_edges` = `four`"), "{m}");
        let m = load_error("n-edges", |_, meta| {
            meta.insert("n_edges".into(), "5".into());
        });
        assert!(m.contains("metadata `n_edges` = 5, but the blocks in metadata `blocks` hold 4 synapses"), "{m}");
        let m =
            load_error("edge-range", |t, _| tensor(t, "blocks.1.dst").bytes[4..8].copy_from_slice(&4u32.to_le_bytes()));
        assert!(m.contains("`blocks.1.dst[1]` = 4 is not a neuron index (n = 4)"), "{m}");

        // The `blocks` entry.
        let dense = r#"{"kind": "dense", "rows": [2, 3], "cols": [0, 2]}"#;
        let sparse = r#"{"kind": "sparse", "edges": 2}"#;
        let cases: Vec<(Option<String>, &str)> = vec![
            (None, "metadata entry `blocks` is missing"),
            (Some("[{".into()), "metadata `blocks`: not valid JSON"),
            (Some(dense.into()), "metadata `blocks`: not a JSON list of blocks"),
            (Some("[1, 2]".into()), "metadata `blocks`: block 0 is not a JSON object"),
            (Some(r#"[{"rows": [2, 3]}]"#.into()), "metadata `blocks`: block 0 has no `kind` string"),
            (
                Some(format!(r#"[{dense}, {{"kind": "csr", "edges": 2}}]"#)),
                "metadata `blocks`: block 1 has kind `csr`, want `dense` or `sparse`",
            ),
            (
                Some(format!(r#"[{dense}, {{"kind": "sparse", "edges": 2, "rows": [3, 4]}}]"#)),
                "metadata `blocks`: block 1 (sparse) has the unknown key `rows`",
            ),
            (
                Some(format!(r#"[{{"kind": "dense", "rows": [2, 5], "cols": [0, 2]}}, {sparse}]"#)),
                "metadata `blocks`: block 0: `rows` [2, 5] is not a range within 0..4 (start <= end <= n)",
            ),
            (
                Some(format!(r#"[{{"kind": "dense", "rows": [2, 3], "cols": [2, 0]}}, {sparse}]"#)),
                "metadata `blocks`: block 0: `cols` [2, 0] is not a range within 0..4",
            ),
            (
                Some(format!(r#"[{{"kind": "dense", "rows": [2, 3], "cols": [0, -2]}}, {sparse}]"#)),
                "metadata `blocks`: block 0: `cols` is not [start, end], two non-negative integers",
            ),
            (
                Some(format!(r#"[{{"kind": "dense", "rows": [2, 3]}}, {sparse}]"#)),
                "metadata `blocks`: block 0: `cols` is not [start, end]",
            ),
            (
                Some(format!(r#"[{dense}, {{"kind": "sparse", "edges": "2"}}]"#)),
                "metadata `blocks`: block 1: `edges` is not a non-negative integer",
            ),
            // Blocks that fit `n` but not the tensors.
            (
                Some(format!(r#"[{{"kind": "dense", "rows": [2, 4], "cols": [0, 1]}}, {sparse}]"#)),
                "tensor `blocks.0.w` has shape [2, 1, 2], want [replicas, rows, cols] = [2, 2, 1]",
            ),
            (Some(format!("[{sparse}, {dense}]")), "unexpected tensor `blocks.1.dst`"),
            (
                Some(format!(r#"[{dense}, {sparse}, {{"kind": "sparse", "edges": 0}}]"#)),
                "tensor `blocks.2.w` is missing",
            ),
            (Some(format!("[{dense}]")), "metadata `n_edges` = 4, but the blocks"),
        ];
        for (blocks, want) in cases {
            let m = load_error("blocks", |_, meta| match blocks {
                Some(b) => {
                    meta.insert("blocks".into(), b);
                }
                None => {
                    meta.remove("blocks");
                }
            });
            assert!(m.contains(want), "{m}\nwant: {want}");
        }
    }

    #[test]
    fn no_metadata_is_rejected() {
        let dir = TempDir::new("no-metadata");
        let path = dir.path("plain.safetensors");
        let (tensors, _) = parts(&path, &sample()).unwrap();
        let views: Vec<_> = tensors
            .iter()
            .map(|t| (t.name.as_str(), TensorView::new(t.dtype, t.shape.clone(), &t.bytes).unwrap()))
            .collect();
        fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("no `__metadata__`") && err.contains("plain.safetensors"), "{err}");
    }

    #[test]
    fn save_replaces_atomically() {
        let dir = TempDir::new("replace");
        let path = dir.path("run.safetensors");
        let first = sample();
        save(&path, &first).unwrap();

        // A successful save replaces the file and leaves no temporary behind, even a stale one.
        fs::write(dir.path("run.safetensors.tmp"), b"stale").unwrap();
        let mut second = sample();
        second.state.step = 7;
        second.state.x[0] = 42.0;
        save(&path, &second).unwrap();
        assert_eq!(load(&path).unwrap(), second);
        assert_eq!(dir.entries(), ["run.safetensors"]);

        // A save that fails validation leaves the old file untouched.
        save(&path, &first).unwrap();
        let old_bytes = fs::read(&path).unwrap();
        let mut bad = sample();
        bad.state.w[3] = f32::NAN;
        assert!(matches!(save(&path, &bad), Err(Error::State(_))));
        let mut reserved = sample();
        reserved.metadata.insert("blocks".into(), "[]".into());
        assert!(matches!(save(&path, &reserved), Err(Error::Data { .. })));
        assert_eq!(fs::read(&path).unwrap(), old_bytes);
        assert_eq!(dir.entries(), ["run.safetensors"]);

        // A save whose write fails (here the temporary name is taken by a folder) leaves the
        // old file untouched.
        fs::create_dir(dir.path("run.safetensors.tmp")).unwrap();
        let err = save(&path, &second).unwrap_err();
        assert!(matches!(&err, Error::Io { path, .. } if path.ends_with("run.safetensors.tmp")), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), old_bytes);
        fs::remove_dir(dir.path("run.safetensors.tmp")).unwrap();

        // A save whose rename fails (the target is a folder) leaves nothing behind.
        let folder = dir.path("folder");
        fs::create_dir(&folder).unwrap();
        fs::write(folder.join("inside"), b"keep").unwrap();
        assert!(matches!(save(&folder, &first), Err(Error::Io { .. })));
        assert_eq!(fs::read(folder.join("inside")).unwrap(), b"keep");
        assert_eq!(dir.entries(), ["folder", "run.safetensors"]);
    }

    #[test]
    fn save_into_missing_folder_fails_cleanly() {
        let dir = TempDir::new("no-parent");
        let path = dir.path("missing").join("run.safetensors");
        let err = save(&path, &sample()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("run.safetensors.tmp"), "{err}");
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn save_rejects_inconsistent_checkpoints() {
        let dir = TempDir::new("inconsistent");
        let path = dir.path("run.safetensors");
        let edit = |f: &dyn Fn(&mut Checkpoint)| {
            let mut c = sample();
            f(&mut c);
            c
        };
        let cases: Vec<(Checkpoint, &str)> = vec![
            (
                edit(&|c| {
                    c.state.x.pop();
                }),
                "`x` has 7 values",
            ),
            (
                edit(&|c| {
                    if let CheckpointBlock::Sparse { dst, .. } = &mut c.blocks[1] {
                        dst.pop();
                    }
                }),
                "block 1 has 2 entries in `src` but 1 in `dst`",
            ),
            (
                edit(&|c| {
                    if let CheckpointBlock::Sparse { src, .. } = &mut c.blocks[1] {
                        src[1] = 9;
                    }
                }),
                "`blocks.1.src[1]` = 9 is not a neuron index (n = 4)",
            ),
            (
                edit(&|c| c.blocks[0] = CheckpointBlock::Dense { rows: 2..5, cols: 0..2 }),
                "block 0: `rows` [2, 5] is not a range within 0..4",
            ),
            (
                edit(&|c| {
                    #[allow(clippy::reversed_empty_ranges, reason = "a range with start > end, on purpose")]
                    let cols = 2..1;
                    c.blocks[0] = CheckpointBlock::Dense { rows: 2..3, cols };
                }),
                "block 0: `cols` [2, 1] is not a range",
            ),
            // Blocks of 5 synapses against a state of 4 per replica.
            (
                edit(&|c| c.blocks[0] = CheckpointBlock::Dense { rows: 2..3, cols: 0..3 }),
                "`w` has 8 values, want 2 x 5",
            ),
            (Checkpoint { t: f64::INFINITY, ..sample() }, "t = inf is not finite"),
            (edit(&|c| c.state.replicas = 0), "0 replicas"),
        ];
        for (ckpt, want) in cases {
            match save(&path, &ckpt) {
                Err(Error::State(m)) => assert!(m.contains(want) && m.contains("run.safetensors"), "{m}"),
                other => panic!("{want}: {other:?}"),
            }
        }
        let err = save(&path, &Checkpoint { config_json: "not json".into(), ..sample() }).unwrap_err();
        assert!(matches!(&err, Error::Data { .. }) && err.to_string().contains("not valid JSON"), "{err}");
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn blocks_of_a_network_and_their_edges() {
        let net = crate::NetworkSpec::layered(&[3, 4, 2]).bias(true).build().unwrap();
        let blocks = Checkpoint::blocks_of(&net);
        assert_eq!(
            blocks,
            [
                CheckpointBlock::Dense { rows: 4..8, cols: 0..4 },
                CheckpointBlock::Dense { rows: 8..10, cols: 4..8 },
                CheckpointBlock::Dense { rows: 8..10, cols: 3..4 },
            ]
        );
        assert_eq!(blocks.iter().map(CheckpointBlock::len).collect::<Vec<_>>(), [16, 8, 2]);
        let c = of_network(&net, 1);
        assert_eq!(c.n_edges(), net.n_edges());
        assert!(c.edges().eq(net.edges()));
        assert_eq!(blocks[2].edges().collect::<Vec<_>>(), [(3, 8), (3, 9)]);

        let sparse = crate::NetworkSpec::random_sparse(2, 5, 2, false).bias(true).seed(2).build().unwrap();
        let blocks = Checkpoint::blocks_of(&sparse);
        let s = sparse.sparse_block().unwrap();
        assert_eq!(blocks, [CheckpointBlock::Sparse { src: s.src.clone(), dst: s.dst.clone() }]);
        assert!(blocks[0].edges().eq(sparse.edges()));
        assert!(!blocks[0].is_empty());
        assert!(CheckpointBlock::Dense { rows: 3..3, cols: 0..4 }.is_empty());
    }

    #[test]
    fn state_for_compares_and_reorders_synapses() {
        let net = crate::NetworkSpec::layered(&[2, 3, 1]).bias(true).build().unwrap();
        let e = net.n_edges();
        let ckpt = of_network(&net, 2);
        assert_eq!(ckpt.state_for(&net).unwrap(), ckpt.state);

        // The same synapses in the same order, stored otherwise: the state as it is.
        let listed = Checkpoint {
            blocks: vec![CheckpointBlock::Sparse {
                src: net.edges().map(|(j, _)| j as u32).collect(),
                dst: net.edges().map(|(_, i)| i as u32).collect(),
            }],
            ..ckpt.clone()
        };
        assert_eq!(listed.state_for(&net).unwrap(), ckpt.state);

        // The same synapses in another order: w and pw are put back in the network's order.
        let mut swapped = listed.clone();
        if let CheckpointBlock::Sparse { src, dst } = &mut swapped.blocks[0] {
            src.swap(0, e - 1);
            dst.swap(0, e - 1);
        }
        for v in [&mut swapped.state.w, &mut swapped.state.pw] {
            v.swap(0, e - 1);
            v.swap(e, 2 * e - 1);
        }
        assert_ne!(swapped.state, ckpt.state);
        assert_eq!(swapped.state_for(&net).unwrap(), ckpt.state);
        assert_eq!(swapped.clone().into_state_for(&net).unwrap(), ckpt.state);
        assert_eq!(listed.clone().into_state_for(&net).unwrap(), ckpt.state);

        // Another synapse, or one twice: the first difference is named.
        let mut other = listed.clone();
        if let CheckpointBlock::Sparse { src, .. } = &mut other.blocks[0] {
            src[0] = 4; // 4 -> 3 does not exist: 4 is in the same layer
        }
        let err = other.state_for(&net).unwrap_err();
        assert!(
            matches!(&err, Error::State(m) if m.contains("edge 0 of the checkpoint is 4 -> 3, of the network 0 -> 3")
                && m.contains("is not a synapse of the network")),
            "{err:?}"
        );
        let mut twice = listed.clone();
        if let CheckpointBlock::Sparse { src, dst } = &mut twice.blocks[0] {
            (src[1], dst[1]) = (src[0], dst[0]);
        }
        let err = twice.state_for(&net).unwrap_err();
        assert!(
            matches!(&err, Error::State(m) if m.contains("edge 1 of the checkpoint is 0 -> 3, of the network 1 -> 3")
                && m.contains("appears twice")),
            "{err:?}"
        );

        // Another size.
        let other = Checkpoint { n: net.n() + 1, ..ckpt.clone() };
        assert!(matches!(other.state_for(&net), Err(Error::State(m)) if m.contains("neurons")));
        let mut fewer = ckpt.clone();
        fewer.blocks.pop();
        assert!(matches!(fewer.state_for(&net), Err(Error::State(m)) if m.contains("edges")));
        let mut short = ckpt.clone();
        short.state.w.pop();
        assert!(matches!(short.state_for(&net), Err(Error::State(m)) if m.contains("`w`")));
        let fc = crate::NetworkSpec::fully_connected(2, 4, true).build().unwrap();
        assert!(matches!(ckpt.state_for(&fc), Err(Error::State(_))));
        assert!(matches!(ckpt.into_state_for(&fc), Err(Error::State(_))));
    }
}
