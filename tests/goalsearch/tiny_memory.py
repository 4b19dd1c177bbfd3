"""The tiny associative memory of the memory-goal search tests (20 neurons, at most 300 epochs,
loads 0.3-1.5 in steps of 0.1), as a :class:`MemoryConfig` and as ``infomorphic search`` options.

With the redundancy goal ``{T}{R}`` it recalls every load up to 1.2 for seed 0 (1.3 fails), with
``0.5*{T}{R} + 0.5*{T}`` up to 1.3; ``-{T}{R}`` recalls none.  Below 0.3 (2-4 patterns) even
``{T}{R}`` fails at this size, so the grid starts there.
"""

from __future__ import annotations

from infomorphic.tasks.capacity import default_grid
from infomorphic.tasks.memory import MemoryConfig

LOADS = tuple(default_grid(0.3, 1.5, 0.1))
"""0.3, 0.4, ..., 1.5 (13 loads, the harness's grid rounding)."""


def tiny_memory(**changes: object) -> MemoryConfig:
    base = dict(n_neurons=20, max_epochs=300, min_epochs=50, patience=4)
    return MemoryConfig(**{**base, **changes})  # type: ignore[arg-type]


def tiny_memory_args(neurons: int = 20, max_epochs: int = 300, min_epochs: int = 50) -> list[str]:
    """``infomorphic search --task memory`` options of the tiny memory (the search's own options,
    e.g. sampler and trials, are the caller's)."""
    return [
        "--task",
        "memory",
        "--neurons",
        str(neurons),
        "--loads",
        "0.3:1.5:0.1",
        "--set",
        f"max_epochs={max_epochs}",
        "--set",
        f"min_epochs={min_epochs}",
        "--set",
        "patience=4",
        "--threads",
        "1",
    ]
