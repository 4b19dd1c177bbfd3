"""A small trainer for infomorphic networks that composes with user code.

:class:`Trainer` holds a network, one optimiser per trainable layer and the random generator
of the spikes, and runs the local learning step (:func:`train_step`) over any iterable of
``(x, y)`` batches: a :class:`torch.utils.data.DataLoader`, a list of tensor pairs, or a
generator.  It is the machinery under ``infomorphic train`` / :func:`infomorphic.train.fit`,
which adds the run directory (metrics, atoms, checkpoints), evaluation splits and baselines.

Example::

    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from infomorphic.nn import Network, stacked
    from infomorphic.train import Trainer

    net = Network(stacked([32]), n_inputs=64, n_classes=10)
    loader = DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)
    trainer = Trainer(net, lambda params: torch.optim.SGD(params, lr=0.05),
                      on_epoch=[lambda e: print(e.epoch, e.metrics["h1_goal"])])
    history = trainer.fit(loader, epochs=5, val=DataLoader(TensorDataset(xv, yv), batch_size=512))

**The network** is an :class:`infomorphic.nn.Network` or any module with

- ``forward(x, labels, generator)`` returning an output that ``local_goals`` accepts; the
  readout's firing probabilities at ``output.readout.theta`` (needed only by :meth:`Trainer.evaluate`);
- ``layers()``: the trainable layers by name (each gets its own optimiser);
- ``local_goals(output)``: each layer's per-neuron goals ``(N,)`` in bits.

Layers that record ``last_atoms`` and ``last_residual_entropy`` (every
:class:`~infomorphic.nn.InfomorphicLayer`) also get their mean PID atoms per epoch: over every
batch, or over every ``atoms_every``-th (the other steps then compute only what the goals need:
the same weights, faster for four-source layers).

**Optimisers.**  ``optimizer`` is a factory ``params -> torch.optim.Optimizer`` called once per
trainable layer with that layer's parameters (a list), or a mapping ``layer name -> factory``.
The default (:func:`default_optimizers`) is the one of ``infomorphic train``: Adam with the
layer's own ``lr`` / ``weight_decay`` from its :class:`~infomorphic.nn.LayerSpec`, else the
:class:`~infomorphic.config.TrainConfig` defaults for hidden and readout layers.

**Callbacks** are plain callables:

- ``on_step(event: StepEvent)`` after every optimiser step: the epoch index (0-based), the
  batch index within the epoch, the batch size, each layer's per-neuron goals (bits, detached)
  and their means (floats, bits), and the trainer;
- ``on_epoch(event: EpochEvent)`` after every epoch: the number of epochs completed (1-based)
  and that epoch's metrics (``"<layer>_goal"``: mean goal in bits, ``"<layer>_atoms_mean"``:
  atom name -> mean over neurons in bits, plus ``"val_acc"`` / ``"test_acc"``... when the
  caller evaluated), and the trainer.

A callback may raise to stop training (the exception propagates).  **Loggers** (see
:class:`Logger`, e.g. :class:`~infomorphic.train.loggers.TensorBoardLogger`) receive every
:class:`EpochEvent` after the callbacks and are closed by :meth:`Trainer.close` (or leaving a
``with Trainer(...)`` block).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, Self, runtime_checkable

import torch
from torch import Tensor, nn

from .baselines import accuracy

__all__ = [
    "EpochEvent",
    "EpochResult",
    "Logger",
    "OptimizerFactory",
    "StepEvent",
    "StepFunction",
    "Trainer",
    "TrainingDiverged",
    "default_optimizers",
    "evaluate_batches",
    "evaluate_network",
    "train_step",
]

OptimizerFactory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
"""Makes the optimiser of one layer from that layer's parameters."""

StepFunction = Callable[
    [nn.Module, Mapping[str, torch.optim.Optimizer], Tensor, Tensor, torch.Generator | None],
    dict[str, Tensor],
]
"""One learning step ``(network, optimizers, x, y, sampler) -> per-neuron goals by layer`` (:func:`train_step`)."""

Batches = Iterable[tuple[Tensor, Tensor]] | Callable[[int], Iterable[tuple[Tensor, Tensor]]]
"""An iterable of ``(x, y)`` batches, or a function of the epoch index (0-based) returning one."""


class TrainingDiverged(RuntimeError):
    """A layer's goal or weights became NaN or infinite; training stopped.

    ``epoch`` is the 0-based index of the epoch that diverged, ``layer`` the layer's name and
    ``what`` what became non-finite (all None when raised without them).
    """

    def __init__(
        self, message: str, *, epoch: int | None = None, layer: str | None = None, what: str | None = None
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.layer = layer
        self.what = what


# ---------------------------------------------------------------------------- the step
def train_step(
    net: nn.Module,
    optimizers: Mapping[str, torch.optim.Optimizer],
    x: Tensor,
    y: Tensor,
    sampler: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """One local learning step on a batch; returns each layer's per-neuron goals (bits, detached).

    The network runs on ``(x, y)``, every trainable layer computes its neurons' goals, and one
    backward pass of ``loss = -(sum of all goals)`` gives every neuron the gradient of its own
    goal only; then every optimiser steps.
    """
    out = net(x, y, sampler)
    goals = net.local_goals(out)  # type: ignore[operator]
    loss = -sum(g.sum() for g in goals.values())  # every neuron ascends its own goal
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimizers.values():
        opt.step()
    return {k: g.detach() for k, g in goals.items()}


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_network(
    net: nn.Module, x: Tensor, y: Tensor, batch_size: int, sampler: torch.Generator | None = None
) -> tuple[float, Tensor]:
    """Accuracy (fraction in [0, 1]) with the context withheld, and the predictions ``(n,)``.

    Inverted readout neurons are detected from their mean firing probability over all of ``x``.
    """
    from ..nn.network import predict

    pred = predict(readout_theta(net, x, batch_size, sampler))
    return accuracy(pred, y), pred


@torch.no_grad()
def readout_theta(
    net: nn.Module, x: Tensor, batch_size: int, sampler: torch.Generator | None = None
) -> Tensor:
    """The readout's firing probabilities ``(n, C)`` with the context withheld, in batches of
    ``batch_size`` (drawing from ``sampler`` as :func:`evaluate_network` does)."""
    thetas = [
        net(x[lo : lo + batch_size], None, sampler).readout.theta for lo in range(0, len(x), batch_size)
    ]
    return torch.cat(thetas) if thetas else x.new_zeros(0, 0)


@torch.no_grad()
def evaluate_batches(
    net: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    sampler: torch.Generator | None = None,
    device: torch.device | None = None,
) -> tuple[float, Tensor, Tensor]:
    """Accuracy over an iterable of ``(x, y)`` batches (context withheld), predictions and labels.

    As :func:`evaluate_network`, inverted readout neurons are detected over all batches together.
    Returns ``(accuracy in [0, 1], predictions (n,), labels (n,))``.
    """
    from ..nn.network import predict

    thetas, labels = [], []
    for x, y in batches:
        if device is not None:
            x, y = x.to(device), y.to(device)
        thetas.append(net(x, None, sampler).readout.theta)
        labels.append(y)
    if not thetas:
        empty = torch.zeros(0, dtype=torch.long)
        return float("nan"), empty, empty
    pred, y_all = predict(torch.cat(thetas)), torch.cat(labels)
    return accuracy(pred, y_all), pred, y_all


# ---------------------------------------------------------------------------- optimisers
def default_optimizers(
    net: nn.Module,
    hidden: tuple[float, float] | None = None,
    readout: tuple[float, float] | None = None,
) -> dict[str, OptimizerFactory]:
    """Adam per trainable layer, as ``infomorphic train`` makes them: ``layer name -> factory``.

    ``hidden`` and ``readout`` are ``(lr, weight_decay)`` (default: those of
    :class:`~infomorphic.config.TrainConfig`); a layer's own ``lr`` / ``weight_decay`` in its
    spec wins (networks with ``optimizer_settings``); other networks use ``hidden`` for all.
    """
    from ..config import TrainConfig

    defaults = TrainConfig()
    hidden = hidden if hidden is not None else (defaults.hidden_lr, defaults.hidden_weight_decay)
    readout = readout if readout is not None else (defaults.readout_lr, defaults.readout_weight_decay)
    layers: Mapping[str, nn.Module] = net.layers()  # type: ignore[operator]
    settings_of = getattr(net, "optimizer_settings", None)
    settings = settings_of(hidden, readout) if settings_of is not None else {name: hidden for name in layers}
    return {name: partial(_adam, lr=settings[name][0], weight_decay=settings[name][1]) for name in layers}


def _adam(params: list[nn.Parameter], *, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


# ---------------------------------------------------------------------------- events
@dataclass(frozen=True)
class StepEvent:
    """What an ``on_step`` callback receives after each optimiser step.

    Attributes:
        trainer: the trainer (its network, optimisers, sampler).
        epoch: index of the epoch being trained (0-based; ``trainer.epoch`` before it ends).
        step: index of this batch among the trained batches of the epoch (0-based).
        batch_size: examples in the batch.
        goals: layer name -> per-neuron goals ``(N,)`` in bits (detached).
        mean_goals: layer name -> the batch's mean goal over neurons, in bits.
    """

    trainer: Trainer
    epoch: int
    step: int
    batch_size: int
    goals: Mapping[str, Tensor]
    mean_goals: Mapping[str, float]


@dataclass(frozen=True)
class EpochEvent:
    """What an ``on_epoch`` callback and a logger receive after each epoch.

    Attributes:
        trainer: the trainer.
        epoch: epochs completed (1-based; the ``"epoch"`` of ``metrics.jsonl``).
        metrics: the epoch's metrics: ``"<layer>_goal"`` (mean goal, bits),
            ``"<layer>_atoms_mean"`` (atom name -> mean over neurons, bits) and whatever the
            caller added (accuracies as fractions, seconds, ...).
    """

    trainer: Trainer
    epoch: int
    metrics: Mapping[str, Any]


@runtime_checkable
class Logger(Protocol):
    """Receives every epoch's metrics (after the ``on_epoch`` callbacks); closed at the end."""

    def log_epoch(self, event: EpochEvent) -> None:
        """Record ``event.metrics`` as of ``event.epoch``."""

    def close(self) -> None:
        """Flush and release resources."""


@dataclass
class EpochResult:
    """One epoch of training as measured on its batches.

    Attributes:
        epoch: epochs completed after this one (1-based).
        batches: batches trained (batches of fewer than 2 examples are skipped).
        examples: examples in those batches.
        seconds: wall-clock seconds of the epoch.
        goals: layer name -> mean over batches of the batch's mean goal (bits).
        per_neuron: layer name -> ``(N, n_atoms + 1)`` mean over the batches that recorded atoms
            (every batch, or every ``atoms_every``-th: see :class:`Trainer`) of every neuron's PID
            atoms (bits, in the order of ``atom_names``) and, last, its residual entropy
            ``H(Y | sources)`` (bits); only for layers that record their atoms.
        atom_names: layer name -> the atom names of its goal's lattice.
    """

    epoch: int
    batches: int
    examples: int
    seconds: float
    goals: dict[str, float] = field(default_factory=dict)
    per_neuron: dict[str, Tensor] = field(default_factory=dict)
    atom_names: dict[str, list[str]] = field(default_factory=dict)

    def atoms(self, layer: str) -> Tensor:
        """Mean atoms ``(N, n_atoms)`` of a layer's neurons, bits."""
        return self.per_neuron[layer][:, :-1]

    def residual_entropy(self, layer: str) -> Tensor:
        """Mean residual entropy ``(N,)`` of a layer's neurons, bits."""
        return self.per_neuron[layer][:, -1]

    def metrics(self) -> dict[str, Any]:
        """``"<layer>_goal"`` and ``"<layer>_atoms_mean"`` (atom name -> mean over neurons) per layer."""
        out: dict[str, Any] = {}
        for name, goal in self.goals.items():
            out[f"{name}_goal"] = goal
            if name in self.per_neuron:
                mean = self.per_neuron[name].cpu().numpy()
                out[f"{name}_atoms_mean"] = dict(zip(self.atom_names[name], mean[:, :-1].mean(0).tolist()))
        return out


# ---------------------------------------------------------------------------- the trainer
class Trainer:
    """Trains an infomorphic network on any iterable of ``(x, y)`` batches (see the module docstring).

    Args:
        network: an :class:`~infomorphic.nn.Network` or a module with ``layers()`` and ``local_goals``.
        optimizer: ``params -> Optimizer`` for every trainable layer, or ``layer name -> factory``;
            default :func:`default_optimizers` (Adam, the settings of ``infomorphic train``).
        sampler: the random generator of the hidden layers' spikes (default: a new CPU/GPU
            generator on the network's device, seeded 0).
        on_step: callables receiving a :class:`StepEvent` after every step.
        on_epoch: callables receiving an :class:`EpochEvent` after every epoch.
        loggers: :class:`Logger` objects receiving every :class:`EpochEvent`.
        device: where batches are moved (default: the device of the network's parameters).
        check_finite: raise :class:`TrainingDiverged` when a layer's mean goal or weights stop
            being finite.
        step_fn: the learning step (default :func:`train_step`); a replacement takes the same
            arguments and returns each layer's per-neuron goals (e.g. to clip gradients).
        atoms_every: record the PID atoms on the first batch of every epoch and then on every
            this many (default 1: every batch).  On the other batches each layer with a
            ``record_atoms`` attribute computes only the redundancies its goal weighs: the same
            weights to the bit, faster where the goal leaves many out (four-source layers);
            the epoch's atoms are the means over the recorded batches.

    Attributes:
        epoch: epochs completed (set it when restoring a checkpoint).
        optimizers: layer name -> optimiser.
    """

    def __init__(
        self,
        network: nn.Module,
        optimizer: OptimizerFactory | Mapping[str, OptimizerFactory] | None = None,
        *,
        sampler: torch.Generator | None = None,
        on_step: Sequence[Callable[[StepEvent], Any]] = (),
        on_epoch: Sequence[Callable[[EpochEvent], Any]] = (),
        loggers: Sequence[Logger] = (),
        device: torch.device | str | None = None,
        check_finite: bool = True,
        step_fn: StepFunction = train_step,
        atoms_every: int = 1,
    ) -> None:
        if isinstance(atoms_every, bool) or not isinstance(atoms_every, int) or atoms_every < 1:
            raise ValueError(f"atoms_every must be an integer >= 1, got {atoms_every!r}")
        if not callable(getattr(network, "layers", None)) or not callable(
            getattr(network, "local_goals", None)
        ):
            raise TypeError(
                "the network must have layers() and local_goals(output) (e.g. infomorphic.nn.Network)"
            )
        self.network = network
        self.device = torch.device(device) if device is not None else _device_of(network)
        layers = self.layers()
        factories: Mapping[str, OptimizerFactory]
        if optimizer is None:
            factories = default_optimizers(network)
        elif isinstance(optimizer, Mapping):
            missing = sorted(set(layers) - set(optimizer))
            if missing:
                raise ValueError(f"no optimizer factory for the layer(s) {', '.join(missing)}")
            factories = optimizer
        else:
            factories = {name: optimizer for name in layers}
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            name: factories[name](list(layer.parameters())) for name, layer in layers.items()
        }
        if sampler is None:
            sampler = torch.Generator(device=self.device)
            sampler.manual_seed(0)
        self.sampler = sampler
        self.on_step = list(on_step)
        self.on_epoch = list(on_epoch)
        self.loggers = list(loggers)
        self.check_finite = check_finite
        self.step_fn = step_fn
        self.atoms_every = atoms_every
        self.epoch = 0

    # -------------------------------------------------------------- pieces
    def layers(self) -> dict[str, nn.Module]:
        """The network's trainable layers by name."""
        return dict(self.network.layers())  # type: ignore[operator]

    def step(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """One local learning step (``step_fn``, default :func:`train_step`); per-neuron goals per
        layer, bits.  Calls no callbacks (:meth:`train_epoch` does).
        """
        return self.step_fn(self.network, self.optimizers, x.to(self.device), y.to(self.device), self.sampler)

    def train_epoch(self, batches: Iterable[tuple[Tensor, Tensor]]) -> EpochResult:
        """Train on every batch of ``batches`` once (batches under 2 examples are skipped).

        Calls the ``on_step`` callbacks after every step, raises :class:`TrainingDiverged` (when
        ``check_finite``) and increments :attr:`epoch`; the ``on_epoch`` callbacks are left to
        :meth:`end_epoch`, so that callers can add their own metrics first.
        """
        t0 = time.perf_counter()
        self.network.train()
        epoch = self.epoch
        sums: dict[str, Any] = {}
        recorded: dict[str, int] = {}
        goal_sums: dict[str, float] = {}
        n_batches = examples = 0
        layers = self.layers()
        try:
            for x, y in batches:
                if len(x) < 2:
                    continue
                _record_atoms(layers, n_batches % self.atoms_every == 0)
                goals = self.step(x, y)
                n_batches += 1
                examples += len(x)
                means: dict[str, float] = {}
                for name, layer in layers.items():
                    atoms = getattr(layer, "last_atoms", None)
                    hres = getattr(layer, "last_residual_entropy", None)
                    if atoms is not None and hres is not None and atoms.numel() > 0:
                        sums[name] = sums.get(name, 0) + torch.cat([atoms, hres[:, None]], 1)
                        recorded[name] = recorded.get(name, 0) + 1
                    means[name] = mean_goal = float(goals[name].mean())
                    if self.check_finite and not math.isfinite(mean_goal):
                        self._diverged(epoch, name, f"mean goal became {mean_goal} in batch {n_batches}")
                    goal_sums[name] = goal_sums.get(name, 0.0) + mean_goal
                if self.on_step:
                    event = StepEvent(self, epoch, n_batches - 1, len(x), goals, means)
                    for callback in self.on_step:
                        callback(event)
        finally:
            _record_atoms(layers, True)
        if self.check_finite:
            for name, layer in self.layers().items():
                bad = [p for p, v in layer.named_parameters() if not bool(torch.isfinite(v).all())]
                if bad:
                    self._diverged(epoch, name, f"weights {', '.join(bad)} hold NaN or infinite values")
        self.epoch = epoch + 1
        result = EpochResult(self.epoch, n_batches, examples, time.perf_counter() - t0)
        for name, layer in self.layers().items():
            result.goals[name] = goal_sums.get(name, 0.0) / max(n_batches, 1)
            if name in sums:
                result.per_neuron[name] = sums[name] / recorded[name]
                goal = getattr(layer, "goal", None)
                if goal is not None:
                    result.atom_names[name] = list(goal.lattice.names(layer.sources))
                else:
                    result.atom_names[name] = [
                        f"atom{i}" for i in range(result.per_neuron[name].shape[1] - 1)
                    ]
        return result

    def evaluate(
        self, batches: Iterable[tuple[Tensor, Tensor]], sampler: torch.Generator | None = None
    ) -> tuple[float, Tensor]:
        """Accuracy (fraction) with the context withheld over ``batches``, and the predictions.

        The network is put in evaluation mode; ``sampler`` defaults to the trainer's.
        """
        self.network.eval()
        acc, pred, _ = evaluate_batches(
            self.network, batches, sampler if sampler is not None else self.sampler, self.device
        )
        return acc, pred

    def end_epoch(self, metrics: Mapping[str, Any]) -> EpochEvent:
        """Pass the finished epoch's ``metrics`` to the ``on_epoch`` callbacks, then to the loggers."""
        event = EpochEvent(self, self.epoch, metrics)
        for callback in self.on_epoch:
            callback(event)
        for logger in self.loggers:
            logger.log_epoch(event)
        return event

    # -------------------------------------------------------------- the loop
    def fit(
        self,
        train: Batches,
        epochs: int,
        *,
        val: Iterable[tuple[Tensor, Tensor]] | None = None,
        test: Iterable[tuple[Tensor, Tensor]] | None = None,
    ) -> list[dict[str, Any]]:
        """Train ``epochs`` more epochs; returns every epoch's metrics.

        ``train`` is iterated once per epoch (a ``DataLoader`` or list; a one-shot generator
        is empty after the first epoch), or is a function ``epoch index -> iterable``.  When
        given, ``val`` / ``test`` are evaluated after every epoch (``"val_acc"``, ``"test_acc"``).
        Metrics per epoch: ``"epoch"`` (1-based), ``"train_seconds"``, accuracies, and
        ``"<layer>_goal"`` / ``"<layer>_atoms_mean"`` in bits.
        """
        history: list[dict[str, Any]] = []
        for _ in range(epochs):
            batches = train(self.epoch) if callable(train) else train
            result = self.train_epoch(batches)
            metrics: dict[str, Any] = {"epoch": result.epoch, "train_seconds": result.seconds}
            for split, data in (("val", val), ("test", test)):
                if data is not None:
                    metrics[f"{split}_acc"] = self.evaluate(data)[0]
            metrics.update(result.metrics())
            history.append(metrics)
            self.end_epoch(metrics)
        return history

    def close(self) -> None:
        """Close every logger."""
        for logger in self.loggers:
            logger.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- internals
    @staticmethod
    def _diverged(epoch: int, layer: str, what: str) -> None:
        raise TrainingDiverged(
            f"training diverged in epoch {epoch + 1}: the {layer} layer's {what}. "
            "Lower the learning rates or the goal's coefficients",
            epoch=epoch,
            layer=layer,
            what=what,
        )


def _record_atoms(layers: Mapping[str, nn.Module], record: bool) -> None:
    """Tell every layer that has a ``record_atoms`` switch whether the next steps record atoms."""
    for layer in layers.values():
        if hasattr(layer, "record_atoms"):
            layer.record_atoms = record  # type: ignore[assignment]


def _device_of(module: nn.Module) -> torch.device:
    for param in module.parameters():
        return param.device
    for buffer in module.buffers():
        return buffer.device
    return torch.device("cpu")
