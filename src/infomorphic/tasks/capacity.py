"""Capacity sweeps, noise robustness and online storage of associative memories (Blümel et al. 2025).

Every grid point ``(alpha, seed)`` draws fresh patterns (``M = round(alpha N)``), trains a fresh
infomorphic memory (:mod:`infomorphic.tasks.memory`) and builds the classical baselines
(:mod:`infomorphic.tasks.hopfield`) on the *same* patterns; all are scored by the same recall
routine.  A point succeeds when its score (mean overlap after recall from the clean patterns)
is at least ``threshold`` (0.95); the capacity ``alpha_c`` of a method and seed is the largest
successful ``alpha`` on the grid.  Points run in parallel worker processes, one torch thread
each.  With ``CapacityConfig.cue_noise`` every point also scores recall from cues with those
fractions of bits flipped (the same cues for every method) and :func:`noise_capacity` gives
the capacity at each cue noise: the capacity of basins, not only of fixed points.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from ..config import check_finite
from ..seeding import generator
from .hopfield import Field, hebbian_weights, linear_field, random_patterns, recall_score, rule_field
from .memory import MemoryConfig, memory_goal, neuron_pid, train_memory, train_online
from .workers import map_jobs

__all__ = [
    "CapacityConfig",
    "default_grid",
    "run_point",
    "sweep",
    "sweep_points",
    "capacity_from_points",
    "noise_capacity",
    "noise_capacity_table",
    "noise_robustness",
    "online_storage",
    "hebbian_pid_curve",
    "METHODS",
]

METHODS = ("infomorphic", "hebbian", "storkey", "pseudo-inverse", "descent-l2", "mpf", "modern")
"""Memories compared in a sweep: ours and the classical baselines of :data:`~.hopfield.RULES`."""


def default_grid(start: float = 0.01, stop: float = 2.01, step: float = 0.05) -> list[float]:
    """Loads ``start, start + step, ..., stop`` (inclusive, rounded to 1e-6)."""
    if not (step > 0 and stop >= start > 0):
        raise ValueError(f"need 0 < start <= stop and step > 0, got start={start}, stop={stop}, step={step}")
    n = int(math.floor((stop - start) / step + 1e-9)) + 1
    return [round(start + i * step, 6) for i in range(n)]


@dataclass(frozen=True, slots=True)
class CapacityConfig:
    """A capacity sweep: memory hyperparameters, grid, seeds, methods, workers."""

    memory: MemoryConfig = MemoryConfig()
    alphas: tuple[float, ...] = tuple(default_grid())
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    threshold: float = 0.95
    workers: int = 2
    cue_noise: tuple[float, ...] = (0.0,)

    def __post_init__(self) -> None:
        check_finite(self)
        if not self.cue_noise or any(not 0.0 <= f < 0.5 for f in self.cue_noise):
            raise ValueError(f"cue_noise must be fractions in [0, 0.5), got {list(self.cue_noise)}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
        if not self.alphas or any(not a > 0 for a in self.alphas):
            raise ValueError(f"alphas must be a non-empty list of loads > 0, got {list(self.alphas)}")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapacityConfig:
        """The config that :meth:`to_dict` gave (also after a JSON round trip: lists for tuples).
        ``ValueError`` when ``data`` is not one."""
        try:
            memory = dict(data["memory"])
            if "bin_range" in memory:
                memory["bin_range"] = tuple(memory["bin_range"])
            tuples = ("alphas", "seeds", "methods", "cue_noise")
            rest: dict[str, Any] = {
                k: tuple(v) if k in tuples else v for k, v in data.items() if k != "memory"
            }
            return cls(memory=MemoryConfig(**memory), **rest)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a capacity sweep's config ({type(exc).__name__}: {exc})") from None


def _point_patterns(memory: MemoryConfig, alpha: float, seed: int) -> torch.Tensor:
    n = memory.n_neurons
    m = replace(memory, alpha=alpha).n_patterns
    return random_patterns(m, n, generator(seed, "patterns", f"{alpha:.6f}", n))


def _cue_generator(memory: MemoryConfig, alpha: float, seed: int, fraction: float) -> torch.Generator:
    """The flips of the noisy cues of one grid point: the same cues for every method."""
    return generator(seed, "cue-noise", f"{alpha:.6f}", f"{fraction:.6f}", memory.n_neurons)


def run_point(
    memory: MemoryConfig,
    alpha: float,
    seed: int,
    methods: Sequence[str] = METHODS,
    cue_noise: Sequence[float] = (0.0,),
) -> dict[str, Any]:
    """Scores of every method at one load and seed, on the same patterns (a worker's job).

    ``scores[method]`` is the clean-cue score; ``cue_scores[method][f"{f:g}"]`` the score from
    cues with a fraction ``f`` of bits flipped, for each ``f`` of ``cue_noise`` (the same cues
    for every method; ``None`` where the method stores nothing).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    patterns = _point_patterns(memory, alpha, seed)
    out: dict[str, Any] = {"alpha": alpha, "seed": seed, "n_patterns": len(patterns), "scores": {}}
    out["cue_scores"] = {}

    def score_cues(method: str, field: Field | None) -> None:
        row: dict[str, float | None] = {}
        for f in cue_noise:
            if field is None or f == 0:
                row[f"{f:g}"] = out["scores"][method]  # the clean score (None: nothing stored)
            else:
                row[f"{f:g}"] = recall_score(field, patterns, f, _cue_generator(memory, alpha, seed, f))
        out["cue_scores"][method] = row

    for method in methods:
        if method == "infomorphic":
            cfg = replace(memory, alpha=alpha, seed=seed)
            res = train_memory(cfg, patterns)
            out["scores"][method] = res.score
            score_cues(method, res.net.field())
            out["epochs"] = res.epochs
            out["stopped"] = res.stopped
            if res.basin is not None:
                out["basin"] = res.basin
            names = memory_goal(memory.goal).atom_names
            final = res.atoms[-1].mean(0).tolist() if res.atoms else []
            out["atoms"] = dict(zip(names, final)) | (
                {"H_res": float(res.hres[-1].mean())} if res.hres else {}
            )
        else:
            field = rule_field(method, patterns)  # None: the pseudo-inverse at M >= N stores nothing
            out["scores"][method] = None if field is None else recall_score(field, patterns)
            score_cues(method, field)
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = time.process_time() - c0
    return out


def sweep(
    config: CapacityConfig,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    done: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Run every ``(alpha, seed)`` point (largest loads first, they take longest) in ``workers`` processes.

    ``done``: points of this sweep finished earlier (e.g. by a process that was killed); they
    are kept and not run again.  Every point draws its patterns, cues and training noise from
    generators seeded by its own load and seed, so a sweep continued this way ends with the
    same points as one that ran through.
    """
    kept = {(p["alpha"], p["seed"]): p for p in done}
    jobs = sorted(
        ((a, s) for a in config.alphas for s in config.seeds if (a, s) not in kept),
        key=lambda j: (-j[0], j[1]),
    )
    results = map_jobs(
        run_point,
        [(config.memory, a, s, config.methods, config.cue_noise) for a, s in jobs],
        config.workers,
        on_result,
    )
    return sorted([*kept.values(), *results], key=lambda r: (r["seed"], r["alpha"]))


def sweep_points(config: CapacityConfig, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished points of a sweep as recorded (``points.jsonl`` of its run directory),
    checked against its ``config``: ``ValueError`` for a point off its grid or seeds, or without
    a score of each of its methods (the files do not belong together)."""
    grid, seeds = set(config.alphas), set(config.seeds)
    for number, point in enumerate(records, 1):
        scores = point.get("scores")
        if (
            point.get("alpha") not in grid
            or point.get("seed") not in seeds
            or not isinstance(scores, dict)
            or any(m not in scores for m in config.methods)
        ):
            raise ValueError(
                f"point {number} ({point.get('alpha')}, seed {point.get('seed')}) is not one of this sweep's "
                "loads, seeds and methods"
            )
    return list(records)


def capacity_from_points(
    points: Sequence[dict[str, Any]], methods: Sequence[str], threshold: float = 0.95
) -> dict[str, Any]:
    """``alpha_c`` per method: per seed (largest successful load), mean and std over seeds, and of the mean curve."""
    seeds = sorted({p["seed"] for p in points})
    alphas = sorted({p["alpha"] for p in points})
    out: dict[str, Any] = {}
    for method in methods:
        per_seed: dict[int, float] = {}
        for s in seeds:
            ok = [
                p["alpha"]
                for p in points
                if p["seed"] == s and (p["scores"].get(method) or -1.0) >= threshold
            ]
            per_seed[s] = max(ok) if ok else 0.0
        curve = []
        for a in alphas:
            vals = [p["scores"].get(method) for p in points if p["alpha"] == a]
            vals = [v for v in vals if v is not None]
            curve.append(float(np.mean(vals)) if vals else None)
        ok_mean = [a for a, v in zip(alphas, curve) if v is not None and v >= threshold]
        vals = list(per_seed.values())
        out[method] = {
            "alpha_c_per_seed": per_seed,
            "alpha_c_mean": float(np.mean(vals)),
            "alpha_c_std": float(np.std(vals)),
            "alpha_c_of_mean_curve": max(ok_mean) if ok_mean else 0.0,
            "mean_curve": curve,
        }
    out["alphas"] = alphas
    return out


def noise_capacity_table(
    points: Sequence[dict[str, Any]],
    methods: Sequence[str],
    cue_noise: Sequence[float],
    threshold: float = 0.95,
) -> dict[str, Any]:
    """Capacity per method and cue noise from the points of a :func:`sweep` with ``cue_noise``.

    For each fraction ``f`` of flipped cue bits, :func:`capacity_from_points` on the scores from
    those cues: the largest load whose mean overlap after recall is ``>= threshold``, per seed
    (0 where no load succeeds).  ``table[method][f"{f:g}"]`` holds ``median``, ``min``, ``max``
    (over seeds) and ``per_seed``.
    """
    table: dict[str, dict[str, Any]] = {m: {} for m in methods}
    for f in cue_noise:
        key = f"{f:g}"
        at_f = [{**p, "scores": {m: p["cue_scores"][m][key] for m in methods}} for p in points]
        cap = capacity_from_points(at_f, methods, threshold)
        for m in methods:
            vals = list(cap[m]["alpha_c_per_seed"].values())
            table[m][key] = {
                "median": float(np.median(vals)),
                "min": float(min(vals)),
                "max": float(max(vals)),
                "per_seed": cap[m]["alpha_c_per_seed"],
            }
    return {"cue_noise": [float(f) for f in cue_noise], "threshold": threshold, "table": table}


def noise_capacity(
    config: CapacityConfig, on_result: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Capacity at each cue noise of ``config.cue_noise``: one :func:`sweep`, every method scored
    from the same noisy cues by the same recall routine, then :func:`noise_capacity_table`.

    Returns the table (``table[method][f"{f:g}"]``: median, min, max and per-seed capacity),
    ``cue_noise``, ``threshold`` and the sweep's ``points``.
    """
    points = sweep(config, on_result)
    return noise_capacity_table(points, config.methods, config.cue_noise, config.threshold) | {
        "points": points
    }


def _robust_fraction(
    field: Any, patterns: torch.Tensor, fractions: Sequence[float], seed: int, threshold: float
) -> tuple[float, list[float]]:
    """Largest flip fraction up to which every grid fraction is still recalled (score > threshold)."""
    scores = [recall_score(field, patterns, f, generator(seed, "noise", f"{f:.4f}")) for f in fractions]
    best = 0.0 if scores and scores[0] > threshold else -1.0
    for f, s in zip(fractions, scores):
        if s <= threshold:
            break
        best = f
    return best, scores


def noise_robustness(
    memory: MemoryConfig,
    alphas: Sequence[float],
    seeds: Sequence[int],
    methods: Sequence[str] = METHODS,
    fractions: Sequence[float] | None = None,
    threshold: float = 0.95,
) -> dict[str, Any]:
    """Largest fraction of flipped cue bits still recalled (mean overlap > threshold), per load and method.

    ``-1`` means even the clean cue fails; ``None`` marks the pseudo-inverse at ``M >= N``.
    """
    fr = list(fractions) if fractions is not None else [round(0.02 * i, 4) for i in range(26)]
    table: dict[str, dict[str, Any]] = {}
    for alpha in alphas:
        row: dict[str, Any] = {}
        for method in methods:
            per_seed = []
            for seed in seeds:
                patterns = _point_patterns(memory, alpha, seed)
                field: Field | None
                if method == "infomorphic":
                    field = train_memory(replace(memory, alpha=alpha, seed=seed), patterns).net.field()
                else:
                    field = rule_field(method, patterns)
                per_seed.append(
                    None if field is None else _robust_fraction(field, patterns, fr, seed, threshold)[0]
                )
            valid = [v for v in per_seed if v is not None]
            row[method] = {"per_seed": per_seed, "mean": float(np.mean(valid)) if valid else None}
        table[f"{alpha:g}"] = row
    return {"fractions": fr, "threshold": threshold, "table": table}


def online_storage(
    memory: MemoryConfig,
    n_total: int,
    group_size: int,
    epochs_per_group: int,
    seed: int = 0,
    n_early: int = 10,
    replay_cues: Sequence[int] = (),
) -> dict[str, Any]:
    """Patterns arrive in groups, learned without revisiting; recall of early and all patterns vs number stored.

    Infomorphic: :func:`~.memory.train_online`, plain and, for each entry of ``replay_cues``,
    with pseudo-rehearsal of its own attractors (method ``infomorphic+replay<cues>``);
    Hebbian: ``W`` accumulates the same groups.  The batch baselines (pseudo-inverse,
    ``descent-l2``, ``mpf``, modern) are deliberately left out: they fit the whole pattern set
    at once, so storing group after group would mean refitting on all earlier patterns.
    """
    patterns = random_patterns(
        n_total, memory.n_neurons, generator(seed, "online-patterns", memory.n_neurons)
    )
    early = patterns[:n_early]
    curves: dict[str, list[dict[str, float]]] = {"infomorphic": []}
    curves.update({f"infomorphic+replay{c}": [] for c in replay_cues})
    curves["hebbian"] = []

    def probe(method: str, field: Any, stored: int) -> None:
        curves[method].append(
            {
                "n_stored": stored,
                "alpha": stored / memory.n_neurons,
                "early": recall_score(field, early),
                "all": recall_score(field, patterns[:stored]),
                "latest": recall_score(field, patterns[max(0, stored - group_size) : stored]),
            }
        )

    for cues in (0, *replay_cues):
        name = "infomorphic" if cues == 0 else f"infomorphic+replay{cues}"

        def on_group(w: torch.Tensor, stored: int, name: str = name) -> None:
            probe(name, linear_field(w), stored)

        train_online(
            replace(memory, seed=seed), patterns, group_size, epochs_per_group, on_group, replay_cues=cues
        )
    for stored in range(group_size, n_total + group_size, group_size):
        stored = min(stored, n_total)
        probe("hebbian", linear_field(hebbian_weights(patterns[:stored])), stored)

    def last_ok(method: str, key: str) -> float:
        ok = [c["alpha"] for c in curves[method] if c[key] >= 0.95]
        return max(ok) if ok else 0.0

    summary = {
        m: {"early_recalled_up_to_alpha": last_ok(m, "early"), "all_recalled_up_to_alpha": last_ok(m, "all")}
        for m in curves
    }
    return {
        "group_size": group_size,
        "epochs_per_group": epochs_per_group,
        "n_early": n_early,
        "replay_cues": list(replay_cues),
        "curves": curves,
        "summary": summary,
    }


@torch.no_grad()
def hebbian_pid_curve(
    memory: MemoryConfig, alphas: Sequence[float], seed: int = 0, scale: float = 1.0
) -> dict[str, Any]:
    """Mean PID atoms (bits) of Hebbian memory neurons against the load.

    Each neuron sees ``T = w_T xi`` and ``R = scale * W_hebb xi`` (``W = (1/N) sum xi xi^T``), fires
    with ``sigmoid(T + R)``, and is decomposed with the binning of the infomorphic memory.
    """
    goal = memory_goal(memory.goal)
    rows = []
    for alpha in alphas:
        patterns = _point_patterns(memory, alpha, seed)
        w = (scale * hebbian_weights(patterns)).float()
        t = memory.external_weight * patterns
        r = patterns @ w.T
        res = neuron_pid(t, r, torch.sigmoid(t + r), memory)
        rows.append(
            {
                "alpha": alpha,
                **dict(zip(goal.atom_names, res.atoms.mean(0).tolist())),
                "H_res": float(res.residual_entropy.mean()),
                "score": recall_score(linear_field(w), patterns),
            }
        )
    return {"scale": scale, "rows": rows}
