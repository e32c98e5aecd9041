"""The engine from Python: streams as arrays or callables, replicas, the state, the trace."""

import threading
import time

import numpy as np
import pytest

import localprop as lp
from conftest import assert_bits_equal, assert_states_equal, assert_traces_equal

STEPS = 300


def small_net():
    """3 inputs + bias -> 8 -> 2: inputs, targets and masks all matter."""
    return lp.Network.layered([3, 8, 2], bias=True, init="normal", init_gain=1.5, seed=4)


def two_params():
    base = lp.Params(c=5.0, tau=0.1, q=1.0, r=2.0, r_w=0.01, theta=2.0)
    return [base, base.replace(q=3.0, r=1.0, c=4.0)]


def inputs_at(step, t):
    return np.sin(t + np.arange(3)) * 0.8


def targets_at(step, t):
    """Per replica: (replicas, channels)."""
    return np.array([[np.cos(0.3 * t), -0.5], [0.2, np.sin(0.5 * t)]])


def masks_at(step, t):
    return np.array([1.0, 0.0]) if step % 7 < 3 else np.array([1.0, 1.0])


def arrays(first, steps):
    """The callables' values as arrays for the steps first..first+steps (inputs one more)."""
    t = np.arange(first, first + steps + 1) * 0.1
    steps_ = range(first, first + steps + 1)
    inputs = np.array([inputs_at(s, ts) for s, ts in zip(steps_, t)])  # steps + 1 rows
    targets = np.stack([targets_at(s, ts) for s, ts in zip(steps_, t)][:steps], axis=1)  # (replicas, steps, 2)
    masks = np.array([masks_at(s, ts) for s, ts in zip(steps_, t)][:steps])
    return inputs, targets, masks


def test_callables_and_arrays_give_the_same_run():
    net = small_net()
    by_callables = lp.Engine(net, two_params(), backend="cpu")
    a = by_callables.run(STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at)
    by_arrays = lp.Engine(net, two_params(), backend="cpu")
    inputs, targets, masks = arrays(0, STEPS)
    b = by_arrays.run(STEPS, inputs=inputs, targets=targets, masks=masks)
    assert_traces_equal(a, b)
    assert_states_equal(by_callables.state, by_arrays.state)
    # The streams reached the run: targets per replica, masks with zeros.
    assert_bits_equal("targets", a.targets, targets.transpose(1, 0, 2).astype(np.float32))
    assert a.masks.min() == 0.0 and a.has_masks


def test_float64_lists_and_float32_arrays_are_the_same_stream():
    net = small_net()
    inputs, targets, masks = arrays(0, 50)
    x = lp.Engine(net, two_params(), backend="cpu").run(50, inputs=inputs.tolist(), targets=targets, masks=masks)
    y = lp.Engine(net, two_params(), backend="cpu").run(
        50, inputs=inputs.astype(np.float32), targets=targets.astype(np.float32), masks=masks.astype(np.float32)
    )
    assert_traces_equal(x, y)


def test_a_callable_is_called_once_per_step_and_once_more_for_the_inputs():
    calls = {"inputs": [], "targets": []}

    def counted(name, f):
        def g(step, t):
            calls[name].append(step)
            return f(step, t)

        return g

    engine = lp.Engine(small_net(), two_params(), backend="cpu")
    engine.run(40, inputs=counted("inputs", inputs_at), targets=counted("targets", targets_at))
    assert calls["targets"] == list(range(40))
    assert calls["inputs"] == list(range(41))


def test_two_runs_continue_as_one():
    net = small_net()
    one = lp.Engine(net, two_params(), backend="cpu")
    whole = one.run(2 * STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at)
    two = lp.Engine(net, two_params(), backend="cpu")
    first = two.run(STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at)
    # Arrays for the second half: their rows are that run's steps.
    inputs, targets, masks = arrays(STEPS, STEPS)
    second = two.run(STEPS, inputs=inputs, targets=targets, masks=masks)
    assert np.array_equal(second.step, np.arange(STEPS, 2 * STEPS))
    assert_bits_equal("loss", np.concatenate([first.loss, second.loss]), whole.loss)
    assert_bits_equal("outputs", np.concatenate([first.outputs, second.outputs]), whole.outputs)
    assert_states_equal(one.state, two.state)


def test_input_array_of_steps_rows_holds_its_last_row():
    net = small_net()
    inputs, targets, _ = arrays(0, 60)
    held = lp.Engine(net, two_params(), backend="cpu")
    a = held.run(60, inputs=inputs[:60], targets=targets)
    explicit = lp.Engine(net, two_params(), backend="cpu")
    b = explicit.run(60, inputs=np.vstack([inputs[:60], inputs[59:60]]), targets=targets)
    assert_traces_equal(a, b)
    assert_states_equal(held.state, explicit.state)


def test_replicas_run_as_separate_engines():
    net = small_net()
    params = two_params()
    together = lp.Engine(net, params, backend="cpu")
    joint = together.run(STEPS, inputs=inputs_at, targets=targets_at)
    state = together.state
    for k, p in enumerate(params):
        alone = lp.Engine(net, p, backend="cpu")
        trace = alone.run(STEPS, inputs=inputs_at, targets=lambda s, t: targets_at(s, t)[k])
        assert_bits_equal(f"replica {k} loss", joint.loss[:, k], trace.loss[:, 0])
        assert_bits_equal(f"replica {k} outputs", joint.outputs[:, k], trace.outputs[:, 0])
        assert_bits_equal(f"replica {k} w", state.w[k], alone.state.w[0])


def test_one_params_for_several_replicas():
    engine = lp.Engine(lp.Network.tracking(), lp.Params.tracking(10.0), backend="cpu", replicas=3)
    assert engine.replicas == 3 and len(engine.params) == 3
    trace = engine.run(100, targets=lambda s, t: np.sin(t))
    assert trace.loss.shape == (100, 3)
    assert_bits_equal("replicas 0 and 2", trace.loss[:, 0], trace.loss[:, 2])


def test_state_round_trip_reproduces_the_run():
    net = small_net()
    engine = lp.Engine(net, two_params(), backend="cpu")
    engine.run(STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at)
    saved = engine.state
    later = engine.run(STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at)
    end = engine.state

    # Back to the saved state in the same engine, and in a fresh one: the same steps again.
    engine.set_state(saved)
    assert engine.step == saved.step
    assert_traces_equal(engine.run(STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at), later)
    assert_states_equal(engine.state, end)
    fresh = lp.Engine(net, two_params(), backend="cpu")
    fresh.set_state(lp.State(saved.x.astype(np.float64), saved.p, saved.w.tolist(), saved.pw, step=saved.step))
    assert_states_equal(fresh.state, saved)
    assert_traces_equal(fresh.run(STEPS, inputs=inputs_at, targets=targets_at, masks=masks_at), later)
    assert_states_equal(fresh.state, end)


def test_set_state_replaces_only_the_arrays_given_and_state_is_a_copy():
    engine = lp.Engine(small_net(), two_params(), backend="cpu")
    engine.run(20, inputs=inputs_at, targets=targets_at)
    before = engine.state
    engine.set_state(w=np.zeros_like(before.w))
    after = engine.state
    assert not after.w.any()
    assert after.step == before.step == 20
    for name in ["x", "p", "pw"]:
        assert_bits_equal(name, getattr(after, name), getattr(before, name))
    after.x[:] = 7.0  # the state's arrays are the caller's: the engine keeps its own
    assert not (engine.state.x == 7.0).any()
    engine.set_state(step=5)
    assert engine.step == 5 and engine.time == pytest.approx(0.5)


def test_trace_shapes_record_every_and_nmse():
    engine = lp.Engine(lp.Network.tracking(), lp.Params.tracking(100.0), backend="cpu", record_every=10)
    trace = engine.run(2000, targets=lambda s, t: np.sin(2 * np.pi * 0.1 * t))
    assert len(trace) == 200 and np.array_equal(trace.step, np.arange(0, 2000, 10))
    assert trace.t.dtype == np.float64 and trace.loss.dtype == np.float32
    assert trace.outputs.shape == trace.targets.shape == (200, 1, 1)
    x, z = trace.outputs[100:, 0, 0].astype(np.float64), trace.targets[100:, 0, 0].astype(np.float64)
    assert trace.nmse() == pytest.approx(np.mean((x - z) ** 2) / np.var(z), rel=1e-12)
    assert trace.nmse() < 0.5  # q = 100 tracks
    assert trace.nmse(start=0) != trace.nmse()
    empty = engine.run(0, targets=np.zeros((0, 1)))
    assert len(empty) == 0 and empty.loss.shape == (0, 1) and engine.step == 2000


def test_to_pandas_has_the_command_lines_columns():
    pandas = pytest.importorskip("pandas")
    engine = lp.Engine(small_net(), two_params(), backend="cpu")
    trace = engine.run(30, inputs=inputs_at, targets=targets_at, masks=masks_at)
    df = trace.to_pandas()
    assert isinstance(df, pandas.DataFrame) and len(df) == 30
    cols = ["loss", "lagrangian", "hamiltonian", "out0", "target0", "mask0", "out1", "target1", "mask1"]
    assert list(df.columns) == ["step", "t", "sign"] + [f"r{k}_{c}" for k in range(2) for c in cols]
    assert np.array_equal(df["r1_lagrangian"].to_numpy(), trace.lagrangian[:, 1])
    assert np.array_equal(df["r0_target1"].to_numpy(), trace.targets[:, 0, 1])


def test_network_builders_and_weight_matrix():
    net = lp.Network.fully_connected(2, 4, self_loops=False, bias=True, seed=3)
    assert (net.n, net.d, net.inputs, net.bias, net.outputs) == (7, 3, 2, True, [3])
    assert net.n_edges == 4 * (2 + 3) + 4
    W = net.weight_matrix(net.initial_weights)
    assert W.shape == (7, 7)
    for (j, i), w in zip(net.synapses, net.initial_weights):
        assert W[i, j] == w
    assert np.count_nonzero(W) == net.n_edges and not W[:3].any()  # inputs have no parents
    sparse = lp.Network.random_sparse(3, 10, 4, seed=2)
    assert sparse.n_edges == 40 and sparse.topology == "random-sparse"
    assert np.array_equal(sparse.synapses, lp.Network.random_sparse(3, 10, 4, seed=2).synapses)
    edges = lp.Network.edges(1, 2, [(0, 1), (1, 2), (2, 1)], outputs=[2])
    assert edges.synapses.tolist() == [[0, 1], [2, 1], [1, 2]]  # by target, then source
    assert lp.Network.layered([4, 3, 2], init="zero").initial_weights.sum() == 0


def test_params_names_defaults_and_replace():
    p = lp.Params()
    assert (p.c, p.tau, p.q, p.r, p.r_w, p.theta) == (1.0, 0.1, 1.0, 1.0, 0.0, 0.0)
    assert (p.activation, p.policy, p.hsf_frequency, p.learning) == ("tanh", "reverse-costate", None, True)
    hsf = p.replace(policy="hsf", hsf_frequency=0.5, activation="logistic", c=[1.0, 2.0])
    assert (hsf.policy, hsf.hsf_frequency, hsf.activation, hsf.c) == ("hsf", 0.5, "logistic", [1.0, 2.0])
    assert hsf.replace(q=2.0).hsf_frequency == 0.5
    assert lp.Params.tracking(10.0) == lp.Params(c=50, tau=0.01, q=10, r=0.1, r_w=1, theta=1, policy="hsf-every-step")
    assert p != hsf


def test_the_gil_is_released_while_stepping():
    """A Python thread counts while a long run steps. Were the interpreter held for the run,
    the thread would count for one switch interval at most (5 ms); released, it keeps a
    good part of the pace it has alone."""
    net = lp.Network.fully_connected(4, 384, self_loops=True, bias=True, seed=1)
    engine = lp.Engine(net, lp.Params(c=1.0, tau=0.1), backend="cpu")
    steps = 1000
    inputs, targets = np.zeros((1, steps + 1, 4)), np.zeros((1, steps, 1))
    count, stop = [0], threading.Event()

    def counter():
        while not stop.is_set():
            count[0] += 1

    thread = threading.Thread(target=counter)
    thread.start()
    try:
        time.sleep(0.02)
        before, start = count[0], time.perf_counter()
        time.sleep(0.1)
        alone = (count[0] - before) / (time.perf_counter() - start)
        before, start = count[0], time.perf_counter()
        engine.run(steps, inputs=inputs, targets=targets)
        during, seconds = count[0] - before, time.perf_counter() - start
    finally:
        stop.set()
        thread.join()
    assert seconds > 0.1, f"the run took {seconds:.3f} s, too short to tell"
    assert during > 0.1 * alone * seconds, (
        f"the counting thread advanced {during} times in a {seconds:.2f} s run, {alone:.0f}/s alone"
    )


def test_last_messages_are_the_local_signals_of_the_last_step():
    net = small_net()
    engine = lp.Engine(net, two_params(), backend="cpu")
    engine.run(50, inputs=inputs_at, targets=targets_at)
    e_hat, h = engine.last_messages()
    assert e_hat.shape == h.shape == (2, net.n)
    assert not e_hat[:, : net.d].any()  # input neurons carry no message
    assert np.abs(e_hat[:, net.d :]).max() > 0
