"""A sweep's shards run as Ray tasks on a local cluster and merged equal the whole run, bit
for bit on the CPU. CI installs Ray and sets LOCALPROP_REQUIRE_RAY=1, which makes a missing
Ray a failure instead of a skip."""

import os

import pytest

import localprop as lp
from conftest import ROOT

SWEEP = ROOT / "examples" / "configs" / "sweep-q-r.toml"


def ray_or_skip():
    try:
        import ray
    except ImportError:
        if os.environ.get("LOCALPROP_REQUIRE_RAY") == "1":
            pytest.fail("LOCALPROP_REQUIRE_RAY=1 but ray is not installed")
        pytest.skip("ray is not installed")
    return ray


def test_sweep_on_a_local_ray_cluster_equals_the_whole_run(tmp_path):
    ray = ray_or_skip()
    whole = lp.run_file(SWEEP, backend="cpu", steps=300, quiet=True, out=tmp_path / "whole")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        merged = lp.sweep(SWEEP, 3, tmp_path / "merged", ray=True, backend="cpu", steps=300)
    finally:
        ray.shutdown()
    assert merged["replicas"] == whole["replicas"]
    assert (tmp_path / "merged" / "trace.csv").read_bytes() == (tmp_path / "whole" / "trace.csv").read_bytes()
    assert sorted(p.name for p in (tmp_path / "merged").glob("shard-*")) == [f"shard-{k}-of-3" for k in range(3)]


def test_sweep_in_threads_equals_the_whole_run(tmp_path):
    whole = lp.run_file(SWEEP, backend="cpu", steps=200, quiet=True, out=tmp_path / "whole")
    merged = lp.sweep(SWEEP, 4, tmp_path / "merged", backend="cpu", steps=200)
    assert merged["replicas"] == whole["replicas"]
    assert (tmp_path / "merged" / "trace.csv").read_bytes() == (tmp_path / "whole" / "trace.csv").read_bytes()
    with pytest.raises(lp.LocalpropError, match="shards"):
        lp.sweep(SWEEP, 0, tmp_path / "none")
