"""Unsupervised bars: success rate over seeds for both variants; prints one JSON line.

    python experiments/bars.py                         # horizontal and hv, 20 seeds each
    python experiments/bars.py --variants hv --seeds 0-4 --epochs 100
    python experiments/bars.py --quick                 # 3 seeds, 10 epochs
    python experiments/bars.py --reference             # also score the hand-built perfect solution

Success (see :func:`infomorphic.tasks.bars.bars_solved`): every bar's best neuron is distinct and
carries >= 0.9 H(bar) bits.  ``--out DIR`` writes a run directory per seed (figures included)
for the first ``--keep`` seeds.  One torch thread.
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


def reference_goal(variant: str, p: float | None = None) -> dict:
    """Goal and success flag of the hand-built solution (neuron k = bar k, context weights zero)."""
    import torch

    from infomorphic.seeding import generator
    from infomorphic.tasks.bars import BarsConfig, build_layer, evaluate_bars, sample_bars

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
            layer.weight["F"][j] = 4.0 * img.reshape(-1)
        layer.bias["F"].fill_(-16.0 if k == 8 else -12.0)
        layer.weight["C"].zero_()
        layer.bias["C"].zero_()
    _, x = sample_bars(2048, k, cfg.bar_p, generator(0, "reference"))
    first = layer({"F": x, "C": x.new_zeros(len(x), k)})
    second = layer({"C": layer.sample(first.theta, generator(0, "ref-sampling"))}, reuse=first)
    goals = layer.local_goal(second)
    _, status = evaluate_bars(layer, cfg)
    return {"goal_mean_bits": float(goals.mean()), "atoms_mean": layer.last_atoms.mean(0).tolist(),
            "solved": status["solved"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="horizontal,hv")
    parser.add_argument("--seeds", default="0-19")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], help="BarsConfig override KEY=VALUE (repeatable)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reference", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=int, default=2, help="seeds per variant that get a run directory")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from dataclasses import replace

    from infomorphic.cli_selforg import parse_sets
    from infomorphic.tasks.bars import BarsConfig, train_bars
    from infomorphic.tasks.runner import run_bars

    seeds = _seeds("0-2" if args.quick else args.seeds)
    base = BarsConfig(**parse_sets(args.set, BarsConfig))
    if args.quick:
        base = replace(base, epochs=10)
    if args.epochs is not None:
        base = replace(base, epochs=args.epochs)
    out: dict = {"config": base.to_dict(), "seeds": seeds, "machine": "2-core CPU, 1 torch thread", "variants": {}}
    for variant in args.variants.split(","):
        cfg0 = replace(base, variant=variant)
        t0 = time.perf_counter()
        rows = []
        for i, seed in enumerate(seeds):
            cfg = replace(cfg0, seed=seed)
            if args.out is not None and i < args.keep:
                run_dir = args.out / f"bars-{variant}-seed{seed}"
                run_dir.mkdir(parents=True, exist_ok=True)
                s = run_bars(cfg, run_dir)
                rows.append({"seed": seed, "solved": s["solved"], "bars_coded": s["bars_coded"],
                             "mean_best_mi": sum(s["best_mi"]) / len(s["best_mi"])})
            else:
                r = train_bars(cfg)
                st = r["status"]
                rows.append({"seed": seed, "solved": st["solved"], "bars_coded": st["bars_coded"],
                             "mean_best_mi": sum(st["best_mi"]) / len(st["best_mi"])})
        solved = sum(r["solved"] for r in rows)
        entry = {"success_rate": solved / len(rows), "solved": solved, "runs": len(rows),
                 "bars_coded_mean": sum(r["bars_coded"] for r in rows) / len(rows),
                 "mean_best_mi": sum(r["mean_best_mi"] for r in rows) / len(rows),
                 "seconds": time.perf_counter() - t0, "per_seed": rows, "n_bars": cfg0.n_bars, "p": cfg0.bar_p}
        if args.reference:
            entry["hand_built_solution"] = reference_goal(variant, cfg0.p)
        out["variants"][variant] = entry
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
