"""A/B of the memory layout the I^sx kernel reads, inside whole training steps (never imported by the package).

The kernel reads each neuron's samples.  Since 2026-12-03 a row-major theta (B, N) is read
through a tiled transpose, and the gradient goes back the same way
(:func:`infomorphic.pid.samples._run_kernel`); before, the kernel read theta and wrote its
gradient across the rows, every sample of a neuron on another page at N = 2000.  This script
builds one network and alternates its training steps between ``row-major`` (the old reading) and
``by-neuron`` (the default) on the same batch.  Timed in process CPU seconds, one thread.
Prints one JSON line per network: median CPU seconds per step of each and the ratio.  Results
are the same to the bit either way (``tests/pid/test_samples.py``).  Writing the bins neuron by
neuron too was tried (2026-12-03): 0.894x at N = 2000 against 0.899x for theta alone, 1.017x
against 0.953x at N = 500 (the transposed write of the bins cost about what it saved), so it
was left out.

    python benchmarks/ab_layout.py --net 2:2000 --net 2:500 --net 1:100 --steps 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch


class _RowMajor:
    """The compiled kernel without its tiled transpose: theta is read in place, across the rows."""

    def __init__(self, kernel: Any) -> None:
        self._kernel = kernel

    def __getattr__(self, name: str) -> Any:
        if name == "transpose_tiled":
            raise AttributeError(name)  # _run_kernel then reads theta in place
        return getattr(self._kernel, name)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--net", action="append", default=None, help="SETUP:N, e.g. 2:2000 (repeatable; default 2:2000)"
    )
    p.add_argument("--steps", type=int, default=16, help="timed steps per variant and network")
    p.add_argument("--batch", type=int, default=1024)
    args = p.parse_args()
    torch.set_num_threads(1)

    import infomorphic.pid.samples as samples
    from infomorphic.config import TrainConfig
    from infomorphic.pid.kernel import load_kernel
    from infomorphic.train.loop import build_network
    from infomorphic.train.trainer import default_optimizers, train_step

    kernel = load_kernel()
    if kernel is None:
        raise SystemExit("error: the compiled kernel does not build here")
    variants = {"row-major": _RowMajor(kernel), "by-neuron": kernel}
    for spec in args.net or ["2:2000"]:
        setup, hidden = (int(v) for v in spec.split(":"))
        net = build_network(TrainConfig(setup=setup, hidden=hidden), 784, 10)
        opts = {k: f(list(net.layers()[k].parameters())) for k, f in default_optimizers(net).items()}
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(args.batch, 784, generator=gen)
        y = torch.randint(0, 10, (args.batch,), generator=gen)
        sampler = torch.Generator().manual_seed(1)
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        for step in range(2 + args.steps):
            for name, variant in variants.items():
                samples.load_kernel = lambda variant=variant: variant  # type: ignore[assignment]
                start = time.process_time()
                train_step(net, opts, x, y, sampler)
                if step >= 2:  # two warm-up rounds
                    seconds[name].append(time.process_time() - start)
        med = {name: statistics.median(v) for name, v in seconds.items()}
        print(
            json.dumps(
                {
                    "benchmark": "ab_layout",
                    "setup": setup,
                    "hidden": hidden,
                    "batch": args.batch,
                    "threads": 1,
                    "cpu_s_per_step": {k: round(v, 4) for k, v in med.items()},
                    "ratio_by_neuron_to_row_major": round(med["by-neuron"] / med["row-major"], 3),
                }
            )
        )


if __name__ == "__main__":
    main()
