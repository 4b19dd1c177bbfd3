"""infomorphic: networks of neurons that learn local partial-information-decomposition goals.

Data flows ``data -> nn (aggregate -> activate -> sample) -> estimate (binned joint pmf) ->
pid (I^sx atoms, bits) -> goals -> train``.  The PID engine is :mod:`infomorphic.pid`.
"""

from __future__ import annotations

from importlib import metadata

from .pid import Lattice, get_lattice, sx_pid

try:
    __version__ = metadata.version("infomorphic")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__", "Lattice", "get_lattice", "sx_pid"]
