//! Embedding the engine in a graphics application: the app owns the wgpu device, the engine
//! records its steps into the app's command encoder, and a render pass in the same encoder
//! draws the network straight from the engine's state buffer. No window: the frames are
//! rendered offscreen and six of them are saved side by side as one PNG film strip.
//!
//! The network is a fully connected recurrent net of 64 tanh neurons (an 8 x 8 grid of
//! cells, blue for -1, black for 0, orange for +1), fed `sin` and `cos` of `2 pi 0.5 t` and
//! learning online to make its output neuron (the white-framed cell, top left) follow
//! `0.8 sin(2 pi 0.5 t)`.
//!
//! ```text
//! WGPU_BACKEND=vulkan cargo run --release --example embed -- [out.png]   (default embed.png)
//! ```
//!
//! The embedding contract, in short:
//! * the app makes the device and queue and hands the engine cheap clones
//!   ([`GpuContext::from_device`]);
//! * [`Engine::record_steps`] only records: the app submits, when it likes, together with
//!   its own passes; the streams are evaluated at record time and uploaded with the queue,
//!   and the engine counts the steps as taken, so submit before recording more;
//! * the state lives in `gpu_buffers().x[0]` and `x[1]` (ping-pong, plain `f32`,
//!   `[replica][neuron]`); after recording, the current state is `x[engine.step() % 2]`.

use std::time::Instant;

use localprop::gpu::{GpuContext, describe, pick_adapter};
use localprop::signal::Sinusoid;
use localprop::{Engine, Init, NetworkSpec, Params, Speed, Streams};

const FRAMES: u32 = 120;
/// Steps recorded per frame (at most the engine's block size, 256 by default).
const STEPS_PER_FRAME: usize = 16;
/// Frames saved in the film strip, evenly spaced, the last one last.
const SHOTS: u32 = 6;
/// Side of one frame in pixels.
const SIZE: u32 = 176;
const FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;
/// Frequency of the inputs and the target, and the target's amplitude.
const FREQUENCY: f64 = 0.5;
const AMPLITUDE: f64 = 0.8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let path = std::env::args().nth(1).unwrap_or_else(|| "embed.png".into());

    // The app's own device, with default limits, as a typical application makes it.
    let adapter = match pick_adapter() {
        Ok(adapter) => adapter,
        Err(e) => {
            eprintln!("{e}\nThis example needs a GPU adapter (a software one such as Mesa lavapipe will do).");
            std::process::exit(1);
        }
    };
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { label: Some("app"), ..Default::default() }),
    )?;
    println!("adapter: {}", describe(&adapter.get_info()));

    // 64 recurrent neurons + 2 inputs + bias; gain 3 keeps the net lively. Reverse-costate
    // (the default policy) with c tau = 1, theta = 1 and a slow learning rate (1 / r) stays
    // finite (checked to 19,200 steps) and tracks the target well by the end of the run.
    let net = NetworkSpec::fully_connected(2, 64, true).bias(true).init(Init::Uniform { gain: 3.0 }).seed(7).build()?;
    let params =
        Params { c: Speed::Global(100.0), tau: 0.01, q: 1.0, r: 10.0, r_w: 0.1, theta: 1.0, ..Params::default() };
    let (n, d, output) = (net.n(), net.d(), net.outputs()[0] as usize);
    let mut engine = Engine::with_context(net, vec![params], GpuContext::from_device(device.clone(), queue.clone()))?;
    let inputs = Sinusoid { dim: 2, phase_step: std::f64::consts::FRAC_PI_2, ..Sinusoid::new(1.0, FREQUENCY) };
    let mut streams = [Streams::new(Sinusoid::new(AMPLITUDE, FREQUENCY)).with_input(inputs)];

    // The render pipeline: the shader reads `x` as a read-only storage buffer in the vertex
    // stage; overrides tell it where the drawn neurons start and how to lay out the grid.
    let cells = n - d;
    let cols = (cells as f64).sqrt().ceil() as usize;
    let rows = cells.div_ceil(cols);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("embed.wgsl"),
        source: wgpu::ShaderSource::Wgsl(include_str!("embed.wgsl").into()),
    });
    let constants =
        [("FIRST", d as f64), ("COLS", cols as f64), ("ROWS", rows as f64), ("OUTLINED", (output - d) as f64)];
    let options = wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() };
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("state"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::VERTEX,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: true },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("neurons"),
        layout: Some(&device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("neurons"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        })),
        vertex: wgpu::VertexState {
            module: &module,
            entry_point: Some("vs_main"),
            compilation_options: options.clone(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module: &module,
            entry_point: Some("fs_main"),
            compilation_options: options,
            targets: &[Some(FORMAT.into())],
        }),
        multiview_mask: None,
        cache: None,
    });

    // One bind group per ping-pong buffer, made once. (They would go stale only if
    // `set_block_steps` grew the block past the buffers' capacity, which rebuilds them.)
    let buffers = engine.gpu_buffers().ok_or("the engine is not on the GPU")?;
    let state_groups = buffers.x.each_ref().map(|x| {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("state"),
            layout: &layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: x.as_entire_binding() }],
        })
    });

    // Offscreen targets: one frame, and the film strip the chosen frames are copied into.
    let texture = |label, width, usage| {
        device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d { width, height: SIZE, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: FORMAT,
            usage,
            view_formats: &[],
        })
    };
    let frame = texture("frame", SIZE, wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC);
    let frame_view = frame.create_view(&wgpu::TextureViewDescriptor::default());
    let strip = texture("strip", SHOTS * SIZE, wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC);

    let start = Instant::now();
    for f in 0..FRAMES {
        // One encoder per frame: the engine's compute passes, then the app's render pass.
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("frame") });
        engine.record_steps(&mut encoder, STEPS_PER_FRAME, &mut streams)?;
        let current = (engine.step() % 2) as usize; // the state after the steps just recorded
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("neurons"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &frame_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color { r: 0.06, g: 0.06, b: 0.07, a: 1.0 }),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                depth_stencil_attachment: None,
                timestamp_writes: None,
                occlusion_query_set: None,
                multiview_mask: None,
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &state_groups[current], &[]);
            pass.draw(0..6, 0..cells as u32);
        }
        let shot = ((f + 1) * SHOTS).is_multiple_of(FRAMES); // frames 19, 39, ..., 119
        if shot {
            let slot = (f + 1) * SHOTS / FRAMES - 1;
            let mut dst = frame.as_image_copy();
            dst.texture = &strip;
            dst.origin.x = slot * SIZE;
            encoder.copy_texture_to_texture(frame.as_image_copy(), dst, frame.size());
        }
        queue.submit([encoder.finish()]);
        if shot {
            // A small readback, for the printout only (the picture needs none).
            let t = engine.time();
            let z = AMPLITUDE * (std::f64::consts::TAU * FREQUENCY * t).sin();
            println!("  t = {t:5.2}  output {:+.3}  target {z:+.3}", engine.state()?.x[output]);
        }
    }

    // Read the strip back (rows padded to 256 bytes) and save it.
    let (width, row) = (SHOTS * SIZE, SHOTS * SIZE * 4);
    let padded = row.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
    let readback = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: (padded * SIZE) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    encoder.copy_texture_to_buffer(
        strip.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer: &readback,
            layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(padded), rows_per_image: None },
        },
        strip.size(),
    );
    queue.submit([encoder.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    readback.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    device.poll(wgpu::PollType::wait_indefinitely())?;
    rx.recv()??;
    let pixels: Vec<u8> = {
        let view = readback.get_mapped_range(..)?;
        view.chunks(padded as usize).flat_map(|r| &r[..row as usize]).copied().collect()
    };
    let secs = start.elapsed().as_secs_f64();
    let mut png = png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(&path)?), width, SIZE);
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Eight);
    let mut writer = png.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    println!("{} steps in {FRAMES} frames of {STEPS_PER_FRAME}, {secs:.2} s; saved {path}", engine.step());
    Ok(())
}
