"""The step in JAX: `jax.jit` of a `jax.lax.scan` over a chunk of steps, the state donated
so XLA updates it in place. Runs on the default JAX device (a GPU when jax[cuda] finds one)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from common import F32, Case

# True f32 products on GPUs too (the default lets XLA use TF32 there, which fails the check).
jax.config.update("jax_default_matmul_precision", "highest")


def _matvec(w, v):
    return jnp.einsum("rij,rj->ri", w, v)


def _rmatvec(w, e):
    return jnp.einsum("rij,ri->rj", w, e)


def make_step(case: Case):
    net, prm = case.net, case.params
    d, outs = net.d, net.output_index()
    c, tau, q, r, r_w, theta = (F32(v) for v in (prm.c, prm.tau, prm.q, prm.r, prm.r_w, prm.theta))
    masks = [None if b.mask is None else jnp.asarray(b.mask) for b in net.blocks]

    def step(st, sched):
        x, p, ws, pws = st
        s, s2, u, z = sched
        x = x.at[:, :d].set(u)
        a = jnp.zeros((x.shape[0], net.n - d), jnp.float32)
        for b, w in zip(net.blocks, ws):
            a = a.at[:, b.rows[0] - d : b.rows[1] - d].add(_matvec(w, x[:, b.cols[0] : b.cols[1]]))
        sig = jnp.tanh(a)
        dsig = 1 - sig * sig
        xh, ph = x[:, d:], p[:, d:]
        e = c * dsig * ph
        back = jnp.zeros_like(x)
        for b, w in zip(net.blocks, ws):
            back = back.at[:, b.cols[0] : b.cols[1]].add(_rmatvec(w, e[:, b.rows[0] - d : b.rows[1] - d]))
        err = jnp.zeros_like(xh).at[:, outs].set(q * (xh[:, outs] - z))
        new_ws, new_pws = [], []
        for b, w, pw, m in zip(net.blocks, ws, pws, masks):
            xj = x[:, None, b.cols[0] : b.cols[1]]
            ei = e[:, b.rows[0] - d : b.rows[1] - d, None]
            pw_new = pw + tau * (s2 * (-ei * xj - r_w * w) - theta * pw)
            w_new = w + tau * (s * (-pw / r))
            if m is not None:
                pw_new, w_new = pw_new * m, w_new * m
            new_ws.append(w_new)
            new_pws.append(pw_new)
        x = x.at[:, d:].set(xh + tau * (s * (c * (sig - xh))))
        p = p.at[:, d:].set(ph + tau * (s2 * (c * ph - back[:, d:] - err) - theta * ph))
        return (x, p, tuple(new_ws), tuple(new_pws)), None

    return step


class JaxPeer:
    name = "jax"
    mem_factor = 2  # x state_bytes: w, pw and their new values (one fused update)

    def __init__(self, case: Case, state: dict, chunk: int = 256):
        self.case, self.chunk = case, chunk
        dev = jax.devices()[0]
        self.device = "cpu" if dev.platform == "cpu" else f"{dev.platform}:{dev.device_kind}"
        self.st = (
            jnp.asarray(state["x"]),
            jnp.asarray(state["p"]),
            tuple(jnp.asarray(w) for w in state["ws"]),
            tuple(jnp.asarray(w) for w in state["pws"]),
        )
        step = make_step(case)
        self._run = jax.jit(lambda st, sched: jax.lax.scan(step, st, sched)[0], donate_argnums=0)

    @staticmethod
    def free_bytes() -> int | None:
        dev = jax.devices()[0]
        if dev.platform == "cpu":
            from common import host_free_bytes

            return host_free_bytes()
        stats = dev.memory_stats() or {}
        if "bytes_limit" in stats:
            return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
        return None

    def device_schedule(self, first: int, steps: int) -> list:
        """The schedule of steps first..first+steps as device arrays, one tuple per scan of
        `chunk` steps (cut on the host: slicing a device array compiles per offset)."""
        sched = self.case.schedule(first, steps)
        return [
            tuple(jnp.asarray(sched[key][k : k + self.chunk]) for key in ("s", "s2", "u", "z"))
            for k in range(0, steps, self.chunk)
        ]

    def run(self, first: int, steps: int, sched: list | None = None):
        """Steps first..first+steps, one scan per chunk (a shorter last chunk compiles once more)."""
        for part in sched if sched is not None else self.device_schedule(first, steps):
            self.st = self._run(self.st, part)

    def sync(self):
        jax.block_until_ready(self.st)

    def state(self) -> dict:
        x, p, ws, pws = self.st
        return {
            "x": np.asarray(x),
            "p": np.asarray(p),
            "ws": [np.asarray(w) for w in ws],
            "pws": [np.asarray(w) for w in pws],
        }
