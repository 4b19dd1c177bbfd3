"""What each gamma contributes: ablations and modulations of a goal, trained over several seeds.

Schneider et al. 2025 (arXiv:2412.02482), appendix A.10 and Figs. 5B-C, 9 (sensitivity analysis):

- single ablation: each non-zero gamma set to 0 in turn;
- cumulative ablation: gammas set to 0 one after another, in order of the smallest individual
  effect (the drop of mean validation accuracy in the single ablation);
- modulation: each gamma scaled by 1 +- ``relative`` (default 10 %) and shifted by +- ``absolute``
  (default 0.1).

Every variant is trained with each seed (same data split; the seed changes initialisation,
sampling and batch order) and reported as mean, min and max of the validation and test accuracy.
Finished runs are kept in ``<out>/runs/`` and reused when the ablation is run again.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig
from ..goals import H_RES, Goal, paper_order
from ..runs import atomic_write, read_json, write_json
from .search import config_with_goal

__all__ = [
    "Variant",
    "KINDS",
    "single_ablations",
    "cumulative_ablations",
    "modulations",
    "ablation_order",
    "evaluate_variants",
    "run_ablation",
    "write_table",
]

KINDS = ("single", "cumulative", "relative", "absolute")
"""Parts of an ablation study, in the order they run (cumulative needs single)."""


@dataclass(frozen=True)
class Variant:
    """One modified goal: ``kind`` (reference, zero, cumulative, relative, absolute), a label,
    the atoms it changes and the goal itself."""

    kind: str
    label: str
    atoms: tuple[str, ...]
    goal: Goal


def _names(goal: Goal) -> list[str]:
    """The goal's non-zero terms in the papers' order (``H_res`` last)."""
    order = (*paper_order(goal.sources), H_RES)
    return [n for n in order if goal.gamma.get(n, 0.0) != 0.0]


def single_ablations(goal: Goal, atoms: Sequence[str] | None = None) -> list[Variant]:
    """One variant per non-zero gamma (or per name in ``atoms``), with that gamma set to 0."""
    names = _names(goal) if atoms is None else [goal.canonical(a) for a in atoms]
    return [Variant("zero", f"{n} = 0", (n,), goal.with_gamma({n: 0.0})) for n in names]


def cumulative_ablations(goal: Goal, order: Sequence[str]) -> list[Variant]:
    """Variant ``k`` (1-based) sets the first ``k`` names of ``order`` to 0 together."""
    names = [goal.canonical(a) for a in order]
    out = []
    for k in range(1, len(names) + 1):
        zeroed = tuple(names[:k])
        out.append(
            Variant(
                "cumulative",
                f"{k} zeroed (+ {zeroed[-1]})",
                zeroed,
                goal.with_gamma({n: 0.0 for n in zeroed}),
            )
        )
    return out


def modulations(
    goal: Goal, relative: float = 0.1, absolute: float = 0.1, kinds: Sequence[str] = ("relative", "absolute")
) -> list[Variant]:
    """Each non-zero gamma times ``1 +- relative`` and/or plus ``+- absolute``."""
    out = []
    for n in _names(goal):
        g = goal.gamma[n]
        if "relative" in kinds:
            out += [
                Variant(
                    "relative",
                    f"{n} x{1 + s * relative:g}",
                    (n,),
                    goal.with_gamma({n: g * (1 + s * relative)}),
                )
                for s in (1, -1)
            ]
        if "absolute" in kinds:
            out += [
                Variant(
                    "absolute",
                    f"{n} {'+' if s > 0 else '-'}{absolute:g}",
                    (n,),
                    goal.with_gamma({n: g + s * absolute}),
                )
                for s in (1, -1)
            ]
    return out


def ablation_order(
    rows: Sequence[dict[str, Any]], reference: dict[str, Any], metric: str = "val"
) -> list[str]:
    """Atoms of single-ablation ``rows`` by increasing effect: drop of mean ``metric`` accuracy
    from ``reference`` (ties in the papers' order)."""
    singles = [r for r in rows if r["kind"] == "zero"]
    return [
        r["atoms"][0]
        for r in sorted(singles, key=lambda r: reference[f"{metric}_mean"] - r[f"{metric}_mean"])
    ]


# --------------------------------------------------------------------------- training
def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_")[:60]


def evaluate_variants(
    config: TrainConfig,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    out_dir: Path,
    *,
    layer: str = "hidden",
    data: Any | None = None,
    start_index: int = 0,
    on_run: Callable[[Variant, int, dict[str, Any]], None] | None = None,
    fit_fn: Callable[..., dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Train every variant with every seed; one row per variant with per-seed and summary accuracies.

    ``fit_fn`` (default :func:`infomorphic.train.fit`) is a hook for tests.  A run directory
    that already holds a ``summary.json`` is read instead of trained again.
    """
    from ..train import fit

    fit_fn = fit_fn or fit
    rows = []
    for i, variant in enumerate(variants, start=start_index):
        vals, tests = [], []
        for seed in seeds:
            run_dir = Path(out_dir) / "runs" / f"{i:03d}-{variant.kind}-{_slug(variant.label)}-seed{seed}"
            done = run_dir / "summary.json"
            if done.exists():
                summary = read_json(done)
            else:
                cfg = config_with_goal(config, layer, variant.goal, seed=seed)
                # a run killed earlier continues from its checkpoint (or starts afresh if it had none)
                resume = (run_dir / "checkpoint.pt").exists()
                if not resume and (run_dir / "config.json").exists():
                    (run_dir / "config.json").unlink()
                summary = fit_fn(cfg, run_dir=run_dir, progress=False, data=data, resume=resume)
            vals.append(float(summary["val_acc"]))
            tests.append(float(summary["test_acc"]))
            if on_run is not None:
                on_run(variant, seed, summary)
        rows.append(
            {
                "kind": variant.kind,
                "label": variant.label,
                "atoms": list(variant.atoms),
                "goal": variant.goal.to_expression(),
                "vector": variant.goal.to_vector(),
                "seeds": list(seeds),
                "val": vals,
                "test": tests,
                **{
                    f"{m}_{s}": float(f(v))
                    for m, v in (("val", vals), ("test", tests))
                    for s, f in (("mean", np.mean), ("min", np.min), ("max", np.max))
                },
            }
        )
    return rows


def run_ablation(
    config: TrainConfig,
    goal: Goal,
    out_dir: Path,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    kinds: Sequence[str] = KINDS,
    layer: str = "hidden",
    relative: float = 0.1,
    absolute: float = 0.1,
    data: Any | None = None,
    on_run: Callable[[Variant, int, dict[str, Any]], None] | None = None,
    fit_fn: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The reference goal and the requested parts of the sensitivity analysis; writes
    ``ablation.json``, ``ablation.csv`` and the figures into ``out_dir``.

    Returns the JSON record: ``reference`` row, ``rows`` (all variants), ``order`` (cumulative
    order by smallest individual effect) and the settings.
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown ablation parts {unknown}; choose from {', '.join(KINDS)}")
    if not seeds:
        raise ValueError("give at least one seed")
    # every variant is built (and so validated) before the first run trains
    modulations(goal, relative, absolute, [k for k in kinds if k in ("relative", "absolute")])
    out_dir = Path(out_dir)

    def evaluate(variants: Sequence[Variant], start_index: int = 0) -> list[dict[str, Any]]:
        return evaluate_variants(
            config,
            variants,
            seeds,
            out_dir,
            layer=layer,
            data=data,
            start_index=start_index,
            on_run=on_run,
            fit_fn=fit_fn,
        )

    reference = evaluate([Variant("reference", "reference", (), goal)])[0]
    rows: list[dict[str, Any]] = []
    order: list[str] = []
    index = 1
    if "single" in kinds or "cumulative" in kinds:
        singles = single_ablations(goal)
        rows += evaluate(singles, start_index=index)
        index += len(singles)
        order = ablation_order(rows, reference)
    if "cumulative" in kinds:
        cumulative = cumulative_ablations(goal, order)
        rows += evaluate(cumulative, start_index=index)
        index += len(cumulative)
    mods = modulations(goal, relative, absolute, [k for k in kinds if k in ("relative", "absolute")])
    if mods:
        rows += evaluate(mods, start_index=index)
    record = {
        "goal": goal.to_expression(),
        "layer": layer,
        "seeds": list(seeds),
        "kinds": list(kinds),
        "relative": relative,
        "absolute": absolute,
        "config": config.to_dict(),
        "reference": reference,
        "order": order,
        "rows": rows,
    }
    write_json(out_dir / "ablation.json", record)
    write_table(out_dir / "ablation.csv", [reference, *rows], reference)
    from .plots import ablation_figures

    ablation_figures(record, out_dir)
    return record


def write_table(path: Path, rows: Sequence[dict[str, Any]], reference: dict[str, Any]) -> None:
    """CSV: kind, label, mean / min / max validation and test accuracy, change of mean vs reference."""
    columns = [
        "kind",
        "label",
        "val_mean",
        "val_min",
        "val_max",
        "test_mean",
        "test_min",
        "test_max",
        "delta_val_mean",
        "delta_test_mean",
        "goal",
    ]

    def write(fh: Any) -> None:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow(
                [
                    r["kind"],
                    r["label"],
                    *(f"{r[c]:.6f}" for c in columns[2:8]),
                    f"{r['val_mean'] - reference['val_mean']:.6f}",
                    f"{r['test_mean'] - reference['test_mean']:.6f}",
                    r["goal"],
                ]
            )

    atomic_write(Path(path), write)
