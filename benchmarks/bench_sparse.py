"""The sparse partner product against the dense masked GEMM (never imported by the package).

For each case (N neurons, ``in`` inputs, ``P = round(density * in)`` random partners per
neuron, batch B) it times one training use of an input class:

- sparse: :func:`infomorphic.nn.functional.sparse_aggregate` (``(N, P)`` values and indices)
  forward, and the gradient of the values and the bias (the layer's inputs are detached, so
  no input gradient), B * N * P multiply-adds each;
- dense: :func:`infomorphic.nn.functional.aggregate` with the ``(N, in)`` weight and its 0/1
  mask forward, and the gradient of the weight and the bias, B * N * in each;

with the same upstream gradient, after two discarded calls of each; the timed calls alternate
(sparse, dense, sparse, ...) so that a change of load hits both alike.  It reports per case the
median seconds (wall-clock, and CPU seconds of the process, which other processes on the
machine change less), the ratio sparse / dense of each, the largest difference between the
two products (relative to the largest magnitude, output and values gradient), and whether
:func:`~infomorphic.nn.functional.prefer_sparse` chose the faster storage (by the wall-clock
ratio; ``--by cpu`` judges by CPU seconds instead).  Prints one JSON line.

    python benchmarks/bench_sparse.py                       # the full grid, 2 threads
    python benchmarks/bench_sparse.py --threads 1 --by cpu  # on a machine loaded by other work
    python benchmarks/bench_sparse.py --neurons 500 --inputs 784 --densities 0.05 0.25 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

NEURONS = (100, 500, 2000)
INPUTS = (100, 784, 2000)
DENSITIES = (0.02, 0.05, 0.1, 0.125, 0.2, 0.25, 0.5)


def _partners(n: int, n_inputs: int, p: int, gen: torch.Generator) -> Tensor:
    """``(N, P)`` sorted distinct random partner indices per row."""
    return torch.rand(n, n_inputs, generator=gen).topk(p, dim=1).indices.sort(1).values


def _timed(fn: Callable[[], Any], sync: Callable[[], None]) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one call."""
    c, t = time.process_time(), time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t, time.process_time() - c


def run_case(
    n: int, n_inputs: int, density: float, batch: int, repeat: int, device: torch.device, seed: int
) -> dict[str, Any]:
    """Time the sparse and the dense masked product of one case (see the module docstring)."""
    from infomorphic.nn.functional import aggregate, partner_mask, prefer_sparse, sparse_aggregate

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    p = max(1, round(density * n_inputs))
    gen = torch.Generator().manual_seed(seed + 1009 * n + n_inputs)
    index = _partners(n, n_inputs, p, gen)
    x = torch.randn(batch, n_inputs, generator=gen)
    upstream = torch.randn(batch, n, generator=gen)
    values = torch.randn(n, p, generator=gen) / p**0.5
    bias = torch.randn(n, generator=gen)
    weight = torch.zeros(n, n_inputs).scatter_(1, index, values)
    mask = partner_mask(index, n_inputs)
    x, upstream, index, mask = (t.to(device) for t in (x, upstream, index, mask))
    values, bias_s, weight, bias_d = (
        t.to(device).requires_grad_(True) for t in (values, bias, weight, bias.clone())
    )

    def sparse() -> tuple[Tensor, ...]:
        out = sparse_aggregate(x, values, index, bias_s)
        return (out, *torch.autograd.grad(out, (values, bias_s), upstream))

    def dense() -> tuple[Tensor, ...]:
        out = aggregate(x, weight, bias_d, mask)
        return (out, *torch.autograd.grad(out, (weight, bias_d), upstream))

    s_out, s_gv, _ = sparse()
    d_out, d_gw, _ = dense()
    with torch.no_grad():  # largest difference relative to the largest magnitude, output and gradient
        d_gv = d_gw.gather(1, index)
        diff = max(
            float((s_out - d_out).abs().max() / d_out.abs().max()),
            float((s_gv - d_gv).abs().max() / d_gv.abs().max()),
        )
    del s_out, s_gv, d_out, d_gw, d_gv
    for _ in range(2):  # discarded
        sparse()
        dense()
    sync()
    s_wall, s_cpu, d_wall, d_cpu = [], [], [], []
    for _ in range(repeat):
        w, c = _timed(sparse, sync)
        s_wall.append(w)
        s_cpu.append(c)
        w, c = _timed(dense, sync)
        d_wall.append(w)
        d_cpu.append(c)
    sw, sc, dw, dc = (statistics.median(v) for v in (s_wall, s_cpu, d_wall, d_cpu))
    return {
        "neurons": n,
        "inputs": n_inputs,
        "partners": p,
        "density": density,
        "sparse_s": sw,
        "dense_s": dw,
        "ratio": sw / dw,
        "sparse_cpu_s": sc,
        "dense_cpu_s": dc,
        "ratio_cpu": sc / dc if dc > 0 else None,
        "max_rel_diff": diff,
        "prefer_sparse": prefer_sparse(p, n_inputs),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--neurons", type=int, nargs="+", default=list(NEURONS))
    ap.add_argument("--inputs", type=int, nargs="+", default=list(INPUTS))
    ap.add_argument("--densities", type=float, nargs="+", default=list(DENSITIES), help="P / in")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=5, help="timed calls of each product per case")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--by",
        choices=["wall", "cpu"],
        default="wall",
        help="which ratio judges prefer_sparse's choice (cpu: CPU seconds of the process)",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if min(args.neurons + args.inputs + [args.batch, args.repeat, args.threads]) < 1:
        ap.error("--neurons, --inputs, --batch, --repeat and --threads must be >= 1")
    if not all(0 < d <= 1 for d in args.densities):
        ap.error("--densities must lie in (0, 1]")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: CUDA is not available")

    cases = []
    for n in args.neurons:
        for n_inputs in args.inputs:
            for density in args.densities:
                case = run_case(n, n_inputs, density, args.batch, args.repeat, device, args.seed)
                ratio = case["ratio"] if args.by == "wall" or case["ratio_cpu"] is None else case["ratio_cpu"]
                case["sparse_faster"] = ratio < 1
                case["choice_right"] = case["prefer_sparse"] == case["sparse_faster"]
                cases.append(case)
    by_density: dict[str, dict[str, float]] = {}
    for d in args.densities:
        ratios = [c["ratio"] for c in cases if c["density"] == d]
        cpu = [c["ratio_cpu"] for c in cases if c["density"] == d and c["ratio_cpu"] is not None]
        by_density[str(d)] = {
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            **({"ratio_cpu_min": min(cpu), "ratio_cpu_max": max(cpu)} if cpu else {}),
        }
    wrong = [
        {k: c[k] for k in ("neurons", "inputs", "partners", "ratio", "ratio_cpu", "prefer_sparse")}
        for c in cases
        if not c["choice_right"]
    ]
    print(
        json.dumps(
            {
                "benchmark": "sparse_product",
                "batch": args.batch,
                "repeat": args.repeat,
                "threads": args.threads,
                "device": str(device),
                "judged_by": args.by,
                "torch": torch.__version__,
                "machine": platform.machine(),
                "cpu_count": os.cpu_count(),
                "cases": cases,
                "by_density": by_density,
                "prefer_sparse_right": len(cases) - len(wrong),
                "cases_total": len(cases),
                "prefer_sparse_wrong": wrong,
            }
        )
    )


if __name__ == "__main__":
    main()
