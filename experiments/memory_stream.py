"""Online storage of a stream of patterns: palimpsest capacity and blackout per rule (issue 14, part 2).

Prints one JSON line (see :mod:`infomorphic.tasks.online` for the protocol and the measures):

    python experiments/memory_stream.py                          # N = 100, 5 N patterns, arrivals 1, 5, 10, seed 0
    python experiments/memory_stream.py --seeds 0,1,2 --out DIR  # + JSON, flags and figures in DIR
    python experiments/memory_stream.py --quick                  # N = 30, a smoke run

The line holds the table (steady-state number of most recent patterns all recalled and number
recalled, clean and 10 %-flipped cues, means over seeds; blackout times), the configuration,
the curves of the first arrival size (means over seeds) and, with ``--out``, the figures'
paths.  One torch thread.
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
    parser.add_argument("--length", type=int, default=None, help="patterns in the stream (default 5 N)")
    parser.add_argument("--arrivals", default="1,5,10", help="patterns per arrival, comma-separated")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--methods", default=None, help="comma-separated (default: all stream methods)")
    parser.add_argument("--steps", type=int, default=20, help="infomorphic steps per arrival")
    parser.add_argument("--quick", action="store_true", help="N = 30, arrivals 1 and 10, one seed")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from infomorphic.tasks.memory import MemoryConfig
    from infomorphic.tasks.online import STREAM_METHODS, online_options, stream_figures, stream_storage

    if args.quick:
        args.neurons, args.arrivals, args.seeds = 30, "1,10", "0"
    arrivals = [int(a) for a in args.arrivals.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(STREAM_METHODS)
    t0 = time.perf_counter()
    out = stream_storage(
        MemoryConfig(n_neurons=args.neurons),
        arrivals=arrivals,
        seeds=seeds,
        methods=methods,
        options=online_options(args.neurons, args.steps),
        length=args.length,
    )
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = sum(r["cpu_seconds"] for r in out["runs"])
    out["machine"] = "2-core CPU (shared), 1 torch thread"
    brief = {k: v for k, v in out.items() if k != "runs"}
    first = arrivals[0]
    curves: dict = {}
    for m in methods:
        rs = [r["summary"] for r in out["runs"] if r["method"] == m and r["arrival"] == first]
        curves[m] = {
            key: [round(float(v), 2) for v in np.mean([s["clean"][key] for s in rs], axis=0)]
            for key in ("recent_all", "recalled", "oldest")
        }
    brief["curves_arrival"] = first
    brief["t"] = out["runs"][0]["summary"]["t"]
    brief["curves"] = curves
    if args.out is not None:
        from infomorphic.runs import write_json

        args.out.mkdir(parents=True, exist_ok=True)
        for run in out["runs"]:  # flags by age as strings of 0/1 (the JSON stays small)
            for p in run["probes"]:
                for kind in ("clean", "noisy"):
                    if kind in p:
                        p[kind] = "".join(map(str, p[kind]))
        write_json(args.out / "memory_stream.json", out)
        brief["figures"] = [str(p) for p in stream_figures(out, args.out)]  # does not read the flags
    print(json.dumps(brief, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
