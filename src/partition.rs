//! Splitting one network over several devices: the plan for a network too big for one GPU,
//! and the communication it would cost, computed from the network itself.
//!
//! **The split.** The non-input neurons `d..n` are cut into `devices` contiguous ranges with
//! nearly equal numbers of incoming synapses (the step's work and memory are per synapse).
//! Device `k` holds its neurons' `x, p̂, a, b, ê` and every synapse *into* them (its rows of
//! each block): a synapse lives where its target lives, once. The input neurons (external
//! inputs and the bias) are streamed to every device.
//!
//! **What crosses per step** (the one-pass step of docs/model.md, per replica): a synapse
//! `j -> i` on device `D(i)` reads `x_j` (the step-`n+1` value for the pre-activation, the
//! step-`n` one for `p̂w`, kept from the previous exchange) and adds `w_ij ê_i` into the
//! children's sum `b_j` of its source. So for every *boundary pair* (a neuron `j` and another
//! device holding at least one of `j`'s children), each step sends `x_j` from `D(j)` to that
//! device after the state update, and the partial sum `b_j` back before the costate update:
//! 4 bytes each way in f32. The alternative, sending `ê_i` to the devices of `i`'s parents,
//! would need a second, transposed copy of `w` there (kept in step with the first), doubling
//! the memory the split exists to save. `hsf-ball` adds an all-reduce of one number per
//! replica (the state's squared norm); the outputs and targets stay on their devices.
//!
//! [`Partition::contiguous`] counts the boundary pairs exactly, block by block: a dense block
//! marks its column ranges without listing its synapses, the sparse block walks its edges.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::network::Network;

/// Bytes that cross between devices per boundary pair per step and replica: `x_j` out and the
/// partial `b_j` back, f32 each.
pub const BYTES_PER_BOUNDARY_PAIR: u64 = 8;

/// One device's share of a [`Partition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceShare {
    /// Its non-input neurons.
    pub neurons: Range<usize>,
    /// Synapses into them: the synapses it stores and updates.
    pub synapses: usize,
    /// Non-input neurons of other devices with a child here: the `x` it receives and the
    /// partial sums `b` it sends back, per step.
    pub halo_in: usize,
    /// Boundary pairs of its own neurons: (neuron here, other device holding a child of it).
    /// The `x` it sends and the partial sums it receives, per step.
    pub halo_out: usize,
}

impl DeviceShare {
    /// Bytes this device sends plus receives per step and replica.
    pub fn bytes_per_step(&self) -> u64 {
        (self.halo_in + self.halo_out) as u64 * BYTES_PER_BOUNDARY_PAIR
    }
}

/// A network's non-input neurons split over devices, with the per-step exchange it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// One share per device, in neuron order.
    pub devices: Vec<DeviceShare>,
}

impl Partition {
    /// Cuts the non-input neurons into `devices` contiguous ranges of nearly equal incoming
    /// synapses (each range at least one neuron) and counts the boundary pairs. An error when
    /// `devices` is 0 or more than the non-input neurons.
    pub fn contiguous(net: &Network, devices: usize) -> Result<Partition> {
        let (d, n) = (net.d(), net.n());
        if devices == 0 || devices > n - d {
            return Err(Error::param(
                "devices",
                devices,
                format!("between 1 and the network's {} non-input neurons", n - d),
            ));
        }
        let fan_in = fan_in(net);
        let total: usize = fan_in.iter().sum();
        // Device k ends at the first neuron where the running sum reaches (k + 1) total / devices,
        // leaving at least one neuron for each device after it.
        let mut cuts = vec![d];
        let mut sum = 0usize;
        let mut i = d;
        for k in 0..devices {
            let goal = (k + 1) as u128 * total as u128 / devices as u128;
            let last = n - (devices - 1 - k); // exclusive end that leaves one neuron per later device
            let first_end = cuts[k] + 1;
            while i < last && (i < first_end || (sum as u128) < goal) {
                sum += fan_in[i];
                i += 1;
            }
            cuts.push(i);
        }
        *cuts.last_mut().expect("devices >= 1") = n;
        let owner = |j: usize| cuts.partition_point(|&c| c <= j) - 1;

        // needed[k]: the non-input neurons of other devices read by device k.
        let mut needed = vec![vec![false; n]; devices];
        for b in net.dense_blocks() {
            for (k, need) in needed.iter_mut().enumerate() {
                let rows = b.rows.start.max(cuts[k])..b.rows.end.min(cuts[k + 1]);
                if !rows.is_empty() {
                    need[b.cols.start.max(d)..b.cols.end.max(d)].fill(true);
                }
            }
        }
        if let Some(s) = net.sparse_block() {
            for (&j, &i) in s.src.iter().zip(&s.dst) {
                let (j, i) = (j as usize, i as usize);
                if j >= d {
                    needed[owner(i)][j] = true;
                }
            }
        }
        let mut shares: Vec<DeviceShare> = (0..devices)
            .map(|k| DeviceShare {
                neurons: cuts[k]..cuts[k + 1],
                synapses: fan_in[cuts[k]..cuts[k + 1]].iter().sum(),
                halo_in: 0,
                halo_out: 0,
            })
            .collect();
        for (k, need) in needed.iter().enumerate() {
            for (j, _) in need.iter().enumerate().filter(|&(j, &on)| on && owner(j) != k) {
                shares[k].halo_in += 1;
                shares[owner(j)].halo_out += 1;
            }
        }
        Ok(Partition { devices: shares })
    }

    /// Boundary pairs: `(j, device)` with `j` on another device than one of its children.
    pub fn boundary_pairs(&self) -> usize {
        self.devices.iter().map(|s| s.halo_in).sum()
    }

    /// Bytes that cross between devices per step and replica, all devices together.
    pub fn bytes_per_step(&self) -> u64 {
        self.boundary_pairs() as u64 * BYTES_PER_BOUNDARY_PAIR
    }

    /// The most bytes one device sends plus receives per step and replica.
    pub fn max_device_bytes_per_step(&self) -> u64 {
        self.devices.iter().map(DeviceShare::bytes_per_step).max().unwrap_or(0)
    }

    /// The most synapses on one device.
    pub fn max_device_synapses(&self) -> usize {
        self.devices.iter().map(|s| s.synapses).max().unwrap_or(0)
    }
}

/// Incoming synapses of every neuron (0 for the inputs), without listing the dense ones.
fn fan_in(net: &Network) -> Vec<usize> {
    let mut fan_in = vec![0usize; net.n()];
    for b in net.dense_blocks() {
        for f in &mut fan_in[b.rows.clone()] {
            *f += b.cols.len();
        }
    }
    if let Some(s) = net.sparse_block() {
        for (i, f) in fan_in.iter_mut().enumerate() {
            *f += (s.row_ptr[i + 1] - s.row_ptr[i]) as usize;
        }
    }
    fan_in
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkSpec;

    /// The same counts from the edge list, by brute force.
    fn brute(net: &Network, p: &Partition) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let owner = |i: usize| p.devices.iter().position(|s| s.neurons.contains(&i));
        let k = p.devices.len();
        let mut synapses = vec![0; k];
        let mut pairs = std::collections::BTreeSet::new();
        for (j, i) in net.edges() {
            let di = owner(i).expect("a target is a non-input neuron");
            synapses[di] += 1;
            if let Some(dj) = owner(j).filter(|&dj| dj != di) {
                pairs.insert((j, di, dj));
            }
        }
        let (mut halo_in, mut halo_out) = (vec![0; k], vec![0; k]);
        for &(_, di, dj) in &pairs {
            halo_in[di] += 1;
            halo_out[dj] += 1;
        }
        (synapses, halo_in, halo_out)
    }

    #[test]
    fn the_counts_match_the_edge_list_on_every_kind_of_network() {
        let nets = [
            NetworkSpec::fully_connected(3, 40, true).bias(true),
            NetworkSpec::fully_connected(0, 17, false),
            NetworkSpec::layered(&[5, 9, 7, 3]).bias(true),
            NetworkSpec::random_sparse(2, 60, 5, false).bias(true).seed(3),
            NetworkSpec::tracking(),
        ];
        for spec in nets {
            let net = spec.build().unwrap();
            for devices in [1, 2, 3, 4, 5] {
                let p = Partition::contiguous(&net, devices).unwrap();
                let (synapses, halo_in, halo_out) = brute(&net, &p);
                let got = |f: fn(&DeviceShare) -> usize| p.devices.iter().map(f).collect::<Vec<_>>();
                assert_eq!(got(|s| s.synapses), synapses, "{spec:?} on {devices}");
                assert_eq!(got(|s| s.halo_in), halo_in, "{spec:?} on {devices}");
                assert_eq!(got(|s| s.halo_out), halo_out, "{spec:?} on {devices}");
                assert_eq!(p.devices.first().unwrap().neurons.start, net.d());
                assert_eq!(p.devices.last().unwrap().neurons.end, net.n());
                assert!(p.devices.windows(2).all(|w| w[0].neurons.end == w[1].neurons.start));
                assert!(p.devices.iter().all(|s| !s.neurons.is_empty()));
            }
        }
    }

    #[test]
    fn a_dense_net_is_balanced_and_exchanges_every_other_devices_neurons() {
        let net = NetworkSpec::fully_connected(0, 64, true).bias(true).build().unwrap();
        let p = Partition::contiguous(&net, 4).unwrap();
        // 64 neurons, 65 synapses each: 16 neurons per device; each device reads the other 48.
        assert!(p.devices.iter().all(|s| s.neurons.len() == 16 && s.synapses == 16 * 65));
        assert!(p.devices.iter().all(|s| s.halo_in == 48 && s.halo_out == 48));
        assert_eq!(p.bytes_per_step(), 4 * 48 * 8);
        assert_eq!(p.max_device_bytes_per_step(), 96 * 8);
        // One device exchanges nothing.
        assert_eq!(Partition::contiguous(&net, 1).unwrap().bytes_per_step(), 0);
    }

    #[test]
    fn a_layered_net_exchanges_only_across_its_cuts() {
        // 10 -> 8 -> 6: neurons 10..17 then 18..23; 2 devices by synapses (80 + 48): the cut
        // falls inside the first hidden layer or at its end.
        let net = NetworkSpec::layered(&[10, 8, 6]).build().unwrap();
        let p = Partition::contiguous(&net, 2).unwrap();
        let (_, halo_in, _) = brute(&net, &p);
        assert_eq!(p.devices.iter().map(|s| s.halo_in).collect::<Vec<_>>(), halo_in);
        assert!(p.boundary_pairs() <= 8, "only hidden neurons cross: {p:?}");
    }

    #[test]
    fn more_devices_than_neurons_is_an_error_naming_the_field() {
        let net = NetworkSpec::tracking().build().unwrap();
        let e = Partition::contiguous(&net, 6).unwrap_err().to_string();
        assert!(e.contains("devices") && e.contains('6'), "{e}");
        assert!(Partition::contiguous(&net, 0).is_err());
    }
}
