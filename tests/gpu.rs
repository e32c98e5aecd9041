//! GPU = CPU: every kernel from identical random states, long contractive runs, the
//! backprop limit, replicas, embedding in a caller's device, streaming, and the GPU errors.
//!
//! Without an adapter these tests print that they skipped; with `LOCALPROP_REQUIRE_GPU=1`
//! (CI sets it, and installs Mesa's lavapipe) a missing adapter fails them instead.

mod common;

use common::{hamilton_params, mixed_fan_in, paper_net, tracking_streams};
use localprop::gpu::{GpuContext, pick_adapter, pick_adapter_named};
use localprop::reference::{Problem, backprop, state_norm2};
use localprop::rng::Rng;
use localprop::signal::{Constant, FnSignal, Sinusoid};
use localprop::{Backend, Engine, Error, Init, Network, NetworkSpec, Params, Policy, Speed, State, Streams};

/// The device for a test, or `None` (printed) when there is no adapter and CI does not
/// demand one.
fn gpu() -> Option<GpuContext> {
    match pick_adapter().and_then(GpuContext::on_adapter) {
        Ok(ctx) => Some(ctx),
        Err(e) if std::env::var("LOCALPROP_REQUIRE_GPU").is_ok_and(|v| v == "1") => {
            panic!("LOCALPROP_REQUIRE_GPU=1 but no GPU: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: no GPU adapter ({e}); set LOCALPROP_REQUIRE_GPU=1 to make this a failure");
            None
        }
    }
}

/// `|a - b| <= ATOL + RTOL max(|a|, |b|)` for one step from O(1) random states. Both paths
/// run the same f32 expressions in the same order; they differ by WGSL's `exp` (at most
/// `3 + 2|x|` ULP, so ~1e-6 relative at the pre-activations used here), by FMA contraction
/// of `a += w x` and `x + tau (s dx)` on the GPU (half an ULP per operation), and by the
/// gathers' sums, which add up to `fan_in` such ULPs. 1e-5 covers a fan-in of 64 with margin.
const RTOL: f32 = 1e-5;
const ATOL: f32 = 1e-6;

fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], atol: f32, rtol: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let bad: Vec<(usize, f32, f32)> = gpu
        .iter()
        .zip(cpu)
        .enumerate()
        .filter(|(_, (a, b))| (*a - *b).abs().is_nan() || (*a - *b).abs() > atol + rtol * a.abs().max(b.abs()))
        .map(|(i, (a, b))| (i, *a, *b))
        .take(5)
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: GPU and CPU differ beyond atol {atol:e} rtol {rtol:e}; first (index, gpu, cpu): {bad:?}"
    );
}

/// Networks of every block layout: layered (dense blocks, two feeding the same rows),
/// recurrent with self-loops (one dense block; small, with 5 row chunks and more than 64
/// columns, and with two column tiles), random sparse and fully connected without self-loops
/// (a sparse block, of one chunk of rows or two), and a sparse block of wide and narrow rows.
fn networks() -> Vec<Network> {
    vec![
        NetworkSpec::layered(&[7, 33, 5]).bias(true).seed(1).build().unwrap(),
        NetworkSpec::fully_connected(3, 9, true).bias(true).outputs(vec![5, 8]).seed(2).build().unwrap(),
        NetworkSpec::fully_connected(2, 70, true).bias(true).outputs(vec![3, 60]).seed(4).build().unwrap(),
        // 543 columns: two column tiles (the second of 31 columns, 32 lanes), whose row sums
        // dense_reduce adds.
        NetworkSpec::fully_connected(2, 540, true).bias(true).outputs(vec![3, 250]).seed(7).build().unwrap(),
        NetworkSpec::random_sparse(16, 150, 12, true).bias(true).outputs(vec![20, 90, 166]).seed(3).build().unwrap(),
        NetworkSpec::fully_connected(1, 10, false).bias(true).seed(5).build().unwrap(),
        // More rows than SPARSE_CHUNK_ROWS: the children's messages fold over two chunks.
        NetworkSpec::random_sparse(2, 20_000, 2, true).bias(true).outputs(vec![3, 19_000]).seed(6).build().unwrap(),
        mixed_fan_in().build().unwrap(),
    ]
}

/// Three replicas with different `q, r, r_w, theta, c`, HSF so that both signs occur.
fn replica_params(net: &Network) -> Vec<Params> {
    (0..3)
        .map(|k| Params {
            c: Speed::PerNeuron((0..net.n() - net.d()).map(|i| 2.0 + ((i + k) % 7) as f32).collect()),
            tau: 0.1,
            q: 1.0 + k as f32,
            r: 0.5 + 0.25 * k as f32,
            r_w: 0.1 * k as f32,
            theta: 0.5 * k as f32,
            policy: Policy::HsfEveryStep,
            ..Params::default()
        })
        .collect()
}

/// The largest number of parents of a neuron.
fn fan_in(net: &Network) -> usize {
    let index = net.index();
    (0..net.n()).map(|i| index.incoming(i).count()).max().unwrap_or(1).max(1)
}

/// O(1) random `x`, `p`, `pw`; random `w` scaled by `sqrt(64 / fan-in)` beyond a fan-in of
/// 64, as an initialisation would, so that pre-activations stay O(1) and the tolerances
/// above, derived for a fan-in of 64, hold for the wide nets too.
fn random_state(net: &Network, replicas: usize, seed: u64) -> State {
    let mut rng = Rng::new(seed);
    let mut v = |len: usize, scale: f64| (0..len).map(|_| (scale * rng.range(-1.0, 1.0)) as f32).collect::<Vec<_>>();
    let (n, e) = (net.n(), net.n_edges());
    let scale = (64.0 / fan_in(net) as f64).sqrt().min(1.0);
    State {
        step: 0,
        replicas,
        x: v(replicas * n, 1.0),
        p: v(replicas * n, 1.0),
        w: v(replicas * e, scale),
        pw: v(replicas * e, 1.0),
    }
}

fn random_streams(net: &Network, replicas: usize, seed: u64) -> Vec<Streams> {
    let mut rng = Rng::new(seed);
    (0..replicas)
        .map(|_| {
            let u: Vec<f32> = (0..net.inputs()).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let z: Vec<f32> = (0..net.outputs().len()).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            Streams::new(Constant(z)).with_input(Constant(u))
        })
        .collect()
}

/// One step on both backends from the same random state: `(gpu, cpu)` engines after it,
/// and the one-row traces.
fn one_step(ctx: &GpuContext, net: &Network, seed: u64) -> [(Engine, localprop::Trace); 2] {
    steps(ctx, net, seed, 1)
}

/// `steps` steps on both backends from the same random state.
fn steps(ctx: &GpuContext, net: &Network, seed: u64, steps: u64) -> [(Engine, localprop::Trace); 2] {
    let params = replica_params(net);
    let state = random_state(net, params.len(), seed);
    steps_from(ctx, net, &params, &state, seed, steps, true)
}

/// `steps` steps on both backends from `state`, with the random streams of `seed`; `fused`:
/// whether small nets run in the fused kernels.
fn steps_from(
    ctx: &GpuContext,
    net: &Network,
    params: &[Params],
    state: &State,
    seed: u64,
    steps: u64,
    fused: bool,
) -> [(Engine, localprop::Trace); 2] {
    let params = params.to_vec();
    let mut out = Vec::new();
    for on_gpu in [true, false] {
        let mut engine = if on_gpu {
            Engine::with_context(net.clone(), params.clone(), ctx.clone()).unwrap()
        } else {
            Engine::with_replicas(net.clone(), params.clone()).unwrap()
        };
        engine.set_fused(fused);
        engine.set_state(state).unwrap();
        let trace = engine.run(steps, &mut random_streams(net, params.len(), seed)).unwrap();
        out.push((engine, trace));
    }
    let cpu = out.pop().unwrap();
    let gpu = out.pop().unwrap();
    [gpu, cpu]
}

/// One step from a set state runs the gathers, then `neuron_step`.
#[test]
fn dense_gather_sparse_gather_and_neuron_step_match_cpu() {
    let Some(ctx) = gpu() else { return };
    for (k, net) in networks().iter().enumerate() {
        let [(mut g, _), (mut c, _)] = one_step(&ctx, net, 10 + k as u64);
        let (gs, cs) = (g.state().unwrap(), c.state().unwrap());
        assert_close("x after neuron_step", &gs.x, &cs.x, ATOL, RTOL);
        let (ge, gh) = g.last_messages().unwrap();
        let (ce, ch) = c.last_messages().unwrap();
        assert_close("e_hat", &ge, &ce, ATOL, RTOL);
        assert_close("h", &gh, &ch, ATOL, RTOL);
    }
}

/// `b` is summed by `dense_step` + `dense_reduce` and `sparse_back`, then used by `costate_step`.
#[test]
fn dense_reduce_sparse_back_and_costate_step_match_cpu() {
    let Some(ctx) = gpu() else { return };
    for (k, net) in networks().iter().enumerate() {
        let [(mut g, _), (mut c, _)] = one_step(&ctx, net, 20 + k as u64);
        assert_close("p after costate_step", &g.state().unwrap().p, &c.state().unwrap().p, ATOL, RTOL);
    }
}

#[test]
fn record_step_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for (k, net) in networks().iter().enumerate() {
        let [(_, gt), (_, ct)] = one_step(&ctx, net, 30 + k as u64);
        assert_eq!(gt.rows(), 1);
        // The energies sum O(E) terms of size O(1): same order on both paths, FMA aside.
        assert_close("loss", &gt.loss, &ct.loss, ATOL, RTOL);
        assert_close("lagrangian", &gt.lagrangian, &ct.lagrangian, ATOL, RTOL);
        assert_close("hamiltonian", &gt.hamiltonian, &ct.hamiltonian, 1e-4, RTOL);
        assert_close("outputs", &gt.outputs, &ct.outputs, 0.0, 0.0);
    }
}

#[test]
fn dense_step_and_sparse_step_match_cpu() {
    let Some(ctx) = gpu() else { return };
    for (k, net) in networks().iter().enumerate() {
        let [(mut g, _), (mut c, _)] = one_step(&ctx, net, 40 + k as u64);
        let (gs, cs) = (g.state().unwrap(), c.state().unwrap());
        assert_close("w after dense_step / sparse_step", &gs.w, &cs.w, ATOL, RTOL);
        assert_close("pw after dense_step / sparse_step", &gs.pw, &cs.pw, ATOL, RTOL);
    }
}

/// The second step's messages read the pre-activations the first step's synapse pass summed.
#[test]
fn pre_activations_carried_by_the_synapse_pass_match_cpu() {
    let Some(ctx) = gpu() else { return };
    for (k, net) in networks().iter().enumerate() {
        let [(mut g, _), (mut c, _)] = steps(&ctx, net, 50 + k as u64, 2);
        let (ge, gh) = g.last_messages().unwrap();
        let (ce, ch) = c.last_messages().unwrap();
        // Step 2's pre-activations sum `fan_in` products that FMA contraction may round
        // differently (half an ULP each): the bound on their difference grows with the fan-in,
        // and sigma'(a) amplifies it, so the tolerances grow linearly beyond a fan-in of 64.
        let grow = (fan_in(net) as f32 / 64.0).max(1.0);
        assert_close("e_hat of step 2", &ge, &ce, grow * ATOL, grow * RTOL);
        // h = p c (sigma(a) - x) after a step has moved x towards sigma(a): the difference
        // cancels, and the few ULP by which WGSL's `exp` differs become up to 1e-4 of it.
        assert_close("h of step 2", &gh, &ch, grow * 1e-5, grow * 1e-4);
        assert_close("x after step 2", &g.state().unwrap().x, &c.state().unwrap().x, grow * ATOL, grow * RTOL);
    }
}

#[test]
fn long_contractive_runs_agree() {
    let Some(ctx) = gpu() else { return };
    // Reverse-costate with friction, learning on, constant input: the weights settle, so
    // one-ULP differences are damped rather than amplified.
    let net = NetworkSpec::layered(&[8, 16, 4]).bias(true).seed(5).build().unwrap();
    let params = Params { c: Speed::Global(5.0), tau: 0.1, q: 1.0, r: 2.0, r_w: 0.01, theta: 5.0, ..Params::default() };
    let mut runs = Vec::new();
    for backend in [Backend::Gpu, Backend::Cpu] {
        let mut engine = if backend == Backend::Gpu {
            Engine::with_context(net.clone(), vec![params.clone()], ctx.clone()).unwrap()
        } else {
            Engine::new(net.clone(), params.clone()).unwrap()
        };
        let trace = engine.run(1500, &mut random_streams(&net, 1, 77)).unwrap();
        runs.push((trace, engine.state().unwrap()));
    }
    let (cpu, gpu) = (runs.pop().unwrap(), runs.pop().unwrap());
    // Drift over 1500 steps stays within 100 ULP-scale steps of agreement.
    assert_close("outputs over 1500 steps", &gpu.0.outputs, &cpu.0.outputs, 1e-5, 1e-4);
    assert_close("lagrangian over 1500 steps", &gpu.0.lagrangian, &cpu.0.lagrangian, 1e-5, 1e-4);
    assert_close("final w", &gpu.1.w, &cpu.1.w, 1e-5, 1e-4);
    assert_close("final x", &gpu.1.x, &cpu.1.x, 1e-5, 1e-4);

    // The paper's tracking task under HSF at every step, 20 000 steps.
    let net = NetworkSpec::tracking().build().unwrap();
    let params = Params::tracking(100.0);
    let mut g = Engine::with_context(net.clone(), vec![params.clone()], ctx.clone()).unwrap();
    let mut c = Engine::new(net, params).unwrap();
    let gt = g.run(20_000, &mut [Streams::new(Sinusoid::new(1.0, 0.1))]).unwrap();
    let ct = c.run(20_000, &mut [Streams::new(Sinusoid::new(1.0, 0.1))]).unwrap();
    assert_close("tracking outputs over 20 000 steps", &gt.outputs, &ct.outputs, 1e-5, 1e-4);
}

#[test]
fn costate_relaxes_to_backprop_on_gpu() {
    let Some(ctx) = gpu() else { return };
    // Fused: [3, 2] runs in the population kernel, the others in small_net ([600, 9, 3] with
    // two column tiles); not fused, kernel by kernel.
    let nets = [&[3usize, 2][..], &[5, 7, 6, 2], &[12, 9, 9, 9, 5], &[600, 9, 3]];
    for (fused, (k, sizes)) in [true, false].into_iter().flat_map(|f| nets.iter().enumerate().map(move |n| (f, n))) {
        let net =
            NetworkSpec::layered(sizes).bias(true).init(Init::Normal { gain: 1.5 }).seed(k as u64).build().unwrap();
        let depth = net.depth().unwrap() as u64;
        let mut rng = Rng::new(k as u64);
        let inputs: Vec<f32> = (0..sizes[0]).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        let targets: Vec<f32> = (0..sizes[sizes.len() - 1]).map(|_| rng.range(-0.9, 0.9) as f32).collect();
        let params = Params { c: Speed::Global(10.0), tau: 0.1, q: 2.0, learning: false, ..Params::default() };
        let mut engine = Engine::with_context(net.clone(), vec![params.clone()], ctx.clone()).unwrap();
        engine.set_fused(fused);
        let mut streams = [Streams::new(Constant(targets.clone())).with_input(Constant(inputs.clone()))];
        engine.run(2 * depth + 1, &mut streams).unwrap();
        let state = engine.state().unwrap();
        let local = state.local_signals(&net, std::slice::from_ref(&params), &inputs).unwrap();
        let mut all = inputs.clone();
        all.push(1.0);
        let prob = Problem {
            w: net.initial_weights(),
            inputs: &all,
            targets: &targets,
            masks: None,
            q: params.q,
            activation: params.activation,
        };
        let want = backprop(&net, &prob).unwrap();
        let scale = want.grad.iter().fold(0f64, |m, g| m.max(g.abs()));
        let worst = local.grad.iter().zip(&want.grad).map(|(&a, b)| (a as f64 - b).abs()).fold(0.0, f64::max);
        let family = engine.kernel_families();
        assert!(worst <= 1e-5 * scale, "{sizes:?}, {family}: GPU gradient off by {worst:e} (scale {scale:e})");
    }
}

#[test]
fn gpu_replicas_equal_separate_cpu_runs() {
    let Some(ctx) = gpu() else { return };
    let net =
        NetworkSpec::fully_connected(2, 6, true).bias(true).init(Init::Normal { gain: 0.5 }).seed(8).build().unwrap();
    let params: Vec<Params> = (0..4)
        .map(|k| Params {
            c: Speed::Global(2.0 + k as f32),
            tau: 0.1,
            q: 0.5 + k as f32,
            r: 1.0 + k as f32,
            r_w: 0.05 * k as f32,
            theta: 2.0 + k as f32,
            ..Params::default()
        })
        .collect();
    let mut together = Engine::with_context(net.clone(), params.clone(), ctx.clone()).unwrap();
    let joint = together.run(600, &mut random_streams(&net, 4, 9)).unwrap();
    let joint_state = together.state().unwrap();
    let all_streams = random_streams(&net, 4, 9);
    for (k, (p, s)) in params.into_iter().zip(all_streams).enumerate() {
        let mut alone = Engine::new(net.clone(), p).unwrap();
        let trace = alone.run(600, &mut [s]).unwrap();
        let state = alone.state().unwrap();
        let column = |v: &[f32]| (0..joint.rows()).map(|row| v[row * 4 + k]).collect::<Vec<_>>();
        assert_close(&format!("replica {k} loss"), &column(&joint.loss), &trace.loss, 1e-5, 1e-4);
        assert_close(&format!("replica {k} w"), joint_state.w_of(k), &state.w, 1e-5, 1e-4);
        assert_close(&format!("replica {k} x"), joint_state.x_of(k), &state.x, 1e-5, 1e-4);
    }
}

#[test]
fn engine_records_into_caller_encoder_and_submits_nothing() {
    let Some(_) = gpu() else { return };
    // The application's own device, with wgpu's default limits.
    let adapter = pick_adapter().unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let layered = || NetworkSpec::layered(&[4, 12, 3]).bias(true).seed(12).build().unwrap();
    // (family, network, fused kernels on)
    let nets = [
        ("dense", layered(), false),
        ("small_net", layered(), true),
        ("population", NetworkSpec::fully_connected(2, 6, true).bias(true).seed(13).build().unwrap(), true),
        ("sparse", NetworkSpec::random_sparse(3, 40, 5, true).bias(true).seed(14).build().unwrap(), true),
        ("sparse", mixed_fan_in().outputs(vec![100]).build().unwrap(), true),
    ];
    for (family, net, fused) in nets {
        let params = Params { c: Speed::Global(4.0), tau: 0.1, theta: 1.0, ..Params::default() };
        let ctx = GpuContext::from_device(device.clone(), queue.clone());
        let mut engine = Engine::with_context(net.clone(), vec![params.clone()], ctx).unwrap();
        engine.set_fused(fused);
        assert!(engine.kernel_families().starts_with(family), "{family}: {}", engine.kernel_families());
        let x0 = engine.gpu_buffers().unwrap().x[0].clone();
        let bytes = (net.n() * 4) as u64;
        let read = |buffer: &wgpu::Buffer| -> Vec<f32> {
            let staging = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("test staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = device.create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
            queue.submit([enc.finish()]);
            staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.unwrap());
            device.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            let v = bytemuck::cast_slice::<u8, f32>(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
            staging.unmap();
            v
        };
        let before = read(&x0);
        let mut app_encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("app frame") });
        engine.record_steps(&mut app_encoder, 10, &mut random_streams(&net, 1, 3)).unwrap();
        // Nothing ran yet: the state buffer still holds the initial state.
        assert_eq!(read(&x0), before, "{family}: the engine submitted work on its own");
        queue.submit([app_encoder.finish()]);
        let mut cpu = Engine::new(net.clone(), params).unwrap();
        cpu.run(10, &mut random_streams(&net, 1, 3)).unwrap();
        let x_now = engine.gpu_buffers().unwrap().x[(engine.step() % 2) as usize].clone();
        assert_eq!(engine.step(), 10);
        let what = format!("{family}: state drawn from the engine's buffer");
        assert_close(&what, &read(&x_now), &cpu.state().unwrap().x, ATOL, RTOL);
    }
}

/// Every kernel family over many steps, against the CPU: the family is the one the shape
/// calls for, on both backends, and the runs agree.
#[test]
fn every_kernel_family_runs_many_steps_like_the_cpu() {
    let Some(ctx) = gpu() else { return };
    // (family on the GPU, on the CPU, network, replicas)
    let cases = [
        ("dense", "dense", NetworkSpec::fully_connected(2, 540, true).bias(true).outputs(vec![3, 250]).seed(31), 2),
        ("small_net", "dense", NetworkSpec::layered(&[6, 20, 3]).bias(true).seed(32), 2),
        ("small_net", "dense", NetworkSpec::layered(&[6, 20, 3]).bias(true).seed(32), 1),
        ("sparse", "sparse", NetworkSpec::random_sparse(4, 120, 9, true).bias(true).outputs(vec![10, 100]).seed(33), 2),
        ("sparse 200 rows (CSR; 67 of fan-in >= 128", "sparse", mixed_fan_in(), 2),
        ("population", "population", NetworkSpec::fully_connected(1, 5, true).bias(true).seed(34), 5),
        ("population", "population", NetworkSpec::fully_connected(1, 5, true).bias(true).seed(35), 1),
    ];
    for (gpu_family, cpu_family, spec, replicas) in cases {
        let net = spec.build().unwrap();
        let params: Vec<Params> = (0..replicas)
            .map(|k| Params {
                c: Speed::Global(3.0 + k as f32),
                tau: 0.05,
                q: 1.0,
                r: 2.0,
                r_w: 0.01,
                theta: 4.0,
                ..Params::default()
            })
            .collect();
        let mut runs = Vec::new();
        for on_gpu in [true, false] {
            let mut e = if on_gpu {
                Engine::with_context(net.clone(), params.clone(), ctx.clone()).unwrap()
            } else {
                Engine::with_replicas(net.clone(), params.clone()).unwrap()
            };
            let family = if on_gpu { gpu_family } else { cpu_family };
            assert!(e.kernel_families().starts_with(family), "{family}: {}", e.kernel_families());
            e.set_block_steps(64).unwrap();
            e.set_record_every(3).unwrap();
            let trace = e.run(400, &mut random_streams(&net, replicas, 36)).unwrap();
            runs.push((trace, e.state().unwrap()));
        }
        let ((ct, cs), (gt, gs)) = (runs.pop().unwrap(), runs.pop().unwrap());
        let what = |v: &str| format!("{gpu_family} x{replicas} ({} neurons): {v} over 400 steps", net.n());
        assert_close(&what("outputs"), &gt.outputs, &ct.outputs, 1e-5, 1e-4);
        assert_close(&what("hamiltonian"), &gt.hamiltonian, &ct.hamiltonian, 1e-5, 1e-4);
        assert_close(&what("w"), &gs.w, &cs.w, 1e-5, 1e-4);
        assert_close(&what("p"), &gs.p, &cs.p, 1e-5, 1e-4);
    }
}

/// The neuron pass's non-finite flag on the GPU: the paper's net under `hamilton` (which
/// blows up in a few hundred steps; tests/validation.rs) in the `population` kernel and
/// kernel by kernel, recording every step or every 1000th: the same first step whatever is
/// recorded, within a few steps of the CPU's (the blow-up amplifies rounding differences),
/// and a replica with no learning signal never flagged.
#[test]
fn divergence_is_found_at_its_step_on_the_gpu() {
    let Some(ctx) = gpu() else { return };
    let net = paper_net();
    let params: Vec<Params> = [0.0, 1000.0].into_iter().map(hamilton_params).collect();
    let streams = || tracking_streams(2);
    let run = |ctx: Option<&GpuContext>, fused: bool, every: u64| {
        let mut e = match ctx {
            Some(ctx) => Engine::with_context(net.clone(), params.clone(), ctx.clone()).unwrap(),
            None => Engine::with_replicas(net.clone(), params.clone()).unwrap(),
        };
        e.set_fused(fused);
        e.set_record_every(every).unwrap();
        e.set_on_divergence(localprop::OnDivergence::Continue);
        e.run(1000, &mut streams()).unwrap();
        assert_eq!(e.diverged()[0], None, "the replica with q = 0 was flagged");
        e.diverged()[1].unwrap_or_else(|| panic!("fused {fused}, every {every}: replica 1 not flagged")).step
    };
    let cpu = run(None, true, 1);
    for fused in [true, false] {
        let dense = run(Some(&ctx), fused, 1);
        assert_eq!(run(Some(&ctx), fused, 1000), dense, "fused {fused}: sparse records moved the step");
        assert!(dense.abs_diff(cpu) <= 3, "fused {fused}: GPU found step {dense}, the CPU {cpu}");
    }
}

/// The fused kernels (`population`, `small_net`) against the GPU's kernel-by-kernel path:
/// the same trace rows (recorded every 3rd step, blocks of 50 steps), and the same state,
/// through a state set mid-run (the next step gathers the pre-activations).
#[test]
fn fused_kernels_record_what_the_per_step_kernels_record() {
    let Some(ctx) = gpu() else { return };
    let nets = [
        ("population", NetworkSpec::fully_connected(1, 5, true).bias(true).outputs(vec![4, 5]).seed(41)),
        ("small_net", NetworkSpec::layered(&[3, 20, 2]).bias(true).seed(45)),
    ];
    for (family, spec) in nets {
        let net = spec.build().unwrap();
        let params = replica_params(&net);
        let state = random_state(&net, params.len(), 42);
        let mut runs = Vec::new();
        for fused in [true, false] {
            let mut e = Engine::with_context(net.clone(), params.clone(), ctx.clone()).unwrap();
            e.set_fused(fused);
            assert_eq!(e.kernel_families().starts_with(family), fused, "{}", e.kernel_families());
            e.set_block_steps(50).unwrap();
            e.set_record_every(3).unwrap();
            e.set_state(&state).unwrap();
            let first = e.run(120, &mut random_streams(&net, params.len(), 43)).unwrap();
            let mid = e.state().unwrap();
            e.set_state(&mid).unwrap();
            let second = e.run(80, &mut random_streams(&net, params.len(), 44)).unwrap();
            runs.push((first, second, e.state().unwrap()));
        }
        let (kernels, fused) = (runs.pop().unwrap(), runs.pop().unwrap());
        for (what, f, k) in [("first run", &fused.0, &kernels.0), ("after set_state", &fused.1, &kernels.1)] {
            assert_eq!(f.step, k.step, "{family}, {what}: recorded steps");
            assert_close(&format!("{family}, {what}: outputs"), &f.outputs, &k.outputs, ATOL, RTOL);
            assert_close(&format!("{family}, {what}: loss"), &f.loss, &k.loss, ATOL, RTOL);
            assert_close(&format!("{family}, {what}: hamiltonian"), &f.hamiltonian, &k.hamiltonian, 1e-5, 1e-4);
        }
        assert_close(&format!("{family}: final w"), &fused.2.w, &kernels.2.w, 1e-5, 1e-4);
        assert_close(&format!("{family}: final x"), &fused.2.x, &kernels.2.x, 1e-5, 1e-4);
    }
}

#[test]
fn blocked_streaming_matches_one_block_and_loses_no_record() {
    let Some(ctx) = gpu() else { return };
    let nets = [
        NetworkSpec::layered(&[2, 8, 1]).bias(true).seed(4).build().unwrap(),
        // The population kernel, in one dispatch per block or per few steps.
        NetworkSpec::layered(&[2, 1]).bias(true).seed(4).build().unwrap(),
    ];
    for net in nets {
        let params = Params { c: Speed::Global(5.0), tau: 0.05, theta: 1.0, ..Params::default() };
        let wave = || {
            [Streams::new(Sinusoid::new(0.8, 0.3)).with_input(FnSignal::new(2, |n, t, out: &mut [f32]| {
                out[0] = (t as f32).sin();
                out[1] = (n % 17) as f32 / 17.0;
            }))]
        };
        let mut one = Engine::with_context(net.clone(), vec![params.clone()], ctx.clone()).unwrap();
        one.set_block_steps(3000).unwrap(); // grows the GPU buffers: the whole run is one block
        let whole = one.run(3000, &mut wave()).unwrap();
        let mut blocked = Engine::with_context(net.clone(), vec![params.clone()], ctx.clone()).unwrap();
        blocked.set_block_steps(37).unwrap();
        let parts = blocked.run(3000, &mut wave()).unwrap();
        let family = blocked.kernel_families();
        assert_eq!(parts.step, (0..3000).collect::<Vec<u64>>(), "{family}: every step recorded once, in order");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&parts.outputs), bits(&whole.outputs), "{family}");
        assert_eq!(bits(&parts.hamiltonian), bits(&whole.hamiltonian), "{family}");
        assert_eq!(blocked.state().unwrap(), one.state().unwrap(), "{family}");
    }
}

#[test]
fn oversized_network_gets_the_limit_error() {
    let Some(_) = gpu() else { return };
    // A caller's device with wgpu's default limits: 128 MiB per storage binding.
    let adapter = pick_adapter().unwrap();
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default())).unwrap();
    let limit = device.limits().max_storage_buffer_binding_size;
    let net = NetworkSpec::layered(&[300, 300]).build().unwrap(); // 90 000 edges
    let replicas = (limit / (90_000 * 4)) as usize + 1;
    let params = vec![Params::default(); replicas];
    match Engine::with_context(net, params, GpuContext::from_device(device, queue)) {
        Err(Error::Limit { what, asked, limit: got, limit_name }) => {
            assert!(what.contains("weight"), "{what}");
            assert_eq!(got, limit);
            assert!(asked > limit && limit_name == "max_storage_buffer_binding_size");
        }
        other => panic!("expected the limit error, got {other:?}"),
    }
}

#[test]
fn missing_adapter_gets_the_no_adapter_error() {
    // Runs with or without a GPU: no adapter is named like this anywhere.
    match pick_adapter_named(Some("no-such-adapter-3f9c")) {
        Err(e @ Error::NoAdapter(_)) => assert!(e.to_string().contains("no-such-adapter-3f9c"), "{e}"),
        Err(e) => panic!("expected NoAdapter, got {e}"),
        Ok(a) => panic!("matched adapter {:?}", a.get_info().name),
    }
}

#[test]
fn dispatches_beyond_65535_workgroups_are_folded() {
    let Some(ctx) = gpu() else { return };
    // 48 replicas x 90 300 synapses = 4.3M weight_step invocations = 67 744 workgroups of 64,
    // more than one dispatch dimension allows: the dispatch is folded into y.
    let net = NetworkSpec::layered(&[300, 300]).bias(true).seed(21).build().unwrap();
    let replicas = 48;
    assert!((replicas * net.n_edges()) as u64 / 64 > 65_535);
    let params: Vec<Params> =
        (0..replicas).map(|k| Params { q: 1.0 + k as f32, theta: 1.0, ..Params::default() }).collect();
    let mut g = Engine::with_context(net.clone(), params.clone(), ctx).unwrap();
    let mut c = Engine::with_replicas(net.clone(), params).unwrap();
    for e in [&mut g, &mut c] {
        e.run(3, &mut random_streams(&net, replicas, 5)).unwrap();
    }
    let (gs, cs) = (g.state().unwrap(), c.state().unwrap());
    assert_close("w of every replica after folded dispatches", &gs.pw, &cs.pw, ATOL, RTOL);
    assert!(gs.pw[gs.pw.len() - 1] != 0.0, "the last replica's last synapse was updated");
}

/// `Engine::state_async` resolves, once the device is polled, to the state `state()` reads,
/// taken at the step it was called at, while the engine goes on.
#[test]
fn state_async_resolves_to_the_state_when_the_device_is_polled() {
    let Some(ctx) = gpu() else { return };
    let net = NetworkSpec::tracking().build().unwrap();
    let params = vec![Params::tracking(10.0); 3];
    let mut e = Engine::with_context(net, params.clone(), ctx.clone()).unwrap();
    e.run(300, &mut tracking_streams(3)).unwrap();
    let pending = e.state_async();
    let at_300 = e.state().unwrap();
    e.run(50, &mut tracking_streams(3)).unwrap();
    ctx.device.poll(localprop::wgpu::PollType::wait_indefinitely()).unwrap();
    let got = pollster::block_on(pending).unwrap();
    assert_eq!(got, at_300, "the state of step 300");
    assert_ne!(got, e.state().unwrap(), "the engine went on");
    // On the CPU it is ready at once.
    let mut cpu = Engine::with_replicas(NetworkSpec::tracking().build().unwrap(), params).unwrap();
    cpu.run(10, &mut tracking_streams(3)).unwrap();
    assert_eq!(pollster::block_on(cpu.state_async()).unwrap(), cpu.state().unwrap());
}

/// hsf-ball from random states scaled per replica by 1, 0.6 and 0.3 (squared norms about N,
/// 0.36 N and 0.09 N), with R^2 the geometric mean of the first two: replica 0 outside the
/// ball, the others inside, each far from its edge. Returns the state and the parameters
/// ([`replica_params`] under the policy).
fn ball_case(net: &Network, seed: u64) -> (State, Vec<Params>) {
    let mut state = random_state(net, 3, seed);
    let (n, e) = (net.n(), net.n_edges());
    for (r, scale) in [1.0f32, 0.6, 0.3].into_iter().enumerate() {
        for (values, per) in [(&mut state.x, n), (&mut state.p, n), (&mut state.w, e), (&mut state.pw, e)] {
            values[r * per..(r + 1) * per].iter_mut().for_each(|v| *v *= scale);
        }
    }
    let radius = (state_norm2(&state, 0) * state_norm2(&state, 1)).powf(0.25) as f32;
    let params = replica_params(net).into_iter().map(|p| Params { policy: Policy::HsfBall { radius }, ..p }).collect();
    (state, params)
}

/// `state_norm` and every kernel reading the signs it chose, one step from the same states on
/// both backends, every network, fused kernels (`population`, `small_net`) and kernel by
/// kernel: the same signs, -1 for the replica outside the ball and +1 for the others, and the
/// same step within the tolerances of one step.
#[test]
fn state_norm_matches_cpu() {
    let Some(ctx) = gpu() else { return };
    for (k, net) in networks().iter().enumerate() {
        for fused in [true, false] {
            let (state, params) = ball_case(net, 60 + k as u64);
            let [(mut g, gt), (mut c, ct)] = steps_from(&ctx, net, &params, &state, 60 + k as u64, 1, fused);
            let family = g.kernel_families();
            assert_eq!(ct.sign, [-1.0, 1.0, 1.0], "{family}: the CPU's signs");
            assert_eq!(gt.sign, ct.sign, "{family}: the GPU's signs");
            let (gs, cs) = (g.state().unwrap(), c.state().unwrap());
            for (what, gv, cv) in
                [("x", &gs.x, &cs.x), ("p", &gs.p, &cs.p), ("w", &gs.w, &cs.w), ("pw", &gs.pw, &cs.pw)]
            {
                assert_close(&format!("{family}: {what} after a step under hsf-ball"), gv, cv, ATOL, RTOL);
            }
            let ((ge, gh), (ce, ch)) = (g.last_messages().unwrap(), c.last_messages().unwrap());
            assert_close(&format!("{family}: e_hat under hsf-ball"), &ge, &ce, ATOL, RTOL);
            assert_close(&format!("{family}: h under hsf-ball"), &gh, &ch, ATOL, RTOL);
        }
    }
}

/// hsf-ball over many steps on the paper's tracking net (q = 1 and 10, R = 3), in the
/// `population` kernel and kernel by kernel: each replica's sign chatters at the ball's edge
/// and the replicas' signs differ at many steps. The GPU's norm differs from the CPU's by
/// rounding (FMA, and the runs' drift), so the two may take different signs where a norm comes
/// within that of R^2; the runs are compared up to the first step at which one of the CPU's
/// norms comes within 1e-4 of R^2 (asserted to leave at least 100 steps), where the GPU must
/// take exactly the CPU's signs and follow its outputs within the long-run tolerances.
#[test]
fn hsf_ball_runs_like_the_cpu_away_from_the_edge_of_the_ball() {
    let Some(ctx) = gpu() else { return };
    const STEPS: u64 = 400;
    let radius = 3.0f32;
    let r2 = radius as f64 * radius as f64;
    let params: Vec<Params> =
        [1.0, 10.0].into_iter().map(|q| Params { policy: Policy::HsfBall { radius }, ..Params::tracking(q) }).collect();
    // The CPU step by step, with the squared norm of each replica's state before each step.
    let mut cpu = Engine::with_replicas(paper_net(), params.clone()).unwrap();
    let (mut streams, mut cpu_trace) = (tracking_streams(2), localprop::Trace::new(2, 1));
    let mut edge = STEPS;
    for step in 0..STEPS {
        let state = cpu.state().unwrap();
        if (0..2).any(|r| ((state_norm2(&state, r) - r2) / r2).abs() < 1e-4) {
            edge = edge.min(step);
        }
        cpu_trace.append(cpu.run(1, &mut streams).unwrap());
    }
    assert!(edge >= 100, "a norm came within 1e-4 of R^2 at step {edge}");
    let rows = edge as usize;
    let flips = (1..rows).filter(|&k| cpu_trace.sign[2 * k] != cpu_trace.sign[2 * (k - 1)]).count();
    let mixed = (0..rows).filter(|&k| cpu_trace.sign[2 * k] != cpu_trace.sign[2 * k + 1]).count();
    println!("compared over {rows} steps: replica 0 flips {flips} times, the replicas' signs differ at {mixed} steps");
    assert!(flips >= 20 && mixed >= 10, "too few flips ({flips}) or mixed steps ({mixed}) to show anything");
    for fused in [true, false] {
        let mut gpu = Engine::with_context(paper_net(), params.clone(), ctx.clone()).unwrap();
        gpu.set_fused(fused);
        let trace = gpu.run(STEPS, &mut tracking_streams(2)).unwrap();
        let family = gpu.kernel_families();
        assert_eq!(trace.sign[..2 * rows], cpu_trace.sign[..2 * rows], "{family}: the signs of the first {rows} steps");
        let what = format!("{family}: outputs over the first {rows} steps");
        assert_close(&what, &trace.outputs[..2 * rows], &cpu_trace.outputs[..2 * rows], 1e-5, 1e-4);
    }
}
