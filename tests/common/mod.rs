//! Networks shared by the integration tests.

use localprop::NetworkSpec;

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
