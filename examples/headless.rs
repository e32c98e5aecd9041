//! The smallest GPU run: picks an adapter (honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME`,
//! `WGPU_POWER_PREF`), runs the paper's tracking task on it and on the CPU, and prints the
//! adapter, the tracking error of both and how far apart they are.
//!
//! `cargo run --release --example headless`

use localprop::signal::Sinusoid;
use localprop::{Backend, Engine, NetworkSpec, Params, Streams};

fn main() -> Result<(), localprop::Error> {
    env_logger::init();
    let net = NetworkSpec::tracking().build()?;
    let params = Params::tracking(100.0);
    let steps = 20_000;
    let mut gpu = Engine::with_backend(net.clone(), vec![params.clone()], Backend::Gpu)?;
    println!("adapter: {}", gpu.backend_description());
    let start = std::time::Instant::now();
    let on_gpu = gpu.run(steps, &mut [Streams::new(Sinusoid::new(1.0, 0.1))])?;
    let gpu_secs = start.elapsed().as_secs_f64();
    let mut cpu = Engine::new(net, params)?;
    let on_cpu = cpu.run(steps, &mut [Streams::new(Sinusoid::new(1.0, 0.1))])?;
    let half = on_gpu.rows() / 2;
    let gap = on_gpu.outputs.iter().zip(&on_cpu.outputs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("tracking sin(2 pi t / 10), q = 100, {steps} steps ({gpu_secs:.2} s on the GPU):");
    println!("  NMSE (second half): gpu {:.4}, cpu {:.4}", on_gpu.nmse(0, 0, half), on_cpu.nmse(0, 0, half));
    println!("  largest |x_out gpu - x_out cpu| over the run: {gap:.2e}");
    Ok(())
}
