"""Sensitivity analysis of a goal (default: the published optimised MNIST goal), short budget.

    python experiments/ablation.py --parts single --seeds 0,1 --epochs 2

Trains the goal and every single-gamma ablation (and optionally the cumulative ablation and the
modulations) of setup 1 with N hidden neurons on a seeded training subset, and prints one JSON
line: reference accuracy, every ablation sorted by the drop of mean validation accuracy, and the
atoms that "matter": those whose ablation drops the mean validation accuracy by more than
``--threshold`` points (default 1.0).  Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--goal", default="trivariate-mnist-tpe")
    p.add_argument("--parts", default="single")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=None, help="training examples per run (default: all)")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--threshold", type=float, default=1.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from infomorphic.config import TrainConfig
    from infomorphic.goals import Goal
    from infomorphic.goalsearch.ablate import run_ablation
    from infomorphic.goalsearch.search import load_search_data

    out = args.out or Path("runs") / f"ablation-{args.dataset}-n{args.hidden}"
    config = TrainConfig(
        network="trivariate",
        setup=1,
        hidden=args.hidden,
        dataset=args.dataset,
        epochs=args.epochs,
        baselines=(),
        threads=args.threads,
        seed=0,
        train_eval_size=2000,
    )
    data = load_search_data(config, args.train_subset)
    t0 = time.time()
    record = run_ablation(
        config,
        Goal.resolve(args.goal, "FCL"),
        out,
        seeds=[int(s) for s in args.seeds.split(",")],
        kinds=args.parts.split(","),
        data=data,
    )
    ref = record["reference"]
    singles = sorted((r for r in record["rows"] if r["kind"] == "zero"), key=lambda r: r["val_mean"])
    table = [
        {
            "atom": r["atoms"][0],
            "drop_val_points": round(100 * (ref["val_mean"] - r["val_mean"]), 2),
            "drop_test_points": round(100 * (ref["test_mean"] - r["test_mean"]), 2),
            "val_min": round(100 * r["val_min"], 2),
            "val_max": round(100 * r["val_max"], 2),
        }
        for r in singles
    ]
    print(
        json.dumps(
            {
                "experiment": "ablation",
                "goal": args.goal,
                "dataset": args.dataset,
                "hidden": args.hidden,
                "epochs": args.epochs,
                "train_subset": args.train_subset,
                "seeds": record["seeds"],
                "reference_val_mean": round(100 * ref["val_mean"], 2),
                "reference_test_mean": round(100 * ref["test_mean"], 2),
                "reference_val_range": [round(100 * ref["val_min"], 2), round(100 * ref["val_max"], 2)],
                "single_ablation_by_drop": table,
                "matter": [row["atom"] for row in table if row["drop_val_points"] > args.threshold],
                "cumulative_order": record["order"],
                "seconds": round(time.time() - t0, 1),
                "out": str(out),
            }
        )
    )


if __name__ == "__main__":
    main()
