//! Every error the library returns for bad user input: each test provokes one, checks its
//! variant, and checks that the message (`to_string()`) names the field and the bad value.
//! Each group also has a positive control (the nearest valid input is accepted), so that a
//! validation which rejects everything would fail here too.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{hamilton_engine, tracking_streams};
use localprop::reference::{self, Problem};
use localprop::signal::{Constant, FnSignal, HeldSamples, Order, PatchedCosines, Signal, Sinusoid};
use localprop::{
    Activation, Divergence, Engine, Error, Init, Network, NetworkSpec, Params, Policy, Result, Speed, State, Streams,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The error of `r`, failing the test on `Ok`.
#[track_caller]
fn err<T: Debug>(r: Result<T>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e,
    }
}

/// Asserts that the error message contains every one of `parts`.
#[track_caller]
fn assert_mentions(e: &Error, parts: &[&str]) {
    let msg = e.to_string();
    for part in parts {
        assert!(msg.contains(part), "error message {msg:?} does not mention {part:?}");
    }
}

/// Asserts that `e` is [`Error::Param`] for `field` with the printed `value`, and that the
/// message shows them as "`field` = value".
#[track_caller]
fn assert_param(e: &Error, field: &str, value: &str) {
    match e {
        Error::Param { field: f, value: v, allowed } => {
            assert_eq!(f, field, "wrong field in {e}");
            assert_eq!(v, value, "wrong value in {e}");
            assert!(!allowed.is_empty(), "no allowed range in {e}");
        }
        other => panic!("expected Error::Param for `{field}`, got {other:?}"),
    }
    assert_mentions(e, &[&format!("`{field}` = {value}")]);
}

/// Asserts that `e` is [`Error::Network`] and its message mentions every one of `parts`.
#[track_caller]
fn assert_network(e: &Error, parts: &[&str]) {
    assert!(matches!(e, Error::Network(_)), "expected Error::Network, got {e:?}");
    assert_mentions(e, parts);
}

/// Asserts that `e` is [`Error::Stream`] for `stream` and `replica`, mentioning `parts`.
#[track_caller]
fn assert_stream(e: &Error, stream: &str, replica: usize, parts: &[&str]) {
    match e {
        Error::Stream { stream: s, replica: r, .. } => {
            assert_eq!(*s, stream, "wrong stream in {e}");
            assert_eq!(*r, replica, "wrong replica in {e}");
        }
        other => panic!("expected Error::Stream for `{stream}`, got {other:?}"),
    }
    assert_mentions(e, &[&format!("stream `{stream}` (replica {replica})")]);
    assert_mentions(e, parts);
}

/// Asserts that `e` is [`Error::State`] mentioning `parts`.
#[track_caller]
fn assert_state(e: &Error, parts: &[&str]) {
    assert!(matches!(e, Error::State(_)), "expected Error::State, got {e:?}");
    assert_mentions(e, parts);
}

/// A recurrent net without external inputs: 3 non-input neurons, fully connected, no bias.
fn small_net() -> Network {
    NetworkSpec::fully_connected(0, 3, true).build().unwrap()
}

/// A net with 2 external inputs and a bias (`d = 3`), 3 non-input neurons, output neuron 3.
fn net_with_inputs() -> Network {
    NetworkSpec::fully_connected(2, 3, false).bias(true).seed(4).build().unwrap()
}

/// The error `Params::validate` gives for `p` on [`small_net`].
#[track_caller]
fn param_err(p: Params) -> Error {
    err(p.validate(&small_net()))
}

/// Streams that fit [`net_with_inputs`].
fn good_streams() -> Streams {
    Streams::new(Sinusoid::new(0.5, 0.1)).with_input(Constant(vec![0.2, -0.3]))
}

/// Whether every value of the state is finite.
fn state_is_finite(s: &State) -> bool {
    s.x.iter().chain(&s.p).chain(&s.w).chain(&s.pw).all(|v| v.is_finite())
}

/// An engine that has taken a few steps, so that its state is not all zeros.
fn warmed_engine() -> Engine {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    engine.run(5, &mut [good_streams()]).unwrap();
    engine
}

// ---------------------------------------------------------------------------------------------
// Params::validate
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_params_and_boundaries_are_accepted() {
    let net = small_net();
    Params::default().validate(&net).unwrap();
    // The inclusive ends of every range: q, r_w, theta = 0 and c tau = 2 exactly.
    let edge = Params { c: Speed::Global(4.0), tau: 0.5, q: 0.0, r_w: 0.0, theta: 0.0, ..Params::default() };
    edge.validate(&net).unwrap();
    let per_neuron = Params { c: Speed::PerNeuron(vec![1.0, 20.0, 0.5]), ..Params::default() };
    per_neuron.validate(&net).unwrap();
    Params { policy: Policy::Hsf { frequency: 0.5 }, ..Params::default() }.validate(&net).unwrap();
    Params { policy: Policy::HsfBall { radius: 1e-3 }, ..Params::default() }.validate(&net).unwrap();
}

#[test]
fn tau_must_be_finite_and_positive() {
    for (tau, shown) in [(0.0, "0"), (-0.0, "-0"), (-0.1, "-0.1"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let e = param_err(Params { tau, ..Params::default() });
        assert_param(&e, "tau", shown);
    }
    let e = param_err(Params { tau: f32::NEG_INFINITY, ..Params::default() });
    assert_param(&e, "tau", "-inf");
}

#[test]
fn q_must_be_finite_and_non_negative() {
    for (q, shown) in [(-1.0, "-1"), (-0.001, "-0.001"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        assert_param(&param_err(Params { q, ..Params::default() }), "q", shown);
    }
}

#[test]
fn r_must_be_finite_and_positive() {
    for (r, shown) in [(0.0, "0"), (-0.5, "-0.5"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        assert_param(&param_err(Params { r, ..Params::default() }), "r", shown);
    }
}

#[test]
fn r_w_must_be_finite_and_non_negative() {
    for (r_w, shown) in [(-2.0, "-2"), (f32::NAN, "NaN"), (f32::NEG_INFINITY, "-inf")] {
        assert_param(&param_err(Params { r_w, ..Params::default() }), "r_w", shown);
    }
}

#[test]
fn theta_must_be_finite_and_non_negative() {
    for (theta, shown) in [(-0.25, "-0.25"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        assert_param(&param_err(Params { theta, ..Params::default() }), "theta", shown);
    }
}

#[test]
fn hsf_frequency_must_be_finite_and_positive() {
    for (frequency, shown) in [(0.0, "0"), (-1.5, "-1.5"), (f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
        let e = param_err(Params { policy: Policy::Hsf { frequency }, ..Params::default() });
        assert_param(&e, "policy.frequency", shown);
    }
}

#[test]
fn hsf_ball_radius_must_be_finite_and_positive() {
    for (radius, shown) in [(0.0, "0"), (-0.0, "-0"), (-2.5, "-2.5"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        let e = param_err(Params { policy: Policy::HsfBall { radius }, ..Params::default() });
        assert_param(&e, "policy.radius", shown);
    }
}

#[test]
fn global_c_must_be_finite_and_positive() {
    for (c, shown) in [(0.0, "0"), (-3.0, "-3"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
        assert_param(&param_err(Params { c: Speed::Global(c), ..Params::default() }), "c", shown);
    }
}

#[test]
fn c_tau_above_two_names_the_product_and_both_factors() {
    let e = param_err(Params { c: Speed::Global(30.0), tau: 0.1, ..Params::default() });
    assert!(matches!(&e, Error::Param { field, .. } if field == "c * tau"), "got {e:?}");
    assert_mentions(&e, &["`c * tau`", "30 * 0.1 = 3"]);
    // Just above 2, and so large that the product overflows.
    let e = param_err(Params { c: Speed::Global(2.5), tau: 1.0, ..Params::default() });
    assert_mentions(&e, &["`c * tau`", "2.5 * 1 = 2.5"]);
    let e = param_err(Params { c: Speed::Global(f32::MAX), tau: 10.0, ..Params::default() });
    assert_mentions(&e, &["`c * tau`", "* 10 = inf"]);
}

#[test]
fn c_tau_underflowing_to_zero_is_rejected() {
    let e = param_err(Params { c: Speed::Global(1e-30), tau: 1e-30, ..Params::default() });
    assert!(matches!(&e, Error::Param { field, .. } if field == "c * tau"), "got {e:?}");
    assert_mentions(&e, &["`c * tau`", "= 0"]);
}

#[test]
fn per_neuron_c_must_have_one_speed_per_non_input_neuron() {
    // net_with_inputs has n - d = 3 non-input neurons.
    let net = net_with_inputs();
    for len in [0, 2, 4, 6] {
        let e = err(Params { c: Speed::PerNeuron(vec![1.0; len]), ..Params::default() }.validate(&net));
        assert_param(&e, "c", &format!("a list of {len} speeds"));
        assert_mentions(&e, &["(3)"]);
    }
}

#[test]
fn per_neuron_c_names_the_bad_entry() {
    let net = net_with_inputs();
    for (k, c, shown) in [(0, 0.0, "0"), (1, -1.0, "-1"), (2, f32::NAN, "NaN"), (2, f32::INFINITY, "inf")] {
        let mut cs = vec![1.0; 3];
        cs[k] = c;
        let e = err(Params { c: Speed::PerNeuron(cs), ..Params::default() }.validate(&net));
        assert_param(&e, &format!("c[{k}]"), shown);
    }
    let e = err(Params { c: Speed::PerNeuron(vec![1.0, 1.0, 25.0]), ..Params::default() }.validate(&net));
    assert!(matches!(&e, Error::Param { field, .. } if field == "c[2] * tau"), "got {e:?}");
    assert_mentions(&e, &["`c[2] * tau`", "25 * 0.1"]);
}

#[test]
fn engine_new_rejects_invalid_params() {
    let e = err(Engine::new(small_net(), Params { theta: -1.0, ..Params::default() }));
    assert_param(&e, "theta", "-1");
}

// ---------------------------------------------------------------------------------------------
// Params::validate_replicas
// ---------------------------------------------------------------------------------------------

#[test]
fn replicas_that_differ_only_in_per_replica_settings_are_accepted() {
    let a = Params::default();
    let b = Params { c: Speed::Global(2.0), q: 10.0, r: 0.5, r_w: 1.0, theta: 3.0, ..Params::default() };
    Params::validate_replicas(&[a, b], &small_net()).unwrap();
}

#[test]
fn an_empty_replica_list_is_rejected() {
    let e = err(Params::validate_replicas(&[], &small_net()));
    assert_param(&e, "replicas", "0");
    let e = err(Engine::with_replicas(small_net(), vec![]));
    assert_param(&e, "replicas", "0");
}

#[test]
fn replicas_must_share_tau_activation_policy_and_learning() {
    let base = Params::default();
    let cases = [
        (Params { tau: 0.05, ..base.clone() }, "tau", "0.05"),
        (Params { activation: Activation::Logistic, ..base.clone() }, "activation", "logistic"),
        (Params { policy: Policy::Hamilton, ..base.clone() }, "policy", "Hamilton"),
        (Params { policy: Policy::Hsf { frequency: 0.5 }, ..base.clone() }, "policy", "Hsf { frequency: 0.5 }"),
        (Params { policy: Policy::HsfBall { radius: 2.0 }, ..base.clone() }, "policy", "HsfBall { radius: 2.0 }"),
        (Params { learning: false, ..base.clone() }, "learning", "false"),
    ];
    for (odd, field, value) in cases {
        let list = [base.clone(), base.clone(), odd];
        let e = err(Params::validate_replicas(&list, &small_net()));
        assert_param(&e, &format!("replicas[2].{field}"), value);
    }
    // hsf-ball's radius is part of the shared policy.
    let ball = |radius| Params { policy: Policy::HsfBall { radius }, ..base.clone() };
    let e = err(Params::validate_replicas(&[ball(1.0), ball(1.5)], &small_net()));
    assert_param(&e, "replicas[1].policy", "HsfBall { radius: 1.5 }");
}

#[test]
fn a_bad_value_in_one_replica_names_the_replica() {
    let base = Params::default();
    let e = err(Params::validate_replicas(&[base.clone(), Params { q: -1.0, ..base.clone() }], &small_net()));
    assert_param(&e, "replicas[1].q", "-1");
    let e = err(Params::validate_replicas(&[Params { r: f32::NAN, ..base.clone() }, base.clone()], &small_net()));
    assert_param(&e, "replicas[0].r", "NaN");
    let bad_c = Params { c: Speed::PerNeuron(vec![1.0, -2.0, 1.0]), ..base.clone() };
    let e = err(Params::validate_replicas(&[base.clone(), base.clone(), bad_c], &small_net()));
    assert_param(&e, "replicas[2].c[1]", "-2");
    let fast = Params { c: Speed::Global(50.0), ..base.clone() };
    let e = err(Engine::with_replicas(small_net(), vec![base, fast]));
    assert!(matches!(&e, Error::Param { field, .. } if field == "replicas[1].c * tau"), "got {e:?}");
    assert_mentions(&e, &["50 * 0.1 = 5"]);
}

// ---------------------------------------------------------------------------------------------
// NetworkSpec::build
// ---------------------------------------------------------------------------------------------

#[test]
fn valid_network_specs_are_accepted() {
    NetworkSpec::layered(&[0, 2]).build().unwrap();
    NetworkSpec::layered(&[3, 4, 2]).bias(true).build().unwrap();
    NetworkSpec::edges(1, 2, vec![(0, 1), (1, 2), (2, 2)]).outputs(vec![2, 1]).build().unwrap();
    NetworkSpec::random_sparse(2, 3, 4, false).build().unwrap();
    NetworkSpec::fully_connected(1, 2, true).init(Init::Normal { gain: -2.0 }).build().unwrap();
}

#[test]
fn layered_needs_two_layers_and_no_empty_layer_after_the_inputs() {
    for sizes in [vec![], vec![3], vec![2, 0], vec![2, 0, 3], vec![2, 3, 0]] {
        let e = err(NetworkSpec::layered(&sizes).build());
        assert_network(&e, &["layered sizes", &format!("{sizes:?}")]);
    }
}

#[test]
fn an_edge_outside_the_network_is_rejected() {
    // n = 3: neurons 0..3.
    for (j, i) in [(0, 3), (7, 1), (3, 2)] {
        let e = err(NetworkSpec::edges(1, 2, vec![(0, 1), (j, i)]).build());
        assert_network(&e, &[&format!("edge ({j} -> {i})"), "outside 0..3"]);
    }
}

#[test]
fn an_edge_into_an_input_neuron_is_rejected() {
    let e = err(NetworkSpec::edges(2, 2, vec![(2, 3), (2, 1)]).build());
    assert_network(&e, &["edge (2 -> 1)", "input neuron 1", "0..2"]);
    // The bias neuron (index 1 here) is an input neuron too.
    let e = err(NetworkSpec::edges(1, 1, vec![(2, 1)]).bias(true).build());
    assert_network(&e, &["edge (2 -> 1)", "input neuron 1", "0..2"]);
}

#[test]
fn a_duplicate_edge_is_rejected() {
    let e = err(NetworkSpec::edges(1, 2, vec![(0, 1), (1, 2), (0, 1)]).build());
    assert_network(&e, &["duplicate edge (0 -> 1)"]);
    // An explicit edge from the bias neuron duplicates the one `bias(true)` adds.
    let e = err(NetworkSpec::edges(1, 1, vec![(1, 2)]).bias(true).build());
    assert_network(&e, &["duplicate edge (1 -> 2)"]);
}

#[test]
fn random_sparse_fan_in_cannot_exceed_the_possible_parents() {
    // 2 inputs + 3 neurons, no self-loops: 4 possible parents.
    let e = err(NetworkSpec::random_sparse(2, 3, 5, false).build());
    assert_param(&e, "fan_in", "5");
    assert_mentions(&e, &["at most 4"]);
    let e = err(NetworkSpec::random_sparse(2, 3, 6, true).build());
    assert_param(&e, "fan_in", "6");
    assert_mentions(&e, &["at most 5"]);
}

#[test]
fn outputs_must_be_distinct_non_input_neurons() {
    // 2 inputs + bias: neurons 0..3 are inputs, 3..6 the others.
    let spec = || NetworkSpec::fully_connected(2, 3, false).bias(true);
    for o in [0, 2, 6, 100] {
        let e = err(spec().outputs(vec![3, o]).build());
        assert_network(&e, &[&format!("output {o} "), "3..6"]);
    }
    let e = err(spec().outputs(vec![4, 5, 4]).build());
    assert_network(&e, &["output 4 is listed twice"]);
    let e = err(spec().outputs(vec![]).build());
    assert_network(&e, &["no output neurons"]);
}

#[test]
fn a_network_without_non_input_neurons_is_rejected() {
    for spec in [
        NetworkSpec::fully_connected(2, 0, true),
        NetworkSpec::edges(3, 0, vec![]),
        NetworkSpec::random_sparse(2, 0, 1, true),
        NetworkSpec::fully_connected(0, 0, false).bias(true),
    ] {
        let e = err(spec.build());
        assert_network(&e, &["no non-input neurons"]);
    }
}

#[test]
fn random_sparse_without_any_neurons_is_an_error_not_a_panic() {
    let r = std::panic::catch_unwind(|| NetworkSpec::random_sparse(0, 0, 0, false).build().map(|_| ()));
    let e = err(r.expect("Network::build panicked"));
    assert_network(&e, &["no non-input neurons"]);
}

#[test]
fn neuron_counts_overflowing_usize_are_an_error_not_a_panic() {
    let r = std::panic::catch_unwind(|| NetworkSpec::edges(usize::MAX, 1, vec![]).build().map(|_| ()));
    let e = err(r.expect("Network::build panicked"));
    assert_network(&e, &["neurons"]);
}

#[test]
fn neuron_counts_overflowing_usize_name_the_counts() {
    for spec in [
        NetworkSpec::edges(usize::MAX, 1, vec![]),
        NetworkSpec::fully_connected(usize::MAX - 1, 1, true).bias(true),
        NetworkSpec::random_sparse(1, usize::MAX, 1, false),
    ] {
        let e = err(spec.build());
        assert_network(&e, &["non-input neurons overflow usize", "32-bit"]);
    }
    let e = err(NetworkSpec::edges(usize::MAX, 1, vec![]).build());
    assert_network(&e, &[&format!("{} inputs + 0 bias + 1 non-input neurons", usize::MAX)]);
    // The layer widths themselves overflow when summed.
    let e = err(NetworkSpec::layered(&[1, usize::MAX, 1]).build());
    assert_network(&e, &["layered sizes", &format!("{}", usize::MAX), "32-bit"]);
    let e = err(NetworkSpec::layered(&[usize::MAX, 1]).build());
    assert_network(&e, &[&format!("{} inputs", usize::MAX), "overflow usize"]);
}

#[test]
fn edge_counts_beyond_32_bit_indices_are_rejected_before_the_edges_are_built() {
    // Few enough neurons, but 10^10 or 5 * 10^9 edges (160 GB and 80 GB of edge list): each
    // must be refused from the counts alone, at once.
    let start = Instant::now();
    let e = err(NetworkSpec::layered(&[100_000, 100_000]).build());
    assert_network(&e, &["200000 neurons and 10000000000 edges", "32-bit"]);
    let e = err(NetworkSpec::layered(&[10, 70_000, 70_000, 1]).bias(true).build());
    // 10 x 70000 + 70000^2 + 70000 + 140001 bias edges.
    assert_network(&e, &["140012 neurons and 4900910001 edges", "32-bit"]);
    let e = err(NetworkSpec::fully_connected(0, 100_000, true).build());
    assert_network(&e, &["100000 neurons and 10000000000 edges", "32-bit"]);
    let e = err(NetworkSpec::fully_connected(3, 70_000, false).bias(true).build());
    // 70000 x (3 + 69999) + 70000 bias edges.
    assert_network(&e, &["70004 neurons and 4900210000 edges", "32-bit"]);
    let e = err(NetworkSpec::random_sparse(0, 100_000, 50_000, true).bias(true).build());
    assert_network(&e, &["100001 neurons and 5000100000 edges", "32-bit"]);
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "rejecting the sizes took {elapsed:?}");
    // Just below the limit on the count alone is not rejected by it: the fan-in check comes first.
    let e = err(NetworkSpec::random_sparse(0, 100_000, 100_001, true).build());
    assert_param(&e, "fan_in", "100001");
}

#[test]
fn a_duplicate_of_the_automatic_bias_edge_says_so() {
    // 1 input, bias neuron 1, neuron 2: `bias(true)` already adds 1 -> 2.
    let e = err(NetworkSpec::edges(1, 1, vec![(0, 2), (1, 2)]).bias(true).build());
    assert_network(&e, &["duplicate edge (1 -> 2)", "bias neuron", "`bias`"]);
    // A duplicate that does not involve the bias edge does not blame it...
    let e = err(NetworkSpec::edges(1, 2, vec![(0, 2), (3, 2), (0, 2)]).bias(true).build());
    assert_network(&e, &["duplicate edge (0 -> 2)"]);
    assert!(!e.to_string().contains("bias"), "{e} blames the bias");
    // ...nor does a repeated edge from neuron `inputs` when there is no bias neuron.
    let e = err(NetworkSpec::edges(1, 2, vec![(1, 2), (1, 2)]).build());
    assert_network(&e, &["duplicate edge (1 -> 2)"]);
    assert!(!e.to_string().contains("bias"), "{e} blames a bias that is off");
    // Positive controls: the same edges without the clash.
    NetworkSpec::edges(1, 1, vec![(0, 2)]).bias(true).build().unwrap();
    NetworkSpec::edges(1, 2, vec![(0, 2), (1, 2)]).build().unwrap();
}

#[test]
fn init_gain_must_be_finite() {
    let spec = || NetworkSpec::fully_connected(1, 2, true);
    for (init, shown) in [
        (Init::Uniform { gain: f32::NAN }, "NaN"),
        (Init::Uniform { gain: f32::INFINITY }, "inf"),
        (Init::Normal { gain: f32::NEG_INFINITY }, "-inf"),
        (Init::Normal { gain: f32::NAN }, "NaN"),
    ] {
        assert_param(&err(spec().init(init).build()), "init.gain", shown);
    }
}

#[test]
fn networks_beyond_32_bit_indices_are_rejected() {
    let neurons = u32::MAX as usize;
    let e = err(NetworkSpec::edges(0, neurons, vec![]).build());
    assert_network(&e, &[&format!("{neurons} neurons"), "32-bit"]);
}

#[test]
fn replicas_beyond_32_bit_indices_are_rejected() {
    // 100,001 neurons, no edges: 43,000 replicas need 4.3e9 neuron slots.
    let net = NetworkSpec::edges(1, 100_000, vec![]).build().unwrap();
    let e = err(Engine::with_replicas(net, vec![Params::default(); 43_000]));
    assert_network(&e, &["43000 replicas x 100001 neurons", "32-bit"]);
    // 300 neurons, 90,000 edges: 47,800 replicas need 4.3e9 edge slots but only 14e6 neuron slots.
    let net = NetworkSpec::fully_connected(0, 300, true).build().unwrap();
    let e = err(Engine::with_replicas(net, vec![Params::default(); 47_800]));
    assert_network(&e, &["47800 replicas x 90000 edges", "32-bit"]);
}

// ---------------------------------------------------------------------------------------------
// Engine settings
// ---------------------------------------------------------------------------------------------

#[test]
fn record_every_zero_is_rejected_and_keeps_the_old_value() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    engine.set_record_every(2).unwrap();
    assert_param(&err(engine.set_record_every(0)), "record_every", "0");
    let trace = engine.run(10, &mut [good_streams()]).unwrap();
    assert_eq!(trace.step, [0, 2, 4, 6, 8]);
}

#[test]
fn block_steps_zero_is_rejected_and_keeps_the_old_value() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    engine.set_block_steps(4).unwrap();
    assert_param(&err(engine.set_block_steps(0)), "block_steps", "0");
    let mut calls = Vec::new();
    engine.run_with_progress(10, &mut [good_streams()], |done| calls.push(done)).unwrap();
    assert_eq!(calls, [4, 8, 10]);
}

// ---------------------------------------------------------------------------------------------
// Engine::run: streams
// ---------------------------------------------------------------------------------------------

#[test]
fn fitting_streams_are_accepted() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    let masks = FnSignal::new(1, |step, _, out: &mut [f32]| out[0] = (step % 2) as f32);
    let trace = engine.run(6, &mut [good_streams().with_mask(masks)]).unwrap();
    assert_eq!(trace.masks, [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    let mut no_inputs = Engine::new(small_net(), Params::default()).unwrap();
    no_inputs.run(3, &mut [Streams::new(Constant(vec![0.5]))]).unwrap();
}

#[test]
fn one_stream_set_per_replica_is_required() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    let before = engine.state().unwrap();
    let e = err(engine.run(10, &mut []));
    assert!(matches!(&e, Error::Param { field, .. } if field == "streams"), "got {e:?}");
    assert_mentions(&e, &["`streams`", "0 stream sets", "one set of streams per replica (1)"]);
    let e = err(engine.run(10, &mut [good_streams(), good_streams()]));
    assert!(matches!(&e, Error::Param { field, .. } if field == "streams"), "got {e:?}");
    assert_mentions(&e, &["streams", "2 stream sets", "one set of streams per replica (1)"]);
    assert_eq!(engine.state().unwrap(), before);
}

#[test]
fn a_wrong_stream_count_does_not_blame_a_replica_that_does_not_exist() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    let e = err(engine.run(10, &mut [good_streams(), good_streams()]));
    assert_mentions(&e, &["streams", "2 stream sets", "one set of streams per replica (1)"]);
    let msg = e.to_string();
    assert!(!msg.contains("replica 2"), "{msg:?} names replica 2 of a 1-replica engine");
}

#[test]
fn input_streams_must_have_one_channel_per_external_input() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    let e = err(engine.run(5, &mut [Streams::new(Constant(vec![0.0]))]));
    assert_stream(&e, "input", 0, &["0 channels", "needs 2"]);
    let e = err(engine.run(5, &mut [Streams::new(Constant(vec![0.0])).with_input(Constant(vec![0.0; 3]))]));
    assert_stream(&e, "input", 0, &["3 channels", "needs 2"]);
    let mut no_inputs = Engine::new(small_net(), Params::default()).unwrap();
    let e = err(no_inputs.run(5, &mut [Streams::new(Constant(vec![0.0])).with_input(Constant(vec![1.0]))]));
    assert_stream(&e, "input", 0, &["1 channels", "needs 0"]);
    assert_eq!(engine.step(), 0);
    assert_eq!(no_inputs.step(), 0);
}

#[test]
fn target_and_mask_streams_must_have_one_channel_per_output() {
    let mut engine = Engine::new(net_with_inputs(), Params::default()).unwrap();
    let e = err(engine.run(5, &mut [Streams::new(Constant(vec![0.0; 2])).with_input(Constant(vec![0.0; 2]))]));
    assert_stream(&e, "target", 0, &["2 channels", "needs 1"]);
    let e = err(engine.run(5, &mut [good_streams().with_mask(Constant(vec![]))]));
    assert_stream(&e, "mask", 0, &["0 channels", "needs 1"]);
    assert_eq!(engine.step(), 0);
}

#[test]
fn a_bad_stream_names_its_replica() {
    let mut engine = Engine::with_replicas(net_with_inputs(), vec![Params::default(); 3]).unwrap();
    let bad = Streams::new(Constant(vec![0.0; 4])).with_input(Constant(vec![0.0; 2]));
    let e = err(engine.run(5, &mut [good_streams(), good_streams(), bad]));
    assert_stream(&e, "target", 2, &["4 channels", "needs 1"]);
}

#[test]
fn a_non_finite_target_names_the_step_and_channel_and_changes_nothing() {
    let mut engine = warmed_engine();
    let before = engine.state().unwrap();
    let target = FnSignal::new(1, |step, _, out: &mut [f32]| out[0] = if step == 8 { f32::NAN } else { 0.1 });
    let e = err(engine.run(20, &mut [Streams::new(target).with_input(Constant(vec![0.0; 2]))]));
    assert_stream(&e, "target", 0, &["channel 0 is NaN at step 8"]);
    assert_eq!(engine.state().unwrap(), before, "the engine advanced past a rejected block");
}

#[test]
fn a_non_finite_input_names_the_step_and_channel_and_changes_nothing() {
    let mut engine = warmed_engine();
    let before = engine.state().unwrap();
    let input = FnSignal::new(2, |step, _, out: &mut [f32]| {
        out[0] = 0.0;
        out[1] = if step >= 7 { f32::NEG_INFINITY } else { 0.0 };
    });
    let e = err(engine.run(20, &mut [Streams::new(Constant(vec![0.0])).with_input(input)]));
    assert_stream(&e, "input", 0, &["channel 1 is -inf at step 7"]);
    assert_eq!(engine.state().unwrap(), before);
}

#[test]
fn mask_values_must_be_zero_or_one() {
    for (bad, shown) in [(0.5, "0.5"), (-1.0, "-1"), (2.0, "2"), (f32::NAN, "NaN")] {
        let mut engine = warmed_engine();
        let before = engine.state().unwrap();
        let mask = FnSignal::new(1, move |step, _, out: &mut [f32]| out[0] = if step == 9 { bad } else { 1.0 });
        let e = err(engine.run(20, &mut [good_streams().with_mask(mask)]));
        assert_stream(&e, "mask", 0, &[&format!("value {shown} at step 9")]);
        assert_eq!(engine.state().unwrap(), before);
    }
}

// ---------------------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------------------

fn rows(values: usize) -> Arc<Vec<f32>> {
    Arc::new((0..values).map(|v| v as f32).collect())
}

#[test]
fn held_samples_accept_whole_rows() {
    let mut s = HeldSamples::new(rows(6), 3, 2, Order::Sequential).unwrap();
    assert_eq!((s.len(), s.dim()), (2, 3));
    let mut out = [0.0; 3];
    s.sample(2, 0.0, &mut out);
    assert_eq!(out, [3.0, 4.0, 5.0]);
    HeldSamples::new(rows(1), 1, 1, Order::Shuffled { seed: 1 }).unwrap();
}

#[test]
fn held_samples_need_rows_a_row_width_and_a_hold() {
    let e = err(HeldSamples::new(rows(6), 0, 1, Order::Sequential));
    assert_param(&e, "dim", "0");
    for (values, dim) in [(0, 3), (0, 1), (7, 3), (5, 2), (2, 4)] {
        let e = err(HeldSamples::new(rows(values), dim, 1, Order::Sequential));
        assert_param(&e, "rows", &format!("{values} values"));
        assert_mentions(&e, &[&format!("`dim` = {dim}")]);
    }
    let e = err(HeldSamples::new(rows(6), 3, 0, Order::Shuffled { seed: 2 }));
    assert_param(&e, "hold", "0");
}

#[test]
fn patched_cosines_need_finite_positive_ordered_lengths() {
    // Positive controls: equal lengths and the paper's range.
    let mut fixed = PatchedCosines::new(1, 2.0, 2.0).unwrap();
    assert!(fixed.value(10.0).is_finite());
    PatchedCosines::new(1, 5.0, 20.0).unwrap();
    let cases = [
        (0.0, 0.0, "min_len", "0"),
        (-1.0, 5.0, "min_len", "-1"),
        (f64::NAN, 5.0, "min_len", "NaN"),
        (f64::NEG_INFINITY, 5.0, "min_len", "-inf"),
        (1.0, 0.0, "max_len", "0"),
        (1.0, -2.5, "max_len", "-2.5"),
        (1.0, f64::INFINITY, "max_len", "inf"),
        (1.0, f64::NAN, "max_len", "NaN"),
    ];
    for (min_len, max_len, field, shown) in cases {
        assert_param(&err(PatchedCosines::new(1, min_len, max_len)), field, shown);
    }
    let e = err(PatchedCosines::new(1, 5.0, 2.0));
    assert_param(&e, "max_len", "2");
    assert_mentions(&e, &["`min_len` = 5"]);
}

// ---------------------------------------------------------------------------------------------
// State::local_signals
// ---------------------------------------------------------------------------------------------

#[test]
fn local_signals_need_one_parameter_set_per_replica_and_fitting_inputs() {
    // net_with_inputs: 2 external inputs, bias, 3 non-input neurons.
    let mut engine = warmed_engine();
    let state = engine.state().unwrap();
    let net = engine.network();
    let one = [Params::default()];
    let local = state.local_signals(net, &one, &[0.2, -0.3]).unwrap();
    assert_eq!((local.e_hat.len(), local.grad.len()), (net.n(), net.n_edges()));
    for values in [0, 1, 3, 4] {
        let e = err(state.local_signals(net, &one, &vec![0.0; values]));
        assert_param(&e, "inputs", &format!("{values} values"));
        assert_mentions(&e, &["1 replicas x 2 external inputs = 2 values"]);
    }
    let e = err(state.local_signals(net, &[], &[0.2, -0.3]));
    assert_param(&e, "params", "0 parameter sets");
    assert_mentions(&e, &["(1)"]);
    let e = err(state.local_signals(net, &[Params::default(), Params::default()], &[0.2, -0.3]));
    assert_param(&e, "params", "2 parameter sets");
    // Two replicas, one parameter set.
    let mut two = Engine::with_replicas(net_with_inputs(), vec![Params::default(); 2]).unwrap();
    two.run(3, &mut [good_streams(), good_streams()]).unwrap();
    let e = err(two.state().unwrap().local_signals(two.network(), &one, &[0.0; 4]));
    assert_param(&e, "params", "1 parameter sets");
    assert_mentions(&e, &["(2)"]);
    let e = err(two.state().unwrap().local_signals(two.network(), &[Params::default(), Params::default()], &[0.0; 2]));
    assert_param(&e, "inputs", "2 values");
    assert_mentions(&e, &["2 replicas x 2 external inputs = 4 values"]);
}

#[test]
fn local_signals_reject_speeds_and_states_that_do_not_fit_the_network() {
    let mut engine = warmed_engine();
    let state = engine.state().unwrap();
    let net = engine.network();
    let short_c = Params { c: Speed::PerNeuron(vec![1.0; 2]), ..Params::default() };
    let e = err(state.local_signals(net, &[short_c], &[0.0; 2]));
    assert_param(&e, "params[0].c", "a list of 2 speeds");
    // A state of another network (small_net has 3 neurons, net_with_inputs 6).
    let other = Engine::new(small_net(), Params::default()).unwrap().state().unwrap();
    let e = err(other.local_signals(net, &[Params::default()], &[0.0; 2]));
    assert_state(&e, &["`x` has 3 values", "want 1 x 6 = 6"]);
}

// ---------------------------------------------------------------------------------------------
// Engine::set_state
// ---------------------------------------------------------------------------------------------

#[test]
fn a_fitting_state_is_accepted_and_applied() {
    let mut engine = warmed_engine();
    let mut state = engine.state().unwrap();
    state.step = 42;
    state.w[0] += 0.25;
    state.p[4] = -1.5;
    engine.set_state(&state).unwrap();
    assert_eq!(engine.state().unwrap(), state);
}

/// Checks that `set_state(state)` fails with an [`Error::State`] naming `parts` and leaves
/// the engine as it was.
#[track_caller]
fn assert_state_rejected(engine: &mut Engine, state: &State, parts: &[&str]) {
    let before = engine.state().unwrap();
    let e = err(engine.set_state(state));
    assert_state(&e, parts);
    assert_eq!(engine.state().unwrap(), before, "a rejected set_state changed the engine");
}

#[test]
fn a_state_for_another_replica_count_is_rejected() {
    let mut engine = warmed_engine();
    let mut state = engine.state().unwrap();
    state.replicas = 2;
    assert_state_rejected(&mut engine, &state, &["2 replicas", "the engine has 1"]);
    // Sizes that would fit two replicas do not make it fit.
    let mut two = engine.state().unwrap();
    two.replicas = 2;
    for v in [&mut two.x, &mut two.p, &mut two.w, &mut two.pw] {
        *v = v.repeat(2);
    }
    assert_state_rejected(&mut engine, &two, &["2 replicas", "the engine has 1"]);
}

#[test]
fn a_state_of_the_wrong_size_names_the_field_and_sizes() {
    let mut engine = warmed_engine();
    let (n, e) = (engine.network().n(), engine.network().n_edges());
    for (field, want) in [("x", n), ("p", n), ("w", e), ("pw", e)] {
        for got in [0, want - 1, want + 1] {
            let mut state = engine.state().unwrap();
            let v = match field {
                "x" => &mut state.x,
                "p" => &mut state.p,
                "w" => &mut state.w,
                _ => &mut state.pw,
            };
            v.resize(got, 0.0);
            let expect = [format!("`{field}` has {got} values"), format!("want 1 x {want} = {want}")];
            assert_state_rejected(&mut engine, &state, &[&expect[0], &expect[1]]);
        }
    }
}

#[test]
fn a_non_finite_state_value_names_the_field_and_index() {
    let mut engine = warmed_engine();
    for (field, k, bad, shown) in [
        ("x", 4, f32::NAN, "NaN"),
        ("p", 5, f32::INFINITY, "inf"),
        ("w", 7, f32::NAN, "NaN"),
        ("pw", 0, f32::NEG_INFINITY, "-inf"),
    ] {
        let mut state = engine.state().unwrap();
        let v = match field {
            "x" => &mut state.x,
            "p" => &mut state.p,
            "w" => &mut state.w,
            _ => &mut state.pw,
        };
        v[k] = bad;
        assert_state_rejected(&mut engine, &state, &[&format!("`{field}[{k}]` is {shown}")]);
    }
}

#[test]
fn a_non_finite_value_in_a_later_replica_is_rejected() {
    let mut engine = Engine::with_replicas(net_with_inputs(), vec![Params::default(); 2]).unwrap();
    engine.run(3, &mut [good_streams(), good_streams()]).unwrap();
    let mut state = engine.state().unwrap();
    let k = state.w.len() - 1;
    state.w[k] = f32::NAN;
    assert_state_rejected(&mut engine, &state, &[&format!("`w[{k}]` is NaN")]);
}

// ---------------------------------------------------------------------------------------------
// Error::Diverged
// ---------------------------------------------------------------------------------------------

/// What a divergence found by a run's checks may name: the neuron pass's quantities and the
/// recorded energies (the state's `w` and `pw` are the end-of-run check's).
const STEP_QUANTITIES: &[&str] = Divergence::QUANTITIES.split_at(6).0;

#[test]
fn a_diverging_run_names_the_quantity_and_the_first_bad_step() {
    let mut engine = hamilton_engine(&[1000.0]);
    let e = err(engine.run(5000, &mut tracking_streams(1)));
    let Error::Diverged { quantity, value, step, replica } = e else { panic!("expected Error::Diverged, got {e:?}") };
    assert!(STEP_QUANTITIES.contains(&quantity), "quantity {quantity}");
    assert!(!value.is_finite());
    assert_eq!(replica, 0);
    assert!(step > 0, "diverged at step 0: the dynamics did not run");
    assert_mentions(&e, &[quantity, &format!("at step {step} (replica 0)")]);
    // It is the first bad step: the same run stopped before it is finite throughout...
    let mut again = hamilton_engine(&[1000.0]);
    let trace = again.run(step - 1, &mut tracking_streams(1)).unwrap_or_else(|e| panic!("{} steps: {e}", step - 1));
    assert_eq!(trace.rows() as u64, step - 1);
    assert!(trace.loss.iter().chain(&trace.lagrangian).chain(&trace.hamiltonian).all(|v| v.is_finite()));
    // ...and one that ends at it (the state of that step never read by a step) fails on
    // the final state check.
    let mut at = hamilton_engine(&[1000.0]);
    let e = err(at.run(step, &mut tracking_streams(1)));
    let Error::Diverged { quantity, step: at_step, .. } = e else { panic!("expected Error::Diverged, got {e:?}") };
    assert!(["x", "p", "w", "pw"].contains(&quantity), "quantity {quantity}");
    assert_eq!(at_step, step);
}

#[test]
fn a_diverging_replica_is_named() {
    // q = 0: no learning signal, so replica 0 stays put while replica 1 blows up.
    let mut engine = hamilton_engine(&[0.0, 1000.0]);
    let e = err(engine.run(5000, &mut tracking_streams(2)));
    assert!(matches!(e, Error::Diverged { replica: 1, .. }), "got {e:?}");
    assert_mentions(&e, &["(replica 1)"]);
    // The error marks nothing: a further run meets the divergence again.
    assert!(engine.diverged().iter().all(Option::is_none));
    let again = err(engine.run(10, &mut tracking_streams(2)));
    assert!(matches!(again, Error::Diverged { replica: 1, .. }), "got {again:?}");
}

/// The step at which `engine` (recording every `every`-th step) reports a divergence.
fn diverged_at(every: u64, block_steps: usize) -> (u64, &'static str) {
    let mut engine = hamilton_engine(&[1000.0]);
    engine.set_record_every(every).unwrap();
    engine.set_block_steps(block_steps).unwrap();
    let e = err(engine.run(5000, &mut tracking_streams(1)));
    let Error::Diverged { step, quantity, .. } = e else { panic!("expected Error::Diverged, got {e:?}") };
    (step, quantity)
}

#[test]
fn divergence_is_found_at_its_step_between_records() {
    // Every step checks x, p and the pre-activations, so sparse records and long blocks
    // find the step that every record finds.
    let (step, _) = diverged_at(1, 256);
    for (every, block) in [(7, 256), (1000, 256), (1000, 4096), (3, 1)] {
        let (at, quantity) = diverged_at(every, block);
        assert_eq!(at, step, "record_every {every}, block_steps {block}: found at {at} ({quantity}), not {step}");
    }
}

#[test]
fn a_diverged_replica_is_marked_and_the_others_go_on() {
    use localprop::OnDivergence;
    let (step, _) = diverged_at(1, 256);
    // q = 0: no learning signal, so replicas 0 and 2 stay finite under `hamilton`.
    let mut engine = hamilton_engine(&[0.0, 1000.0, 0.0]);
    engine.set_on_divergence(OnDivergence::Continue);
    engine.set_record_every(3).unwrap();
    let trace = engine.run(1000, &mut tracking_streams(3)).unwrap();
    assert_eq!(trace.rows(), 1000usize.div_ceil(3), "the run went on to the end");
    let d = engine.diverged()[1].unwrap_or_else(|| panic!("replica 1 not marked: {:?}", engine.diverged()));
    assert_eq!(d.step, step);
    assert!(STEP_QUANTITIES.contains(&d.quantity) && !d.value.is_finite(), "{d:?}");
    assert_eq!((engine.diverged()[0], engine.diverged()[2]), (None, None));
    // Replica 1 records NaN from its divergence on, finite values before it.
    for (k, &s) in trace.step.iter().enumerate() {
        let v = trace.loss[k * 3 + 1];
        assert_eq!(v.is_nan(), s >= step, "replica 1, step {s}: loss {v}");
    }
    // The others are the bits of runs without it.
    for (r, q) in [(0, 0.0), (2, 0.0)] {
        let mut alone = hamilton_engine(&[q]);
        alone.set_record_every(3).unwrap();
        let t = alone.run(1000, &mut tracking_streams(1)).unwrap();
        let mine: Vec<u32> = (0..trace.rows()).map(|k| trace.loss[k * 3 + r].to_bits()).collect();
        assert_eq!(mine, t.loss.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "replica {r}");
    }
}

#[test]
fn a_run_whose_replicas_all_diverge_stops() {
    use localprop::OnDivergence;
    let (step, _) = diverged_at(1, 256);
    let mut engine = hamilton_engine(&[1000.0, 1000.0]);
    engine.set_on_divergence(OnDivergence::Continue);
    engine.set_block_steps(64).unwrap();
    let trace = engine.run(100_000, &mut tracking_streams(2)).unwrap();
    assert!(engine.diverged().iter().all(|d| d.is_some_and(|d| d.step == step)), "{:?}", engine.diverged());
    // It stopped within the two blocks in flight after the divergence.
    assert!(engine.step() <= step.next_multiple_of(64) + 64, "ran on to step {}", engine.step());
    assert_eq!(trace.rows() as u64, engine.step());
}

#[test]
fn a_run_never_returns_ok_with_a_non_finite_state() {
    // With record_every = 1000, 500 steps record only step 0; the state is NaN by step ~300.
    let mut engine = hamilton_engine(&[1000.0]);
    engine.set_record_every(1000).unwrap();
    let result = engine.run(500, &mut tracking_streams(1));
    assert!(
        result.is_err() || state_is_finite(&engine.state().unwrap()),
        "run returned Ok but the state is not finite: {:?}",
        engine.state().unwrap().x
    );
    assert!(matches!(result, Err(Error::Diverged { .. })), "got {result:?}");
    // With every step recorded, a run that ends just as the state blows up (p is infinite
    // after step 209 here, the energies of step 209 are still finite).
    let mut engine = hamilton_engine(&[1000.0]);
    let result = engine.run(210, &mut tracking_streams(1));
    assert!(result.is_err() || state_is_finite(&engine.state().unwrap()), "run returned Ok with a non-finite state");
}

// ---------------------------------------------------------------------------------------------
// reference
// ---------------------------------------------------------------------------------------------

fn problem<'a>(w: &'a [f32], inputs: &'a [f32], targets: &'a [f32], masks: Option<&'a [f32]>) -> Problem<'a> {
    Problem { w, inputs, targets, masks, q: 1.0, activation: Activation::Tanh }
}

#[test]
fn backprop_accepts_a_fitting_problem_on_a_dag() {
    let net = NetworkSpec::layered(&[2, 3, 2]).bias(true).seed(2).build().unwrap();
    let g = reference::backprop(&net, &problem(net.initial_weights(), &[0.5, -0.5, 1.0], &[0.1, 0.2], None)).unwrap();
    assert_eq!(g.grad.len(), net.n_edges());
    assert!(g.loss > 0.0);
}

#[test]
fn backprop_rejects_a_cyclic_network() {
    for net in [
        NetworkSpec::fully_connected(1, 2, true).build().unwrap(),
        NetworkSpec::edges(1, 1, vec![(0, 1), (1, 1)]).build().unwrap(),
    ] {
        let inputs = vec![0.5; net.d()];
        let e = err(reference::backprop(&net, &problem(net.initial_weights(), &inputs, &[0.0], None)));
        assert_network(&e, &["acyclic", "cycle"]);
    }
}

#[test]
fn reference_problems_of_the_wrong_size_name_the_field() {
    // d = 3 (2 inputs + bias), 2 outputs.
    let net = NetworkSpec::layered(&[2, 3, 2]).bias(true).build().unwrap();
    let e_count = net.n_edges();
    let w = net.initial_weights();
    let short_w = &w[1..];
    let cases: [(Problem, &str, String); 5] = [
        (problem(short_w, &[0.0; 3], &[0.0; 2], None), "w", format!("{} values", e_count - 1)),
        (problem(w, &[0.0; 2], &[0.0; 2], None), "inputs", "2 values".into()),
        (problem(w, &[0.0; 3], &[0.0; 3], None), "targets", "3 values".into()),
        (problem(w, &[0.0; 3], &[0.0; 2], Some(&[1.0])), "masks", "1 values".into()),
        (problem(w, &[0.0; 3], &[], None), "targets", "0 values".into()),
    ];
    for (prob, field, value) in cases {
        assert_param(&err(reference::backprop(&net, &prob)), field, &value);
        assert_param(&err(reference::fixed_point_gradient(&net, &prob, 100)), field, &value);
    }
}

#[test]
fn fixed_point_gradient_reports_non_convergence() {
    // A recurrent net that never settles within zero sweeps.
    let net = NetworkSpec::fully_connected(1, 2, true).seed(3).build().unwrap();
    let e = err(reference::fixed_point_gradient(&net, &problem(net.initial_weights(), &[0.5], &[0.0], None), 0));
    assert_network(&e, &["state did not reach a fixed point in 0 sweeps"]);
    // One neuron with a self-loop of 0.9 and no inputs: the state is 0 at once, but the
    // adjoint `delta = 0.9 delta - 1` needs hundreds of sweeps.
    let net = NetworkSpec::edges(0, 1, vec![(0, 0)]).build().unwrap();
    let prob = Problem { activation: Activation::Identity, ..problem(&[0.9], &[], &[1.0], None) };
    let e = err(reference::fixed_point_gradient(&net, &prob, 5));
    assert_network(&e, &["adjoint did not reach a fixed point in 5 sweeps"]);
    reference::fixed_point_gradient(&net, &prob, 10_000).unwrap();
}
