"""Loggers for :class:`~infomorphic.train.trainer.Trainer`: TensorBoard.

A logger mirrors every epoch's metrics somewhere else; the run directory of
``infomorphic train`` (``metrics.jsonl``, ``atoms.npz``) stays the source of truth.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .trainer import EpochEvent

__all__ = ["INSTALL_HINT", "TensorBoardLogger", "scalars"]

INSTALL_HINT = "pip install 'infomorphic[tensorboard]'"


def scalars(metrics: Mapping[str, Any], layers: list[str]) -> dict[str, float]:
    """The TensorBoard scalars of one epoch's metrics, by tag.

    - ``<layer>/goal``: the layer's mean goal (bits), from ``"<layer>_goal"``;
    - ``<layer>/atoms/<atom>``: the mean over neurons of each PID atom (bits), from
      ``"<layer>_atoms_mean"``;
    - ``<layer>/<name>`` for any other ``"<layer>_<name>"`` number (e.g. ``weight_change``);
    - ``accuracy/<split>`` from ``"<split>_acc"`` (fractions in [0, 1]);
    - ``time/<name>`` from ``"<name>_seconds"``;
    - any other number under its own key.  ``"epoch"`` is the step, not a scalar.

    Values that are not finite numbers are left out.
    """
    out: dict[str, float] = {}
    by_length = sorted(layers, key=len, reverse=True)  # "h1_x" belongs to "h1_x" before "h1"
    for key, value in metrics.items():
        if key == "epoch":
            continue
        layer = next((name for name in by_length if key.startswith(name + "_")), None)
        if layer is not None:
            rest = key[len(layer) + 1 :]
            if rest == "atoms_mean" and isinstance(value, Mapping):
                for atom, v in value.items():
                    _put(out, f"{layer}/atoms/{atom}", v)
            else:
                _put(out, f"{layer}/{rest}", value)
        elif key.endswith("_acc"):
            _put(out, f"accuracy/{key[:-4]}", value)
        elif key.endswith("_seconds"):
            _put(out, f"time/{key[:-8]}", value)
        else:
            _put(out, key, value)
    return out


def _put(out: dict[str, float], tag: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if math.isfinite(value):
        out[tag] = float(value)


class TensorBoardLogger:
    """Writes every epoch's goals, mean atoms and accuracies as TensorBoard scalars.

    Uses :class:`torch.utils.tensorboard.SummaryWriter` (the ``tensorboard`` package; imported
    here, not with :mod:`infomorphic`).  The step of every scalar is the epoch (1-based, as in
    ``metrics.jsonl``); tags as :func:`scalars` says.  A writer opened on a folder that already
    holds events adds a new event file beside them (a resumed run appends); with
    ``purge_step=k`` TensorBoard drops the older events of steps ``>= k`` (what a crashed run
    logged after its last checkpoint).

    Args:
        log_dir: the folder of the event files (created if needed).
        purge_step: see above; None or values below 2 purge nothing.
    """

    def __init__(self, log_dir: str | Path, *, purge_step: int | None = None) -> None:
        SummaryWriter = self.check_available()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        purge = purge_step if purge_step is not None and purge_step > 1 else None
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)

    @staticmethod
    def check_available() -> Any:
        """The ``SummaryWriter`` class; ``ModuleNotFoundError`` saying how to install it if missing."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ModuleNotFoundError(
                f"TensorBoard logging needs the tensorboard package: {INSTALL_HINT}"
            ) from None
        return SummaryWriter

    def log_epoch(self, event: EpochEvent) -> None:
        """Write ``event.metrics`` at step ``event.epoch`` and flush."""
        layers = list(event.trainer.layers())
        for tag, value in scalars(event.metrics, layers).items():
            self.writer.add_scalar(tag, value, global_step=event.epoch)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
