"""Checks every available peer against localprop's CLI on small cases.

    python benches/peer/check.py --localprop /tmp/peer-target/release/localprop

For each case: `localprop run` for 1 step (checkpoint at step 1) and for N + 1 steps; each
peer loads the step-1 checkpoint (version 1 or 2), advances it N steps (steps 1..N, with
their signs and t = step * tau) and its final x, p, w, pw are compared with the step-(N+1)
checkpoint: max |peer - localprop| / max |localprop| per tensor must be <= 1e-5. The numpy
peer's output x_o at each step is also compared with trace.csv.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import peer_factory  # noqa: E402
from common import (  # noqa: E402
    PAPER,
    SINE,
    Case,
    Net,
    NumpyPeer,
    Params,
    Stream,
    dense_from_state,
    load_checkpoint,
    state_from_checkpoint,
)

RTOL = 1e-5  # f32 with a different summation order and tanh: a few ULP per step, 100-200 steps

PAPER_TOML = """
name = "peer-check-paper"
[network]
kind = "fully-connected"
inputs = 0
neurons = 5
self_loops = true
bias = true
outputs = [1]
seed = 1
[params]
c = 50.0
tau = 0.01
q = 10.0
r = 0.1
r_w = 2.0
theta = 1.0
policy = "hsf-every-step"
[target]
kind = "sinusoid"
frequency = 0.1
[run]
steps = 1
"""

FC64_PARAMS = Params(c=10.0, tau=0.05, q=1.0, r=1.0, r_w=0.01, theta=0.5, policy="reverse-costate")
FC64_INPUT = Stream(channels=3, amplitude=1.0, frequency=0.2, phase_step=1.0)
FC64_TOML = f"""
name = "peer-check-fc64"
[network]
kind = "fully-connected"
inputs = 3
neurons = 64
self_loops = true
bias = true
outputs = [4]
seed = 3
[params]
c = {FC64_PARAMS.c}
tau = {FC64_PARAMS.tau}
q = {FC64_PARAMS.q}
r = {FC64_PARAMS.r}
r_w = {FC64_PARAMS.r_w}
theta = {FC64_PARAMS.theta}
policy = "{FC64_PARAMS.policy}"
[input]
kind = "sinusoid"
channels = 3
frequency = {FC64_INPUT.frequency}
phase_step = {FC64_INPUT.phase_step}
[target]
kind = "sinusoid"
frequency = 0.1
[run]
steps = 1
"""

LAYERED_PARAMS = Params(c=10.0, tau=0.1, q=1.0, r=1.0, r_w=0.0, theta=5.0, policy="reverse-costate")
LAYERED_TARGET = Stream(channels=3, amplitude=0.8, frequency=0.1, phase_step=2.0)
LAYERED_TOML = f"""
name = "peer-check-layered"
[network]
kind = "layered"
sizes = [6, 16, 8, 3]
bias = true
seed = 5
[params]
c = {LAYERED_PARAMS.c}
tau = {LAYERED_PARAMS.tau}
theta = {LAYERED_PARAMS.theta}
[input]
kind = "sinusoid"
channels = 6
frequency = 0.3
phase_step = 0.7
[target]
kind = "sinusoid"
channels = 3
amplitude = {LAYERED_TARGET.amplitude}
frequency = {LAYERED_TARGET.frequency}
phase_step = {LAYERED_TARGET.phase_step}
[run]
steps = 1
"""

# name, TOML, steps N, params, input stream, target stream, inputs, outputs
CASES = [
    ("paper-net", PAPER_TOML, 200, PAPER, None, SINE, 0, [1]),
    ("fc-64-3in", FC64_TOML, 100, FC64_PARAMS, FC64_INPUT, SINE, 3, [4]),
    # Not all of its bounding box is synapses: the peers run it as one masked block.
    (
        "layered-6-16-8-3",
        LAYERED_TOML,
        100,
        LAYERED_PARAMS,
        Stream(channels=6, frequency=0.3, phase_step=0.7),
        LAYERED_TARGET,
        6,
        [31, 32, 33],
    ),
]


def localprop(binary: str, toml: Path, steps: int, out: Path) -> dict:
    cmd = [binary, "run", str(toml), "--backend", "cpu", "--steps", str(steps), "--out", str(out), "--force", "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return load_checkpoint(str(out / "checkpoint.safetensors"))


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    scale = float(np.abs(want).max())
    return float(np.abs(got - want).max()) / (scale if scale > 0 else 1.0)


def trace_outputs(path: Path, outputs: list[int], first: int, steps: int) -> np.ndarray:
    """Columns out<k> (or r0_out<k>) of output k of replica 0 at steps first..first+steps."""
    with open(path) as f:
        rows = {int(r["step"]): r for r in csv.DictReader(f)}
    cols = [f"out{k}" if f"out{k}" in rows[first] else f"r0_out{k}" for k in range(len(outputs))]
    return np.array([[float(rows[s][c]) for c in cols] for s in range(first, first + steps)], np.float32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--localprop",
        default=os.environ.get("LOCALPROP", "/tmp/peer-target/release/localprop"),
        help="the localprop binary (default: $LOCALPROP or /tmp/peer-target/release/localprop)",
    )
    ap.add_argument("--peers", default="numpy,jax,torch-eager,torch-cuda-graph")
    ap.add_argument("--chunk", type=int, default=64, help="steps per JAX scan / CUDA graph")
    args = ap.parse_args(argv)

    failed = False
    with tempfile.TemporaryDirectory(prefix="peer-check-") as tmp:
        tmp = Path(tmp)
        for name, text, steps, params, inp, target, inputs, outputs in CASES:
            toml = tmp / f"{name}.toml"
            toml.write_text(text)
            start = localprop(args.localprop, toml, 1, tmp / f"{name}-1")
            end = localprop(args.localprop, toml, steps + 1, tmp / f"{name}-end")
            assert start["step"] == 1 and end["step"] == steps + 1, (start["step"], end["step"])
            net = Net(start["n"], inputs + 1, start["blocks"], outputs, inputs)
            case = Case(name, net, params, start["replicas"], target, inp)
            print(
                f"{name}: checkpoint version {start['version']}, n = {net.n}, {net.synapses} synapses, "
                f"blocks {[(b.rows, b.cols) for b in net.blocks]}, steps 1..{steps}"
            )
            for pname in args.peers.split(","):
                peer = peer_factory(pname)
                if isinstance(peer, str):
                    print(f"  {pname:17s} skipped: {peer}")
                    continue
                runner = peer[0](case, state_from_checkpoint(start, net.blocks), args.chunk)
                if isinstance(runner, NumpyPeer):
                    runner.record = True
                runner.run(1, steps)
                runner.sync()
                st = runner.state()
                W, PW = dense_from_state(net, st)
                errs = {
                    "x": rel_err(st["x"], end["x"]),
                    "p": rel_err(st["p"], end["p"]),
                    "w": rel_err(W, end["W"]),
                    "pw": rel_err(PW, end["PW"]),
                }
                if isinstance(runner, NumpyPeer):
                    want = trace_outputs(tmp / f"{name}-end" / "trace.csv", outputs, 1, steps)
                    errs["x_o per step"] = rel_err(np.stack(runner.outputs_trace)[:, 0], want)
                worst = max(errs.values())
                failed |= not worst <= RTOL
                print(
                    f"  {pname:17s} on {runner.device:24s} max rel err {worst:.2e} "
                    f"({', '.join(f'{k} {v:.1e}' for k, v in errs.items())}) {'ok' if worst <= RTOL else 'FAIL'}"
                )
    print("all peers agree with localprop to 1e-5" if not failed else "MISMATCH")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
