"""The best goals of goal searches against the published and the naive goal, full length, several seeds.

    python experiments/search_compare.py --storage URL --studies mnist-s1-tpe mnist-s1-cmaes \
        --top 3 --seeds 0 1 2 --epochs 100 --workers 2 --out runs/search-compare
    python experiments/search_compare.py ... --summarise        # only read the runs that exist

For each study the ``--top`` completed trials with the highest validation accuracy (with the
halving / hyperband pruners a completed trial trained every epoch of the search's config, so
its value is the full-length validation accuracy) give a goal; beside them the published
optimised goal (``trivariate-mnist-tpe``, Schneider et al. 2025) and the naive goal
(``trivariate-naive``: maximise the redundancy ``{F}{C}``) when the searched layer has the
sources F, C and L (else the goal the searched config gives that layer, as ``configured``).
Each goal is trained with the search's own training config (any network, also a wired one
searched with ``--layer NAME``; every key but the epochs, with ``--epochs``, the seed and the
threads; not a search's ``--train-subset``: runs train on the whole training split) in the
searched layer, for every seed of ``--seeds``, by ``infomorphic train --config
<out>/configs/<goal>-seed<s>.toml`` in a worker process (one torch thread), into
``<out>/<goal>-seed<s>``; finished runs are kept and unfinished ones resumed, so the script can
be stopped and started again, and several invocations may share ``--out`` (a run that another
process trains is left to it; a failed run makes the script exit with status 1 after its
output). Then, per study, the parameter importance of its completed trials (fANOVA and mean
decrease in impurity, ``infomorphic ablate --study``) into ``<out>/importance-<study>/``, and
the search's compute (``infomorphic search status``).

Two checks come with it: a searched goal's run with the search's seed (the first of its
``--seeds`` when its trials trained several) must reproduce the validation accuracy its trial
reached with that seed (same config, same seed, one thread: ``reproduces_search``),
and for the search's seed each reference goal's validation accuracy at every rung of the halving
pruner (the epochs where trials were stopped) is set beside the study's promotion cut there (the
top ``1/eta`` of the trials that reached the rung): would the pruner have kept that goal, and
where would it have ranked (``rungs``)?  For a search without pruning, its rank among the
study's trials at the search's epochs.  With ``--epochs`` longer than the search's, the run
reproduces the trial at the trial's last epoch (no learning-rate schedule: the first epochs of a
longer run are the trial's).

Prints one JSON line per goal (median, min and max test and validation accuracy over seeds) and
one line with everything: the goals, the importances (the four largest beside the paper's four
critical gammas ``{F}{C}``, ``{F}{L}``, ``{F}{C}{L}``, ``{FC}{FL}``) and each search's CPU hours.
Also writes ``<out>/summary.json``, ``<out>/table.md`` and ``<out>/curves.png`` (every goal's test
and validation accuracy after each evaluated epoch, median and range over the seeds; the numbers
are ``curves`` in the summary).  Never imported by the package.
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
PAPER_CRITICAL = ("{F}{C}", "{F}{L}", "{F}{C}{L}", "{FC}{FL}")
"""The four gammas the paper's ablation found critical (Schneider et al. 2025, Fig. 5)."""
REFERENCES = {"published": "trivariate-mnist-tpe", "naive": "trivariate-naive"}


def top_goals(storage: str, study_name: str, top: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """The ``top`` completed trials of a study by validation accuracy (distinct goals), the
    study and its settings."""

    from infomorphic.goalsearch.search import load_search, top_trials

    study, settings = load_search(storage, study_name)
    picked = [
        {
            "name": f"{study_name}-top{rank}",
            "study": study_name,
            "trial": trial.number,
            "search_val_acc": trial.value,
            "search_val_per_seed": trial.user_attrs.get("val_acc_per_seed"),  # several seeds per trial
            "search_epochs": trial.user_attrs.get("epochs"),
            "goal": goal,
        }
        for rank, (trial, goal) in enumerate(top_trials(study, settings, top), start=1)
    ]
    return picked, study, settings


def goal_config(settings: Any, goal: str, seed: int, threads: int, epochs: int | None) -> Any:
    """The search's training config with ``goal`` (a preset name or expression over the
    searched layer's sources) in the searched layer, the ``seed`` and ``threads`` given, its
    epochs unless ``epochs``, and no baselines (the search's trials trained none either)."""
    from infomorphic.goals import Goal
    from infomorphic.goalsearch.search import config_with_goal, layer_letters

    letters = layer_letters(settings.config, settings.layer)
    changes: dict[str, Any] = {"seed": seed, "threads": threads}
    if epochs is not None:
        changes["epochs"] = epochs
    return config_with_goal(settings.config, settings.layer, Goal.resolve(goal, letters), **changes)


def network_key(settings: Any, epochs: int | None) -> dict[str, Any]:
    """What every goal's run of a study shares: its training config without the searched
    layer's goal, seed, threads and baselines (two studies compared together must agree on it)."""
    config = settings.config.replace(seed=0, threads=1, baselines=(), epochs=epochs or settings.config.epochs)
    key = config.to_dict()  # a deep copy: the wiring's layers may be changed below
    if config.wiring is not None:
        for entry in key["wiring"]["layers"]:
            if entry.get("name") == settings.layer:
                entry["goal"] = None
    else:
        key["hidden_goal" if settings.layer == "hidden" else "readout_goal"] = None
    return {"layer": settings.layer, **key}


def references(settings: Any) -> dict[str, str]:
    """The reference goals beside the searched ones: the published optimised and the naive goal
    for a layer with the sources F, C, L; else the goal the searched config gives the layer."""
    from infomorphic.goals import Goal
    from infomorphic.goalsearch.search import layer_goal, layer_letters

    letters = layer_letters(settings.config, settings.layer)
    if letters == "FCL":
        return dict(REFERENCES)
    goal = layer_goal(settings.config, settings.layer)
    if goal is None:
        raise SystemExit(
            f"error: layer {settings.layer!r} has no goal in the searched config to compare with"
        )
    return {"configured": goal if isinstance(goal, str) else Goal.resolve(goal, letters).to_expression()}


def run_one(
    out: Path, name: str, goal: str, seed: int, settings: Any, threads: int, epochs: int | None
) -> str:
    """Train (or resume, or keep) ``<out>/<name>-seed<seed>``; ``"reused"``, ``"trained"``,
    ``"busy"`` (another process trains it now) or ``"failed"``."""
    run_dir = out / f"{name}-seed{seed}"
    if (run_dir / "summary.json").exists():
        return "reused"
    return train_from_config(run_dir, lambda: goal_config(settings, goal, seed, threads, epochs).to_toml())


def run_metrics(out: Path, name: str, seed: int) -> list[dict[str, Any]] | None:
    """The epochs of goal ``name``'s run with ``seed`` (``<out>/<name>-seed<seed>/metrics.jsonl``),
    or None when that run has not written any."""
    from infomorphic.runs import read_jsonl

    path = out / f"{name}-seed{seed}" / "metrics.jsonl"
    return read_jsonl(path) if path.exists() else None


def rung_check(out: Path, entry: dict[str, Any], seed: int, study: Any, settings: Any) -> dict[str, Any]:
    """For the run ``<out>/<name>-seed<seed>``: per rung of the study's halving pruner, the run's
    validation accuracy there, the study's promotion cut (top ``1/eta`` of the trials that
    reached the rung), whether the run passes it and its rank among those trials (1 = best).
    For a study without pruning: the run's validation accuracy at the study's epochs, its rank
    among the study's completed trials there and their best."""
    rows = run_metrics(out, entry["name"], seed)
    if rows is None:
        return {}
    by_epoch = {row["epoch"]: row["val_acc"] for row in rows}
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name in ("COMPLETE", "PRUNED")]
    if not settings.prune:  # every trial trained the search's epochs: rank there among them
        last = settings.config.epochs
        values = [t.value for t in trials if t.state.name == "COMPLETE"]
        if last not in by_epoch or not values:
            return {}
        value = by_epoch[last]
        return {
            str(last): {
                "val_acc": value,
                "best": max(values),
                "rank": 1 + sum(v > value for v in values),
                "trials": len(values),
            }
        }
    if settings.pruner != "halving":
        return {}
    eta, rung, rungs = settings.reduction_factor, settings.min_epochs, {}
    while rung in by_epoch:
        reached = sorted(
            (t.intermediate_values[rung] for t in trials if rung in t.intermediate_values), reverse=True
        )
        if reached:
            cut = reached[max(0, len(reached) // eta - 1)]
            value = by_epoch[rung]
            rungs[str(rung)] = {
                "val_acc": value,
                "cut": cut,
                "passes": value >= cut,
                "rank": 1 + sum(v > value for v in reached),
                "trials": len(reached),
            }
        rung *= eta
    return rungs


def reproduction_target(row: dict[str, Any], settings: Any) -> tuple[int, float | None]:
    """The seed whose run must reproduce a searched goal's trial, and the validation accuracy the
    trial reached with it: the search's seed and the trial's value, or, for a search whose trials
    trained several seeds, the first of them and the trial's accuracy for that seed (not the mean)."""
    seeds = getattr(settings, "seeds", ())
    seed = seeds[0] if seeds else settings.config.seed
    per_seed = row.get("search_val_per_seed") or {}
    return seed, per_seed.get(str(seed), row.get("search_val_acc"))


def _stats(values: list[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise_goal(out: Path, entry: dict[str, Any], seeds: list[int]) -> dict[str, Any]:
    test, val, epochs = [], [], []
    for seed in seeds:
        rows = run_metrics(out, entry["name"], seed) or []
        if rows:
            test.append(rows[-1]["test_acc"])
            val.append(rows[-1]["val_acc"])
            epochs.append(rows[-1]["epoch"])
    return {**entry, "epochs": epochs, "test": _stats(test), "val": _stats(val)}


def learning_curves(out: Path, entries: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """Per goal, the validation and test accuracy after every epoch that each of its runs
    evaluated: ``epochs`` and, per metric, the ``median`` / ``min`` / ``max`` over seeds (a goal
    that has no run yet for some seed is left out)."""
    curves: dict[str, Any] = {}
    for entry in entries:
        per_seed = []
        for seed in seeds:
            rows = run_metrics(out, entry["name"], seed) or []
            per_seed.append({r["epoch"]: r for r in rows if r.get("val_acc") is not None})
        epochs = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
        if not epochs:
            continue
        curve: dict[str, Any] = {"epochs": epochs}
        for metric in ("val", "test"):
            values = [[s[e][f"{metric}_acc"] for s in per_seed] for e in epochs]
            curve[metric] = {
                "median": [statistics.median(v) for v in values],
                "min": [min(v) for v in values],
                "max": [max(v) for v in values],
            }
        curves[entry["name"]] = curve
    return curves


def curves_figure(curves: dict[str, Any], n_seeds: int) -> Any:
    """Test (left) and validation (right) accuracy per epoch of every goal: the median over the
    seeds, shaded between their minimum and maximum."""
    from infomorphic.goalsearch.plots import figure

    fig = figure(9.0, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (metric, label) in zip(axes, (("test", "test"), ("val", "validation"))):
        for i, (name, curve) in enumerate(curves.items()):
            x = curve["epochs"]
            c = curve[metric]
            ax.plot(x, [100 * v for v in c["median"]], color=f"C{i}", lw=1.2, label=name)
            ax.fill_between(
                x, [100 * v for v in c["min"]], [100 * v for v in c["max"]], color=f"C{i}", alpha=0.2
            )
        ax.set_xlabel("epoch")
        ax.set_title(
            f"{label} accuracy: median of {n_seeds} seeds, shaded: range",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
    finals = [100 * c["test"]["min"][-1] for c in curves.values()]
    if finals:  # the last epochs decide: start the axis a few points below the lowest final value
        axes[0].set_ylim(min(finals) - 4, None)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=7, loc="lower right")
    return fig


def _pct(s: dict[str, Any] | None) -> str:
    if s is None:
        return "-"
    return f"{100 * s['median']:.2f}% ({100 * s['min']:.2f}-{100 * s['max']:.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--storage", required=True, help="optuna storage URL of the searches")
    p.add_argument("--studies", nargs="+", required=True)
    p.add_argument("--top", type=at_least(1), default=3)
    p.add_argument("--seeds", nargs="+", type=at_least(0), default=[0, 1, 2])
    p.add_argument("--epochs", type=at_least(1), help="training epochs (default: the search's)")
    p.add_argument("--workers", type=at_least(1), default=1, help="runs at once")
    p.add_argument("--threads", type=at_least(1), default=1, help="torch threads per run")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "search-compare")
    p.add_argument("--summarise", action="store_true", help="only summarise the runs that exist")
    p.add_argument("--no-importance", action="store_true", help="skip the fANOVA / MDI importances")
    args = p.parse_args()
    check_out(p, args.out)

    from infomorphic.goalsearch.search import search_status

    entries: list[dict[str, Any]] = []
    base: dict[str, Any] | None = None
    searches, loaded = {}, {}
    for name in args.studies:
        try:
            picked, study, settings = top_goals(args.storage, name, args.top)
        except ValueError as exc:  # no such database or study: nothing written
            p.exit(2, f"error: {exc}\n")
        loaded[name] = study, settings
        if not picked:
            raise SystemExit(f"error: study {name!r} has no completed trial yet")
        entries += picked
        this = network_key(settings, args.epochs)
        if base is not None and this != base:
            differ = sorted(k for k in set(this) | set(base) if this.get(k) != base.get(k))
            raise SystemExit(
                f"error: study {name!r} trains another network than {args.studies[0]!r} "
                f"(they differ in {', '.join(differ)})"
            )
        base = this
        status = search_status(args.storage, name)
        searches[name] = {
            k: status[k]
            for k in ("complete", "pruned", "failed", "total", "cpu_hours", "epochs_trained", "sampler")
        }
        searches[name]["pruner"] = status["pruner"]
    args.out.mkdir(parents=True, exist_ok=True)
    first = loaded[args.studies[0]][1]
    for label, goal in references(first).items():
        entries.append({"name": label, "study": None, "trial": None, "goal": goal})

    failed = 0
    if not args.summarise:
        jobs = [(e["name"], e["goal"], s) for e in entries for s in args.seeds]
        with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
            failed = report_statuses(
                list(
                    pool.map(
                        lambda j: run_one(args.out, j[0], j[1], j[2], first, args.threads, args.epochs), jobs
                    )
                )
            )

    from infomorphic.runs import atomic_write, write_json

    rows = [summarise_goal(args.out, e, args.seeds) for e in entries]
    for row in rows:
        search_seed, expected = reproduction_target(row, loaded[row["study"] or args.studies[0]][1])
        if row["study"] is not None:  # the trial's run again: the same validation accuracy
            at = {e["epoch"]: e["val_acc"] for e in run_metrics(args.out, row["name"], search_seed) or []}
            if row["search_epochs"] in at:  # a longer run passes the trial's epoch on its way
                row["reproduces_search"] = abs(at[row["search_epochs"]] - expected) < 1e-6
        else:  # a reference goal against each study's pruner
            row["rungs"] = {
                name: rung_check(args.out, row, search_seed, *loaded[name]) for name in args.studies
            }
        shown = ("name", "study", "trial", "test", "val", "epochs", "reproduces_search", "rungs")
        print(json.dumps({k: row[k] for k in shown if k in row}), flush=True)

    importance: dict[str, Any] = {}
    if not args.no_importance:
        from infomorphic.goalsearch.importance import write_importances

        for name in args.studies:
            study, _ = loaded[name]
            try:
                record = write_importances(study, args.out / f"importance-{name}")
            except ValueError as exc:  # too few completed trials
                importance[name] = {"error": str(exc)}
                continue
            importance[name] = {
                ev: {"top4": list(record[ev])[:4], "paper_critical_rank": _ranks(record[ev])}
                for ev in ("fanova", "mdi")
            }

    curves = learning_curves(args.out, entries, args.seeds)
    if curves:
        from infomorphic.goalsearch.plots import save

        save(curves_figure(curves, len(args.seeds)), args.out / "curves.png")
    summary = {
        "goals": rows,
        "searches": searches,
        "importance": importance,
        "seeds": args.seeds,
        "curves": curves,
    }
    write_json(args.out / "summary.json", summary)
    lines = [
        "| goal | search val. acc. (seed 0) | test, median (min-max) | validation, median (min-max) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        found = row.get("search_val_acc")
        lines.append(
            f"| {row['name']} | {'-' if found is None else f'{100 * found:.2f}%'} | {_pct(row['test'])} | "
            f"{_pct(row['val'])} |"
        )
    atomic_write(args.out / "table.md", lambda fh: fh.write("\n".join(lines) + "\n"))
    shown_summary = {
        **summary,
        "curves": str(args.out / "curves.png") if curves else None,
    }  # the numbers: summary.json
    print(json.dumps({"experiment": "search_compare", **shown_summary}), flush=True)
    if failed:
        raise SystemExit(1)


def _ranks(values: dict[str, float]) -> dict[str, int]:
    """Rank (1 = most important) of each of the paper's four critical gammas."""
    order = list(values)
    return {atom: order.index(atom) + 1 for atom in PAPER_CRITICAL if atom in order}


if __name__ == "__main__":
    main()
