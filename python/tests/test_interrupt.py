"""Ctrl-C (simulated with _thread.interrupt_main) stops a run after its current block, with
the engine's state and the command line's folder consistent at that step."""

import _thread
import json
import signal
import threading

import numpy as np
import pytest

import localprop as lp
from conftest import ROOT


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """Python's own Ctrl-C handler for the test: a process started in the background by a
    shell without job control inherits SIGINT ignored, and `interrupt_main` then does nothing."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def interrupt_after(seconds):
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    return timer


def test_ctrl_c_stops_engine_run_after_a_block_and_the_engine_goes_on():
    engine = lp.Engine(lp.Network.tracking(), lp.Params.tracking(10.0), backend="cpu", block_steps=256)
    steps = 50_000_000  # minutes, were it not interrupted
    timer = interrupt_after(0.3)
    try:
        with pytest.raises(KeyboardInterrupt):
            engine.run(steps, targets=lambda step, t: np.sin(t))
    finally:
        timer.cancel()
    stopped = engine.step
    assert 0 < stopped < steps and stopped % 256 == 0
    trace = engine.run(10, targets=lambda step, t: np.sin(t))
    assert trace.step[0] == stopped and np.isfinite(trace.loss).all()


def test_ctrl_c_stops_run_file_with_an_interrupted_summary_and_checkpoint(tmp_path):
    timer = interrupt_after(0.5)
    try:
        with pytest.raises(KeyboardInterrupt):
            lp.run_file(ROOT / "examples/configs/fig1-sinusoid-q10.toml", backend="cpu", steps=500_000_000,
                        out=tmp_path, quiet=True)
    finally:
        timer.cancel()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["steps"] < 500_000_000
    assert lp.load_checkpoint(tmp_path / "checkpoint.safetensors").step == summary["steps"]
