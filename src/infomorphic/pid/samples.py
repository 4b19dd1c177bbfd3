"""The training path: I^sx PID of every neuron from binned samples, without dense histograms.

Each of ``B`` samples sits, for neuron ``j``, in one source cell ``s_b`` (its bin indices) and
carries target probabilities ``w_b(t) = p(t | b)`` (for a binary neuron ``(1 - theta,
theta)``).  The plug-in pmf is ``p(s, t) = (1/B) sum_b [s_b = s] w_b(t)`` and is
differentiable in ``w``; bin indices carry no gradient.

Only occupied cells contribute to the I^sx sums, so an average over cells is an average over
samples, ``sum_{s,t} p(s,t) f(s,t) = (1/B) sum_b sum_t w_b(t) f(s_b, t)``.  The marginals
``P(S_U = s_U, t)`` needed at ``s_b`` are gathered from per-neuron tables: dense for small
source subsets, rank-compressed (at most ``B`` distinct cells per neuron) for large ones.

Antichains are grouped by the sources they involve.  A group whose joint table has at most
``B`` cells (e.g. one or two sources with 20 bins each) is evaluated on that small dense
table; the others (those involving all three sources, for the trivariate neuron) are
evaluated per sample by a custom autograd function whose backward pass is written out:

    d/dm_bt sum_{b',t'} m_b't' log2 P(E(s_b'), t')
        = log2 P(E(s_b), t) + (1/ln 2) sum_U c_U sum_{b': s_b'U = s_bU} m_b't / P(E(s_b'), t)

(the inner sum is a scatter into the subset table and a gather back), so the backward pass
costs about as much as the forward pass and stores only two per-sample tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import Tensor

from .checks import check_n_sources
from .kernel import active_kernel, load_kernel
from .lattice import Lattice, get_lattice
from .torch_sx import SxPIDTensors, _finish, _lattice_tensors, dense_sums

__all__ = ["SampleCells", "sample_cells", "sx_pid_from_samples", "sx_pid_from_binary_samples"]

_INV_LN2 = 1.4426950408889634


def _rank_within_rows(key: Tensor) -> Tensor:
    """Replace each row's values by their rank among the row's distinct values (0-based).

    Shape: ``(N, B) -> (N, B)``, ranks in ``[0, B)``.
    """
    sorted_key, perm = key.sort(dim=1)
    new = torch.ones_like(sorted_key, dtype=torch.bool)
    new[:, 1:] = sorted_key[:, 1:] != sorted_key[:, :-1]
    ranks = new.cumsum(1) - 1
    return torch.empty_like(key).scatter_(1, perm, ranks)


@dataclass(frozen=True)
class _DenseGroup:
    """Source subsets of one table shape whose antichains are evaluated on dense tables.

    Each subset's table gives the antichains that involve exactly its sources; all subsets of
    the group are computed in one batched call.
    """

    shape: tuple[int, ...]  # bins per source of each subset's table
    subsets: tuple[tuple[int, ...], ...]  # source subsets of this table shape (global indices)
    local_subsets: tuple[tuple[int, ...], ...]  # all non-empty subsets of range(len(shape))
    coeffs: Any  # numpy (len(local_subsets), n_spanning_antichains)
    positions: tuple[int, ...]  # lattice positions produced by this group
    flat: tuple[int, ...]  # their index into the (subset, local antichain) flattened result


@dataclass(frozen=True)
class SampleCells:
    """Where each sample sits, per neuron and source subset: the source side of the estimate.

    Built by :func:`sample_cells` without gradient; independent of the target weights, so
    one instance serves any number of weight tensors (e.g. the forward and the goal pass).

    Attributes
    ----------
    lattice:
        Lattice of the ``n`` sources.
    keys:
        Per source subset (lattice order), ``(N, B)`` int64 cell index of each sample in that
        subset's table, and the table size (dense index, or rank among distinct cells).
    dense_keys:
        Per dense group: ``(G, N, B)`` dense cell index of each sample in the joint table of
        each of the group's ``G`` source subsets.
    log_event:
        ``(A_s, N, B)``: ``log2 P(E_alpha(s_b))`` of the per-sample antichains (bits).
    sample_coeffs:
        ``(A_s, K)`` inclusion-exclusion coefficients of the per-sample antichains.
    """

    lattice: Lattice
    sizes: tuple[int, ...]
    n_samples: int
    keys: tuple[tuple[Tensor, int], ...]
    dense_groups: tuple[_DenseGroup, ...]
    dense_keys: tuple[Tensor, ...]
    sample_positions: tuple[int, ...]
    sample_coeffs: Tensor
    log_event: Tensor
    backend: str = "torch"  # "kernel": the compiled CPU kernel evaluates every antichain per sample
    bins: Tensor | None = None  # the kernel's input: (B, N, n) bins (it computes the cells itself)
    n_neurons: int = 0


def _spanning(k: int) -> tuple[list[tuple[tuple[int, ...], ...]], list[tuple[int, ...]], Any]:
    """Antichains of ``k`` local sources that involve all of them, all local subsets, and the
    union coefficients ``(n_subsets, n_antichains)`` (``k = 1``: the single antichain {0})."""
    import numpy as np

    if k == 1:
        return [((0,),)], [(0,)], np.ones((1, 1))
    lat = get_lattice(k)
    keep = [i for i, a in enumerate(lat.antichains) if len(lat.source_union(a)) == k]
    return [lat.antichains[i] for i in keep], list(lat.subsets), lat.union_coeffs[keep].T.astype(np.float64)


def _plan(lat: Lattice, sizes: Sequence[int], n_samples: int) -> tuple[list[_DenseGroup], list[int]]:
    """Split antichains into dense groups (joint table of at most ``n_samples`` cells) and per-sample ones.

    An antichain is evaluated on the dense table of exactly the sources it involves when that
    table is small; all source subsets of one table shape form one batched group.
    """
    import numpy as np

    per_sample: list[int] = []
    by_shape: dict[tuple[int, ...], dict[tuple[int, ...], list[tuple[int, int]]]] = {}
    for pos, alpha in enumerate(lat.antichains):
        union = lat.source_union(alpha)
        shape = tuple(sizes[i] for i in union)
        if int(np.prod(shape)) > n_samples:
            per_sample.append(pos)
            continue
        local = tuple(tuple(union.index(i) for i in member) for member in alpha)
        spanning = _spanning(len(union))[0]
        by_shape.setdefault(shape, {}).setdefault(union, []).append((pos, spanning.index(local)))
    groups: list[_DenseGroup] = []
    for shape, members in by_shape.items():
        antichains, local_subsets, coeffs = _spanning(len(shape))
        positions: list[int] = []
        flat: list[int] = []
        for g, union in enumerate(members):
            for pos, local_index in members[union]:
                positions.append(pos)
                flat.append(g * len(antichains) + local_index)
        groups.append(
            _DenseGroup(shape, tuple(members), tuple(local_subsets), coeffs, tuple(positions), tuple(flat))
        )
    return groups, per_sample


def sample_cells(
    bins: Tensor,
    n_bins: int | Sequence[int],
    *,
    dtype: torch.dtype = torch.float32,
    validate: bool = True,
    backend: str = "auto",
) -> SampleCells:
    """Index every sample into the marginal tables of every source subset (no gradient).

    Parameters
    ----------
    bins:
        Integer tensor ``(B, N, n)``: bin of source ``i`` for sample ``b`` at neuron ``j``.
    n_bins:
        Bins per source (one int, or one per source).
    dtype:
        Floating dtype of the probabilities that will be computed.
    validate:
        Check shapes and bin ranges (one device sync).
    backend:
        ``"kernel"`` (the compiled CPU kernel, :mod:`infomorphic.pid.kernel`), ``"torch"``, or
        ``"auto"``: the kernel for CPU tensors when it is available, else PyTorch.
    """
    if backend not in ("auto", "kernel", "torch"):
        raise ValueError(f"backend must be 'auto', 'kernel' or 'torch', got {backend!r}")
    if bins.ndim != 3:
        raise ValueError(f"bins must have shape (B, N, n_sources), got {tuple(bins.shape)}")
    n_samples, n_neurons, n = bins.shape
    check_n_sources(n)
    if bins.is_floating_point() or bins.is_complex() or bins.dtype == torch.bool:
        raise ValueError(f"bins must be an integer tensor, got {bins.dtype}")
    sizes = tuple([int(n_bins)] * n if isinstance(n_bins, int) else [int(k) for k in n_bins])
    if len(sizes) != n or min(sizes) < 1:
        raise ValueError(f"n_bins must be a positive int or {n} positive ints, got {n_bins!r}")
    if n_samples == 0 or n_neurons == 0:
        raise ValueError(f"need at least one sample and one neuron, got bins of shape {tuple(bins.shape)}")
    with torch.no_grad():
        if validate:
            lo = bins.amin(dim=(0, 1)).tolist()
            hi = bins.amax(dim=(0, 1)).tolist()
            for i in range(n):
                if lo[i] < 0 or hi[i] >= sizes[i]:
                    raise ValueError(
                        f"bins of source {i} range over [{lo[i]}, {hi[i]}], outside [0, {sizes[i] - 1}]"
                    )
        lat = get_lattice(n)
        use_kernel = backend == "kernel" or (
            backend == "auto" and bins.device.type == "cpu" and active_kernel() is not None
        )
        if use_kernel:
            if bins.device.type != "cpu" or load_kernel() is None:
                raise ValueError(
                    "the compiled kernel needs CPU tensors and a working C++ build; use backend='torch'"
                )
            if bins.dtype not in (torch.int32, torch.int64, torch.uint8):
                bins = bins.long()
            return SampleCells(
                lattice=lat,
                sizes=sizes,
                n_samples=n_samples,
                keys=(),
                dense_groups=(),
                dense_keys=(),
                sample_positions=(),
                sample_coeffs=torch.zeros(0),
                log_event=torch.zeros(0),
                backend="kernel",
                bins=bins,
                n_neurons=n_neurons,
            )
        idx = bins.transpose(0, 1).long()  # (N, B, n)
        keys: list[tuple[Tensor, int]] = []
        dense_key: dict[tuple[int, ...], Tensor] = {}
        for subset in lat.subsets:
            key = idx[..., subset[0]].clone()
            size = sizes[subset[0]]
            for i in subset[1:]:
                key = key * sizes[i] + idx[..., i]
                size *= sizes[i]
            if size <= n_samples:
                dense_key[subset] = key
            if size > _DENSE_TABLE_FACTOR * n_samples:
                keys.append((_rank_within_rows(key), n_samples))
            else:
                keys.append((key, size))
        dense_groups, per_sample = _plan(lat, sizes, n_samples)
        coeffs_all, _ = _lattice_tensors(lat, torch.empty(0, dtype=dtype, device=bins.device))
        sample_coeffs = coeffs_all[:, per_sample].T.contiguous()  # (A_s, K)
        ones = torch.full((n_neurons, n_samples), 1.0 / n_samples, dtype=dtype, device=bins.device)
        if per_sample:
            marg = torch.stack(
                [
                    torch.zeros(n_neurons, size, dtype=dtype, device=bins.device)
                    .scatter_add_(1, key, ones)
                    .gather(1, key)
                    for key, size in keys
                ]
            )  # (K, N, B)
            # P(E) >= 1/B > 0: every sample's own cell is in its event
            log_event = torch.log2(torch.mm(sample_coeffs, marg.reshape(len(keys), -1)))
            log_event = log_event.reshape(len(per_sample), n_neurons, n_samples)  # (A_s, N, B)
        else:
            log_event = torch.zeros(0, n_neurons, n_samples, dtype=dtype, device=bins.device)
    return SampleCells(
        lattice=lat,
        sizes=sizes,
        n_samples=n_samples,
        keys=tuple(keys),
        dense_groups=tuple(dense_groups),
        dense_keys=tuple(torch.stack([dense_key[m] for m in g.subsets]) for g in dense_groups),
        sample_positions=tuple(per_sample),
        sample_coeffs=sample_coeffs,
        log_event=log_event,
        n_neurons=n_neurons,
    )


_DENSE_TABLE_FACTOR = 16
"""Subset tables up to this many times the batch size are indexed densely; larger ones by a number
per distinct cell (a sort per neuron in the PyTorch path, a hash table in the compiled kernel), so
memory stays ``O(N * B)`` for any number of bins."""

_CHUNK_ELEMENTS = 1 << 20
"""Per-sample work is done in blocks of neurons of about this many elements per tensor.

Small blocks stay in the allocator's heap and in cache: on CPU, fresh multi-megabyte
allocations are served by new pages whose first touch costs more than the arithmetic."""


class _PerSampleCondSum(torch.autograd.Function):
    """``sum_{b,t} m_bt log2 P(t | E_alpha(s_b))`` per neuron and antichain, with a hand-written backward.

    Internally the antichain / subset axis comes first (``(A, n, B, T)``), so that the
    inclusion-exclusion sums are one well-shaped matrix product each.
    """

    @staticmethod
    def forward(
        ctx: Any, mass: Tensor, log_event: Tensor, coeffs: Tensor, keys: tuple[tuple[Tensor, int], ...]
    ) -> Tensor:
        n_neurons, n_samples, n_t = mass.shape
        n_atoms, n_subsets = coeffs.shape
        step = max(1, _CHUNK_ELEMENTS // (n_samples * n_t * max(n_atoms, n_subsets)))
        out = mass.new_empty(n_neurons, n_atoms)
        saved = []
        for lo in range(0, n_neurons, step):
            block = slice(lo, lo + step)
            m = mass[block]
            rows = m.shape[0]
            index = [(key[block].unsqueeze(-1).expand(-1, -1, n_t), size) for key, size in keys]
            marg_t = torch.stack(
                [m.new_zeros(rows, size, n_t).scatter_add_(1, k, m).gather(1, k) for k, size in index]
            )  # (K, n, B, T)
            p_event_t = torch.mm(coeffs, marg_t.reshape(n_subsets, -1)).reshape(n_atoms, rows, n_samples, n_t)
            valid = p_event_t > 0
            safe = p_event_t.masked_fill_(~valid, 1.0)
            log_cond = torch.log2(safe).sub_(log_event[:, block].unsqueeze(-1)).mul_(valid)
            out[block] = (log_cond * m).sum(dim=(2, 3)).T
            saved.append((safe, log_cond, index))
        ctx.save_for_backward(mass, coeffs)
        ctx.blocks = saved
        ctx.step = step
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        mass, coeffs = ctx.saved_tensors
        n_neurons, n_samples, n_t = mass.shape
        n_atoms, n_subsets = coeffs.shape
        out = mass.new_empty(mass.shape)
        for i, (safe, log_cond, index) in enumerate(ctx.blocks):
            block = slice(i * ctx.step, (i + 1) * ctx.step)
            m = mass[block]
            g = grad[block].T.reshape(n_atoms, -1, 1, 1)  # (A, n, 1, 1)
            rows = m.shape[0]
            acc = (log_cond * g).sum(0)  # (n, B, T)
            ratio = (m / safe).mul_(g * _INV_LN2)  # (A, n, B, T)
            per_subset = torch.mm(coeffs.T, ratio.reshape(n_atoms, -1)).reshape(
                n_subsets, rows, n_samples, n_t
            )
            for k, (key, size) in enumerate(index):
                acc += m.new_zeros(rows, size, n_t).scatter_add_(1, key, per_subset[k]).gather(1, key)
            out[block] = acc
        return out, None, None, None


@cache
def _kernel_lattice(n_sources: int) -> tuple[Tensor, Tensor, Tensor]:
    """Inclusion-exclusion coefficients ``(A, K)``, union subset per antichain ``(A,)`` and the
    sources of each subset ``(K, n)`` (0/1) for the kernel."""
    lat = get_lattice(n_sources)
    members = torch.zeros(len(lat.subsets), n_sources, dtype=torch.long)
    for k, subset in enumerate(lat.subsets):
        members[k, list(subset)] = 1
    return torch.tensor(lat.union_coeffs, dtype=torch.float64), torch.tensor(lat.union_index), members


class _KernelSums(torch.autograd.Function):
    """The compiled kernel's ``(cond_sum, plus_sum)`` per neuron and antichain, and the mean of
    ``weights`` over the samples (the target's marginal: ``(N,)`` for a binary target, else
    ``(N, T)``), with their backward.

    The marginal is an output of this function rather than a separate ``mean`` so that its
    gradient (the same ``1 / B`` of the incoming gradient for every sample) is added to the
    kernel's gradient in place, in one pass: as a separate node, autograd materialised it as a
    ``(B, N)`` tensor and then added the two (with the partner product's bias added in place,
    3 % of a setup-2 step at N = 2000; ``benchmarks/README.md``).  The sum is the same float
    operation either way, so the gradient is the same to the bit.

    Differentiable in ``weights`` (``(B, N, T)`` target probabilities, or ``theta`` ``(B, N)``
    when ``binary``).  With a ``hint`` (the expected gradient with respect to ``cond_sum``, e.g.
    a goal's weights on the redundancies), the forward pass also computes the gradient in that
    direction from the same tables and logarithms; a backward pass whose incoming gradient is a
    multiple of the hint (as in training, where the loss is minus the summed goals), to within
    1e-6 of each neuron's largest entry (float32 rounding), reuses it.  Any other incoming gradient is
    computed from scratch, so results do not depend on the hint beyond that rounding.  With
    ``hinted_only`` (and a hint), only the sums of the antichains with a non-zero hint are
    computed; the others are 0.
    """

    @staticmethod
    def forward(
        ctx: Any,
        weights: Tensor,
        binary: bool,
        bins: Tensor,
        sizes: tuple[int, ...],
        hint: Tensor | None,
        hinted_only: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor]:
        empty = torch.empty(0, dtype=torch.float64)
        g = empty if hint is None else hint.to(torch.float64).expand(bins.shape[1], -1).contiguous()
        cond, plus, grad = _run_kernel(bins, sizes, weights, binary, g, empty, True, hinted_only)
        ctx.save_for_backward(weights, bins)
        ctx.binary, ctx.sizes = binary, sizes
        ctx.hint = None if hint is None else g
        ctx.hinted_grad = None if hint is None else grad
        return cond, plus, weights.mean(0)

    @staticmethod
    def backward(
        ctx: Any, g_cond: Tensor | None, g_plus: Tensor | None, g_marginal: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        weights, bins = ctx.saved_tensors
        none = (None,) * 5
        if g_plus is not None and not bool((g_plus == 0).all()):
            g_plus_d = g_plus.to(torch.float64)
        else:
            g_plus_d = None
        # the marginal's gradient: d mean / d weights = 1 / B for every sample (as MeanBackward)
        per_sample = None if g_marginal is None else (g_marginal / weights.shape[0]).unsqueeze(0)
        if g_cond is None and g_plus_d is None:
            zeros = torch.zeros_like(weights)
            return (zeros if per_sample is None else zeros.add_(per_sample), *none)
        grad = None
        if g_plus_d is None and g_cond is not None and ctx.hint is not None:
            hint = ctx.hint
            incoming = g_cond.to(torch.float64)
            scale = float((incoming * hint).sum() / (hint * hint).sum().clamp_min(1e-300))
            expected = scale * hint
            # within 1e-6 of each neuron's largest entry, not of each entry: a float32 Moebius
            # transform of a four-source goal (166 terms) rounds near-zero entries far beyond 1e-6
            tolerance = 1e-6 * expected.abs().amax(-1, keepdim=True) + 1e-12
            if bool(((incoming - expected).abs() <= tolerance).all()):
                grad = ctx.hinted_grad * scale
        if grad is None:
            empty = torch.empty(0, dtype=torch.float64)
            gc = empty if g_cond is None else g_cond.to(torch.float64)
            gp = empty if g_plus_d is None else g_plus_d
            _, _, grad = _run_kernel(bins, ctx.sizes, weights, ctx.binary, gc, gp, False)
        return (grad if per_sample is None else grad.add_(per_sample), *none)


def _run_kernel(
    bins: Tensor,
    sizes: tuple[int, ...],
    weights: Tensor,
    binary: bool,
    g_cond: Tensor,
    g_plus: Tensor,
    want_values: bool,
    hinted_only: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """One call of the compiled kernel: ``(cond, plus, grad)`` (see ``_sx_kernel.cpp``)."""
    kernel = load_kernel()
    assert kernel is not None
    coeffs, unions, members = _kernel_lattice(bins.shape[2])
    # the kernel reads neuron by neuron: a (B, N) theta stored row by row is read transposed, from a
    # tiled copy (each of its samples on another page otherwise), and the gradient, written
    # neuron by neuron, goes back to the rows' layout the same way
    by_neuron = (
        binary
        and weights.dim() == 2
        and weights.stride(1) == 1
        and weights.shape[1] > 1
        and weights.dtype in (torch.float32, torch.float64)
        and hasattr(kernel, "transpose_tiled")
    )
    if by_neuron:
        weights = kernel.transpose_tiled(weights).t()
    cond, plus, grad = kernel.run(
        bins,
        torch.tensor(sizes),
        members,
        _DENSE_TABLE_FACTOR,
        weights,
        binary,
        coeffs,
        unions,
        g_cond,
        g_plus,
        want_values,
        hinted_only,
    )
    if by_neuron and grad.numel() > 0:
        grad = kernel.transpose_tiled(grad.t())
    return cond, plus, grad


def _kernel_pid(
    cells: SampleCells,
    weights: Tensor,
    binary: bool,
    parts: bool,
    grad_hint: Tensor | None,
    hinted_only: bool,
) -> SxPIDTensors:
    """The compiled kernel's sums turned into atoms (``weights`` ``(B, N, T)``, or ``theta``
    ``(B, N)`` when ``binary``)."""
    from ..estimate import binary_weights

    assert cells.bins is not None
    cond_sum, plus_sum, marginal = _KernelSums.apply(
        weights, binary, cells.bins, cells.sizes, grad_hint, hinted_only
    )
    p_t = binary_weights(marginal) if binary else marginal  # (N, T)
    _, moebius = _lattice_tensors(cells.lattice, weights)
    return _finish(cells.lattice, cond_sum, plus_sum if parts else None, p_t, moebius)


def sx_pid_from_samples(
    bins: Tensor | SampleCells,
    weights: Tensor,
    n_bins: int | Sequence[int] | None = None,
    *,
    parts: bool = False,
    validate: bool = True,
    backend: str = "auto",
    grad_hint: Tensor | None = None,
    hinted_only: bool = False,
) -> SxPIDTensors:
    """I^sx PID of each neuron from binned samples and per-sample target probabilities.

    The plug-in pmf of neuron ``j`` is ``p_j(s, t) = (1/B) sum_b [bins[b, j] = s] weights[b, j, t]``.
    The result equals :func:`~infomorphic.pid.torch_sx.sx_pid_torch` of that dense pmf (up to
    rounding) and is differentiable with respect to ``weights``.

    Parameters
    ----------
    bins:
        Integer tensor ``(B, N, n)`` of bin indices, or a :class:`SampleCells` made from it.
    weights:
        Float tensor ``(B, N, |T|)``: ``p(t | sample)``; rows sum to 1 (for a binary neuron
        ``(1 - theta, theta)``, see :func:`infomorphic.estimate.binary_weights`).  The source
        marginals are taken as counts / B, so gradients are those of weights kept on the
        simplex (parameterise them, e.g. by a sigmoid or softmax, as neurons do).
    n_bins:
        Bins per source (needed when ``bins`` is a tensor).
    parts:
        Also return informative / misinformative atoms.
    validate:
        Check shapes and bin ranges.
    backend:
        ``"auto"``, ``"kernel"`` or ``"torch"`` (see :func:`sample_cells`); ignored when
        ``bins`` is a :class:`SampleCells`.
    grad_hint:
        Optional ``(n_antichains,)`` or ``(N, n_antichains)``: the expected direction of the
        gradient with respect to the redundancies (e.g. :meth:`infomorphic.goals.Goal.redundancy_weights`).
        The compiled kernel then computes that gradient together with the values; a pure
        speed-up, the results do not depend on it.
    hinted_only:
        With a ``grad_hint`` (and ``parts=False``): the compiled kernel computes only the
        redundancies whose hint is non-zero; the others are taken as ``H(T)`` (a conditional
        sum of 0), so **the atoms are not the PID**.  A goal whose redundancy weights are the hint
        (:meth:`~infomorphic.goals.Goal.evaluate` on these atoms) still has its value, up to
        float rounding, and exactly the gradient of the full call.  For training steps that do
        not record atoms (e.g. 99 of the 166 redundancies of the four-source feedback goal are
        not needed).  The PyTorch path ignores it and computes every redundancy.

    Returns
    -------
    SxPIDTensors
        Atoms ``(N, n_atoms)`` and redundancies in bits, entropies ``(N,)``.

    Shape
    -----
    Time and memory ``O(N * B * |T| * A_s)`` with ``A_s`` the antichains involving sources
    whose joint table exceeds ``B`` cells (9 of 18 for three sources with 20 bins each).
    """
    _check_hinted(hinted_only, grad_hint, parts)
    cells = _cells(bins, n_bins, weights.dtype, validate, backend)
    if weights.ndim != 3 or weights.shape[:2] != (cells.n_samples, cells.n_neurons):
        raise ValueError(
            f"weights must have shape (B, N, |T|) = ({cells.n_samples}, {cells.n_neurons}, |T|) to match "
            f"the bins, got {tuple(weights.shape)}"
        )
    if not weights.is_floating_point():
        raise ValueError(f"weights must be floating point, got {weights.dtype}")
    if cells.backend == "kernel":
        return _kernel_pid(cells, weights, False, parts, grad_hint, hinted_only)
    return _torch_sums(cells, weights, parts)


def sx_pid_from_binary_samples(
    bins: Tensor | SampleCells,
    theta: Tensor,
    n_bins: int | Sequence[int] | None = None,
    *,
    parts: bool = False,
    validate: bool = True,
    backend: str = "auto",
    grad_hint: Tensor | None = None,
    hinted_only: bool = False,
) -> SxPIDTensors:
    """:func:`sx_pid_from_samples` for a binary target given by ``theta = P(Y = 1 | sample)``.

    Equals ``sx_pid_from_samples(bins, binary_weights(theta), ...)`` (see
    :func:`infomorphic.estimate.binary_weights`) and is differentiable in ``theta`` ``(B, N)``;
    the compiled kernel reads ``theta`` in place, without building the ``(B, N, 2)`` weights.
    """
    _check_hinted(hinted_only, grad_hint, parts)
    cells = _cells(bins, n_bins, theta.dtype, validate, backend)
    if theta.ndim != 2 or theta.shape != (cells.n_samples, cells.n_neurons):
        raise ValueError(
            f"theta must have shape (B, N) = ({cells.n_samples}, {cells.n_neurons}) to match the bins, "
            f"got {tuple(theta.shape)}"
        )
    if not theta.is_floating_point():
        raise ValueError(f"theta must be floating point, got {theta.dtype}")
    from ..estimate import binary_weights

    if cells.backend != "kernel":
        return _torch_sums(cells, binary_weights(theta), parts)
    return _kernel_pid(cells, theta, True, parts, grad_hint, hinted_only)


def _check_hinted(hinted_only: bool, grad_hint: Tensor | None, parts: bool) -> None:
    if hinted_only and grad_hint is None:
        raise ValueError("hinted_only=True needs a grad_hint: the weights of the redundancies to compute")
    if hinted_only and parts:
        raise ValueError("hinted_only=True computes no informative parts: use parts=False")


def _cells(
    bins: Tensor | SampleCells,
    n_bins: int | Sequence[int] | None,
    dtype: torch.dtype,
    validate: bool,
    backend: str,
) -> SampleCells:
    if isinstance(bins, SampleCells):
        return bins
    if n_bins is None:
        raise ValueError("n_bins is required when bins is a tensor")
    return sample_cells(bins, n_bins, dtype=dtype, validate=validate, backend=backend)


def _torch_sums(cells: SampleCells, weights: Tensor, parts: bool) -> SxPIDTensors:
    """The pure PyTorch evaluation: dense groups on small tables, the rest per sample."""
    lat = cells.lattice
    n_neurons = cells.n_neurons
    _, moebius = _lattice_tensors(lat, weights)
    mass = weights.transpose(0, 1) / cells.n_samples  # (N, B, T)
    n_t = mass.shape[-1]
    p_t = mass.sum(1)
    cond_parts: list[Tensor] = []
    plus_parts: list[Tensor] = []
    order: list[int] = []
    for group, key in zip(cells.dense_groups, cells.dense_keys):
        n_groups = len(group.subsets)
        size = 1
        for k in group.shape:
            size *= k
        index = key.reshape(n_groups * n_neurons, -1, 1).expand(-1, -1, n_t)
        source = mass.expand(n_groups, -1, -1, -1).reshape(n_groups * n_neurons, -1, n_t)
        table = mass.new_zeros(n_groups * n_neurons, size, n_t).scatter_add(1, index, source)
        table = table.reshape(n_groups, n_neurons, *group.shape, n_t)
        coeffs = torch.as_tensor(group.coeffs, dtype=mass.dtype, device=mass.device)
        cond, plus = dense_sums(table, len(group.shape), group.local_subsets, coeffs, parts=parts)
        flat = torch.as_tensor(group.flat, device=mass.device)
        cond_parts.append(cond.transpose(0, 1).reshape(n_neurons, -1).index_select(1, flat))
        if plus is not None:
            plus_parts.append(plus.transpose(0, 1).reshape(n_neurons, -1).index_select(1, flat))
        order.extend(group.positions)
    if cells.sample_positions:
        coeffs = cells.sample_coeffs.to(mass.dtype)
        log_event = cells.log_event.to(mass.dtype)
        cond_parts.append(_PerSampleCondSum.apply(mass, log_event, coeffs, cells.keys))
        if parts:
            plus_parts.append(-(log_event * mass.sum(-1)).sum(-1).T)
        order.extend(cells.sample_positions)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    inverse = inverse.to(mass.device)
    cond_sum = torch.cat(cond_parts, -1).index_select(-1, inverse)
    plus_sum = torch.cat(plus_parts, -1).index_select(-1, inverse) if parts else None
    return _finish(lat, cond_sum, plus_sum, p_t, moebius)
