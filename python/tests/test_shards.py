"""A sweep run in shards from Python and merged equals the whole run (CPU, bit for bit), and
hsf-ball's replicas each take their own sign."""

import json

import numpy as np

import localprop as lp
from conftest import ROOT, assert_bits_equal

SWEEP = ROOT / "examples" / "configs" / "sweep-q-r.toml"


def test_shards_run_from_python_merge_into_the_whole_run(tmp_path):
    run = dict(backend="cpu", steps=300, quiet=True)
    whole = lp.run_file(SWEEP, out=tmp_path / "whole", **run)
    shards = [tmp_path / f"s{k}" for k in range(4)]
    for k, out in enumerate(shards):
        part = lp.run_file(SWEEP, out=out, shard=f"{k}/4", **run)
        assert part["shard"]["index"] == k and part["shard"]["count"] == 4
    merged = lp.merge(list(reversed(shards)), tmp_path / "merged")
    assert merged["replicas"] == whole["replicas"]
    assert (tmp_path / "merged" / "trace.csv").read_bytes() == (tmp_path / "whole" / "trace.csv").read_bytes()
    a = lp.load_checkpoint(tmp_path / "merged" / "checkpoint.safetensors")
    b = lp.load_checkpoint(tmp_path / "whole" / "checkpoint.safetensors")
    for name in ["x", "p", "w", "pw"]:
        assert_bits_equal(name, getattr(a.state, name), getattr(b.state, name))
    try:
        lp.merge(shards[:3], tmp_path / "missing")
        raise AssertionError("a merge without shard 3 was accepted")
    except lp.LocalpropError as e:
        assert "also 3/4" in str(e)


def test_hsf_ball_signs_each_replica_from_its_own_state():
    net = lp.Network.tracking()
    params = [lp.Params.tracking(q).replace(policy="hsf-ball", hsf_radius=3.0) for q in (1.0, 10.0)]
    assert params[0].hsf_radius == 3.0 and params[0].policy == "hsf-ball"
    engine = lp.Engine(net, params, backend="cpu")
    steps = 2000
    t = np.arange(steps) * 0.01
    trace = engine.run(steps, targets=np.sin(2 * np.pi * 0.1 * t).astype(np.float32)[:, None])
    assert trace.sign.shape == (steps, 2) and trace.sign_per_replica
    assert set(np.unique(trace.sign)) == {-1.0, 1.0}
    assert (trace.sign[:, 0] != trace.sign[:, 1]).any(), "the replicas take their own signs"
    assert np.isfinite(trace.loss).all()
    try:
        lp.Params(policy="hsf-ball")
        raise AssertionError("hsf-ball without a radius was accepted")
    except lp.LocalpropError as e:
        assert "hsf_radius" in str(e)
