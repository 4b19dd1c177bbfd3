"""Shared-exclusion PID (I^sx) in PyTorch: batched, differentiable, CPU or CUDA.

Same definition as :mod:`infomorphic.pid.numpy_sx` (Makkeh, Gutknecht & Wibral 2021):
redundancy ``I^sx(alpha) = sum_{s,t} p(s,t) log2 P(E_alpha(s), t) / (P(E_alpha(s)) P(t))``
with union probabilities by inclusion-exclusion over source-subset marginals, atoms by
Moebius inversion.  Two entry points:

- :func:`sx_pid_torch` takes dense pmfs ``(*batch, |S_1|, ..., |S_n|, |T|)``.
- :func:`sx_pid_from_samples` is the training path.  Each of ``B`` samples sits in one
  source cell ``s_b`` (per neuron) and carries target probabilities ``w_b(t) = p(t | b)``; the
  plug-in pmf is ``p(s, t) = (1/B) sum_b [s_b = s] w_b(t)``.  Because only occupied cells
  contribute, every average over cells is an average over samples,
  ``sum_{s,t} p(s,t) f(s,t) = (1/B) sum_b sum_t w_b(t) f(s_b, t)``, and the marginals
  ``P(S_U = s_U, t)`` needed at ``s_b`` are gathered from per-neuron tables (dense for small
  subsets, rank-compressed to at most ``B`` cells for large ones).  No dense
  ``|S_1| x ... x |S_n| x |T|`` histogram is ever built.

Zero-probability cells contribute nothing and keep gradients finite: logarithms are taken of
``where(P(E, t) > 0, ., 1)`` so that no ``0 * inf`` arises in the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from .checks import check_n_sources
from .lattice import Antichain, Lattice, get_lattice

__all__ = ["SxPIDTensors", "sx_pid_torch", "sx_pid_from_samples"]

_LOG2 = 0.6931471805599453


@dataclass(frozen=True)
class SxPIDTensors:
    """I^sx decomposition of a batch of pmfs (leading ``*batch`` axes); every value in bits.

    Attributes
    ----------
    lattice:
        The lattice; ``atoms[..., k]`` belongs to ``lattice.antichains[k]``.
    atoms, redundancies:
        ``(*batch, n_atoms)``.
    target_entropy, residual_entropy:
        ``(*batch,)``: H(T) and H(T | S_1..S_n).
    informative_atoms, misinformative_atoms:
        ``(*batch, n_atoms)`` when requested with ``parts=True``, else ``None``.
    """

    lattice: Lattice
    atoms: Tensor
    redundancies: Tensor
    target_entropy: Tensor
    residual_entropy: Tensor
    informative_atoms: Tensor | None = None
    misinformative_atoms: Tensor | None = None

    def atom(self, antichain: Antichain | str, letters: Sequence[str] | None = None) -> Tensor:
        """One atom, by tuple form or readable name, shape ``(*batch,)``."""
        return self.atoms[..., self.lattice.index(antichain, letters)]

    def mutual_information(self, subset: Sequence[int]) -> Tensor:
        """I(T : S_A) for a source subset ``A`` (0-based indices), shape ``(*batch,)``."""
        return self.redundancies[..., self.lattice.index((tuple(subset),))]


def _lattice_tensors(lat: Lattice, like: Tensor) -> tuple[Tensor, Tensor]:
    coeffs = torch.as_tensor(lat.union_coeffs.T.copy(), dtype=like.dtype, device=like.device)
    moebius = torch.as_tensor(lat.moebius.T.copy(), dtype=like.dtype, device=like.device)
    return coeffs, moebius


def _entropy(p: Tensor) -> Tensor:
    """Shannon entropy in bits over the last axis, 0 log 0 = 0."""
    safe = torch.where(p > 0, p, torch.ones_like(p))
    return -(p * torch.log2(safe)).sum(-1)


def _log2_cond(p_event_t: Tensor, p_event: Tensor) -> Tensor:
    """``log2 P(t | E)`` where ``P(E, t) > 0``, 0 elsewhere, with finite gradients."""
    valid = p_event_t > 0
    one = torch.ones((), dtype=p_event_t.dtype, device=p_event_t.device)
    num = torch.where(valid, p_event_t, one)
    den = torch.where(valid, p_event.expand_as(p_event_t), one)
    return torch.log2(num) - torch.log2(den)


def _log2_event(p_event: Tensor) -> Tensor:
    one = torch.ones((), dtype=p_event.dtype, device=p_event.device)
    return torch.log2(torch.where(p_event > 0, p_event, one))


def _finish(
    lat: Lattice,
    cond_sum: Tensor,
    plus_sum: Tensor | None,
    p_t: Tensor,
    moebius: Tensor,
) -> SxPIDTensors:
    """Turn ``sum p log2 P(t|E)`` (and ``-sum p log2 P(E)``) into redundancies and atoms."""
    h_t = _entropy(p_t)
    red = cond_sum + h_t.unsqueeze(-1)
    atoms = red @ moebius
    top = lat.index(lat.top)
    plus = minus = None
    if plus_sum is not None:
        plus = plus_sum @ moebius
        minus = plus - atoms
    return SxPIDTensors(lat, atoms, red, h_t, h_t - red[..., top], plus, minus)


def sx_pid_torch(
    pmf: Tensor, n_sources: int, *, parts: bool = False, validate: bool = True
) -> SxPIDTensors:
    """I^sx PID of dense pmfs, batched over leading axes and differentiable by autograd.

    Parameters
    ----------
    pmf:
        Tensor of shape ``(*batch, |S_1|, ..., |S_n|, |T|)``, float32 or float64, any device;
        each pmf sums to 1 over its last ``n_sources + 1`` axes.
    n_sources:
        ``n`` in ``[2, 4]``; axes before the last ``n + 1`` are batch axes.
    parts:
        Also return the informative and misinformative atoms.
    validate:
        Check for NaN/inf, negative mass and totals away from 1 (one device sync).

    Returns
    -------
    SxPIDTensors
        Atoms ``(*batch, n_atoms)`` etc., in bits, on the pmf's device and dtype.

    Shape
    -----
    Memory is ``O(batch * cells * (n_atoms + 2^n))``; for many large pmfs prefer
    :func:`sx_pid_from_samples`.
    """
    check_n_sources(n_sources)
    n = n_sources
    if pmf.ndim < n + 1:
        raise ValueError(
            f"a pmf with {n} sources needs at least {n + 1} axes (|S_1|, ..., |S_n|, |T|), "
            f"got shape {tuple(pmf.shape)}"
        )
    if not pmf.is_floating_point():
        raise ValueError(f"the pmf must be a floating-point tensor, got {pmf.dtype}")
    src_dims = tuple(range(pmf.ndim - n - 1, pmf.ndim - 1))
    if validate:
        _validate_dense(pmf, src_dims + (pmf.ndim - 1,))
    lat = get_lattice(n)
    coeffs, moebius = _lattice_tensors(lat, pmf)
    p_t = pmf.sum(dim=src_dims)
    marg: list[Tensor] = []
    marg_t: list[Tensor] = []
    for subset in lat.subsets:
        drop = tuple(src_dims[i] for i in range(n) if i not in subset)
        joint = pmf.sum(dim=drop, keepdim=True) if drop else pmf
        marg_t.append(joint.expand_as(pmf))
        marg.append(joint.sum(-1, keepdim=True).expand(*pmf.shape[:-1], 1))
    p_event_t = torch.stack(marg_t, -1) @ coeffs  # (*batch, *cells, |T|, atoms)
    p_event = torch.stack(marg, -1) @ coeffs  # (*batch, *cells, 1, atoms)
    weight = pmf.unsqueeze(-1)
    cell_dims = tuple(d for d in src_dims) + (pmf.ndim - 1,)
    cond_sum = (weight * _log2_cond(p_event_t, p_event)).sum(dim=cell_dims)
    plus_sum = None
    if parts:
        plus_sum = -(weight * _log2_event(p_event)).sum(dim=cell_dims)
    return _finish(lat, cond_sum, plus_sum, p_t, moebius)


def _validate_dense(pmf: Tensor, dims: tuple[int, ...]) -> None:
    with torch.no_grad():
        if not bool(torch.isfinite(pmf).all()):
            raise ValueError("the pmf contains NaN or infinite entries")
        if bool((pmf < 0).any()):
            raise ValueError(f"the pmf has negative mass (minimum {float(pmf.min()):.3g})")
        totals = pmf.sum(dim=dims)
        tol = 1e-4 if pmf.dtype in (torch.float16, torch.bfloat16, torch.float32) else 1e-8
        worst = float((totals - 1).abs().max()) if totals.numel() else 0.0
        if worst > tol:
            raise ValueError(
                f"a pmf sums to {1 + worst:.9g} or {1 - worst:.9g}, not 1 (tolerance {tol:g}); "
                "divide by its total first"
            )


# ---------------------------------------------------------------------------------------
# training path: per-sample form
# ---------------------------------------------------------------------------------------


def _rank_within_rows(key: Tensor) -> Tensor:
    """Replace each row's values by their rank among the row's distinct values (0-based).

    Shape: ``(N, B) -> (N, B)``, ranks in ``[0, B)``.
    """
    sorted_key, perm = key.sort(dim=1)
    new = torch.ones_like(sorted_key, dtype=torch.bool)
    new[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
    ranks = new.cumsum(1) - 1
    return torch.empty_like(key).scatter_(1, perm, ranks)


def _subset_keys(bins: Tensor, subset: tuple[int, ...], sizes: Sequence[int]) -> tuple[Tensor, int]:
    """Cell index of each sample in the marginal table of ``subset``: ``(N, B)`` and table size."""
    key = bins[..., subset[0]].clone()
    size = sizes[subset[0]]
    for i in subset[1:]:
        key = key * sizes[i] + bins[..., i]
        size *= sizes[i]
    n_samples = bins.shape[1]
    if size > n_samples:
        return _rank_within_rows(key), n_samples
    return key, size


def sx_pid_from_samples(
    bins: Tensor,
    weights: Tensor,
    n_bins: int | Sequence[int],
    *,
    parts: bool = False,
    validate: bool = True,
) -> SxPIDTensors:
    """I^sx PID of each neuron from binned samples and per-sample target probabilities.

    The plug-in pmf of neuron ``j`` is ``p_j(s, t) = (1/B) sum_b [bins[b, j] = s] weights[b, j, t]``;
    it is differentiable with respect to ``weights`` (bin indices carry no gradient).  The
    result equals ``sx_pid_torch`` of that dense pmf, without building it.

    Parameters
    ----------
    bins:
        Integer tensor ``(B, N, n)``: bin of source ``i`` for sample ``b`` at neuron ``j``.
    weights:
        Float tensor ``(B, N, |T|)``: ``p(t | sample)``, each row summing to 1 (for a binary
        neuron ``(1 - theta, theta)``).
    n_bins:
        Number of bins per source (one int for all, or one per source).
    parts:
        Also return informative / misinformative atoms.
    validate:
        Check bin ranges and shapes (one device sync).

    Returns
    -------
    SxPIDTensors
        Atoms ``(N, n_atoms)`` in bits, residual entropy ``(N,)``, ...

    Shape
    -----
    Time and memory ``O(N * B * (n_atoms + 2^n) * |T|)``, independent of the number of bins.
    """
    if bins.ndim != 3:
        raise ValueError(f"bins must have shape (B, N, n_sources), got {tuple(bins.shape)}")
    n_samples, n_neurons, n = bins.shape
    check_n_sources(n)
    if weights.ndim != 3 or weights.shape[:2] != bins.shape[:2]:
        raise ValueError(
            f"weights must have shape (B, N, |T|) = ({n_samples}, {n_neurons}, |T|) to match "
            f"bins {tuple(bins.shape)}, got {tuple(weights.shape)}"
        )
    if bins.is_floating_point() or bins.is_complex():
        raise ValueError(f"bins must be an integer tensor, got {bins.dtype}")
    if not weights.is_floating_point():
        raise ValueError(f"weights must be floating point, got {weights.dtype}")
    sizes = [int(n_bins)] * n if isinstance(n_bins, int) else [int(k) for k in n_bins]
    if len(sizes) != n or min(sizes) < 1:
        raise ValueError(f"n_bins must be a positive int or {n} positive ints, got {n_bins!r}")
    if n_samples == 0:
        raise ValueError("need at least one sample")
    if validate:
        with torch.no_grad():
            lo = bins.amin(dim=(0, 1))
            hi = bins.amax(dim=(0, 1))
            for i in range(n):
                if int(lo[i]) < 0 or int(hi[i]) >= sizes[i]:
                    raise ValueError(
                        f"bins of source {i} range over [{int(lo[i])}, {int(hi[i])}], "
                        f"outside [0, {sizes[i] - 1}]"
                    )
    lat = get_lattice(n)
    coeffs, moebius = _lattice_tensors(lat, weights)
    idx = bins.transpose(0, 1).long()  # (N, B, n)
    mass = weights.transpose(0, 1) / n_samples  # (N, B, T)
    n_t = mass.shape[-1]
    p_t = mass.sum(1)  # (N, T)

    marg: list[Tensor] = []
    marg_t: list[Tensor] = []
    with torch.no_grad():
        keys = [_subset_keys(idx, subset, sizes) for subset in lat.subsets]
        ones = torch.full((n_neurons, n_samples), 1.0 / n_samples, dtype=weights.dtype, device=weights.device)
        for key, size in keys:
            table = torch.zeros(n_neurons, size, dtype=weights.dtype, device=weights.device)
            marg.append(table.scatter_add_(1, key, ones).gather(1, key))
    for key, size in keys:
        key_t = key.unsqueeze(-1).expand(-1, -1, n_t)
        table_t = torch.zeros(n_neurons, size, n_t, dtype=weights.dtype, device=weights.device)
        marg_t.append(table_t.scatter_add(1, key_t, mass).gather(1, key_t))
    p_event = (torch.stack(marg, -1) @ coeffs).unsqueeze(2)  # (N, B, 1, atoms)
    p_event_t = torch.stack(marg_t, -1) @ coeffs  # (N, B, T, atoms)
    cond_sum = (mass.unsqueeze(-1) * _log2_cond(p_event_t, p_event)).sum(dim=(1, 2))
    plus_sum = None
    if parts:
        per_sample = mass.sum(-1, keepdim=True)  # (N, B, 1)
        plus_sum = -(per_sample * _log2_event(p_event.squeeze(2))).sum(1)
    return _finish(lat, cond_sum, plus_sum, p_t, moebius)
