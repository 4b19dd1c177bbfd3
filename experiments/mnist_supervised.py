"""MNIST supervised experiments of the papers: run one (or summarise a finished run) and print JSON.

    python experiments/mnist_supervised.py single
    python experiments/mnist_supervised.py setup1-optimised [--epochs 100] [--threads 2]
    python experiments/mnist_supervised.py setup1-naive
    python experiments/mnist_supervised.py setup2-2000 --device cuda
    python experiments/mnist_supervised.py setup1-optimised --from-run runs/s1-n100-opt

Each experiment is a config in ``configs/``; the JSON line holds the final test accuracy, the
test accuracy at the best validation epoch, the target of the issue and the paper's figure,
the baselines on the same split, seconds per epoch and peak memory.  Never imported by the
package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EXPERIMENTS = {
    # name: (config file, target test accuracy of the issue, paper)
    "single": ("mnist_single.toml", 0.897, "89.7% (mean of 100 runs); logistic regression 91.9%"),
    "setup1-optimised": ("mnist_setup1_optimised.toml", 0.945, "94.9%"),
    "setup1-naive": ("mnist_setup1_naive.toml", 0.925, "92.8%"),
    "setup2-2000": ("mnist_setup2_2000.toml", 0.973, "97.5% median; backprop 98.0%"),
}


def summarise(name: str, run_dir: Path) -> dict:
    """Figures of a run; a run still in progress (no summary.json yet) is summarised from its
    per-epoch metrics, marked ``"finished": false``."""
    from infomorphic.runs import read_jsonl
    from infomorphic.train.loop import history_summary

    metrics = read_jsonl(run_dir / "metrics.jsonl")
    summary_path = run_dir / "summary.json"
    finished = summary_path.exists()
    if finished:
        summary = json.loads(summary_path.read_text())
    else:
        if not metrics:
            raise SystemExit(f"error: {run_dir} has no finished epoch yet")
        summary = history_summary(metrics)
    _, target, paper = EXPERIMENTS[name]
    return {
        "experiment": name,
        "run_dir": str(run_dir),
        "finished": finished,
        "epochs": summary.get("epochs"),
        "test_acc": summary.get("test_acc"),
        "max_test_acc": max(m["test_acc"] for m in metrics if m["test_acc"] is not None),
        "test_acc_at_best_val": summary.get("test_acc_at_best_val"),
        "best_val_epoch": summary.get("best_val_epoch"),
        "target": target,
        "reached": summary.get("test_acc", 0) >= target,
        "paper": paper,
        "baselines": {
            k: {kk: v[kk] for kk in ("val_acc", "test_acc") if kk in v}
            for k, v in summary.get("baselines", {}).items()
        },
        "seconds_per_epoch": summary.get("seconds_per_epoch"),
        "peak_rss_gib": summary.get("peak_rss_gib"),
        "test_acc_curve": [None if m["test_acc"] is None else round(m["test_acc"], 4) for m in metrics],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", choices=sorted(EXPERIMENTS))
    p.add_argument("--epochs", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=str(ROOT / "runs"))
    p.add_argument(
        "--from-run", type=Path, help="summarise this run (finished or in progress) instead of training"
    )
    args = p.parse_args()
    if args.from_run is not None:
        print(json.dumps(summarise(args.experiment, args.from_run)))
        return
    from infomorphic.config import load_config
    from infomorphic.train import fit

    overrides = {
        "threads": args.threads,
        "device": args.device,
        "seed": args.seed,
        "out_dir": args.out_dir,
        "name": f"{args.experiment}-seed{args.seed}",
    }
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = load_config(ROOT / "configs" / EXPERIMENTS[args.experiment][0], overrides)
    summary = fit(config)
    print(json.dumps(summarise(args.experiment, Path(summary["run_dir"]))))


if __name__ == "__main__":
    main()
