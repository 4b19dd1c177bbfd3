"""Capacity sweeps: grid, alpha_c bookkeeping, the process pool, noise robustness, Hebbian PID."""

from __future__ import annotations

import pytest

from infomorphic.tasks.capacity import (
    CapacityConfig,
    capacity_from_points,
    default_grid,
    hebbian_pid_curve,
    noise_robustness,
    run_point,
    sweep,
)
from infomorphic.tasks.memory import MemoryConfig


def test_default_grid_is_the_published_grid() -> None:
    grid = default_grid()
    assert len(grid) == 41 and grid[0] == 0.01 and grid[-1] == 2.01 and grid[1] == 0.06
    with pytest.raises(ValueError):
        default_grid(0.5, 0.1, 0.05)


def test_capacity_from_points_takes_largest_successful_load() -> None:
    def pt(a: float, s: int, v: float | None) -> dict:
        return {"alpha": a, "seed": s, "scores": {"m": v}}

    points = [
        pt(0.1, 0, 1.0),
        pt(0.2, 0, 0.96),
        pt(0.3, 0, 0.5),
        pt(0.4, 0, 0.97),
        pt(0.1, 1, 1.0),
        pt(0.2, 1, 0.9),
        pt(0.3, 1, 0.2),
        pt(0.4, 1, None),
    ]
    cap = capacity_from_points(points, ["m"], 0.95)["m"]
    assert cap["alpha_c_per_seed"] == {0: 0.4, 1: 0.1}
    assert cap["alpha_c_mean"] == pytest.approx(0.25)
    assert cap["mean_curve"] == pytest.approx([1.0, 0.93, 0.35, 0.97])
    assert cap["alpha_c_of_mean_curve"] == 0.4


def test_sweep_in_worker_processes_matches_serial_run() -> None:
    memory = MemoryConfig(n_neurons=24, max_epochs=60, check_every=20)
    cfg = CapacityConfig(
        memory=memory,
        alphas=(0.25, 1.5),
        seeds=(0,),
        methods=("infomorphic", "hebbian", "pseudo-inverse"),
        workers=2,
    )
    points = sweep(cfg)
    assert [(p["alpha"], p["seed"]) for p in points] == [(0.25, 0), (1.5, 0)]
    serial = run_point(memory, 1.5, 0, cfg.methods)
    assert points[1]["scores"] == serial["scores"]  # seeded: same numbers in another process
    assert points[0]["scores"]["pseudo-inverse"] == 1.0  # M = 6 < N is stored exactly
    assert points[1]["scores"]["pseudo-inverse"] is None  # M >= N: the projection is the identity
    assert points[1]["scores"]["hebbian"] < 0.95


def test_capacity_config_validates() -> None:
    with pytest.raises(ValueError, match="unknown methods"):
        CapacityConfig(methods=("nope",))
    with pytest.raises(ValueError, match="workers"):
        CapacityConfig(workers=0)


def test_noise_robustness_orders_baselines() -> None:
    memory = MemoryConfig(n_neurons=60)
    out = noise_robustness(memory, [0.05], [0], methods=("hebbian", "modern"), fractions=[0.0, 0.1, 0.2, 0.3])
    row = out["table"]["0.05"]
    assert row["modern"]["mean"] == 0.3  # modern Hopfield retrieval corrects 30% flips at alpha = 0.05
    assert 0.0 <= row["hebbian"]["mean"] <= 0.3


def test_hebbian_pid_shows_redundancy_below_capacity() -> None:
    rows = hebbian_pid_curve(MemoryConfig(n_neurons=60), [0.05, 1.0])["rows"]
    low, high = rows
    assert low["{T}{R}"] > 0.4 and abs(low["{TR}"]) < 0.05  # redundancy dominates, little synergy
    assert high["{TR}"] > low["{TR}"] + 0.1  # synergy appears beyond capacity
    assert low["score"] == 1.0 and high["score"] < 0.95
