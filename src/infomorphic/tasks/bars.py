"""Unsupervised bars: infomorphic neurons learn distinct features without labels.

Makkeh et al. 2025 (arXiv:2306.02149), Fig. 5.

Images are 8x8 with bars that are on independently with probability ``p`` (default 0.5, as in
the paper): the ``horizontal`` variant has 8 horizontal bars (row ``k`` is bar ``k``), the
``hv`` variant adds 8 vertical bars (column ``k`` is bar ``8 + k``; a pixel is on if any bar
through it is on).  Pixels are 0 (off) or 1 (on); images are generated in code, fresh for
every batch.

The network is one layer of bivariate infomorphic neurons (as many as bars): ``F`` = the image,
``C`` = the outputs of the *other* neurons (lateral, no self-connections).  Each batch is
presented twice: the first pass sees zero lateral input, the second the first pass's sampled
outputs and learns (as in Schneider et al. 2025, Algorithm 1).  Goal: maximise the unique
information of ``F`` (preset ``bars-unique``, ``[1, 0, 0, 0, 0]``).

Why the two ingredients are needed (measured with ``experiments/bars.py``):

* **Context.**  Unique information of ``F`` is what ``F`` tells about ``Y`` that the other
  neurons' outputs do not, so a neuron copying another neuron's feature loses it: the lateral
  context is what makes the features *distinct*.  Without it (``context="none"``) or with the
  other neurons' outputs taken from other images (``context="shuffled"``) neurons duplicate
  bars and no run is solved.
* **Weight decay, annealed.**  Deterministic neurons reach the same unique information with
  *any* balanced threshold function of the bars, mixtures included, so from a random start
  neurons lock into mixtures.  Decoupled weight decay (AdamW) keeps the neurons stochastic at
  first; at a bounded weight norm, the aggregate that carries the most information is the
  most bimodal one, a single bar (as in ICA).  The decay then falls linearly to zero over the
  first ``decay_fraction`` of the epochs and the neurons sharpen into deterministic bar
  detectors.  Without decay no run is solved.

Success criterion (:func:`bars_solved`).  ``mi[j, k] = I(Y_j ; bar_k)`` in bits is computed
exactly over all ``2^K`` bar configurations, weighted by their probabilities, with each
neuron's firing probability given the image and zero lateral input (its feedforward
response).  The network *solves* the task when every bar's best neuron (largest ``mi``) is a
different neuron and that neuron carries at least ``fraction`` (default 0.9) of the bar's
entropy ``H(bar) = h(p)`` (0.9 bit of its 1 bit for ``p = 0.5``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import check_finite
from ..goals import Goal
from ..nn.functional import lateral_mask
from ..nn.layer import InfomorphicLayer
from ..seeding import generator

__all__ = [
    "BarsConfig",
    "VARIANTS",
    "VARIANT_DEFAULTS",
    "CONTEXTS",
    "bar_images",
    "sample_bars",
    "bar_configurations",
    "build_layer",
    "train_step",
    "weight_decay_at",
    "mi_matrix",
    "bars_solved",
    "evaluate_bars",
    "detector_mi",
    "train_bars",
    "batch_goal",
    "success_record",
]

SIZE = 8
VARIANTS = {"horizontal": 8, "hv": 16}
"""Variant name -> number of bars (and neurons)."""
VARIANT_DEFAULTS: dict[str, dict[str, Any]] = {
    "horizontal": {"epochs": 60, "weight_decay": 10.0, "decay_fraction": 0.8},
    "hv": {"epochs": 150, "weight_decay": 5.0, "decay_fraction": 0.6},
}
"""Per-variant values of the :class:`BarsConfig` fields left at ``None`` (tuned on seeds among
0-19; checked on held-out seeds 20-39 / 20-29, see README)."""
CONTEXTS = ("lateral", "shuffled", "none")


@dataclass(frozen=True, slots=True)
class BarsConfig:
    """Hyperparameters of one bars run.

    ``epochs``, ``weight_decay`` and ``decay_fraction`` left at ``None`` take the variant's
    value in :data:`VARIANT_DEFAULTS` (see :meth:`resolved`).  ``weight_decay`` is AdamW's
    decoupled decay (per unit learning rate), falling linearly to 0 over the first
    ``decay_fraction`` of the epochs.  ``context``: ``"lateral"`` (the other neurons' outputs
    for the same image, the task as published), ``"shuffled"`` (their outputs for another
    image of the batch) or ``"none"`` (zero context): the last two are ablations.
    """

    variant: str = "horizontal"
    p: float = 0.5
    goal: str = "bars-unique"
    epochs: int | None = None
    batches_per_epoch: int = 20
    batch_size: int = 256
    lr: float = 0.02
    weight_decay: float | None = None
    decay_fraction: float | None = None
    context: str = "lateral"
    k1: float = 0.5
    n_bins: int = 20
    binning: str = "adaptive"
    bin_half_range: float = 20.0
    fraction: float = 0.9
    pixel_off: float = 0.0
    init_scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown bars variant {self.variant!r}; choose from {', '.join(VARIANTS)}")
        if not 0 < self.p < 1:
            raise ValueError(f"the bar probability p must be in (0, 1), got {self.p}")
        for name in ("epochs", "batches_per_epoch", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.decay_fraction is not None and not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        if self.context not in CONTEXTS:
            raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {self.context!r}")
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
        return self.p

    def resolved(self) -> BarsConfig:
        """This config with every ``None`` field set to its variant's default."""
        defaults = VARIANT_DEFAULTS[self.variant]
        fill = {
            k: type(v)(defaults[k] if getattr(self, k) is None else getattr(self, k))
            for k, v in defaults.items()
        }
        return replace(self, **fill)

    def schedule(self) -> tuple[int, float, float]:
        """``(epochs, weight_decay, decay_fraction)``, the variant's defaults for those left at ``None``."""
        r = self.resolved()
        assert r.epochs is not None and r.weight_decay is not None and r.decay_fraction is not None
        return r.epochs, r.weight_decay, r.decay_fraction

    def to_dict(self) -> dict[str, Any]:
        return asdict(self.resolved()) | {"n_bars": self.n_bars, "bar_p": self.bar_p}


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
        k,
        {"F": SIZE * SIZE, "C": k},
        goal,
        activation="bivariate",
        activation_params={"k1": config.k1},
        n_bins=config.n_bins,
        binning=config.binning,
        bin_range=(-config.bin_half_range, config.bin_half_range),
        masks={"C": lateral_mask(k)},
        generator=generator(config.seed, "init"),
    )


def batch_goal(
    layer: InfomorphicLayer, x: Tensor, sampler: torch.Generator | None = None, context: str = "lateral"
) -> Tensor:
    """Two presentations of a batch (lateral input zero, then the sampled outputs); each neuron's
    goal ``(K,)`` in bits, differentiable in its own weights.

    ``context``: see :class:`BarsConfig` (``"shuffled"`` pairs each image with the outputs
    of another image of the batch, a fixed cyclic shift, so that no image meets its own).
    """
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, got {context!r}")
    zeros = x.new_zeros(len(x), layer.n_neurons)
    first = layer({"F": x, "C": zeros})
    if context == "none":
        second = first
    else:
        lateral = layer.sample(first.theta.detach(), sampler)
        if context == "shuffled":
            lateral = lateral.roll(1, dims=0)
        second = layer({"C": lateral}, reuse=first)
    return layer.local_goal(second)


def train_step(
    layer: InfomorphicLayer,
    opt: torch.optim.Optimizer,
    x: Tensor,
    sampler: torch.Generator | None = None,
    context: str = "lateral",
) -> Tensor:
    """One local step on the goals of :func:`batch_goal`; returns them ``(K,)`` in bits (detached)."""
    goals = batch_goal(layer, x, sampler, context)
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
    return {
        "solved": bool(coded.all()),
        "best_neuron": best.tolist(),
        "best_mi": best_mi.tolist(),
        "bars_coded": int(coded.sum()),
        "distinct": bool(unique.all()),
        "threshold_bits": threshold,
    }


@torch.no_grad()
def evaluate_bars(layer: InfomorphicLayer, config: BarsConfig) -> tuple[Tensor, dict[str, Any]]:
    """MI matrix ``(K, K)`` (neurons x bars, bits) and the success record of the current weights."""
    states, prob = bar_configurations(config.n_bars, config.bar_p)
    x = _pixels(bar_images(states), config)
    theta = layer({"F": x, "C": x.new_zeros(len(x), layer.n_neurons)}).theta
    mi = mi_matrix(theta, states, prob)
    h_bar = float(_binary_entropy(torch.tensor(config.bar_p, dtype=torch.float64)))
    return mi, bars_solved(mi, h_bar, config.fraction) | {"bar_entropy": h_bar}


def weight_decay_at(config: BarsConfig, epoch: int) -> float:
    """Decoupled weight decay in epoch ``epoch`` (1-based): ``weight_decay`` falling linearly to 0
    over the first ``decay_fraction`` of the epochs, then 0."""
    epochs, weight_decay, decay_fraction = config.schedule()
    span = decay_fraction * epochs
    if span <= 0:
        return 0.0
    return weight_decay * max(0.0, 1.0 - (epoch - 1) / span)


def _pixels(x: Tensor, config: BarsConfig) -> Tensor:
    """Pixel values: on = 1, off = ``config.pixel_off``."""
    return x if config.pixel_off == 0.0 else x * (1.0 - config.pixel_off) + config.pixel_off


def train_bars(
    config: BarsConfig, callback: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Train one network; returns the layer, per-epoch metrics, atoms ``(E, K, 4)``, H_res ``(E, K)``,
    MI matrices ``(E, K, K)`` and the final success record."""
    config = config.resolved()
    layer = build_layer(config)
    with torch.no_grad():
        for w in layer.parameters():
            w.mul_(config.init_scale)
    opt = torch.optim.AdamW(layer.parameters(), lr=config.lr, weight_decay=weight_decay_at(config, 1))
    data_gen = generator(config.seed, "data")
    sampler = generator(config.seed, "sampling")
    history, atoms, hres, mis = [], [], [], []
    names = layer.goal.atom_names if layer.goal is not None else ()
    for epoch in range(1, config.schedule()[0] + 1):
        for group in opt.param_groups:
            group["weight_decay"] = weight_decay_at(config, epoch)
        acc = torch.zeros(layer.n_neurons, len(names) + 1, dtype=torch.float64)
        goal_sum = 0.0
        for _ in range(config.batches_per_epoch):
            _, x = sample_bars(config.batch_size, config.n_bars, config.bar_p, data_gen)
            x = _pixels(x, config)
            goals = train_step(layer, opt, x, sampler, config.context)
            acc += torch.cat([layer.last_atoms, layer.last_residual_entropy[:, None]], 1).double()
            goal_sum += float(goals.mean())
        acc /= config.batches_per_epoch
        mi, status = evaluate_bars(layer, config)
        atoms.append(acc[:, :-1].numpy())
        hres.append(acc[:, -1].numpy())
        mis.append(mi.numpy())
        record = {
            "epoch": epoch,
            "goal": goal_sum / config.batches_per_epoch,
            "weight_decay": weight_decay_at(config, epoch),
            "bars_coded": status["bars_coded"],
            "solved": status["solved"],
            "mean_best_mi": float(np.mean(status["best_mi"])),
            **{f"atom {n}": float(v) for n, v in zip(names, acc[:, :-1].mean(0))},
            "H_res": float(acc[:, -1].mean()),
        }
        history.append(record)
        if callback is not None:
            callback(record)
    return {
        "layer": layer,
        "history": history,
        "atoms": np.stack(atoms),
        "hres": np.stack(hres),
        "mi": np.stack(mis),
        "status": status,
        "atom_names": list(names),
    }


@torch.no_grad()
def detector_mi(config: BarsConfig) -> list[float]:
    """``I(D_k ; bar_k)`` in bits of the ideal detector ``D_k`` = "every pixel of bar k is on".

    It equals ``H(bar)`` for horizontal bars; with vertical bars a horizontal bar is also
    "seen" when all 8 vertical bars are on, so no neuron can quite reach ``H(bar)``: this is
    the reference for the ``mi`` of a perfect solution.
    """
    states, prob = bar_configurations(config.n_bars, config.bar_p)
    img = bar_images(states).reshape(-1, SIZE, SIZE)
    det = [img[:, k, :].amin(1) if k < SIZE else img[:, :, k - SIZE].amin(1) for k in range(config.n_bars)]
    mi = mi_matrix(torch.stack(det, 1), states, prob)
    return mi.diagonal().tolist()


def success_record(seed: int, status: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """One seed's row for a success rate: the final status (:func:`evaluate_bars`) and the first solved epoch."""
    return {
        "seed": seed,
        "solved": status["solved"],
        "bars_coded": status["bars_coded"],
        "mean_best_mi": float(np.mean(status["best_mi"])),
        "min_best_mi": float(np.min(status["best_mi"])),
        "distinct": status["distinct"],
        "solved_at_epoch": next((r["epoch"] for r in history if r["solved"]), None),
    }
