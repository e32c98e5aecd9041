"""The engine on a GPU (Mesa's lavapipe in CI) against the CPU. Without an adapter these tests
skip, printing why; with LOCALPROP_REQUIRE_GPU=1 they fail instead."""

import numpy as np
import pytest

import localprop as lp
from conftest import gpu_engine

#: |gpu - cpu| <= ATOL + RTOL max(|gpu|, |cpu|) over runs of many steps. Both paths evaluate
#: the same float32 expressions in the same order; they differ by WGSL's exp (a few ULP) and
#: by FMA contraction on the GPU, which contractive dynamics damp rather than amplify (the
#: bounds of the engine's tests/gpu.rs for its long runs).
ATOL, RTOL = 1e-5, 1e-4


def assert_close(what, gpu, cpu):
    gpu, cpu = np.asarray(gpu, np.float64), np.asarray(cpu, np.float64)
    assert gpu.shape == cpu.shape, what
    bad = np.flatnonzero(~(np.abs(gpu - cpu) <= ATOL + RTOL * np.maximum(np.abs(gpu), np.abs(cpu))))
    assert bad.size == 0, (
        f"{what}: GPU and CPU differ beyond atol {ATOL} rtol {RTOL}; first (index, gpu, cpu): "
        f"{[(int(i), gpu.flat[i], cpu.flat[i]) for i in bad[:5]]}"
    )


def test_gpu_tracks_like_the_cpu_with_a_callable_target():
    net, params = lp.Network.tracking(), lp.Params.tracking(100.0)
    gpu = gpu_engine(net, params)
    assert gpu.backend == "gpu" and gpu.backend_description.startswith("gpu: ")
    cpu = lp.Engine(net, params, backend="cpu")
    target = lambda step, t: np.sin(2 * np.pi * 0.1 * t)  # noqa: E731
    g, c = gpu.run(3000, targets=target), cpu.run(3000, targets=target)
    assert_close("outputs", g.outputs, c.outputs)
    assert_close("lagrangian", g.lagrangian, c.lagrangian)
    assert np.array_equal(g.targets, c.targets)
    assert_close("final w", gpu.state.w, cpu.state.w)


def test_gpu_replicas_with_inputs_and_state_round_trip_agree_with_the_cpu():
    # Reverse-costate with friction, learning on: the weights settle (contractive).
    net = lp.Network.layered([8, 16, 4], bias=True, seed=5)
    base = lp.Params(c=5.0, tau=0.1, q=1.0, r=2.0, r_w=0.01, theta=5.0)
    params = [base, base.replace(q=2.0, theta=4.0)]
    rng = np.random.default_rng(77)
    inputs = rng.uniform(-1, 1, (2, 801, 8))
    targets = rng.uniform(-0.8, 0.8, (2, 800, 4))
    gpu, cpu = gpu_engine(net, params), lp.Engine(net, params, backend="cpu")
    g = gpu.run(400, inputs=inputs[:, :401], targets=targets[:, :400])
    c = cpu.run(400, inputs=inputs[:, :401], targets=targets[:, :400])
    assert_close("loss", g.loss, c.loss)
    # The CPU's state on the GPU: the next steps from the same state.
    gpu.set_state(cpu.state)
    g = gpu.run(400, inputs=inputs[:, 400:], targets=targets[:, 400:])
    c = cpu.run(400, inputs=inputs[:, 400:], targets=targets[:, 400:])
    assert_close("outputs after set_state", g.outputs, c.outputs)
    gs, cs = gpu.state, cpu.state
    assert gs.step == cs.step == 800
    for name in ["x", "p", "w", "pw"]:
        assert_close(f"state.{name}", getattr(gs, name), getattr(cs, name))


def test_after_an_error_mid_run_on_the_gpu_set_state_rebuilds_the_engine():
    net, params = lp.Network.tracking(), lp.Params.tracking(10.0)
    gpu = gpu_engine(net, params)

    def target(step, t):
        if step == 600:
            raise RuntimeError("no target at 600")
        return np.sin(t)

    with pytest.raises(RuntimeError, match="no target at 600"):
        gpu.run(1000, targets=target)
    # A block may still be in flight: the engine refuses to run until a state is set.
    with pytest.raises(lp.LocalpropError, match=r"set_state"):
        gpu.run(10, targets=lambda s, t: np.sin(t))
    state = gpu.state
    assert state.step == gpu.step == 512
    gpu.set_state(state)
    assert gpu.backend == "gpu"
    cpu = lp.Engine(net, params, backend="cpu")
    cpu.set_state(state)
    g, c = gpu.run(500, targets=lambda s, t: np.sin(t)), cpu.run(500, targets=lambda s, t: np.sin(t))
    assert np.array_equal(g.step, np.arange(512, 1012))
    assert_close("outputs after the rebuild", g.outputs, c.outputs)
