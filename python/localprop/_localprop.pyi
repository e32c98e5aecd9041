"""Type stubs of the extension module ``localprop._localprop`` (python/src/*.rs)."""

from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any, Literal, TypeAlias, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "LocalpropError",
    "__version__",
    "Network",
    "Params",
    "Engine",
    "Trace",
    "State",
    "Checkpoint",
    "run_file",
    "merge",
    "load_checkpoint",
]
__version__: str

_F32: TypeAlias = npt.NDArray[np.float32]
_ArrayLike: TypeAlias = npt.ArrayLike
#: An array with one row per step, ``(steps, channels)`` or ``(replicas, steps, channels)``,
#: or a callable ``f(step, t)`` returning ``(channels,)``, ``(replicas, channels)`` or a number.
_Stream: TypeAlias = _ArrayLike | Callable[[int, float], _ArrayLike]
_Backend: TypeAlias = Literal["cpu", "gpu", "auto"]
_Policy: TypeAlias = Literal["hamilton", "reverse-costate", "hsf", "hsf-every-step", "hsf-ball"]
_Activation: TypeAlias = Literal["tanh", "logistic", "identity"]
_InitName: TypeAlias = Literal["uniform", "normal", "zero"]

class LocalpropError(ValueError):
    """An error of the engine or of the arguments handed to it."""

@final
class Network:
    @staticmethod
    def layered(
        sizes: Sequence[int],
        *,
        bias: bool = False,
        outputs: Sequence[int] | None = None,
        init: _InitName | None = None,
        init_gain: float | None = None,
        seed: int = 0,
    ) -> Network: ...
    @staticmethod
    def fully_connected(
        inputs: int,
        neurons: int,
        self_loops: bool = False,
        *,
        bias: bool = False,
        outputs: Sequence[int] | None = None,
        init: _InitName | None = None,
        init_gain: float | None = None,
        seed: int = 0,
    ) -> Network: ...
    @staticmethod
    def random_sparse(
        inputs: int,
        neurons: int,
        fan_in: int,
        self_loops: bool = False,
        *,
        bias: bool = False,
        outputs: Sequence[int] | None = None,
        init: _InitName | None = None,
        init_gain: float | None = None,
        seed: int = 0,
    ) -> Network: ...
    @staticmethod
    def edges(
        inputs: int,
        neurons: int,
        edges: Sequence[tuple[int, int]],
        *,
        bias: bool = False,
        outputs: Sequence[int] | None = None,
        init: _InitName | None = None,
        init_gain: float | None = None,
        seed: int = 0,
    ) -> Network: ...
    @staticmethod
    def tracking() -> Network: ...
    @property
    def n(self) -> int: ...
    @property
    def d(self) -> int: ...
    @property
    def inputs(self) -> int: ...
    @property
    def bias(self) -> bool: ...
    @property
    def outputs(self) -> list[int]: ...
    @property
    def n_edges(self) -> int: ...
    @property
    def layers(self) -> list[int] | None: ...
    @property
    def topology(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def synapses(self) -> npt.NDArray[np.uint32]: ...
    @property
    def initial_weights(self) -> _F32: ...
    def weight_matrix(self, w: _ArrayLike) -> _F32: ...

@final
class Params:
    def __new__(
        cls,
        *,
        c: float | Sequence[float] | None = None,
        tau: float | None = None,
        q: float | None = None,
        r: float | None = None,
        r_w: float | None = None,
        theta: float | None = None,
        activation: _Activation | None = None,
        policy: _Policy | None = None,
        hsf_frequency: float | None = None,
        hsf_radius: float | None = None,
        learning: bool | None = None,
    ) -> Params: ...
    def replace(
        self,
        *,
        c: float | Sequence[float] | None = None,
        tau: float | None = None,
        q: float | None = None,
        r: float | None = None,
        r_w: float | None = None,
        theta: float | None = None,
        activation: _Activation | None = None,
        policy: _Policy | None = None,
        hsf_frequency: float | None = None,
        hsf_radius: float | None = None,
        learning: bool | None = None,
    ) -> Params: ...
    @staticmethod
    def tracking(q: float) -> Params: ...
    @property
    def c(self) -> float | list[float]: ...
    @property
    def tau(self) -> float: ...
    @property
    def q(self) -> float: ...
    @property
    def r(self) -> float: ...
    @property
    def r_w(self) -> float: ...
    @property
    def theta(self) -> float: ...
    @property
    def activation(self) -> str: ...
    @property
    def policy(self) -> str: ...
    @property
    def hsf_frequency(self) -> float | None: ...
    @property
    def hsf_radius(self) -> float | None: ...
    @property
    def learning(self) -> bool: ...

@final
class Trace:
    step: npt.NDArray[np.uint64]
    t: npt.NDArray[np.float64]
    sign: _F32
    loss: _F32
    lagrangian: _F32
    hamiltonian: _F32
    outputs: _F32
    targets: _F32
    masks: _F32
    replicas: int
    n_out: int
    has_masks: bool
    sign_per_replica: bool
    def nmse(self, replica: int = 0, output: int = 0, start: int | None = None) -> float: ...
    def to_pandas(self) -> Any: ...
    def __len__(self) -> int: ...

@final
class State:
    step: int
    x: _F32
    p: _F32
    w: _F32
    pw: _F32
    def __new__(cls, x: _ArrayLike, p: _ArrayLike, w: _ArrayLike, pw: _ArrayLike, step: int = 0) -> State: ...
    @property
    def replicas(self) -> int: ...

@final
class Engine:
    def __new__(
        cls,
        network: Network,
        params: Params | Sequence[Params],
        backend: _Backend = "auto",
        replicas: int | None = None,
        *,
        record_every: int = 1,
        block_steps: int | None = None,
        on_divergence: Literal["error", "continue"] = "error",
    ) -> Engine: ...
    def run(
        self,
        steps: int,
        inputs: _Stream | None = None,
        targets: _Stream | None = None,
        masks: _Stream | None = None,
    ) -> Trace: ...
    @property
    def state(self) -> State: ...
    def set_state(
        self,
        state: State | None = None,
        *,
        x: _ArrayLike | None = None,
        p: _ArrayLike | None = None,
        w: _ArrayLike | None = None,
        pw: _ArrayLike | None = None,
        step: int | None = None,
    ) -> None: ...
    def last_messages(self) -> tuple[_F32, _F32]: ...
    @property
    def record_every(self) -> int: ...
    @property
    def block_steps(self) -> int: ...
    @property
    def step(self) -> int: ...
    @property
    def time(self) -> float: ...
    @property
    def replicas(self) -> int: ...
    @property
    def backend(self) -> str: ...
    @property
    def backend_description(self) -> str: ...
    @property
    def backend_reason(self) -> str: ...
    @property
    def kernel_families(self) -> str: ...
    @property
    def network(self) -> Network: ...
    @property
    def params(self) -> list[Params]: ...
    @property
    def diverged(self) -> list[dict[str, Any] | None]: ...

@final
class Checkpoint:
    step: int
    t: float
    replicas: int
    n: int
    n_edges: int
    x: _F32
    p: _F32
    w: _F32
    pw: _F32
    config: dict[str, Any]
    metadata: dict[str, str]
    @property
    def blocks(self) -> list[dict[str, Any]]: ...
    @property
    def synapses(self) -> npt.NDArray[np.uint32]: ...
    @property
    def state(self) -> State: ...
    def state_for(self, network: Network) -> State: ...

def run_file(
    path: str | PathLike[str],
    *,
    backend: _Backend | None = None,
    out: str | PathLike[str] | None = None,
    steps: int | None = None,
    seed: int | None = None,
    force: bool = False,
    quiet: bool = False,
    shard: str | None = None,
) -> dict[str, Any]: ...
def merge(
    shards: list[str | PathLike[str]], out: str | PathLike[str], *, force: bool = False
) -> dict[str, Any]: ...
def load_checkpoint(path: str | PathLike[str]) -> Checkpoint: ...
