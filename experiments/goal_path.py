"""Goals on the straight line between two goals, each trained: is there a valley between them?

    python experiments/goal_path.py --start "$(cat runs/search/best_goal.txt)" \
        --end trivariate-mnist-cmaes --points 5 --seeds 0 --epochs 100 --workers 2
    python experiments/goal_path.py ... --summarise            # only read the runs that exist
    python experiments/goal_path.py ... --figure path.png      # validation accuracy against alpha

A goal search that converges to one goal says nothing about goals it never visited.  This script
trains the goals ``(1 - alpha) * start + alpha * end`` (every gamma, ``H_res`` too) for
``--points`` values of alpha from 0 to 1: if accuracy rises steadily from the searched goal to
a better known one (e.g. a published goal), a search started from the first could have walked
to the second; a dip between them says the two lie in separate basins.  ``--start`` and
``--end``: preset names (``infomorphic goals``), goal expressions or raw vectors over the
searched layer's sources.

Every point trains ``--config`` (a training config, default: MNIST setup 1 with 100 hidden
neurons, ``configs/mnist_setup1_optimised.toml``; ``--set KEY=VALUE`` changes a key) with that
goal in ``--layer`` (``hidden``, or a layer of a wired network), no baselines, one torch thread
per run (``--threads``), by ``infomorphic train --config <out>/configs/<run>.toml`` in a worker
process, into ``<out>/path-a<alpha>-seed<s>``; finished runs are kept and unfinished ones
resumed, so the script can be stopped and started again, and several invocations may share
``--out`` (a run that another process trains is left to it; a failed run makes the script exit
with status 1 after its output).  The ``--epochs`` and ``--eval-every`` given (default 10: every
tenth epoch and the last are evaluated) are part of every run's config.

Prints one JSON line per point: alpha, the goal, and per seed and as median over seeds the
final test and validation accuracy and the validation accuracy at every evaluated epoch
(``val_curve``); then one line with every point.  Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_run import (  # noqa: E402 - the experiments' shared launcher
    at_least,
    check_out,
    report_statuses,
    train_from_config,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "mnist_setup1_optimised.toml"


def path_goals(start: Any, end: Any, points: int) -> list[tuple[float, Any]]:
    """``points`` goals evenly spaced from ``start`` (alpha 0) to ``end`` (alpha 1): each gamma
    ``(1 - alpha) * start + alpha * end``."""
    from infomorphic.goals import Goal

    a, b = start.to_vector(), end.to_vector()
    out = []
    for i in range(points):
        alpha = i / (points - 1)
        vector = [(1.0 - alpha) * x + alpha * y for x, y in zip(a, b)]
        out.append((alpha, Goal.from_vector(vector, start.sources)))
    return out


def run_name(alpha: float, seed: int) -> str:
    """The run directory of one point and seed (alpha to 4 decimals)."""
    return f"path-a{alpha:.4f}-seed{seed}"


def run_one(out: Path, alpha: float, goal: Any, seed: int, base: Any, layer: str) -> str:
    """Train (or resume, or keep) one point's run; ``"reused"``, ``"trained"``, ``"busy"`` or
    ``"failed"``."""
    run_dir = out / run_name(alpha, seed)
    if (run_dir / "summary.json").exists():
        return "reused"
    from infomorphic.goalsearch.search import config_with_goal

    return train_from_config(run_dir, lambda: config_with_goal(base, layer, goal, seed=seed).to_toml())


def point_row(out: Path, alpha: float, goal: Any, seeds: list[int], epochs: int) -> dict[str, Any]:
    """One point's figures from its finished runs (a run short of ``epochs`` is left out and
    named in ``unfinished``)."""
    from infomorphic.runs import read_jsonl

    per_seed: dict[str, Any] = {}
    unfinished = []
    for seed in seeds:
        run_dir = out / run_name(alpha, seed)
        metrics = run_dir / "metrics.jsonl"
        rows = [r for r in read_jsonl(metrics) if r.get("val_acc") is not None] if metrics.exists() else []
        if not (run_dir / "summary.json").exists() or not rows or rows[-1]["epoch"] < epochs:
            unfinished.append(run_dir.name)
            continue
        per_seed[str(seed)] = {
            "test": rows[-1]["test_acc"],
            "val": rows[-1]["val_acc"],
            "val_curve": {str(r["epoch"]): r["val_acc"] for r in rows},
        }

    def median(key: str) -> float | None:
        values = [v[key] for v in per_seed.values()]
        return statistics.median(values) if values else None

    curve: dict[str, float] = {}
    if per_seed:
        common = set.intersection(*(set(v["val_curve"]) for v in per_seed.values()))
        for e in sorted(common, key=int):
            curve[e] = statistics.median(v["val_curve"][e] for v in per_seed.values())
    row = {
        "alpha": alpha,
        "goal": goal.to_expression(),
        "test": median("test"),
        "val": median("val"),
        "val_curve": curve,
        "seeds": per_seed,
    }
    if unfinished:
        row["unfinished"] = unfinished
    return row


def draw(rows: list[dict[str, Any]], path: Path, start: str, end: str) -> None:
    """Validation accuracy (median over seeds) against alpha, one line per evaluated epoch,
    and the final test accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r["val_curve"]]
    if not done:
        raise SystemExit("error: no finished point to draw yet")
    epochs = sorted(set.intersection(*(set(r["val_curve"]) for r in done)), key=int)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    cmap = plt.get_cmap("viridis")
    for i, e in enumerate(epochs):
        ax.plot(
            [r["alpha"] for r in done],
            [100 * r["val_curve"][e] for r in done],
            marker="o",
            color=cmap(i / max(1, len(epochs) - 1)),
            label=f"validation, epoch {e}",
        )
    ax.plot(
        [r["alpha"] for r in done],
        [100 * r["test"] for r in done],
        "k--",
        marker="s",
        label="test, last epoch",
    )
    ax.set_xlabel(f"alpha: (1 - alpha) {start} + alpha {end}")
    ax.set_ylabel("accuracy (%), median over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _label(text: str, fallback: str) -> str:
    """A goal's text for the figure's axis, or ``fallback`` when it is too long (an expression)."""
    return text if len(text) <= 24 else fallback


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--start", required=True, help="goal at alpha = 0 (preset, expression or vector)")
    p.add_argument("--end", required=True, help="goal at alpha = 1")
    p.add_argument("--points", type=at_least(2), default=5, help="goals on the line, ends included")
    p.add_argument("--seeds", nargs="+", type=at_least(0), default=[0])
    p.add_argument("--epochs", type=at_least(1), default=100)
    p.add_argument("--eval-every", type=at_least(1), default=10)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config (TOML)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="change a key of the config")
    p.add_argument("--layer", default="hidden", help="the layer whose goal changes")
    p.add_argument("--workers", type=at_least(1), default=1, help="runs at once")
    p.add_argument("--threads", type=at_least(1), default=1, help="torch threads per run")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "goal-path")
    p.add_argument("--summarise", action="store_true", help="only summarise the runs that exist")
    p.add_argument("--figure", type=Path, metavar="PNG", help="draw accuracy against alpha")
    args = p.parse_args()
    check_out(p, args.out)

    from infomorphic.cli_selforg import parse_sets
    from infomorphic.config import TrainConfig, load_config
    from infomorphic.goals import Goal
    from infomorphic.goalsearch.search import layer_letters

    try:
        overrides = parse_sets(args.set, TrainConfig)
        base = load_config(args.config, overrides).replace(
            epochs=args.epochs, eval_every=args.eval_every, threads=args.threads, baselines=()
        )
        letters = layer_letters(base, args.layer)
        start, end = Goal.resolve(args.start, letters), Goal.resolve(args.end, letters)
    except (ValueError, KeyError) as exc:
        p.exit(2, f"error: {exc}\n")
    goals = path_goals(start, end, args.points)

    failed = 0
    if not args.summarise:
        args.out.mkdir(parents=True, exist_ok=True)
        jobs = [(alpha, goal, seed) for alpha, goal in goals for seed in args.seeds]
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            statuses = list(pool.map(lambda j: run_one(args.out, j[0], j[1], j[2], base, args.layer), jobs))
        failed = report_statuses(statuses)

    rows = [point_row(args.out, alpha, goal, args.seeds, args.epochs) for alpha, goal in goals]
    for row in rows:
        print(json.dumps({k: v for k, v in row.items() if k != "seeds"}), flush=True)
    print(
        json.dumps({"start": start.to_expression(), "end": end.to_expression(), "points": rows}), flush=True
    )
    if args.figure is not None:
        draw(rows, args.figure, _label(args.start, "start"), _label(args.end, "end"))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
