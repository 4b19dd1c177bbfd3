"""Shared-exclusion PID (I^sx) in PyTorch: batched, differentiable, CPU or CUDA.

Same definition as :mod:`infomorphic.pid.numpy_sx` (Makkeh, Gutknecht & Wibral 2021):
redundancy ``I^sx(alpha) = sum_{s,t} p(s,t) log2 P(E_alpha(s), t) / (P(E_alpha(s)) P(t))``
with union probabilities by inclusion-exclusion over source-subset marginals, atoms by
Moebius inversion.  :func:`sx_pid_torch` takes dense pmfs
``(*batch, |S_1|, ..., |S_n|, |T|)``; the training path from samples, which never builds
the dense pmf, is :mod:`infomorphic.pid.samples`.

Zero-probability cells contribute nothing and keep gradients finite: logarithms are taken of
``where(P(E, t) > 0, ., 1)`` so that no ``0 * inf`` arises in the backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .checks import check_n_sources
from .lattice import Antichain, Lattice, get_lattice

__all__ = ["SxPIDTensors", "sx_pid_torch", "dense_sums"]

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


def sx_pid_torch(pmf: Tensor, n_sources: int, *, parts: bool = False, validate: bool = True) -> SxPIDTensors:
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
    cond_sum, plus_sum = dense_sums(pmf, n, lat.subsets, coeffs, parts=parts)
    return _finish(lat, cond_sum, plus_sum, p_t, moebius)


def dense_sums(
    pmf: Tensor,
    n: int,
    subsets: Sequence[tuple[int, ...]],
    coeffs: Tensor,
    *,
    parts: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Per-antichain sums over the cells of dense pmfs.

    Returns ``sum_{s,t} p(s,t) log2 P(t | E_alpha(s))`` and, with ``parts``,
    ``-sum_{s,t} p(s,t) log2 P(E_alpha(s))`` (the informative redundancy), each of shape
    ``(*batch, n_antichains)``, where ``P(E_alpha) = sum_U coeffs[U, alpha] P(S_U)`` over the
    given source ``subsets`` (indices into the last ``n`` source axes).

    Shape: pmf ``(*batch, |S_1|, ..., |S_n|, |T|)``, coeffs ``(len(subsets), A)``.
    """
    src_dims = tuple(range(pmf.ndim - n - 1, pmf.ndim - 1))
    marg: list[Tensor] = []
    marg_t: list[Tensor] = []
    for subset in subsets:
        drop = tuple(src_dims[i] for i in range(n) if i not in subset)
        joint = pmf.sum(dim=drop, keepdim=True) if drop else pmf
        marg_t.append(joint.expand_as(pmf))
        marg.append(joint.sum(-1, keepdim=True).expand(*pmf.shape[:-1], 1))
    n_sub, n_atoms = coeffs.shape
    # subset / antichain axis first: the inclusion-exclusion is one well-shaped matrix product
    p_event_t = torch.mm(coeffs.T, torch.stack(marg_t).reshape(n_sub, -1)).reshape(n_atoms, *pmf.shape)
    p_event = torch.mm(coeffs.T, torch.stack(marg).reshape(n_sub, -1)).reshape(n_atoms, *pmf.shape[:-1], 1)
    cell_dims = tuple(d + 1 for d in src_dims) + (pmf.ndim,)
    cond_sum = (pmf * _log2_cond(p_event_t, p_event)).sum(dim=cell_dims).movedim(0, -1)
    plus_sum = None
    if parts:
        plus_sum = -(pmf * _log2_event(p_event)).sum(dim=cell_dims).movedim(0, -1)
    return cond_sum, plus_sum


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
