//! Checkpoints: the full dynamic state of a run, with the network's edge list and the
//! experiment configuration, in one [safetensors](https://github.com/huggingface/safetensors)
//! file that Python (`safetensors`, `numpy`, `torch`) reads directly.
//!
//! # File format (version 1)
//!
//! This is the contract with every reader and writer of checkpoints, Rust or Python.
//!
//! A checkpoint is a standard safetensors file: an 8-byte little-endian `u64` header length,
//! a JSON header, then the raw tensor bytes. All values are **little-endian** and tensors are
//! row-major (C order). It holds exactly these six tensors (no others):
//!
//! | tensor     | dtype | shape               | contents                                           |
//! |------------|-------|---------------------|----------------------------------------------------|
//! | `x`        | `F32` | `[replicas, n]`     | neuron states, [`State::x`]                        |
//! | `p`        | `F32` | `[replicas, n]`     | scaled neuron costates `p / phi`, [`State::p`]     |
//! | `w`        | `F32` | `[replicas, n_edges]` | weights in the network's weight-vector order, [`State::w`] |
//! | `pw`       | `F32` | `[replicas, n_edges]` | scaled weight costates `pw / phi`, [`State::pw`] |
//! | `edge_src` | `U32` | `[n_edges]`         | source neuron of each edge ([`crate::Network::edges`]) |
//! | `edge_dst` | `U32` | `[n_edges]`         | target neuron of each edge ([`crate::Network::edges`]) |
//!
//! Edge `k` carries `w[r, k]` from neuron `edge_src[k]` into neuron `edge_dst[k]`; edges are in
//! the network's weight-vector order ([`crate::Network::edges`]: its dense blocks row by row,
//! then its sparse block grouped by target). A network without edges gives `w` and `pw` of
//! shape `[replicas, 0]` and `edge_src`, `edge_dst` of shape `[0]`.
//!
//! The header's `__metadata__` (a string-to-string map) holds:
//!
//! | key        | value                                                                       |
//! |------------|-----------------------------------------------------------------------------|
//! | `format`   | exactly `localprop-checkpoint`                                              |
//! | `version`  | exactly `1`                                                                 |
//! | `config`   | the full experiment configuration, as a JSON document                       |
//! | `step`     | steps taken ([`State::step`]), a decimal `u64`                              |
//! | `t`        | the time, a decimal `f64` as Rust's `{:?}` prints it (`0.30000000000000004`, `1e-7`): the shortest text that parses back to the same `f64`, so `float(meta["t"])` in Python is exact |
//! | `replicas` | number of replicas, a decimal integer ≥ 1                                   |
//! | `n`        | number of neurons (inputs and bias included), a decimal integer             |
//! | `n_edges`  | number of edges, a decimal integer                                          |
//!
//! Any other `__metadata__` entries are free-form extra metadata ([`Checkpoint::metadata`]);
//! the keys above are reserved.
//!
//! [`load`] accepts a file only if all of this holds: the file is a well-formed safetensors
//! file (not truncated), `format` and `version` match, every reserved key is present and
//! parses (`t` finite), `config` is valid JSON, `replicas` ≥ 1, each of the six tensors is
//! present with the dtype and shape above and no other tensor is, every float is finite, and
//! every edge index is `< n`. [`save`] checks the same of the [`Checkpoint`] before it
//! writes, so whatever it writes, [`load`] reads back, bit for bit.
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
//! from safetensors import safe_open
//! from safetensors.numpy import load_file
//!
//! d = load_file("run.safetensors")
//! x, p = d["x"], d["p"]              # float32, shape (replicas, n)
//! w, pw = d["w"], d["pw"]            # float32, shape (replicas, n_edges)
//! src, dst = d["edge_src"], d["edge_dst"]   # uint32, shape (n_edges,)
//!
//! with safe_open("run.safetensors", "np") as f:
//!     meta = f.metadata()            # dict of str -> str
//! assert meta["format"] == "localprop-checkpoint" and meta["version"] == "1"
//! step, t = int(meta["step"]), float(meta["t"])
//! config = json.loads(meta["config"])
//! ```
//!
//! A Python program can write a checkpoint with
//! `safetensors.numpy.save_file(tensors, path, metadata=meta)` as long as it follows the
//! format above (`float32`/`uint32` arrays of the right shapes, every metadata value a
//! string).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::network::Network;
use crate::state::State;

/// The value of the `format` metadata entry.
pub const FORMAT: &str = "localprop-checkpoint";

/// The value of the `version` metadata entry this build writes and reads.
pub const VERSION: &str = "1";

/// The metadata keys the format itself uses; extra metadata may not use them.
pub const RESERVED_KEYS: [&str; 8] = ["format", "version", "config", "step", "t", "replicas", "n", "n_edges"];

/// The tensors of a checkpoint, in the order the format lists them.
const TENSORS: [&str; 6] = ["x", "p", "w", "pw", "edge_src", "edge_dst"];

/// What a checkpoint holds besides the tensors.
///
/// The tensors are the state's `x`, `p`, `w`, `pw` and the network's `edge_src`, `edge_dst`;
/// the rest goes into the file's metadata (see the [module docs](self) for the format).
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The engine's state; [`State::step`] is stored as the `step` metadata entry.
    pub state: State,
    /// Source neuron of each edge, in weight-vector order ([`Network::edges`]).
    pub edge_src: Vec<u32>,
    /// Target neuron of each edge, in weight-vector order.
    pub edge_dst: Vec<u32>,
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
    /// Checks that this checkpoint was taken of `net`: the same neuron count and the same
    /// edges in the same order. A mismatch is an [`Error::State`] naming the first difference.
    pub fn check_network(&self, net: &Network) -> Result<()> {
        if self.n != net.n() {
            return Err(Error::State(format!("the checkpoint has {} neurons, the network {}", self.n, net.n())));
        }
        if self.edge_src.len() != net.n_edges() || self.edge_dst.len() != net.n_edges() {
            return Err(Error::State(format!(
                "the checkpoint has {} edges, the network {}",
                self.edge_src.len(),
                net.n_edges()
            )));
        }
        let ours = self.edge_src.iter().zip(&self.edge_dst).map(|(&s, &d)| (s as usize, d as usize));
        if let Some((k, ((s, d), (ns, nd)))) = ours.zip(net.edges()).enumerate().find(|(_, (a, b))| a != b) {
            return Err(Error::State(format!("edge {k} of the checkpoint is {s} -> {d}, of the network {ns} -> {nd}")));
        }
        Ok(())
    }
}

/// Writes `ckpt` to `path` in the checkpoint format, atomically replacing any file there.
///
/// The checkpoint is checked first, nothing is written unless it passes: sizes of the state
/// against `replicas`, `n` and the edge count, finite values and `t`, edge indices `< n`, and
/// matching `edge_src` / `edge_dst` lengths are an [`Error::State`]; a `config_json` that is
/// not JSON or an extra metadata key that is reserved is an [`Error::Data`]. I/O failures are
/// an [`Error::Io`] naming the file; in every error case an existing file at `path` is left
/// as it was and no temporary file remains.
pub fn save(path: &Path, ckpt: &Checkpoint) -> Result<()> {
    let bytes = encode(path, ckpt)?;
    write_atomically(path, &bytes)
}

/// Reads and validates a checkpoint written by [`save`] (or by anyone following the format).
///
/// A file that cannot be read is an [`Error::Io`]; one that is not a valid checkpoint
/// (truncated, not safetensors, wrong `format` or `version`, a missing or unexpected tensor,
/// a wrong dtype or shape, a non-finite value, an edge index out of range, unparsable
/// metadata) is an [`Error::Data`] naming the path and the problem. Never panics.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bytes = fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    decode(&bytes).map_err(|message| Error::Data { path: path.display().to_string(), message })
}

/// One tensor ready to serialize.
#[derive(Clone, Debug)]
struct Tensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Checks `ckpt` and splits it into the file's tensors and metadata.
fn parts(path: &Path, ckpt: &Checkpoint) -> Result<(Vec<Tensor>, HashMap<String, String>)> {
    let shown = path.display();
    let state_err = |m: String| Error::State(format!("cannot save checkpoint `{shown}`: {m}"));
    let data_err = |m: String| Error::Data { path: shown.to_string(), message: format!("cannot save: {m}") };
    let s = &ckpt.state;
    let (r, n, e) = (s.replicas, ckpt.n, ckpt.edge_src.len());
    if r == 0 {
        return Err(state_err("0 replicas; a checkpoint needs at least one".into()));
    }
    s.check(r, n, e).map_err(|err| match err {
        Error::State(m) => state_err(m),
        other => other,
    })?;
    if ckpt.edge_dst.len() != e {
        return Err(state_err(format!("{e} entries in `edge_src` but {} in `edge_dst`", ckpt.edge_dst.len())));
    }
    check_edges(&ckpt.edge_src, &ckpt.edge_dst, n).map_err(state_err)?;
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
    ] {
        meta.insert(k.to_string(), v);
    }
    let f32s = |name: &str, v: &[f32], cols: usize| Tensor {
        name: name.to_string(),
        dtype: Dtype::F32,
        shape: vec![r, cols],
        bytes: v.iter().flat_map(|a| a.to_le_bytes()).collect(),
    };
    let u32s = |name: &str, v: &[u32]| Tensor {
        name: name.to_string(),
        dtype: Dtype::U32,
        shape: vec![e],
        bytes: v.iter().flat_map(|a| a.to_le_bytes()).collect(),
    };
    let tensors = vec![
        f32s("x", &s.x, n),
        f32s("p", &s.p, n),
        f32s("w", &s.w, e),
        f32s("pw", &s.pw, e),
        u32s("edge_src", &ckpt.edge_src),
        u32s("edge_dst", &ckpt.edge_dst),
    ];
    Ok((tensors, meta))
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

/// Writes `bytes` to `<name>.tmp` next to `path`, fsyncs it and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |p: &Path, source| Error::Io { path: p.display().to_string(), source };
    let Some(name) = path.file_name() else {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name");
        return Err(io_err(path, source));
    };
    let mut tmp_name = name.to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(source) = written {
        // Best effort: the file may not exist (e.g. its folder does not).
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp, source));
    }
    if let Err(source) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, source));
    }
    sync_dir(path);
    Ok(())
}

/// Fsyncs the folder holding `path` so that the rename survives a crash (best effort: some
/// platforms and file systems cannot open or sync a folder, and the data is in place anyway).
fn sync_dir(path: &Path) {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Checks that every edge index is a neuron index (`< n`).
fn check_edges(src: &[u32], dst: &[u32], n: usize) -> std::result::Result<(), String> {
    for (name, v) in [("edge_src", src), ("edge_dst", dst)] {
        if let Some(k) = v.iter().position(|&i| i as usize >= n) {
            return Err(format!("`{name}[{k}]` = {} is not a neuron index (n = {n})", v[k]));
        }
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
    if version != VERSION {
        return Err(format!("unsupported checkpoint version `{version}` (this build reads version {VERSION})"));
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
    if let Some(name) = tensors.names().into_iter().find(|name| !TENSORS.contains(name)) {
        return Err(format!("unexpected tensor `{name}` (a checkpoint holds only {})", TENSORS.join(", ")));
    }
    let state_shape = [replicas, n];
    let edge_shape = [replicas, n_edges];
    let x = f32_tensor(&tensors, "x", &state_shape, "[replicas, n]")?;
    let p = f32_tensor(&tensors, "p", &state_shape, "[replicas, n]")?;
    let w = f32_tensor(&tensors, "w", &edge_shape, "[replicas, n_edges]")?;
    let pw = f32_tensor(&tensors, "pw", &edge_shape, "[replicas, n_edges]")?;
    let edge_src = u32_tensor(&tensors, "edge_src", n_edges)?;
    let edge_dst = u32_tensor(&tensors, "edge_dst", n_edges)?;
    check_edges(&edge_src, &edge_dst, n)?;
    let metadata = meta
        .iter()
        .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Checkpoint { state: State { step, replicas, x, p, w, pw }, edge_src, edge_dst, n, t, config_json, metadata })
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

/// Reads an `F32` tensor of shape `shape` (2-d), checking that every value is finite.
fn f32_tensor(
    tensors: &SafeTensors<'_>,
    name: &str,
    shape: &[usize; 2],
    what: &str,
) -> std::result::Result<Vec<f32>, String> {
    let bytes = tensor_bytes(tensors, name, Dtype::F32, shape, what)?;
    let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    if let Some(k) = v.iter().position(|a| !a.is_finite()) {
        let cols = shape[1].max(1);
        return Err(format!(
            "tensor `{name}` holds {} at [{}, {}]; every value must be finite",
            v[k],
            k / cols,
            k % cols
        ));
    }
    Ok(v)
}

/// Reads a `U32` tensor of shape `[len]`.
fn u32_tensor(tensors: &SafeTensors<'_>, name: &str, len: usize) -> std::result::Result<Vec<u32>, String> {
    let bytes = tensor_bytes(tensors, name, Dtype::U32, &[len], "[n_edges]")?;
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

    /// 2 replicas, 4 neurons, 4 edges, awkward float values.
    fn sample() -> Checkpoint {
        let odd = [-0.0f32, f32::from_bits(1), f32::MAX, f32::MIN_POSITIVE, 0.1, -std::f32::consts::PI, 1e-30, 7.0];
        let x: Vec<f32> = odd.to_vec();
        let p: Vec<f32> = odd.iter().rev().copied().collect();
        let w: Vec<f32> = odd.iter().map(|a| a * 0.5).collect();
        let pw: Vec<f32> = odd.iter().map(|a| -a).collect();
        Checkpoint {
            state: State { step: u64::MAX, replicas: 2, x, p, w, pw },
            edge_src: vec![0, 1, 2, 3],
            edge_dst: vec![2, 2, 3, 3],
            n: 4,
            t: 0.1 + 0.2,
            config_json: r#"{"tau": 0.1, "name": "h\u00e9llo \"q\"", "net": {"layers": [2, 3, 1]}}"#.to_string(),
            metadata: BTreeMap::from([
                ("git".to_string(), "abc123".to_string()),
                ("note".to_string(), "ünïcode ✓".to_string()),
            ]),
        }
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

    /// Saves a broken variant of `sample()` made by `edit` and returns the load error's text.
    fn load_error(tag: &str, edit: impl FnOnce(&mut Vec<Tensor>, &mut HashMap<String, String>)) -> String {
        let dir = TempDir::new(tag);
        let path = dir.path("bad.safetensors");
        let (mut tensors, mut meta) = parts(&path, &sample()).unwrap();
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
        assert_eq!(dir.entries(), ["run.safetensors"]);

        // Times that stress the decimal form.
        for t in [0.0, -0.0, 1e-300, 5e-324, 123_456_789.123_456_79, f64::MAX, -1.0 / 3.0] {
            let c = Checkpoint { t, ..sample() };
            save(&path, &c).unwrap();
            assert_bit_identical(&c, &load(&path).unwrap());
        }
    }

    #[test]
    fn round_trip_without_edges() {
        let dir = TempDir::new("no-edges");
        let path = dir.path("empty.safetensors");
        let ckpt = Checkpoint {
            state: State { step: 0, replicas: 3, x: vec![1.0; 6], p: vec![0.0; 6], w: vec![], pw: vec![] },
            edge_src: vec![],
            edge_dst: vec![],
            n: 2,
            t: 0.0,
            config_json: "{}".into(),
            metadata: BTreeMap::new(),
        };
        save(&path, &ckpt).unwrap();
        assert_bit_identical(&ckpt, &load(&path).unwrap());
    }

    #[test]
    fn metadata_and_shapes_as_documented() {
        let dir = TempDir::new("layout");
        let path = dir.path("run.safetensors");
        save(&path, &sample()).unwrap();
        let bytes = fs::read(&path).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta["format"], "localprop-checkpoint");
        assert_eq!(meta["version"], "1");
        assert_eq!(meta["step"], "18446744073709551615");
        assert_eq!(meta["t"], "0.30000000000000004");
        assert_eq!((meta["replicas"].as_str(), meta["n"].as_str(), meta["n_edges"].as_str()), ("2", "4", "4"));
        assert_eq!(meta["git"], "abc123");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        for (name, dtype, shape) in [
            ("x", Dtype::F32, vec![2, 4]),
            ("p", Dtype::F32, vec![2, 4]),
            ("w", Dtype::F32, vec![2, 4]),
            ("pw", Dtype::F32, vec![2, 4]),
            ("edge_src", Dtype::U32, vec![4]),
            ("edge_dst", Dtype::U32, vec![4]),
        ] {
            let t = st.tensor(name).unwrap();
            assert_eq!((t.dtype(), t.shape()), (dtype, shape.as_slice()), "{name}");
        }
        // Little-endian: x[0, 1] is the smallest subnormal, bits 0x00000001.
        assert_eq!(&st.tensor("x").unwrap().data()[4..8], &[1, 0, 0, 0]);
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
        let m = load_error("missing-tensor", |t, _| t.retain(|t| t.name != "pw"));
        assert!(m.contains("tensor `pw` is missing"), "{m}");
        let m = load_error("missing-edges", |t, _| t.retain(|t| t.name != "edge_dst"));
        assert!(m.contains("tensor `edge_dst` is missing"), "{m}");
    }

    #[test]
    fn wrong_shape_or_dtype_is_named() {
        let m = load_error("shape", |t, _| tensor(t, "x").shape = vec![4, 2]);
        assert!(m.contains("tensor `x` has shape [4, 2], want [replicas, n] = [2, 4]"), "{m}");
        let m = load_error("shape-1d", |t, _| tensor(t, "w").shape = vec![8]);
        assert!(m.contains("tensor `w` has shape [8]"), "{m}");
        let m = load_error("dtype", |t, _| tensor(t, "edge_src").dtype = Dtype::I32);
        assert!(m.contains("tensor `edge_src` has dtype I32, want U32"), "{m}");
        let m = load_error("n-mismatch", |_, meta| {
            meta.insert("n".into(), "5".into());
        });
        assert!(m.contains("tensor `x` has shape [2, 4], want [replicas, n] = [2, 5]"), "{m}");
        let m = load_error("extra", |t, _| {
            t.push(Tensor { name: "extra".into(), dtype: Dtype::F32, shape: vec![1], bytes: vec![0; 4] })
        });
        assert!(m.contains("unexpected tensor `extra`"), "{m}");
    }

    #[test]
    fn non_finite_values_are_named() {
        let m = load_error("nan", |t, _| tensor(t, "w").bytes[20..24].copy_from_slice(&f32::NAN.to_le_bytes()));
        assert!(m.contains("tensor `w` holds NaN at [1, 1]"), "{m}");
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
            meta.insert("version".into(), "2".into());
        });
        assert!(m.contains("unsupported checkpoint version `2`"), "{m}");
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
        let m =
            load_error("edge-range", |t, _| tensor(t, "edge_dst").bytes[8..12].copy_from_slice(&4u32.to_le_bytes()));
        assert!(m.contains("`edge_dst[2]` = 4 is not a neuron index (n = 4)"), "{m}");
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
        reserved.metadata.insert("step".into(), "1".into());
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
        let cases: Vec<(Checkpoint, &str)> = vec![
            (
                {
                    let mut c = sample();
                    c.state.x.pop();
                    c
                },
                "`x` has 7 values",
            ),
            (
                {
                    let mut c = sample();
                    c.edge_dst.pop();
                    c
                },
                "`edge_dst`",
            ),
            (
                {
                    let mut c = sample();
                    c.edge_src[1] = 9;
                    c
                },
                "`edge_src[1]` = 9 is not a neuron index",
            ),
            (Checkpoint { t: f64::INFINITY, ..sample() }, "t = inf is not finite"),
            (
                {
                    let mut c = sample();
                    c.state.replicas = 0;
                    c
                },
                "0 replicas",
            ),
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
    fn check_network_compares_edges() {
        let net = crate::NetworkSpec::layered(&[2, 3, 1]).build().unwrap();
        let e = net.n_edges();
        let ckpt = Checkpoint {
            state: State {
                step: 0,
                replicas: 1,
                x: vec![0.0; net.n()],
                p: vec![0.0; net.n()],
                w: vec![0.0; e],
                pw: vec![0.0; e],
            },
            edge_src: net.edges().map(|(j, _)| j as u32).collect(),
            edge_dst: net.edges().map(|(_, i)| i as u32).collect(),
            n: net.n(),
            t: 0.0,
            config_json: "{}".into(),
            metadata: BTreeMap::new(),
        };
        ckpt.check_network(&net).unwrap();
        let mut other = ckpt.clone();
        other.edge_src.swap(0, 1);
        assert!(matches!(other.check_network(&net), Err(Error::State(m)) if m.contains("edge 0")));
        let other = Checkpoint { n: net.n() + 1, ..ckpt };
        assert!(matches!(other.check_network(&net), Err(Error::State(_))));
    }
}
