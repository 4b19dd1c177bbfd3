"""Unsupervised bars: infomorphic neurons learn distinct features without labels (seeds/001, Fig. 5).

Images are 8x8 with bars that are on independently with probability ``p``: the ``horizontal``
variant has 8 horizontal bars (row ``k`` is bar ``k``, ``p = 0.5``); the ``hv`` variant adds 8
vertical bars (column ``k`` is bar ``8 + k``; a pixel is on if any bar through it is on).
Pixels are 0 (off) or 1 (on); images are generated in code, fresh for every batch.

The network is one layer of bivariate infomorphic neurons (as many as bars): ``F`` = the image,
``C`` = the outputs of the *other* neurons (lateral, no self-connections).  Each batch is
presented twice: the first pass sees zero lateral input, the second the first pass's sampled
outputs and learns (SPEC.md section 2).  Goal: maximise the unique information of ``F``
(preset ``bars-unique``, ``[1, 0, 0, 0, 0]``).

Success criterion (:func:`bars_solved`).  ``mi[j, k] = I(Y_j ; bar_k)`` in bits is computed
exactly over all ``2^K`` bar configurations, weighted by their probabilities, with each
neuron's firing probability given the image and zero lateral input (its feedforward
response).  The network *solves* the task when every bar's best neuron (largest ``mi``) is a
different neuron and that neuron carries at least ``fraction`` (default 0.9) of the bar's
entropy ``H(bar) = h(p)`` (0.9 bit of its 1 bit for ``p = 0.5``).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..goals import Goal
from ..nn.functional import lateral_mask
from ..nn.layer import InfomorphicLayer
from ..seeding import generator

__all__ = ["BarsConfig", "VARIANTS", "bar_images", "sample_bars", "bar_configurations", "build_layer",
           "train_step", "mi_matrix", "bars_solved", "evaluate_bars", "train_bars"]

SIZE = 8
VARIANTS = {"horizontal": 8, "hv": 16}
"""Variant name -> number of bars (and neurons)."""


@dataclass(frozen=True, slots=True)
class BarsConfig:
    """Hyperparameters of one bars run."""

    variant: str = "horizontal"
    p: float | None = None  # default: 0.5 for horizontal, 1/8 for hv (Földiák's classic setting)
    goal: str = "bars-unique"
    epochs: int = 60
    batches_per_epoch: int = 20
    batch_size: int = 256
    lr: float = 0.02
    k1: float = 0.5
    n_bins: int = 20
    binning: str = "adaptive"
    bin_half_range: float = 20.0
    fraction: float = 0.9
    pixel_off: float = 0.0
    init_scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown bars variant {self.variant!r}; choose from {', '.join(VARIANTS)}")
        if self.p is not None and not 0 < self.p < 1:
            raise ValueError(f"the bar probability p must be in (0, 1), got {self.p}")
        for name in ("epochs", "batches_per_epoch", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.binning not in ("fixed", "adaptive"):
            raise ValueError(f"binning must be 'fixed' or 'adaptive', got {self.binning!r}")
        Goal.resolve(self.goal, "FC")

    @property
    def n_bars(self) -> int:
        return VARIANTS[self.variant]

    @property
    def bar_p(self) -> float:
        if self.p is not None:
            return self.p
        return 0.5 if self.variant == "horizontal" else 1.0 / 8

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"n_bars": self.n_bars, "bar_p": self.bar_p}


def bar_images(states: Tensor) -> Tensor:
    """Images ``(B, 64)`` in {0, 1} from bar states ``(B, K)`` in {0, 1} (K = 8 or 16)."""
    b, k = states.shape
    if k not in VARIANTS.values():
        raise ValueError(f"bar states must have 8 or 16 columns, got {k}")
    s = states.float()
    img = s[:, :SIZE, None].expand(b, SIZE, SIZE)  # horizontal bar k = row k
    if k == 16:
        img = torch.maximum(img, s[:, None, SIZE:].expand(b, SIZE, SIZE))  # vertical bar k = column k
    return img.reshape(b, SIZE * SIZE)


def sample_bars(n: int, n_bars: int, p: float, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``n`` random bar states ``(n, K)`` and their images ``(n, 64)``."""
    states = (torch.rand(n, n_bars, generator=gen) < p).float()
    return states, bar_images(states)


def bar_configurations(n_bars: int, p: float) -> tuple[Tensor, Tensor]:
    """All ``2^K`` bar states ``(2^K, K)`` and their probabilities ``(2^K,)`` (float64)."""
    states = torch.tensor(list(itertools.product((0.0, 1.0), repeat=n_bars)))
    on = states.sum(1).double()
    prob = p**on * (1 - p) ** (n_bars - on)
    return states, prob


def build_layer(config: BarsConfig) -> InfomorphicLayer:
    """The bars layer: ``K`` bivariate neurons, F = 64 pixels, C = the other neurons (no self-connections)."""
    k = config.n_bars
    goal = Goal.resolve(config.goal, "FC")
    return InfomorphicLayer(
        k, {"F": SIZE * SIZE, "C": k}, goal, activation="bivariate", activation_params={"k1": config.k1},
        n_bins=config.n_bins, binning=config.binning,
        bin_range=(-config.bin_half_range, config.bin_half_range), masks={"C": lateral_mask(k)},
        generator=generator(config.seed, "init"),
    )


def train_step(layer: InfomorphicLayer, opt: torch.optim.Optimizer, x: Tensor,
               sampler: torch.Generator | None = None) -> Tensor:
    """Two presentations of a batch (lateral input zero, then the sampled outputs); one local step.

    Returns each neuron's goal ``(K,)`` in bits (detached).
    """
    zeros = x.new_zeros(len(x), layer.n_neurons)
    first = layer({"F": x, "C": zeros})
    lateral = layer.sample(first.theta.detach(), sampler)
    second = layer({"C": lateral}, reuse=first)
    goals = layer.local_goal(second)
    opt.zero_grad(set_to_none=True)
    (-goals.sum()).backward()  # each neuron ascends its own goal
    opt.step()
    return goals.detach()


def _binary_entropy(p: Tensor) -> Tensor:
    p = p.clamp(1e-12, 1 - 1e-12)
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


@torch.no_grad()
def mi_matrix(theta: Tensor, states: Tensor, prob: Tensor) -> Tensor:
    """``I(Y_j ; bar_k)`` in bits for soft outputs: ``theta`` ``(S, J)`` = P(Y_j = 1 | configuration).

    ``states`` ``(S, K)`` in {0, 1}, ``prob`` ``(S,)`` the configurations' probabilities.
    Returns ``(J, K)``: ``H(Y_j) - sum_b P(bar_k = b) H(Y_j | bar_k = b)``.
    """
    th = theta.double()
    w = prob.double()[:, None]
    p_y = (w * th).sum(0)  # (J,)
    on = states.double()
    p_on = (w * on).sum(0)  # (K,)
    p_y_on = (th * w).T @ on / p_on.clamp_min(1e-300)  # (J, K) P(Y=1 | bar on)
    p_y_off = (th * w).T @ (1 - on) / (1 - p_on).clamp_min(1e-300)
    h_cond = p_on * _binary_entropy(p_y_on) + (1 - p_on) * _binary_entropy(p_y_off)
    return (_binary_entropy(p_y)[:, None] - h_cond).clamp_min(0.0)


def bars_solved(mi: Tensor | np.ndarray, bar_entropy: float, fraction: float = 0.9) -> dict[str, Any]:
    """The success criterion: each bar's best neuron is distinct and carries ``>= fraction * H(bar)``.

    Returns ``solved``, the best neuron of each bar, its information (bits), the number of bars
    that are coded (best neuron unique to the bar and above the threshold) and the threshold.
    """
    m = torch.as_tensor(np.asarray(mi), dtype=torch.float64)
    best = m.argmax(0)
    best_mi = m.max(0).values
    threshold = fraction * bar_entropy
    counts = torch.bincount(best, minlength=m.shape[0])
    unique = counts[best] == 1
    coded = unique & (best_mi >= threshold)
    return {"solved": bool(coded.all()), "best_neuron": best.tolist(), "best_mi": best_mi.tolist(),
            "bars_coded": int(coded.sum()), "distinct": bool(unique.all()), "threshold_bits": threshold}


@torch.no_grad()
def evaluate_bars(layer: InfomorphicLayer, config: BarsConfig) -> tuple[Tensor, dict[str, Any]]:
    """MI matrix ``(K, K)`` (neurons x bars, bits) and the success record of the current weights."""
    states, prob = bar_configurations(config.n_bars, config.bar_p)
    x = _pixels(bar_images(states), config)
    theta = layer({"F": x, "C": x.new_zeros(len(x), layer.n_neurons)}).theta
    mi = mi_matrix(theta, states, prob)
    h_bar = float(_binary_entropy(torch.tensor(config.bar_p, dtype=torch.float64)))
    return mi, bars_solved(mi, h_bar, config.fraction) | {"bar_entropy": h_bar}


def _pixels(x: Tensor, config: BarsConfig) -> Tensor:
    """Pixel values: on = 1, off = ``config.pixel_off``."""
    return x if config.pixel_off == 0.0 else x * (1.0 - config.pixel_off) + config.pixel_off


def train_bars(config: BarsConfig, callback: Callable[[dict[str, Any]], None] | None = None
               ) -> dict[str, Any]:
    """Train one network; returns the layer, per-epoch metrics, atoms ``(E, K, 4)``, H_res ``(E, K)``,
    MI matrices ``(E, K, K)`` and the final success record."""
    layer = build_layer(config)
    with torch.no_grad():
        for w in layer.parameters():
            w.mul_(config.init_scale)
    opt = torch.optim.Adam(layer.parameters(), lr=config.lr)
    data_gen = generator(config.seed, "data")
    sampler = generator(config.seed, "sampling")
    history, atoms, hres, mis = [], [], [], []
    names = layer.goal.atom_names if layer.goal is not None else ()
    for epoch in range(1, config.epochs + 1):
        acc = torch.zeros(layer.n_neurons, len(names) + 1, dtype=torch.float64)
        goal_sum = 0.0
        for _ in range(config.batches_per_epoch):
            _, x = sample_bars(config.batch_size, config.n_bars, config.bar_p, data_gen)
            x = _pixels(x, config)
            goals = train_step(layer, opt, x, sampler)
            acc += torch.cat([layer.last_atoms, layer.last_residual_entropy[:, None]], 1).double()
            goal_sum += float(goals.mean())
        acc /= config.batches_per_epoch
        mi, status = evaluate_bars(layer, config)
        atoms.append(acc[:, :-1].numpy())
        hres.append(acc[:, -1].numpy())
        mis.append(mi.numpy())
        record = {"epoch": epoch, "goal": goal_sum / config.batches_per_epoch,
                  "bars_coded": status["bars_coded"], "solved": status["solved"],
                  "mean_best_mi": float(np.mean(status["best_mi"])),
                  **{f"atom {n}": float(v) for n, v in zip(names, acc[:, :-1].mean(0))},
                  "H_res": float(acc[:, -1].mean())}
        history.append(record)
        if callback is not None:
            callback(record)
    return {"layer": layer, "history": history, "atoms": np.stack(atoms), "hres": np.stack(hres),
            "mi": np.stack(mis), "status": status, "atom_names": list(names)}
