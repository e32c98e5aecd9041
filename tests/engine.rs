//! Engine properties: long streams stay finite, runs are deterministic, and neither the
//! block size nor the record interval changes what is computed.

mod common;

use common::{mixed_fan_in, paper_net, tracking_streams};
use localprop::reference::state_norm2;
use localprop::signal::{PatchedCosines, Sinusoid};
use localprop::{Engine, Flow, NetworkSpec, Params, Policy, Speed, Streams};

fn tracking_params(q: f32, theta: f32) -> Params {
    Params { theta, ..Params::tracking(q) }
}

fn tracking_engine(seed: u64, params: Params) -> Engine {
    let net = NetworkSpec::fully_connected(0, 5, true).bias(true).seed(seed).build().unwrap();
    Engine::new(net, params).unwrap()
}

#[test]
fn million_step_stream_with_dissipation_stays_finite() {
    // theta t reaches 2 * 10^4 here: phi = exp(theta t) itself would overflow f32 after
    // t = 44, so only the scaled costates keep this run finite.
    for (policy, theta) in [(Policy::HsfEveryStep, 2.0), (Policy::ReverseCostate, 10.0)] {
        let mut engine = tracking_engine(3, Params { policy, ..tracking_params(100.0, theta) });
        engine.set_record_every(1000).unwrap();
        engine.set_block_steps(4096).unwrap();
        let trace = engine.run(1_000_000, &mut [Streams::new(PatchedCosines::new(5, 5.0, 20.0).unwrap())]).unwrap();
        assert_eq!(trace.rows(), 1000);
        assert_eq!(engine.step(), 1_000_000);
        let s = engine.state().unwrap();
        let all = s.x.iter().chain(&s.p).chain(&s.w).chain(&s.pw);
        assert!(all.clone().all(|v| v.is_finite()), "{policy:?}: non-finite state after 10^6 steps");
        assert!(trace.lagrangian.iter().chain(&trace.hamiltonian).all(|v| v.is_finite()));
        let biggest = all.fold(0f32, |m, v| m.max(v.abs()));
        println!("{policy:?} theta {theta}: largest |state| after 10^6 steps {biggest:.3e}");
    }
}

#[test]
fn same_seed_gives_bit_identical_runs() {
    let run = |seed: u64| {
        let mut engine = tracking_engine(seed, tracking_params(100.0, 2.0));
        let trace = engine.run(3000, &mut [Streams::new(PatchedCosines::new(seed, 5.0, 20.0).unwrap())]).unwrap();
        (trace, engine.state().unwrap())
    };
    let (t1, s1) = run(9);
    let (t2, s2) = run(9);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&t1.outputs), bits(&t2.outputs));
    assert_eq!(bits(&t1.hamiltonian), bits(&t2.hamiltonian));
    assert_eq!(
        (bits(&s1.x), bits(&s1.p), bits(&s1.w), bits(&s1.pw)),
        (bits(&s2.x), bits(&s2.p), bits(&s2.w), bits(&s2.pw))
    );
    let (t3, _) = run(10);
    assert_ne!(bits(&t1.outputs), bits(&t3.outputs), "another seed must give another run");
}

#[test]
fn block_size_and_record_interval_do_not_change_the_run() {
    let stream = || [Streams::new(Sinusoid::new(1.0, 0.1))];
    let mut reference = tracking_engine(4, tracking_params(10.0, 1.0));
    reference.set_block_steps(256).unwrap();
    let full = reference.run(2000, &mut stream()).unwrap();

    let mut chunked = tracking_engine(4, tracking_params(10.0, 1.0));
    chunked.set_block_steps(7).unwrap();
    chunked.set_record_every(10).unwrap();
    let mut sparse = chunked.run(1234, &mut stream()).unwrap();
    // A second call continues the same stream from step 1234.
    sparse.append(chunked.run(766, &mut stream()).unwrap());

    assert_eq!(chunked.state().unwrap(), reference.state().unwrap());
    assert_eq!(sparse.rows(), 200);
    for (k, &step) in sparse.step.iter().enumerate() {
        assert_eq!(step, 10 * k as u64);
        let row = step as usize;
        assert_eq!(sparse.outputs[k].to_bits(), full.outputs[row].to_bits());
        assert_eq!(sparse.hamiltonian[k].to_bits(), full.hamiltonian[row].to_bits());
        assert_eq!(sparse.t[k], full.t[row]);
    }
}

#[test]
fn state_round_trips_and_resumes_identically() {
    // hsf-ball's signs come from the state alone: a resumed run takes the same ones.
    let ball = Params { policy: Policy::HsfBall { radius: 3.0 }, ..tracking_params(10.0, 1.0) };
    for params in [tracking_params(100.0, 2.0), ball] {
        let mut a = tracking_engine(6, params.clone());
        a.run(500, &mut [Streams::new(Sinusoid::new(1.0, 0.1))]).unwrap();
        let saved = a.state().unwrap();
        let tail_a = a.run(500, &mut [Streams::new(Sinusoid::new(1.0, 0.1))]).unwrap();

        let mut b = tracking_engine(99, params.clone()); // other initial weights
        b.set_state(&saved).unwrap();
        assert_eq!(b.step(), 500);
        let tail_b = b.run(500, &mut [Streams::new(Sinusoid::new(1.0, 0.1))]).unwrap();
        assert_eq!(tail_a, tail_b, "{:?}", params.policy);
        assert_eq!(a.state().unwrap(), b.state().unwrap(), "{:?}", params.policy);
    }
}

#[test]
fn cpu_replicas_equal_separate_runs_bit_for_bit() {
    let params: Vec<Params> = [(10.0, 1.0, 50.0), (100.0, 2.0, 40.0), (1000.0, 5.0, 30.0)]
        .iter()
        .map(|&(q, theta, c)| Params { c: Speed::Global(c), r_w: 0.5, ..tracking_params(q, theta) })
        .collect();
    let net = NetworkSpec::fully_connected(0, 5, true).bias(true).seed(2).build().unwrap();
    let mut together = Engine::with_replicas(net.clone(), params.clone()).unwrap();
    let streams = |k: u64| Streams::new(PatchedCosines::new(k, 5.0, 20.0).unwrap());
    let joint = together.run(2000, &mut [streams(0), streams(1), streams(2)]).unwrap();
    let joint_state = together.state().unwrap();
    for (k, p) in params.into_iter().enumerate() {
        let mut alone = Engine::new(net.clone(), p).unwrap();
        let trace = alone.run(2000, &mut [streams(k as u64)]).unwrap();
        let state = alone.state().unwrap();
        let column: Vec<f32> = (0..joint.rows()).map(|row| joint.outputs[row * 3 + k]).collect();
        assert_eq!(column, trace.outputs, "replica {k} outputs");
        assert_eq!(joint_state.w_of(k), &state.w[..], "replica {k} weights");
        assert_eq!(joint_state.p_of(k), &state.p[..], "replica {k} costates");
    }
}

#[test]
fn cpu_kernels_give_the_same_bits_on_one_thread_and_on_many() {
    // 60 100 synapses x 40 replicas: every kernel's work is above the parallel split.
    let net = NetworkSpec::layered(&[200, 200, 100]).bias(true).seed(3).build().unwrap();
    assert!(net.n_edges() >= localprop::cpu::PARALLEL_FROM);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let params = (0..40).map(|k| Params { q: 1.0 + k as f32, theta: 1.0, ..Params::default() }).collect();
            let mut e = Engine::with_replicas(net.clone(), params).unwrap();
            let streams = (0..40)
                .map(|_| {
                    Streams::new(Sinusoid { dim: 100, ..Sinusoid::new(0.5, 0.2) }).with_input(Sinusoid {
                        dim: 200,
                        phase_step: 0.1,
                        ..Sinusoid::new(1.0, 0.3)
                    })
                })
                .collect::<Vec<_>>();
            let mut streams = streams;
            let trace = e.run(30, &mut streams).unwrap();
            (trace, e.state().unwrap())
        })
    };
    let (t1, s1) = run(1);
    let (t4, s4) = run(4);
    assert_eq!(s1, s4);
    assert_eq!(t1, t4);
}

/// Dense (one block of 5 row chunks and more than 64 columns; one of two column tiles),
/// layered (two blocks feeding the same rows), random sparse, and fully connected without
/// self-loops (sparse).
fn block_layouts() -> Vec<localprop::Network> {
    vec![
        NetworkSpec::fully_connected(3, 70, true).bias(true).outputs(vec![4, 40]).seed(1).build().unwrap(),
        NetworkSpec::fully_connected(2, 540, true).bias(true).outputs(vec![4, 240]).seed(6).build().unwrap(),
        NetworkSpec::layered(&[5, 20, 3]).bias(true).seed(2).build().unwrap(),
        NetworkSpec::random_sparse(4, 60, 9, true).bias(true).outputs(vec![10, 50]).seed(3).build().unwrap(),
        NetworkSpec::fully_connected(2, 12, false).bias(true).seed(4).build().unwrap(),
        // A sparse block of two chunks of rows.
        NetworkSpec::random_sparse(1, 17_000, 3, true).bias(true).outputs(vec![2, 16_900]).seed(5).build().unwrap(),
        mixed_fan_in().build().unwrap(),
    ]
}

#[test]
fn fused_step_equals_the_f64_reference_step() {
    use localprop::State;
    // From a random state, every step of the engine (which carries the pre-activations from
    // one step's synapse pass to the next) is compared with the split-form step in f64 from
    // the engine's own previous state (reference_steps). Under hsf-every-step, and under
    // hsf-ball with replica 1's state halved (a quarter of replica 0's squared norm) and R^2
    // between the two: replica 0 runs backward, replica 1 forward, each far enough from the
    // ball's edge that the f32 and f64 norms agree on the sign.
    for (k, net) in block_layouts().into_iter().enumerate() {
        let (n, ne) = (net.n(), net.n_edges());
        let mut rng = localprop::rng::Rng::new(k as u64);
        let mut v = |len: usize| (0..len).map(|_| rng.range(-1.0, 1.0) as f32).collect::<Vec<_>>();
        let random = State { step: 3, replicas: 2, x: v(2 * n), p: v(2 * n), w: v(2 * ne), pw: v(2 * ne) };
        let (u, z) = (v(2 * net.inputs()), v(2 * net.outputs().len()));
        let mut halved = random.clone();
        for (values, per) in [(&mut halved.x, n), (&mut halved.p, n), (&mut halved.w, ne), (&mut halved.pw, ne)] {
            values[per..].iter_mut().for_each(|v| *v *= 0.5);
        }
        let radius = (state_norm2(&halved, 0) * state_norm2(&halved, 1)).powf(0.25) as f32;
        let ball = Policy::HsfBall { radius };
        for (policy, state) in [(Policy::HsfEveryStep, random), (ball, halved)] {
            let params: Vec<Params> = (0..2)
                .map(|r| Params {
                    c: Speed::Global(2.0 + r as f32),
                    tau: 0.1,
                    q: 1.0 + r as f32,
                    r: 0.5,
                    r_w: 0.1,
                    theta: 0.5,
                    policy,
                    ..Params::default()
                })
                .collect();
            reference_steps(k, &net, &params, state, &u, &z);
        }
    }
}

/// Four steps of the engine from `state` (two replicas, constant inputs `u` and targets `z`),
/// each compared with [`localprop::reference::euler_step`] from the engine's previous state;
/// under hsf-ball, replica 0 must be outside the ball and replica 1 inside at every step, by
/// more than 1e-3 of `R^2`, and take the signs -1 and +1.
fn reference_steps(
    k: usize,
    net: &localprop::Network,
    params: &[Params],
    state: localprop::State,
    u: &[f32],
    z: &[f32],
) {
    use localprop::signal::Constant;
    // One f32 step from O(1) values, with sums of up to 74 terms, differs from f64 by a few
    // ULPs of the terms: 2e-5 relative, 2e-6 absolute.
    const ATOL: f64 = 2e-6;
    const RTOL: f64 = 2e-5;
    let streams = || -> Vec<Streams> {
        (0..2)
            .map(|r| {
                let s = Streams::new(Constant(z[r * net.outputs().len()..(r + 1) * net.outputs().len()].to_vec()));
                s.with_input(Constant(u[r * net.inputs()..(r + 1) * net.inputs()].to_vec()))
            })
            .collect()
    };
    let d = net.d();
    let input_values: Vec<f32> = (0..2)
        .flat_map(|r| (0..d).map(move |j| (r, j)))
        .map(|(r, j)| if j < net.inputs() { u[r * net.inputs() + j] } else { 1.0 })
        .collect();
    let policy = params[0].policy;
    let mut engine = Engine::with_replicas(net.clone(), params.to_vec()).unwrap();
    engine.set_state(&state).unwrap();
    let mut before = state;
    for step in 0..4 {
        if let Policy::HsfBall { radius } = policy {
            let r2 = radius as f64 * radius as f64;
            let margins = [0, 1].map(|r| (state_norm2(&before, r) - r2) / r2);
            assert!(margins[0] > 1e-3 && margins[1] < -1e-3, "net {k}, step {step}: margins {margins:?}");
        }
        let trace = engine.run(1, &mut streams()).unwrap();
        if let Policy::HsfBall { .. } = policy {
            assert_eq!(trace.sign, [-1.0, 1.0], "net {k}, step {step}: each replica's sign");
        }
        let after = engine.state().unwrap();
        let want = localprop::reference::euler_step(net, params, &before, &input_values, z);
        for ((name, got), want) in
            [("x", &after.x), ("p", &after.p), ("w", &after.w), ("pw", &after.pw)].into_iter().zip(&want)
        {
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                // Input neurons hold the applied input in `x`; the reference too.
                let ok = (g as f64 - w).abs() <= ATOL + RTOL * w.abs().max(g.abs() as f64);
                assert!(ok, "net {k}, {policy:?}, step {step}: {name}[{i}] = {g}, reference {w}");
            }
        }
        before = after;
    }
}

#[test]
fn every_block_layout_gives_the_same_bits_on_one_thread_and_on_many() {
    // Large enough that every kernel splits its work over threads (state_norm too: several
    // of its chunks per replica).
    let nets = [
        NetworkSpec::fully_connected(2, 300, true).bias(true).seed(5).build().unwrap(),
        // Three chunks of SPARSE_CHUNK_ROWS rows.
        NetworkSpec::random_sparse(2, 40_000, 4, false).bias(true).seed(6).build().unwrap(),
    ];
    for net in nets {
        assert!(net.n_edges() >= localprop::cpu::PARALLEL_FROM);
        // The default policy, and hsf-ball with R^2 just above the initial state's squared norm
        // (|w|^2), which the state soon leaves.
        let w2: f64 = net.initial_weights().iter().map(|&w| w as f64 * w as f64).sum();
        for policy in [Policy::default(), Policy::HsfBall { radius: (w2 + 2.0).sqrt() as f32 }] {
            let (t1, s1) = threaded_run(&net, policy, 1);
            let (t3, s3) = threaded_run(&net, policy, 3);
            assert_eq!(s1, s3, "{policy:?}");
            assert_eq!(t1, t3, "{policy:?}");
            if policy != Policy::default() {
                assert!(t1.sign.contains(&1.0) && t1.sign.contains(&-1.0), "hsf-ball took one sign: {:?}", t1.sign);
            }
        }
    }
}

#[test]
fn population_gives_the_same_bits_on_one_thread_and_on_many() {
    // 203 paper nets with their own parameters: 25 groups of 8, which the threads share, and
    // 3 replicas alone; 300 steps in blocks of 100, so that each block splits over threads.
    let net = NetworkSpec::tracking().build().unwrap();
    let params: Vec<Params> =
        (0..203).map(|k| Params { r_w: 0.5 + 0.01 * k as f32, ..tracking_params(10.0 + k as f32, 1.0) }).collect();
    assert!(203 * net.n_edges() * 100 >= localprop::cpu::PARALLEL_FROM);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let mut e = Engine::with_replicas(net.clone(), params.clone()).unwrap();
            assert!(e.kernel_families().starts_with("population"), "{}", e.kernel_families());
            e.set_block_steps(100).unwrap();
            let mut streams: Vec<Streams> =
                (0..203).map(|k| Streams::new(Sinusoid::new(1.0, 0.1 + 0.001 * k as f64))).collect();
            let trace = e.run(300, &mut streams).unwrap();
            (trace, e.state().unwrap())
        })
    };
    let (one, many) = (run(1), run(3));
    assert_eq!(one.1, many.1, "state");
    assert_eq!(one.0, many.0, "trace");
}

/// 20 steps of three replicas of `net` under `policy` on `threads` threads.
fn threaded_run(net: &localprop::Network, policy: Policy, threads: usize) -> (localprop::Trace, localprop::State) {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let params = (0..3).map(|k| Params { q: 1.0 + k as f32, theta: 1.0, policy, ..Params::default() }).collect();
        let mut e = Engine::with_replicas(net.clone(), params).unwrap();
        let mut streams: Vec<Streams> = (0..3)
            .map(|_| Streams::new(Sinusoid::new(0.5, 0.2)).with_input(Sinusoid { dim: 2, ..Sinusoid::new(1.0, 0.3) }))
            .collect();
        let trace = e.run(20, &mut streams).unwrap();
        (trace, e.state().unwrap())
    })
}

#[test]
fn kernel_family_follows_the_shape() {
    let family = |spec: NetworkSpec| Engine::new(spec.build().unwrap(), Params::default()).unwrap().kernel_families();
    assert!(family(NetworkSpec::fully_connected(1, 5, true).bias(true)).starts_with("population"));
    // More than 16 rows: dense, with one tile of columns, then two.
    assert_eq!(family(NetworkSpec::fully_connected(1, 20, true).bias(true)), "dense 20 x 22 (2 x 1 tiles of 16 x 22)");
    assert_eq!(
        family(NetworkSpec::fully_connected(0, 600, true).bias(true)),
        "dense 600 x 601 (38 x 2 tiles of 16 x 512)"
    );
    let layered = family(NetworkSpec::layered(&[4, 30, 2]).bias(true));
    assert_eq!(layered.matches("dense").count(), 3, "{layered}");
    assert_eq!(family(NetworkSpec::random_sparse(2, 50, 4, true).bias(true)), "sparse 50 rows (CSR)");
    let mut e = Engine::new(NetworkSpec::fully_connected(1, 5, true).build().unwrap(), Params::default()).unwrap();
    e.set_fused(false);
    assert!(e.kernel_families().starts_with("dense 5 x 6"), "{}", e.kernel_families());
}

#[test]
fn population_kernel_gives_the_kernel_path_bits() {
    // 13 replicas: one structure-of-arrays group of 8 and 5 alone; each with its own
    // parameters, learning on and off, from the initial state and after a set state; with the
    // HSF sign of the step, and with hsf-ball's sign of each replica (R = 3 keeps these runs
    // finite and gives the replicas different signs at most steps). Three nets: rows of 8
    // columns (2 inputs, 5 neurons, a bias); of 6 like the paper's (no input), which a
    // replica alone keeps padded to 8; and 10 rows of 12 (1 input), 120 synapses, more than
    // the 64 lanes of the record's sums, which then take two synapses each.
    let ball = Policy::HsfBall { radius: 3.0 };
    let cases = [true, false].into_iter().flat_map(|l| [(l, Policy::HsfEveryStep), (l, ball)]);
    for ((learning, policy), (inputs, neurons)) in cases.flat_map(|c| [(c, (2, 5)), (c, (0, 5)), (c, (1, 10))]) {
        let params: Vec<Params> = (0..13)
            .map(|k| Params { learning, r_w: 0.5 + 0.1 * k as f32, policy, ..tracking_params(10.0 + k as f32, 1.0) })
            .collect();
        let outputs = vec![inputs + 1, inputs + 4];
        let net =
            NetworkSpec::fully_connected(inputs, neurons, true).bias(true).outputs(outputs).seed(8).build().unwrap();
        let streams = || -> Vec<Streams> {
            (0..13)
                .map(|k| {
                    let s =
                        Streams::new(Sinusoid { dim: 2, phase_step: 0.3, ..Sinusoid::new(1.0, 0.1 + 0.01 * k as f64) });
                    if inputs > 0 { s.with_input(Sinusoid { dim: inputs, ..Sinusoid::new(0.5, 0.2) }) } else { s }
                })
                .collect()
        };
        let run = |fused: bool| {
            let mut e = Engine::with_replicas(net.clone(), params.clone()).unwrap();
            e.set_fused(fused);
            e.set_record_every(3).unwrap();
            e.set_block_steps(100).unwrap();
            let t1 = e.run(250, &mut streams()).unwrap();
            let mid = e.state().unwrap();
            e.set_state(&mid).unwrap();
            let t2 = e.run(50, &mut streams()).unwrap();
            (t1, t2, e.state().unwrap(), e.last_messages().unwrap())
        };
        let (fused, kernels) = (run(true), run(false));
        let case = format!("learning {learning}, {policy:?}, {inputs} inputs, {neurons} neurons");
        assert_eq!(fused.0, kernels.0, "trace, {case}");
        assert_eq!(fused.1, kernels.1, "trace after set_state, {case}");
        assert_eq!(fused.2, kernels.2, "state, {case}");
        assert_eq!(fused.3, kernels.3, "messages, {case}");
        if policy == ball {
            let mixed = fused.0.sign.chunks(13).filter(|row| row.iter().any(|&s| s != row[0])).count();
            assert!(mixed > 0, "{case}: no step at which the replicas' signs differ");
        }
    }
}

#[test]
fn run_blocks_hands_the_sink_what_run_returns_block_by_block() {
    // Replicas with and without a mask stream: the engine reuses its block buffers, and the
    // columns no stream writes (bias, the unmasked replicas' masks) must keep their values.
    // 2 replicas run each block on the caller's thread; 512 (about 4.6 M updates per block)
    // run each on a thread of their own while the next block's streams are evaluated.
    let net = NetworkSpec::fully_connected(0, 5, true).bias(true).seed(6).build().unwrap();
    for replicas in [2, 512] {
        let overlapped = replicas * (net.n_edges() + net.n()) * 256 >= localprop::cpu::OVERLAP_FROM;
        assert_eq!(overlapped, replicas > 2);
        let params: Vec<Params> = (0..replicas).map(|r| tracking_params(10.0 + r as f32, 1.0)).collect();
        let streams = || -> Vec<Streams> {
            (0..replicas)
                .map(|r| {
                    let s = Streams::new(Sinusoid::new(1.0, 0.1 + 0.001 * r as f64));
                    if r % 2 == 1 { s.with_mask(localprop::signal::Constant(vec![0.0])) } else { s }
                })
                .collect()
        };
        let make = || {
            let mut e = Engine::with_replicas(net.clone(), params.clone()).unwrap();
            e.set_block_steps(256).unwrap();
            e.set_record_every(3).unwrap();
            e
        };
        let whole = make().run(700, &mut streams()).unwrap();
        // The same run in blocks small enough to run on the caller's thread.
        let mut small = make();
        small.set_block_steps(7).unwrap();
        assert_eq!(small.run(700, &mut streams()).unwrap(), whole, "{replicas} replicas");

        let mut engine = make();
        let (mut parts, mut done) = (localprop::Trace::new(replicas, 1), Vec::new());
        let ran = engine
            .run_blocks(700, &mut streams(), |steps, part| {
                done.push((steps, part.rows()));
                parts.extend_from(part);
                Ok(Flow::Continue)
            })
            .unwrap();
        assert_eq!(ran, 700);
        // Rows at steps 0, 3, ..., 699: 86 in the first block (0..256), 85 in the second, 63 after.
        assert_eq!(done, [(256, 86), (512, 85), (700, 63)]);
        assert_eq!(parts, whole);
        assert_eq!(engine.state().unwrap(), small.state().unwrap());
        let mask: Vec<f32> = (0..replicas).map(|r| if r % 2 == 1 { 0.0 } else { 1.0 }).collect();
        assert!(whole.masks.chunks(replicas).all(|m| m == mask), "masks as the streams give them");
        assert!(whole.loss.chunks(replicas).all(|l| l[1] == 0.0) && whole.loss.chunks(replicas).any(|l| l[0] > 0.0));

        // A stop after the first block: the second, already started, still reaches the sink,
        // and every step taken is in the rows (they equal the whole run's first 512 steps).
        let mut engine = make();
        let mut rows = localprop::Trace::new(replicas, 1);
        let ran = engine
            .run_blocks(700, &mut streams(), |_, part| {
                rows.extend_from(part);
                Ok(Flow::Stop)
            })
            .unwrap();
        assert_eq!((ran, engine.step(), rows.rows()), (512, 512, 171));
        assert_eq!(rows.hamiltonian, whole.hamiltonian[..171 * replicas]);

        // An error from the sink is the run's error; the block in flight is finished, and
        // the engine is at its end.
        let mut engine = make();
        let stop = engine.run_blocks(700, &mut streams(), |steps, _| {
            if steps >= 256 { Err(localprop::Error::param("sink", steps, "a test stop")) } else { Ok(Flow::Continue) }
        });
        assert!(stop.unwrap_err().to_string().contains("a test stop"));
        assert_eq!(engine.step(), 512);
        let mut twin = make();
        twin.run(512, &mut streams()).unwrap();
        assert_eq!(engine.state().unwrap(), twin.state().unwrap());
    }
}

/// `auto` never takes a software adapter unless asked for by name, and on a real GPU takes
/// it only for work large enough (`AUTO_GPU_REPLICAS`, `AUTO_GPU_SYNAPSES`).
#[test]
fn auto_takes_a_real_gpu_for_large_work_only() {
    use localprop::engine::{AUTO_GPU_REPLICAS, AUTO_GPU_SYNAPSES};
    let adapter = |device_type, name: &str| {
        let mut info = localprop::wgpu::AdapterInfo::new(device_type, localprop::wgpu::Backend::Vulkan);
        info.name = name.into();
        Some(info)
    };
    let software = || adapter(localprop::wgpu::DeviceType::Cpu, "llvmpipe");
    let real = || adapter(localprop::wgpu::DeviceType::DiscreteGpu, "NVIDIA H200");
    let params = Params { c: Speed::Global(50.0), tau: 0.01, ..Params::default() };
    let engine = |spec: NetworkSpec, replicas: usize| {
        Engine::with_replicas(spec.build().unwrap(), vec![params.clone(); replicas]).unwrap()
    };
    let paper = || NetworkSpec::tracking();
    let (one, many) = (engine(paper(), 1), engine(paper(), AUTO_GPU_REPLICAS));
    let (gpu, why) = many.auto_choice(software(), false);
    assert!(!gpu && why.contains("llvmpipe") && why.contains("software"), "{why}");
    assert!(many.auto_choice(None, false).1.contains("no GPU adapter"));
    assert!(many.auto_choice(software(), true).0, "a software adapter asked for by name is taken");
    assert!(!one.auto_choice(real(), false).0);
    let (gpu, why) = many.auto_choice(real(), false);
    assert!(gpu && why.contains("NVIDIA H200") && why.contains("1024 replicas of a small net"), "{why}");
    // 1,024 neurons fully connected: 2^20 synapses, above the threshold; 64: 2^12, below.
    let big = engine(NetworkSpec::fully_connected(0, 1024, true).seed(1), 1);
    assert!(big.network().n_edges() >= AUTO_GPU_SYNAPSES && big.auto_choice(real(), false).0);
    let small = engine(NetworkSpec::fully_connected(0, 64, true).seed(1), 1);
    assert!(!small.auto_choice(real(), false).0);
}

/// The squared norm of replica `r`'s state before each of `steps` steps of `engine` (and after
/// the last), the signs the steps took, and the step at which the run diverged, if it did.
fn norms_and_signs(
    engine: &mut Engine,
    streams: &mut [Streams],
    steps: u64,
) -> (Vec<Vec<f64>>, Vec<Vec<f32>>, Option<u64>) {
    let replicas = engine.replicas();
    let (mut norms, mut signs) = (Vec::new(), Vec::new());
    for step in 0..=steps {
        let state = engine.state().unwrap();
        norms.push((0..replicas).map(|r| state_norm2(&state, r)).collect());
        if step == steps {
            break;
        }
        match engine.run(1, streams) {
            Ok(trace) => signs.push(trace.sign),
            Err(_) => return (norms, signs, Some(step)),
        }
    }
    (norms, signs, None)
}

/// hsf-ball keeps the paper's tracking net bounded where `hamilton` blows up. The squared norm
/// of the state (every value it stores), measured before every step: over 20,000 steps with
/// `Params::tracking(10)` and R = 3 (R^2 = 9) its largest value was 26.09, the state leaving
/// the ball for a step or two at a time; the test asserts it stays below 30. The same
/// parameters under `hamilton` pass 30 and diverge within a few hundred steps. (On this net,
/// q >= 30 with R <= 5 makes hsf-ball diverge too: docs/model.md, section 5.)
#[test]
fn hsf_ball_keeps_the_tracking_net_bounded_where_hamilton_blows_up() {
    const BOUND: f64 = 30.0;
    const STEPS: u64 = 20_000;
    let run = |policy| {
        let mut engine = Engine::new(paper_net(), Params { policy, ..Params::tracking(10.0) }).unwrap();
        let (norms, signs, diverged) = norms_and_signs(&mut engine, &mut tracking_streams(1), STEPS);
        let largest = norms.iter().map(|n| n[0]).fold(0.0, f64::max);
        let backward = signs.iter().filter(|s| s[0] < 0.0).count();
        (largest, backward, diverged)
    };
    let (ball, backward, diverged) = run(Policy::HsfBall { radius: 3.0 });
    println!("hsf-ball R = 3: largest squared norm {ball:.4} over {STEPS} steps, {backward} of them backward");
    assert_eq!(diverged, None, "hsf-ball diverged");
    assert!(ball <= BOUND, "hsf-ball: squared norm {ball} above {BOUND}");
    assert!(ball > 9.0 && backward > 0, "the state never left the ball: the test shows nothing");
    let (hamilton, _, diverged) = run(Policy::Hamilton);
    println!("hamilton: largest finite squared norm {hamilton:.4e}, diverged at step {diverged:?}");
    assert!(hamilton > BOUND, "hamilton stayed within {BOUND}: {hamilton}");
    assert!(diverged.is_some(), "hamilton did not diverge in {STEPS} steps");
}

/// hsf-ball's sign is decided by the state at the step: each replica's step `n` runs forward
/// (+1) exactly when the squared norm of its step-`n` state, computed here in f64 from the
/// state the engine reports, is at most R^2. The engine sums the norm in f32, so it may decide
/// otherwise only within its rounding of R^2 (a relative 1e-5, far above the few ULPs of a sum
/// of 40 squares); such steps are counted, not checked. Two replicas of the tracking net with
/// q = 1 and 10 over 2,000 steps, on the `population` path and kernel by kernel.
#[test]
fn hsf_ball_sign_flips_exactly_where_the_state_crosses_the_ball() {
    let (radius, steps) = (3.0f32, 2000);
    let r2 = radius as f64 * radius as f64;
    for fused in [true, false] {
        let params = [1.0, 10.0].map(|q| Params { policy: Policy::HsfBall { radius }, ..Params::tracking(q) });
        let mut engine = Engine::with_replicas(paper_net(), params.to_vec()).unwrap();
        engine.set_fused(fused);
        let (norms, signs, diverged) = norms_and_signs(&mut engine, &mut tracking_streams(2), steps);
        assert_eq!(diverged, None);
        let (mut near, mut flips, mut mixed) = (0, [0; 2], 0);
        for (step, (norm, sign)) in norms.iter().zip(&signs).enumerate() {
            for r in 0..2 {
                if ((norm[r] - r2) / r2).abs() <= 1e-5 {
                    near += 1;
                    continue;
                }
                let want = if norm[r] <= r2 { 1.0 } else { -1.0 };
                assert_eq!(
                    sign[r], want,
                    "fused {fused}, step {step}, replica {r}: squared norm {} (R^2 {r2})",
                    norm[r]
                );
                if step > 0 && signs[step - 1][r] != sign[r] {
                    flips[r] += 1;
                }
            }
            mixed += usize::from(sign[0] != sign[1]);
        }
        println!("fused {fused}: flips {flips:?}, steps with different signs {mixed}, within 1e-5 of R^2 {near}");
        assert!(flips.iter().all(|&f| f >= 100), "fused {fused}: too few flips to show anything: {flips:?}");
        assert!(mixed >= 100, "fused {fused}: the replicas' signs differed at {mixed} steps only");
    }
}

#[test]
fn a_run_that_fails_midway_leaves_no_block_behind_for_the_next() {
    use localprop::signal::FnSignal;
    // One replica (blocks on the caller's thread) and 512 (blocks on a thread of their own;
    // the failing stream is replica 7's).
    for (replicas, failing_step) in [(1, 300u64), (1, 100), (512, 300), (512, 100)] {
        let params = vec![Params::tracking(10.0); replicas];
        let make = || {
            let mut e = Engine::with_replicas(paper_net(), params.clone()).unwrap();
            e.set_block_steps(256).unwrap();
            e
        };
        let mut engine = make();
        // A target that is NaN from `failing_step` on: a stream error while the block before
        // it is still in flight (or, at step 100, in the first block itself).
        let mut streams = tracking_streams(replicas);
        streams[replicas.min(8) - 1] = Streams::new(FnSignal::new(1, move |step, t, out: &mut [f32]| {
            out[0] = if step >= failing_step { f32::NAN } else { (0.6 * t).sin() as f32 }
        }));
        let failed = engine.run(1000, &mut streams);
        assert!(failed.is_err(), "a NaN target is an error");
        // The engine went on to the end of the last block it submitted; the next run starts
        // there and its trace holds its own steps only.
        let at = engine.step();
        assert!(at.is_multiple_of(256) && at <= 512, "{at}");
        // A twin set to the state the failed run left runs the same next steps.
        let mut twin = make();
        twin.set_state(&engine.state().unwrap()).unwrap();
        let trace = engine.run(100, &mut tracking_streams(replicas)).unwrap();
        let want = twin.run(100, &mut tracking_streams(replicas)).unwrap();
        assert_eq!(trace.rows(), 100);
        let case = format!("{replicas} replicas, a failure at step {failing_step}");
        assert_eq!(trace.step, (at..at + 100).collect::<Vec<_>>(), "{case}");
        assert_eq!(trace.loss, want.loss, "the next run's own values, {case}");
        assert_eq!(trace.outputs, want.outputs);
        assert_eq!(engine.state().unwrap(), twin.state().unwrap());
    }
}
