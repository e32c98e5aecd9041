//! The engine: one API over the executors. Create it from a network and parameters, run
//! steps with streams, read and write the state.

use std::collections::VecDeque;

use crate::block::{Block, BlockResult};
use crate::cpu::{Buffers, CpuExecutor, CpuRunner};
use crate::error::{Error, Result};
use crate::gpu::{GpuBuffers, GpuContext, GpuExecutor};
use crate::layout::{
    KernelParams, MAX_BLOCK_STEPS, NO_RECORD, ReplicaParams, StepUniform, TRACE_FIXED, decode_nonfinite,
};
use crate::network::Network;
use crate::params::Params;
use crate::signal::Streams;
use crate::state::{State, Trace};

/// Steps per block unless [`Engine::set_block_steps`] says otherwise.
pub const DEFAULT_BLOCK_STEPS: usize = 256;

/// Replicas of a `population`-sized network from which [`Backend::Auto`] takes a real GPU:
/// below, the CPU path runs them faster (estimated from the CPU figures of BENCHMARKS.md and
/// a GPU's dispatch latency; not yet measured on a GPU).
pub const AUTO_GPU_REPLICAS: usize = 1024;

/// Synapse updates per step (replicas x synapses) from which [`Backend::Auto`] takes a real
/// GPU for other networks: a step of 2^18 updates takes the CPU path about 100 us here,
/// several GPU dispatch latencies (an estimate; not yet measured on a GPU).
pub const AUTO_GPU_SYNAPSES: usize = 1 << 18;

/// What [`Backend::Auto`] weighs on a real GPU: the replicas of a network the `population`
/// kernel runs (one invocation per replica runs a whole block of steps), or the synapse
/// updates per step (replicas x synapses) of any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoWork {
    /// Whether the network is small enough for the `population` kernel ([`Plan::population`]).
    ///
    /// [`Plan::population`]: crate::plan::Plan::population
    pub population: bool,
    /// Replicas when `population`, else replicas x synapses.
    pub work: usize,
}

impl AutoWork {
    /// The work of `replicas` replicas of `net`.
    pub fn of(net: &Network, replicas: usize) -> Self {
        let population = crate::plan::Plan::new(net, 1, 0).0.population;
        AutoWork { population, work: if population { replicas } else { replicas.saturating_mul(net.n_edges()) } }
    }

    /// The work from which `auto` takes a real GPU: [`AUTO_GPU_REPLICAS`] or [`AUTO_GPU_SYNAPSES`].
    pub fn threshold(self) -> usize {
        if self.population { AUTO_GPU_REPLICAS } else { AUTO_GPU_SYNAPSES }
    }

    /// Whether `auto` takes a real GPU for this work.
    pub fn takes_gpu(self) -> bool {
        self.work >= self.threshold()
    }
}

impl std::fmt::Display for AutoWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, threshold) = if self.population {
            ("replicas of a small net", "AUTO_GPU_REPLICAS")
        } else {
            ("synapse updates per step", "AUTO_GPU_SYNAPSES")
        };
        write!(f, "{} {what} (GPU from {}, {threshold})", self.work, self.threshold())
    }
}

/// Whether `WGPU_ADAPTER_NAME` names the adapter to use (set and not empty): then
/// [`Backend::Auto`] takes it even if it is a software one.
pub fn adapter_named() -> bool {
    std::env::var("WGPU_ADAPTER_NAME").is_ok_and(|v| !v.is_empty())
}

/// Why [`Backend::Auto`] takes the CPU over `info` whatever the work: a software adapter
/// (wgpu's `DeviceType::Cpu`: llvmpipe, lavapipe, WARP) not asked for by name (`named`),
/// which runs the same kernels hundreds of times slower than the CPU path. `None` when `auto`
/// weighs the work ([`AutoWork`]).
pub fn auto_refuses(info: &wgpu::AdapterInfo, named: bool) -> Option<String> {
    (info.device_type == wgpu::DeviceType::Cpu && !named).then(|| {
        format!("the GPU adapter, {}, is a software one; the CPU path is faster (--backend gpu runs on it)", info.name)
    })
}

/// Where the steps run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "kebab-case"))]
pub enum Backend {
    /// The CPU kernels of [`crate::cpu`].
    #[default]
    Cpu,
    /// The WGSL kernels on the adapter [`crate::gpu::pick_adapter`] chooses; an error if there is none.
    Gpu,
    /// The GPU if an adapter exists, else the CPU (with a logged notice).
    Auto,
}

impl Backend {
    /// The name used on the command line and in experiment files.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
            Backend::Auto => "auto",
        }
    }
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 3] = [Backend::Cpu, Backend::Gpu, Backend::Auto];
}

impl std::str::FromStr for Backend {
    type Err = Error;

    /// The backend called `name` ([`Backend::name`]): `cpu`, `gpu` or `auto`.
    fn from_str(name: &str) -> Result<Backend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| Error::param("backend", format!("{name:?}"), "one of cpu, gpu, auto"))
    }
}

#[expect(clippy::large_enum_variant, reason = "one per engine; the CPU variant is the common one")]
enum Exec {
    Cpu(CpuRunner),
    Gpu(Box<GpuExecutor>),
}

impl Exec {
    fn step(&self) -> u64 {
        match self {
            Exec::Cpu(e) => e.step(),
            Exec::Gpu(e) => e.step,
        }
    }

    /// Runs `block` (the CPU may swap it for a spent one, to fill again: [`CpuRunner::submit`]).
    fn submit(&mut self, block: &mut Block) -> Result<()> {
        match self {
            Exec::Cpu(e) => {
                e.submit(block);
                Ok(())
            }
            Exec::Gpu(e) => e.submit(block),
        }
    }

    fn collect(&mut self) -> Result<BlockResult> {
        match self {
            Exec::Cpu(e) => Ok(e.collect()),
            Exec::Gpu(e) => e.collect(),
        }
    }

    /// Hands a collected block's trace rows back, for the CPU to fill again (a fresh buffer
    /// of many megabytes per block costs page faults).
    fn recycle(&mut self, rows: Vec<f32>) {
        if let Exec::Cpu(e) = self {
            e.recycle(rows);
        }
    }
}

/// A replica whose dynamics left the finite range of f32 ([`Engine::diverged`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divergence {
    /// The first step at which one of the replica's values was seen non-finite.
    pub step: u64,
    /// What: `x`, `p` or `a` (the pre-activation, non-finite when a weight is), which every
    /// step checks ([`crate::layout::nonfinite_code`]); a recorded `loss`, `lagrangian` or
    /// `hamiltonian`; or `w` or `pw` of the state at the end of a run.
    pub quantity: &'static str,
    /// The value: NaN or infinity.
    pub value: f32,
}

impl Divergence {
    /// Every quantity a divergence may name: the neuron pass's
    /// ([`crate::layout::NONFINITE_QUANTITIES`]), the recorded energies, the state's weights.
    pub const QUANTITIES: [&'static str; 8] = ["x", "p", "a", "loss", "lagrangian", "hamiltonian", "w", "pw"];

    /// The value as text: `NaN`, `inf` or `-inf` (what summaries and checkpoints store).
    pub fn value_text(&self) -> &'static str {
        if self.value.is_nan() {
            "NaN"
        } else if self.value < 0.0 {
            "-inf"
        } else {
            "inf"
        }
    }

    /// A divergence from its stored form: `quantity` one of [`Divergence::QUANTITIES`] and
    /// `value` one of [`Divergence::value_text`]'s; `None` for anything else.
    pub fn from_text(step: u64, quantity: &str, value: &str) -> Option<Self> {
        let quantity = Self::QUANTITIES.into_iter().find(|&q| q == quantity)?;
        let value = match value {
            "NaN" => f32::NAN,
            "inf" => f32::INFINITY,
            "-inf" => f32::NEG_INFINITY,
            _ => return None,
        };
        Some(Divergence { step, quantity, value })
    }
}

/// What a run does when a replica diverges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnDivergence {
    /// Return [`Error::Diverged`] for the first replica to diverge, at its first non-finite
    /// step (the default).
    #[default]
    Error,
    /// Mark the replica ([`Engine::diverged`]), record NaN for it from that step on, and
    /// go on with the others: replicas are independent, so their values are the same bits
    /// as without it. A run stops early when every replica has diverged.
    Continue,
}

/// What a [`Engine::run_blocks`] sink asks for after a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Start no further block (those already started still finish).
    Stop,
}

/// Runs the lockstep dynamics of one network, for one or more replicas.
///
/// ```
/// use localprop::{Engine, NetworkSpec, Params, Streams, signal::Sinusoid};
///
/// // The paper's tracking net and parameters (c = 50, tau = 0.01, HSF at every step), q = 100.
/// let net = NetworkSpec::tracking().build()?;
/// let params = Params { theta: 2.0, ..Params::tracking(100.0) };
/// let mut engine = Engine::new(net, params)?;
/// let trace = engine.run(1000, &mut [Streams::new(Sinusoid::new(1.0, 0.1))])?;
/// assert_eq!(trace.rows(), 1000);
/// # Ok::<(), localprop::Error>(())
/// ```
pub struct Engine {
    net: Network,
    params: Vec<Params>,
    kernel_params: KernelParams,
    exec: Exec,
    record_every: u64,
    block_steps: usize,
    /// The last block's buffers and spent trace parts, filled again by the next blocks
    /// (fresh buffers of many megabytes per block cost page faults and zeroing).
    spare: Spare,
    on_divergence: OnDivergence,
    diverged: Vec<Option<Divergence>>,
    /// Why it runs where it does ([`Engine::backend_reason`]).
    reason: String,
}

/// Buffers kept between blocks.
#[derive(Default)]
struct Spare {
    block: Block,
    parts: Vec<Trace>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("backend", &self.backend_description())
            .field("replicas", &self.replicas())
            .field("step", &self.step())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// One replica of `net` with `params`, on the CPU.
    pub fn new(net: Network, params: Params) -> Result<Self> {
        Self::with_replicas(net, vec![params])
    }

    /// `params.len()` independent replicas of `net` on the CPU, each with its own
    /// parameters, state and streams, all starting from the network's initial weights.
    pub fn with_replicas(net: Network, params: Vec<Params>) -> Result<Self> {
        Self::with_backend(net, params, Backend::Cpu)
    }

    /// Replicas of `net` on the chosen backend. [`Backend::Gpu`] and [`Backend::Auto`] make a
    /// device of their own ([`GpuContext::headless`]); [`Backend::Auto`] chooses as
    /// [`Engine::auto_choice`] says ([`Engine::backend_reason`] tells why).
    pub fn with_backend(net: Network, params: Vec<Params>, backend: Backend) -> Result<Self> {
        let mut engine = Self::on_cpu(net, params)?;
        match backend {
            Backend::Cpu => Ok(engine),
            Backend::Gpu => engine.into_gpu(GpuContext::headless()?),
            Backend::Auto => {
                let adapter = crate::gpu::pick_adapter();
                let named = adapter_named();
                let (gpu, reason) = engine.auto_choice(adapter.as_ref().map(wgpu::Adapter::get_info).ok(), named);
                engine.reason = format!("auto: {reason}");
                match adapter {
                    Ok(a) if gpu => match GpuContext::on_adapter(a) {
                        Ok(ctx) => engine.into_gpu(ctx),
                        Err(e @ Error::Device(_)) => {
                            engine.reason = format!("auto: {e}; the CPU instead");
                            Ok(engine)
                        }
                        Err(e) => Err(e),
                    },
                    Err(e) => {
                        engine.reason = format!("auto: {e}");
                        Ok(engine)
                    }
                    Ok(_) => Ok(engine),
                }
            }
        }
    }

    /// What [`Backend::Auto`] chooses, and why, given the adapter wgpu offers (`None`: none)
    /// and whether it was asked for by name (`WGPU_ADAPTER_NAME`): `true` for the GPU.
    ///
    /// - Never a software adapter (wgpu's `DeviceType::Cpu`: llvmpipe, lavapipe, WARP) unless
    ///   asked for by name: it runs the same kernels hundreds of times slower than the CPU path.
    /// - On a real GPU, the GPU only for work that hides its per-dispatch latency: at least
    ///   [`AUTO_GPU_REPLICAS`] replicas of a network small enough for the `population` kernel
    ///   (one invocation per replica runs a whole block), or at least
    ///   [`AUTO_GPU_SYNAPSES`] synapse updates per step (replicas x synapses) otherwise.
    pub fn auto_choice(&self, adapter: Option<wgpu::AdapterInfo>, named: bool) -> (bool, String) {
        let Some(info) = adapter else { return (false, "no GPU adapter; the CPU".into()) };
        if let Some(why) = auto_refuses(&info, named) {
            return (false, why);
        }
        let work = AutoWork::of(&self.net, self.replicas());
        let gpu = work.takes_gpu();
        (gpu, format!("{work}: {}", if gpu { format!("the GPU, {}", info.name) } else { "the CPU".to_string() }))
    }

    /// Why the engine runs where it does: `"auto: ..."` for [`Backend::Auto`], else the
    /// backend asked for.
    pub fn backend_reason(&self) -> &str {
        &self.reason
    }

    /// Replicas of `net` on a device the caller owns (cheap clones of its `Device` and
    /// `Queue`); see [`Engine::record_steps`] to record into the caller's encoder.
    pub fn with_context(net: Network, params: Vec<Params>, ctx: GpuContext) -> Result<Self> {
        Self::on_cpu(net, params)?.into_gpu(ctx)
    }

    /// Moves the engine, with its state, onto the GPU of `ctx`.
    fn into_gpu(mut self, ctx: GpuContext) -> Result<Self> {
        if let Exec::Cpu(cpu) = &self.exec {
            let cpu = cpu.exec();
            let gpu = GpuExecutor::new(ctx, &cpu.buffers, self.block_steps, cpu.step)?;
            self.exec = Exec::Gpu(Box::new(gpu));
        }
        Ok(self)
    }

    fn on_cpu(net: Network, params: Vec<Params>) -> Result<Self> {
        Params::validate_replicas(&params, &net)?;
        let replicas = params.len();
        let (n, e) = (net.n(), net.n_edges());
        let too_big = |what: &str, v: usize| {
            Error::Network(format!("{replicas} replicas x {v} {what} do not fit 32-bit indices"))
        };
        if replicas.checked_mul(n).is_none_or(|v| v >= u32::MAX as usize) {
            return Err(too_big("neurons", n));
        }
        if replicas.checked_mul(e).is_none_or(|v| v >= u32::MAX as usize) {
            return Err(too_big("edges", e));
        }
        let buffers = initial_buffers(&net, &params);
        let kernel_params = buffers.params;
        Ok(Engine {
            on_divergence: OnDivergence::Error,
            diverged: vec![None; replicas],
            reason: "asked for".into(),
            net,
            params,
            kernel_params,
            exec: Exec::Cpu(CpuRunner::new(CpuExecutor::new(buffers, 0))),
            record_every: 1,
            block_steps: DEFAULT_BLOCK_STEPS,
            spare: Spare::default(),
        })
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// The parameters of each replica.
    pub fn params(&self) -> &[Params] {
        &self.params
    }

    /// Number of replicas.
    pub fn replicas(&self) -> usize {
        self.params.len()
    }

    /// Steps taken so far.
    pub fn step(&self) -> u64 {
        self.exec.step()
    }

    /// `"cpu"`, or `"gpu"` with the adapter's description where known.
    pub fn backend_description(&self) -> String {
        match &self.exec {
            Exec::Cpu(..) => "cpu".into(),
            Exec::Gpu(g) => match &g.context().adapter {
                Some(info) => format!("gpu: {}", crate::gpu::describe(info)),
                None => "gpu: caller's device".into(),
            },
        }
    }

    /// Which backend runs the steps ([`Backend::Cpu`] or [`Backend::Gpu`]).
    pub fn backend(&self) -> Backend {
        match self.exec {
            Exec::Cpu(..) => Backend::Cpu,
            Exec::Gpu(_) => Backend::Gpu,
        }
    }

    /// The GPU buffers (state, weights, costates), for applications that draw them; `None`
    /// on the CPU backend. Step `n` reads `x[n % 2]`: the current state is
    /// `x[engine.step() % 2]`. The buffers live as long as the engine, except that
    /// [`Engine::set_block_steps`] beyond the current capacity replaces them: make bind
    /// groups after sizing the block.
    pub fn gpu_buffers(&self) -> Option<&GpuBuffers> {
        match &self.exec {
            Exec::Gpu(g) => Some(g.buffers()),
            Exec::Cpu(..) => None,
        }
    }

    /// Records the next `steps` steps into the caller's `encoder` without submitting
    /// (GPU backend only; at most the block size, see [`Engine::set_block_steps`]). The
    /// streams are evaluated now and uploaded through the queue, so they take effect at the
    /// caller's next submission; nothing is recorded into the trace. The engine counts the
    /// steps as taken: submit the encoder before recording or running further steps.
    pub fn record_steps(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        steps: usize,
        streams: &mut [Streams],
    ) -> Result<()> {
        self.check_streams(streams)?;
        if steps > self.block_steps {
            return Err(Error::param("steps", steps, format!("at most the block size, {}", self.block_steps)));
        }
        let mut block = std::mem::take(&mut self.spare.block);
        let part = self.prepare_block(steps, streams, &mut block);
        for s in &mut block.steps {
            s.record_row = NO_RECORD;
        }
        block.records = 0;
        let done = part.map(|part| self.spare.parts.push(part)).and_then(|()| match &mut self.exec {
            Exec::Gpu(g) => {
                g.encode_block(encoder, &block, None);
                Ok(())
            }
            Exec::Cpu(..) => Err(Error::NeedsGpu("record_steps")),
        });
        self.spare.block = block;
        done
    }

    /// Whether small networks run in the fused kernels (the default) or kernel by kernel, one
    /// dispatch list per step: networks small enough for the `population` kernel
    /// ([`Plan::population`]: the paper's net and its replicas) run each block of steps in it,
    /// every replica's steps in one loop; on the GPU, networks of a few dense tiles
    /// ([`Plan::small_net`]) run each step in one `small_net` dispatch. On the CPU both ways
    /// compute the same bits; on the GPU they agree to rounding (FMA contraction may differ
    /// between the kernels).
    ///
    /// [`Plan::population`]: crate::plan::Plan::population
    /// [`Plan::small_net`]: crate::plan::Plan::small_net
    pub fn set_fused(&mut self, on: bool) {
        match &mut self.exec {
            Exec::Cpu(cpu) => cpu.exec_mut().population = on,
            Exec::Gpu(gpu) => gpu.fused = on,
        }
    }

    /// The kernel family that runs each block of synapses, as `localprop info` and `bench`
    /// print it: `population` for a whole small net, `small_net` (GPU) for a net of few
    /// dense tiles, else `dense` (tiles of rows x columns)
    /// per dense block and `sparse` (CSR rows) for the sparse block.
    pub fn kernel_families(&self) -> String {
        let (population, small_net, plan) = match &self.exec {
            Exec::Cpu(cpu) => (cpu.exec().population, false, &cpu.exec().buffers.plan),
            Exec::Gpu(gpu) => (gpu.fused, gpu.fused, gpu.plan()),
        };
        plan.describe(population, small_net)
    }

    /// The current time `step * tau` (computed in f64).
    pub fn time(&self) -> f64 {
        self.step() as f64 * crate::params::decimal(self.params[0].tau)
    }

    /// Records every `every`-th step (steps `n` with `n % every == 0`); 1 records all.
    pub fn set_record_every(&mut self, every: u64) -> Result<()> {
        if every == 0 {
            return Err(Error::param("record_every", every, "an integer >= 1"));
        }
        self.record_every = every;
        Ok(())
    }

    /// What a run does when a replica diverges (default [`OnDivergence::Error`]).
    pub fn set_on_divergence(&mut self, on: OnDivergence) {
        self.on_divergence = on;
    }

    /// Per replica, whether and where it diverged (runs with [`OnDivergence::Continue`]).
    pub fn diverged(&self) -> &[Option<Divergence>] {
        &self.diverged
    }

    /// Marks replica `replica` as diverged (or not, with `None`), as a run that found it
    /// would: its trace values from `divergence.step` on are NaN and it is not checked
    /// again. For a run resumed from a state saved after a divergence.
    pub fn set_diverged(&mut self, replica: usize, divergence: Option<Divergence>) -> Result<()> {
        let replicas = self.replicas();
        let slot = self
            .diverged
            .get_mut(replica)
            .ok_or_else(|| Error::param("replica", replica, format!("a replica index below {replicas}")))?;
        *slot = divergence;
        Ok(())
    }

    /// Steps per block: how many steps' inputs are prepared, run and read back at once
    /// (default [`DEFAULT_BLOCK_STEPS`]). On the GPU a larger block than the buffers hold
    /// rebuilds them, keeping the state.
    pub fn set_block_steps(&mut self, steps: usize) -> Result<()> {
        if steps == 0 || steps > MAX_BLOCK_STEPS {
            return Err(Error::param("block_steps", steps, format!("an integer from 1 to {MAX_BLOCK_STEPS}")));
        }
        if let Exec::Gpu(g) = &mut self.exec
            && steps > g.capacity()
        {
            let [x, p, w, pw] = g.read_state()?;
            let mut b = initial_buffers(&self.net, &self.params);
            let step = g.step;
            b.x[(step % 2) as usize] = x;
            (b.p, b.w, b.pw) = (p, w, pw);
            let bigger = GpuExecutor::new(g.context().clone(), &b, steps, step)?;
            **g = bigger;
        }
        self.block_steps = steps;
        Ok(())
    }

    /// A snapshot of the full state (on the GPU: read back, waiting for the steps in flight).
    pub fn state(&mut self) -> Result<State> {
        let step = self.step();
        let replicas = self.replicas();
        match &mut self.exec {
            Exec::Cpu(cpu) => {
                let b = &cpu.exec_mut().buffers;
                Ok(State {
                    step,
                    replicas,
                    x: b.x[(step % 2) as usize].clone(),
                    p: b.p.clone(),
                    w: b.w.clone(),
                    pw: b.pw.clone(),
                })
            }
            Exec::Gpu(g) => {
                let [x, p, w, pw] = g.read_state()?;
                Ok(State { step, replicas, x, p, w, pw })
            }
        }
    }

    /// As [`Engine::state`], without blocking, for applications with an async event loop:
    /// on the GPU the copies are submitted now and the future resolves once they are mapped,
    /// which takes the device being polled (the application's loop polls it, or it calls
    /// `device.poll`); it then holds the state at the step the engine was at when it was
    /// called. On the CPU it is ready at once.
    pub fn state_async(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Result<State>> + Send>> {
        let (step, replicas) = (self.step(), self.replicas());
        match &self.exec {
            Exec::Cpu(..) => {
                let state = self.state();
                Box::pin(async move { state })
            }
            Exec::Gpu(g) => {
                let read = g.read_state_async();
                Box::pin(async move {
                    let [x, p, w, pw] = read.await?;
                    Ok(State { step, replicas, x, p, w, pw })
                })
            }
        }
    }

    /// The messages `e_hat_i = c_i sigma'(a_i) p_i` and the state powers
    /// `h_i = p_i c_i (sigma(a_i) - x_i)` computed by the last step (from the state before
    /// it), `[replica][neuron]`: the local learning signal each synapse `j -> i` used.
    pub fn last_messages(&mut self) -> Result<(Vec<f32>, Vec<f32>)> {
        match &mut self.exec {
            Exec::Cpu(cpu) => {
                let b = &cpu.exec_mut().buffers;
                Ok((b.e_hat.clone(), b.h.clone()))
            }
            Exec::Gpu(g) => {
                let [e_hat, h] = g.read_messages()?;
                Ok((e_hat, h))
            }
        }
    }

    /// Replaces the full state (sizes and finiteness are checked first; on error nothing changes).
    pub fn set_state(&mut self, state: &State) -> Result<()> {
        state.check(self.replicas(), self.net.n(), self.net.n_edges())?;
        match &mut self.exec {
            Exec::Cpu(cpu) => {
                let cpu = cpu.exec_mut();
                let b = &mut cpu.buffers;
                b.x[(state.step % 2) as usize].clone_from(&state.x);
                b.p.clone_from(&state.p);
                b.w.clone_from(&state.w);
                b.pw.clone_from(&state.pw);
                cpu.step = state.step;
                cpu.gather = true;
            }
            Exec::Gpu(g) => {
                g.step = state.step;
                g.write_state(&state.x, &state.p, &state.w, &state.pw);
            }
        }
        Ok(())
    }

    /// Runs `steps` steps, one [`Streams`] per replica, and returns the recorded steps.
    pub fn run(&mut self, steps: u64, streams: &mut [Streams]) -> Result<Trace> {
        self.run_with_progress(steps, streams, |_| {})
    }

    /// As [`Engine::run`], calling `progress(steps_done)` after every block.
    pub fn run_with_progress(
        &mut self,
        steps: u64,
        streams: &mut [Streams],
        mut progress: impl FnMut(u64),
    ) -> Result<Trace> {
        let mut trace = Trace::new(self.replicas(), self.net.outputs().len());
        self.run_blocks(steps, streams, |done, part| {
            trace.extend_from(part);
            progress(done);
            Ok(Flow::Continue)
        })?;
        Ok(trace)
    }

    /// Runs up to `steps` steps as [`Engine::run`] does, but hands each block's recorded rows
    /// to `sink(steps_done, rows)` instead of collecting them, so memory stays flat however
    /// long the run: a sink that writes the rows to disk, or reduces them, keeps nothing else.
    /// A block may record no rows (`record_every` longer than a block); `sink` is called for
    /// every block all the same. Returns the steps run: all of them, unless `sink` returned
    /// [`Flow::Stop`]; then no further block is started, and the blocks already started are
    /// finished and handed to `sink` too, so that every step taken is in the rows it got. An
    /// error from `sink` is the run's error, returned at once.
    pub fn run_blocks(
        &mut self,
        steps: u64,
        streams: &mut [Streams],
        mut sink: impl FnMut(u64, &Trace) -> Result<Flow>,
    ) -> Result<u64> {
        self.check_streams(streams)?;
        let mut in_flight = VecDeque::new();
        let ran = self.pump_blocks(steps, streams, &mut sink, &mut in_flight);
        if ran.is_err() {
            // A block submitted before the error has run (or runs): its results are taken
            // and dropped, so that the next run does not read them as its own. The engine is
            // then at the end of the last block submitted.
            for _ in in_flight.drain(..) {
                if let Ok(result) = self.exec.collect() {
                    self.exec.recycle(result.rows);
                }
            }
        }
        let submitted = ran?;
        self.check_state()?;
        Ok(submitted)
    }

    /// [`Engine::run_blocks`]' loop: block b + 1 is prepared and submitted before block b's
    /// trace is collected, so the host evaluates streams and reads traces while the device
    /// computes (on the CPU, while a large block runs on a thread of its own:
    /// [`CpuRunner`]). On an error, the blocks still in flight are left in `in_flight`.
    fn pump_blocks(
        &mut self,
        steps: u64,
        streams: &mut [Streams],
        sink: &mut impl FnMut(u64, &Trace) -> Result<Flow>,
        in_flight: &mut VecDeque<(Trace, u64, u64)>,
    ) -> Result<u64> {
        let (mut submitted, mut stop) = (0, self.all_diverged());
        while (submitted < steps && !stop) || !in_flight.is_empty() {
            if submitted < steps && !stop && in_flight.len() < 2 {
                let len = (steps - submitted).min(self.block_steps as u64) as usize;
                let first = self.step();
                let mut block = std::mem::take(&mut self.spare.block);
                let part = self.prepare_block(len, streams, &mut block)?;
                let sent = self.exec.submit(&mut block);
                self.spare.block = block;
                sent?;
                submitted += len as u64;
                in_flight.push_back((part, first, submitted));
                if in_flight.len() < 2 && submitted < steps {
                    continue;
                }
            }
            let (mut part, first, done) = in_flight.pop_front().expect("a block is in flight");
            let result = self.exec.collect()?;
            self.unpack_trace(&result.rows, &mut part);
            self.exec.recycle(result.rows);
            self.find_divergence(first, &result.nonfinite, &mut part)?;
            stop |= sink(done, &part)? == Flow::Stop || self.all_diverged();
            self.spare.parts.push(part);
        }
        Ok(submitted)
    }

    fn all_diverged(&self) -> bool {
        self.on_divergence == OnDivergence::Continue && self.diverged.iter().all(Option::is_some)
    }

    /// The replicas that diverged in a block, from the neuron pass's codes and the recorded
    /// energies (whichever names the earlier step): an error, or (with
    /// [`OnDivergence::Continue`]) marked, with their recorded values from that step on
    /// set to NaN.
    fn find_divergence(&mut self, first: u64, codes: &[u32], part: &mut Trace) -> Result<()> {
        let replicas = self.replicas();
        let width = part.n_out;
        // The common case first, in one pass over each column: no code and every recorded
        // energy finite (a finite probe sum, as the neuron pass checks its values), so no
        // replica diverged in this block. The search below reads the columns replica by
        // replica, a stride of `replicas` apart; it also runs where finite energies overflow
        // the probe, and then finds nothing.
        let quiet = codes.iter().all(|&c| c == 0)
            && [&part.loss, &part.lagrangian, &part.hamiltonian].iter().all(|v| crate::cpu::probe_sum(v).is_finite());
        let mut found: Option<(Divergence, usize)> = None;
        for r in (0..replicas).filter(|_| !quiet) {
            if self.diverged[r].is_some() {
                continue;
            }
            let flagged = codes.get(r).and_then(|&c| decode_nonfinite(c)).map(|(row, quantity, value)| Divergence {
                step: first + row as u64,
                quantity,
                value,
            });
            let recorded = (0..part.rows()).find_map(|k| {
                let at = k * replicas + r;
                let energies = [
                    ("loss", part.loss[at]),
                    ("lagrangian", part.lagrangian[at]),
                    ("hamiltonian", part.hamiltonian[at]),
                ];
                let (quantity, value) = energies.into_iter().find(|(_, v)| !v.is_finite())?;
                Some(Divergence { step: part.step[k], quantity, value })
            });
            let Some(d) = [flagged, recorded].into_iter().flatten().min_by_key(|d| d.step) else { continue };
            if found.is_none_or(|(f, _)| d.step < f.step) {
                found = Some((d, r));
            }
            // Marked only when the run goes on: after an error, a further run finds it again.
            if self.on_divergence == OnDivergence::Continue {
                self.diverged[r] = Some(d);
            }
        }
        if self.on_divergence == OnDivergence::Error
            && let Some((d, replica)) = found
        {
            return Err(Error::Diverged { quantity: d.quantity, value: d.value, step: d.step, replica });
        }
        for (r, d) in self.diverged.iter().enumerate() {
            let Some(d) = d else { continue };
            for k in (0..part.rows()).filter(|&k| part.step[k] >= d.step) {
                let at = k * replicas + r;
                part.loss[at] = f32::NAN;
                part.lagrangian[at] = f32::NAN;
                part.hamiltonian[at] = f32::NAN;
                part.outputs[at * width..(at + 1) * width].fill(f32::NAN);
            }
        }
        Ok(())
    }

    /// The run's last guard: a state that turned non-finite after the last recorded step
    /// (or between sparse records) is an error, never an `Ok`.
    /// On the CPU the buffers are checked where they are; the GPU state is read back once.
    fn check_state(&mut self) -> Result<()> {
        let (step, replicas) = (self.step(), self.replicas());
        let read;
        let [x, p, w, pw]: [&[f32]; 4] = match &mut self.exec {
            Exec::Cpu(cpu) => {
                let b = &cpu.exec_mut().buffers;
                [&b.x[(step % 2) as usize], &b.p, &b.w, &b.pw]
            }
            Exec::Gpu(g) => {
                read = g.read_state()?;
                [&read[0], &read[1], &read[2], &read[3]]
            }
        };
        let mut found = Vec::new();
        for r in (0..replicas).filter(|&r| self.diverged[r].is_none()) {
            for (quantity, values) in [("x", x), ("p", p), ("w", w), ("pw", pw)] {
                let per = values.len() / replicas;
                if let Some(&value) = values[r * per..(r + 1) * per].iter().find(|v| !v.is_finite()) {
                    found.push((r, Divergence { step, quantity, value }));
                    break;
                }
            }
        }
        for (replica, d) in found {
            if self.on_divergence == OnDivergence::Error {
                return Err(Error::Diverged { quantity: d.quantity, value: d.value, step, replica });
            }
            self.diverged[replica] = Some(d);
        }
        Ok(())
    }

    fn check_streams(&self, streams: &[Streams]) -> Result<()> {
        if streams.len() != self.replicas() {
            return Err(Error::param(
                "streams",
                format!("{} stream sets", streams.len()),
                format!("one set of streams per replica ({})", self.replicas()),
            ));
        }
        let (inputs, n_out) = (self.net.inputs(), self.net.outputs().len());
        for (r, s) in streams.iter().enumerate() {
            let dims = [
                ("input", s.input.as_ref().map_or(0, |i| i.dim()), inputs),
                ("target", s.target.dim(), n_out),
                ("mask", s.mask.as_ref().map_or(n_out, |m| m.dim()), n_out),
            ];
            for (stream, got, want) in dims {
                if got != want {
                    return Err(Error::Stream {
                        stream,
                        replica: r,
                        message: format!("{got} channels, the network needs {want}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Evaluates the streams for the next `len` steps into a block, with the host-side
    /// columns of the trace (step, t, targets, masks) for the recorded steps.
    ///
    /// The inputs get one row more, step `first + len`: the synapse pass of a step sums the
    /// next step's pre-activations, which read the next step's inputs. That step's inputs are
    /// sampled again as the first row of the next block, so an input stream must give the same
    /// values when sampled twice at one step.
    ///
    /// `block` is refilled in place (its buffers are reused); the trace part is a spent one
    /// emptied, or a new one.
    fn prepare_block(&mut self, len: usize, streams: &mut [Streams], block: &mut Block) -> Result<Trace> {
        let (replicas, d, n_in, n_out) = (self.replicas(), self.net.d(), self.net.inputs(), self.net.outputs().len());
        let first = self.step();
        let tau = crate::params::decimal(self.params[0].tau);
        let policy = self.params[0].policy;
        // Every stream value is written below; what no stream writes (the bias column, the
        // masks of replicas without a mask stream) holds the constant it was filled with, so
        // a buffer of the same length is not filled again.
        let refill = |v: &mut Vec<f32>, len: usize, value: f32| {
            if v.len() != len {
                v.clear();
                v.resize(len, value);
            }
        };
        block.first_step = first;
        block.steps.clear();
        refill(&mut block.inputs, (len + 1) * replicas * d, 1.0);
        refill(&mut block.targets, len * replicas * n_out, 0.0);
        refill(&mut block.masks, len * replicas * n_out, 1.0);
        block.records = 0;
        let mut part = self.spare.parts.pop().unwrap_or_else(|| Trace::new(replicas, n_out));
        part.clear();
        for row in 0..len {
            let step = first + row as u64;
            let t = step as f64 * tau;
            let record = step.is_multiple_of(self.record_every);
            // hsf-ball: each replica's signs are chosen on the device from its state
            // (`state_norm`), and the step's are not read.
            let (sign_state, sign_costate) = policy.scheduled_signs(step, t).unwrap_or((1.0, 1.0));
            block.steps.push(StepUniform {
                row: row as u32,
                record_row: if record { block.records as u32 } else { NO_RECORD },
                sign_state,
                sign_costate,
            });
            for (r, s) in streams.iter_mut().enumerate() {
                let base = (row * replicas + r) * d;
                if let Some(input) = s.input.as_mut() {
                    let out = &mut block.inputs[base..base + n_in];
                    input.sample(step, t, out);
                    check_finite("input", r, step, out)?;
                }
                let tb = (row * replicas + r) * n_out;
                let out = &mut block.targets[tb..tb + n_out];
                s.target.sample(step, t, out);
                check_finite("target", r, step, out)?;
                if let Some(mask) = s.mask.as_mut() {
                    let out = &mut block.masks[tb..tb + n_out];
                    mask.sample(step, t, out);
                    if let Some(v) = out.iter().find(|&&v| v != 0.0 && v != 1.0) {
                        return Err(Error::Stream {
                            stream: "mask",
                            replica: r,
                            message: format!("value {v} at step {step}; masks are 0 or 1"),
                        });
                    }
                }
            }
            if record {
                block.records += 1;
                part.step.push(step);
                part.t.push(t);
                let tb = row * replicas * n_out..(row + 1) * replicas * n_out;
                part.targets.extend_from_slice(&block.targets[tb.clone()]);
                part.masks.extend_from_slice(&block.masks[tb]);
            }
        }
        let step = first + len as u64;
        for (r, s) in streams.iter_mut().enumerate() {
            if let Some(input) = s.input.as_mut() {
                let base = (len * replicas + r) * d;
                let out = &mut block.inputs[base..base + n_in];
                input.sample(step, step as f64 * tau, out);
                check_finite("input", r, step, out)?;
            }
        }
        Ok(part)
    }

    /// Splits the executor's trace rows into the trace columns.
    fn unpack_trace(&self, rows: &[f32], part: &mut Trace) {
        let width = self.kernel_params.trace_width as usize;
        // A column at a time (each `extend` reserves once and writes without checks), over
        // tiles of rows small enough to be read again from the cache.
        for tile in rows.chunks(width * 4096) {
            let rows = || tile.chunks_exact(width);
            part.loss.extend(rows().map(|row| row[0]));
            part.lagrangian.extend(rows().map(|row| row[1]));
            part.hamiltonian.extend(rows().map(|row| row[2]));
            part.sign.extend(rows().map(|row| row[3]));
            if width == TRACE_FIXED + 1 {
                part.outputs.extend(rows().map(|row| row[TRACE_FIXED]));
            } else {
                for row in rows() {
                    part.outputs.extend_from_slice(&row[TRACE_FIXED..]);
                }
            }
        }
    }
}

/// The CPU buffers of a fresh engine: the network's index arrays and initial weights
/// (repeated per replica), zero states and costates, the replicas' parameters.
fn initial_buffers(net: &Network, params: &[Params]) -> Buffers {
    let (replicas, n, e) = (params.len(), net.n(), net.n_edges());
    let (plan, part_len) = crate::plan::Plan::new(net, replicas, 0);
    let sparse = net.sparse_block();
    let take = |f: fn(&crate::network::SparseBlock) -> &Vec<u32>| sparse.map(|s| f(s).clone()).unwrap_or_default();
    let ball = match params[0].policy {
        crate::params::Policy::HsfBall { radius } => Some(radius),
        _ => None,
    };
    Buffers {
        params: KernelParams {
            n: n as u32,
            d: net.d() as u32,
            n_edges: e as u32,
            replicas: replicas as u32,
            n_out: net.outputs().len() as u32,
            activation: params[0].activation.code(),
            trace_width: (TRACE_FIXED + net.outputs().len()) as u32,
            learning: u32::from(params[0].learning),
            tau: params[0].tau,
            n_wide: plan.wide_rows,
            ball: u32::from(ball.is_some()),
            // R^2 rounded once to f32 (the kernels compare the f32 norm with it).
            radius2: ball.map_or(0.0, |r| (r as f64 * r as f64) as f32),
            ..Default::default()
        },
        plan,
        replica: params.iter().map(|p| ReplicaParams { q: p.q, r: p.r, r_w: p.r_w, theta: p.theta }).collect(),
        sign: vec![1.0; replicas],
        c: params.iter().flat_map(|p| p.c.per_neuron(net)).collect(),
        row_ptr: take(|s| &s.row_ptr),
        wide_rows: sparse.map(|s| crate::plan::wide_rows(&s.row_ptr).collect()).unwrap_or_default(),
        edge_src: take(|s| &s.src),
        edge_dst: take(|s| &s.dst),
        out_ptr: take(|s| &s.out_ptr),
        out_edge: take(|s| &s.out_edge),
        outputs: net.outputs().to_vec(),
        out_slot: net.output_slots(),
        x: [vec![0.0; replicas * n], vec![0.0; replicas * n]],
        p: vec![0.0; replicas * n],
        w: net.initial_weights().repeat(replicas),
        pw: vec![0.0; replicas * e],
        e_hat: vec![0.0; replicas * n],
        h: vec![0.0; replicas * n],
        a: vec![0.0; replicas * n],
        b: vec![0.0; replicas * n],
        part: vec![0.0; part_len],
        ..Default::default()
    }
}

fn check_finite(stream: &'static str, replica: usize, step: u64, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(k) => Err(Error::Stream {
            stream,
            replica,
            message: format!("channel {k} is {} at step {step}; values must be finite", values[k]),
        }),
    }
}
