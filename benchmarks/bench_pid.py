"""Benchmark of the training-time PID workload (never imported by the package).

Workload (the training estimate of Schneider et al. 2025, appendix A.6 and Table 1; see
benchmarks/README.md; issue "PID engine"): trivariate (or, with --sources, also
four-source) neurons, 20 bins per source, binary target, a batch of B = 1024 samples with
per-sample firing probabilities theta, N neurons.  For each number of sources and each N it
times, after one discarded warm-up pass, the median over --repeat passes of

- estimate: binning -> per-neuron tables (ours: sample_cells + target tables; dense: the full
  20x20x20x2 soft histogram per neuron),
- pid: all 18 atoms (166 for four sources) plus H_res,
- backward: the gradient of the summed goal sum_j (gamma . atoms_j + gamma_res H_res_j) with
  respect to theta (unequal random gammas),

for our per-sample engine and for a straightforward dense baseline (dense histogram, union
probabilities by inclusion-exclusion over dense marginals, autograd), which is what the
published code does.  Each (method, N) runs in its own subprocess so that its peak RSS is its
own.  The dense baseline processes neurons in chunks (--dense-chunk) to bound memory; this does
not change its arithmetic; it is skipped for four sources (20^4 x 2 cells per neuron).
--backends picks our implementation: "auto" (the compiled kernel on CPU when it builds; the
result key is "ours"), "kernel" or "torch" (keys "ours-kernel", "ours-torch").  --train-path
times what a layer runs instead: sx_pid_from_binary_samples on theta with the goal's
gradient direction as grad_hint, backward of minus the summed goal.  Prints one JSON line;
each result row names its number of sources.

    python benchmarks/bench_pid.py                      # N = 100, 500, 2000 on CPU (2 threads)
    python benchmarks/bench_pid.py --neurons 100 --repeat 3 --device cuda
    python benchmarks/bench_pid.py --sources 3 4 --neurons 100 500 --backends kernel torch --no-dense
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _inputs(n_neurons: int, batch: int, n_bins: int, n_sources: int, device: str, seed: int):
    from infomorphic.pid import get_lattice

    gen = torch.Generator().manual_seed(seed)
    bins = torch.randint(0, n_bins, (batch, n_neurons, n_sources), generator=gen)
    logits = 2 * torch.randn(batch, n_neurons, generator=gen)
    gamma = torch.rand(len(get_lattice(n_sources)) + 1, generator=gen, dtype=torch.float64) * 2 - 1
    return bins.to(device), logits.to(device), gamma


def _timed_goal(estimate, decompose, theta, g):
    """Time the three stages on one block of neurons: estimate -> (pid + goal) -> backward."""
    device = str(theta.device)
    t0 = time.perf_counter()
    estimated = estimate()
    _sync(device)
    t1 = time.perf_counter()
    res = decompose(estimated)
    goal = (res.atoms @ g[:-1]).sum() + g[-1] * res.residual_entropy.sum()
    _sync(device)
    t2 = time.perf_counter()
    goal.backward()
    _sync(device)
    t3 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2), res.atoms.detach(), res.residual_entropy.detach()


def _run_ours(bins, logits, gamma, n_bins, dtype, backend="auto", train_path=False):
    from infomorphic.estimate import binary_weights
    from infomorphic.goals import Goal
    from infomorphic.pid import get_lattice, sample_cells, sx_pid_from_binary_samples, sx_pid_from_samples

    theta = torch.sigmoid(logits.to(dtype)).requires_grad_(True)
    g = gamma.to(dtype=dtype, device=theta.device)
    if train_path:  # as InfomorphicLayer.local_goal: theta in place, the goal's direction as hint
        n_sources = bins.shape[-1]
        names = get_lattice(n_sources).names("FCLB"[:n_sources])
        hint = Goal("FCLB"[:n_sources], {**dict(zip(names, gamma[:-1].tolist())), "H_res": float(gamma[-1])})
        hint = hint.redundancy_weights()
        times, atoms, hres = _timed_goal(
            lambda: sample_cells(bins, n_bins, dtype=dtype, validate=False, backend=backend),
            lambda cells: sx_pid_from_binary_samples(cells, theta, grad_hint=hint),
            theta,
            -g,  # the loss is minus the summed goal
        )
        return times, atoms, hres, theta.grad
    times, atoms, hres = _timed_goal(
        lambda: (
            sample_cells(bins, n_bins, dtype=dtype, validate=False, backend=backend),
            binary_weights(theta),
        ),
        lambda est: sx_pid_from_samples(*est),
        theta,
        g,
    )
    return times, atoms, hres, theta.grad


def _run_dense(bins, logits, gamma, n_bins, dtype, chunk):
    from infomorphic.estimate import binary_weights, soft_histogram
    from infomorphic.pid import sx_pid_torch

    theta = torch.sigmoid(logits.to(dtype)).requires_grad_(True)
    g = gamma.to(dtype=dtype, device=theta.device)
    times = [0.0, 0.0, 0.0]
    atoms, hres = [], []
    for lo in range(0, bins.shape[1], chunk):  # chunks of neurons bound the baseline's memory
        sl = slice(lo, lo + chunk)
        dts, a, h = _timed_goal(
            lambda sl=sl: soft_histogram(bins[:, sl], binary_weights(theta[:, sl]), n_bins),
            lambda pmf: sx_pid_torch(pmf, bins.shape[-1], validate=False),
            theta,
            g,
        )
        times = [t + dt for t, dt in zip(times, dts)]
        atoms.append(a)
        hres.append(h)
    return tuple(times), torch.cat(atoms), torch.cat(hres), theta.grad


def worker(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    bins, logits, gamma = _inputs(args.n, args.batch, args.bins, args.n_sources, args.device, args.seed)
    if args.method.startswith("ours"):
        backend = args.method.partition("-")[2] or "auto"
        run = lambda: _run_ours(bins, logits, gamma, args.bins, dtype, backend, args.train_path)  # noqa: E731
    else:
        run = lambda: _run_dense(bins, logits, gamma, args.bins, dtype, args.dense_chunk)  # noqa: E731
    run()  # warm-up: first touch of fresh memory is slow on these machines
    samples, cpu = [], []
    for _ in range(args.repeat):
        start = time.process_time()
        samples.append(run())
        cpu.append(time.process_time() - start)
    stages = list(zip(*[s[0] for s in samples]))
    out = {
        "method": args.method,
        "sources": args.n_sources,
        "N": args.n,
        "estimate_s": statistics.median(stages[0]),
        "pid_s": statistics.median(stages[1]),
        "backward_s": statistics.median(stages[2]),
    }
    out["total_s"] = statistics.median([sum(s[0]) for s in samples])
    # CPU seconds of the whole pass (all threads): robust to other processes for --threads 1
    out["cpu_s"] = statistics.median(cpu)
    if args.method == "dense":
        _, atoms_ours, hres_ours, grad_ours = _run_ours(bins, logits, gamma, args.bins, dtype)
        _, atoms, hres, grad = samples[-1]
        out["max_abs_atom_diff_vs_ours"] = float((atoms - atoms_ours).abs().max())
        out["max_abs_hres_diff_vs_ours"] = float((hres - hres_ours).abs().max())
        out["max_abs_grad_diff_vs_ours"] = float((grad - grad_ours).abs().max())
        out["dense_chunk"] = args.dense_chunk
    if args.device.startswith("cuda"):
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--neurons", type=int, nargs="+", default=[100, 500, 2000])
    p.add_argument(
        "--sources",
        type=int,
        nargs="+",
        default=[3],
        choices=[2, 3, 4],
        help="numbers of sources to time, e.g. 3 4",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        default=["auto"],
        choices=["auto", "kernel", "torch"],
        help="our implementations to time (auto: the kernel on CPU when it builds)",
    )
    p.add_argument(
        "--train-path",
        action="store_true",
        help="time the layer's call (binary theta, grad_hint) instead of the general one",
    )
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--bins", type=int, default=20)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dense-chunk", type=int, default=250, help="neurons per dense-baseline chunk")
    p.add_argument("--no-dense", action="store_true", help="skip the dense baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method", choices=["ours", "ours-kernel", "ours-torch", "dense"], help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--n-sources", type=int, default=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.method:  # subprocess worker
        print(json.dumps(worker(args)))
        return
    ours = ["ours" if b == "auto" else f"ours-{b}" for b in dict.fromkeys(args.backends)]
    results = []
    for n_sources in args.sources:
        for n in args.neurons:
            row: dict = {"sources": n_sources, "N": n}
            for method in ours + ([] if args.no_dense else ["dense"]):
                if method == "dense" and n_sources == 4:
                    row[method] = {"skipped": f"a dense {args.bins}^4 x 2 pmf per neuron is too large"}
                    continue
                cmd = [
                    sys.executable,
                    __file__,
                    "--method",
                    method,
                    "--n",
                    str(n),
                    "--n-sources",
                    str(n_sources),
                ]
                for flag in ("batch", "bins", "repeat", "threads", "dtype", "device", "dense_chunk", "seed"):
                    cmd += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
                if args.train_path:
                    cmd.append("--train-path")
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    row[method] = {"error": proc.stderr.strip().splitlines()[-1:]}
                    continue
                row[method] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"# sources={n_sources} N={n} {method}: {row[method]}", file=sys.stderr)
            if "total_s" in row.get("dense", {}) and "total_s" in row.get(ours[0], {}):
                row["speedup"] = row["dense"]["total_s"] / row[ours[0]]["total_s"]
            results.append(row)
    print(
        json.dumps(
            {
                "benchmark": "pid_training_workload",
                "sources": args.sources if len(args.sources) > 1 else args.sources[0],
                "backends": args.backends,
                "train_path": args.train_path,
                "bins": args.bins,
                "batch": args.batch,
                "dtype": args.dtype,
                "device": args.device,
                "threads": args.threads,
                "torch": torch.__version__,
                "machine": f"{platform.machine()} {os.cpu_count()} cpus",
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
