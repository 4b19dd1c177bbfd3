"""A/B of two versions of the compiled PID kernel inside whole training steps (never imported by the package).

The kernel of this checkout against the one of an earlier commit (``--old-rev``, its
``src/infomorphic/pid/_sx_kernel.cpp``) or an earlier source file (``--old-source``): both are
compiled (the old one into a temporary folder), one network is built, and its training steps
alternate between the two kernels (old, new, old, new, ...) on the same batch, each for all its
uses in a step (the PID, the fused activation, the sparse partner product; a kernel without the
partner product leaves that to the PyTorch path), so that a change of load on the machine hits
both alike.  Timed in process CPU seconds (one thread), which a busy machine distorts much less
than wall-clock time; with ``--threads T`` above 1, in wall-clock seconds (process CPU would add
up the threads, and count a thread that waits for another by spinning; keys ``*_wall_s_*``).
Reports whether both kernels give the same goals on the first step (not when one of them adds in
another order).  Prints one JSON line: median seconds per step of each and the ratio new / old,
for each network given.

``--old-layout`` compares instead this checkout's kernel with itself reading ``theta`` in place
(without its tiled transpose, as before 2026-12-03: every sample of a neuron on another page of a
row-major (B, N) theta at N = 2000); nothing is compiled, and the goals are the same to the bit.
``--sample-major`` compares this checkout with itself storing every layer sample by sample (as
before large layers were stored neuron by neuron); the goals agree to rounding.  A kernel older
than the neuron-major storage (``--old-rev``) always runs sample-major layers.
``--unrecorded`` compares this checkout's steps that record the atoms (the baseline) with its
steps that do not (every layer's ``record_atoms = False``, as between the recorded steps of
``atoms_every``): the goals agree to rounding, the weights' gradients are the same to the bit.
``--pid-call`` (with ``--old-rev`` / ``--old-source``) times the PID kernel's call alone instead of
whole steps, which vary more between steps than a change of the call: after two training steps,
one forward pass of the batch is captured (each trained layer's bins, firing probabilities and
goal direction, as ``InfomorphicLayer.local_goal`` passes them), and both kernels are called on
those inputs, alternating, ``--steps`` times each, once computing every redundancy and once only
the goal's (``hinted_only``, the steps that record no atoms); one row per layer and mode, with
whether every output (sums and gradient) is the same to the bit.

    python benchmarks/ab_kernel.py --old-rev 56cbd29~2 --net 2:2000 --net 1:100 --steps 6
    python benchmarks/ab_kernel.py --old-layout --net 2:2000 --net 2:500 --steps 16
    python benchmarks/ab_kernel.py --sample-major --net 2:2000 --net 1:2000 --steps 10
    python benchmarks/ab_kernel.py --old-rev main --net my-deep-network.toml --steps 10
    python benchmarks/ab_kernel.py --unrecorded --net my-deep-network.toml --net 1:100 --steps 8
    python benchmarks/ab_kernel.py --old-rev main --pid-call --net 2:2000 --net 1:100 --steps 30
    python benchmarks/ab_kernel.py --old-rev main --net 2:2000 --threads 2 --steps 16
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "src/infomorphic/pid/_sx_kernel.cpp"


def _old_source(args: argparse.Namespace, folder: Path) -> Path:
    if args.old_source is not None:
        return Path(args.old_source)
    text = subprocess.run(
        ["git", "show", f"{args.old_rev}:{SOURCE}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = folder / "old_kernel.cpp"
    path.write_text(text)
    return path


class _Hiding:
    """The kernel without some of its functions: the package then takes its path for a kernel
    built before them (``transpose_tiled``: the PID reads theta in place, across the rows;
    ``neuron_major``: every layer is stored sample by sample)."""

    def __init__(self, kernel: Any, *hidden: str) -> None:
        self._kernel = kernel
        self._hidden = set(hidden)

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(self._kernel, name)


def _use(kernel: Any) -> None:
    """Every use of the kernel in a training step (PID, fused activation, partner product, the
    layers' choice of storage) takes ``kernel``."""
    from infomorphic.nn import functional, layer
    from infomorphic.pid import samples

    samples.load_kernel = lambda: kernel  # type: ignore[assignment]
    functional.active_kernel = lambda: kernel  # type: ignore[assignment]
    layer.active_kernel = lambda: kernel  # type: ignore[assignment]


def _pid_call(kernel: Any, args: tuple[Any, ...]) -> tuple[torch.Tensor, ...]:
    """One PID call of ``kernel`` as training makes it (``samples._run_kernel(*args)``)."""
    from infomorphic.pid.samples import _run_kernel

    _use(kernel)
    return _run_kernel(*args)


def _pid_call_rows(
    spec: str,
    net: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    sampler: Any,
    old: Any,
    new: Any,
    repeats: int,
    clock: Any = time.process_time,
    unit: str = "cpu_s",
) -> list[dict[str, Any]]:
    """``--pid-call``: each trained layer's kernel call on one captured batch, old and new
    alternating, made as ``InfomorphicLayer.local_goal`` makes it (:func:`_pid_call`)."""
    with torch.no_grad():
        out = net(x, y, sampler)
    rows = []
    empty = torch.empty(0, dtype=torch.float64)
    kernels = {"old": old, "new": new}
    for name, layer in net.layers().items():
        theta = out.outputs[name].theta.detach()
        # each kernel's bins as training makes them with it (uint8 where the build reads them):
        # the same integers
        bins: dict[str, torch.Tensor] = {}
        for key, kernel in kernels.items():
            _use(kernel)
            bins[key] = layer.bins_of(out.outputs[name])
        n_neurons, n_sources = int(bins["new"].shape[1]), int(bins["new"].shape[2])
        sizes = (layer.n_bins,) * n_sources
        hint = layer.goal.redundancy_weights().to(torch.float64).expand(n_neurons, -1).contiguous()
        for hinted_only in (False, True):
            args = {key: (bins[key], sizes, theta, True, hint, empty, True, hinted_only) for key in kernels}
            same = all(
                torch.equal(a, b) for a, b in zip(_pid_call(old, args["old"]), _pid_call(new, args["new"]))
            )
            seconds: dict[str, list[float]] = {"old": [], "new": []}
            for i in range(repeats):
                for key in ("old", "new") if i % 2 == 0 else ("new", "old"):
                    start = clock()
                    _pid_call(kernels[key], args[key])
                    seconds[key].append(clock() - start)
            o, m = statistics.median(seconds["old"]), statistics.median(seconds["new"])
            rows.append(
                {
                    "net": spec,
                    "layer": name,
                    "neurons": n_neurons,
                    "sources": n_sources,
                    "hinted_only": hinted_only,
                    f"old_{unit}_per_call": round(o, 5),
                    f"new_{unit}_per_call": round(m, 5),
                    "ratio_new_to_old": round(m / o, 3),
                    "same_outputs": same,
                }
            )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    old = p.add_mutually_exclusive_group(required=True)
    old.add_argument("--old-rev", help="git revision whose kernel source is the baseline")
    old.add_argument("--old-source", help="kernel source file that is the baseline")
    old.add_argument("--old-layout", action="store_true", help="baseline: this kernel reading theta in place")
    old.add_argument(
        "--sample-major", action="store_true", help="baseline: this checkout, every layer sample-major"
    )
    old.add_argument(
        "--unrecorded",
        action="store_true",
        help="baseline: this checkout recording atoms; compared: steps that record none",
    )
    p.add_argument(
        "--net",
        action="append",
        default=None,
        help="SETUP:N, e.g. 2:2000, or a TOML config of `infomorphic train --config` (any wiring; "
        "784 inputs, 10 classes) (repeatable; default 1:100)",
    )
    p.add_argument("--steps", type=int, default=6, help="timed steps (or calls) per kernel and network")
    p.add_argument(
        "--pid-call",
        action="store_true",
        help="time the PID kernel's call on captured inputs, not whole steps",
    )
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (above 1: timed by the wall clock, not process CPU)",
    )
    args = p.parse_args()
    if args.pid_call and args.old_rev is None and args.old_source is None:
        p.error("--pid-call compares two builds: give --old-rev or --old-source")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    unit = "cpu_s" if args.threads == 1 else "wall_s"

    from torch.utils.cpp_extension import load

    from infomorphic.config import TrainConfig, load_config
    from infomorphic.pid import kernel as kernel_module
    from infomorphic.pid.kernel import load_kernel
    from infomorphic.train.loop import build_network
    from infomorphic.train.trainer import _record_atoms, default_optimizers, train_step

    new = load_kernel()
    if new is None:
        sys.exit("error: the kernel of this checkout does not build here")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.old_layout:
            old_kernel: Any = _Hiding(new, "transpose_tiled")
            baseline = "theta read in place"
        elif args.sample_major:
            old_kernel = _Hiding(new, "neuron_major")
            baseline = "sample-major layers"
        elif args.unrecorded:
            old_kernel = new
            baseline = "steps recording atoms"
        else:
            baseline = args.old_rev or args.old_source
            old_kernel = load(
                name="infomorphic_ab_old_kernel",
                sources=[str(_old_source(args, folder))],
                extra_cflags=list(kernel_module._CFLAGS),  # the flags of the kernel it is compared with
                extra_ldflags=list(kernel_module._LDFLAGS),
                build_directory=str(folder),
            )
        for spec in args.net or ["1:100"]:
            state = None
            if Path(spec).is_dir():
                from infomorphic.data import load_dataset

                checkpoint = torch.load(Path(spec) / "checkpoint.pt", weights_only=False)
                config = TrainConfig.from_dict(checkpoint["config"])
                state = checkpoint["model"]
                data = load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)
                x, y = data.train.x[: args.batch], data.train.y[: args.batch]
                setup, hidden = None, None
            elif spec.endswith(".toml"):
                config = load_config(spec)
                setup, hidden = None, None
            else:
                setup, hidden = (int(v) for v in spec.split(":"))
                config = TrainConfig(setup=setup, hidden=hidden)
            if state is None:  # random pixels: the timing does not depend on them
                gen = torch.Generator().manual_seed(0)
                x = torch.rand(args.batch, 784, generator=gen)
                y = torch.randint(0, 10, (args.batch,), generator=gen)

            def build(config: TrainConfig = config, state: Any = state, n_inputs: int = x.shape[1]) -> Any:
                net = build_network(config, n_inputs, 10)
                if state is not None:
                    net.load_state_dict(state)
                return net

            goals = {}
            record = {"old": True, "new": not args.unrecorded}
            for name, kernel in (("old", old_kernel), ("new", new)):
                _use(kernel)
                net = build()
                _record_atoms(net.layers(), record[name])
                factories = default_optimizers(net)
                opts = {k: f(list(net.layers()[k].parameters())) for k, f in factories.items()}
                goals[name] = train_step(net, opts, x, y, torch.Generator().manual_seed(1))
            same = all(torch.equal(goals["old"][k], goals["new"][k]) for k in goals["old"])
            net = build()
            opts = {k: f(list(net.layers()[k].parameters())) for k, f in default_optimizers(net).items()}
            sampler = torch.Generator().manual_seed(2)
            for _ in range(2):
                train_step(net, opts, x, y, sampler)
            if args.pid_call:
                _use(new)
                rows.extend(
                    _pid_call_rows(spec, net, x, y, sampler, old_kernel, new, args.steps, clock, unit)
                )
                continue
            seconds: dict[str, list[float]] = {"old": [], "new": []}
            for _ in range(args.steps):
                for name, kernel in (("old", old_kernel), ("new", new)):
                    _use(kernel)
                    _record_atoms(net.layers(), record[name])
                    start = clock()
                    train_step(net, opts, x, y, sampler)
                    seconds[name].append(clock() - start)
            o, n = statistics.median(seconds["old"]), statistics.median(seconds["new"])
            rows.append(
                {
                    "net": spec,
                    "setup": setup,
                    "hidden": hidden,
                    "batch": args.batch,
                    f"old_{unit}_per_step": round(o, 4),
                    f"new_{unit}_per_step": round(n, 4),
                    "ratio_new_to_old": round(n / o, 3),
                    "same_first_step_goals": same,
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "ab_kernel",
                "threads": args.threads,
                "old": baseline,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
