//! Networks, parameters and scratch folders shared by the integration tests.

#![allow(dead_code, reason = "each test crate uses some of these")]

use localprop::{Engine, Network, NetworkSpec, Params, Policy, Streams, signal::Sinusoid};

/// The paper's 5-neuron tracking net.
pub fn paper_net() -> Network {
    NetworkSpec::tracking().build().unwrap()
}

/// Parameters of the paper's net under the true Hamilton equations, which blow up in a few
/// hundred steps with a strong learning signal (`q = 1000`) and stay finite for about a
/// thousand with none (`q = 0`) (theory, section 6: forward integration of `hamilton` is
/// unstable).
pub fn hamilton_params(q: f32) -> Params {
    Params { theta: 0.0, policy: Policy::Hamilton, ..Params::tracking(q) }
}

/// One replica of the paper's net per `q`, under [`hamilton_params`], on the CPU.
pub fn hamilton_engine(qs: &[f32]) -> Engine {
    Engine::with_replicas(paper_net(), qs.iter().map(|&q| hamilton_params(q)).collect()).unwrap()
}

/// The paper's target, `sin(2 pi t / 10)`, for each replica.
pub fn tracking_streams(replicas: usize) -> Vec<Streams> {
    (0..replicas).map(|_| Streams::new(Sinusoid::new(1.0, 0.1))).collect()
}

/// A sparse block whose every third row is wide (fan-in 200, `sparse_wide_step` on the GPU)
/// and the others narrow (fan-in 5): 2 inputs, a bias, 200 neurons.
pub fn mixed_fan_in() -> NetworkSpec {
    let n = 203;
    let mut edges = Vec::new();
    for k in 0..200 {
        let i = 3 + k;
        // Neuron 2 is the bias, which `bias(true)` connects.
        let parents: Vec<usize> = if k % 3 == 0 {
            (0..n).filter(|&j| j != i && j != 2).take(200).collect()
        } else {
            (1..=6).map(|m| (i + 7 * m) % n).filter(|&j| j != i && j != 2).take(5).collect()
        };
        edges.extend(parents.into_iter().map(|j| (j, i)));
    }
    NetworkSpec::edges(2, 200, edges).bias(true).outputs(vec![3, 150]).seed(9)
}

/// An empty scratch folder `localprop-<what>-<pid>-<name>` in the temporary directory.
pub fn scratch_in(what: &str, name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("localprop-{what}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The workspace root, which holds `examples/` and `data/`, from the tests of any member.
pub fn root() -> &'static std::path::Path {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().find(|d| d.join("examples/configs").is_dir()).unwrap_or(here)
}
