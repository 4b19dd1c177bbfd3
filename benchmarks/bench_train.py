"""Seconds per training epoch of the supervised infomorphic network (never imported by the package).

Same data and batch as our timing of the published implementation (the authors' code released
with Schneider et al. 2025, run on a 2-core machine like ours; benchmarks/README.md): MNIST with a
48000 / 12000 split, batch 1024 (47 batches per epoch), setup-1 trivariate network with the
optimised goal, 2 threads.  After one discarded warm-up epoch, times --epochs epochs and
reports the median seconds per training epoch, the evaluation time (val + test), the share of
time per stage of a training step (hidden forward, binning, PID, backward, optimiser, readout)
and the peak RSS.  Uses real MNIST when it is available (``infomorphic data fetch mnist``),
otherwise random data of the same shape (the timing does not depend on pixel values).
Prints one JSON line.

    python benchmarks/bench_train.py --hidden 100
    python benchmarks/bench_train.py --hidden 500 --epochs 1
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch


def _data(use_random: bool):
    if not use_random:
        try:
            from infomorphic.data import load_dataset

            s = load_dataset("mnist", seed=0)
            return s.train.x, s.train.y, torch.cat([s.val.x, s.test.x]), "mnist"
        except Exception as exc:  # noqa: BLE001 - fall back to random data of the same shape
            print(f"# MNIST not available ({exc}); using random data", flush=True)
    g = torch.Generator().manual_seed(0)
    return torch.randn(48000, 784, generator=g), torch.randint(0, 10, (48000,), generator=g), \
        torch.randn(22000, 784, generator=g), "random"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--setup", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch)")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--random-data", action="store_true")
    p.add_argument("--network", default="trivariate")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from infomorphic.config import TrainConfig
    from infomorphic.pid import sx_pid_from_binary_samples
    from infomorphic.seeding import generator
    from infomorphic.train.loop import build_network, evaluate_network

    dev = torch.device(args.device)
    xtr, ytr, xev, source = _data(args.random_data)
    xtr, ytr, xev = xtr.to(dev), ytr.to(dev), xev.to(dev)
    cfg = TrainConfig(network=args.network, setup=args.setup, hidden=args.hidden, dataset="mnist")
    net = build_network(cfg, xtr.shape[1], 10).to(dev)
    opts = {n: torch.optim.Adam(l.parameters(), lr=1e-3, weight_decay=1e-4, fused=True) for n, l in net.layers().items()}
    sampler = generator(0, "sampling", device=dev)
    stages = ["forward", "binning", "pid", "backward", "optimiser"]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def epoch(times: dict[str, float]) -> float:
        order = torch.randperm(len(xtr), device=dev)
        t_epoch = time.perf_counter()
        for lo in range(0, len(xtr), args.batch):
            idx = order[lo : lo + args.batch]
            t = time.perf_counter()
            out = net(xtr[idx], ytr[idx], sampler)
            sync()
            t1 = time.perf_counter()
            layers = net.layers()
            outs = {"readout": out.readout, **({"hidden": out.hidden} if "hidden" in layers else {})}
            bins = {n: layers[n].bins(o.aggregates) for n, o in outs.items()}
            sync()
            t2 = time.perf_counter()
            goal = 0
            for n, o in outs.items():
                res = sx_pid_from_binary_samples(bins[n], o.theta, layers[n].n_bins, validate=False,
                                                 grad_hint=layers[n].goal.redundancy_weights())
                goal = goal + layers[n].goal.evaluate(res.atoms, res.residual_entropy).sum()
            sync()
            t3 = time.perf_counter()
            for o in opts.values():
                o.zero_grad(set_to_none=True)
            (-goal).backward()
            sync()
            t4 = time.perf_counter()
            for o in opts.values():
                o.step()
            sync()
            t5 = time.perf_counter()
            for name, a, b in zip(stages, (t, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                times[name] = times.get(name, 0.0) + b - a
        return time.perf_counter() - t_epoch

    epoch({})  # warm-up: first touch of fresh memory is slow on these machines
    times: dict[str, float] = {}
    secs = [epoch(times) for _ in range(args.epochs)]
    t = time.perf_counter()
    evaluate_network(net, xev, torch.zeros(len(xev), dtype=torch.long, device=dev), args.batch, sampler)
    sync()
    eval_s = time.perf_counter() - t
    total = sum(times.values())
    print(json.dumps({
        "benchmark": "train_epoch", "network": args.network, "setup": args.setup, "hidden": args.hidden,
        "batch": args.batch, "batches_per_epoch": -(-len(xtr) // args.batch), "data": source,
        "device": str(dev), "threads": args.threads, "torch": torch.__version__,
        "seconds_per_epoch": statistics.median(secs), "epochs_timed": len(secs),
        "eval_seconds_val_test": eval_s,
        "stage_share": {k: round(v / total, 4) for k, v in times.items()},
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }))


if __name__ == "__main__":
    main()
