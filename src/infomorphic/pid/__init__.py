"""Partial information decomposition with the shared-exclusion redundancy measure I^sx.

Makkeh, Gutknecht & Wibral, Phys. Rev. E 103, 032149 (2021).  Everything is in bits.

- :func:`sx_pid`: exact NumPy float64 decomposition of one joint pmf (target on the last axis),
  also of a ``dit.Distribution`` or a pandas DataFrame of samples (:func:`pmf_from_dit`,
  :func:`pmf_from_dataframe`; those libraries are optional and imported only for their objects).
- :func:`sx_pid_torch`: the same for a batch of dense pmfs in PyTorch, differentiable.
- :func:`sx_pid_from_samples`: the training path: PID of each neuron's output from binned
  per-sample sources and per-sample target probabilities, without dense histograms;
  :func:`sx_pid_from_binary_samples` when the target is binary and given by ``theta``.

The PyTorch parts are imported on first use, so NumPy-only analysis starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .external import pmf_from_dataframe, pmf_from_dit
from .lattice import Antichain, Lattice, get_lattice
from .numpy_sx import SxPIDResult, sx_pid

if TYPE_CHECKING:
    from .samples import SampleCells, sample_cells, sx_pid_from_binary_samples, sx_pid_from_samples
    from .torch_sx import SxPIDTensors, sx_pid_torch

__all__ = [
    "Antichain",
    "Lattice",
    "get_lattice",
    "sx_pid",
    "SxPIDResult",
    "pmf_from_dit",
    "pmf_from_dataframe",
    "sx_pid_torch",
    "SxPIDTensors",
    "sx_pid_from_samples",
    "sx_pid_from_binary_samples",
    "sample_cells",
    "SampleCells",
]

_LAZY = {
    "sx_pid_torch": ".torch_sx",
    "SxPIDTensors": ".torch_sx",
    "sx_pid_from_samples": ".samples",
    "sx_pid_from_binary_samples": ".samples",
    "sample_cells": ".samples",
    "SampleCells": ".samples",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
