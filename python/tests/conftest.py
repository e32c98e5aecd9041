"""Shared helpers of the Python package's tests (run with pytest from anywhere)."""

import os
from pathlib import Path

import numpy as np
import pytest

import localprop as lp

#: The repository's root: the tests read its example experiment files.
ROOT = Path(__file__).resolve().parents[2]


def bits(a):
    """The raw bits of a float32 array, so that equality is bit for bit (-0.0 is not 0.0)."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_bits_equal(what, a, b):
    """Asserts two float32 arrays have the same shape and bits; names the first mismatches."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} and {b.shape}"
    differ = np.flatnonzero(bits(a) != bits(b))
    assert differ.size == 0, (
        f"{what}: {differ.size} values differ; first (index, a, b): "
        f"{[(int(i), float(a.flat[i]), float(b.flat[i])) for i in differ[:5]]}"
    )


def assert_traces_equal(a, b):
    """Every column of two traces, bit for bit."""
    for name in ["step", "t"]:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in ["sign", "loss", "lagrangian", "hamiltonian", "outputs", "targets", "masks"]:
        assert_bits_equal(f"trace.{name}", getattr(a, name), getattr(b, name))


def assert_states_equal(a, b):
    assert a.step == b.step, f"steps {a.step} and {b.step}"
    for name in ["x", "p", "w", "pw"]:
        assert_bits_equal(f"state.{name}", getattr(a, name), getattr(b, name))


def gpu_engine(network, params, **kwargs):
    """An engine on the GPU, or a skip (printed) without an adapter; with
    LOCALPROP_REQUIRE_GPU=1 (CI sets it and installs Mesa's lavapipe) a failure instead."""
    try:
        return lp.Engine(network, params, backend="gpu", **kwargs)
    except lp.LocalpropError as e:
        if os.environ.get("LOCALPROP_REQUIRE_GPU") == "1":
            pytest.fail(f"LOCALPROP_REQUIRE_GPU=1 but no GPU: {e}")
        print(f"SKIPPED: no GPU adapter ({e}); set LOCALPROP_REQUIRE_GPU=1 to make this a failure")
        pytest.skip(f"no GPU adapter: {e}")
