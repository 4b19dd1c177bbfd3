"""Capacity of associative memories from noisy cues: basins of attraction, not only fixed points (issue 14).

For each cue noise (fraction of flipped cue bits) the capacity is the largest load alpha = M/N
whose mean overlap after recall is >= 0.95, per seed; every method is recalled from the same
noisy cues by the same routine.  Three infomorphic configurations (``--configs``): the default
(fixed-point training, lr 0.05) over every baseline, a noise-trained one (``--train-noise``,
``--lr``, ``--unroll``, on its own grid), and the curriculum (fixed points first as the default,
then up to ``--basin-epochs`` epochs at ``--basin-lr`` on batches of the clean states and
``--noisy-copies`` copies with ``--train-noise`` flipped bits, keeping the best weights on
``--stop-cues`` noisy cues per pattern that still recall every pattern exactly; on
``--curriculum-grid``, by default ``--grid``).  Prints one JSON line with the table (median,
min, max over seeds):

    python experiments/memory_noise_capacity.py                     # N = 100, seeds 0,1,2
    python experiments/memory_noise_capacity.py --configs curriculum --methods infomorphic
    python experiments/memory_noise_capacity.py --quick             # N = 40, 1 seed, a smoke run

``--out DIR`` also writes the JSON with every point there.  One torch thread per process.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _grid(text: str) -> tuple[float, ...]:
    from infomorphic.tasks.capacity import default_grid

    start, stop, step = (float(v) for v in text.split(":"))
    return tuple(default_grid(start, stop, step))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cue-noise", default="0,0.05,0.1,0.2", help="fractions of flipped cue bits")
    parser.add_argument("--grid", default="0.1:1.7:0.1", help="start:stop:step of the load, all methods")
    parser.add_argument(
        "--methods", default="infomorphic,hebbian,storkey,pseudo-inverse,descent-l2,mpf,modern"
    )
    parser.add_argument("--max-epochs", type=int, default=2000, help="default infomorphic memory")
    parser.add_argument("--noisy-grid", default="0.1:1.2:0.1", help="grid of the noise-trained memory")
    parser.add_argument("--train-noise", type=float, default=0.1, help="noise-trained memory ('0': skip it)")
    parser.add_argument("--unroll", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01, help="Adam lr of the noise-trained memory")
    parser.add_argument("--noisy-max-epochs", type=int, default=1000)
    parser.add_argument(
        "--configs", default="default,noisy,curriculum", help="infomorphic configurations to run"
    )
    parser.add_argument("--curriculum-grid", default=None, help="grid of the curriculum (default: --grid)")
    parser.add_argument(
        "--basin-epochs", type=int, default=1000, help="curriculum: basin-phase epochs at most"
    )
    parser.add_argument("--basin-lr", type=float, default=0.01, help="curriculum: Adam lr of the basin phase")
    parser.add_argument("--basin-patience", type=int, default=8, help="curriculum: checks without gain")
    parser.add_argument("--noisy-copies", type=int, default=1, help="curriculum: noisy copies per pattern")
    parser.add_argument(
        "--clean-states",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="curriculum: the clean states in every basin batch too",
    )
    parser.add_argument("--stop-cues", type=int, default=4, help="curriculum: noisy cues per pattern")
    parser.add_argument("--quick", action="store_true", help="N = 40, 1 seed, coarse grids, few epochs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from infomorphic.tasks.capacity import CapacityConfig, noise_capacity
    from infomorphic.tasks.memory import MemoryConfig

    if args.quick:
        args.neurons, args.seeds, args.grid, args.noisy_grid = 40, "0", "0.1:1.3:0.4", "0.1:0.9:0.4"
        args.max_epochs, args.noisy_max_epochs, args.basin_epochs = 300, 300, 300
        args.curriculum_grid = args.noisy_grid
    seeds = tuple(int(s) for s in args.seeds.split(","))
    cue_noise = tuple(float(f) for f in args.cue_noise.split(","))
    methods = tuple(m.strip() for m in args.methods.split(","))
    configs = {c.strip() for c in args.configs.split(",")}
    unknown = configs - {"default", "noisy", "curriculum"}
    if unknown:
        parser.error(f"--configs: unknown {sorted(unknown)}; choose from default, noisy, curriculum")
    plain = MemoryConfig(n_neurons=args.neurons, max_epochs=args.max_epochs)
    runs = [("", plain, methods, _grid(args.grid))] if "default" in configs else []
    noisy_name = f"infomorphic (train_noise {args.train_noise:g}, unroll {args.unroll}, lr {args.lr:g})"
    if "noisy" in configs and (args.train_noise > 0 or args.unroll > 1):
        noisy = MemoryConfig(
            n_neurons=args.neurons,
            max_epochs=args.noisy_max_epochs,
            train_noise=args.train_noise,
            unroll=args.unroll,
            lr=args.lr,
        )
        runs.append((noisy_name, noisy, ("infomorphic",), _grid(args.noisy_grid)))
    if "curriculum" in configs and args.train_noise > 0:
        curriculum = MemoryConfig(
            n_neurons=args.neurons,
            max_epochs=args.max_epochs,
            train_noise=args.train_noise,
            unroll=args.unroll,
            basin_epochs=args.basin_epochs,
            basin_lr=args.basin_lr,
            basin_patience=args.basin_patience,
            noisy_copies=args.noisy_copies,
            clean_states=args.clean_states,
            stop_cues=args.stop_cues,
        )
        name = (
            f"infomorphic curriculum (fixed points, then train_noise {args.train_noise:g}, "
            f"basin_lr {args.basin_lr:g}{', clean states' if args.clean_states else ''})"
        )
        runs.append((name, curriculum, ("infomorphic",), _grid(args.curriculum_grid or args.grid)))
    out: dict = {
        "neurons": args.neurons,
        "seeds": list(seeds),
        "cue_noise": list(cue_noise),
        "threshold": 0.95,
        "machine": "2-core CPU, 1 torch thread per process",
        "workers": args.workers,
        "configs": {},
        "table": {},
    }
    points: dict[str, list] = {}
    for name, memory, run_methods, alphas in runs:
        cfg = CapacityConfig(
            memory=memory,
            alphas=alphas,
            seeds=seeds,
            methods=run_methods,
            workers=args.workers,
            cue_noise=cue_noise,
        )
        t0 = time.perf_counter()
        res = noise_capacity(cfg)
        label = name or "default"
        out["configs"][label] = {
            "memory": memory.to_dict(),
            "alphas": [alphas[0], alphas[-1], round(alphas[1] - alphas[0], 6) if len(alphas) > 1 else None],
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": sum(p["cpu_seconds"] for p in res["points"]),
        }
        points[label] = res["points"]
        for method, row in res["table"].items():
            key = name if (name and method == "infomorphic") else method
            out["table"][key] = {
                f: {k: row[f][k] for k in ("median", "min", "max")}
                | {"per_seed": list(row[f]["per_seed"].values())}
                for f in row
            }
    if args.out is not None:
        from infomorphic.runs import write_json

        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "memory_noise_capacity.json", out | {"points": points})
    print(json.dumps(out, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
