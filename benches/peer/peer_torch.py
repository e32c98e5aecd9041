"""The step in PyTorch, eager, every state tensor updated in place (`torch-eager`); on CUDA
also replayed as a CUDA graph of `chunk` steps (`torch-cuda-graph`), whose per-step signs,
inputs and targets are read from static device buffers refilled before each replay."""

from __future__ import annotations

import numpy as np
import torch

from common import F32, Case

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.backends.cuda.matmul.allow_tf32 = False  # true f32 products (TF32 fails the check)


def _matvec(w, v):  # sum_j w[r, i, j] v[r, j]
    return torch.bmm(w, v.unsqueeze(2)).squeeze(2)


def _rmatvec(w, e):  # sum_i w[r, i, j] e[r, i]
    return torch.bmm(e.unsqueeze(1), w).squeeze(1)


class TorchPeer:
    name = "torch-eager"
    mem_factor = 3  # x state_bytes: w, pw, one temporary; a CUDA graph's capture copies w, pw

    def __init__(self, case: Case, state: dict, chunk: int = 256, graph: bool = False):
        if graph and DEVICE.type != "cuda":
            raise RuntimeError("CUDA graphs need a CUDA device")
        self.case, self.chunk, self.graph = case, chunk, graph
        self.name = "torch-cuda-graph" if graph else "torch-eager"
        self.device = f"cuda:{torch.cuda.get_device_name()}" if DEVICE.type == "cuda" else "cpu"
        t = lambda a: torch.tensor(np.asarray(a), device=DEVICE)  # a copy: the peer updates it in place  # noqa: E731
        self.x, self.p = t(state["x"]), t(state["p"])
        self.ws, self.pws = [t(w) for w in state["ws"]], [t(w) for w in state["pws"]]
        net = case.net
        o = net.output_index()  # a slice keeps index_put (and its checks) out of the graph
        self.outs = o if isinstance(o, slice) else torch.as_tensor(o, device=DEVICE)
        self.masks = [None if b.mask is None else t(b.mask) for b in net.blocks]
        self._graph = None

    @staticmethod
    def free_bytes() -> int | None:
        if DEVICE.type == "cuda":
            return torch.cuda.mem_get_info()[0]
        from common import host_free_bytes

        return host_free_bytes()

    @torch.no_grad()
    def step(self, s, s2, u, z):
        """One step, in place. s, s2: 0-d tensors; u [d]; z [n_out]."""
        net, prm, d = self.case.net, self.case.params, self.case.net.d
        c, tau, q, r, r_w, theta = (float(F32(v)) for v in (prm.c, prm.tau, prm.q, prm.r, prm.r_w, prm.theta))
        x, p = self.x, self.p
        x[:, :d] = u
        a = torch.zeros((x.shape[0], net.n - d), device=DEVICE)
        for b, w in zip(net.blocks, self.ws):
            a[:, b.rows[0] - d : b.rows[1] - d] += _matvec(w, x[:, b.cols[0] : b.cols[1]])
        sig = torch.tanh(a)
        dsig = 1 - sig * sig
        xh, ph = x[:, d:], p[:, d:]
        e = c * dsig * ph
        back = torch.zeros_like(x)
        for b, w in zip(net.blocks, self.ws):
            back[:, b.cols[0] : b.cols[1]] += _rmatvec(w, e[:, b.rows[0] - d : b.rows[1] - d])
        err = torch.zeros_like(xh)
        err[:, self.outs] = q * (xh[:, self.outs] - z)
        for b, w, pw, m in zip(net.blocks, self.ws, self.pws, self.masks):
            xj = x[:, None, b.cols[0] : b.cols[1]]
            ei = e[:, b.rows[0] - d : b.rows[1] - d, None]
            g = torch.mul(ei, xj).add_(w, alpha=r_w)  # e_i x_j + r_w w (the temporary)
            w.addcmul_(pw, s, value=-tau / r)  # w + tau s (-pw / r), from the step-n pw
            pw.mul_(1 - tau * theta).addcmul_(g, s2, value=-tau)  # pw + tau (s2 (-g) - theta pw)
            if m is not None:
                w.mul_(m)
                pw.mul_(m)
        p_new = ph + tau * (s2 * (c * ph - back[:, d:] - err) - theta * ph)
        xh.add_(tau * (s * (c * (sig - xh))))
        ph.copy_(p_new)

    def run(self, first: int, steps: int, sched: dict | None = None):
        sched = sched if sched is not None else self.device_schedule(first, steps)
        S, S2, U, Z = (sched[k] for k in ("s", "s2", "u", "z"))
        k = 0
        if self.graph:
            while steps - k >= self.chunk:
                self._replay(
                    S[k : k + self.chunk], S2[k : k + self.chunk], U[k : k + self.chunk], Z[k : k + self.chunk]
                )
                k += self.chunk
        for j in range(k, steps):
            self.step(S[j], S2[j], U[j], Z[j])

    def _replay(self, s, s2, u, z):
        if self._graph is None:
            self._bufs = [v.clone() for v in (s, s2, u, z)]
            self._capture()
        for buf, v in zip(self._bufs, (s, s2, u, z)):
            buf.copy_(v)
        self._graph.replay()

    def _capture(self):
        """Warm up on a copy of the state (capture needs the kernels loaded), then record
        `chunk` steps on the real state tensors (recording runs nothing)."""
        saved = [v.clone() for v in [self.x, self.p, *self.ws, *self.pws]]
        S, S2, U, Z = self._bufs
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for j in range(3):
                self.step(S[j % self.chunk], S2[j % self.chunk], U[j % self.chunk], Z[j % self.chunk])
        torch.cuda.current_stream().wait_stream(stream)
        for v, old in zip([self.x, self.p, *self.ws, *self.pws], saved):
            v.copy_(old)
        del saved
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            for j in range(self.chunk):
                self.step(S[j], S2[j], U[j], Z[j])

    def device_schedule(self, first: int, steps: int) -> dict:
        return {k: torch.as_tensor(v, device=DEVICE) for k, v in self.case.schedule(first, steps).items()}

    def sync(self):
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()

    def state(self) -> dict:
        n = lambda v: v.detach().cpu().numpy()  # noqa: E731
        return {"x": n(self.x), "p": n(self.p), "ws": [n(w) for w in self.ws], "pws": [n(w) for w in self.pws]}
