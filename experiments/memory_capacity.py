"""Associative-memory figures: capacity, noise robustness, online storage, Hebbian PID vs load.

Prints one JSON line with the figures (Blümel et al. 2025, arXiv:2511.02584; issue 4):

    python experiments/memory_capacity.py                       # everything, N = 100, 3 seeds
    python experiments/memory_capacity.py --parts sweep --seeds 0,1,2 --workers 2
    python experiments/memory_capacity.py --quick               # small, for a smoke run

``--out DIR`` also writes the JSON and the figures there.  One torch thread per process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid", default="0.01:2.01:0.05", help="start:stop:step of the load alpha")
    parser.add_argument("--max-epochs", type=int, default=5000)
    parser.add_argument(
        "--parts", default="sweep,noise,online,pid", help="comma-separated: sweep, noise, online, pid"
    )
    parser.add_argument("--noise-alphas", default="0.1,0.5,1.0")
    parser.add_argument(
        "--online-groups", type=int, default=10, help="patterns per group in the online variant"
    )
    parser.add_argument(
        "--online-epochs", type=int, default=100, help="epochs per group in the online variant"
    )
    parser.add_argument(
        "--online-replay",
        default="200,1000",
        help="random cues for pseudo-rehearsal, comma-separated (one infomorphic curve each; '' for none)",
    )
    parser.add_argument("--online-total", type=float, default=1.0, help="patterns stored online, as a load")
    parser.add_argument("--quick", action="store_true", help="N = 40, coarse grid, 1 seed, 500 epochs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from infomorphic.tasks.capacity import (
        CapacityConfig,
        capacity_from_points,
        default_grid,
        hebbian_pid_curve,
        noise_robustness,
        online_storage,
        sweep,
    )
    from infomorphic.tasks.memory import MemoryConfig

    if args.quick:
        args.neurons, args.seeds, args.grid, args.max_epochs = 40, "0", "0.1:1.9:0.3", 500
    seeds = tuple(int(s) for s in args.seeds.split(","))
    start, stop, step = (float(v) for v in args.grid.split(":"))
    memory = MemoryConfig(n_neurons=args.neurons, max_epochs=args.max_epochs)
    parts = {p.strip() for p in args.parts.split(",")}
    out: dict = {
        "neurons": args.neurons,
        "seeds": list(seeds),
        "machine": "2-core CPU, 1 torch thread per process",
    }
    if "sweep" in parts:
        cfg = CapacityConfig(
            memory=memory, alphas=tuple(default_grid(start, stop, step)), seeds=seeds, workers=args.workers
        )
        t0 = time.perf_counter()
        points = sweep(cfg)
        out["sweep_seconds"] = time.perf_counter() - t0
        out["workers"] = args.workers
        out["sweep_cpu_seconds"] = sum(p["cpu_seconds"] for p in points)
        out["capacity"] = capacity_from_points(points, cfg.methods, cfg.threshold)
        out["points"] = points
    if "noise" in parts:
        t0 = time.perf_counter()
        alphas = [float(a) for a in args.noise_alphas.split(",")]
        out["noise"] = noise_robustness(memory, alphas, seeds)
        out["noise_seconds"] = time.perf_counter() - t0
    if "online" in parts:
        t0 = time.perf_counter()
        total = int(round(args.online_total * args.neurons))
        replay = [int(c) for c in args.online_replay.split(",") if c.strip()]
        out["online"] = online_storage(
            memory, total, args.online_groups, args.online_epochs, seed=seeds[0], replay_cues=replay
        )
        out["online_seconds"] = time.perf_counter() - t0
    if "pid" in parts:
        out["hebbian_pid"] = hebbian_pid_curve(memory, default_grid(0.02, 2.0, 0.06), seed=seeds[0])
    if args.out is not None:
        from infomorphic.runs import write_json
        from infomorphic.tasks import plots

        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "memory_capacity.json", out)
        plots.memory_figures(out, args.out)
    brief = {k: v for k, v in out.items() if k != "points"}
    if "capacity" in brief:
        brief["capacity"] = {
            m: {k: v for k, v in c.items() if k != "mean_curve"} if isinstance(c, dict) else c
            for m, c in brief["capacity"].items()
            if m != "alphas"
        }
    if "online" in brief:
        brief["online"] = {
            "summary": out["online"]["summary"],
            "group_size": out["online"]["group_size"],
            "epochs_per_group": out["online"]["epochs_per_group"],
            "early_curve": {
                m: [(c["n_stored"], round(c["early"], 3)) for c in cs]
                for m, cs in out["online"]["curves"].items()
            },
        }
    if "hebbian_pid" in brief:
        keep = ("{T}{R}", "{T}", "{R}", "{TR}", "H_res", "score")
        brief["hebbian_pid"] = [
            {"alpha": r["alpha"], **{k: round(r[k], 3) for k in keep}}
            for r in out["hebbian_pid"]["rows"][::4]
        ]
    print(json.dumps(brief, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
