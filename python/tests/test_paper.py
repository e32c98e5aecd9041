"""The paper's Fig. 1 experiment built in Python runs bit for bit as the command line runs
examples/configs/fig1-sinusoid-q10.toml on the CPU: the same trace, the same final state."""

import math
import os
import subprocess

import numpy as np
import pytest

import localprop as lp
from conftest import ROOT, assert_bits_equal, assert_traces_equal

FIG1 = ROOT / "examples" / "configs" / "fig1-sinusoid-q10.toml"
STEPS = 20_000


def fig1_network():
    """The file's [network], built in Python."""
    return lp.Network.fully_connected(0, 5, self_loops=True, bias=True, outputs=[1], init="uniform", init_gain=1.0, seed=1)


def fig1_params():
    """The file's [params], built in Python."""
    return lp.Params(
        c=50.0, tau=0.01, q=10.0, r=0.1, r_w=2.0, theta=1.0, activation="tanh", policy="hsf-every-step", learning=True
    )


def target(step, t):
    """The file's [target], sin(2 pi 0.1 t), evaluated as the engine's sinusoid evaluates it
    (in float64, offset + amplitude sin(2 pi f t + phase), then rounded to float32)."""
    return 0.0 + 1.0 * math.sin(2 * math.pi * 0.1 * t + 0.0)


def read_trace_csv(path):
    """trace.csv's columns by name, as float64 (its float32 values are printed shortest-exact,
    and read back exactly through float64)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return {name: data[:, k] for k, name in enumerate(header)}


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The command line's runner on the file, on the CPU."""
    out = tmp_path_factory.mktemp("fig1")
    summary = lp.run_file(FIG1, backend="cpu", out=out, quiet=True)
    return out, summary


@pytest.fixture(scope="module")
def python_run():
    """The same experiment built in Python, its target a callable."""
    engine = lp.Engine(fig1_network(), fig1_params(), backend="cpu")
    trace = engine.run(STEPS, targets=target)
    return engine, trace


def test_the_file_is_the_experiment_built_here(cli_run):
    """Guards the comparison: the checkpoint's configuration is what this test builds."""
    out, summary = cli_run
    config = lp.load_checkpoint(out / "checkpoint.safetensors").config
    assert config == summary["config"]
    net, params = config["network"], config["params"]
    assert net == {
        "kind": "fully-connected", "inputs": 0, "neurons": 5, "self_loops": True, "bias": True,
        "outputs": [1], "init": "uniform", "init_gain": 1.0, "seed": 1,
    }
    p = fig1_params()
    assert params == {
        "c": p.c, "tau": p.tau, "q": p.q, "r": p.r, "r_w": p.r_w, "theta": p.theta,
        "activation": p.activation, "policy": p.policy, "learning": p.learning,
    }
    assert config["target"] == {
        "kind": "sinusoid", "channels": 1, "amplitude": 1.0, "frequency": 0.1, "phase": 0.0, "phase_step": 0.0,
        "offset": 0.0,
    }
    assert config["run"]["steps"] == STEPS and config["run"]["record_every"] == 1
    assert summary["backend"] == "cpu" and summary["steps"] == STEPS


def test_python_engine_records_the_command_lines_trace_bit_for_bit(cli_run, python_run):
    out, _ = cli_run
    _, trace = python_run
    csv = read_trace_csv(out / "trace.csv")
    assert np.array_equal(csv["step"], trace.step.astype(np.float64))
    assert np.array_equal(csv["t"], trace.t)
    for column, values in [
        ("sign", trace.sign[:, 0]),
        ("loss", trace.loss[:, 0]),
        ("lagrangian", trace.lagrangian[:, 0]),
        ("hamiltonian", trace.hamiltonian[:, 0]),
        ("out0", trace.outputs[:, 0, 0]),
        ("target0", trace.targets[:, 0, 0]),
    ]:
        assert_bits_equal(column, csv[column].astype(np.float32), values)


def test_python_engine_ends_in_the_command_lines_checkpoint_bit_for_bit(cli_run, python_run):
    out, _ = cli_run
    engine, _ = python_run
    ckpt = lp.load_checkpoint(out / "checkpoint.safetensors")
    state = engine.state
    assert ckpt.step == state.step == STEPS
    assert ckpt.t == engine.time
    for name in ["x", "p", "w", "pw"]:
        assert_bits_equal(name, getattr(ckpt, name), getattr(state, name))
    # One dense block (the bias and 5 neurons into the 5 neurons): the network's synapses, in order.
    assert ckpt.blocks == [{"kind": "dense", "rows": (1, 6), "cols": (0, 6)}]
    assert np.array_equal(ckpt.synapses, engine.network.synapses)
    moved = ckpt.state_for(engine.network)
    assert_bits_equal("state_for(network).w", moved.w, state.w)


def test_summary_scores_are_the_python_traces(cli_run, python_run):
    _, summary = cli_run
    _, trace = python_run
    r0 = summary["replicas"][0]
    assert summary["last_recorded_step"] == int(trace.step[-1]) == STEPS - 1
    assert r0["final_loss"] == float(trace.loss[-1, 0])
    assert r0["final_lagrangian"] == float(trace.lagrangian[-1, 0])
    assert r0["final_hamiltonian"] == float(trace.hamiltonian[-1, 0])
    # The summary's NMSE is accumulated as the rows stream by (Welford), the trace's in two
    # passes: the same number to rounding.
    assert r0["nmse"][0] == pytest.approx(trace.nmse(), rel=1e-9)
    assert r0["mean_loss"] == pytest.approx(float(np.mean(trace.loss[:, 0], dtype=np.float64)), rel=1e-9)


def test_target_as_an_array_runs_as_the_callable(python_run):
    _, by_callable = python_run
    t = np.arange(STEPS) * 0.01  # the engine's t = step * tau, in float64
    targets = np.array([target(s, ts) for s, ts in zip(range(STEPS), t)])[:, None]
    engine = lp.Engine(fig1_network(), fig1_params(), backend="cpu")
    assert_traces_equal(engine.run(STEPS, targets=targets), by_callable)


@pytest.mark.skipif(not os.environ.get("LOCALPROP_CLI"), reason="LOCALPROP_CLI (the localprop binary) not set")
def test_the_localprop_binary_writes_the_same_trace(tmp_path, cli_run):
    """The command line binary of this checkout (another build of the same code; CI sets
    LOCALPROP_CLI to the one `cargo test` built) writes what the package's runner wrote."""
    out, _ = cli_run
    cmd = [os.environ["LOCALPROP_CLI"], "run", str(FIG1), "--backend", "cpu", "--quiet", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (tmp_path / "trace.csv").read_bytes() == (out / "trace.csv").read_bytes()
    a = lp.load_checkpoint(tmp_path / "checkpoint.safetensors")
    b = lp.load_checkpoint(out / "checkpoint.safetensors")
    for name in ["x", "p", "w", "pw"]:
        assert_bits_equal(name, getattr(a, name), getattr(b, name))
