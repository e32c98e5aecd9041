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
- ``sweep``: a sweep's shards run at once, locally or as Ray tasks, and merged.

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
    "sweep",
]


def sweep(path, shards, out, *, ray=False, num_gpus=0, backend="cpu", steps=None, force=False):
    """Runs the sweep of the experiment file ``path`` as ``shards`` shards at once and merges
    them into ``out``, the folder the whole run would have written (on one backend, the same
    trace, checkpoint state and scores, bit for bit on the CPU); returns the merged summary.

    Each shard runs ``run_file(path, shard="K/N")`` into ``out/shard-K-of-N``. With
    ``ray=True`` each shard is a Ray task (``ray.init()`` first, for a local or a cluster
    run), asking for ``num_gpus`` GPUs (pass ``backend="gpu"`` with them); the folders must
    then be on storage that every node and this process see. Without Ray the shards run in
    threads of this process (the engine releases the GIL). ``backend`` is the same for every
    shard: ``"auto"`` could choose differently for shards of different sizes.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    path, out = os.path.abspath(path), os.path.abspath(out)
    if not isinstance(shards, int) or shards < 1:
        raise LocalpropError(f"invalid parameter `shards` = {shards!r}: an integer >= 1")
    folders = [os.path.join(out, f"shard-{k}-of-{shards}") for k in range(shards)]

    def one(k):
        return run_file(
            path, backend=backend, out=folders[k], steps=steps, force=force, quiet=True, shard=f"{k}/{shards}"
        )

    if ray:
        import ray as _ray

        task = _ray.remote(num_gpus=num_gpus)(one)
        _ray.get([task.remote(k) for k in range(shards)])
    else:
        with ThreadPoolExecutor(max_workers=shards) as pool:
            list(pool.map(one, range(shards)))
    return merge(folders, out, force=force)
