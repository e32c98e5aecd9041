"""Hamiltonian local propagation (Betti & Gori, NeurIPS 2024) from Python.

Every neuron carries a state ``x`` and a costate ``p``, every synapse a weight ``w`` and its
costate ``pw``; all advance together in lockstep Euler steps, on the CPU or a GPU (wgpu),
learning online from a stream. This package wraps the Rust engine ``localprop``::

    import numpy as np
    import localprop as lp

    net = lp.Network.tracking()                      # the paper's 5 recurrent neurons
    engine = lp.Engine(net, lp.Params.tracking(q=100.0), backend="cpu")
    trace = engine.run(2000, targets=lambda step, t: np.sin(2 * np.pi * 0.1 * t))
    print(trace.nmse())                              # over the second half

- ``Network``: layered, fully connected, random sparse or explicit edges.
- ``Params``: the dynamics' parameters and sign policies, checked as the engine checks them.
- ``Engine``: ``run(steps, inputs=, targets=, masks=)`` with numpy arrays or callables,
  returning a ``Trace``; ``state`` and ``set_state`` as numpy arrays.
- ``run_file``: an experiment file run as ``localprop run`` runs it (a sweep's shard with
  ``shard="K/N"``, joined by ``merge``); ``load_checkpoint``.

Errors of the engine raise ``LocalpropError`` (a ``ValueError``) with the engine's message.
"""

from ._localprop import (
    Checkpoint,
    Engine,
    LocalpropError,
    Network,
    Params,
    State,
    Trace,
    __version__,
    load_checkpoint,
    merge,
    run_file,
)

__all__ = [
    "Checkpoint",
    "Engine",
    "LocalpropError",
    "Network",
    "Params",
    "State",
    "Trace",
    "__version__",
    "load_checkpoint",
    "merge",
    "run_file",
]
