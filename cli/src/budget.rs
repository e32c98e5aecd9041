//! The memory a run needs, estimated from its shape before anything is allocated, against the
//! memory the machine has available: a file that would exhaust memory is refused with what
//! needs how much, instead of aborting the process part-way.

use std::sync::OnceLock;

use localprop::error::{Error, Result};
use localprop::network::{NetworkSpec, Topology};

static LIMIT: OnceLock<u64> = OnceLock::new();

/// Sets the budget for this process (`--max-memory`), instead of the available memory the
/// system reports. The first call wins.
pub fn set_max_memory(bytes: u64) {
    let _ = LIMIT.set(bytes);
}

/// The budget: [`set_max_memory`]'s, else the system's available memory (`MemAvailable` of
/// `/proc/meminfo`), else none known (no check).
pub fn limit() -> Option<(u64, &'static str)> {
    if let Some(&b) = LIMIT.get() {
        return Some((b, "--max-memory"));
    }
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kib.saturating_mul(1024), "available memory"))
}

/// `"1.5 min"` as `(Some(1.5), "min")`: the number before the first letter (`None` if it does
/// not parse) and the unit from there, both trimmed.
pub(crate) fn number_and_unit(text: &str) -> (Option<f64>, &str) {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    (number.trim().parse().ok(), unit.trim())
}

/// Parses a size such as `512M`, `8G`, `1.5G` or a number of bytes.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let (number, unit) = number_and_unit(text);
    let scale = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1u64,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return Err(format!("{text:?}: a size such as 512M, 8G or 1.5G")),
    };
    match number {
        Some(v) if v.is_finite() && v > 0.0 && v * (scale as f64) < u64::MAX as f64 => Ok((v * scale as f64) as u64),
        _ => Err(format!("{text:?}: a size > 0 such as 512M, 8G or 1.5G")),
    }
}

/// Neurons and synapses of a network spec, from its numbers alone (nothing is built); an
/// error where they do not fit 64 bits.
pub fn counts(spec: &NetworkSpec) -> Result<(u64, u64)> {
    let too_big = || Error::Network("the network's neuron or synapse count does not fit 64 bits".into());
    let bias = spec.bias as u64;
    let (n, edges) = match &spec.topology {
        Topology::Layered { sizes } => {
            let s: Vec<u64> = sizes.iter().map(|&v| v as u64).collect();
            let n = s.iter().try_fold(bias, |a, &v| a.checked_add(v)).ok_or_else(too_big)?;
            let mut e = 0u64;
            for w in s.windows(2) {
                let layer = w[0].checked_mul(w[1]).and_then(|v| v.checked_add(bias * w[1])).ok_or_else(too_big)?;
                e = e.checked_add(layer).ok_or_else(too_big)?;
            }
            (n, e)
        }
        Topology::FullyConnected { inputs, neurons, self_loops } => {
            let (i, k) = (*inputs as u64, *neurons as u64);
            let n = i.checked_add(k).and_then(|v| v.checked_add(bias)).ok_or_else(too_big)?;
            let fan = (i + k).saturating_sub(u64::from(!self_loops)) + bias; // <= n
            (n, k.checked_mul(fan).ok_or_else(too_big)?)
        }
        Topology::RandomSparse { inputs, neurons, fan_in, .. } => {
            let (i, k) = (*inputs as u64, *neurons as u64);
            let n = i.checked_add(k).and_then(|v| v.checked_add(bias)).ok_or_else(too_big)?;
            let fan = (*fan_in as u64).checked_add(bias).ok_or_else(too_big)?;
            (n, k.checked_mul(fan).ok_or_else(too_big)?)
        }
        Topology::Edges { inputs, neurons, edges } => {
            let (i, k) = (*inputs as u64, *neurons as u64);
            let n = i.checked_add(k).and_then(|v| v.checked_add(bias)).ok_or_else(too_big)?;
            (n, (edges.len() as u64).checked_add(bias * k).ok_or_else(too_big)?)
        }
    };
    Ok((n, edges))
}

/// What a run needs, part by part, in bytes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Needs {
    /// `(what, bytes)`.
    pub parts: Vec<(&'static str, u64)>,
}

/// The shape a run's memory follows.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Neurons, inputs and bias included.
    pub n: u64,
    /// Synapses.
    pub edges: u64,
    /// Whether the synapses are all in dense blocks (no index arrays).
    pub dense: bool,
    /// Replicas.
    pub replicas: u64,
    /// Outputs per replica.
    pub outputs: u64,
    /// External inputs and bias per replica.
    pub d: u64,
    /// Recorded steps held in memory (the trace is streamed to disk: a block's rows, or two).
    pub records: u64,
    /// Steps per block.
    pub block_steps: u64,
}

impl Needs {
    /// The estimate for `s`: the network (initial weights, and index arrays where sparse),
    /// the replicas' `w`, `pw` and per-neuron vectors (one copy on the host; a GPU run holds
    /// another on the device), the copies a checkpoint is made from (the state, its
    /// tensors, the file's bytes), the trace rows held in memory, and two blocks of streams.
    pub fn of(s: Shape) -> Needs {
        // Saturating: the counts may be anything a file holds; a sum past u64 is over any budget.
        let m = |a: u64, b: u64| a.saturating_mul(b);
        let a = |a: u64, b: u64| a.saturating_add(b);
        let per_edge_net = if s.dense { 4 } else { 4 + 16 };
        // Per replica: loss, Lagrangian, Hamiltonian, sign and three values per output (f32);
        // the step and t (8 bytes each).
        let trace_row = a(m(s.replicas, m(4, a(4, m(3, s.outputs)))), 16);
        Needs {
            parts: vec![
                ("network", m(s.edges, per_edge_net)),
                ("w and pw of every replica", m(s.replicas, m(s.edges, 8))),
                ("neuron states of every replica", m(s.replicas, m(s.n, 48))),
                ("checkpoint copies of the state", m(3, m(s.replicas, a(m(s.edges, 8), m(s.n, 8))))),
                ("trace rows held in memory", m(s.records, trace_row)),
                ("stream blocks", m(2, m(a(s.block_steps, 1), m(s.replicas, m(4, a(s.d, m(2, s.outputs))))))),
            ],
        }
    }

    /// The sum of the parts.
    pub fn total(&self) -> u64 {
        self.parts.iter().fold(0u64, |a, &(_, b)| a.saturating_add(b))
    }

    /// An error when the total exceeds [`limit`], naming the parts.
    pub fn check(&self) -> std::result::Result<(), String> {
        let Some((limit, source)) = limit() else { return Ok(()) };
        if self.total() <= limit {
            return Ok(());
        }
        let parts: Vec<String> =
            self.parts.iter().filter(|&&(_, b)| b > 0).map(|&(what, b)| format!("{what} {}", human(b))).collect();
        Err(format!(
            "the run needs about {} ({}), more than the {source} of {}; make the network, the replicas or the \
             recorded steps (run.record_every) smaller, or set --max-memory",
            human(self.total()),
            parts.join(", "),
            human(limit)
        ))
    }
}

/// `1.50 GB`.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match b {
        b if b >= 1e12 => format!("{:.2} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.2} GB", b / 1e9),
        b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
        b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_the_built_networks() {
        let specs = [
            NetworkSpec::layered(&[4, 3, 2]).bias(true),
            NetworkSpec::layered(&[4, 3, 2]),
            NetworkSpec::fully_connected(2, 5, true).bias(true),
            NetworkSpec::fully_connected(2, 5, false).bias(true),
            NetworkSpec::fully_connected(0, 5, false),
            NetworkSpec::random_sparse(3, 50, 4, false).bias(true),
            NetworkSpec::edges(1, 3, vec![(0, 2), (2, 3), (3, 4)]).bias(true),
        ];
        for spec in specs {
            let net = spec.build().unwrap();
            assert_eq!(counts(&spec).unwrap(), (net.n() as u64, net.n_edges() as u64), "{spec:?}");
        }
        let huge = NetworkSpec::layered(&[usize::MAX / 2, 4, 2]);
        assert!(counts(&huge).is_err());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("2 gib"), Ok(2 << 30));
        for bad in ["", "-1G", "8X", "G", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
