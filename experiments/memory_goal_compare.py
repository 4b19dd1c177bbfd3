"""The best goals of a memory-goal search against the redundancy goal, in the capacity harness, several seeds.

    python experiments/memory_goal_compare.py --storage URL --study memory-tpe --top 3 \
        --seeds 0 1 2 --grid 1.50:1.80:0.02 --workers 2 --out runs/memory-goal-compare

The search's objective is a proxy (the largest load of a coarse grid recalled with one seed,
``infomorphic search --task memory``); this script measures the capacity proper of its ``--top``
completed trials with the highest proxy (distinct goals) and of the redundancy goal ``{T}{R}``
(Blümel et al. 2025: alpha_c = 1.59 patterns per neuron; their optimised goals 1.68-1.70): for
each goal and seed, a fresh memory (the search's memory settings, the goal replaced) at every
load of the finer ``--grid`` (``infomorphic capacity``'s harness, ``tasks.capacity.sweep``:
the same patterns for every goal), alpha_c = the largest load recalled with a clean-cue score
>= the search's threshold.  A goal whose largest grid load is recalled gets ``at_grid_top``
(its alpha_c is at least that).  Each goal's points go to ``<out>/<goal>.json`` (a goal whose
file exists is not run again); one JSON line per goal (alpha_c per seed, median, min, max),
then one line with all, ``<out>/summary.json`` and ``<out>/table.md``.  Never imported by the
package.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storage", required=True)
    p.add_argument("--study", required=True)
    p.add_argument("--top", type=int, default=3)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--grid", default="1.50:1.80:0.02", help="loads start:stop:step (or a comma list)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "memory-goal-compare")
    args = p.parse_args()

    from infomorphic.goalsearch.memory_search import MemorySearchSettings, parse_loads
    from infomorphic.goalsearch.search import load_search, top_trials
    from infomorphic.tasks.capacity import CapacityConfig, capacity_from_points, sweep
    from infomorphic.tasks.memory import memory_goal

    try:
        study, settings = load_search(args.storage, args.study)
    except ValueError as exc:  # no such database or study: nothing written
        p.exit(2, f"error: {exc}\n")
    if not isinstance(settings, MemorySearchSettings):
        raise SystemExit(f"error: study {args.study!r} is not a memory-goal search")
    grid = parse_loads(args.grid)
    entries: list[dict[str, Any]] = [
        {"name": f"top{rank}", "trial": trial.number, "proxy": trial.value, "goal": goal}
        for rank, (trial, goal) in enumerate(top_trials(study, settings, args.top), start=1)
    ]
    if not entries:
        raise SystemExit(f"error: study {args.study!r} has no completed trial yet")
    entries.append({"name": "redundancy", "trial": None, "proxy": None, "goal": "{T}{R}"})

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for entry in entries:
        path = args.out / f"{entry['name']}.json"
        goal = memory_goal(entry["goal"])
        if path.exists():
            points = json.loads(path.read_text())["points"]
        else:
            config = CapacityConfig(
                memory=settings.memory_for(goal),
                alphas=grid,
                seeds=tuple(args.seeds),
                methods=("infomorphic",),
                threshold=settings.threshold,
                workers=args.workers,
            )
            points = sweep(config)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"entry": entry, "grid": grid, "points": points}))
            tmp.replace(path)
        cap = capacity_from_points(points, ("infomorphic",), settings.threshold)["infomorphic"]
        per_seed = {int(k): v for k, v in cap["alpha_c_per_seed"].items()}
        values = list(per_seed.values())
        row = {
            **entry,
            "alpha_c_per_seed": per_seed,
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "at_grid_top": [s for s, v in per_seed.items() if v >= max(grid)],
            "cpu_hours": sum(p.get("cpu_seconds", 0.0) for p in points) / 3600,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {"study": args.study, "grid": grid, "seeds": args.seeds, "goals": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = ["| goal | search proxy (seed 0) | alpha_c median (min-max) | per seed |", "|---|---|---|---|"]
    for r in rows:
        proxy = "-" if r["proxy"] is None else f"{r['proxy']:.2f}"
        seeds = ", ".join(f"{v:.2f}" for v in r["alpha_c_per_seed"].values())
        spread = f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
        lines.append(f"| {r['name']}: `{r['goal']}` | {proxy} | {spread} | {seeds} |")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    print(json.dumps({"experiment": "memory_goal_compare", **summary}), flush=True)


if __name__ == "__main__":
    main()
