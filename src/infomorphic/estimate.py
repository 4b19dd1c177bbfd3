"""Estimating joint pmfs from data: plug-in counts, binning, soft (weighted) histograms.

Discrete samples give the plug-in pmf directly.  Continuous inputs (a neuron's aggregated
feedforward, context and lateral values) are first discretised into ``n_bins`` bins per
source, either on a fixed range (values outside are clamped into it) or adaptively per batch
(each neuron's values divided by their largest magnitude in the batch, then binned on
``[-1, 1]``), as in Schneider et al. (2024), appendix A.6.

For training, each sample carries target probabilities ``p(t | sample)`` instead of a sampled
target; the resulting pmf is differentiable with respect to them while bin indices carry no
gradient.  :func:`infomorphic.pid.sx_pid_from_samples` uses these per-sample weights directly;
:func:`soft_histogram` builds the equivalent dense pmf (for analysis and as a reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used, so NumPy-only analysis starts fast
    import torch
    from torch import Tensor

__all__ = [
    "plugin_pmf",
    "bin_fixed",
    "bin_adaptive",
    "binary_weights",
    "soft_histogram",
]


def plugin_pmf(
    samples: object, sizes: Sequence[int] | None = None, weights: object | None = None
) -> np.ndarray:
    """Plug-in (relative-frequency) pmf of discrete samples; the last column is the target.

    Parameters
    ----------
    samples:
        Integer array ``(n_samples, n_vars)``; column ``i`` takes values in ``range(sizes[i])``.
    sizes:
        Alphabet size per column; default ``max + 1`` of each column.
    weights:
        Optional non-negative weight per sample (e.g. a probability column).

    Returns
    -------
    numpy.ndarray
        float64 pmf of shape ``sizes``, summing to 1.
    """
    x = np.asarray(samples)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"samples must be a non-empty 2-D array (n_samples, n_vars), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        if not np.all(np.isfinite(x)) or not np.all(np.equal(np.mod(x, 1), 0)):
            raise ValueError("samples must be integer category codes")
        x = x.astype(np.int64)
    if np.any(x < 0):
        raise ValueError("samples must be non-negative category codes")
    shape = tuple(int(v) + 1 for v in x.max(axis=0)) if sizes is None else tuple(int(s) for s in sizes)
    if len(shape) != x.shape[1]:
        raise ValueError(f"got {len(shape)} sizes for {x.shape[1]} columns")
    too_big = [i for i in range(x.shape[1]) if x[:, i].max() >= shape[i]]
    if too_big:
        i = too_big[0]
        raise ValueError(f"column {i} has value {x[:, i].max()} outside range({shape[i]})")
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights must have shape ({x.shape[0]},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("weights must be finite and non-negative")
    if w.sum() <= 0:
        raise ValueError("weights sum to zero")
    pmf = np.zeros(shape)
    np.add.at(pmf, tuple(x.T), w)
    return pmf / pmf.sum()


def bin_fixed(x: Tensor, n_bins: int, low: float, high: float, dtype: torch.dtype | None = None) -> Tensor:
    """Equal-width bins on ``[low, high]``; values outside are clamped into the range.

    Shape: any; returns an integer tensor (``dtype``, default int64) of the same shape with
    values in ``[0, n_bins)``.
    """
    import torch

    if n_bins < 1 or not high > low:
        raise ValueError(f"need n_bins >= 1 and high > low, got n_bins={n_bins}, range=({low}, {high})")
    with torch.no_grad():
        # non-negative after the shift, so the integer cast is the floor
        scaled = x.detach().clamp(low, high).sub_(low).mul_(n_bins / (high - low))
        return scaled.to(torch.int64 if dtype is None else dtype).clamp_(0, n_bins - 1)


def bin_adaptive(x: Tensor, n_bins: int, dim: int = 0, dtype: torch.dtype | None = None) -> Tensor:
    """Bins on ``[-1, 1]`` after dividing by the largest ``|x|`` along ``dim`` (the batch axis).

    Each neuron's values are rescaled by their own batch maximum, so the bins adapt to the
    batch.  An all-zero slice falls into the middle bin.

    Shape: any; returns an integer tensor (``dtype``, default int64) of the same shape with
    values in ``[0, n_bins)``.
    """
    import torch

    with torch.no_grad():
        scale = x.detach().abs().amax(dim=dim, keepdim=True)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return bin_fixed(x.detach() / scale, n_bins, -1.0, 1.0, dtype)


def binary_weights(theta: Tensor) -> Tensor:
    """Per-sample target probabilities ``(1 - theta, theta)`` of a binary neuron, stacked last.

    The two entries are computed separately so that ``1 - theta`` keeps its precision.

    Shape: ``(*) -> (*, 2)``.
    """
    import torch

    return torch.stack([1 - theta, theta], dim=-1)


def soft_histogram(bins: Tensor, weights: Tensor, n_bins: int | Sequence[int]) -> Tensor:
    """Dense joint pmf of binned sources and a soft target, per neuron, differentiable.

    ``p_j(s, t) = (1/B) sum_b [bins[b, j] = s] weights[b, j, t]``.

    Shape: bins ``(B, N, n)`` int, weights ``(B, N, |T|)`` -> ``(N, n_1, ..., n_n, |T|)``.
    Memory grows as ``N * prod(n_i) * |T|``; the training path avoids it.
    """
    import torch

    n_samples, n_neurons, n = bins.shape
    sizes = [int(n_bins)] * n if isinstance(n_bins, int) else [int(k) for k in n_bins]
    if len(sizes) != n:
        raise ValueError(f"need {n} bin counts, got {sizes}")
    if weights.shape[:2] != bins.shape[:2]:
        raise ValueError(f"weights {tuple(weights.shape)} do not match bins {tuple(bins.shape)}")
    n_t = weights.shape[-1]
    key = torch.zeros(n_samples, n_neurons, dtype=torch.long, device=bins.device)
    for i in range(n):
        key = key * sizes[i] + bins[..., i].long()
    cells = int(np.prod(sizes))
    flat = torch.zeros(n_neurons, cells, n_t, dtype=weights.dtype, device=weights.device)
    index = key.transpose(0, 1).unsqueeze(-1).expand(-1, -1, n_t)
    flat = flat.scatter_add(1, index, weights.transpose(0, 1) / n_samples)
    return flat.reshape(n_neurons, *sizes, n_t)
