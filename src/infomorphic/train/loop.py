"""The local learning loop: one readable ``train_step`` and ``fit`` around it.

A step: the network runs on a batch (the hidden layer twice when it has lateral input), each
trainable layer computes every neuron's PID goal (bits) from the batch, and one backward pass
of ``loss = -(sum of all goals)`` gives every neuron the gradient of its own goal only (see
:mod:`infomorphic.nn.layer` on locality).  This is the one place where a goal becomes a loss.
"""

from __future__ import annotations

import logging
import math
import platform
import resource
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..config import TrainConfig
from ..goals import Goal
from ..pid.kernel import kernel_enabled, load_kernel
from ..nn.network import InfomorphicNetwork, Network, predict
from ..runs import (check_run_name, claim_run_dir, load_checkpoint, load_npz, read_json, read_jsonl,
                    save_checkpoint, save_npz, versions, write_json, write_jsonl)
from ..seeding import generator
from .baselines import BackpropNetwork, BackpropTwin, accuracy, fit_backprop, fit_logistic

__all__ = ["fit", "train_step", "evaluate_network", "build_network", "resolve_device", "TrainingDiverged"]

log = logging.getLogger(__name__)

Report = Callable[[int, dict[str, Any]], None]

CHECKPOINT_KEYS = ("model", "optimizers", "sampler", "epoch")


class TrainingDiverged(RuntimeError):
    """A layer's goal or weights became NaN or infinite; the run stopped, its last finite epoch kept."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; a CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but CUDA is not available; use --device cpu")
    return torch.device(name)


def build_network(config: TrainConfig, n_inputs: int, n_classes: int) -> Network:
    """The infomorphic network a config describes, initialised from the run seed."""
    if config.wiring is not None:
        return Network(config.network_spec(), n_inputs, n_classes, n_bins=config.n_bins,
                       generator=generator(config.seed, "init"))
    hidden_goal = None
    if config.hidden_goal is not None and config.network in ("trivariate", "bivariate-context", "bivariate-lateral"):
        letters = {"trivariate": "FCL", "bivariate-context": "FC", "bivariate-lateral": "FC"}[config.network]
        hidden_goal = Goal.resolve(config.hidden_goal, letters)
    readout_goal = Goal.resolve(config.readout_goal, "FC")
    return InfomorphicNetwork(
        n_inputs,
        n_classes,
        config.network,
        n_hidden=config.hidden,
        setup=config.setup,
        lateral_partners=config.lateral_partners,
        hidden_goal=hidden_goal,
        readout_goal=readout_goal,
        n_bins=config.n_bins,
        hidden_bin_range=(config.hidden_bin_low, config.hidden_bin_high),
        readout_k1=config.readout_k1,
        hidden_k1=config.hidden_k1,
        random_gain=config.random_gain,
        generator=generator(config.seed, "init"),
    )


def train_step(
    net: Network,
    optimizers: dict[str, torch.optim.Optimizer],
    x: Tensor,
    y: Tensor,
    sampler: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """One local learning step on a batch; returns each layer's per-neuron goals (bits, detached)."""
    out = net(x, y, sampler)
    goals = net.local_goals(out)
    loss = -sum(g.sum() for g in goals.values())  # every neuron ascends its own goal
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[union-attr]
    for opt in optimizers.values():
        opt.step()
    return {k: g.detach() for k, g in goals.items()}


@torch.no_grad()
def evaluate_network(
    net: Network, x: Tensor, y: Tensor, batch_size: int, sampler: torch.Generator | None = None
) -> tuple[float, Tensor]:
    """Accuracy with the context withheld, and the predictions ``(n,)``.

    Inverted readout neurons are detected from their mean firing probability over all of ``x``.
    """
    thetas = [net(x[lo : lo + batch_size], None, sampler).readout.theta for lo in range(0, len(x), batch_size)]
    pred = predict(torch.cat(thetas)) if thetas else torch.zeros(0, dtype=torch.long)
    return accuracy(pred, y), pred


def _confusion(pred: Tensor, y: Tensor, n_classes: int) -> list[list[int]]:
    idx = (y.cpu() * n_classes + pred.cpu()).long()
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes).tolist()


def _run_name(config: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    if config.wiring is not None:
        layers = config.network_spec().layers
        return f"custom-{len(layers)}layers-{config.dataset}-seed{config.seed}-{stamp}"
    tag = config.network + (f"-s{config.setup}" if config.network == "trivariate" else "")
    return f"{tag}-n{config.hidden}-{config.dataset}-seed{config.seed}-{stamp}"


def _peak_rss_gib() -> float:
    scale = 2**30 if platform.system() == "Darwin" else 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def history_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Last-epoch accuracies, the best-validation epoch and median seconds of per-epoch metrics."""
    last = history[-1]
    best = max(history, key=lambda m: m["val_acc"])
    return {
        "epochs": last["epoch"],
        "test_acc": last["test_acc"],
        "val_acc": last["val_acc"],
        "train_acc": last["train_acc"],
        "best_val_epoch": best["epoch"],
        "test_acc_at_best_val": best["test_acc"],
        "seconds_per_epoch": float(np.median([m["train_seconds"] for m in history])),
        "eval_seconds_per_epoch": float(np.median([m["eval_seconds"] for m in history])),
    }


def fit(
    config: TrainConfig,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    report: Report | None = None,
    data: Any | None = None,
) -> dict[str, Any]:
    """Train the configured network, evaluate it each epoch, run the baselines, write the run directory.

    Args:
        config: the run configuration.
        run_dir: where to write; default ``<out_dir>/<generated name>``.
        resume: continue from ``run_dir/checkpoint.pt`` (a run stopped before its first checkpoint
            starts again from epoch 0 with its stored config).
        progress: show a progress bar.
        report: called after each epoch with ``(epoch, metrics)``; may raise to stop (pruning).
        data: preloaded :class:`~infomorphic.data.DataSplits` (default: load ``config.dataset``).

    Returns:
        The summary (also written to ``summary.json``).
    """
    from ..data import load_dataset

    if config.threads:
        torch.set_num_threads(config.threads)
    for key in ("hidden_lr", "readout_lr"):
        if getattr(config, key) > 1:
            log.warning("%s = %g is far above the usual range (1e-4 to 1e-2; default %g): expect no learning",
                        key, getattr(config, key), getattr(TrainConfig(), key))
    device = resolve_device(config.device)
    if run_dir is None:
        if resume:
            raise ValueError("--resume needs the run directory")
        run_dir = Path(config.out_dir) / (config.name or _run_name(config))
    run_dir = Path(run_dir)
    if config.name is not None:
        check_run_name(config.name)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and not (run_dir / "config.json").exists():
        raise ValueError(f"cannot resume: {run_dir / 'config.json'} does not exist")
    if not resume and (ckpt_path.exists() or (run_dir / "config.json").exists()):
        raise ValueError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --name")

    splits = data if data is not None else load_dataset(
        config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction, seed=config.seed
    )
    to = lambda t: t.to(device)  # noqa: E731
    xtr, ytr = to(splits.train.x), to(splits.train.y)
    xva, yva = to(splits.val.x), to(splits.val.y)
    xte, yte = to(splits.test.x), to(splits.test.y)
    n_inputs, n_classes = xtr.shape[1], splits.n_classes
    record = {
        "config": config.to_dict(),
        "versions": versions(),
        "device": str(device),
        "data": {"train": len(xtr), "val": len(xva), "test": len(xte), "inputs": n_inputs, "classes": n_classes},
    }
    # build (and so validate goals and shapes) before anything is written
    net = build_network(config, n_inputs, n_classes).to(device) if config.network != "backprop" else None
    with claim_run_dir(run_dir, resume=resume):
        if not resume:
            write_json(run_dir / "config.json", record)
        # a resumed run keeps everything its summary had (figures this call does not recompute)
        summary_path = run_dir / "summary.json"
        summary: dict[str, Any] = read_json(summary_path) if resume and summary_path.exists() else {}
        summary["run_dir"] = str(run_dir)
        history: list[dict[str, Any]] = []
        if config.network != "backprop":
            assert net is not None
            history = _fit_infomorphic(config, net, run_dir, resume, progress, report, device,
                                       (xtr, ytr), (xva, yva), (xte, yte), n_classes, summary)
        summary["baselines"] = _baselines(config, run_dir, device, (xtr, ytr), (xva, yva), (xte, yte),
                                          n_inputs, n_classes, progress)
        if history:
            summary.update(history_summary(history))
        summary["peak_rss_gib"] = max(_peak_rss_gib(), summary.get("peak_rss_gib") or 0.0)
        write_json(summary_path, summary)
    return summary


def _fit_infomorphic(
    config: TrainConfig, net: Network, run_dir: Path, resume: bool, progress: bool, report: Report | None,
    device: torch.device, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
    n_classes: int, summary: dict[str, Any],
) -> list[dict[str, Any]]:
    xtr, ytr = train
    lrs = net.optimizer_settings((config.hidden_lr, config.hidden_weight_decay),
                                 (config.readout_lr, config.readout_weight_decay))
    optimizers = {
        name: torch.optim.Adam(layer.parameters(), lr=lrs[name][0], weight_decay=lrs[name][1], fused=True)
        for name, layer in net.layers().items()
    }
    if device.type == "cpu" and kernel_enabled():
        load_kernel()  # a first-use compilation happens here, not inside the first epoch's timing
    sampler = generator(config.seed, "sampling", device=device)
    history: list[dict[str, Any]] = []
    atoms: dict[str, list[np.ndarray]] = {}
    start = 0
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and ckpt_path.exists():  # (a run stopped before its first checkpoint starts afresh)
        start = _restore(ckpt_path, net, optimizers, sampler, device, summary)
        history = read_jsonl(run_dir / "metrics.jsonl")[:start]
        stored = load_npz(run_dir / "atoms.npz")
        atoms = {k: list(v[:start]) for k, v in stored.items() if not k.endswith("_names")}
        short = [k for k, v in atoms.items() if len(v) < start] + (["metrics.jsonl"] if len(history) < start else [])
        if short:
            raise ValueError(f"cannot resume {run_dir}: its checkpoint is at epoch {start} but "
                             f"{', '.join(short)} hold fewer epochs; the run files do not belong together")
    names = {name: np.array(layer.goal.lattice.names(layer.sources)) for name, layer in net.layers().items()
             if layer.goal is not None}
    prev_w = {name: _feedforward_weight(layer).clone() for name, layer in net.layers().items()}

    k = len(xtr) if config.train_eval_size is None else min(len(xtr), config.train_eval_size)
    train_eval = torch.randperm(len(xtr), generator=generator(config.seed, "train-eval"))[:k].sort().values.to(device)
    bar = _progress(progress, config.epochs, start, batches=-(-len(xtr) // config.batch_size))
    try:
        for epoch in range(start, config.epochs):
            t0 = time.perf_counter()
            net.train()
            order = torch.randperm(len(xtr), generator=generator(config.seed, "shuffle", epoch)).to(device)
            sums: dict[str, Tensor] = {}
            goal_sums: dict[str, float] = {}
            n_batches = 0
            for lo in range(0, len(xtr), config.batch_size):
                idx = order[lo : lo + config.batch_size]
                if len(idx) < 2:
                    continue
                goals = train_step(net, optimizers, xtr[idx], ytr[idx], sampler)
                n_batches += 1
                for name, layer in net.layers().items():
                    part = torch.cat([layer.last_atoms, layer.last_residual_entropy[:, None]], 1)
                    sums[name] = sums.get(name, 0) + part
                    mean_goal = float(goals[name].mean())
                    if not math.isfinite(mean_goal):
                        _diverged(run_dir, epoch, name, f"mean goal became {mean_goal} in batch {n_batches}")
                    goal_sums[name] = goal_sums.get(name, 0.0) + mean_goal
                bar.advance_batch(goal_sums)
            for name, layer in net.layers().items():
                bad = [p for p, v in layer.named_parameters() if not bool(torch.isfinite(v).all())]
                if bad:
                    _diverged(run_dir, epoch, name, f"weights {', '.join(bad)} hold NaN or infinite values")
            train_seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            net.eval()
            eval_gen = generator(config.seed, "eval", epoch, device=device)
            train_acc, _ = evaluate_network(net, xtr[train_eval], ytr[train_eval], config.batch_size, eval_gen)
            val_acc, _ = evaluate_network(net, *val, config.batch_size, eval_gen)
            test_acc, test_pred = evaluate_network(net, *test, config.batch_size, eval_gen)
            metrics: dict[str, Any] = {
                "epoch": epoch + 1, "train_acc": train_acc, "val_acc": val_acc, "test_acc": test_acc,
                "train_seconds": train_seconds, "eval_seconds": time.perf_counter() - t1,
            }
            for name, layer in net.layers().items():
                mean = (sums[name] / max(n_batches, 1)).cpu().numpy()
                atoms.setdefault(f"{name}_atoms", []).append(mean[:, :-1])
                atoms.setdefault(f"{name}_hres", []).append(mean[:, -1])
                metrics[f"{name}_goal"] = goal_sums[name] / max(n_batches, 1)
                metrics[f"{name}_atoms_mean"] = dict(zip(names[name].tolist(), mean[:, :-1].mean(0).tolist()))
                w = _feedforward_weight(layer)
                cos = torch.nn.functional.cosine_similarity(prev_w[name], w, dim=1)
                metrics[f"{name}_weight_change"] = float((1 - cos).median())
                atoms.setdefault(f"{name}_wdist", []).append(np.array(metrics[f"{name}_weight_change"]))
                prev_w[name] = w.clone()
            history.append(metrics)
            write_jsonl(run_dir / "metrics.jsonl", history)
            save_npz(run_dir / "atoms.npz", {**{k: np.stack(v) for k, v in atoms.items()},
                                              **{f"{k}_names": v for k, v in names.items()}})
            summary["confusion_test"] = _confusion(test_pred, test[1], n_classes)
            _save_checkpoint(ckpt_path, net, optimizers, sampler, epoch + 1, config, summary["confusion_test"])
            bar.end_epoch(epoch + 1, metrics)
            if report is not None:
                report(epoch, metrics)
    finally:
        bar.close()
    return history


def _feedforward_weight(layer: Any) -> Tensor:
    """The weights of a layer's first (driving) input class, detached, for the weight-change metric."""
    return layer.effective_weight(layer.sources[0]).detach()


def _diverged(run_dir: Path, epoch: int, layer: str, what: str) -> None:
    kept = f"the checkpoint of epoch {epoch} is kept" if epoch else "no epoch finished, so no checkpoint was written"
    raise TrainingDiverged(
        f"training diverged in epoch {epoch + 1}: the {layer} layer's {what}; {kept} in {run_dir}. "
        "Lower the learning rates or the goal's coefficients")


def _save_checkpoint(path: Path, net: Network, optimizers: dict[str, torch.optim.Optimizer],
                     sampler: torch.Generator, epoch: int, config: TrainConfig,
                     confusion_test: list[list[int]]) -> None:
    state = {"model": net.state_dict(), "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
             "sampler": sampler.get_state(), "epoch": epoch, "config": config.to_dict(),
             "confusion_test": torch.tensor(confusion_test, dtype=torch.long)}
    save_checkpoint(path, state)


def _restore(path: Path, net: Network, optimizers: dict[str, torch.optim.Optimizer],
             sampler: torch.Generator, device: torch.device, summary: dict[str, Any]) -> int:
    """Load ``path`` into the network, optimisers and sampler; returns its epoch.

    The test confusion matrix of the checkpoint's epoch goes into ``summary``.
    """
    ckpt = load_checkpoint(path, map_location=device, required=CHECKPOINT_KEYS)
    try:
        net.load_state_dict(ckpt["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        sampler.set_state(ckpt["sampler"].cpu() if device.type == "cpu" else ckpt["sampler"])
        epoch = int(ckpt["epoch"])
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path} does not fit this run's network ({reason}); it belongs to another run") from None
    if "confusion_test" in ckpt:
        summary["confusion_test"] = ckpt["confusion_test"].tolist()
    return epoch


def _baselines(
    config: TrainConfig, run_dir: Path, device: torch.device, train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], n_inputs: int, n_classes: int, progress: bool,
) -> dict[str, Any]:
    """Backprop and logistic regression on the same split (cached in baselines.json)."""
    path = run_dir / "baselines.json"
    done: dict[str, Any] = read_json(path) if path.exists() else {}
    wanted = set(config.baselines) | ({"backprop"} if config.network == "backprop" else set())
    for name in sorted(wanted - set(done)):
        t0 = time.perf_counter()
        if name == "logistic":
            model = fit_logistic(*train, n_classes, l2=config.logistic_l2)
            with torch.no_grad():
                res = {split: accuracy(model(x).argmax(1), y) for split, (x, y) in
                       (("train", train), ("val", val), ("test", test))}
            done[name] = {"train_acc": res["train"], "val_acc": res["val"], "test_acc": res["test"]}
        else:
            model_bp: Any
            if config.wiring is not None:  # the same wiring, trained end to end
                model_bp = BackpropTwin(build_network(config, n_inputs, n_classes),
                                        generator(config.seed, "backprop-init"))
            else:
                hidden = 0 if config.network == "single" else config.hidden
                mask = None
                if config.network in ("trivariate", "bivariate-lateral"):
                    from ..nn.functional import lateral_mask

                    partners = None if config.setup == 1 else config.lateral_partners
                    mask = lateral_mask(hidden, partners, generator(config.seed, "backprop-lateral")).to(device)
                model_bp = BackpropNetwork(n_inputs, n_classes, hidden, mask, generator(config.seed, "backprop-init"))
            model_bp.to(device)
            eval_gen = generator(config.seed, "backprop-eval", device=device)

            @torch.no_grad()
            def evaluate(m: BackpropNetwork) -> dict[str, float]:
                return {f"{s}_acc": accuracy(m(x, eval_gen).argmax(1), y) for s, (x, y) in
                        (("val", val), ("test", test))}

            epochs = config.backprop_epochs if config.backprop_epochs is not None else config.epochs
            bar = _progress(progress, epochs, 0, label="backprop")
            hist = fit_backprop(model_bp, train, evaluate, epochs=epochs, batch_size=config.batch_size,
                                lr=config.backprop_lr,
                                seed_generator=lambda *n, device="cpu": generator(config.seed, *n, device=device),
                                on_epoch=lambda e, m: bar.end_epoch(e + 1, m))
            bar.close()
            done[name] = {"val_acc": hist[-1]["val_acc"] if hist else float("nan"),
                          "test_acc": hist[-1]["test_acc"] if hist else float("nan"), "epochs": epochs,
                          "history": hist}
        done[name]["seconds"] = time.perf_counter() - t0
        write_json(path, done)
    return done


class _progress:
    """A rich progress bar over epochs (with live accuracy) and over the batches of the current
    epoch (with the running mean goal per layer); a no-op when disabled."""

    def __init__(self, enabled: bool, epochs: int, start: int, label: str = "train", batches: int = 0) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                            transient=False)
        self.task = self.bar.add_task(label, total=epochs, completed=start, info="")
        self.batch_task = self.bar.add_task("  batches", total=batches, info="") if batches else None
        self.done = 0
        self.bar.start()

    def advance_batch(self, goal_sums: dict[str, float]) -> None:
        if self.enabled and self.batch_task is not None:
            self.done += 1
            info = " ".join(f"{k} goal {v / self.done:.3f} bit" for k, v in goal_sums.items())
            self.bar.update(self.batch_task, completed=self.done, info=info)

    def end_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        if self.enabled:
            info = " ".join(f"{k.replace('_acc', '')} {100 * metrics[k]:.2f}%" for k in
                            ("train_acc", "val_acc", "test_acc") if k in metrics)
            self.bar.update(self.task, completed=epoch, info=info)
            self.done = 0

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
