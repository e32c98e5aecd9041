//! The engine: one API over the executors. Create it from a network and parameters, run
//! steps with streams, read and write the state.

use crate::block::Block;
use crate::cpu::{Buffers, CpuExecutor};
use crate::error::{Error, Result};
use crate::layout::{KernelParams, NO_RECORD, ReplicaParams, StepUniform, TRACE_FIXED};
use crate::network::Network;
use crate::params::Params;
use crate::signal::Streams;
use crate::state::{State, Trace};

/// Steps per block unless [`Engine::set_block_steps`] says otherwise.
pub const DEFAULT_BLOCK_STEPS: usize = 256;

/// Runs the lockstep dynamics of one network, for one or more replicas.
///
/// ```
/// use localprop::{Engine, NetworkSpec, Params, Speed, Policy, Streams, signal::Sinusoid};
///
/// let net = NetworkSpec::fully_connected(0, 5, true).bias(true).seed(1).build()?;
/// let params = Params { c: Speed::Global(50.0), tau: 0.01, q: 100.0, r: 0.1, r_w: 1.0,
///                       theta: 2.0, policy: Policy::HsfEveryStep, ..Params::default() };
/// let mut engine = Engine::new(net, params)?;
/// let trace = engine.run(1000, &mut [Streams::new(Sinusoid::new(1.0, 0.1))])?;
/// assert_eq!(trace.rows(), 1000);
/// # Ok::<(), localprop::Error>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    net: Network,
    params: Vec<Params>,
    kernel_params: KernelParams,
    exec: CpuExecutor,
    record_every: u64,
    block_steps: usize,
}

impl Engine {
    /// One replica of `net` with `params`.
    pub fn new(net: Network, params: Params) -> Result<Self> {
        Self::with_replicas(net, vec![params])
    }

    /// `params.len()` independent replicas of `net`, each with its own parameters, state
    /// and streams, all starting from the network's initial weights.
    pub fn with_replicas(net: Network, params: Vec<Params>) -> Result<Self> {
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
        let kernel_params = KernelParams {
            n: n as u32,
            d: net.d() as u32,
            n_edges: e as u32,
            replicas: replicas as u32,
            n_out: net.outputs().len() as u32,
            activation: params[0].activation.code(),
            trace_width: (TRACE_FIXED + net.outputs().len()) as u32,
            tau: params[0].tau,
            ..Default::default()
        };
        let buffers = Buffers {
            params: kernel_params,
            replica: params.iter().map(|p| ReplicaParams { q: p.q, r: p.r, r_w: p.r_w, theta: p.theta }).collect(),
            c: params.iter().flat_map(|p| p.c.per_neuron(&net)).collect(),
            row_ptr: net.row_ptr().to_vec(),
            edge_src: net.edge_src().to_vec(),
            edge_dst: net.edge_dst().to_vec(),
            out_ptr: net.out_ptr().to_vec(),
            out_edge: net.out_edge().to_vec(),
            outputs: net.outputs().to_vec(),
            out_slot: net.output_slots(),
            x: [vec![0.0; replicas * n], vec![0.0; replicas * n]],
            p: vec![0.0; replicas * n],
            w: net.initial_weights().repeat(replicas),
            pw: vec![0.0; replicas * e],
            e_hat: vec![0.0; replicas * n],
            h: vec![0.0; replicas * n],
            ..Default::default()
        };
        let learning = params[0].learning;
        Ok(Engine {
            net,
            params,
            kernel_params,
            exec: CpuExecutor::new(buffers, 0, learning),
            record_every: 1,
            block_steps: DEFAULT_BLOCK_STEPS,
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
        self.exec.step
    }

    /// The current time `step * tau` (computed in f64).
    pub fn time(&self) -> f64 {
        self.step() as f64 * self.params[0].tau as f64
    }

    /// Records every `every`-th step (steps `n` with `n % every == 0`); 1 records all.
    pub fn set_record_every(&mut self, every: u64) -> Result<()> {
        if every == 0 {
            return Err(Error::param("record_every", every, "an integer >= 1"));
        }
        self.record_every = every;
        Ok(())
    }

    /// Steps per block: how many steps' inputs are prepared and run at once.
    pub fn set_block_steps(&mut self, steps: usize) -> Result<()> {
        if steps == 0 {
            return Err(Error::param("block_steps", steps, "an integer >= 1"));
        }
        self.block_steps = steps;
        Ok(())
    }

    /// A snapshot of the full state.
    pub fn state(&self) -> State {
        let b = &self.exec.buffers;
        State {
            step: self.exec.step,
            replicas: self.replicas(),
            x: b.x[(self.exec.step % 2) as usize].clone(),
            p: b.p.clone(),
            w: b.w.clone(),
            pw: b.pw.clone(),
        }
    }

    /// Replaces the full state (sizes and finiteness are checked first; on error nothing changes).
    pub fn set_state(&mut self, state: &State) -> Result<()> {
        state.check(self.replicas(), self.net.n(), self.net.n_edges())?;
        let b = &mut self.exec.buffers;
        b.x[(state.step % 2) as usize].clone_from(&state.x);
        b.p.clone_from(&state.p);
        b.w.clone_from(&state.w);
        b.pw.clone_from(&state.pw);
        self.exec.step = state.step;
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
        self.check_streams(streams)?;
        let mut trace = Trace::new(self.replicas(), self.net.outputs().len());
        let mut done = 0;
        while done < steps {
            let len = (steps - done).min(self.block_steps as u64) as usize;
            let (block, mut part) = self.prepare_block(len, streams)?;
            let rows = self.exec.run_block(&block);
            self.unpack_trace(&rows, &mut part)?;
            trace.append(part);
            done += len as u64;
            progress(done);
        }
        Ok(trace)
    }

    fn check_streams(&self, streams: &[Streams]) -> Result<()> {
        if streams.len() != self.replicas() {
            return Err(Error::Stream {
                stream: "streams",
                replica: streams.len(),
                message: format!("{} stream sets given for {} replicas", streams.len(), self.replicas()),
            });
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
    /// columns of the trace (step, t, sign, targets, masks) for the recorded steps.
    fn prepare_block(&self, len: usize, streams: &mut [Streams]) -> Result<(Block, Trace)> {
        let (replicas, d, n_in, n_out) = (self.replicas(), self.net.d(), self.net.inputs(), self.net.outputs().len());
        let first = self.exec.step;
        let tau = self.params[0].tau as f64;
        let policy = self.params[0].policy;
        let mut block = Block {
            first_step: first,
            steps: Vec::with_capacity(len),
            inputs: vec![1.0; len * replicas * d],
            targets: vec![0.0; len * replicas * n_out],
            masks: vec![1.0; len * replicas * n_out],
            records: 0,
        };
        let mut part = Trace::new(replicas, n_out);
        for row in 0..len {
            let step = first + row as u64;
            let t = step as f64 * tau;
            let record = step.is_multiple_of(self.record_every);
            let (sign_state, sign_costate) = policy.signs(step, t);
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
                part.sign.push(sign_state);
                let tb = row * replicas * n_out..(row + 1) * replicas * n_out;
                part.targets.extend_from_slice(&block.targets[tb.clone()]);
                part.masks.extend_from_slice(&block.masks[tb]);
            }
        }
        Ok((block, part))
    }

    /// Splits the executor's trace rows into the trace columns and checks they are finite.
    fn unpack_trace(&self, rows: &[f32], part: &mut Trace) -> Result<()> {
        let width = self.kernel_params.trace_width as usize;
        for (k, row) in rows.chunks_exact(width).enumerate() {
            let (step, replica) = (part.step[k / self.replicas()], k % self.replicas());
            for (quantity, value) in [("loss", row[0]), ("lagrangian", row[1]), ("hamiltonian", row[2])] {
                if !value.is_finite() {
                    return Err(Error::Diverged { quantity, value, step, replica });
                }
            }
            part.loss.push(row[0]);
            part.lagrangian.push(row[1]);
            part.hamiltonian.push(row[2]);
            part.outputs.extend_from_slice(&row[TRACE_FIXED..]);
        }
        Ok(())
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
