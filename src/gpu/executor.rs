//! Runs blocks of steps on the GPU: buffers, bind groups and pipelines built once; each
//! block uploaded through the queue, recorded as one compute pass (one dispatch list per
//! step, [`crate::plan`]) and submitted once; trace rows read back through two staging
//! buffers so that the GPU computes block `b + 1` while the host reads block `b`.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::Arc;

use super::context::GpuContext;
use super::kernels::{PopulationShape, kernel_source_for};
use crate::block::{Block, BlockResult};
use crate::cpu::Buffers;
use crate::error::{Error, Result};
use crate::layout::{BLOCK_WORDS, BlockUniform, KernelParams, NO_RECORD, StepUniform};
use crate::plan::{Dispatch, Kernel, Plan};

/// The engine's GPU buffers. `x[0]`, `x[1]`, `p`, `w` and `pw` are plain `f32` arrays laid
/// out as [`crate::State`] describes (`[replica][neuron]`, `[replica][edge]`), with
/// `STORAGE | VERTEX | COPY_SRC | COPY_DST` usage, so an application can bind them in its own
/// render or compute pipelines. Step `n` reads `x[n % 2]` and writes `x[(n + 1) % 2]`.
#[derive(Debug)]
pub struct GpuBuffers {
    /// [`KernelParams`], uniform.
    pub params: wgpu::Buffer,
    /// [`StepUniform`] per step of a block, at a stride of `min_uniform_buffer_offset_alignment`.
    pub steps: wgpu::Buffer,
    /// Index arrays (see [`KernelParams`] offsets).
    pub graph: wgpu::Buffer,
    /// Neuron states, ping-ponged.
    pub x: [wgpu::Buffer; 2],
    /// Scaled neuron costates.
    pub p: wgpu::Buffer,
    /// Weights.
    pub w: wgpu::Buffer,
    /// Scaled weight costates.
    pub pw: wgpu::Buffer,
    /// Replica parameters, speeds, messages, state powers, trace rows.
    pub aux: wgpu::Buffer,
    /// Inputs, targets and masks of the block.
    pub stream: wgpu::Buffer,
    /// [`BlockUniform`] per block of synapses, at a stride of `min_uniform_buffer_offset_alignment`.
    pub blocks: wgpu::Buffer,
}

/// The outcome of a `map_async`, once its callback has run.
type Mapped = Arc<std::sync::Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>>;

/// `Ok` once a mapping succeeded, else the error wgpu gave (or that the callback never ran).
fn mapped(outcome: &Mapped, what: &str) -> Result<()> {
    let err = |message: String| Error::Gpu { kernel: "readback".into(), message };
    match outcome.lock().map_err(|_| err(format!("{what}: the map callback panicked")))?.take() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(err(format!("{what} could not be mapped: {e}"))),
        None => Err(err(format!("{what} was not mapped after its submission completed"))),
    }
}

/// A `map_async` callback that records its outcome in `outcome`.
fn on_mapped(outcome: &Mapped) -> impl FnOnce(std::result::Result<(), wgpu::BufferAsyncError>) + Send + 'static {
    let outcome = outcome.clone();
    move |r| {
        if let Ok(mut slot) = outcome.lock() {
            *slot = Some(r);
        }
    }
}

struct Pending {
    slot: usize,
    bytes: u64,
    ready: Mapped,
    submission: wgpu::SubmissionIndex,
}

/// The GPU executor.
pub struct GpuExecutor {
    ctx: GpuContext,
    params: KernelParams,
    capacity: usize,
    stride: u64,
    block_stride: u64,
    max_per_dim: u32,
    /// The pipeline of each kernel built, indexed by `Kernel as usize`.
    pipelines: [Option<wgpu::ComputePipeline>; Kernel::ALL.len()],
    group0: wgpu::BindGroup,
    pingpong: [wgpu::BindGroup; 2],
    buffers: GpuBuffers,
    staging: [wgpu::Buffer; 2],
    pending: VecDeque<Pending>,
    next_slot: usize,
    /// Steps taken so far (selects the ping-pong buffer).
    pub step: u64,
    /// Whether the next step must first gather the pre-activations (a new or replaced state).
    pub gather: bool,
    /// Whether a small network runs in a fused kernel (the default): `population` for
    /// [`Plan::population`], `small_net` for [`Plan::small_net`]; else kernel by kernel.
    pub fused: bool,
    /// Steps per `population` dispatch: the whole block on a GPU; on a CPU adapter
    /// (llvmpipe, lavapipe), few enough that an invocation stays under the 65,535 loop
    /// iterations after which those drivers end it.
    population_steps: usize,
    plan: Plan,
}

impl std::fmt::Debug for GpuExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuExecutor").field("params", &self.params).field("step", &self.step).finish_non_exhaustive()
    }
}

/// Element offsets of the packed arrays (see [`KernelParams`]), and the buffers' lengths.
struct Packing {
    params: KernelParams,
    plan: Plan,
    graph_len: usize,
    aux_len: usize,
    stream_len: usize,
}

fn packing(b: &Buffers, capacity: usize) -> Packing {
    let mut k = b.params;
    let (n, r, n_out) = (k.n as usize, k.replicas as usize, k.n_out as usize);
    let mut at = 0usize;
    let mut take = |len: usize| {
        let off = at;
        at += len;
        off as u32
    };
    k.row_ptr_off = take(b.row_ptr.len());
    k.edge_src_off = take(b.edge_src.len());
    k.edge_dst_off = take(b.edge_dst.len());
    k.out_ptr_off = take(b.out_ptr.len());
    k.out_edge_off = take(b.out_edge.len());
    k.outputs_off = take(n_out);
    k.out_slot_off = take(n);
    k.wide_off = take(b.wide_rows.len());
    let n_dense = b.plan.blocks.len() - usize::from(b.plan.sparse);
    k.blocks_off = take(n_dense * BLOCK_WORDS as usize);
    k.n_blocks = n_dense as u32;
    let graph_len = at;
    let mut at = 4 * r;
    let mut take = |len: usize| {
        let off = at;
        at += len;
        off as u32
    };
    k.c_off = take(r * n);
    k.e_hat_off = take(r * n);
    k.h_off = take(r * n);
    k.a_off = take(r * n);
    k.b_off = take(r * n);
    let part_off = take(b.part.len());
    k.sign_off = take(r);
    // The flags just before the trace rows: one copy reads both back.
    k.flags_off = take(r);
    k.trace_off = take(capacity * r * k.trace_width as usize);
    let aux_len = at;
    let mut plan = b.plan.clone();
    for blk in &mut plan.blocks {
        blk.part_off += part_off;
        if blk.tiles > 0 {
            blk.row_part_off += part_off;
        }
    }
    k.targets_off = ((capacity + 1) * r * k.d as usize) as u32;
    k.masks_off = k.targets_off + (capacity * r * n_out) as u32;
    k.steps_off = k.masks_off + (capacity * r * n_out) as u32;
    let stream_len = k.steps_off as usize + 4 * (capacity + 1);
    Packing { params: k, plan, graph_len, aux_len, stream_len }
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform(binding: u32, dynamic: bool, size: usize) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic,
            min_binding_size: NonZeroU64::new(size as u64),
        },
        count: None,
    }
}

impl GpuExecutor {
    /// Uploads `b` (the state at step `step`) and builds everything the steps need, for
    /// blocks of at most `capacity` steps. Sizes beyond the device's limits are a
    /// [`Error::Limit`], not a panic.
    pub fn new(ctx: GpuContext, b: &Buffers, capacity: usize, step: u64) -> Result<Self> {
        let limits = ctx.device.limits();
        let pk = packing(b, capacity);
        let k = pk.params;
        let (n, e, r) = (k.n as u64, k.n_edges as u64, k.replicas as u64);
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let sizes = [
            ("index buffer (graph)", pk.graph_len as u64 * 4),
            ("state buffer (x)", r * n * 4),
            ("weight buffer (w, pw)", r * e * 4),
            ("auxiliary buffer (aux)", pk.aux_len as u64 * 4),
            ("stream buffer (inputs, targets, masks of one block)", pk.stream_len as u64 * 4),
        ];
        for (what, bytes) in sizes {
            if bytes > max_binding {
                return Err(Error::Limit {
                    what: what.into(),
                    asked: bytes,
                    limit: max_binding,
                    limit_name: "max_storage_buffer_binding_size",
                });
            }
        }
        if pk.stream_len >= u32::MAX as usize || pk.aux_len >= u32::MAX as usize {
            return Err(Error::Network(format!("a block of {capacity} steps does not fit 32-bit offsets")));
        }
        let max_per_dim = limits.max_compute_workgroups_per_dimension;
        for d in pk.plan.step(&k, true, true) {
            let groups = d.workgroups();
            if groups > max_per_dim as u64 * max_per_dim as u64 {
                return Err(Error::Limit {
                    what: format!("the {} dispatch", d.kernel.name()),
                    asked: groups,
                    limit: max_per_dim as u64 * max_per_dim as u64,
                    limit_name: "max_compute_workgroups_per_dimension (squared)",
                });
            }
        }
        let align = limits.min_uniform_buffer_offset_alignment as u64;
        let stride = (size_of::<StepUniform>() as u64).next_multiple_of(align);
        let block_stride = (size_of::<BlockUniform>() as u64).next_multiple_of(align);

        let device = &ctx.device;
        let buffers = ctx.checked("buffer allocation", || {
            let make = |label: &str, len_bytes: u64, usage: wgpu::BufferUsages| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: len_bytes.max(16).next_multiple_of(4),
                    usage,
                    mapped_at_creation: false,
                })
            };
            use wgpu::BufferUsages as U;
            let state = U::STORAGE | U::VERTEX | U::COPY_SRC | U::COPY_DST;
            GpuBuffers {
                params: make("localprop params", size_of::<KernelParams>() as u64, U::UNIFORM | U::COPY_DST),
                steps: make("localprop steps", stride * capacity as u64, U::UNIFORM | U::COPY_DST),
                graph: make("localprop graph", pk.graph_len as u64 * 4, U::STORAGE | U::COPY_DST),
                x: [make("localprop x[0]", r * n * 4, state), make("localprop x[1]", r * n * 4, state)],
                p: make("localprop p", r * n * 4, state),
                w: make("localprop w", r * e * 4, state),
                pw: make("localprop pw", r * e * 4, state),
                aux: make("localprop aux", pk.aux_len as u64 * 4, U::STORAGE | U::COPY_SRC | U::COPY_DST),
                stream: make("localprop stream", pk.stream_len as u64 * 4, U::STORAGE | U::COPY_DST),
                blocks: make("localprop blocks", block_stride * pk.plan.blocks.len() as u64, U::UNIFORM | U::COPY_DST),
            }
        })?;
        let trace_bytes = (r + capacity as u64 * r * k.trace_width as u64) * 4;
        let staging = [0, 1].map(|i| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(if i == 0 { "localprop trace staging 0" } else { "localprop trace staging 1" }),
                size: trace_bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });

        let layout0 = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("localprop group 0"),
            entries: &[
                uniform(0, false, size_of::<KernelParams>()),
                uniform(1, true, size_of::<StepUniform>()),
                storage(2, true),
                storage(3, false),
                storage(4, false),
                storage(5, false),
                storage(6, false),
                storage(7, true),
                uniform(8, true, size_of::<BlockUniform>()),
            ],
        });
        let layout1 = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("localprop group 1 (x ping-pong)"),
            entries: &[storage(0, true), storage(1, false)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("localprop kernels"),
            bind_group_layouts: &[Some(&layout0), Some(&layout1)],
            immediate_size: 0,
        });
        let mut pipelines: [Option<wgpu::ComputePipeline>; Kernel::ALL.len()] = Default::default();
        let shape = PopulationShape::new(&k, &pk.plan, &b.outputs, &b.out_slot);
        let wanted = |kernel: Kernel| match kernel {
            Kernel::Population => pk.plan.population,
            Kernel::SmallNet => pk.plan.small_net,
            Kernel::StateNorm => k.ball != 0,
            _ => true,
        };
        for kernel in Kernel::ALL.into_iter().filter(|&kernel| wanted(kernel)) {
            let pipeline = ctx.checked(kernel.name(), || {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(kernel.name()),
                    source: wgpu::ShaderSource::Wgsl(kernel_source_for(kernel, &shape).into()),
                });
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(kernel.name()),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(kernel.name()),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    cache: None,
                })
            })?;
            pipelines[kernel as usize] = Some(pipeline);
        }
        let g = &buffers;
        let (group0, pingpong) = ctx.checked("bind groups", || {
            let group0 = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("localprop group 0"),
                layout: &layout0,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: g.params.as_entire_binding() },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &g.steps,
                            offset: 0,
                            size: NonZeroU64::new(size_of::<StepUniform>() as u64),
                        }),
                    },
                    wgpu::BindGroupEntry { binding: 2, resource: g.graph.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: g.p.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 4, resource: g.w.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 5, resource: g.pw.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 6, resource: g.aux.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 7, resource: g.stream.as_entire_binding() },
                    wgpu::BindGroupEntry {
                        binding: 8,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &g.blocks,
                            offset: 0,
                            size: NonZeroU64::new(size_of::<BlockUniform>() as u64),
                        }),
                    },
                ],
            });
            let pair = |src: usize| {
                device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(if src == 0 { "localprop x[0] -> x[1]" } else { "localprop x[1] -> x[0]" }),
                    layout: &layout1,
                    entries: &[
                        wgpu::BindGroupEntry { binding: 0, resource: g.x[src].as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 1, resource: g.x[1 - src].as_entire_binding() },
                    ],
                })
            };
            (group0, [pair(0), pair(1)])
        })?;

        let queue = &ctx.queue;
        let mut graph = Vec::with_capacity(pk.graph_len);
        for part in
            [&b.row_ptr, &b.edge_src, &b.edge_dst, &b.out_ptr, &b.out_edge, &b.outputs, &b.out_slot, &b.wide_rows]
        {
            graph.extend_from_slice(part);
        }
        for blk in &pk.plan.blocks[..k.n_blocks as usize] {
            let words: &[u32] = bytemuck::cast_slice(bytemuck::bytes_of(blk));
            graph.extend_from_slice(&words[..BLOCK_WORDS as usize]);
        }
        queue.write_buffer(&buffers.params, 0, bytemuck::bytes_of(&k));
        write_f32(queue, &buffers.graph, 0, bytemuck::cast_slice(&graph));
        let mut aux_head: Vec<f32> = bytemuck::cast_slice(&b.replica).to_vec();
        aux_head.extend_from_slice(&b.c);
        write_f32(queue, &buffers.aux, 0, &aux_head);
        let mut table = vec![0u8; (block_stride as usize * pk.plan.blocks.len()).max(16)];
        for (chunk, blk) in table.chunks_exact_mut(block_stride as usize).zip(&pk.plan.blocks) {
            chunk[..size_of::<BlockUniform>()].copy_from_slice(bytemuck::bytes_of(blk));
        }
        queue.write_buffer(&buffers.blocks, 0, &table);
        let mut exec = GpuExecutor {
            params: k,
            capacity,
            stride,
            max_per_dim,
            pipelines,
            group0,
            pingpong,
            buffers,
            staging,
            pending: VecDeque::new(),
            next_slot: 0,
            step,
            gather: true,
            fused: true,
            population_steps: population_steps(&ctx, &shape),
            plan: pk.plan,
            block_stride,
            ctx,
        };
        exec.write_state(&b.x[(step % 2) as usize], &b.p, &b.w, &b.pw);
        Ok(exec)
    }

    /// The buffers, for applications that draw or post-process the state.
    pub fn buffers(&self) -> &GpuBuffers {
        &self.buffers
    }

    /// The context (device and queue).
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The blocks of synapses and the kernel family they run in.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Steps per block this executor was built for.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The sizes and offsets the kernels read.
    pub fn kernel_params(&self) -> &KernelParams {
        &self.params
    }

    /// Uploads a block's streams and per-step scalars through the queue (they take effect
    /// before the next submission, after every earlier one) and records its steps into
    /// `encoder`: one compute pass, with one `population` dispatch for a small network, else
    /// the step's dispatch list per step (one `small_net` dispatch per step for a network of
    /// few tiles). Copies the block's non-finite codes and trace rows to `trace_to` when given
    /// (the codes, one per replica, then the trace rows).
    pub fn encode_block(&mut self, encoder: &mut wgpu::CommandEncoder, block: &Block, trace_to: Option<&wgpu::Buffer>) {
        let k = self.params;
        encoder.clear_buffer(&self.buffers.aux, k.flags_off as u64 * 4, Some(k.replicas as u64 * 4));
        {
            let (queue, g) = (&self.ctx.queue, &self.buffers);
            write_f32(queue, &g.stream, 0, &block.inputs);
            write_f32(queue, &g.stream, k.targets_off as u64 * 4, &block.targets);
            write_f32(queue, &g.stream, k.masks_off as u64 * 4, &block.masks);
            let mut steps = vec![0u8; self.stride as usize * block.steps.len()];
            for (chunk, s) in steps.chunks_exact_mut(self.stride as usize).zip(&block.steps) {
                chunk[..size_of::<StepUniform>()].copy_from_slice(bytemuck::bytes_of(s));
            }
            if !steps.is_empty() {
                queue.write_buffer(&g.steps, 0, &steps);
            }
        }
        if self.fused && self.plan.population {
            self.encode_population(encoder, block);
        } else {
            self.encode_steps(encoder, block);
        }
        if let Some(staging) = trace_to {
            let bytes = self.readback_bytes(block);
            encoder.copy_buffer_to_buffer(&self.buffers.aux, k.flags_off as u64 * 4, staging, 0, bytes);
        }
    }

    /// Bytes read back after a block: the replicas' non-finite codes, then its trace rows.
    fn readback_bytes(&self, block: &Block) -> u64 {
        let k = self.params;
        (k.replicas as u64 + (block.records * (k.replicas * k.trace_width) as usize) as u64) * 4
    }

    /// A block in the `population` kernel: its step table into `stream`, one dispatch (or,
    /// on a CPU adapter, one per [`GpuExecutor::population_steps`] steps).
    fn encode_population(&mut self, encoder: &mut wgpu::CommandEncoder, block: &Block) {
        let k = self.params;
        let len = block.steps.len() as u64;
        let per = self.population_steps.max(1) as u64;
        let mut table: Vec<u32> = vec![len as u32, u32::from(self.gather), per.min(u32::MAX as u64) as u32, 0];
        for s in &block.steps {
            table.extend([s.row, s.record_row, s.sign_state.to_bits(), s.sign_costate.to_bits()]);
        }
        self.ctx.queue.write_buffer(&self.buffers.stream, k.steps_off as u64 * 4, bytemuck::cast_slice(&table));
        if len == 0 {
            return;
        }
        encoder.push_debug_group(&format!("localprop population steps {}..{}", self.step, self.step + len));
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("localprop population"),
                timestamp_writes: None,
            });
            let mut first = 0;
            while first < len {
                let steps = per.min(len - first);
                // x_out is the buffer of the dispatch's last step, x[(step + steps) % 2].
                pass.set_bind_group(1, &self.pingpong[((self.step + steps + 1) % 2) as usize], &[]);
                pass.set_bind_group(0, &self.group0, &[(first * self.stride) as u32, 0]);
                let d = Dispatch { kernel: Kernel::Population, block: 0, invocations: k.replicas as u64 };
                self.dispatch(&mut pass, d);
                self.step += steps;
                first += steps;
            }
        }
        encoder.pop_debug_group();
        self.gather = false;
    }

    /// A block kernel by kernel: the step's dispatch list per step, in one compute pass.
    fn encode_steps(&mut self, encoder: &mut wgpu::CommandEncoder, block: &Block) {
        let k = self.params;
        let g = &self.buffers;
        if self.gather && !block.steps.is_empty() {
            let bytes = (k.replicas * k.n) as u64 * 4;
            encoder.clear_buffer(&g.aux, k.a_off as u64 * 4, Some(bytes));
        }
        encoder.push_debug_group(&format!("localprop steps {}..{}", self.step, self.step + block.steps.len() as u64));
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("localprop steps"),
                timestamp_writes: None,
            });
            for (row, s) in block.steps.iter().enumerate() {
                let src = (self.step % 2) as usize;
                pass.set_bind_group(1, &self.pingpong[src], &[]);
                let step_offset = (row as u64 * self.stride) as u32;
                let list = if self.fused && self.plan.small_net {
                    self.plan.small_net_step(&k, self.gather)
                } else {
                    self.plan.step(&k, s.record_row != NO_RECORD, self.gather)
                };
                for d in list {
                    let block_offset = (d.block as u64 * self.block_stride) as u32;
                    pass.set_bind_group(0, &self.group0, &[step_offset, block_offset]);
                    self.dispatch(&mut pass, d);
                }
                self.gather = false;
                self.step += 1;
            }
        }
        encoder.pop_debug_group();
    }

    fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, d: Dispatch) {
        let pipeline = self.pipelines[d.kernel as usize].as_ref().expect("every kernel the plan dispatches is built");
        pass.set_pipeline(pipeline);
        let groups = d.workgroups();
        // Fold beyond the per-dimension limit; the kernels rebuild the index from both.
        let x = groups.min(self.max_per_dim as u64) as u32;
        let y = groups.div_ceil(x.max(1) as u64) as u32;
        if x > 0 {
            pass.dispatch_workgroups(x, y, 1);
        }
    }

    /// Records and submits a block, and requests the readback of its trace rows; at most
    /// two blocks are in flight. Collect each with [`GpuExecutor::collect`].
    pub fn submit(&mut self, block: &Block) -> Result<()> {
        if block.steps.len() > self.capacity {
            return Err(Error::param("block steps", block.steps.len(), format!("at most {}", self.capacity)));
        }
        if self.pending.len() >= 2 {
            return Err(Error::Gpu { kernel: "submit".into(), message: "two blocks already in flight".into() });
        }
        let slot = self.next_slot;
        self.next_slot = 1 - slot;
        let staging = self.staging[slot].clone();
        let first = self.step;
        let ctx = self.ctx.clone();
        let submission = ctx.checked("step", || {
            let mut encoder =
                ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("localprop block") });
            self.encode_block(&mut encoder, block, Some(&staging));
            ctx.queue.submit([encoder.finish()])
        });
        let submission = submission.inspect_err(|_| self.step = first)?;
        let bytes = self.readback_bytes(block);
        let ready = Mapped::default();
        staging.slice(..bytes).map_async(wgpu::MapMode::Read, on_mapped(&ready));
        self.pending.push_back(Pending { slot, bytes, ready, submission });
        Ok(())
    }

    /// Waits for the oldest block in flight and returns its trace rows and non-finite codes.
    pub fn collect(&mut self) -> Result<BlockResult> {
        let Some(p) = self.pending.pop_front() else { return Ok(BlockResult::default()) };
        self.ctx
            .device
            .poll(wgpu::PollType::Wait { submission_index: Some(p.submission), timeout: None })
            .map_err(|e| Error::Device(format!("waiting for a block: {e}")))?;
        mapped(&p.ready, "the trace buffer")?;
        let staging = &self.staging[p.slot];
        let replicas = self.params.replicas as usize;
        let result = {
            let view = staging
                .slice(..p.bytes)
                .get_mapped_range()
                .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
            let all = bytemuck::cast_slice::<u8, f32>(&view);
            let (flags, rows) = all.split_at(replicas);
            BlockResult { rows: rows.to_vec(), nonfinite: flags.iter().map(|&c| c as u32).collect() }
        };
        staging.unmap();
        Ok(result)
    }

    /// Reads `x` (current), `p`, `w`, `pw` back (blocking; waits for every block in flight).
    pub fn read_state(&mut self) -> Result<[Vec<f32>; 4]> {
        let parts = self.read(&self.state_parts())?;
        let [x, p, w, pw]: [Vec<f32>; 4] = parts.try_into().expect("four parts");
        Ok([x, p, w, pw])
    }

    /// Reads the messages `e_hat` and state powers `h` of the last step.
    pub fn read_messages(&mut self) -> Result<[Vec<f32>; 2]> {
        let k = self.params;
        let nb = (k.replicas * k.n) as u64 * 4;
        let aux = &self.buffers.aux;
        let parts = self.read(&[(aux, k.e_hat_off as u64 * 4, nb), (aux, k.h_off as u64 * 4, nb)])?;
        let [e_hat, h]: [Vec<f32>; 2] = parts.try_into().expect("two parts");
        Ok([e_hat, h])
    }

    /// Copies `(buffer, byte offset, byte length)` ranges into one staging buffer and reads
    /// them back as f32 (blocking).
    pub fn read(&self, parts: &[(&wgpu::Buffer, u64, u64)]) -> Result<Vec<Vec<f32>>> {
        let (staging, lens, submission) = self.stage(parts);
        let ready = Mapped::default();
        staging.slice(..).map_async(wgpu::MapMode::Read, on_mapped(&ready));
        self.ctx
            .device
            .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
            .map_err(|e| Error::Device(format!("reading back: {e}")))?;
        mapped(&ready, "the staging buffer")?;
        unpack(&staging, &lens)
    }

    /// As [`GpuExecutor::read`], without blocking: the copies are submitted now, and the
    /// future resolves once they are mapped, which takes the device being polled (an
    /// application's event loop polls it; else `device.poll`). The mapping's outcome comes
    /// through a `futures-intrusive` oneshot channel, so the future suits any executor.
    pub fn read_async(
        &self,
        parts: &[(&wgpu::Buffer, u64, u64)],
    ) -> impl Future<Output = Result<Vec<Vec<f32>>>> + Send + use<> {
        let (staging, lens, _) = self.stage(parts);
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            // The receiver is gone only when the future was dropped: nothing to tell then.
            let _ = sender.send(r);
        });
        async move {
            let err = |message: String| Error::Gpu { kernel: "readback".into(), message };
            match receiver.receive().await {
                Some(Ok(())) => unpack(&staging, &lens),
                Some(Err(e)) => Err(err(format!("the staging buffer could not be mapped: {e}"))),
                None => Err(err("the staging buffer's map callback was dropped".into())),
            }
        }
    }

    /// Submits the copies of `parts` into a new staging buffer; returns it, the parts'
    /// lengths and the submission.
    fn stage(&self, parts: &[(&wgpu::Buffer, u64, u64)]) -> (wgpu::Buffer, Vec<u64>, wgpu::SubmissionIndex) {
        let total: u64 = parts.iter().map(|p| p.2).sum();
        let device = &self.ctx.device;
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("localprop readback"),
            size: total.max(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("localprop readback") });
        let mut at = 0;
        for &(buf, offset, len) in parts {
            if len > 0 {
                encoder.copy_buffer_to_buffer(buf, offset, &staging, at, len);
            }
            at += len;
        }
        let submission = self.ctx.queue.submit([encoder.finish()]);
        (staging, parts.iter().map(|p| p.2).collect(), submission)
    }

    /// The ranges of a state readback: `x` (current), `p`, `w`, `pw`.
    fn state_parts(&self) -> [(&wgpu::Buffer, u64, u64); 4] {
        let (g, k) = (&self.buffers, self.params);
        let (nb, eb) = ((k.replicas * k.n) as u64 * 4, (k.replicas * k.n_edges) as u64 * 4);
        [(&g.x[(self.step % 2) as usize], 0, nb), (&g.p, 0, nb), (&g.w, 0, eb), (&g.pw, 0, eb)]
    }

    /// As [`GpuExecutor::read_state`], without blocking ([`GpuExecutor::read_async`]).
    pub fn read_state_async(&self) -> impl Future<Output = Result<[Vec<f32>; 4]>> + Send + use<> {
        let read = self.read_async(&self.state_parts());
        async move {
            let parts = read.await?;
            let [x, p, w, pw]: [Vec<f32>; 4] = parts.try_into().expect("four parts");
            Ok([x, p, w, pw])
        }
    }

    /// Writes the state (takes effect before the next submission).
    pub fn write_state(&mut self, x: &[f32], p: &[f32], w: &[f32], pw: &[f32]) {
        let g = &self.buffers;
        let queue = &self.ctx.queue;
        write_f32(queue, &g.x[(self.step % 2) as usize], 0, x);
        write_f32(queue, &g.p, 0, p);
        write_f32(queue, &g.w, 0, w);
        write_f32(queue, &g.pw, 0, pw);
        self.gather = true;
    }
}

/// Steps per `population` dispatch on `ctx` (see [`GpuExecutor::population_steps`]). On a
/// CPU adapter: 65,535 loop iterations over twice the kernel's iterations per step.
fn population_steps(ctx: &GpuContext, shape: &PopulationShape) -> usize {
    let cpu = ctx.adapter.as_ref().is_some_and(|a| a.device_type == wgpu::DeviceType::Cpu);
    if !cpu {
        return usize::MAX;
    }
    const LOOP_LIMIT: usize = 65_535;
    (LOOP_LIMIT / (2 * shape.loop_iterations())).max(1)
}

fn write_f32(queue: &wgpu::Queue, buffer: &wgpu::Buffer, offset: u64, data: &[f32]) {
    if !data.is_empty() {
        queue.write_buffer(buffer, offset, bytemuck::cast_slice(data));
    }
}

/// The f32 parts of a mapped staging buffer, `lens` bytes each; unmaps it.
fn unpack(staging: &wgpu::Buffer, lens: &[u64]) -> Result<Vec<Vec<f32>>> {
    let all: Vec<f32> = {
        let view = staging
            .slice(..)
            .get_mapped_range()
            .map_err(|e| Error::Gpu { kernel: "readback".into(), message: e.to_string() })?;
        bytemuck::cast_slice::<u8, f32>(&view).to_vec()
    };
    staging.unmap();
    let mut out = Vec::with_capacity(lens.len());
    let mut at = 0;
    for &len in lens {
        let n = (len / 4) as usize;
        out.push(all[at..at + n].to_vec());
        at += n;
    }
    Ok(out)
}
