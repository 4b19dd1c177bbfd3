"""Training: the local learning step, a composable :class:`Trainer`, ``fit`` for configured runs.

- :class:`Trainer`: trains any infomorphic network on any iterable of ``(x, y)`` batches (a
  ``DataLoader``) with the user's optimiser factory, ``on_step`` / ``on_epoch`` callbacks
  (:class:`StepEvent`, :class:`EpochEvent`) and loggers (:class:`Logger`,
  :class:`TensorBoardLogger`); :func:`train_step` is one step, :func:`default_optimizers` the
  Adam settings of ``infomorphic train``.
- :func:`fit`: a run of ``infomorphic train`` from a :class:`~infomorphic.config.TrainConfig`,
  written to its run directory (metrics, atoms, checkpoints, baselines), on a :class:`Trainer`.
- :func:`evaluate_network` / :func:`evaluate_batches`: accuracy with the context withheld.
- :func:`keep_freed_memory`: keep freed memory for reuse (no page faults for a step's large
  tensors); ``fit`` calls it, call it yourself before training with a ``Trainer``.

Goals, atoms and entropies are in bits; accuracies are fractions in [0, 1].
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .heap import keep_freed_memory
from .loop import build_network, fit
from .trainer import (
    EpochEvent,
    EpochResult,
    Logger,
    OptimizerFactory,
    StepEvent,
    StepFunction,
    Trainer,
    TrainingDiverged,
    default_optimizers,
    evaluate_batches,
    evaluate_network,
    train_step,
)

if TYPE_CHECKING:
    from .loggers import TensorBoardLogger

__all__ = [
    "EpochEvent",
    "EpochResult",
    "Logger",
    "OptimizerFactory",
    "StepEvent",
    "StepFunction",
    "TensorBoardLogger",
    "Trainer",
    "TrainingDiverged",
    "build_network",
    "default_optimizers",
    "evaluate_batches",
    "evaluate_network",
    "fit",
    "keep_freed_memory",
    "train_step",
]


def __getattr__(name: str) -> Any:
    if name == "TensorBoardLogger":
        return getattr(import_module(".loggers", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
