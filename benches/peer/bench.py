"""Times the peers on the benchmark cases and prints a markdown table.

    python benches/peer/bench.py --quick                 # < 1 minute on 2 CPU cores
    python benches/peer/bench.py                         # every case (minutes to hours on a CPU)
    python benches/peer/bench.py --cases fc --sizes 1024,4096 --steps 100 --json out.json

Synapse updates/s = replicas x synapses x steps / wall seconds; neuron steps/s = replicas x
non-input neurons x steps / wall seconds. Each timed run follows a warm-up (one chunk for
JAX and CUDA graphs: it compiles the scan / records the graph; 3 steps otherwise) and ends
when the device is done.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import NumpyPeer, bench_cases, fits, init_state  # noqa: E402

PEERS = ("numpy", "jax", "torch-eager", "torch-cuda-graph")


def peer_factory(name: str):
    """(constructor(case, state, chunk), free_bytes(), mem_factor), or a reason why not."""
    if name == "numpy":
        return (lambda c, s, k: NumpyPeer(c, s)), NumpyPeer.free_bytes, NumpyPeer.mem_factor
    try:
        if name == "jax":
            from peer_jax import JaxPeer

            return (lambda c, s, k: JaxPeer(c, s, k)), JaxPeer.free_bytes, JaxPeer.mem_factor
        from peer_torch import DEVICE, TorchPeer

        if name == "torch-cuda-graph" and DEVICE.type != "cuda":
            return "no CUDA device"
        graph = name == "torch-cuda-graph"
        return (lambda c, s, k: TorchPeer(c, s, k, graph)), TorchPeer.free_bytes, TorchPeer.mem_factor
    except ImportError as e:
        return f"not installed ({e.name})"


def framework(peer: str) -> str:
    """The peer's library and its version."""
    module = {"numpy": "numpy", "jax": "jax"}.get(peer, "torch")
    return f"{module} {__import__(module).__version__}"


def time_case(case, make, steps: int, chunk: int):
    """(wall seconds for `steps` timed steps, device, finite?)."""
    runner = make(case, init_state(case), chunk)
    # Warm-up: a whole chunk where it compiles (JAX) or records (CUDA graph), else 3 steps.
    w = chunk if runner.name in ("jax", "torch-cuda-graph") else min(chunk, 3)
    warm, timed = runner.device_schedule(0, w), runner.device_schedule(w, steps)
    runner.run(0, w, warm)
    runner.sync()
    t0 = time.perf_counter()
    runner.run(w, steps, timed)
    runner.sync()
    wall = time.perf_counter() - t0
    st = runner.state()
    finite = all(bool(np.isfinite(v).all()) for v in [st["x"], st["p"], *st["ws"], *st["pws"]])
    return wall, runner.device, finite


def bench_peer(name: str, cases, args) -> list[dict]:
    """Times one peer on every case, in this process."""
    peer = peer_factory(name)
    if isinstance(peer, str):
        print(f"skip {name}: {peer}", file=sys.stderr)
        return []
    make, free_bytes, factor = peer
    rows = []
    for case in cases:
        steps = args.steps or (case.quick_steps if args.quick else case.steps)
        chunk = min(args.chunk, steps)
        steps = math.ceil(steps / chunk) * chunk  # whole chunks: nothing compiles while timed
        need, free = case.state_bytes() * factor, free_bytes()
        if not fits(need, free):
            print(
                f"skip {case.name} / {name}: needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free",
                file=sys.stderr,
            )
            continue
        wall, device, finite = min(time_case(case, make, steps, chunk) for _ in range(args.repeat))
        neurons, synapses = case.net.n - case.net.d, case.net.synapses
        rows.append(
            {
                "case": case.name,
                "peer": name,
                "device": device,
                "framework": framework(name),
                "replicas": case.replicas,
                "neurons": neurons,
                "synapses": synapses,
                "steps": steps,
                "wall_s": wall,
                "synapse_updates_per_s": case.replicas * synapses * steps / wall,
                "neuron_steps_per_s": case.replicas * neurons * steps / wall,
                "finite": finite,
                "params": vars(case.params),
            }
        )
        print(
            f"{case.name} / {name} on {device}: {steps} steps in {wall:.3f} s"
            + ("" if finite else " (state not finite!)"),
            file=sys.stderr,
        )
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small cases and few steps (< 1 min on 2 CPU cores)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma list of {PEERS}")
    ap.add_argument("--cases", default="", help="comma list of name substrings to keep (paper-net, fc-, layered)")
    ap.add_argument("--replicas", default="1,4096,65536", help="paper-net replica counts")
    ap.add_argument("--sizes", default="1024,2048,4096,8192,16384", help="fc-N neuron counts")
    ap.add_argument("--steps", type=int, help="timed steps of every case (default: per case)")
    ap.add_argument("--chunk", type=int, default=256, help="steps per JAX scan / CUDA graph (and their warm-up)")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per case and peer; the fastest counts")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--rows-out", help=argparse.SUPPRESS)  # worker mode: one peer, rows to this file
    args = ap.parse_args(argv)

    cases = bench_cases([int(v) for v in args.replicas.split(",")], [int(v) for v in args.sizes.split(",")])
    keep = [k for k in args.cases.split(",") if k]
    cases = [c for c in cases if not keep or any(k in c.name for k in keep)]
    for c in [c for c in cases if args.quick and c.quick_steps is None]:
        if not args.rows_out:
            print(f"skip {c.name}: not in --quick", file=sys.stderr)
        cases.remove(c)
    peers = [p for p in args.peers.split(",") if p]

    if args.rows_out:
        Path(args.rows_out).write_text(json.dumps(bench_peer(peers[0], cases, args)))
        return
    # One process per peer: the thread pools of numpy's BLAS, XLA and torch (which spin after
    # work) would otherwise compete for the cores and slow each other down.
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in peers:
            out = Path(tmp) / f"{p}.json"
            done = subprocess.run([sys.executable, __file__, *argv, "--peers", p, "--rows-out", str(out)])
            if done.returncode != 0 or not out.exists():
                print(f"{p}: failed ({done.returncode})", file=sys.stderr)
                continue
            rows += json.loads(out.read_text())
    order = {c.name: k for k, c in enumerate(cases)}
    rows.sort(key=lambda r: (order[r["case"]], peers.index(r["peer"])))

    print("| case | peer | device | synapse updates/s | neuron steps/s |")
    print("|---|---|---|---:|---:|")
    for r in rows:
        rate = f"{r['synapse_updates_per_s']:.3e} | {r['neuron_steps_per_s']:.3e}"
        print(f"| {r['case']} | {r['peer']} | {r['device']} | {rate} |")
    if args.json:
        host = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
        Path(args.json).write_text(json.dumps({"host": host, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
