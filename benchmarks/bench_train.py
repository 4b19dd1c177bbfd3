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

The network: ``--network/--setup/--hidden`` (one of the papers' networks), or ``--config
FILE``, a training config as ``infomorphic train --config`` reads it (its ``[network]`` table
wires any network; its network keys and learning rates are used, its data set and batch size
are not: the data are always the benchmark's MNIST-shaped set and the batch ``--batch``);
``--network/--setup/--hidden`` given beside ``--config`` override it.  The optimisers are the
training loop's (fused Adam per trained layer, with the config's learning rates).

``--compare-legacy`` also builds the frozen network code from before the wiring builder
(``tests/nn/legacy_network.py``, same kind, setup, size and initial weights) and times both in
the same process: one warm-up epoch each, then their epochs interleaved (A B A B ...) so that
a change of load on the machine hits both alike; it reports both medians and the ratio
builder / legacy.

The floor.  After the warm-up, the machine's dense float32 GEMM time is measured on the spot
at the network's own shapes: for every layer and input class with a weight, ``F.linear`` of a
``(batch, in)`` input with the ``(out, in)`` weight (the forward product) and ``grad.T @ x``
(the weight-gradient product), each the median of ``--gemm-repeat`` calls after two discarded
ones.  The products one training step needs are counted by recording the layers' aggregate
calls during one forward pass (so any wiring is counted as it runs: a later presentation
recomputes only the classes whose input changed): one forward product per recorded call, and
one weight-gradient product per trained class (a frozen layer's forward products count, with
no gradient; fixed weights such as the readout's identity label context count nothing).  A
class stored sparsely (``(N, P)`` partner values) needs B * N * P multiply-adds, not
B * N * in: its floor is the dense product's measured time at its real (in, out) shape scaled by
P / in, i.e. it is computed at the same dense GEMM throughput, which the sparse kernels
themselves do not reach (see ``bench_sparse.py``).  The floor of an epoch is the sum of these
times over its batches (a shorter last batch in proportion to its size); ``floor_seconds``,
``ratio_epoch_to_floor`` and the breakdown per layer and class are printed.  The GEMM
throughput of these machines drifts (the same floor measured 0.67-1.06 s within an hour), so the
floor is measured again after every timed epoch, and each epoch is divided by the mean of the
floors measured just before and just after it: ``ratio_epoch_to_floor`` is the median of these
paired ratios (``ratio_epoch_to_floor_per_epoch``), ``floor_seconds`` the median floor
(``floor_seconds_measured``: all of them, in order).
The floor leaves out all the rest of a step (activation, binning, the PID estimate,
the optimiser): it is the time the network's matrix products alone would take.

    python benchmarks/bench_train.py --hidden 100
    python benchmarks/bench_train.py --hidden 500 --epochs 1
    python benchmarks/bench_train.py --setup 2 --hidden 2000 --compare-legacy
    python benchmarks/bench_train.py --config configs/networks/deep2.toml --epochs 3
    python benchmarks/bench_train.py --random-data --hidden 20 --epochs 1 --batches 2 --compare-legacy
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parent.parent
LEGACY_DIR = ROOT / "tests" / "nn"
STAGES = ("forward", "binning", "pid", "backward", "optimiser")
N_TRAIN, N_EVAL, N_FEATURES, N_CLASSES = 48000, 22000, 784, 10
NO_LEGACY_WIRING = (
    "--compare-legacy needs one of the papers' networks (--network/--setup/--hidden, or a "
    "config without a [network] table): the legacy code cannot build a wiring"
)


def _data(
    use_random: bool, n_train: int = N_TRAIN, n_eval: int = N_EVAL
) -> tuple[Tensor, Tensor, Tensor, str]:
    """Training inputs and labels, evaluation inputs (val + test) and the source's name.

    Random data are drawn only as far as needed (``n_train``, ``n_eval``); MNIST is cut to them.
    """
    if not use_random:
        try:
            from infomorphic.data import load_dataset

            s = load_dataset("mnist", seed=0)
            return s.train.x[:n_train], s.train.y[:n_train], torch.cat([s.val.x, s.test.x])[:n_eval], "mnist"
        except Exception as exc:  # noqa: BLE001 - fall back to random data of the same shape
            print(f"# MNIST not available ({exc}); using random data", file=sys.stderr, flush=True)
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(n_train, N_FEATURES, generator=g),
        torch.randint(0, N_CLASSES, (n_train,), generator=g),
        torch.randn(n_eval, N_FEATURES, generator=g),
        "random",
    )


# ------------------------------------------------------------------ networks
def _config(args: argparse.Namespace) -> Any:
    """The TrainConfig to build: ``--config`` with the explicit ``--network/--setup/--hidden``
    on top, or those options alone (defaults: trivariate, setup 1, 100 hidden)."""
    from infomorphic.config import TrainConfig, load_config

    overrides = {
        k: v
        for k, v in (("network", args.network), ("setup", args.setup), ("hidden", args.hidden))
        if v is not None
    }
    if args.config is not None:
        return load_config(args.config, overrides)
    defaults = {"network": "trivariate", "setup": 1, "hidden": 100}
    return TrainConfig(**{**defaults, **overrides, "dataset": "mnist"})


LEGACY_DEFAULTS = {"random_activation": "feedforward", "hidden_binning": "fixed"}
"""Network options newer than the legacy code, and the value the legacy code always had."""


def _legacy_network(config: Any, n_inputs: int, n_classes: int) -> nn.Module:
    """The frozen pre-builder network (``tests/nn/legacy_network.py``) for ``config``, with the
    same initial weights as :func:`infomorphic.train.loop.build_network` and the loop's
    optimiser grouping (hidden settings for the hidden layer, readout settings for the readout)."""
    from infomorphic.train.loop import kind_network_args

    if config.wiring is not None:
        raise ValueError(NO_LEGACY_WIRING)
    if str(LEGACY_DIR) not in sys.path:
        sys.path.insert(0, str(LEGACY_DIR))
    legacy = importlib.import_module("legacy_network")
    if config.network not in legacy.NETWORK_KINDS:
        raise ValueError(f"--compare-legacy: the legacy code has no network {config.network!r}")

    class Legacy(legacy.InfomorphicNetwork):  # type: ignore[misc, name-defined]
        """The legacy network with the builder's ``optimizer_settings`` (the loop needs it)."""

        def optimizer_settings(
            self, hidden: tuple[float, float], readout: tuple[float, float]
        ) -> dict[str, tuple[float, float]]:
            return {name: (readout if name == "readout" else hidden) for name in self.layers()}

    args = kind_network_args(config)
    # options added after the builder replaced the legacy code: only their defaults have a legacy form
    for key, default in LEGACY_DEFAULTS.items():
        value = args.pop(key, default)
        if value != default:
            raise ValueError(f"--compare-legacy: the legacy code has no {key} = {value!r} (only {default!r})")
    return Legacy(n_inputs, n_classes, **args)


def _same_initial_weights(a: nn.Module, b: nn.Module) -> bool:
    """Whether two networks' trained layers hold the same effective weights and biases."""
    la, lb = a.layers(), b.layers()
    if set(la) != set(lb):
        return False
    for name, layer in la.items():
        other = lb[name]
        if set(layer.weight) != set(other.weight):
            return False
        for letter in layer.weight:
            if not torch.equal(layer.effective_weight(letter), other.effective_weight(letter)):
                return False
        for letter, bias in layer.bias.items():
            if not torch.equal(bias, other.bias[letter]):
                return False
    return True


def _layer_outputs(out: Any) -> dict[str, Any]:
    """Layer name -> LayerOutput of the learning presentation (builder or legacy output)."""
    outputs = getattr(out, "outputs", None)
    if outputs is not None:
        return dict(outputs)
    return {"readout": out.readout, **({"hidden": out.hidden} if out.hidden is not None else {})}


class Trainer:
    """One network, its optimisers and sampler, and a timed training epoch split into stages."""

    def __init__(self, net: nn.Module, config: Any, device: torch.device) -> None:
        self.net = net.to(device)
        self.device = device
        lrs = net.optimizer_settings(
            (config.hidden_lr, config.hidden_weight_decay), (config.readout_lr, config.readout_weight_decay)
        )
        self.opts = {
            name: torch.optim.Adam(layer.parameters(), lr=lrs[name][0], weight_decay=lrs[name][1], fused=True)
            for name, layer in net.layers().items()
        }
        from infomorphic.seeding import generator

        self.sampler = generator(config.seed, "sampling", device=device)
        self.times: dict[str, float] = {}
        self.epochs: list[float] = []

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def epoch(self, x: Tensor, y: Tensor, batch: int, n_batches: int | None, record: bool = True) -> float:
        """One training epoch (at most ``n_batches`` batches); seconds.  ``record``: add the
        epoch and its stage times to :attr:`epochs` and :attr:`times`."""
        from infomorphic.pid import sx_pid_from_binary_samples

        order = torch.randperm(len(x), device=self.device)
        starts = list(range(0, len(x), batch))[:n_batches]
        times: dict[str, float] = {}
        self.sync()
        t_epoch = time.perf_counter()
        for lo in starts:
            idx = order[lo : lo + batch]
            t0 = time.perf_counter()
            out = self.net(x.index_select(0, idx), y.index_select(0, idx), self.sampler)
            self.sync()
            t1 = time.perf_counter()
            layers = self.net.layers()
            outs = _layer_outputs(out)
            bins = {n: layers[n].bins_of(outs[n]) for n in layers}  # as InfomorphicLayer.local_goal
            self.sync()
            t2 = time.perf_counter()
            goal: Tensor | int = 0
            for n, layer in layers.items():
                res = sx_pid_from_binary_samples(
                    bins[n],
                    outs[n].theta,
                    layer.n_bins,
                    validate=False,
                    grad_hint=layer.goal.redundancy_weights(),
                )
                goal = goal + layer.goal.evaluate(res.atoms, res.residual_entropy).sum()
            self.sync()
            t3 = time.perf_counter()
            for o in self.opts.values():
                o.zero_grad(set_to_none=True)
            (-goal).backward()  # type: ignore[operator]
            self.sync()
            t4 = time.perf_counter()
            for o in self.opts.values():
                o.step()
            self.sync()
            t5 = time.perf_counter()
            for name, a, b in zip(STAGES, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5)):
                times[name] = times.get(name, 0.0) + b - a
        seconds = time.perf_counter() - t_epoch
        if record:
            self.epochs.append(seconds)
            for k, v in times.items():
                self.times[k] = self.times.get(k, 0.0) + v
        return seconds

    def stage_share(self) -> dict[str, float]:
        total = sum(self.times.values())
        return {k: round(v / total, 4) for k, v in self.times.items()} if total > 0 else {}


# ------------------------------------------------------------------ the floor
@contextlib.contextmanager
def _recording_products(net: nn.Module) -> Iterator[list[tuple[str, str, int]]]:
    """Record ``(layer, class, batch)`` for every aggregate product of a layer's own weight
    (trained or frozen; fixed weights are not recorded) while the context is open."""
    import infomorphic.nn.layer as layer_module

    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, layer_module.InfomorphicLayer)]
    names = {id(w): (name, letter) for name, layer in layers for letter, w in layer.weight.items()}
    calls: list[tuple[str, str, int]] = []
    original: Callable[..., Tensor] = layer_module.aggregate

    def recording(x: Tensor, weight: Tensor, *rest: Any, **kwargs: Any) -> Tensor:
        key = names.get(id(weight))
        if key is not None:
            calls.append((key[0], key[1], int(x.shape[0])))
        return original(x, weight, *rest, **kwargs)

    layer_module.aggregate = recording
    try:
        yield calls
    finally:
        layer_module.aggregate = original


def _median_seconds(fn: Callable[[], Any], repeat: int, sync: Callable[[], None]) -> float:
    for _ in range(2):  # discarded: first touch of fresh memory, lazy initialisation
        fn()
    sync()
    secs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        secs.append(time.perf_counter() - t)
    return statistics.median(secs)


def gemm_seconds(
    batch: int, n_in: int, n_out: int, device: torch.device, repeat: int, sync: Callable[[], None]
) -> tuple[float, float]:
    """Measured seconds of the dense float32 forward product ``F.linear((batch, in), (out, in))``
    and of the weight-gradient product ``grad.T @ x`` (``(out, batch) @ (batch, in)``)."""
    g = torch.Generator().manual_seed(batch * 7919 + n_in * 31 + n_out)
    x = torch.randn(batch, n_in, generator=g).to(device)
    w = torch.randn(n_out, n_in, generator=g).to(device)
    grad = torch.randn(batch, n_out, generator=g).to(device)
    with torch.no_grad():
        forward = _median_seconds(lambda: torch.nn.functional.linear(x, w), repeat, sync)
        weight_grad = _median_seconds(lambda: torch.mm(grad.t(), x), repeat, sync)
    return forward, weight_grad


def floor(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    batch: int,
    n_batches: int | None,
    device: torch.device,
    repeat: int,
    sync: Callable[[], None],
) -> tuple[float, list[dict[str, Any]]]:
    """Floor seconds of one training epoch and its breakdown per layer and input class (see the
    module docstring)."""
    with torch.no_grad(), _recording_products(net) as calls:
        net(x[:batch], y[:batch], torch.Generator(device=device).manual_seed(0))
    if not calls:
        raise RuntimeError(
            "no aggregate product was recorded: the layer code no longer calls "
            "infomorphic.nn.layer.aggregate; update the benchmark's recorder"
        )
    counts: dict[tuple[str, str], int] = {}
    for layer_name, letter, _ in calls:
        counts[(layer_name, letter)] = counts.get((layer_name, letter), 0) + 1
    trained = net.layers()
    sizes = [min(batch, len(x) - lo) for lo in range(0, len(x), batch)][:n_batches]
    batches_equivalent = sum(sizes) / batch  # products scale linearly with the batch
    cache: dict[tuple[int, int], tuple[float, float]] = {}
    rows: list[dict[str, Any]] = []
    total = 0.0
    for (layer_name, letter), n_forward in counts.items():
        layer = net.get_submodule(layer_name)
        n_in, n_out = layer.in_features[letter], layer.n_neurons
        weight = layer.weight[letter]
        grads = 1 if layer_name in trained and weight.requires_grad else 0
        sparse = layer.is_sparse(letter)
        partners = int(weight.shape[1]) if sparse else None
        share = partners / n_in if partners is not None else 1.0  # B*N*P of B*N*in multiply-adds
        if (n_in, n_out) not in cache:
            cache[(n_in, n_out)] = gemm_seconds(batch, n_in, n_out, device, repeat, sync)
        t_fwd, t_grad = cache[(n_in, n_out)]
        seconds = batches_equivalent * share * (n_forward * t_fwd + grads * t_grad)
        madds = batch * n_out * (partners if partners is not None else n_in)
        total += seconds
        rows.append(
            {
                "layer": layer_name,
                "class": letter,
                "in": n_in,
                "out": n_out,
                "stored": "sparse" if sparse else ("masked" if layer.mask(letter) is not None else "dense"),
                "partners": partners,
                "forward_products_per_batch": n_forward,
                "weight_grad_products_per_batch": grads,
                "madds_per_product": madds,
                "madds_per_epoch": round(batches_equivalent * madds * (n_forward + grads)),
                "gemm_forward_s": t_fwd,
                "gemm_weight_grad_s": t_grad,
                "gemm_forward_gflops": 2 * batch * n_in * n_out / t_fwd / 1e9,
                "gemm_weight_grad_gflops": 2 * batch * n_in * n_out / t_grad / 1e9,
                "floor_seconds": seconds,
            }
        )
    return total, rows


# ------------------------------------------------------------------ main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="TOML training config (a [network] table wires any network)")
    p.add_argument("--network", help="one of the papers' networks (default trivariate)")
    p.add_argument("--setup", type=int, help="trivariate setup 1, 2 or 3 (default 1)")
    p.add_argument("--hidden", type=int, help="hidden neurons (default 100)")
    p.add_argument(
        "--epochs", type=int, default=2, help="timed epochs (after one warm-up epoch), per network"
    )
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--batches", type=int, help="at most this many batches per epoch (and for the evaluation)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--random-data", action="store_true")
    p.add_argument(
        "--compare-legacy",
        action="store_true",
        help="also time the frozen pre-builder network, epochs interleaved, and report the ratio",
    )
    p.add_argument("--gemm-repeat", type=int, default=5, help="timed calls per GEMM shape of the floor")
    p.add_argument(
        "--release-memory",
        action="store_true",
        help="leave glibc's malloc at its defaults (freed memory returned to the system) instead of "
        "keeping it as `infomorphic train` does (infomorphic.train.heap)",
    )
    args = p.parse_args()
    for name in ("epochs", "batch", "batches", "threads", "gemm_repeat", "hidden"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    torch.set_num_threads(args.threads)
    from infomorphic.train.heap import keep_freed_memory

    kept_memory = False if args.release_memory else keep_freed_memory()  # as infomorphic train does

    from infomorphic.pid.kernel import kernel_enabled, load_kernel
    from infomorphic.train.loop import build_network, evaluate_network

    try:
        config = _config(args)
    except ValueError as exc:
        p.error(str(exc))
    if args.compare_legacy and config.wiring is not None:
        p.error(NO_LEGACY_WIRING)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    limit = None if args.batches is None else args.batches * args.batch
    xtr, ytr, xev, source = _data(
        args.random_data, min(N_TRAIN, limit or N_TRAIN), min(N_EVAL, limit or N_EVAL)
    )
    xtr, ytr, xev = xtr.to(dev), ytr.to(dev), xev.to(dev)
    if dev.type == "cpu" and kernel_enabled():
        load_kernel()  # a first-use compilation happens here, not inside an epoch
    builder = Trainer(build_network(config, xtr.shape[1], N_CLASSES), config, dev)
    legacy: Trainer | None = None
    same_init = None
    if args.compare_legacy:
        try:
            legacy = Trainer(_legacy_network(config, xtr.shape[1], N_CLASSES), config, dev)
        except ValueError as exc:
            p.error(str(exc))
        same_init = _same_initial_weights(builder.net, legacy.net)
    trainers = [builder] + ([legacy] if legacy is not None else [])

    for t in trainers:  # warm-up: first touch of fresh memory is slow on these machines
        t.epoch(xtr, ytr, args.batch, args.batches, record=False)

    def measure_floor() -> tuple[float, list[dict[str, Any]]]:
        return floor(builder.net, xtr, ytr, args.batch, args.batches, dev, args.gemm_repeat, builder.sync)

    first_floor, breakdown = measure_floor()
    floors = [first_floor]
    for _ in range(args.epochs):  # interleaved: A B A B ...
        for t in trainers:
            t.epoch(xtr, ytr, args.batch, args.batches)
        floors.append(measure_floor()[0])  # the floor again after every epoch: see "The floor"
    # each epoch against the mean of the floors measured just before and just after it
    paired = [e / ((f0 + f1) / 2) for e, f0, f1 in zip(builder.epochs, floors, floors[1:])]
    floor_s = statistics.median(floors)

    t0 = time.perf_counter()
    n_eval = len(xev) if args.batches is None else min(len(xev), args.batches * args.batch)
    evaluate_network(
        builder.net,
        xev[:n_eval],
        torch.zeros(n_eval, dtype=torch.long, device=dev),
        args.batch,
        builder.sampler,
    )
    builder.sync()
    eval_s = time.perf_counter() - t0
    seconds = statistics.median(builder.epochs)
    result: dict[str, Any] = {
        "benchmark": "train_epoch",
        "config": None if args.config is None else str(args.config),
        "network": config.network,
        "setup": config.setup,
        "hidden": config.hidden,
        "layers": {name: layer.n_neurons for name, layer in builder.net.layers().items()},
        "batch": args.batch,
        "batches_per_epoch": len(range(0, len(xtr), args.batch)[: args.batches]),
        "data": source,
        "device": str(dev),
        "threads": args.threads,
        "torch": torch.__version__,
        "seconds_per_epoch": seconds,
        "epochs_timed": len(builder.epochs),
        "epoch_seconds": builder.epochs,
        "eval_seconds_val_test": eval_s,
        "eval_samples": n_eval,
        "stage_share": builder.stage_share(),
        "floor_seconds": floor_s,
        "kept_freed_memory": kept_memory,
        "floor_seconds_measured": floors,
        "ratio_epoch_to_floor": statistics.median(paired),
        "ratio_epoch_to_floor_per_epoch": paired,
        "floor": breakdown,
        "gemm_repeat": args.gemm_repeat,
    }
    if legacy is not None:
        legacy_s = statistics.median(legacy.epochs)
        result["legacy"] = {
            "seconds_per_epoch": legacy_s,
            "epoch_seconds": legacy.epochs,
            "stage_share": legacy.stage_share(),
            "ratio_epoch_to_floor": legacy_s / floor_s,
            "same_initial_weights": same_init,
        }
        result["ratio_builder_to_legacy"] = seconds / legacy_s
    result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps(result))


if __name__ == "__main__":
    main()
