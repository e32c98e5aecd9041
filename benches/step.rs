#![expect(missing_docs, reason = "criterion_group! generates undocumented items")]
//! Steps per second of the CPU and GPU paths on the same networks, under the same names, as
//! synapse updates per second (`Throughput::Elements(replicas * synapses * steps)`).
//! Each iteration runs one block of steps and waits for its results (the trace is read
//! back), so GPU time is measured to completion.
//!
//! `cargo bench --bench step` (GPU cases are skipped, with a printed line, without an adapter).
//! `LOCALPROP_BENCH_SIZES=small` keeps to the two small cases.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use localprop::signal::{Constant, Sinusoid};
use localprop::{Backend, Engine, Network, NetworkSpec, Params, Speed, Streams};

struct Case {
    name: &'static str,
    net: Network,
    replicas: usize,
    params: Params,
    steps: u64,
    record_every: u64,
}

fn cases() -> Vec<Case> {
    let tracking = Params::tracking(100.0);
    let learn = Params { c: Speed::Global(10.0), tau: 0.1, theta: 5.0, ..Params::default() };
    let mut list = vec![
        Case {
            name: "tracking-5x4096",
            net: NetworkSpec::tracking().build().unwrap(),
            replicas: 4096,
            params: tracking,
            steps: 256,
            record_every: 1,
        },
        Case {
            name: "digits-64-32-10",
            net: NetworkSpec::layered(&[64, 32, 10]).bias(true).seed(1).build().unwrap(),
            replicas: 1,
            params: learn.clone(),
            steps: 256,
            record_every: 1,
        },
    ];
    if std::env::var("LOCALPROP_BENCH_SIZES").as_deref() != Ok("small") {
        list.push(Case {
            name: "sparse-100k-fanin32",
            net: NetworkSpec::random_sparse(64, 100_000, 32, false).bias(true).seed(1).build().unwrap(),
            replicas: 1,
            params: learn.clone(),
            steps: 64,
            record_every: 64,
        });
        list.push(Case {
            name: "dense-2048",
            net: NetworkSpec::fully_connected(16, 2048, true).bias(true).seed(1).build().unwrap(),
            replicas: 1,
            params: Params { c: Speed::Global(2.0), ..learn },
            steps: 64,
            record_every: 64,
        });
    }
    list
}

fn streams(case: &Case) -> Vec<Streams> {
    (0..case.replicas)
        .map(|_| {
            let s = Streams::new(Sinusoid { dim: case.net.outputs().len(), ..Sinusoid::new(0.8, 0.1) });
            if case.net.inputs() > 0 { s.with_input(Constant(vec![0.5; case.net.inputs()])) } else { s }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let gpu_available = localprop::gpu::pick_adapter().is_ok();
    if !gpu_available {
        println!("SKIPPED: GPU cases (no adapter)");
    }
    for case in cases() {
        let mut group = c.benchmark_group(case.name);
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_secs(1));
        group.measurement_time(std::time::Duration::from_secs(3));
        let synapses = (case.replicas * case.net.n_edges()) as u64;
        group.throughput(Throughput::Elements(synapses * case.steps));
        for backend in [Backend::Cpu, Backend::Gpu] {
            if backend == Backend::Gpu && !gpu_available {
                continue;
            }
            let mut engine =
                Engine::with_backend(case.net.clone(), vec![case.params.clone(); case.replicas], backend).unwrap();
            engine.set_record_every(case.record_every).unwrap();
            engine.set_block_steps(case.steps as usize).unwrap();
            let mut s = streams(&case);
            group.bench_function(backend.name(), |b| {
                b.iter(|| black_box(engine.run(case.steps, &mut s).unwrap()));
            });
            println!("{}/{}: {}", case.name, backend.name(), engine.backend_description());
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
