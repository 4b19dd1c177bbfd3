"""The run directory: resolved config, per-epoch metrics, per-neuron atoms, checkpoints, summary.

Layout of ``<out_dir>/<name>/``::

    config.json        resolved TrainConfig (+ versions, seed), written before training
    metrics.jsonl      one JSON object per epoch (accuracies, goals, mean atoms, seconds)
    atoms.npz          per-neuron PID atoms (bits) per epoch and layer: <layer>_atoms (E, N, A),
                       <layer>_hres (E, N), <layer>_names (A,), plus <layer>_wdist (E,)
    checkpoint.pt      model, optimisers, generators, epoch: ``--resume`` continues from it
    baselines.json     results of the baselines on the same split
    summary.json       final figures

Every file is written atomically (temporary file + rename), so a killed run never leaves a
half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["atomic_write", "write_json", "write_jsonl", "read_jsonl", "save_npz", "versions"]


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through ``write(fh)`` into a temporary file next to ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda fh: json.dump(data, fh, indent=2, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write a JSON-lines file holding all ``records`` (atomic rewrite; the history is small)."""
    atomic_write(path, lambda fh: fh.write("".join(json.dumps(r, default=_jsonable) + "\n" for r in records)))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays), mode="wb")


def versions() -> dict[str, Any]:
    """Versions recorded in every run's ``config.json`` (package, torch, CUDA, Python)."""
    import platform

    import torch

    from . import __version__

    return {"infomorphic": __version__, "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version()}
