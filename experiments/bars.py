"""Unsupervised bars: success rate over seeds for both variants (and ablations); prints one JSON line.

    python experiments/bars.py                         # horizontal and hv, 20 seeds each, 2 workers
    python experiments/bars.py --ablations             # + context none / shuffled, no weight decay, sparse hv
    python experiments/bars.py --variants hv --seeds 0-4 --set epochs=200
    python experiments/bars.py --quick                 # 3 seeds, 10 epochs (a smoke run)
    python experiments/bars.py --reference             # also score the hand-built perfect solution

Success (see :func:`infomorphic.tasks.bars.bars_solved`): every bar's best neuron is distinct and
carries >= 0.9 H(bar) bits.  ``detector_mi`` is what an ideal bar detector reaches (1 bit for
horizontal bars, less with vertical bars, which can occlude a horizontal one).  ``--out DIR``
writes a full run directory (figures included) for the first ``--keep`` seeds of each variant.
Each worker process uses one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _seeds(text: str) -> list[int]:
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def reference_goal(variant: str, p: float = 0.5) -> dict:
    """Goal and success flag of the hand-built solution (neuron k = bar k, context weights zero)."""
    import torch

    from infomorphic.seeding import generator
    from infomorphic.tasks.bars import BarsConfig, batch_goal, build_layer, evaluate_bars, sample_bars

    cfg = BarsConfig(variant=variant, p=p)
    layer = build_layer(cfg)
    k = cfg.n_bars
    with torch.no_grad():
        layer.weight["F"].zero_()
        for j in range(k):
            img = torch.zeros(8, 8)
            if j < 8:
                img[j] = 1.0
            else:
                img[:, j - 8] = 1.0
            layer.weight["F"][j] = 8.0 * img.reshape(-1)
        layer.bias["F"].fill_(-60.0)  # fires when all 8 pixels of its bar are on (+4), else <= -4
        layer.weight["C"].zero_()
        layer.bias["C"].zero_()
    _, x = sample_bars(2048, k, cfg.bar_p, generator(0, "reference"))
    goals = batch_goal(layer, x, generator(0, "ref-sampling"))
    _, status = evaluate_bars(layer, cfg)
    return {
        "goal_mean_bits": float(goals.mean()),
        "atoms_mean": layer.last_atoms.mean(0).tolist(),
        "solved": status["solved"],
        "mean_best_mi": sum(status["best_mi"]) / k,
    }


ABLATIONS = {
    "context none (no lateral input)": {"variant": "horizontal", "context": "none"},
    "context shuffled (other images' outputs)": {"variant": "horizontal", "context": "shuffled"},
    "no weight decay": {"variant": "horizontal", "weight_decay": 0.0},
    "hv, sparse bars p = 1/8 (Foldiak)": {"variant": "hv", "p": 0.125},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="horizontal,hv")
    parser.add_argument("--seeds", default="0-19")
    parser.add_argument("--ablation-seeds", default="0-9")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--set", action="append", default=[], help="BarsConfig override KEY=VALUE (repeatable)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ablations", action="store_true")
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=int, default=1, help="seeds per variant that get a run directory")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from dataclasses import replace

    from infomorphic.cli_selforg import parse_sets
    from infomorphic.tasks.bars import BarsConfig, detector_mi
    from infomorphic.tasks.runner import bars_success_rate

    seeds = _seeds("0-2" if args.quick else args.seeds)
    base = BarsConfig(**parse_sets(args.set, BarsConfig))
    if args.quick:
        base = replace(base, epochs=10)

    def measure(cfg: BarsConfig, seed_list: list[int], run_dirs: dict[int, Path] | None = None) -> dict:
        t0 = time.perf_counter()
        entry = bars_success_rate(
            cfg,
            seed_list,
            args.workers,
            lambda r: print(f"  seed {r['seed']}: coded {r['bars_coded']}", file=sys.stderr),
            run_dirs,
        )
        resolved = cfg.resolved()
        ideal = detector_mi(resolved)
        return entry | {
            "seconds": time.perf_counter() - t0,
            "n_bars": resolved.n_bars,
            "p": resolved.bar_p,
            "epochs": resolved.epochs,
            "weight_decay": resolved.weight_decay,
            "decay_fraction": resolved.decay_fraction,
            "context": resolved.context,
            "detector_mi_mean": sum(ideal) / len(ideal),
        }

    out: dict = {
        "config": base.to_dict(),
        "seeds": seeds,
        "machine": f"CPU, {args.workers} worker processes, 1 torch thread each",
        "variants": {},
    }
    for variant in args.variants.split(","):
        cfg = replace(base, variant=variant)
        print(f"{variant}: {len(seeds)} seeds", file=sys.stderr)
        run_dirs = (
            {}
            if args.out is None
            else {seed: args.out / f"bars-{variant}-seed{seed}" for seed in seeds[: args.keep]}
        )
        entry = measure(cfg, seeds, run_dirs)
        if run_dirs:
            entry["run_dirs"] = [str(d) for d in run_dirs.values()]
        if args.reference:
            entry["hand_built_solution"] = reference_goal(variant, cfg.p)
        out["variants"][variant] = entry
    if args.ablations:
        ab_seeds = _seeds("0-2" if args.quick else args.ablation_seeds)
        out["ablations"] = {}
        for name, change in ABLATIONS.items():
            print(f"ablation {name}: {len(ab_seeds)} seeds", file=sys.stderr)
            out["ablations"][name] = measure(replace(base, **change), ab_seeds)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
