"""``fit``: a configured run of ``infomorphic train``, written to its run directory.

A step (:func:`~infomorphic.train.trainer.train_step`): the network runs on a batch (the hidden
layer twice when it has lateral input), each trainable layer computes every neuron's PID goal
(bits) from the batch, and one backward pass of ``loss = -(sum of all goals)`` gives every
neuron the gradient of its own goal only (see :mod:`infomorphic.nn.layer` on locality).  The
epochs run on a :class:`~infomorphic.train.trainer.Trainer`; ``fit`` adds the seeded data
order, the evaluation of every split, the run directory (``metrics.jsonl``, ``atoms.npz``,
checkpoints, ``summary.json``), resuming, and the baselines.  The run directory is the source of
truth; loggers (e.g. TensorBoard) only mirror it.
"""

from __future__ import annotations

import logging
import platform
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import TrainConfig
from ..goals import Goal
from ..nn.network import InfomorphicNetwork, Network, class_inversion, predict
from ..pid.kernel import kernel_enabled, load_kernel
from ..runs import (
    check_run_name,
    claim_run_dir,
    load_checkpoint,
    load_npz,
    read_json,
    read_jsonl,
    save_checkpoint,
    save_npz,
    versions,
    write_json,
    write_jsonl,
)
from ..seeding import generator
from .baselines import (
    BackpropNetwork,
    BackpropTwin,
    PaperBackpropNetwork,
    accuracy,
    fit_backprop,
    fit_logistic,
)
from .heap import keep_freed_memory
from .trainer import (
    EpochEvent,
    Logger,
    StepEvent,
    Trainer,
    TrainingDiverged,
    evaluate_network,
    readout_theta,
    train_step,
)

__all__ = ["fit", "build_network", "resolve_device", "train_step", "evaluate_network", "TrainingDiverged"]

log = logging.getLogger(__name__)

Report = Callable[[int, dict[str, Any]], None]

CHECKPOINT_KEYS = ("model", "optimizers", "sampler", "epoch")
LOGISTIC_WEIGHTS = "logistic.npz"
"""The logistic-regression baseline's ``weight`` (classes, inputs) and ``bias`` in a run directory."""
BACKPROP_CHECKPOINT = "backprop-checkpoint.pt"
"""The backprop baseline's state after its last finished epoch, while it trains (removed when its
figures are in ``baselines.json``): a resumed run continues the baseline from there."""


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
        return Network(
            config.network_spec(),
            n_inputs,
            n_classes,
            n_bins=config.n_bins,
            generator=generator(config.seed, "init"),
        )
    return InfomorphicNetwork(n_inputs, n_classes, **kind_network_args(config))


KIND_SOURCES = {"trivariate": "FCL", "bivariate-context": "FC", "bivariate-lateral": "FC"}
"""Source letters of the hidden goal of the papers' network kinds that have one."""


def kind_network_args(config: TrainConfig) -> dict[str, Any]:
    """Keyword arguments (after ``n_inputs, n_classes``) of the papers' network kind a config
    names (no ``wiring``): goals resolved, initialised from the run seed."""
    hidden_goal = None
    if config.hidden_goal is not None and config.network in KIND_SOURCES:
        hidden_goal = Goal.resolve(config.hidden_goal, KIND_SOURCES[config.network])
    return {
        "kind": config.network,
        "n_hidden": config.hidden,
        "setup": config.setup,
        "lateral_partners": config.lateral_partners,
        "hidden_goal": hidden_goal,
        "readout_goal": Goal.resolve(config.readout_goal, "FC"),
        "n_bins": config.n_bins,
        "hidden_bin_range": (config.hidden_bin_low, config.hidden_bin_high),
        "readout_k1": config.readout_k1,
        "hidden_k1": config.hidden_k1,
        "random_gain": config.random_gain,
        "random_activation": config.random_activation,
        "hidden_binning": config.hidden_binning,
        "generator": generator(config.seed, "init"),
    }


def _confusion(pred: Tensor, y: Tensor, n_classes: int) -> list[list[int]]:
    idx = (y.cpu() * n_classes + pred.cpu()).long()
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes).tolist()


def default_run_dir(config: TrainConfig) -> Path:
    """Where :func:`fit` writes a new run when no ``run_dir`` is given: ``out_dir/name``, the
    name generated from the network, dataset, seed and the current time unless ``name`` is set."""
    return Path(config.out_dir) / (config.name or _run_name(config))


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
    """Last-epoch accuracies, the best-validation epoch and median seconds of per-epoch metrics
    (the best epoch and the evaluation seconds over the evaluated epochs: see ``eval_every``)."""
    last = history[-1]
    evaluated = [m for m in history if m.get("val_acc") is not None] or [last]
    best = max(evaluated, key=lambda m: m["val_acc"] if m["val_acc"] is not None else -1.0)
    return {
        "epochs": last["epoch"],
        "test_acc": last["test_acc"],
        "val_acc": last["val_acc"],
        "train_acc": last["train_acc"],
        "best_val_epoch": best["epoch"],
        "test_acc_at_best_val": best["test_acc"],
        # the readout's inversion from the training labels (absent from runs of older code)
        "val_acc_class_inversion": last.get("val_acc_class_inversion"),
        "test_acc_class_inversion": last.get("test_acc_class_inversion"),
        "seconds_per_epoch": float(np.median([m["train_seconds"] for m in history])),
        "eval_seconds_per_epoch": float(np.median([m["eval_seconds"] for m in evaluated])),
    }


def fit(
    config: TrainConfig,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    report: Report | None = None,
    data: Any | None = None,
    tensorboard: bool | str | Path | None = None,
    loggers: Sequence[Logger] = (),
    on_step: Sequence[Callable[[StepEvent], Any]] = (),
    on_epoch: Sequence[Callable[[EpochEvent], Any]] = (),
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
        tensorboard: also write every epoch's goals, mean atoms and accuracies as TensorBoard
            scalars: ``True`` into ``<run_dir>/tensorboard``, or a path (needs the
            ``tensorboard`` package); a resumed run appends to the same folder.
        loggers: further :class:`~infomorphic.train.trainer.Logger` objects for every epoch's
            metrics (the same dict as a line of ``metrics.jsonl``); closed at the end.
        on_step: callables receiving a :class:`~infomorphic.train.trainer.StepEvent` after every step.
        on_epoch: callables receiving an :class:`~infomorphic.train.trainer.EpochEvent` after every
            epoch, once its metrics, atoms and checkpoint are written (before ``report``).

    Returns:
        The summary (also written to ``summary.json``).
    """
    from ..data import load_dataset

    if config.threads:
        torch.set_num_threads(config.threads)
    keep_freed_memory()  # the same large tensors every step: no page faults for them
    for key in ("hidden_lr", "readout_lr"):
        if getattr(config, key) > 1:
            log.warning(
                "%s = %g is far above the usual range (1e-4 to 1e-2; default %g): expect no learning",
                key,
                getattr(config, key),
                getattr(TrainConfig(), key),
            )
    device = resolve_device(config.device)
    if run_dir is None:
        if resume:
            raise ValueError("--resume needs the run directory")
        run_dir = default_run_dir(config)
    run_dir = Path(run_dir)
    if config.name is not None:
        check_run_name(config.name)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and not (run_dir / "config.json").exists():
        raise ValueError(f"cannot resume: {run_dir / 'config.json'} does not exist")
    if not resume and (ckpt_path.exists() or (run_dir / "config.json").exists()):
        raise ValueError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --name"
        )

    splits = (
        data
        if data is not None
        else load_dataset(
            config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction, seed=config.seed
        )
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
        "data": {
            "train": len(xtr),
            "val": len(xva),
            "test": len(xte),
            "inputs": n_inputs,
            "classes": n_classes,
        },
    }
    # build (and so validate goals and shapes) before anything is written
    net = build_network(config, n_inputs, n_classes).to(device) if config.network != "backprop" else None
    if tensorboard and net is not None:
        from .loggers import TensorBoardLogger

        TensorBoardLogger.check_available()
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
            tb_dir = (
                None
                if not tensorboard
                else run_dir / "tensorboard"
                if tensorboard is True
                else Path(tensorboard)
            )
            hooks = _Hooks(report, list(loggers), list(on_step), list(on_epoch), tb_dir)
            history = _fit_infomorphic(
                config,
                net,
                run_dir,
                resume,
                progress,
                hooks,
                device,
                (xtr, ytr),
                (xva, yva),
                (xte, yte),
                n_classes,
                summary,
            )
        summary["baselines"] = _baselines(
            config, run_dir, device, (xtr, ytr), (xva, yva), (xte, yte), n_inputs, n_classes, progress
        )
        if history:
            summary.update(history_summary(history))
        summary["peak_rss_gib"] = max(_peak_rss_gib(), summary.get("peak_rss_gib") or 0.0)
        write_json(summary_path, summary)
    return summary


def _step(
    net: Any, optimizers: Any, x: Tensor, y: Tensor, sampler: torch.Generator | None
) -> dict[str, Tensor]:
    """:func:`train_step`, looked up in this module at every call (tests replace it here)."""
    return train_step(net, optimizers, x, y, sampler)


@dataclass
class _Hooks:
    """What ``fit`` passes on to the trainer: user callbacks, loggers and the TensorBoard folder."""

    report: Report | None
    loggers: list[Logger]
    on_step: list[Callable[[StepEvent], Any]]
    on_epoch: list[Callable[[EpochEvent], Any]]
    tensorboard_dir: Path | None


def _fit_infomorphic(
    config: TrainConfig,
    net: Network,
    run_dir: Path,
    resume: bool,
    progress: bool,
    hooks: _Hooks,
    device: torch.device,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    n_classes: int,
    summary: dict[str, Any],
) -> list[dict[str, Any]]:
    xtr, ytr = train
    lrs = net.optimizer_settings(
        (config.hidden_lr, config.hidden_weight_decay), (config.readout_lr, config.readout_weight_decay)
    )
    factories = {
        name: partial(torch.optim.Adam, lr=lr, weight_decay=wd, fused=True) for name, (lr, wd) in lrs.items()
    }
    if device.type == "cpu" and kernel_enabled():
        load_kernel()  # a first-use compilation happens here, not inside the first epoch's timing
    trainer = Trainer(
        net,
        factories,
        sampler=generator(config.seed, "sampling", device=device),
        on_step=hooks.on_step,
        on_epoch=hooks.on_epoch,
        loggers=hooks.loggers,
        device=device,
        step_fn=_step,
        atoms_every=config.atoms_every,
    )
    optimizers, sampler = trainer.optimizers, trainer.sampler
    history: list[dict[str, Any]] = []
    atoms: dict[str, list[np.ndarray]] = {}
    start = 0
    ckpt_path = run_dir / "checkpoint.pt"
    bar: _progress | None = None
    try:
        if resume and ckpt_path.exists():  # (a run stopped before its first checkpoint starts afresh)
            start = _restore(ckpt_path, net, optimizers, sampler, device, summary)
            history = read_jsonl(run_dir / "metrics.jsonl")[:start]
            stored = load_npz(run_dir / "atoms.npz")
            atoms = {k: list(v[:start]) for k, v in stored.items() if not k.endswith("_names")}
            short = [k for k, v in atoms.items() if len(v) < start] + (
                ["metrics.jsonl"] if len(history) < start else []
            )
            if short:
                raise ValueError(
                    f"cannot resume {run_dir}: its checkpoint is at epoch {start} but "
                    f"{', '.join(short)} hold fewer epochs; the run files do not belong together"
                )
        elif resume:
            _check_nothing_lost(run_dir)
        trainer.epoch = start
        bar = _progress(progress, config.epochs, start, batches=-(-len(xtr) // config.batch_size))
        trainer.on_step.insert(0, bar.advance_batch)
        if hooks.tensorboard_dir is not None:
            from .loggers import TensorBoardLogger

            # appends; anything a crashed run logged after its checkpoint is dropped
            trainer.loggers.append(TensorBoardLogger(hooks.tensorboard_dir, purge_step=start + 1))
        names = {
            name: np.array(layer.goal.lattice.names(layer.sources))
            for name, layer in net.layers().items()
            if layer.goal is not None
        }
        prev_w = {name: _feedforward_weight(layer).clone() for name, layer in net.layers().items()}

        k = len(xtr) if config.train_eval_size is None else min(len(xtr), config.train_eval_size)
        train_eval = (
            torch.randperm(len(xtr), generator=generator(config.seed, "train-eval"))[:k].sort().values
        )
        train_eval = train_eval.to(device)

        def batches(epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
            order = torch.randperm(len(xtr), generator=generator(config.seed, "shuffle", epoch)).to(device)
            for lo in range(0, len(xtr), config.batch_size):
                idx = order[lo : lo + config.batch_size]
                if len(idx) >= 2:  # index_select copies whole rows: ~8x faster than xtr[idx] on a CPU
                    yield xtr.index_select(0, idx), ytr.index_select(0, idx)

        for epoch in range(start, config.epochs):
            try:
                result = trainer.train_epoch(batches(epoch))
            except TrainingDiverged as exc:
                if exc.layer is None:
                    raise
                raise _diverged(run_dir, epoch, exc.layer, exc.what or "") from None
            t1 = time.perf_counter()
            net.eval()
            train_acc = val_acc = test_acc = val_class = test_class = None
            if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
                eval_gen = generator(config.seed, "eval", epoch, device=device)
                theta_train = readout_theta(net, xtr[train_eval], config.batch_size, eval_gen)
                theta_val = readout_theta(net, val[0], config.batch_size, eval_gen)
                theta_test = readout_theta(net, test[0], config.batch_size, eval_gen)
                train_acc = accuracy(predict(theta_train), ytr[train_eval])
                val_acc = accuracy(predict(theta_val), val[1])
                test_pred = predict(theta_test)
                test_acc = accuracy(test_pred, test[1])
                summary["confusion_test"] = _confusion(test_pred, test[1], n_classes)
                # the readout's inversion decided from the training labels instead of mean firing
                if len(theta_train):
                    inverted = class_inversion(theta_train, ytr[train_eval])
                    val_class = accuracy(predict(theta_val, inverted), val[1])
                    test_class = accuracy(predict(theta_test, inverted), test[1])
            metrics: dict[str, Any] = {
                "epoch": epoch + 1,
                "train_acc": train_acc,
                "val_acc": val_acc,
                "test_acc": test_acc,
                "val_acc_class_inversion": val_class,
                "test_acc_class_inversion": test_class,
                "train_seconds": result.seconds,
                "eval_seconds": time.perf_counter() - t1,
            }
            for name, layer in net.layers().items():
                mean = result.per_neuron[name].cpu().numpy()
                atoms.setdefault(f"{name}_atoms", []).append(mean[:, :-1])
                atoms.setdefault(f"{name}_hres", []).append(mean[:, -1])
                metrics[f"{name}_goal"] = result.goals[name]
                metrics[f"{name}_atoms_mean"] = dict(zip(names[name].tolist(), mean[:, :-1].mean(0).tolist()))
                w = _feedforward_weight(layer)
                cos = torch.nn.functional.cosine_similarity(prev_w[name], w, dim=1)
                metrics[f"{name}_weight_change"] = float((1 - cos).median())
                atoms.setdefault(f"{name}_wdist", []).append(np.array(metrics[f"{name}_weight_change"]))
                prev_w[name] = w.clone()
            history.append(metrics)
            write_jsonl(run_dir / "metrics.jsonl", history)
            save_npz(
                run_dir / "atoms.npz",
                {**{k: np.stack(v) for k, v in atoms.items()}, **{f"{k}_names": v for k, v in names.items()}},
            )
            _save_checkpoint(
                ckpt_path, net, optimizers, sampler, epoch + 1, config, summary.get("confusion_test")
            )
            bar.end_epoch(epoch + 1, metrics)
            trainer.end_epoch(metrics)  # callbacks, then loggers: after the run directory has the epoch
            if hooks.report is not None:
                hooks.report(epoch, metrics)
    finally:
        if bar is not None:
            bar.close()
        trainer.close()
    return history


def _check_nothing_lost(run_dir: Path) -> None:
    """``ValueError`` when a run to resume has no checkpoint but its ``metrics.jsonl`` holds more
    than one epoch: only a run killed in its first epoch lacks one (every later epoch replaces
    the checkpoint of the epoch before), so it was deleted or not copied, and starting over
    would replace the epochs recorded (with other figures on another machine)."""
    done = len(read_jsonl(run_dir / "metrics.jsonl"))
    if done > 1:
        raise ValueError(
            f"cannot resume {run_dir}: checkpoint.pt is missing, but metrics.jsonl holds {done} epochs "
            "that the run would start over and replace; restore checkpoint.pt from a copy, or start "
            "a new run"
        )


def _feedforward_weight(layer: Any) -> Tensor:
    """The weights of a layer's first (driving) input class, detached, for the weight-change metric."""
    return layer.effective_weight(layer.sources[0]).detach()


def _diverged(run_dir: Path, epoch: int, layer: str, what: str) -> TrainingDiverged:
    """The error of a run whose ``layer`` diverged in epoch index ``epoch`` (its run directory kept)."""
    kept = (
        f"the checkpoint of epoch {epoch} is kept"
        if epoch
        else "no epoch finished, so no checkpoint was written"
    )
    return TrainingDiverged(
        f"training diverged in epoch {epoch + 1}: the {layer} layer's {what}; {kept} in {run_dir}. "
        "Lower the learning rates or the goal's coefficients",
        epoch=epoch,
        layer=layer,
        what=what,
    )


def _save_checkpoint(
    path: Path,
    net: Network,
    optimizers: dict[str, torch.optim.Optimizer],
    sampler: torch.Generator,
    epoch: int,
    config: TrainConfig,
    confusion_test: list[list[int]] | None,
) -> None:
    """The run's state after ``epoch`` epochs; ``confusion_test``: of the last evaluated epoch."""
    state = {
        "model": net.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "sampler": sampler.get_state(),
        "epoch": epoch,
        "config": config.to_dict(),
    }
    if confusion_test is not None:
        state["confusion_test"] = torch.tensor(confusion_test, dtype=torch.long)
    save_checkpoint(path, state)


def _restore(
    path: Path,
    net: Network,
    optimizers: dict[str, torch.optim.Optimizer],
    sampler: torch.Generator,
    device: torch.device,
    summary: dict[str, Any],
) -> int:
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
        raise ValueError(
            f"{path} does not fit this run's network ({reason}); it belongs to another run"
        ) from None
    if "confusion_test" in ckpt:
        summary["confusion_test"] = ckpt["confusion_test"].tolist()
    return epoch


def _baselines(
    config: TrainConfig,
    run_dir: Path,
    device: torch.device,
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    n_inputs: int,
    n_classes: int,
    progress: bool,
) -> dict[str, Any]:
    """Backprop and logistic regression on the same split (cached in baselines.json)."""
    path = run_dir / "baselines.json"
    done: dict[str, Any] = read_json(path) if path.exists() else {}
    wanted = set(config.baselines) | ({"backprop"} if config.network == "backprop" else set())
    for name in sorted(wanted - set(done)):
        t0 = time.perf_counter()
        if name == "logistic":
            model = fit_logistic(*train, n_classes, l2=config.logistic_l2)
            # its weights, for the report's comparison with the readout fields (saves a refit)
            save_npz(
                run_dir / LOGISTIC_WEIGHTS,
                {"weight": model.weight.detach().cpu().numpy(), "bias": model.bias.detach().cpu().numpy()},
            )
            with torch.no_grad():
                res = {
                    split: accuracy(model(x).argmax(1), y)
                    for split, (x, y) in (("train", train), ("val", val), ("test", test))
                }
            done[name] = {"train_acc": res["train"], "val_acc": res["val"], "test_acc": res["test"]}
        else:
            model_bp: Any
            if config.backprop_variant == "paper":  # the authors' benchmark (setup-1 lateral by default)
                from ..nn.functional import lateral_mask

                partners = None if config.setup == 1 else config.lateral_partners
                model_bp = PaperBackpropNetwork(
                    n_inputs,
                    n_classes,
                    config.hidden,
                    lateral_mask(config.hidden, partners, generator(config.seed, "backprop-lateral")),
                    generator(config.seed, "backprop-init"),
                )
            elif config.wiring is not None:  # the same wiring, trained end to end
                model_bp = BackpropTwin(
                    build_network(config, n_inputs, n_classes), generator(config.seed, "backprop-init")
                )
            else:
                hidden = 0 if config.network == "single" else config.hidden
                mask = None
                if config.network in ("trivariate", "bivariate-lateral"):
                    from ..nn.functional import lateral_mask

                    partners = None if config.setup == 1 else config.lateral_partners
                    mask = lateral_mask(hidden, partners, generator(config.seed, "backprop-lateral")).to(
                        device
                    )
                model_bp = BackpropNetwork(
                    n_inputs, n_classes, hidden, mask, generator(config.seed, "backprop-init")
                )
            model_bp.to(device)
            eval_gen = generator(config.seed, "backprop-eval", device=device)
            # training accuracy on the same fixed subset as the infomorphic network's
            k = (
                len(train[0])
                if config.train_eval_size is None
                else min(len(train[0]), config.train_eval_size)
            )
            sub = (
                torch.randperm(len(train[0]), generator=generator(config.seed, "train-eval"))[:k]
                .sort()
                .values
            )
            sub = sub.to(device)
            train_sub = (train[0][sub], train[1][sub])

            # its own generator: the validation and test passes draw exactly what they drew before
            # training accuracy was recorded, so their figures do not move
            train_gen = generator(config.seed, "backprop-train-eval", device=device)

            @torch.no_grad()
            def evaluate(
                m: BackpropNetwork,
                gen: torch.Generator = eval_gen,
                train_sub: tuple[Tensor, Tensor] = train_sub,
                train_gen: torch.Generator = train_gen,
            ) -> dict[str, float]:
                if isinstance(m, PaperBackpropNetwork) and m.bounded_logits:
                    # its probabilities as they are: the papers' inversion rule (as the model's
                    # own eval output) and the rule from the training labels, from the same draws
                    theta = {s: m(x, gen, corrected=False) for s, (x, _) in (("val", val), ("test", test))}
                    theta["train"] = m(train_sub[0], train_gen, corrected=False)
                    labels = {"val": val[1], "test": test[1], "train": train_sub[1]}
                    out = {f"{s}_acc": accuracy(predict(t), labels[s]) for s, t in theta.items()}
                    if len(theta["train"]):
                        inverted = class_inversion(theta["train"], train_sub[1])
                        for s in ("val", "test"):
                            out[f"{s}_acc_class_inversion"] = accuracy(predict(theta[s], inverted), labels[s])
                    return out
                out = {
                    f"{s}_acc": accuracy(m(x, gen).argmax(1), y)
                    for s, (x, y) in (("val", val), ("test", test))
                }
                out["train_acc"] = accuracy(m(train_sub[0], train_gen).argmax(1), train_sub[1])
                return out

            epochs = config.backprop_epochs if config.backprop_epochs is not None else config.epochs
            bar = _progress(progress, epochs, 0, label="backprop")

            def on_epoch(e: int, metrics: dict[str, float], bar: _progress = bar) -> None:
                bar.end_epoch(e + 1, metrics)

            hist = fit_backprop(
                model_bp,
                train,
                evaluate,
                epochs=epochs,
                batch_size=config.batch_size,
                lr=config.backprop_lr,
                seed_generator=lambda *n, device="cpu": generator(config.seed, *n, device=device),
                on_epoch=on_epoch,
                checkpoint=run_dir / BACKPROP_CHECKPOINT,
                generators={"eval": eval_gen, "train-eval": train_gen},
            )
            bar.close()
            done[name] = {
                "variant": config.backprop_variant,
                "train_acc": hist[-1]["train_acc"] if hist else float("nan"),
                "val_acc": hist[-1]["val_acc"] if hist else float("nan"),
                "test_acc": hist[-1]["test_acc"] if hist else float("nan"),
                **{
                    key: hist[-1][key]
                    for key in ("val_acc_class_inversion", "test_acc_class_inversion")
                    if hist and key in hist[-1]
                },
                "epochs": epochs,
                "history": hist,
            }
        done[name]["seconds"] = time.perf_counter() - t0
        write_json(path, done)
        (run_dir / BACKPROP_CHECKPOINT).unlink(missing_ok=True)  # its figures are in baselines.json now
    return done


class _progress:
    """A rich progress bar over epochs (with live accuracy) and over the batches of the current
    epoch (with the running mean goal per layer); a no-op when disabled."""

    def __init__(
        self, enabled: bool, epochs: int, start: int, label: str = "train", batches: int = 0
    ) -> None:
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            transient=False,
        )
        self.task = self.bar.add_task(label, total=epochs, completed=start, info="")
        self.batch_task = self.bar.add_task("  batches", total=batches, info="") if batches else None
        self.done = 0
        self.goal_sums: dict[str, float] = {}
        self.bar.start()

    def advance_batch(self, event: StepEvent) -> None:
        """An ``on_step`` callback: one more batch, and the running mean goal per layer."""
        if self.enabled and self.batch_task is not None:
            self.done += 1
            for k, v in event.mean_goals.items():
                self.goal_sums[k] = self.goal_sums.get(k, 0.0) + v
            info = " ".join(f"{k} goal {v / self.done:.3f} bit" for k, v in self.goal_sums.items())
            self.bar.update(self.batch_task, completed=self.done, info=info)

    def end_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        if self.enabled:
            info = " ".join(
                f"{k.replace('_acc', '')} {100 * metrics[k]:.2f}%"
                for k in ("train_acc", "val_acc", "test_acc")
                if metrics.get(k) is not None
            )
            self.bar.update(self.task, completed=epoch, info=info)
            self.done = 0
            self.goal_sums = {}

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()
