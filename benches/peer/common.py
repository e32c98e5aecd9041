"""Shared by the peers: networks of dense blocks, parameters, the benchmark cases, the
per-step schedule (signs, inputs, targets), a numpy peer, and the localprop checkpoint loader.

The step (theory.md sections 5-7; f32; every right-hand side from step-n values), for each
non-input neuron i and each synapse j -> i, all replicas at once:

    a_i   = sum_j w_ij x_j                    (input neurons: x_j = u_j(t_n), bias = 1)
    sig   = tanh(a_i),  dsig = 1 - sig^2
    e_i   = c dsig p_i
    b_j   = sum_i w_ij e_i                    (children's messages)
    x_i  <- x_i + tau (s (c (sig - x_i)))
    p_i  <- p_i + tau (s2 (c p_i - b_i - q mask_i (x_i - z_i)) - theta p_i)
    pw_ij <- pw_ij + tau (s2 (-e_i x_j - r_w w_ij) - theta pw_ij)
    w_ij <- w_ij + tau (s (-pw_ij / r))

Signs: `hsf-every-step` s = s2 = +1 on even steps, -1 on odd; `reverse-costate` s = +1,
s2 = -1; `hamilton` both +1. Input neurons keep p = 0 and x = their value at the last step.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

F32 = np.float32


# ----------------------------------------------------------------------------- networks


@dataclass
class Block:
    """Synapses from neurons cols[0]:cols[1] into neurons rows[0]:rows[1], a dense
    [rows, cols] matrix per replica; `mask` (0/1, [rows, cols]) marks the synapses that
    exist when the block is a sparse one stored densely (None: all exist)."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])

    @property
    def synapses(self) -> int:
        return int(self.mask.sum()) if self.mask is not None else self.shape[0] * self.shape[1]


@dataclass
class Net:
    """`n` neurons, the first `d` inputs (external inputs, then the bias, held at 1)."""

    n: int
    d: int
    blocks: list[Block]
    outputs: list[int]
    inputs: int = 0  # external inputs (d - 1 with a bias)

    @property
    def synapses(self) -> int:
        return sum(b.synapses for b in self.blocks)

    def output_index(self) -> slice | np.ndarray:
        """The outputs as an index into the non-input neurons: a slice when contiguous."""
        o = np.asarray(self.outputs) - self.d
        return slice(int(o[0]), int(o[-1]) + 1) if np.array_equal(o, np.arange(o[0], o[-1] + 1)) else o

    def fan_in(self) -> np.ndarray:
        f = np.zeros(self.n, np.int64)
        for b in self.blocks:
            m = b.mask if b.mask is not None else np.ones(b.shape)
            f[b.rows[0] : b.rows[1]] += m.sum(1).astype(np.int64)
        return f


def fully_connected(inputs: int, neurons: int) -> Net:
    """`inputs` external inputs and a bias feeding `neurons` tanh neurons, all-to-all with
    self-loops: one dense block [d, n) x [0, n). Output: the first non-input neuron."""
    d = inputs + 1
    n = d + neurons
    return Net(n, d, [Block((d, n), (0, n))], [d], inputs)


def layered(sizes: list[int]) -> Net:
    """Layers sizes[0] -> sizes[1] -> ..., a bias feeding every layer. Layer 1 reads the
    inputs and the bias (contiguous, one block); later layers read the previous layer (one
    block) and the bias (a [rows, 1] block). Outputs: the last layer."""
    d = sizes[0] + 1
    blocks, start_prev, start = [], 0, d
    for k, size in enumerate(sizes[1:]):
        if k == 0:
            blocks.append(Block((start, start + size), (0, d)))
        else:
            blocks.append(Block((start, start + size), (start_prev, start_prev + sizes[k])))
            blocks.append(Block((start, start + size), (d - 1, d)))
        start_prev, start = start, start + size
    return Net(start, d, blocks, list(range(start - sizes[-1], start)), sizes[0])


# ----------------------------------------------------------------------------- params and streams


@dataclass
class Params:
    c: float = 1.0
    tau: float = 0.1
    q: float = 1.0
    r: float = 1.0
    r_w: float = 0.0
    theta: float = 0.0
    policy: str = "reverse-costate"

    def signs(self, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, s2) of each step index."""
        one = np.ones(len(steps), F32)
        if self.policy == "hsf-every-step":
            s = np.where(steps % 2 == 0, 1.0, -1.0).astype(F32)
            return s, s.copy()
        if self.policy == "reverse-costate":
            return one, -one
        if self.policy == "hamilton":
            return one, one.copy()
        raise ValueError(f"policy {self.policy!r} is not supported by the peers")


@dataclass
class Stream:
    """`offset + amplitude sin(2 pi frequency t + phase + k phase_step)` on channel k
    (localprop's `sinusoid`, computed in f64 and rounded to f32), or fixed `values`."""

    channels: int = 1
    amplitude: float = 1.0
    frequency: float = 0.0
    phase: float = 0.0
    phase_step: float = 0.0
    offset: float = 0.0
    values: np.ndarray | None = None

    def at(self, t: np.ndarray) -> np.ndarray:
        """[len(t), channels] f32."""
        if self.values is not None:
            return np.broadcast_to(np.asarray(self.values, F32), (len(t), self.channels)).copy()
        k = np.arange(self.channels)
        arg = 2 * math.pi * self.frequency * t[:, None] + self.phase + k[None, :] * self.phase_step
        return (self.offset + self.amplitude * np.sin(arg)).astype(F32)


@dataclass
class Case:
    name: str
    net: Net
    params: Params
    replicas: int
    target: Stream
    input: Stream | None = None
    steps: int = 100  # timed steps (full mode)
    quick_steps: int | None = None  # timed steps with --quick (None: not in --quick)

    def schedule(self, first: int, steps: int) -> dict[str, np.ndarray]:
        """Per step of first..first+steps: s, s2 [steps]; u [steps, d] (inputs, then bias 1);
        z [steps, n_out]. Time t = step * tau with tau the decimal of the f32 (as localprop)."""
        idx = np.arange(first, first + steps, dtype=np.int64)
        t = idx * float(str(F32(self.params.tau)))
        s, s2 = self.params.signs(idx)
        u = np.ones((steps, self.net.d), F32)
        if self.input is not None:
            u[:, : self.net.inputs] = self.input.at(t)
        return {"s": s, "s2": s2, "u": u, "z": self.target.at(t)}

    def state_bytes(self) -> int:
        """Bytes of x, p, w, pw (w, pw as stored by the peers: whole blocks)."""
        return 4 * self.replicas * (2 * sum(b.shape[0] * b.shape[1] for b in self.net.blocks) + 2 * self.net.n)


def init_state(case: Case, seed: int = 1) -> dict:
    """x = 0 (inputs 1 for the bias), p = 0, w ~ U(+-1/sqrt(fan_in)) shared by all replicas,
    pw = 0. Returns numpy arrays: x, p [R, n]; ws, pws lists of [R, rows, cols]."""
    net, R = case.net, case.replicas
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(np.maximum(net.fan_in(), 1))
    ws, pws = [], []
    for b in net.blocks:
        w = rng.uniform(-1, 1, b.shape).astype(F32) * bound[b.rows[0] : b.rows[1], None].astype(F32)
        if b.mask is not None:
            w *= b.mask
        ws.append(np.ascontiguousarray(np.broadcast_to(w, (R, *b.shape))))
        pws.append(np.zeros((R, *b.shape), F32))
    x = np.zeros((R, net.n), F32)
    x[:, net.d - 1] = 1.0
    return {"x": x, "p": np.zeros((R, net.n), F32), "ws": ws, "pws": pws}


# ----------------------------------------------------------------------------- the cases

PAPER = Params(c=50.0, tau=0.01, q=10.0, r=0.1, r_w=2.0, theta=1.0, policy="hsf-every-step")
FC = Params(c=1.0, tau=0.1, q=1.0, r=1.0, r_w=1e-3, theta=1.0, policy="reverse-costate")
LAYERED = Params(c=10.0, tau=0.1, q=1.0, r=1.0, r_w=0.0, theta=5.0, policy="reverse-costate")
SINE = Stream(frequency=0.1)


def paper_net(replicas: int, steps: int, quick_steps: int | None) -> Case:
    net = fully_connected(0, 5)
    return Case(f"paper-net-x{replicas}", net, PAPER, replicas, SINE, None, steps, quick_steps)


def fc(neurons: int, steps: int, quick_steps: int | None) -> Case:
    return Case(f"fc-{neurons}", fully_connected(0, neurons), FC, 1, SINE, None, steps, quick_steps)


def layered_case(steps: int, quick_steps: int | None) -> Case:
    sizes = [784, 1024, 1024, 10]
    rng = np.random.default_rng(7)
    z = np.full(10, -0.8, F32)
    z[3] = 0.8
    inp = Stream(channels=784, values=rng.uniform(0, 1, 784).astype(F32))
    name = "layered-" + "-".join(map(str, sizes))
    return Case(name, layered(sizes), LAYERED, 1, Stream(channels=10, values=z), inp, steps, quick_steps)


def bench_cases(replicas=(1, 4096, 65536), sizes=(1024, 2048, 4096, 8192, 16384)) -> list[Case]:
    """The benchmark cases with their default step counts (full, --quick)."""
    out = []
    for r in replicas:
        out.append(
            paper_net(r, steps={1: 20000, 4096: 2000}.get(r, 200), quick_steps={1: 2000, 4096: 200, 65536: 20}.get(r))
        )
    for n in sizes:
        out.append(fc(n, steps=max(20, 2**30 // (n * n)), quick_steps={1024: 50, 2048: 20}.get(n)))
    out.append(layered_case(steps=200, quick_steps=20))
    return out


# ----------------------------------------------------------------------------- memory


def fits(need: int, free: int | None) -> bool:
    return free is None or need <= free


def host_free_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ----------------------------------------------------------------------------- numpy peer


def _matvec(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sum_j w[r, i, j] v[r, j] -> [R, rows]."""
    if w.shape[0] == 1:
        return (w[0] @ v[0])[None]
    return np.einsum("rij,rj->ri", w, v)


def _rmatvec(w: np.ndarray, e: np.ndarray) -> np.ndarray:
    """sum_i w[r, i, j] e[r, i] -> [R, cols]."""
    if w.shape[0] == 1:
        return (e[0] @ w[0])[None]
    return np.einsum("rij,ri->rj", w, e)


class NumpyPeer:
    """The step written with numpy on the host, in localprop's operation order for every
    per-neuron and per-synapse update (only the sums' order differs); w and pw are updated
    in place through two scratch arrays per block (a fresh array per operation would cost a
    page-faulting allocation each on big blocks)."""

    name = "numpy"
    device = "cpu"
    mem_factor = 2  # x state_bytes (w and pw): the two scratch arrays

    def __init__(self, case: Case, state: dict):
        self.case = case
        self.st = {k: (v.copy() if k in ("x", "p") else [a.copy() for a in v]) for k, v in state.items()}
        self.scratch = [(np.empty_like(w), np.empty_like(w)) for w in self.st["ws"]]
        self.outputs_trace: list[np.ndarray] = []
        self.record = False

    @staticmethod
    def free_bytes() -> int | None:
        return host_free_bytes()

    def device_schedule(self, first: int, steps: int) -> dict:
        return self.case.schedule(first, steps)

    def run(self, first: int, steps: int, sched: dict | None = None):
        sched = sched if sched is not None else self.case.schedule(first, steps)
        for k in range(steps):
            self.step(sched["s"][k], sched["s2"][k], sched["u"][k], sched["z"][k])

    def step(self, s, s2, u, z):
        net, prm, st = self.case.net, self.case.params, self.st
        d = net.d
        c, tau, q, r, r_w, theta = (F32(v) for v in (prm.c, prm.tau, prm.q, prm.r, prm.r_w, prm.theta))
        x, p = st["x"], st["p"]
        x[:, :d] = u
        if self.record:
            self.outputs_trace.append(x[:, net.outputs].copy())
        a = np.zeros((x.shape[0], net.n - d), F32)
        for b, w in zip(net.blocks, st["ws"]):
            a[:, b.rows[0] - d : b.rows[1] - d] += _matvec(w, x[:, b.cols[0] : b.cols[1]])
        sig = np.tanh(a)
        dsig = 1 - sig * sig
        xh, ph = x[:, d:], p[:, d:]
        e = c * dsig * ph
        back = np.zeros_like(x)
        for b, w in zip(net.blocks, st["ws"]):
            back[:, b.cols[0] : b.cols[1]] += _rmatvec(w, e[:, b.rows[0] - d : b.rows[1] - d])
        err = np.zeros_like(xh)
        o = net.output_index()
        err[:, o] = q * (xh[:, o] - z)
        for b, w, pw, (g, h) in zip(net.blocks, st["ws"], st["pws"], self.scratch):
            xj = x[:, None, b.cols[0] : b.cols[1]]
            ei = e[:, b.rows[0] - d : b.rows[1] - d, None]
            # g = tau (s2 (-e_i x_j - r_w w) - theta pw), h = tau (s (-pw / r)), both from step n
            np.multiply(ei, xj, out=g)
            np.negative(g, out=g)
            g -= np.multiply(w, r_w, out=h)
            g *= s2
            g -= np.multiply(pw, theta, out=h)
            g *= tau
            np.divide(pw, r, out=h)
            np.negative(h, out=h)
            h *= s
            h *= tau
            w += h
            pw += g
            if b.mask is not None:
                w *= b.mask
                pw *= b.mask
        x_new, p_new = x.copy(), p.copy()
        x_new[:, d:] = xh + tau * (s * (c * (sig - xh)))
        p_new[:, d:] = ph + tau * (s2 * (c * ph - back[:, d:] - err) - theta * ph)
        st["x"], st["p"] = x_new, p_new

    def sync(self):
        pass

    def state(self) -> dict:
        return self.st


# ----------------------------------------------------------------------------- checkpoints


def load_checkpoint(path: str) -> dict:
    """A localprop checkpoint (version 1 or 2) as: step, t, config (dict), n, replicas,
    x, p [R, n]; W, PW [R, n, n] dense (W[r, i, j] = weight of j -> i); edge mask [n, n]
    (bool); blocks (list of Block: the file's blocks for version 2, for version 1 the
    bounding box of the edges, with a mask when not all of it is edges)."""
    from safetensors import safe_open

    with safe_open(path, "np") as f:
        meta = f.metadata()
        t = {k: f.get_tensor(k) for k in f.keys()}
    if "checksum" in meta:  # CRC-32 of every tensor's bytes, tensors in name order
        import zlib

        crc = 0
        for name in sorted(t):
            crc = zlib.crc32(t[name].tobytes(), crc)
        if meta["checksum"] != f"crc32:{crc:08x}":
            raise ValueError(f"{path}: checksum {meta['checksum']}, the tensors give crc32:{crc:08x}")
    version = meta.get("version")
    x, p = t["x"].astype(F32), t["p"].astype(F32)
    R, n = x.shape
    W = np.zeros((R, n, n), F32)
    PW = np.zeros((R, n, n), F32)
    edge = np.zeros((n, n), bool)
    blocks: list[Block] = []
    if version == "1":
        src, dst = t["edge_src"].astype(np.int64), t["edge_dst"].astype(np.int64)
        W[:, dst, src], PW[:, dst, src] = t["w"], t["pw"]
        edge[dst, src] = True
        if len(src):
            rows, cols = (int(dst.min()), int(dst.max()) + 1), (int(src.min()), int(src.max()) + 1)
            m = edge[rows[0] : rows[1], cols[0] : cols[1]]
            blocks.append(Block(rows, cols, None if m.all() else m.astype(F32)))
    elif version == "2":
        for k, spec in enumerate(json.loads(meta["blocks"])):
            w, pw = t[f"blocks.{k}.w"], t[f"blocks.{k}.pw"]
            if spec["kind"] == "dense":
                (r0, r1), (c0, c1) = spec["rows"], spec["cols"]
                W[:, r0:r1, c0:c1], PW[:, r0:r1, c0:c1] = (
                    w.reshape(R, r1 - r0, c1 - c0),
                    pw.reshape(R, r1 - r0, c1 - c0),
                )
                edge[r0:r1, c0:c1] = True
                blocks.append(Block((r0, r1), (c0, c1)))
            elif spec["kind"] == "sparse":
                src, dst = t[f"blocks.{k}.src"].astype(np.int64), t[f"blocks.{k}.dst"].astype(np.int64)
                W[:, dst, src], PW[:, dst, src] = w, pw
                edge[dst, src] = True
                rows = tuple(spec.get("rows", (int(dst.min()), int(dst.max()) + 1)))
                cols = (int(src.min()), int(src.max()) + 1)
                m = np.zeros((rows[1] - rows[0], cols[1] - cols[0]), F32)
                m[dst - rows[0], src - cols[0]] = 1
                blocks.append(Block(rows, cols, m))
            else:
                raise ValueError(f"{path}: block {k}: unknown kind {spec['kind']!r}")
    else:
        raise ValueError(f"{path}: checkpoint version {version!r}; this loader reads 1 and 2")
    return {
        "version": version,
        "step": int(meta["step"]),
        "t": float(meta["t"]),
        "config": json.loads(meta["config"]),
        "n": n,
        "replicas": R,
        "x": x,
        "p": p,
        "W": W,
        "PW": PW,
        "edge": edge,
        "blocks": blocks,
    }


def state_from_checkpoint(ck: dict, blocks: list[Block]) -> dict:
    """The peers' state (x, p, per-block ws, pws) from a loaded checkpoint."""
    ws = [np.ascontiguousarray(ck["W"][:, b.rows[0] : b.rows[1], b.cols[0] : b.cols[1]]) for b in blocks]
    pws = [np.ascontiguousarray(ck["PW"][:, b.rows[0] : b.rows[1], b.cols[0] : b.cols[1]]) for b in blocks]
    return {"x": ck["x"].copy(), "p": ck["p"].copy(), "ws": ws, "pws": pws}


def dense_from_state(net: Net, st: dict) -> tuple[np.ndarray, np.ndarray]:
    """A peer's per-block state back to dense W, PW [R, n, n]."""
    R = st["x"].shape[0]
    W = np.zeros((R, net.n, net.n), F32)
    PW = np.zeros_like(W)
    for b, w, pw in zip(net.blocks, st["ws"], st["pws"]):
        W[:, b.rows[0] : b.rows[1], b.cols[0] : b.cols[1]] += np.asarray(w)
        PW[:, b.rows[0] : b.rows[1], b.cols[0] : b.cols[1]] += np.asarray(pw)
    return W, PW
