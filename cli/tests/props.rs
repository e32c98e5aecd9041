//! Property tests of the two parsers that read what a user hands over: experiment files
//! ([`Experiment::from_toml`]) and checkpoints ([`checkpoint::from_bytes`]).
//!
//! Whatever the input, each gives `Ok` or an `Err`, never a panic, and never an abort from an
//! allocation: the memory budget is set small for this process ([`budget::set_max_memory`]),
//! so a file that asks for a huge network must be refused by the budget, not by the
//! allocator. Files valid by construction must be accepted; a checkpoint whose tensor bytes,
//! length or header length changed must be refused; whatever either parser accepts reads back
//! the same through the other path a run takes (the configuration as JSON, the checkpoint
//! written again).
//!
//! The seed is fixed, so a run is reproducible: `PROPTEST_RNG_SEED=<n>` and
//! `PROPTEST_CASES=<n>` explore further. A failure is saved in
//! `cli/tests/props.proptest-regressions` and replayed first on the next runs; commit that file.
//! `fuzz/` holds the coverage-guided twins of these tests.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::path::Path;
use std::sync::OnceLock;

use localprop::State;
use localprop::checkpoint::{self, Checkpoint, CheckpointBlock};
use localprop_cli::budget;
use localprop_cli::config::Experiment;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// The memory budget of this process: small, so that only a budget check stands between a
/// huge file and the allocator.
const BUDGET: u64 = 64 << 20;

/// The seed of every property unless `PROPTEST_RNG_SEED` is set.
const SEED: u64 = 0x10ca_1970;

/// `cases` cases (unless `PROPTEST_CASES` is set), the fixed seed (unless `PROPTEST_RNG_SEED`
/// is set), failures saved next to this file.
fn config(cases: u32) -> ProptestConfig {
    let base = ProptestConfig::default();
    let set = |var: &str| std::env::var_os(var).is_some();
    ProptestConfig {
        cases: if set("PROPTEST_CASES") { base.cases } else { cases },
        rng_seed: if set("PROPTEST_RNG_SEED") { base.rng_seed } else { RngSeed::Fixed(SEED) },
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..base
    }
}

fn small_budget() {
    budget::set_max_memory(BUDGET);
}

fn parse(text: &str) -> localprop::Result<Experiment> {
    small_budget();
    Experiment::from_toml(text, "props.toml", Path::new("/nonexistent"))
}

/// What a run does with an accepted file: its configuration goes into checkpoints and
/// summaries as JSON and must read back as the same experiment.
fn assert_json_round_trip(exp: &Experiment, text: &str) {
    let again = Experiment::from_json(&exp.to_json(), "props.json");
    match again {
        Ok(again) => assert_eq!(&again, exp, "the JSON of an accepted file reads back otherwise:\n{text}"),
        Err(e) => panic!("the JSON of an accepted file is refused: {e}\n{text}"),
    }
}

// ---------------------------------------------------------------------------------------
// Experiment files: a grammar of the real keys.
// ---------------------------------------------------------------------------------------

/// One `key = value` line; `optional`: the file stays valid without it (the value is the
/// default, or the key may be absent).
#[derive(Clone, Debug)]
struct Entry {
    key: String,
    value: String,
    optional: bool,
}

/// A `[section]` (the top level when `name` is empty) and its lines.
#[derive(Clone, Debug)]
struct Section {
    name: String,
    entries: Vec<Entry>,
}

/// An experiment file as sections of lines, so that it can be mutated line by line.
#[derive(Clone, Debug)]
struct Doc {
    sections: Vec<Section>,
}

impl Doc {
    fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            if !s.name.is_empty() {
                out.push_str(&format!("\n[{}]\n", s.name));
            }
            for e in &s.entries {
                out.push_str(&format!("{} = {}\n", e.key, e.value));
            }
        }
        out
    }

    fn optional_count(&self) -> usize {
        self.sections.iter().flat_map(|s| &s.entries).filter(|e| e.optional).count()
    }

    /// Leaves out the optional lines whose flag is set, in order.
    fn without(mut self, omit: &[bool]) -> Doc {
        let mut flags = omit.iter();
        for s in &mut self.sections {
            s.entries.retain(|e| !(e.optional && *flags.next().unwrap_or(&false)));
        }
        self
    }
}

fn entry(key: &str, value: impl Display) -> Entry {
    Entry { key: key.into(), value: value.to_string(), optional: false }
}

fn optional(key: &str, value: impl Display) -> Entry {
    Entry { optional: true, ..entry(key, value) }
}

fn section(name: &str, entries: Vec<Entry>) -> Section {
    Section { name: name.into(), entries }
}

/// A TOML float as the file would hold it (`nan`, `inf`, `1e-5`, `0.1`).
fn float(v: f64) -> String {
    match v {
        v if v.is_nan() => "nan".into(),
        v if v.is_infinite() => (if v > 0.0 { "inf" } else { "-inf" }).into(),
        v => format!("{v:?}"),
    }
}

/// An f32 written as the shortest decimal that reads back as it.
fn float32(v: f32) -> String {
    if v.is_finite() { format!("{v:?}") } else { float(v as f64) }
}

fn string(text: &str) -> String {
    toml::Value::String(text.into()).to_string()
}

fn list<T: Display>(values: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    format!("[{}]", items.join(", "))
}

/// The network's numbers the other sections must agree with.
#[derive(Clone, Debug)]
struct Shape {
    inputs: usize,
    /// Non-input neurons.
    neurons: usize,
    outputs: usize,
    layered: bool,
}

/// `[network]` lines of one kind, with `inputs + bias` (`d`), `n` and the default output count.
#[derive(Clone, Debug)]
struct Topology {
    entries: Vec<Entry>,
    inputs: usize,
    d: usize,
    n: usize,
    default_outputs: usize,
    layered: bool,
}

fn layered() -> impl Strategy<Value = Topology> {
    (0..5usize, prop::collection::vec(1..6usize, 1..4), any::<bool>()).prop_map(|(inputs, rest, bias)| {
        let sizes: Vec<usize> = std::iter::once(inputs).chain(rest.iter().copied()).collect();
        Topology {
            entries: vec![entry("kind", string("layered")), entry("sizes", list(&sizes)), entry("bias", bias)],
            inputs,
            d: inputs + usize::from(bias),
            n: usize::from(bias) + sizes.iter().sum::<usize>(),
            default_outputs: rest[rest.len() - 1],
            layered: true,
        }
    })
}

fn fully_connected() -> impl Strategy<Value = Topology> {
    (0..4usize, 1..7usize, any::<bool>(), any::<bool>()).prop_map(|(inputs, neurons, self_loops, bias)| {
        let d = inputs + usize::from(bias);
        Topology {
            entries: vec![
                entry("kind", string("fully-connected")),
                optional("inputs", inputs).required_if(inputs > 0),
                entry("neurons", neurons),
                optional("self_loops", self_loops).required_if(self_loops),
                optional("bias", bias).required_if(bias),
            ],
            inputs,
            d,
            n: d + neurons,
            default_outputs: 1,
            layered: false,
        }
    })
}

fn random_sparse() -> impl Strategy<Value = Topology> {
    (0..4usize, 1..8usize, any::<bool>(), any::<bool>())
        .prop_flat_map(|(inputs, neurons, self_loops, bias)| {
            let pool = inputs + neurons - usize::from(!self_loops);
            (Just((inputs, neurons, self_loops, bias)), 0..=pool)
        })
        .prop_map(|((inputs, neurons, self_loops, bias), fan_in)| {
            let d = inputs + usize::from(bias);
            Topology {
                entries: vec![
                    entry("kind", string("random-sparse")),
                    optional("inputs", inputs).required_if(inputs > 0),
                    entry("neurons", neurons),
                    entry("fan_in", fan_in),
                    optional("self_loops", self_loops).required_if(self_loops),
                    optional("bias", bias).required_if(bias),
                ],
                inputs,
                d,
                n: d + neurons,
                default_outputs: 1,
                layered: false,
            }
        })
}

fn explicit_edges() -> impl Strategy<Value = Topology> {
    (0..3usize, 1..7usize, any::<bool>())
        .prop_flat_map(|(inputs, neurons, bias)| {
            let d = inputs + usize::from(bias);
            let n = d + neurons;
            (Just((inputs, neurons, bias)), prop::collection::vec((0..n, d..n), 0..12))
        })
        .prop_map(|((inputs, neurons, bias), mut edges)| {
            // No duplicate, and no explicit edge from the bias neuron, which `bias` connects.
            edges.sort_unstable();
            edges.dedup();
            edges.retain(|&(j, _)| !(bias && j == inputs));
            let d = inputs + usize::from(bias);
            Topology {
                entries: vec![
                    entry("kind", string("edges")),
                    optional("inputs", inputs).required_if(inputs > 0),
                    entry("neurons", neurons),
                    entry("edges", list(edges.iter().map(|&(j, i)| format!("[{j}, {i}]")))),
                    optional("bias", bias).required_if(bias),
                ],
                inputs,
                d,
                n: d + neurons,
                default_outputs: 1,
                layered: false,
            }
        })
}

impl Entry {
    /// Not optional after all when `cond` (the value is not the default).
    fn required_if(mut self, cond: bool) -> Entry {
        self.optional &= !cond;
        self
    }
}

/// `[network]`, valid, and its shape.
fn network() -> impl Strategy<Value = (Section, Shape)> {
    let topology = prop_oneof![layered(), fully_connected(), random_sparse(), explicit_edges()];
    let init = select(vec!["uniform", "normal", "zero"]);
    (topology, init, -4.0f32..4.0, 0..=i64::MAX)
        .prop_flat_map(|(t, init, gain, seed)| {
            let non_inputs: Vec<usize> = (t.d..t.n).collect();
            let count = non_inputs.len();
            (Just((t, init, gain, seed)), Just(non_inputs).prop_shuffle(), prop::option::of(1..=count))
        })
        .prop_map(|((t, init, gain, seed), shuffled, explicit)| {
            let mut entries = t.entries;
            let outputs = match explicit {
                Some(k) => {
                    entries.push(entry("outputs", list(&shuffled[..k])));
                    k
                }
                None => t.default_outputs,
            };
            entries.push(optional("init", string(init)).required_if(init != "uniform"));
            entries.push(optional("init_gain", float32(gain)).required_if(gain != 1.0));
            entries.push(optional("seed", seed).required_if(seed != 0));
            let shape = Shape { inputs: t.inputs, neurons: t.n - t.d, outputs, layered: t.layered };
            (section("network", entries), shape)
        })
}

/// A speed valid with `tau` (`0 < c tau <= 2`, with room for f32 rounding).
fn speed(tau: f32) -> impl Strategy<Value = f32> {
    1e-3f32..(1.99 / tau)
}

/// `[params]` and maybe `[sweep]`, valid for `neurons` non-input neurons.
fn params(neurons: usize) -> impl Strategy<Value = Vec<Section>> {
    let policy = prop_oneof![
        Just(("hamilton", None)),
        Just(("reverse-costate", None)),
        Just(("hsf-every-step", None)),
        (1e-3f64..100.0).prop_map(|f| ("hsf", Some(("hsf_frequency", f)))),
        (1e-3f64..1e3).prop_map(|r| ("hsf-ball", Some(("hsf_radius", r)))),
    ];
    let activation = select(vec!["tanh", "logistic", "identity"]);
    (1e-4f32..1.0, prop_oneof![Just(0.0f32), 0.0f32..1e6], 1e-6f32..1e6, 0.0f32..100.0, 0.0f32..100.0)
        .prop_flat_map(move |(tau, q, r, r_w, theta)| {
            let c = prop_oneof![
                speed(tau).prop_map(float32),
                prop::collection::vec(speed(tau), neurons).prop_map(|cs| list(cs.into_iter().map(float32))),
            ];
            // At most 2 values per axis: 32 replicas, well within the budget.
            let axis = |values: BoxedStrategy<f32>| prop::option::of(prop::collection::vec(values, 1..=2));
            let sweep = (
                axis((0.0f32..1e4).boxed()),
                axis((1e-3f32..1e3).boxed()),
                axis((0.0f32..10.0).boxed()),
                axis((0.0f32..10.0).boxed()),
                axis(speed(tau).boxed()),
            );
            (Just((tau, q, r, r_w, theta)), c, activation.clone(), policy.clone(), any::<bool>(), sweep)
        })
        .prop_map(|((tau, q, r, r_w, theta), c, activation, (policy, frequency), learning, sweep)| {
            let mut entries = vec![
                entry("c", c),
                entry("tau", float32(tau)),
                entry("q", float32(q)),
                entry("r", float32(r)),
                optional("r_w", float32(r_w)).required_if(r_w != 0.0),
                optional("theta", float32(theta)).required_if(theta != 0.0),
                optional("activation", string(activation)).required_if(activation != "tanh"),
                optional("policy", string(policy)).required_if(policy != "reverse-costate"),
                optional("learning", learning).required_if(!learning),
            ];
            if let Some((key, v)) = frequency {
                entries.push(entry(key, float(v)));
            }
            let mut sections = vec![section("params", entries)];
            let (sq, sr, srw, stheta, sc) = sweep;
            let axes: Vec<Entry> = [("q", sq), ("r", sr), ("r_w", srw), ("theta", stheta), ("c", sc)]
                .into_iter()
                .filter_map(|(key, values)| values.map(|v| entry(key, list(v.into_iter().map(float32)))))
                .collect();
            if !axes.is_empty() {
                sections.push(section("sweep", axes));
            }
            sections
        })
}

/// A stream of `channels` channels under `[name]`: constant, sinusoid, patched cosines or a
/// sequence (one channel), or the data set's (`data`).
fn stream(name: &'static str, channels: usize, data: bool) -> BoxedStrategy<Section> {
    let constant = prop::collection::vec(-1e3f32..1e3, channels).prop_map(move |v| {
        section(name, vec![entry("kind", string("constant")), entry("values", list(v.into_iter().map(float32)))])
    });
    let sinusoid = (-1e3f64..1e3, -10.0f64..10.0, -10.0f64..10.0, -10.0f64..10.0, -1e3f64..1e3).prop_map(
        move |(amplitude, frequency, phase, phase_step, offset)| {
            section(
                name,
                vec![
                    entry("kind", string("sinusoid")),
                    optional("channels", channels).required_if(channels != 1),
                    entry("amplitude", float(amplitude)),
                    entry("frequency", float(frequency)),
                    optional("phase", float(phase)),
                    optional("phase_step", float(phase_step)),
                    optional("offset", float(offset)),
                ],
            )
        },
    );
    let patched = (0..=i64::MAX, 1e-2f64..50.0, 1e-2f64..50.0).prop_map(move |(seed, a, b)| {
        section(
            name,
            vec![
                entry("kind", string("patched-cosines")),
                optional("seed", seed),
                entry("min_len", float(a.min(b))),
                entry("max_len", float(a.max(b))),
            ],
        )
    });
    // A sequence from each source, with the keys that source uses (a Mackey-Glass `dt` is a
    // multiple of its integration step, 0.01).
    let sequence = (0..3usize, 0..=i64::MAX, 1..50u64, 1..=200u32, 1e-2f64..1.0, 1e-2f64..50.0, 1e-2f64..50.0)
        .prop_map(move |(source, seed, hold, mg_steps, dt, a, b)| {
            let mut entries = vec![
                entry("kind", string("sequence")),
                entry("source", string(["mackey-glass", "random", "patched-cosines"][source])),
                optional("seed", seed),
                optional("hold", hold),
            ];
            match source {
                0 => entries.push(optional("dt", float(mg_steps as f64 * 0.01))),
                2 => entries.extend([
                    optional("dt", float(dt)),
                    entry("min_len", float(a.min(b))),
                    entry("max_len", float(a.max(b))),
                ]),
                _ => {}
            }
            section(name, entries)
        });
    match (data, channels) {
        (true, _) => Just(section(name, vec![entry("kind", string("data"))])).boxed(),
        (false, 1) => prop_oneof![constant, sinusoid, patched, sequence].boxed(),
        (false, _) => prop_oneof![constant, sinusoid].boxed(),
    }
}

/// `[data]` with `hold` steps per sample.
fn data_section(hold: u64) -> impl Strategy<Value = Section> {
    let normalize = prop_oneof![
        Just(("none", None)),
        Just(("max-abs", None)),
        Just(("z-score", None)),
        (-1e3f32..1e3, 1e-2f32..1e3).prop_map(|(lo, width)| ("range", Some((lo, lo + width)))),
    ];
    let order = select(vec!["sequential", "shuffled"]);
    ("[a-z]{1,8}\\.csv(\\.gz)?", -4isize..4, normalize, order, 0..=i64::MAX, -2.0f32..2.0, -2.0f32..2.0).prop_map(
        move |(path, label, (normalize, range), order, shuffle, on, off)| {
            let mut entries = vec![
                entry("path", string(&path)),
                optional("label_column", label).required_if(label != -1),
                optional("normalize", string(normalize)).required_if(normalize != "max-abs"),
                optional("hold", hold).required_if(hold != 10),
                optional("order", string(order)).required_if(order != "sequential"),
                optional("shuffle_seed", shuffle),
                entry("target_on", float32(on)),
                entry("target_off", float32(off)),
            ];
            if let Some((lo, hi)) = range {
                entries.push(entry("normalize_range", list([float32(lo), float32(hi)])));
            }
            section("data", entries)
        },
    )
}

/// `[run]`: `steps`, or `passes` over a data set.
fn run_section(data: bool) -> impl Strategy<Value = Section> {
    let checkpoint_every = prop::option::of(prop_oneof![
        (1..=i64::MAX).prop_map(|k| k.to_string()),
        (1e-2f64..1e3, select(vec!["s", "min", "h", " s", " min", " h"]))
            .prop_map(|(v, unit)| string(&format!("{v}{unit}"))),
    ]);
    let length = if data {
        prop_oneof![(1..2000u64).prop_map(|s| entry("steps", s)), (1..5u64).prop_map(|p| entry("passes", p))].boxed()
    } else {
        (1..2000u64).prop_map(|s| entry("steps", s)).boxed()
    };
    let record_every = if data { Just(1u64).boxed() } else { (1..50u64).boxed() };
    (length, record_every, select(vec!["cpu", "gpu", "auto"]), 1..512usize, checkpoint_every).prop_map(
        |(length, record_every, backend, block_steps, checkpoint_every)| {
            let mut entries = vec![
                length,
                optional("record_every", record_every).required_if(record_every != 1),
                optional("backend", string(backend)).required_if(backend != "auto"),
                optional("block_steps", block_steps),
            ];
            if let Some(every) = checkpoint_every {
                entries.push(entry("checkpoint_every", every));
            }
            section("run", entries)
        },
    )
}

/// A whole experiment file valid by construction, with some of its optional lines left out.
fn valid_doc() -> impl Strategy<Value = Doc> {
    let name = "[a-z0-9_-]{0,12}(\\.[a-z0-9]{1,3})?";
    (network(), any::<bool>(), any::<bool>(), any::<bool>(), 2..20u64)
        .prop_flat_map(move |((net, shape), data_input, data_target, prequential, hold)| {
            // A data stream, if any, needs `[data]`; a prequential mask needs one too.
            let input = match (shape.inputs, data_input) {
                (0, data) => prop::option::of(stream("input", 0, data)).boxed(),
                (k, data) => stream("input", k, data).prop_map(Some).boxed(),
            };
            let target = stream("target", shape.outputs, data_target);
            let sections = params(shape.neurons);
            (Just((net, shape.clone(), hold, prequential)), input, target, sections, data_section(hold)).prop_flat_map(
                move |((net, shape, hold, prequential), input, target, params, data)| {
                    let uses_data = target.entries[0].value == string("data")
                        || input.as_ref().is_some_and(|s| s.entries[0].value == string("data"));
                    let outputs = shape.outputs;
                    let mask = match (uses_data && prequential, outputs) {
                        (true, _) => (1..hold)
                            .prop_map(|h| {
                                Some(section(
                                    "mask",
                                    vec![entry("kind", string("prequential")), entry("hidden_steps", h)],
                                ))
                            })
                            .boxed(),
                        (false, k) => prop::option::of(prop::collection::vec(0..2u8, k).prop_map(|v| {
                            section("mask", vec![entry("kind", string("constant")), entry("values", list(v))])
                        }))
                        .boxed(),
                    };
                    let baseline = if uses_data && shape.layered {
                        prop::option::of((1e-4f32..1.0, 0.0f32..0.99).prop_map(|(lr, momentum)| {
                            section("baseline", vec![entry("lr", float32(lr)), optional("momentum", float32(momentum))])
                        }))
                        .boxed()
                    } else {
                        Just(None).boxed()
                    };
                    let data = if uses_data { Some(data) } else { None };
                    (
                        Just((net, input, target, params, data)),
                        mask,
                        baseline,
                        run_section(uses_data),
                        name,
                        any::<String>(),
                    )
                },
            )
        })
        .prop_map(|((net, input, target, params, data), mask, baseline, run, name, description)| {
            let name = if name == "." || name == ".." { String::new() } else { name };
            let top = section("", vec![optional("name", string(&name)), optional("description", string(&description))]);
            let mut sections = vec![top, net];
            sections.extend(params);
            sections.extend(input);
            sections.push(target);
            sections.extend(mask);
            sections.extend(data);
            sections.push(run);
            sections.extend(baseline);
            Doc { sections }
        })
        .prop_flat_map(|doc| {
            let count = doc.optional_count();
            (Just(doc), prop::collection::vec(any::<bool>(), count))
        })
        .prop_map(|(doc, omit)| doc.without(&omit))
}

/// Every section and key the format knows, and one it does not.
const KEYS: &[(&str, &[&str])] = &[
    ("", &["name", "description"]),
    (
        "network",
        &[
            "kind",
            "sizes",
            "inputs",
            "neurons",
            "self_loops",
            "fan_in",
            "edges",
            "bias",
            "outputs",
            "init",
            "init_gain",
            "seed",
        ],
    ),
    (
        "params",
        &["c", "tau", "q", "r", "r_w", "theta", "activation", "policy", "hsf_frequency", "hsf_radius", "learning"],
    ),
    (
        "input",
        &[
            "kind",
            "values",
            "channels",
            "amplitude",
            "frequency",
            "phase",
            "phase_step",
            "offset",
            "seed",
            "min_len",
            "max_len",
            "source",
            "hold",
            "dt",
            "shift",
        ],
    ),
    (
        "target",
        &[
            "kind",
            "values",
            "channels",
            "amplitude",
            "frequency",
            "phase",
            "phase_step",
            "offset",
            "seed",
            "min_len",
            "max_len",
            "source",
            "hold",
            "dt",
            "shift",
        ],
    ),
    ("mask", &["kind", "values", "hidden_steps"]),
    (
        "data",
        &[
            "path",
            "label_column",
            "normalize",
            "normalize_range",
            "hold",
            "order",
            "shuffle_seed",
            "target_on",
            "target_off",
        ],
    ),
    ("run", &["steps", "passes", "record_every", "backend", "block_steps", "checkpoint_every"]),
    ("sweep", &["q", "r", "r_w", "theta", "c"]),
    ("baseline", &["lr", "momentum"]),
    ("speed", &["speed"]),
];

/// Values at and past the edges: zeros, negatives, NaN, infinities, 1e300, integers past
/// every width, empty strings and arrays, wrong types, every enum name.
const ODD_VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "-1",
    "-0.0",
    "0.5",
    "3",
    "255",
    "65536",
    "4294967295",
    "4294967296",
    "1000000000",
    "9223372036854775807",
    "-9223372036854775808",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "1e300",
    "-1e300",
    "1e-300",
    "3.4028235e38",
    "3.5e38",
    "1e-45",
    "\"\"",
    "\" \"",
    "\"x\"",
    "\"..\"",
    "\"/\"",
    "\"a/b\"",
    "\"\\u0000\"",
    "\"\\u00e9\"",
    "\"10min\"",
    "\"0s\"",
    "\"-5s\"",
    "\"1e400s\"",
    "\"nan h\"",
    "\"inf min\"",
    "\"9e18 h\"",
    "\"1e-300 s\"",
    "true",
    "false",
    "[]",
    "[[]]",
    "[0]",
    "[-1]",
    "[1e300]",
    "[nan]",
    "[inf, -inf]",
    "[0, 0]",
    "[1, 0]",
    "[[0, 1]]",
    "[[0, 1], [1, 2, 3]]",
    "[[9223372036854775807, 0]]",
    "[[0, 9223372036854775807]]",
    "[4294967296, 1]",
    "[1, 1, 1]",
    "[9223372036854775807, 9223372036854775807]",
    "[2, 9223372036854775807]",
    "[0, 9223372036854775807]",
    "[1, 18446744073709551615]",
    "[65536, 65536]",
    "{}",
    "{ kind = \"data\" }",
    "1979-05-27",
    "07:32:00",
    "\"layered\"",
    "\"fully-connected\"",
    "\"random-sparse\"",
    "\"edges\"",
    "\"constant\"",
    "\"sinusoid\"",
    "\"patched-cosines\"",
    "\"data\"",
    "\"prequential\"",
    "\"hsf\"",
    "\"hsf-ball\"",
    "\"range\"",
    "\"gpu\"",
    "\"normal\"",
    "\"zero\"",
];

/// An odd value: one of [`ODD_VALUES`], or any integer, float, string or small list.
fn odd_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(ODD_VALUES).prop_map(String::from),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => any::<f64>().prop_map(float),
        1 => any::<String>().prop_map(|s| string(&s)),
        1 => prop::collection::vec(0..100_000i64, 0..6).prop_map(list),
    ]
}

/// One change to a file, line by line.
#[derive(Clone, Debug)]
enum Edit {
    /// A line's value replaced.
    Value(Index, String),
    /// A line removed.
    Delete(Index),
    /// A line written twice.
    Duplicate(Index),
    /// A key of the format (or an unknown one) added to a section, maybe not its own.
    Add(Index, Index, String),
    /// A section removed.
    DeleteSection(Index),
    /// A section written twice.
    DuplicateSection(Index),
    /// A section under another name of the format.
    RenameSection(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        // Written twice, a key or a section is a syntax error: rarer, so that most files get
        // past the syntax.
        12 => (any::<Index>(), odd_value()).prop_map(|(at, v)| Edit::Value(at, v)),
        5 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Duplicate),
        6 => (any::<Index>(), any::<Index>(), odd_value()).prop_map(|(s, k, v)| Edit::Add(s, k, v)),
        2 => any::<Index>().prop_map(Edit::DeleteSection),
        1 => any::<Index>().prop_map(Edit::DuplicateSection),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(s, to)| Edit::RenameSection(s, to)),
    ]
}

impl Doc {
    /// `(section, line)` of the `at`-th line over all sections, if there is any line.
    fn line(&self, at: &Index) -> Option<(usize, usize)> {
        let all: Vec<(usize, usize)> =
            self.sections.iter().enumerate().flat_map(|(s, sec)| (0..sec.entries.len()).map(move |k| (s, k))).collect();
        (!all.is_empty()).then(|| all[at.index(all.len())])
    }

    fn apply(&mut self, edit: &Edit) {
        let sections = self.sections.len();
        match edit {
            Edit::Value(at, v) => {
                if let Some((s, k)) = self.line(at) {
                    self.sections[s].entries[k].value = v.clone();
                }
            }
            Edit::Delete(at) => {
                if let Some((s, k)) = self.line(at) {
                    self.sections[s].entries.remove(k);
                }
            }
            Edit::Duplicate(at) => {
                if let Some((s, k)) = self.line(at) {
                    let e = self.sections[s].entries[k].clone();
                    self.sections[s].entries.insert(k, e);
                }
            }
            Edit::Add(s, key, v) if sections > 0 => {
                let sec = &mut self.sections[s.index(sections)];
                let known = KEYS.iter().find(|(name, _)| *name == sec.name).map_or(&["speed"][..], |(_, k)| k);
                // Mostly one of the section's own keys it does not have yet (a key written twice
                // is a syntax error, which `Duplicate` covers); sometimes another section's.
                let missing: Vec<&str> =
                    known.iter().copied().filter(|k| !sec.entries.iter().any(|e| e.key == *k)).collect();
                let all: Vec<&str> = KEYS.iter().flat_map(|(_, k)| k.iter().copied()).collect();
                let pick = key.index(missing.len() + all.len() / 16);
                let key = missing.get(pick).copied().unwrap_or_else(|| all[key.index(all.len())]);
                sec.entries.push(entry(key, v));
            }
            Edit::DeleteSection(s) if sections > 0 => {
                self.sections.remove(s.index(sections));
            }
            Edit::DuplicateSection(s) if sections > 0 => {
                let sec = self.sections[s.index(sections)].clone();
                self.sections.push(sec);
            }
            Edit::RenameSection(s, to) if sections > 0 => {
                let names: Vec<&str> = KEYS.iter().map(|(name, _)| *name).filter(|n| !n.is_empty()).collect();
                self.sections[s.index(sections)].name = names[to.index(names.len())].to_string();
            }
            _ => {}
        }
    }
}

/// The example files shipped with the crate.
const EXAMPLES: [&str; 9] = [
    include_str!("../../examples/configs/digits-online.toml"),
    include_str!("../../examples/configs/fig1-sinusoid-q10.toml"),
    include_str!("../../examples/configs/fig2-sinusoid-q1000.toml"),
    include_str!("../../examples/configs/fig3-patched-q100.toml"),
    include_str!("../../examples/configs/sweep-64x64.toml"),
    include_str!("../../examples/configs/sweep-q-r.toml"),
    include_str!("../../examples/configs/mackey-glass.toml"),
    include_str!("../../examples/configs/delayed-recall.toml"),
    include_str!("../../examples/configs/patched-cosines-predict.toml"),
];

/// Bytes that matter to TOML and to the format, spliced into files.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"=",
    b"\"",
    b"'''",
    b"\"\"\"",
    b"\n",
    b"\r\n",
    b"#",
    b",",
    b".",
    b"{",
    b"}",
    b"\\",
    b"\\u",
    b"\\U0010FFFF",
    b"nan",
    b"inf",
    b"-",
    b"1e300",
    b"9223372036854775807",
    b"99999999999999999999",
    b"0x",
    b"0",
    b"\xff",
    b"\xe9",
    b"\x00",
];

/// One change to a file, byte by byte.
#[derive(Clone, Debug)]
enum ByteEdit {
    Flip(Index, u8),
    Set(Index, u8),
    Remove(Index, usize),
    Insert(Index, Vec<u8>),
    Token(Index, Index),
    Repeat(Index, usize, usize),
    Truncate(Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| ByteEdit::Flip(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| ByteEdit::Set(at, b)),
        (any::<Index>(), 1..40usize).prop_map(|(at, len)| ByteEdit::Remove(at, len)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, t)| ByteEdit::Token(at, t)),
        (any::<Index>(), 1..200usize, 1..4usize).prop_map(|(at, len, times)| ByteEdit::Repeat(at, len, times)),
        any::<Index>().prop_map(ByteEdit::Truncate),
    ]
}

/// Applies `edit` to `bytes`; positions are taken modulo the length (plus one where an
/// insertion may go at the end).
fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let len = bytes.len();
    match edit {
        ByteEdit::Flip(at, bit) if len > 0 => bytes[at.index(len)] ^= 1 << bit,
        ByteEdit::Set(at, b) if len > 0 => bytes[at.index(len)] = *b,
        ByteEdit::Remove(at, n) if len > 0 => {
            let start = at.index(len);
            bytes.drain(start..(start + n).min(len));
        }
        ByteEdit::Insert(at, b) => {
            let at = at.index(len + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        ByteEdit::Token(at, t) => {
            let at = at.index(len + 1);
            bytes.splice(at..at, TOKENS[t.index(TOKENS.len())].iter().copied());
        }
        ByteEdit::Repeat(at, n, times) if len > 0 => {
            let start = at.index(len);
            let piece = bytes[start..(start + n).min(len)].to_vec();
            for _ in 0..*times {
                bytes.splice(start..start, piece.iter().copied());
            }
        }
        ByteEdit::Truncate(at) => bytes.truncate(at.index(len + 1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Checkpoints: small real ones, then corrupted.
// ---------------------------------------------------------------------------------------

/// A checkpoint of the network `toml` describes, with `replicas` replicas whose values are all
/// distinct, and the configuration of that file.
fn checkpoint_of(toml: &str, replicas: usize) -> Checkpoint {
    let exp = parse(toml).unwrap();
    let net = exp.network().unwrap();
    let (n, e) = (net.n(), net.n_edges());
    let w: Vec<f32> = (0..replicas).flat_map(|r| net.initial_weights().iter().map(move |a| a + r as f32)).collect();
    assert_eq!(w.len(), replicas * e);
    Checkpoint {
        state: State {
            step: 1234,
            replicas,
            x: (0..replicas * n).map(|k| k as f32 * 0.25 - 1.0).collect(),
            p: (0..replicas * n).map(|k| -(k as f32) * 1e-3).collect(),
            pw: w.iter().map(|a| -a * 0.5 + 1e-7).collect(),
            w,
        },
        blocks: Checkpoint::blocks_of(&net),
        n,
        t: 12.34,
        config_json: exp.to_json(),
        metadata: BTreeMap::from([("note".to_string(), "props".to_string())]),
    }
}

/// Experiment files whose networks cover the block kinds: one dense block, dense blocks with
/// the bias columns of a layered network, and a sparse block.
const CHECKPOINT_NETS: [&str; 3] = [
    include_str!("../../examples/configs/fig1-sinusoid-q10.toml"),
    "[network]\nkind = \"layered\"\nsizes = [3, 4, 2]\nbias = true\n[params]\nc = 1.0\n\
     [input]\nkind = \"constant\"\nvalues = [0.5, 0.0, -0.5]\n[target]\nkind = \"constant\"\nvalues = [0.1, 0.2]\n\
     [run]\nsteps = 10\n",
    "[network]\nkind = \"edges\"\ninputs = 1\nneurons = 4\nbias = true\n\
     edges = [[0, 2], [2, 3], [3, 4], [4, 5], [5, 2], [5, 5]]\noutputs = [5]\n\
     [input]\nkind = \"sinusoid\"\nfrequency = 0.5\n[target]\nkind = \"sinusoid\"\nfrequency = 0.1\n\
     [run]\nsteps = 10\n",
];

/// The same synapses as the checkpoint's single sparse block, in the version-1 format (its
/// six tensors, no `blocks` entry), with the synapses in reverse order.
fn version_1(ckpt: &Checkpoint) -> Vec<u8> {
    let edges: Vec<(usize, usize)> = ckpt.edges().collect();
    let e = edges.len();
    let order: Vec<usize> = (0..e).rev().collect();
    let pick = |v: &[f32]| -> Vec<u8> {
        v.chunks_exact(e).flat_map(|row| order.iter().flat_map(|&k| row[k].to_le_bytes())).collect()
    };
    let ends = |which: fn(&(usize, usize)) -> usize| -> Vec<u8> {
        order.iter().flat_map(|&k| (which(&edges[k]) as u32).to_le_bytes()).collect()
    };
    let f32s = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|a| a.to_le_bytes()).collect() };
    let s = &ckpt.state;
    let (r, n) = (s.replicas, ckpt.n);
    let tensors = [
        ("x", Dtype::F32, vec![r, n], f32s(&s.x)),
        ("p", Dtype::F32, vec![r, n], f32s(&s.p)),
        ("w", Dtype::F32, vec![r, e], pick(&s.w)),
        ("pw", Dtype::F32, vec![r, e], pick(&s.pw)),
        ("edge_src", Dtype::U32, vec![e], ends(|&(j, _)| j)),
        ("edge_dst", Dtype::U32, vec![e], ends(|&(_, i)| i)),
    ];
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, b)| (*name, TensorView::new(*dtype, shape.clone(), b).unwrap()))
        .collect();
    let meta = HashMap::from(
        [
            ("format", checkpoint::FORMAT.to_string()),
            ("version", "1".to_string()),
            ("config", ckpt.config_json.clone()),
            ("step", s.step.to_string()),
            ("t", format!("{:?}", ckpt.t)),
            ("replicas", r.to_string()),
            ("n", n.to_string()),
            ("n_edges", e.to_string()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// The checkpoint files the corruptions start from: each of [`CHECKPOINT_NETS`] with 1 to 3
/// replicas as version 2, and the sparse one as version 1.
fn fixtures() -> &'static [(Checkpoint, Vec<u8>)] {
    static FIXTURES: OnceLock<Vec<(Checkpoint, Vec<u8>)>> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let mut all: Vec<(Checkpoint, Vec<u8>)> = CHECKPOINT_NETS
            .iter()
            .enumerate()
            .map(|(k, toml)| {
                let ckpt = checkpoint_of(toml, k + 1);
                let bytes = checkpoint::to_bytes(&ckpt, "fixture").unwrap();
                (ckpt, bytes)
            })
            .collect();
        let sparse = &all[2].0;
        let v1 = version_1(sparse);
        let read = checkpoint::from_bytes(&v1, "fixture v1").unwrap();
        all.push((read, v1));
        all
    })
}

/// `(header length, header JSON)` of safetensors bytes, if they have one.
fn header(bytes: &[u8]) -> Option<(usize, serde_json::Value)> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let len = usize::try_from(len).ok().filter(|&l| l <= bytes.len() - 8)?;
    Some((len, serde_json::from_slice(&bytes[8..8 + len]).ok()?))
}

/// Values for metadata entries: numbers at the edges, empty and malformed text, other
/// formats' words, valid and invalid `blocks` lists.
const ODD_META: &[&str] = &[
    "",
    " ",
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-0",
    "+1",
    " 3",
    "0x10",
    "1.5",
    "1e400",
    "-1e400",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e-320",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "[]",
    "{}",
    "null",
    "[{}]",
    "[{\"kind\": \"dense\"}]",
    "[{\"kind\": \"dense\", \"rows\": [0, 1], \"cols\": [0, 1]}]",
    "[{\"kind\": \"dense\", \"rows\": [1, 0], \"cols\": [0, 1]}]",
    "[{\"kind\": \"dense\", \"rows\": [0, 18446744073709551615], \"cols\": [0, 18446744073709551615]}]",
    "[{\"kind\": \"dense\", \"rows\": [0, 4294967296], \"cols\": [0, 4294967296]}]",
    "[{\"kind\": \"sparse\", \"edges\": 18446744073709551615}]",
    "[{\"kind\": \"sparse\", \"edges\": 0}, {\"kind\": \"sparse\", \"edges\": 0}]",
    "[{\"kind\": \"sparse\", \"edges\": -1}]",
    "[{\"kind\": \"sparse\", \"edges\": 1.5}]",
    "[{\"kind\": \"other\"}]",
    "[{\"kind\": \"sparse\", \"edges\": 1, \"extra\": 0}]",
    "crc32:00000000",
    "crc32:",
    "crc32:ffffffffff",
    "localprop-checkpoint",
    "\u{0}",
    "é",
];

/// One change to a checkpoint file.
#[derive(Clone, Debug)]
enum Corruption {
    /// Any byte changed.
    Bytes(ByteEdit),
    /// More bytes at the end.
    Extend(Vec<u8>),
    /// The 8-byte header length overwritten.
    HeaderLength(u64),
    /// The header length moved by a little.
    HeaderLengthBy(i64),
    /// A metadata entry set (a reserved key, or an extra one).
    Meta(Index, String),
    /// A number inside a metadata entry replaced (`t`, `step`, `n`, the `blocks` ranges, the
    /// checksum's digits, the configuration's numbers).
    MetaNumber(Index, Index, String),
    /// A metadata entry removed.
    MetaDelete(Index),
    /// A metadata entry that is not a string.
    MetaNotString(Index, serde_json::Value),
    /// A tensor's dtype set.
    Dtype(Index, String),
    /// A tensor's shape set.
    TensorShape(Index, Vec<u64>),
    /// A tensor's data offsets set.
    Offsets(Index, u64, u64),
    /// A tensor removed from the header.
    TensorDelete(Index),
    /// A tensor renamed.
    TensorRename(Index, String),
}

/// Integers around the edges of every width.
fn odd_int() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..16u64,
        select(vec![
            255,
            256,
            65535,
            65536,
            u32::MAX as u64,
            1 << 32,
            (1 << 53) + 1,
            i64::MAX as u64,
            u64::MAX / 4 + 1,
            u64::MAX / 2,
            u64::MAX - 7,
            u64::MAX
        ]),
        any::<u64>(),
    ]
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let meta_keys = || any::<Index>();
    let number = prop_oneof![
        odd_int().prop_map(|v| v.to_string()),
        select(vec!["-1", "1e400", "NaN", "0.5", "-0", "1e-320", "99999999999999999999999"]).prop_map(String::from),
    ];
    let names = select(vec![
        "x",
        "p",
        "w",
        "pw",
        "edge_src",
        "edge_dst",
        "blocks.0.w",
        "blocks.0.pw",
        "blocks.0.src",
        "blocks.1.w",
        "blocks.7.dst",
        "blocks.-1.w",
        "__metadata__",
        "",
    ]);
    let dtypes = select(vec![
        "F32", "U32", "F64", "I32", "U8", "BOOL", "F16", "BF16", "I64", "U64", "F4", "F6_E2M3", "C64", "f32", "",
    ]);
    prop_oneof![
        6 => byte_edit().prop_map(Corruption::Bytes),
        1 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Corruption::Extend),
        1 => odd_int().prop_map(Corruption::HeaderLength),
        1 => (-16..16i64).prop_map(Corruption::HeaderLengthBy),
        3 => (meta_keys(), prop_oneof![select(ODD_META).prop_map(String::from), any::<String>()])
            .prop_map(|(k, v)| Corruption::Meta(k, v)),
        4 => (meta_keys(), any::<Index>(), number).prop_map(|(k, at, v)| Corruption::MetaNumber(k, at, v)),
        1 => meta_keys().prop_map(Corruption::MetaDelete),
        1 => (meta_keys(), prop_oneof![
                Just(serde_json::Value::Null),
                any::<i64>().prop_map(serde_json::Value::from),
                Just(serde_json::json!(["2"])),
            ]).prop_map(|(k, v)| Corruption::MetaNotString(k, v)),
        2 => (any::<Index>(), dtypes).prop_map(|(t, d)| Corruption::Dtype(t, d.to_string())),
        3 => (any::<Index>(), prop::collection::vec(odd_int(), 0..4)).prop_map(|(t, s)| Corruption::TensorShape(t, s)),
        2 => (any::<Index>(), odd_int(), odd_int()).prop_map(|(t, a, b)| Corruption::Offsets(t, a, b)),
        1 => any::<Index>().prop_map(Corruption::TensorDelete),
        1 => (any::<Index>(), names).prop_map(|(t, name)| Corruption::TensorRename(t, name.to_string())),
    ]
}

/// The metadata keys a corruption picks from: the reserved ones and one extra.
fn meta_key(at: &Index) -> &'static str {
    const KEYS: [&str; 11] =
        ["format", "version", "config", "step", "t", "replicas", "n", "n_edges", "blocks", "checksum", "note"];
    KEYS[at.index(KEYS.len())]
}

/// Replaces the `at`-th run of digits of `text` by `with`.
fn replace_number(text: &str, at: &Index, with: &str) -> String {
    let mut runs = Vec::new();
    let bytes = text.as_bytes();
    let mut k = 0;
    while k < bytes.len() {
        if bytes[k].is_ascii_digit() {
            let start = k;
            while k < bytes.len() && bytes[k].is_ascii_digit() {
                k += 1;
            }
            runs.push(start..k);
        } else {
            k += 1;
        }
    }
    if runs.is_empty() {
        return with.to_string();
    }
    let run = runs[at.index(runs.len())].clone();
    format!("{}{with}{}", &text[..run.start], &text[run.end..])
}

/// Applies a corruption of the header's JSON, if the header still is JSON; writes the new
/// header with its length, and the data bytes as they were.
fn edit_header(bytes: &mut Vec<u8>, edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) {
    let Some((len, serde_json::Value::Object(mut map))) = header(bytes) else { return };
    edit(&mut map);
    let text = serde_json::to_vec(&serde_json::Value::Object(map)).unwrap();
    let data = bytes.split_off(8 + len);
    bytes.clear();
    bytes.extend((text.len() as u64).to_le_bytes());
    bytes.extend(text);
    bytes.extend(data);
}

/// The names of the header's tensors, sorted.
fn tensor_names(map: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    map.keys().filter(|k| *k != "__metadata__").cloned().collect()
}

fn corrupt(bytes: &mut Vec<u8>, c: &Corruption) {
    use serde_json::Value;
    let meta = |map: &mut serde_json::Map<String, Value>| -> Option<serde_json::Map<String, Value>> {
        match map.get("__metadata__") {
            Some(Value::Object(m)) => Some(m.clone()),
            _ => None,
        }
    };
    let tensor = |map: &mut serde_json::Map<String, Value>, at: &Index| -> Option<String> {
        let names = tensor_names(map);
        (!names.is_empty()).then(|| names[at.index(names.len())].clone())
    };
    match c {
        Corruption::Bytes(edit) => apply_bytes(bytes, edit),
        Corruption::Extend(more) => bytes.extend(more),
        Corruption::HeaderLength(v) => {
            if bytes.len() >= 8 {
                bytes[..8].copy_from_slice(&v.to_le_bytes());
            }
        }
        Corruption::HeaderLengthBy(by) => {
            if bytes.len() >= 8 {
                let v = u64::from_le_bytes(bytes[..8].try_into().unwrap()).wrapping_add_signed(*by);
                bytes[..8].copy_from_slice(&v.to_le_bytes());
            }
        }
        Corruption::Meta(key, value) => edit_header(bytes, |map| {
            let mut m = meta(map).unwrap_or_default();
            m.insert(meta_key(key).into(), Value::String(value.clone()));
            map.insert("__metadata__".into(), Value::Object(m));
        }),
        Corruption::MetaNumber(key, at, with) => edit_header(bytes, |map| {
            let Some(mut m) = meta(map) else { return };
            let key = meta_key(key);
            if let Some(Value::String(old)) = m.get(key) {
                let new = replace_number(old, at, with);
                m.insert(key.into(), Value::String(new));
                map.insert("__metadata__".into(), Value::Object(m));
            }
        }),
        Corruption::MetaDelete(key) => edit_header(bytes, |map| {
            let Some(mut m) = meta(map) else { return };
            m.remove(meta_key(key));
            map.insert("__metadata__".into(), Value::Object(m));
        }),
        Corruption::MetaNotString(key, value) => edit_header(bytes, |map| {
            let mut m = meta(map).unwrap_or_default();
            m.insert(meta_key(key).into(), value.clone());
            map.insert("__metadata__".into(), Value::Object(m));
        }),
        Corruption::Dtype(at, dtype) => edit_header(bytes, |map| {
            if let Some(Value::Object(t)) = tensor(map, at).and_then(|name| map.get_mut(&name)) {
                t.insert("dtype".into(), Value::String(dtype.clone()));
            }
        }),
        Corruption::TensorShape(at, shape) => edit_header(bytes, |map| {
            if let Some(Value::Object(t)) = tensor(map, at).and_then(|name| map.get_mut(&name)) {
                t.insert("shape".into(), serde_json::json!(shape));
            }
        }),
        Corruption::Offsets(at, a, b) => edit_header(bytes, |map| {
            if let Some(Value::Object(t)) = tensor(map, at).and_then(|name| map.get_mut(&name)) {
                t.insert("data_offsets".into(), serde_json::json!([a, b]));
            }
        }),
        Corruption::TensorDelete(at) => edit_header(bytes, |map| {
            if let Some(name) = tensor(map, at) {
                map.remove(&name);
            }
        }),
        Corruption::TensorRename(at, to) => edit_header(bytes, |map| {
            if let Some(name) = tensor(map, at)
                && let Some(v) = map.remove(&name)
            {
                map.insert(to.clone(), v);
            }
        }),
    }
}

/// A checkpoint file as safetensors holds it: its metadata and its tensors `(name, dtype,
/// shape, bytes)`, to be edited and written again as a well-formed safetensors file, so that
/// the edits reach the checkpoint's own checks rather than safetensors'.
#[derive(Clone, Debug)]
struct Parts {
    meta: BTreeMap<String, String>,
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl Parts {
    fn of(bytes: &[u8]) -> Parts {
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let meta = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut tensors: Vec<_> = SafeTensors::deserialize(bytes)
            .unwrap()
            .tensors()
            .into_iter()
            .map(|(name, t)| (name, t.dtype(), t.shape().to_vec(), t.data().to_vec()))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        Parts { meta, tensors }
    }

    /// The file; with `reseal`, a `checksum` entry is computed again from the tensors as
    /// they are now (as `save` computes it), so that the other checks are reached.
    fn write(&self, reseal: bool) -> Vec<u8> {
        let mut meta: HashMap<String, String> = self.meta.clone().into_iter().collect();
        if reseal && meta.contains_key("checksum") {
            let mut sorted: Vec<_> = self.tensors.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            let mut crc = flate2::Crc::new();
            for t in sorted {
                crc.update(&t.3);
            }
            meta.insert("checksum".into(), format!("crc32:{:08x}", crc.sum()));
        }
        let views = self.tensors.iter().map(|(name, dtype, shape, b)| {
            (name.as_str(), TensorView::new(*dtype, shape.clone(), b).expect("sizes kept consistent"))
        });
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    fn tensor(&mut self, at: &Index) -> Option<&mut (String, Dtype, Vec<usize>, Vec<u8>)> {
        let len = self.tensors.len();
        (len > 0).then(|| &mut self.tensors[at.index(len)])
    }

    fn apply(&mut self, edit: &PartEdit) {
        match edit {
            PartEdit::Meta(key, value) => {
                self.meta.insert(meta_key(key).into(), value.clone());
            }
            PartEdit::MetaNumber(key, at, with) => {
                let key = meta_key(key);
                if let Some(old) = self.meta.get(key) {
                    let new = replace_number(old, at, with);
                    self.meta.insert(key.into(), new);
                }
            }
            PartEdit::MetaDelete(key) => {
                self.meta.remove(meta_key(key));
            }
            PartEdit::Value(t, at, value) => {
                if let Some((_, _, _, b)) = self.tensor(t)
                    && b.len() >= 4
                {
                    let k = at.index(b.len() / 4) * 4;
                    b[k..k + 4].copy_from_slice(&value.to_le_bytes());
                }
            }
            PartEdit::Shape(t, shape) => {
                if let Some((_, dtype, old, b)) = self.tensor(t) {
                    let len = shape.iter().product::<usize>() * dtype.bitsize() / 8;
                    *old = shape.clone();
                    resize_cycling(b, len);
                }
            }
            PartEdit::Dtype(t, to) => {
                if let Some((_, dtype, shape, b)) = self.tensor(t) {
                    let len = shape.iter().product::<usize>() * to.bitsize() / 8;
                    *dtype = *to;
                    resize_cycling(b, len);
                }
            }
            PartEdit::Drop(t) => {
                if !self.tensors.is_empty() {
                    self.tensors.remove(t.index(self.tensors.len()));
                }
            }
            PartEdit::Add(name, shape) => {
                let len = shape.iter().product::<usize>() * 4;
                self.tensors.retain(|t| t.0 != *name);
                self.tensors.push((name.clone(), Dtype::F32, shape.clone(), vec![0; len]));
            }
            PartEdit::Rename(t, name) => {
                self.tensors.retain(|t| t.0 != *name);
                if let Some(t) = self.tensor(t) {
                    t.0 = name.clone();
                }
            }
        }
    }
}

/// `bytes` cut or grown to `len`, growing by repeating them (zeros if there are none), so
/// that their floats stay finite.
fn resize_cycling(bytes: &mut Vec<u8>, len: usize) {
    let old = bytes.clone();
    bytes.resize(len, 0);
    if !old.is_empty() {
        for k in old.len()..len {
            bytes[k] = old[k % old.len()];
        }
    }
}

/// One change to a checkpoint that keeps it a well-formed safetensors file.
#[derive(Clone, Debug)]
enum PartEdit {
    Meta(Index, String),
    MetaNumber(Index, Index, String),
    MetaDelete(Index),
    /// A value (4 bytes) of a tensor set: NaN, an infinity, an index past `n`...
    Value(Index, Index, u32),
    Shape(Index, Vec<usize>),
    Dtype(Index, Dtype),
    Drop(Index),
    Add(String, Vec<usize>),
    Rename(Index, String),
}

/// Tensor names a checkpoint holds, or nearly.
fn tensor_name() -> impl Strategy<Value = String> {
    select(vec![
        "x",
        "p",
        "w",
        "pw",
        "edge_src",
        "edge_dst",
        "blocks.0.w",
        "blocks.0.pw",
        "blocks.0.src",
        "blocks.0.dst",
        "blocks.1.w",
        "blocks.1.pw",
        "blocks.2.src",
        "blocks.9.w",
        "blocks.00.w",
        "blocks.x.w",
        "",
    ])
    .prop_map(String::from)
}

fn part_edit() -> impl Strategy<Value = PartEdit> {
    let number = prop_oneof![
        3 => (0..12u64).prop_map(|v| v.to_string()),
        1 => odd_int().prop_map(|v| v.to_string()),
        1 => select(vec!["-1", "1e400", "NaN", "0.5", "-0", "1e-320"]).prop_map(String::from),
    ];
    let value = prop_oneof![
        select(vec![
            f32::NAN.to_bits(),
            f32::INFINITY.to_bits(),
            f32::NEG_INFINITY.to_bits(),
            f32::MAX.to_bits(),
            (-0.0f32).to_bits(),
            1,
            u32::MAX,
            u32::MAX - 1,
            1 << 31,
        ]),
        0..16u32,
        any::<u32>(),
    ];
    let shape = prop::collection::vec(0..7usize, 0..4);
    let dtype =
        select(vec![Dtype::F32, Dtype::U32, Dtype::I32, Dtype::F64, Dtype::I64, Dtype::U8, Dtype::F16, Dtype::BOOL]);
    prop_oneof![
        3 => (any::<Index>(), prop_oneof![select(ODD_META).prop_map(String::from), any::<String>()])
            .prop_map(|(k, v)| PartEdit::Meta(k, v)),
        4 => (any::<Index>(), any::<Index>(), number).prop_map(|(k, at, v)| PartEdit::MetaNumber(k, at, v)),
        1 => any::<Index>().prop_map(PartEdit::MetaDelete),
        4 => (any::<Index>(), any::<Index>(), value).prop_map(|(t, at, v)| PartEdit::Value(t, at, v)),
        2 => (any::<Index>(), shape.clone()).prop_map(|(t, s)| PartEdit::Shape(t, s)),
        1 => (any::<Index>(), dtype).prop_map(|(t, d)| PartEdit::Dtype(t, d)),
        1 => any::<Index>().prop_map(PartEdit::Drop),
        1 => (tensor_name(), shape).prop_map(|(name, s)| PartEdit::Add(name, s)),
        1 => (any::<Index>(), tensor_name()).prop_map(|(t, name)| PartEdit::Rename(t, name)),
    ]
}

/// What a run does with an accepted checkpoint: write it again (it must read back the same),
/// and resume from it (its configuration, then its state for the configuration's network),
/// each `Ok` or an `Err` without a panic.
fn use_accepted(ckpt: &Checkpoint) {
    let again = checkpoint::to_bytes(ckpt, "again").expect("an accepted checkpoint can be written again");
    let read = checkpoint::from_bytes(&again, "again").expect("a written checkpoint reads back");
    assert_eq!(&read, ckpt, "a written checkpoint reads back otherwise");
    small_budget();
    if let Ok(exp) = Experiment::from_json(&ckpt.config_json, "<checkpoint>")
        && let Ok(net) = exp.network()
    {
        let _ = ckpt.state_for(&net);
    }
}

// ---------------------------------------------------------------------------------------
// The properties: about 100,000 cases in all, most where the inputs vary most (edited files,
// corrupted checkpoints): about 15 s on two cores.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(5000))]

    /// Files built from the format's rules are accepted, and their configuration reads back
    /// from JSON as the same experiment.
    #[test]
    fn valid_experiment_files_are_accepted(doc in valid_doc()) {
        let text = doc.render();
        match parse(&text) {
            Ok(exp) => assert_json_round_trip(&exp, &text),
            Err(e) => panic!("a valid file is refused: {e}\n{text}"),
        }
    }

}

proptest! {
    #![proptest_config(config(25_000))]

    /// Valid files with odd values, lines and sections removed, doubled, moved or renamed:
    /// `Ok` or `Err`, never a panic; what is accepted reads back from JSON.
    #[test]
    fn edited_experiment_files_are_accepted_or_refused(
        doc in valid_doc(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let mut doc = doc;
        for e in &edits {
            doc.apply(e);
        }
        let text = doc.render();
        if let Ok(exp) = parse(&text) {
            assert_json_round_trip(&exp, &text);
        }
    }

}

proptest! {
    #![proptest_config(config(10_000))]

    /// The example files with bytes changed, removed, repeated or spliced in.
    #[test]
    fn mutated_example_files_are_accepted_or_refused(
        example in 0..EXAMPLES.len(),
        edits in prop::collection::vec(byte_edit(), 1..8),
    ) {
        let mut bytes = EXAMPLES[example].as_bytes().to_vec();
        for e in &edits {
            apply_bytes(&mut bytes, e);
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(exp) = parse(&text) {
            assert_json_round_trip(&exp, &text);
        }
    }

}

proptest! {
    #![proptest_config(config(4000))]

    /// Any text at all.
    #[test]
    fn random_text_is_accepted_or_refused(
        text in prop_oneof![
            any::<String>(),
            prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            prop::collection::vec(select(TOKENS), 0..64)
                .prop_map(|t| String::from_utf8_lossy(&t.concat()).into_owned()),
        ],
    ) {
        if let Ok(exp) = parse(&text) {
            assert_json_round_trip(&exp, &text);
        }
    }

}

proptest! {
    #![proptest_config(config(25_000))]

    /// Corrupted checkpoints: `Ok` or `Err`, never a panic; what is accepted can be written
    /// again and resumed from.
    #[test]
    fn corrupted_checkpoints_are_read_or_refused(
        fixture in any::<Index>(),
        corruptions in prop::collection::vec(corruption(), 1..4),
    ) {
        let (_, original) = &fixtures()[fixture.index(fixtures().len())];
        let mut bytes = original.clone();
        for c in &corruptions {
            corrupt(&mut bytes, c);
        }
        if let Ok(ckpt) = checkpoint::from_bytes(&bytes, "corrupted") {
            use_accepted(&ckpt);
        }
    }

    /// Well-formed safetensors files with a checkpoint's metadata, tensors, shapes, dtypes or
    /// values changed (and the checksum computed again, mostly, so that the other checks are
    /// reached): `Ok` or `Err`, never a panic; what is accepted can be written again and
    /// resumed from.
    #[test]
    fn well_formed_but_wrong_checkpoints_are_read_or_refused(
        fixture in any::<Index>(),
        edits in prop::collection::vec(part_edit(), 1..4),
        reseal in prop::bool::weighted(0.8),
    ) {
        let (_, original) = &fixtures()[fixture.index(fixtures().len())];
        let mut parts = Parts::of(original);
        for e in &edits {
            parts.apply(e);
        }
        if let Ok(ckpt) = checkpoint::from_bytes(&parts.write(reseal), "edited") {
            use_accepted(&ckpt);
        }
    }

}

proptest! {
    #![proptest_config(config(2000))]

    /// A changed bit in the tensors' bytes of a file with a checksum (every file `save`
    /// writes) is always an error: the checksum, if nothing else, catches it.
    #[test]
    fn a_changed_tensor_bit_is_an_error(fixture in any::<Index>(), at in any::<Index>(), bit in 0..8u8) {
        let with_checksum = &fixtures()[..3];
        let (_, original) = &with_checksum[fixture.index(with_checksum.len())];
        let (len, _) = header(original).unwrap();
        let data = 8 + len;
        let mut bytes = original.clone();
        bytes[data + at.index(original.len() - data)] ^= 1 << bit;
        let e = checkpoint::from_bytes(&bytes, "flipped").expect_err("a changed tensor bit is accepted");
        prop_assert!(matches!(&e, localprop::Error::Data { path, .. } if path == "flipped"), "{e}");
    }

    /// A checkpoint cut short, or with bytes after its end, is an error.
    #[test]
    fn a_truncated_or_extended_checkpoint_is_an_error(
        fixture in any::<Index>(),
        at in any::<Index>(),
        more in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let (_, original) = &fixtures()[fixture.index(fixtures().len())];
        let mut bytes = original.clone();
        if more.is_empty() {
            bytes.truncate(at.index(bytes.len()));
        } else {
            bytes.extend(&more);
        }
        prop_assert!(checkpoint::from_bytes(&bytes, "cut").is_err());
    }

    /// Random bytes, with or without a plausible header length, are an error.
    #[test]
    fn random_bytes_are_not_a_checkpoint(bytes in prop::collection::vec(any::<u8>(), 0..256), small in any::<bool>()) {
        let mut bytes = bytes;
        if small && bytes.len() >= 8 {
            let len = (bytes.len() as u64 - 8) / 2;
            bytes[..8].copy_from_slice(&len.to_le_bytes());
        }
        prop_assert!(checkpoint::from_bytes(&bytes, "random").is_err());
    }
}

// ---------------------------------------------------------------------------------------
// The fixtures themselves, and regressions.
// ---------------------------------------------------------------------------------------

#[test]
fn every_example_file_is_accepted() {
    for text in EXAMPLES {
        let exp = parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_json_round_trip(&exp, text);
    }
}

#[test]
fn the_fixture_checkpoints_read_back_as_written() {
    let all = fixtures();
    for (ckpt, bytes) in &all[..3] {
        assert_eq!(&checkpoint::from_bytes(bytes, "fixture").unwrap(), ckpt);
        use_accepted(ckpt);
    }
    // The version-1 file reads as one sparse block, and resumes in the network's order.
    let (v1, _) = &all[3];
    assert!(matches!(v1.blocks.as_slice(), [CheckpointBlock::Sparse { .. }]));
    let net = Experiment::from_json(&v1.config_json, "v1").unwrap().network().unwrap();
    assert_eq!(v1.state_for(&net).unwrap(), all[2].0.state);
}

#[test]
fn huge_networks_are_refused_by_the_budget() {
    let file = |network: &str| {
        format!("[network]\n{network}\n[target]\nkind = \"constant\"\nvalues = [0.0]\n[run]\nsteps = 10\n")
    };
    for network in [
        "kind = \"fully-connected\"\nneurons = 9223372036854775807",
        "kind = \"fully-connected\"\nneurons = 100000",
        "kind = \"fully-connected\"\ninputs = 9223372036854775807\nneurons = 9223372036854775807\nself_loops = true\nbias = true",
        "kind = \"random-sparse\"\nneurons = 1000000000\nfan_in = 1000",
        "kind = \"layered\"\nsizes = [9223372036854775807, 9223372036854775807, 1]",
        "kind = \"layered\"\nsizes = [4096, 4096, 1]",
        // No synapse, but 2^63 - 1 outputs: the trace row's size overflowed 64 bits.
        "kind = \"layered\"\nsizes = [0, 9223372036854775807]",
    ] {
        let e = parse(&file(network)).expect_err(network).to_string();
        assert!(e.contains("memory") || e.contains("64 bits") || e.contains("32-bit"), "{network}: {e}");
    }
}

/// `network.init_gain` was only checked when the init used it: `init = "zero"` with
/// `init_gain = nan` was accepted, and its JSON (NaN is written `null`) could not be read
/// back, so such a run could never be resumed.
#[test]
fn init_gain_must_be_finite_whatever_the_init() {
    let file = |gain: &str| {
        format!(
            "[network]\nkind = \"fully-connected\"\nneurons = 2\ninit = \"zero\"\ninit_gain = {gain}\n\
             [target]\nkind = \"constant\"\nvalues = [0.0]\n[run]\nsteps = 10\n"
        )
    };
    for gain in ["nan", "-nan", "inf", "-inf", "1e300"] {
        let e = parse(&file(gain)).expect_err(gain).to_string();
        assert!(e.contains("`network.init_gain`"), "{gain}: {e}");
    }
    let exp = parse(&file("-3.5")).unwrap();
    assert_json_round_trip(&exp, &file("-3.5"));
}

/// A configuration read from a checkpoint (JSON, so 64-bit counts) whose neuron count
/// overflows only once the bias is added.
#[test]
fn neuron_counts_at_the_edge_of_64_bits_are_refused() {
    let base = Experiment::from_toml(EXAMPLES[1], "fig1.toml", Path::new(".")).unwrap();
    for (kind, extra) in [("fully-connected", ""), ("random-sparse", ", \"fan_in\": 1"), ("edges", ", \"edges\": []")] {
        for self_loops in [true, false] {
            let mut json: serde_json::Value = serde_json::from_str(&base.to_json()).unwrap();
            let loops = if kind == "edges" { String::new() } else { format!(", \"self_loops\": {self_loops}") };
            let network = format!(
                "{{\"kind\": \"{kind}\", \"inputs\": {}, \"neurons\": 5, \"bias\": true{loops}{extra}}}",
                u64::MAX - 5
            );
            json["network"] = serde_json::from_str(&network).unwrap();
            small_budget();
            let e = Experiment::from_json(&json.to_string(), "<checkpoint>").expect_err(&network).to_string();
            assert!(e.contains("network"), "{network}: {e}");
        }
    }
}

/// A configuration read from a checkpoint with `run.block_steps` = 2^64 - 1: the size of the
/// stream blocks overflowed 64 bits.
#[test]
fn block_steps_at_the_edge_of_64_bits_are_refused() {
    let base = Experiment::from_toml(EXAMPLES[1], "fig1.toml", Path::new(".")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&base.to_json()).unwrap();
    json["run"]["block_steps"] = serde_json::json!(u64::MAX);
    small_budget();
    let e = Experiment::from_json(&json.to_string(), "<checkpoint>").unwrap_err().to_string();
    assert!(e.contains("(memory)") && e.contains("stream blocks"), "{e}");
}
