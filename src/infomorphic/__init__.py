"""infomorphic: networks of neurons that learn local partial-information-decomposition goals.

Data flows ``data -> nn (aggregate -> activate -> sample) -> estimate (binned joint pmf) ->
pid (I^sx atoms, bits) -> goals -> train``.

The most-used names are importable from here; each lives in (and is documented with) its
subpackage:

- :func:`sx_pid`, :class:`Lattice`, :func:`get_lattice`: the PID engine (:mod:`infomorphic.pid`);
- :class:`Goal`: local goals as weighted sums of PID atoms (:mod:`infomorphic.goals`);
- :class:`InfomorphicLayer`, :class:`Network`, :class:`NetworkSpec`: layers and wired
  networks (:mod:`infomorphic.nn`);
- :func:`fit`, :class:`Trainer`: training (:mod:`infomorphic.train`).

Only the NumPy-based PID engine is imported eagerly; the names that need PyTorch load it on
first use, so ``import infomorphic`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .pid import Lattice, get_lattice, sx_pid

if TYPE_CHECKING:
    from .goals import Goal
    from .nn import InfomorphicLayer, Network, NetworkSpec
    from .train import Trainer, fit


__all__ = [
    "Goal",
    "InfomorphicLayer",
    "Lattice",
    "Network",
    "NetworkSpec",
    "Trainer",
    "__version__",
    "fit",
    "get_lattice",
    "sx_pid",
]

_LAZY = {
    "Goal": ".goals",
    "InfomorphicLayer": ".nn",
    "Network": ".nn",
    "NetworkSpec": ".nn",
    "fit": ".train",
    "Trainer": ".train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
