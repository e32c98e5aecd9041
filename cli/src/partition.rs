//! `localprop partition`: the plan for one network split over several devices
//! ([`localprop::partition`]), with the bytes that cross between them per step, for an
//! experiment file's network or for the benchmark cases.

use localprop::error::{Error, Result};
use localprop::network::Network;
use localprop::partition::Partition;

use crate::bench::{BYTES_PER_NEURON, BYTES_PER_SYNAPSE};

/// One row of the table: a network on a number of devices.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// The case or file.
    pub case: String,
    /// Synapses in the network.
    pub synapses: usize,
    /// Non-input neurons.
    pub neurons: usize,
    /// Devices.
    pub devices: usize,
    /// The most synapses on one device.
    pub max_device_synapses: usize,
    /// Boundary pairs (neuron, other device holding one of its children).
    pub boundary_pairs: usize,
    /// Bytes crossing between devices per step and replica, all together.
    pub bytes_per_step: u64,
    /// The most bytes one device sends plus receives per step and replica.
    pub max_device_bytes_per_step: u64,
    /// Bytes the busiest device moves in its own memory per step and replica (its synapses'
    /// [`BYTES_PER_SYNAPSE`] and its neurons' [`BYTES_PER_NEURON`]).
    pub max_device_memory_bytes_per_step: u64,
}

impl Row {
    /// The busiest device's bytes over the interconnect per byte it moves in its memory.
    pub fn exchange_ratio(&self) -> f64 {
        self.max_device_bytes_per_step as f64 / self.max_device_memory_bytes_per_step.max(1) as f64
    }
}

/// The rows of `net` on each device count of `devices` (those above its neuron count are
/// skipped; an error when none is left).
pub fn rows(case: &str, net: &Network, devices: &[usize]) -> Result<Vec<Row>> {
    let neurons = net.n() - net.d();
    let mut rows = Vec::new();
    for &k in devices.iter().filter(|&&k| k <= neurons) {
        let p = Partition::contiguous(net, k)?;
        let memory = p
            .devices
            .iter()
            .map(|s| s.synapses as u64 * BYTES_PER_SYNAPSE + s.neurons.len() as u64 * BYTES_PER_NEURON)
            .max()
            .unwrap_or(0);
        rows.push(Row {
            case: case.to_string(),
            synapses: net.n_edges(),
            neurons,
            devices: k,
            max_device_synapses: p.max_device_synapses(),
            boundary_pairs: p.boundary_pairs(),
            bytes_per_step: p.bytes_per_step(),
            max_device_bytes_per_step: p.max_device_bytes_per_step(),
            max_device_memory_bytes_per_step: memory,
        });
    }
    if rows.is_empty() {
        return Err(Error::param(
            "--devices",
            format!("{devices:?}"),
            format!("at most {neurons}, the non-input neurons of {case}"),
        ));
    }
    Ok(rows)
}

/// Bytes with a binary prefix: `1.50 MiB`.
fn bytes(v: u64) -> String {
    match v {
        v if v >= 1 << 30 => format!("{:.2} GiB", v as f64 / (1u64 << 30) as f64),
        v if v >= 1 << 20 => format!("{:.2} MiB", v as f64 / (1u64 << 20) as f64),
        v if v >= 1 << 10 => format!("{:.1} KiB", v as f64 / 1024.0),
        v => format!("{v} B"),
    }
}

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| case | synapses | devices | synapses on the busiest | boundary pairs | crossing per step | \
         busiest device's exchange | its memory traffic | exchange / memory |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2e} |\n",
            r.case,
            r.synapses,
            r.devices,
            r.max_device_synapses,
            r.boundary_pairs,
            bytes(r.bytes_per_step),
            bytes(r.max_device_bytes_per_step),
            bytes(r.max_device_memory_bytes_per_step),
            r.exchange_ratio(),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use localprop::network::NetworkSpec;

    #[test]
    fn a_dense_net_crosses_its_other_devices_neurons_both_ways() {
        let net = NetworkSpec::fully_connected(0, 1024, true).bias(true).build().unwrap();
        let rows = rows("fc-1024", &net, &[1, 2, 4, 2048]).unwrap();
        assert_eq!(rows.len(), 3, "2048 devices is more than the neurons: skipped");
        assert_eq!(rows[0].bytes_per_step, 0);
        // 4 devices of 256 neurons: each receives the other 768 x and sends 768 partial sums.
        let r = &rows[2];
        assert_eq!((r.devices, r.boundary_pairs, r.max_device_bytes_per_step), (4, 4 * 768, 2 * 768 * 8));
        assert_eq!(r.max_device_memory_bytes_per_step, 256 * 1025 * 16 + 256 * 60);
        assert!(table(&rows).contains("| fc-1024 | 1049600 | 4 | 262400 | 3072 | 24.0 KiB | 12.0 KiB |"));
        assert!(super::rows("fc-1024", &net, &[2048]).unwrap_err().to_string().contains("--devices"));
    }
}
