//! `localprop bench`: synapse updates per second of the step on the shipped cases, against
//! the memory bandwidth measured in the same run.
//!
//! The bound: a step must read and write every synapse's `w` and `pw` once, 16 bytes per
//! synapse in f32, plus the per-neuron vectors (about 60 bytes per neuron: `x` twice, `p`,
//! `a`, `b`, `e_hat`, `h`, `c`, read and written). The memory bandwidth is measured in the
//! same run as bytes read plus bytes written per second on a buffer far larger than the
//! caches: on the CPU by an in-place update with every thread (the step's own access
//! pattern), on the GPU by `copy_buffer_to_buffer`; so `bytes per step / seconds per step /
//! bandwidth` is the fraction of the machine's memory bandwidth the step reaches.

use std::time::Instant;

use localprop::engine::{Backend, Engine};
use localprop::error::{Error, Result};
use localprop::network::{Network, NetworkSpec};
use localprop::params::{Params, Policy, Speed};
use localprop::signal::{Constant, Sinusoid, Streams};
use localprop::wgpu;

/// Bytes a step must move per synapse: read and write `w` and `pw` (f32).
pub const BYTES_PER_SYNAPSE: u64 = 16;
/// Bytes a step moves per neuron (read and write of the per-neuron vectors).
pub const BYTES_PER_NEURON: u64 = 60;

/// One benchmark case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Name printed in the table (`paper-net-x4096`, `fc-2048`, ...).
    pub name: String,
    /// The network.
    pub spec: NetworkSpec,
    /// Replicas.
    pub replicas: usize,
    /// Parameters (the same for every replica).
    pub params: Params,
    /// Records every `record_every`-th step.
    pub record_every: u64,
}

/// The paper's 5-neuron net with Fig. 1's parameters (examples/configs/fig1-sinusoid-q10.toml).
pub fn paper_net(replicas: usize) -> Case {
    Case {
        name: format!("paper-net-x{replicas}"),
        spec: NetworkSpec::tracking(),
        replicas,
        params: Params { r_w: 2.0, ..Params::tracking(10.0) },
        record_every: 1,
    }
}

/// Parameters of the large cases: `reverse-costate`, `c tau = 0.1`, friction and a small
/// learning rate so that long benchmark runs stay finite.
fn large_params() -> Params {
    Params {
        c: Speed::Global(1.0),
        tau: 0.1,
        q: 1.0,
        r: 10.0,
        r_w: 1e-3,
        theta: 1.0,
        policy: Policy::ReverseCostate,
        ..Params::default()
    }
}

/// One replica of `spec` with [`large_params`], recording every 100th step.
fn large(name: &str, spec: NetworkSpec) -> Case {
    Case { name: name.to_string(), spec: spec.seed(7), replicas: 1, params: large_params(), record_every: 100 }
}

/// Every case of the benchmark table, in order; `quick` keeps the small ones.
pub fn cases(quick: bool) -> Vec<Case> {
    let mut list = vec![paper_net(1), paper_net(4096)];
    if !quick {
        list.push(paper_net(65536));
    }
    let sizes: &[usize] = if quick { &[256, 1024] } else { &[1024, 2048, 4096, 8192, 16384] };
    for &n in sizes {
        list.push(large(&format!("fc-{n}"), NetworkSpec::fully_connected(0, n, true).bias(true)));
    }
    let sparse = if quick { 10_000 } else { 100_000 };
    list.push(large(
        &format!("sparse-{}k-fanin32", sparse / 1000),
        NetworkSpec::random_sparse(0, sparse, 32, false).bias(true),
    ));
    let layered: &[usize] = if quick { &[64, 128, 128, 10] } else { &[784, 1024, 1024, 10] };
    let name = layered.iter().map(usize::to_string).collect::<Vec<_>>().join("-");
    list.push(large(&format!("layered-{name}"), NetworkSpec::layered(layered).bias(true)));
    list
}

/// The cases of [`cases`] whose name contains one of `only` (all of them when `only` is empty).
pub fn cases_named(quick: bool, only: &[String]) -> Vec<Case> {
    let mut list = cases(quick);
    list.retain(|c| only.is_empty() || only.iter().any(|o| c.name.contains(o.as_str())));
    list
}

/// The sweep of `bench --crossover`: the two kinds of network [`Backend::Auto`] tells apart
/// ([`localprop::engine::AutoWork`]), each at growing sizes: the paper net, which the `population`
/// kernel runs, at growing replica counts (every step recorded, as in Fig. 1's runs); and
/// one fully connected net at growing synapse counts (every 100th step recorded).
pub fn crossover_cases(quick: bool) -> Vec<Case> {
    let replicas: &[usize] = if quick { &[1, 64] } else { &[1, 16, 64, 256, 1024, 4096, 16384, 65536] };
    let sizes: &[usize] = if quick { &[32, 64] } else { &[32, 64, 128, 256, 512, 1024, 2048] };
    let mut list: Vec<Case> = replicas.iter().map(|&r| paper_net(r)).collect();
    for &n in sizes {
        list.push(large(&format!("fc-{n}"), NetworkSpec::fully_connected(0, n, true).bias(true)));
    }
    list
}

/// The smallest work from which the GPU ran faster than the CPU at that size and at every
/// larger one in `points` (work, CPU steps/s, GPU steps/s; sorted by work); `None` when the
/// GPU was not faster at the largest.
pub fn crossover(points: &[(usize, f64, f64)]) -> Option<usize> {
    points.iter().rev().take_while(|&&(_, cpu, gpu)| gpu > cpu).last().map(|&(work, _, _)| work)
}

/// One row of the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    /// Case name.
    pub case: String,
    /// `cpu` or `gpu`.
    pub backend: String,
    /// The backend's description (adapter, or the CPU's thread count).
    pub device: String,
    /// The kernel family of each block of synapses ([`Engine::kernel_families`]).
    pub kernels: String,
    /// Replicas.
    pub replicas: usize,
    /// Synapses per replica.
    pub synapses: usize,
    /// Non-input neurons per replica.
    pub neurons: usize,
    /// Records every this many steps.
    pub record_every: u64,
    /// Steps timed.
    pub steps: u64,
    /// Seconds for them.
    pub seconds: f64,
    /// `replicas x synapses x steps / seconds`.
    pub synapse_updates_per_s: f64,
    /// `replicas x neurons x steps / seconds`.
    pub neuron_steps_per_s: f64,
    /// Steps per second.
    pub steps_per_s: f64,
    /// Bytes a step must move ([`BYTES_PER_SYNAPSE`], [`BYTES_PER_NEURON`]).
    pub bytes_per_step: u64,
    /// Memory bandwidth measured in the same run, bytes per second.
    pub bandwidth_bytes_per_s: f64,
    /// `bytes_per_step x steps_per_s / bandwidth_bytes_per_s`.
    pub bandwidth_fraction: f64,
}

/// Bytes read plus written per second by a multi-threaded in-place update of `bytes` bytes
/// (`v <- 0.5 v + 1`, best of 5): the access pattern of the step, which reads and writes
/// `w` and `pw` in place. (A copy into a second buffer would also read each destination line
/// before writing it, a third stream that the step does not have.)
pub fn cpu_bandwidth(bytes: usize) -> f64 {
    use rayon::prelude::*;
    let len = bytes / 4;
    let mut v: Vec<f32> = (0..len).map(|i| (i % 1024) as f32).collect();
    let chunk = (len / (4 * rayon::current_num_threads())).max(1 << 16);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        v.par_chunks_mut(chunk).for_each(|c| c.iter_mut().for_each(|a| *a = 0.5 * *a + 1.0));
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&v);
    2.0 * (len * 4) as f64 / best
}

/// Bytes read plus written per second by `copy_buffer_to_buffer` of `bytes` bytes on the
/// GPU of `ctx` (10 copies per submission, best of 3).
pub fn gpu_copy_bandwidth(ctx: &localprop::gpu::GpuContext, bytes: u64) -> Result<f64> {
    let bytes = bytes.min(ctx.device.limits().max_buffer_size) / 4 * 4;
    let make = |label| {
        ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let (a, b) = (make("localprop bench copy a"), make("localprop bench copy b"));
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let mut enc = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("copy") });
        for _ in 0..10 {
            enc.copy_buffer_to_buffer(&a, 0, &b, 0, bytes);
        }
        let t = Instant::now();
        let index = ctx.queue.submit([enc.finish()]);
        ctx.device
            .poll(wgpu::PollType::Wait { submission_index: Some(index), timeout: None })
            .map_err(|e| Error::Device(format!("timing a copy: {e}")))?;
        best = best.min(t.elapsed().as_secs_f64() / 10.0);
    }
    Ok(2.0 * bytes as f64 / best)
}

/// Builds the case's engine on `backend` and times it: a warm-up block, then enough steps to
/// fill about `seconds` of wall time (at least one block).
pub fn run_case(case: &Case, backend: Backend, seconds: f64, bandwidth_bytes_per_s: f64) -> Result<Row> {
    let net: Network = case.spec.build()?;
    let (synapses, neurons, n_in, n_out) = (net.n_edges(), net.n() - net.d(), net.inputs(), net.outputs().len());
    let mut engine = Engine::with_backend(net, vec![case.params.clone(); case.replicas], backend)?;
    engine.set_record_every(case.record_every)?;
    let streams = |r: usize| {
        let s = Streams::new(Sinusoid { dim: n_out, ..Sinusoid::new(0.8, 0.1) });
        if n_in > 0 { s.with_input(Constant((0..n_in).map(|k| ((k + r) % 7) as f32 / 7.0).collect())) } else { s }
    };
    let mut all: Vec<Streams> = (0..case.replicas).map(streams).collect();
    let block = 256u64;
    engine.set_block_steps(block as usize)?;
    // The recorded rows go to a sink that counts them, as a run that streams its trace to
    // disk keeps none in memory (`Engine::run_blocks`); they are unpacked and checked finite
    // all the same.
    let mut rows = 0u64;
    let mut run = |engine: &mut Engine, steps: u64| {
        engine.run_blocks(steps, &mut all, |_, part| {
            rows += part.rows() as u64;
            Ok(localprop::engine::Flow::Continue)
        })
    };
    // Warm-up and calibration: one block, then as many blocks as fill the time.
    let t = Instant::now();
    run(&mut engine, block)?;
    let per_step = t.elapsed().as_secs_f64() / block as f64;
    let steps = (((seconds / per_step.max(1e-12)) as u64).div_ceil(block) * block).clamp(block, 1 << 24);
    let t = Instant::now();
    run(&mut engine, steps)?;
    let wall = t.elapsed().as_secs_f64();
    let want = (block + steps).div_ceil(case.record_every);
    if rows != want {
        return Err(Error::Device(format!("{}: {rows} trace rows recorded, {want} expected", case.name)));
    }
    let bytes_per_step =
        case.replicas as u64 * (synapses as u64 * BYTES_PER_SYNAPSE + neurons as u64 * BYTES_PER_NEURON);
    let steps_per_s = steps as f64 / wall;
    Ok(Row {
        case: case.name.clone(),
        backend: match engine.backend() {
            Backend::Gpu => "gpu".into(),
            _ => "cpu".into(),
        },
        device: match engine.backend() {
            Backend::Gpu => engine.backend_description(),
            _ => format!("cpu, {} threads", rayon::current_num_threads()),
        },
        kernels: engine.kernel_families(),
        replicas: case.replicas,
        synapses,
        neurons,
        record_every: case.record_every,
        steps,
        seconds: wall,
        synapse_updates_per_s: (case.replicas * synapses) as f64 * steps_per_s,
        neuron_steps_per_s: (case.replicas * neurons) as f64 * steps_per_s,
        steps_per_s,
        bytes_per_step,
        bandwidth_bytes_per_s,
        bandwidth_fraction: bytes_per_step as f64 * steps_per_s / bandwidth_bytes_per_s,
    })
}

/// Formats a rate with an SI prefix: `3.21 G`.
pub fn si(v: f64) -> String {
    let (scale, unit) = match v {
        v if v >= 1e12 => (1e12, "T"),
        v if v >= 1e9 => (1e9, "G"),
        v if v >= 1e6 => (1e6, "M"),
        v if v >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    };
    format!("{:.3} {unit}", v / scale)
}

/// The markdown table of `rows`, then the kernel families each case ran in.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| case | backend | replicas x synapses | recorded | steps | synapse updates/s | neuron steps/s | steps/s | \
         GB/s moved | of measured bandwidth |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} x {} | 1/{} | {} | {} | {} | {} | {:.2} | {:.1}% |\n",
            r.case,
            r.backend,
            r.replicas,
            r.synapses,
            r.record_every,
            r.steps,
            si(r.synapse_updates_per_s),
            si(r.neuron_steps_per_s),
            si(r.steps_per_s),
            r.bytes_per_step as f64 * r.steps_per_s / 1e9,
            100.0 * r.bandwidth_fraction
        ));
    }
    s.push_str("\nKernels per case:\n\n");
    for r in rows {
        s.push_str(&format!("- {} ({}): {}\n", r.case, r.backend, r.kernels));
    }
    s
}

/// One case of the crossover sweep, timed on both backends.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pair {
    /// Whether the `population` kernel runs the network ([`localprop::engine::AutoWork::population`]).
    pub population: bool,
    /// What `auto` compares with its threshold: replicas, or synapse updates per step
    /// ([`localprop::engine::AutoWork::work`]).
    pub work: usize,
    /// The case on the CPU.
    pub cpu: Row,
    /// The case on the GPU.
    pub gpu: Row,
}

/// The crossover sweep's table, then where the GPU overtook the CPU in each kind of network
/// against the thresholds `auto` uses (`AUTO_GPU_REPLICAS`, `AUTO_GPU_SYNAPSES`).
pub fn crossover_table(pairs: &[Pair]) -> String {
    use localprop::engine::{AUTO_GPU_REPLICAS, AUTO_GPU_SYNAPSES};
    let mut s = String::from(
        "| case | auto's measure | cpu steps/s | gpu steps/s | gpu / cpu | kernels on the gpu |\n|---|---|---|---|---|---|\n",
    );
    for p in pairs {
        let measure = if p.population { format!("replicas {}", p.work) } else { format!("synapse updates {}", p.work) };
        s.push_str(&format!(
            "| {} | {measure} | {} | {} | {:.2} | {} |\n",
            p.cpu.case,
            si(p.cpu.steps_per_s),
            si(p.gpu.steps_per_s),
            p.gpu.steps_per_s / p.cpu.steps_per_s,
            p.gpu.kernels
        ));
    }
    s.push('\n');
    let kinds = [
        (true, "replicas of a population-sized net", "AUTO_GPU_REPLICAS", AUTO_GPU_REPLICAS),
        (false, "synapse updates per step of any other net", "AUTO_GPU_SYNAPSES", AUTO_GPU_SYNAPSES),
    ];
    for (population, what, name, threshold) in kinds {
        let mut points: Vec<(usize, f64, f64)> = pairs
            .iter()
            .filter(|p| p.population == population)
            .map(|p| (p.work, p.cpu.steps_per_s, p.gpu.steps_per_s))
            .collect();
        points.sort_by_key(|p| p.0);
        let Some(&(largest, _, _)) = points.last() else { continue };
        let measured = match crossover(&points) {
            Some(from) => format!("in this sweep the GPU was faster from {from} on"),
            None => format!("in this sweep the GPU was not faster at the largest size, {largest}"),
        };
        s.push_str(&format!("- {what}: `auto` takes the GPU from {threshold} ({name}); {measured}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use localprop::engine::AutoWork;

    #[test]
    fn the_crossover_is_where_the_gpu_stays_ahead() {
        // (work, cpu steps/s, gpu steps/s)
        let ahead_from_64 = [(1, 9.0, 1.0), (16, 5.0, 6.0), (32, 5.0, 4.0), (64, 3.0, 4.0), (128, 1.0, 4.0)];
        assert_eq!(crossover(&ahead_from_64), Some(64), "a win at 16 followed by a loss at 32 does not count");
        assert_eq!(crossover(&[(1, 1.0, 2.0), (2, 1.0, 2.0)]), Some(1));
        assert_eq!(crossover(&[(1, 1.0, 2.0), (2, 2.0, 1.0)]), None, "behind at the largest size");
        assert_eq!(crossover(&[(1, 1.0, 1.0)]), None, "a tie is not ahead");
        assert_eq!(crossover(&[]), None);
    }

    #[test]
    fn the_sweep_measures_what_auto_compares() {
        let cases = crossover_cases(true);
        let work: Vec<(bool, usize)> = cases
            .iter()
            .map(|c| AutoWork::of(&c.spec.build().unwrap(), c.replicas))
            .map(|a| (a.population, a.work))
            .collect();
        // The paper net by replicas (the population kernel); fc-32 and fc-64 by synapses:
        // n^2 recurrent links (self-loops included) and n from the bias.
        assert_eq!(work, vec![(true, 1), (true, 64), (false, 32 * 33), (false, 64 * 65)]);
    }
}
