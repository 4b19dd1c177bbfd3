"""Goal search on a real task, then the best goal against the naive and the published goals.

    python experiments/goal_search.py --sampler tpe   --trials 40 --epochs 2
    python experiments/goal_search.py --sampler cmaes --trials 40 --epochs 2

Searches the 19 gammas of the trivariate hidden goal (CMA-ES: 18, H_res fixed at 0) of setup 1
with N hidden neurons (default MNIST, N = 100) for the validation accuracy after ``--epochs``
epochs (on a seeded ``--train-subset`` of the training split if given), then trains the best goal, the naive
goal and the published optimised goal (``trivariate-mnist-tpe``) with the same budget for each of
``--eval-seeds`` and prints one JSON line: trials by state, best validation accuracy, the best goal,
and mean / min / max test accuracy of the three goals.  ``--resume`` continues a search in --out.
Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sampler", choices=("tpe", "cmaes", "gp", "random"), default="tpe")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=None, help="training examples per run (default: all)")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--startup-trials", type=int, default=10)
    p.add_argument("--eval-seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from infomorphic.config import TrainConfig
    from infomorphic.goals import Goal
    from infomorphic.goalsearch.ablate import Variant, evaluate_variants
    from infomorphic.goalsearch.search import SearchSettings, best_goal, counts, load_search_data, run_search
    from infomorphic.goalsearch.space import GoalSpace

    out = args.out or Path("runs") / f"goal-search-{args.sampler}-{args.dataset}-n{args.hidden}"
    config = TrainConfig(
        network="trivariate",
        setup=1,
        hidden=args.hidden,
        dataset=args.dataset,
        epochs=args.epochs,
        baselines=(),
        threads=args.threads,
        seed=args.seed,
        train_eval_size=2000,
    )
    settings = SearchSettings(
        config,
        GoalSpace.build("FCL", fix_hres=args.sampler == "cmaes"),
        sampler=args.sampler,
        seed=args.seed,
        startup_trials=args.startup_trials,
        train_subset=args.train_subset,
    )
    data = load_search_data(config, args.train_subset)
    t0 = time.time()
    study, settings, _ = run_search(
        None if args.resume else settings,
        out,
        n_trials=args.trials,
        workers=args.workers,
        resume=args.resume,
        data=data,
    )
    search_seconds = time.time() - t0
    goal, trial = best_goal(study, settings)
    seeds = [int(s) for s in args.eval_seeds.split(",")]
    variants = [
        Variant("best", "best", (), goal),
        Variant("naive", "naive", (), Goal.preset("trivariate-naive")),
        Variant("published", "published", (), Goal.preset("trivariate-mnist-tpe")),
    ]
    rows = evaluate_variants(config, variants, seeds, out / "compare", data=data)
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in study.trials
        if t.datetime_complete is not None and t.state.name == "COMPLETE"
    ]
    print(
        json.dumps(
            {
                "experiment": f"goal-search-{args.sampler}",
                "dataset": args.dataset,
                "hidden": args.hidden,
                "setup": 1,
                "epochs_per_trial": args.epochs,
                "train_subset": args.train_subset,
                "trials": counts(study),
                "search_seconds": round(search_seconds, 1),
                "median_trial_seconds": float(np.median(durations)),
                "best_trial": trial.number,
                "best_val_acc": trial.value,
                "best_goal": goal.to_expression(),
                "best_vector": [round(v, 5) for v in goal.to_vector()],
                "compare_same_budget": {
                    r["label"]: {
                        "seeds": seeds,
                        "test_mean": r["test_mean"],
                        "test_min": r["test_min"],
                        "test_max": r["test_max"],
                        "val_mean": r["val_mean"],
                    }
                    for r in rows
                },
                "out": str(out),
            }
        )
    )


if __name__ == "__main__":
    main()
