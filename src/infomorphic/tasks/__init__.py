"""Self-organisation tasks: unsupervised bars, associative memory, capacity sweeps.

- :mod:`.bars`: the unsupervised bars task (:class:`BarsConfig`, :func:`train_bars`,
  :func:`evaluate_bars`; Makkeh et al. 2025, Fig. 5);
- :mod:`.memory`: infomorphic associative memory (:class:`MemoryConfig`,
  :class:`InfomorphicMemory`, :func:`train_memory`, :func:`train_online`; Blümel et al. 2025);
- :mod:`.hopfield`: classical memories and the shared recall routine (:func:`recall`,
  :func:`recall_score`, :data:`RULES`);
- :mod:`.capacity`: capacity sweeps, noise robustness, online storage (:class:`CapacityConfig`,
  :func:`sweep`);
- :mod:`.online`: streams of patterns, palimpsest capacity and blackout of online rules
  (:class:`StreamConfig`, :class:`OnlineOptions`, :func:`run_stream`, :func:`stream_summary`,
  :func:`stream_storage`);
- :mod:`.runner`: the run directories of ``infomorphic train --task bars|memory``.

The names below load their module on first use, so ``import infomorphic.tasks`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_OWNERS = {
    "BarsConfig": "bars",
    "train_bars": "bars",
    "evaluate_bars": "bars",
    "bar_images": "bars",
    "MemoryConfig": "memory",
    "InfomorphicMemory": "memory",
    "train_memory": "memory",
    "train_online": "memory",
    "RULES": "hopfield",
    "recall": "hopfield",
    "recall_score": "hopfield",
    "random_patterns": "hopfield",
    "CapacityConfig": "capacity",
    "sweep": "capacity",
    "StreamConfig": "online",
    "OnlineOptions": "online",
    "run_stream": "online",
    "stream_summary": "online",
    "stream_storage": "online",
    "run_bars": "runner",
    "run_memory": "runner",
}

__all__ = sorted(_OWNERS)


def __getattr__(name: str) -> Any:
    owner = _OWNERS.get(name)
    if owner is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{owner}", __name__), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
