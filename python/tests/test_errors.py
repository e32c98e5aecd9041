"""Errors: the engine's become LocalpropError (a ValueError) with its message, naming the
field and the value; bad arguments name the argument and the shapes."""

import numpy as np
import pytest

import localprop as lp
from conftest import assert_states_equal, assert_traces_equal


def raises(match):
    return pytest.raises(lp.LocalpropError, match=match)


def test_localprop_error_is_a_value_error():
    assert issubclass(lp.LocalpropError, ValueError)
    with pytest.raises(ValueError):
        lp.Params(tau=0.0)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"r": -1.0}, "`r` = -1"),
        ({"tau": float("nan")}, "`tau` = NaN"),
        ({"q": -0.5}, "`q` = -0.5"),
        ({"r_w": -2.0}, "`r_w` = -2"),
        ({"theta": float("inf")}, "`theta` = inf"),
        ({"c": 0.0}, "`c` = 0"),
        ({"c": [1.0, -3.0]}, r"`c\[1\]` = -3"),
        ({"c": 50.0, "tau": 0.1}, r"`c \* tau` = 50 \* 0.1 = 5"),
        ({"policy": "hsf"}, "`hsf_frequency` = missing"),
        ({"policy": "reverse-costate", "hsf_frequency": 1.0}, "`hsf_frequency` = 1: only used by"),
        ({"policy": "hsf", "hsf_frequency": -1.0}, "`policy.frequency` = -1"),
        ({"policy": "backprop"}, '`policy` = "backprop": one of hamilton, reverse-costate, hsf, hsf-every-step'),
        ({"activation": "relu"}, "`activation` = \"relu\".*tanh"),
    ],
)
def test_a_bad_parameter_names_the_field_and_the_value(kwargs, field):
    with raises("invalid parameter " + field):
        lp.Params(**kwargs)


def test_an_unknown_parameter_name_is_named():
    with pytest.raises(TypeError, match="qq"):
        lp.Params(qq=1.0)


def test_engine_errors_name_what_is_wrong():
    net = lp.Network.tracking()
    with raises(r"`c` = a list of 3 speeds: one speed per non-input neuron \(5\)"):
        lp.Engine(net, lp.Params(c=[1.0, 1.0, 1.0]))
    with raises(r"`replicas\[1\].tau` = 0.05: the same value in every replica"):
        lp.Engine(net, [lp.Params(), lp.Params(tau=0.05)])
    with raises('`backend` = "tpu": one of cpu, gpu, auto'):
        lp.Engine(net, lp.Params(), backend="tpu")
    with raises("`replicas` = 3 but `params` lists 2"):
        lp.Engine(net, [lp.Params(), lp.Params()], replicas=3)
    with raises("`record_every` = 0"):
        lp.Engine(net, lp.Params(), record_every=0)
    with raises('`on_divergence` = "ignore"'):
        lp.Engine(net, lp.Params(), on_divergence="ignore")
    with raises("invalid network: layered sizes"):
        lp.Network.layered([3])
    with raises(r"invalid network: edge \(0 -> 0\) ends in input neuron 0"):
        lp.Network.edges(1, 2, [(0, 0)])
    with raises("`init` = \"xavier\""):
        lp.Network.layered([2, 2], init="xavier")


def engine(replicas=1):
    net = lp.Network.layered([3, 4, 2], bias=True)
    return lp.Engine(net, lp.Params(), backend="cpu", replicas=replicas)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, r"`targets` is required: one channel per output \(2\)"),
        ({"targets": np.zeros((10, 3)), "inputs": np.zeros((10, 3))}, r"stream `target` \(replica 0\): 3 channels, the network needs 2"),
        ({"targets": np.zeros((10, 2)), "inputs": np.zeros((10, 4))}, r"stream `input` \(replica 0\): 4 channels, the network needs 3"),
        ({"targets": np.zeros((10, 2))}, r"stream `input` \(replica 0\): 0 channels, the network needs 3"),
        ({"targets": np.zeros((9, 2)), "inputs": np.zeros((10, 3))}, r"`targets` has shape \(9, 2\): 9 rows; want"),
        ({"targets": np.zeros((10, 2)), "inputs": np.zeros((12, 3))}, r"`inputs` has shape \(12, 3\): 12 rows; want .* steps = 10 \(or 11\)"),
        ({"targets": np.zeros(10), "inputs": np.zeros((10, 3))}, r"`targets` has shape \(10,\); want .*a\[:, None\]"),
        ({"targets": np.zeros((3, 10, 2)), "inputs": np.zeros((10, 3))}, r"`targets` has shape \(3, 10, 2\); want .* replicas = 2"),
        ({"targets": np.zeros((10, 2)), "inputs": np.zeros((10, 3)), "masks": np.full((10, 2), 0.5)}, r"stream `mask` \(replica 0\): value 0.5 at step 0; masks are 0 or 1"),
        ({"targets": np.full((10, 2), np.nan), "inputs": np.zeros((10, 3))}, r"stream `target` \(replica 0\): channel 0 is NaN at step 0"),
        ({"targets": "sine", "inputs": np.zeros((10, 3))}, r"`targets`: .*want an array"),
        ({"targets": lambda s, t: [1.0, 2.0, 3.0], "inputs": np.zeros((10, 3))}, r"`targets\(0, 0.0\)` returned shape \(3,\); want \(2,\) or \(replicas, channels\) = \(2, 2\)"),
        ({"targets": lambda s, t: "x", "inputs": np.zeros((10, 3))}, r"`targets\(0, 0.0\)` returned no array of numbers"),
    ],
)
def test_bad_streams_name_the_stream_and_the_shapes(kwargs, message):
    e = engine(replicas=2)
    with raises(message):
        e.run(10, **kwargs)
    assert e.step == 0


def test_an_exception_in_a_callable_is_raised_from_run_and_stops_it_early():
    e = engine()
    calls = []

    def failing(step, t):
        calls.append(step)
        if step == 600:
            raise KeyError("no target at 600")
        return [0.0, 0.0]

    with pytest.raises(KeyError, match="no target at 600"):
        e.run(10_000, inputs=np.zeros((10_000, 3)), targets=failing)
    assert calls[-1] == 600
    assert e.step == 512  # the blocks of 256 steps before it ran, no further one


def test_after_an_error_mid_run_the_engine_goes_on_from_the_last_whole_block():
    net = lp.Network.tracking()
    target = lambda step, t: np.nan if step == 600 else np.sin(t)  # noqa: E731
    e = lp.Engine(net, lp.Params.tracking(10.0), backend="cpu")
    with raises(r"stream `target` \(replica 0\): channel 0 is NaN at step 600"):
        e.run(1000, targets=target)
    assert e.step == 512
    ref = lp.Engine(net, lp.Params.tracking(10.0), backend="cpu")
    ref.run(512, targets=target)
    assert_states_equal(e.state, ref.state)
    a, b = e.run(100, targets=lambda s, t: np.sin(t)), ref.run(100, targets=lambda s, t: np.sin(t))
    assert np.array_equal(a.step, np.arange(512, 612))
    assert_traces_equal(a, b)


def test_an_array_with_a_bad_value_is_refused_before_any_step():
    e = engine(replicas=2)
    inputs = np.zeros((1000, 3))
    targets = np.zeros((2, 1000, 2))
    targets[1, 300, 1] = np.inf
    with raises(r"stream `target` \(replica 1\): channel 1 is inf at step 300; values must be finite"):
        e.run(1000, inputs=inputs, targets=targets)
    inputs[999, 2] = np.nan
    with raises(r"stream `input` \(replica 0\): channel 2 is NaN at step 999"):
        e.run(1000, inputs=inputs, targets=np.zeros((1000, 2)))
    masks = np.ones((1000, 2))
    masks[700, 0] = 2.0
    with raises(r"stream `mask` \(replica 0\): value 2 at step 700; masks are 0 or 1"):
        e.run(1000, inputs=np.zeros((1000, 3)), targets=np.zeros((1000, 2)), masks=masks)
    assert e.step == 0


def test_bad_states_name_the_array_and_the_shapes():
    e = engine(replicas=2)
    # 3 inputs, a bias, 4 + 2 neurons; 4 x 4 + 2 x 4 synapses and a bias synapse per output.
    with raises(r"`x` has shape \(1, 10\); the engine needs \(replicas, n\) = \(2, 10\)"):
        e.set_state(x=np.zeros((1, 10)))
    with raises(r"`pw` has shape \(2, 10\); the engine needs \(replicas, n_edges\) = \(2, 26\)"):
        e.set_state(pw=np.zeros((2, 10)))
    with raises(r"`w` has shape \(26,\); the engine needs \(replicas, n_edges\) = \(2, 26\)"):
        e.set_state(w=np.zeros(26))
    with raises(r"`p` has shape \(10,\); want \(replicas, values\)"):
        lp.State(np.zeros((2, 10)), np.zeros(10), np.zeros((2, 26)), np.zeros((2, 26)))
    bad = np.zeros((2, 10))
    bad[1, 4] = np.inf
    with raises(r"state does not fit the engine: `x\[14\]` is inf, not finite"):
        e.set_state(x=bad)
    assert e.state.x.shape == (2, 10) and np.isfinite(e.state.x).all()


def test_divergence_raises_at_its_step_or_is_marked():
    net = lp.Network.tracking()
    params = lp.Params(c=1.0, tau=1.0, q=1e30, r=1e-30, policy="hamilton")
    with raises(r"the run diverged: .* at step \d+ \(replica 0\)"):
        lp.Engine(net, params, backend="cpu").run(2000, targets=np.ones((2000, 1)))
    e = lp.Engine(net, [params, lp.Params.tracking(10.0).replace(tau=1.0, c=1.0, policy="hamilton")],
                  backend="cpu", on_divergence="continue")
    trace = e.run(2000, targets=np.ones((2000, 1)))
    d = e.diverged
    assert d[0] is not None and d[0]["quantity"] in {"x", "p", "a", "loss", "lagrangian", "hamiltonian", "w", "pw"}
    assert np.isnan(trace.loss[d[0]["step"]:, 0]).all()


def test_file_errors_name_the_file():
    with raises("nothing.safetensors: No such file"):
        lp.load_checkpoint("/nothing.safetensors")


def test_load_checkpoint_refuses_a_damaged_file(tmp_path):
    from conftest import ROOT

    out = tmp_path / "run"
    lp.run_file(ROOT / "examples/configs/fig1-sinusoid-q10.toml", backend="cpu", steps=50, out=out, quiet=True)
    data = bytearray((out / "checkpoint.safetensors").read_bytes())
    data[-3] ^= 0x40
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with raises("checksum"):
        lp.load_checkpoint(tmp_path / "bad.safetensors")
    with raises("already holds a run"):
        lp.run_file(ROOT / "examples/configs/fig1-sinusoid-q10.toml", backend="cpu", steps=50, out=out)
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "examples/configs/fig1-sinusoid-q10.toml").read_text().replace("r = 0.1", "r = -0.1"))
    with raises(r"bad.toml: `params.r`: -0.1"):
        lp.run_file(bad, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()
