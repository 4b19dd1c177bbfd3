"""How goal searches progressed, trial by trial: one figure and one JSON line from exported trials.

    python experiments/search_progress.py \\
        --search "CMA-ES=experiments/results/search-mnist-s1-cmaes-e50-trials.jsonl" \\
        --search "GP=experiments/results/search-mnist-s1-gp-e50-trials.jsonl" \\
        --reference "published goal=0.9419" --block 24 --figure docs/figures/search-progress.png

Each ``--search LABEL=FILE`` is the export of one study (``infomorphic search export``, JSON
lines); only the study's own complete trials count (a trial added by ``--warm-start`` carries
the user attribute ``warm_start`` and is left out, but the best of them is drawn as the level
the search started from).  The figure has one panel per search: every own trial's value (the
validation accuracy, in %) against its position among the own trials, the best so far, the
median of each block of ``--block`` trials, and each ``--reference LABEL=VALUE`` (a fraction) as
a horizontal line.  The trust region's radius (user attribute ``trust_region`` of a GP search
with ``--trust-region``) is drawn on a second axis where trials record it.

Prints one JSON line: per search the own trials, the warm-start best, the best own trial (number,
value, test accuracy), and per block the best and the median.  Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from infomorphic.goalsearch.warmstart import WARM_START_KEY


def _pair(text: str, what: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not label or not value:
        raise SystemExit(f"error: {what} must be LABEL=VALUE, got {text!r}")
    return label, value


def read_trials(path: Path) -> list[dict[str, Any]]:
    """The complete trials of an export (one JSON object per line), in the order of their numbers."""
    if not path.is_file():
        raise SystemExit(
            f"error: no such file: {path} (write it with: infomorphic search export --out DIR > {path})"
        )
    trials = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"error: {path}:{i}: not a JSON line ({exc.msg})") from None
        if record.get("state") == "COMPLETE" and isinstance(record.get("value"), (int, float)):
            trials.append(record)
    return sorted(trials, key=lambda r: r["number"])


def split_warm(trials: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The study's own trials and those added by ``--warm-start`` (user attribute ``warm_start``)."""
    own = [t for t in trials if WARM_START_KEY not in t.get("user_attrs", {})]
    return own, [t for t in trials if WARM_START_KEY in t.get("user_attrs", {})]


def summarise(trials: list[dict[str, Any]], block: int) -> dict[str, Any]:
    """The search's own trials in numbers: count, warm-start best, best, and per block best and median (%)."""
    own, warm = split_warm(trials)
    best = max(own, key=lambda t: (t["value"], -t["number"])) if own else None
    blocks = [own[i : i + block] for i in range(0, len(own), block)]
    return {
        "own_trials": len(own),
        "warm_start_trials": len(warm),
        "warm_start_best": None if not warm else round(100 * max(t["value"] for t in warm), 2),
        "best": None
        if best is None
        else {
            "number": best["number"],
            "val_acc": round(100 * best["value"], 2),
            "test_acc": None
            if "test_acc" not in best["user_attrs"]
            else round(100 * best["user_attrs"]["test_acc"], 2),
        },
        "blocks": [
            {
                "trials": f"{b[0]['number']}-{b[-1]['number']}",
                "best": round(100 * max(t["value"] for t in b), 2),
                "median": round(100 * statistics.median(t["value"] for t in b), 2),
            }
            for b in blocks
        ],
    }


def progress_figure(
    searches: dict[str, list[dict[str, Any]]], references: dict[str, float], block: int, low: float
) -> Any:
    """One panel per search: own trials, best so far, block medians, references, trust radius."""
    import numpy as np

    from infomorphic.goalsearch.plots import figure

    fig = figure(4.2 * len(searches), 3.4)
    axes = fig.subplots(1, len(searches), sharey=True, squeeze=False)[0]
    for ax, (label, trials) in zip(axes, searches.items()):
        own, warm = split_warm(trials)
        values = 100 * np.array([t["value"] for t in own])
        x = np.arange(1, len(own) + 1)
        ax.scatter(x, np.clip(values, low, None), s=6, color="0.6", label="trial (clipped at the bottom)")
        ax.plot(x, np.maximum.accumulate(values), color="C0", label="best so far")
        centres = [min(i + block / 2, len(own)) for i in range(0, len(own), block)]
        medians = [np.median(values[i : i + block]) for i in range(0, len(own), block)]
        ax.plot(centres, medians, "o-", color="C1", ms=3, label=f"median of {block}")
        if warm:
            ax.axhline(
                100 * max(t["value"] for t in warm), color="C0", ls=":", lw=1, label="best warm-start trial"
            )
        for i, (name, value) in enumerate(references.items()):
            ax.axhline(100 * value, color=f"C{i + 2}", ls="--", lw=1, label=name)
        radius = [t["user_attrs"].get("trust_region", {}).get("radius") for t in own]
        if any(r is not None for r in radius):
            twin = ax.twinx()
            twin.step(x, [np.nan if r is None else r for r in radius], where="post", color="C4", lw=0.8)
            twin.set_ylabel("trust-region radius (gamma)", color="C4")
            twin.set_ylim(0, 1.05 * max(r for r in radius if r is not None) * 2)
        ax.set_title(f"{label} ({len(own)} trials)")
        ax.set_xlabel("trial of the search")
        ax.set_ylim(low, None)
    axes[0].set_ylabel("validation accuracy (%)")
    axes[0].legend(fontsize=7, loc="lower right")
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search", action="append", required=True, help="LABEL=FILE (repeatable)")
    parser.add_argument("--reference", action="append", default=[], help="LABEL=VALUE, a fraction")
    parser.add_argument("--block", type=int, default=24, help="trials per block (default 24)")
    parser.add_argument("--low", type=float, default=85.0, help="bottom of the figure's axis (%%)")
    parser.add_argument("--figure", type=Path, help="write the figure here (PNG)")
    args = parser.parse_args(argv)
    if args.block < 1:
        raise SystemExit(f"error: --block must be >= 1, got {args.block}")
    searches = {}
    for text in args.search:
        label, file = _pair(text, "--search")
        if label in searches:
            raise SystemExit(f"error: --search label {label!r} given twice")
        searches[label] = read_trials(Path(file))
    references = {}
    for text in args.reference:
        label, value = _pair(text, "--reference")
        try:
            references[label] = float(value)
        except ValueError:
            raise SystemExit(f"error: --reference {label}: {value!r} is not a number") from None
        if not 0 <= references[label] <= 1:
            raise SystemExit(f"error: --reference {label}: {value} is not a fraction in [0, 1]")
    summary = {label: summarise(trials, args.block) for label, trials in searches.items()}
    if args.figure is not None:
        from infomorphic.goalsearch.plots import save

        save(progress_figure(searches, references, args.block, args.low), args.figure)
    print(json.dumps({"searches": summary, "references": references, "figure": str(args.figure or "")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
