"""Classical associative memories and the recall routine shared by every memory in this package.

All memories store ``M`` patterns ``xi`` of ``N`` entries in ``{-1, +1}`` (rows of an ``(M, N)``
tensor) and recall by the same deterministic synchronous dynamics (:func:`recall`):
``x <- sign(h(x))``, where a zero field keeps the old entry, until a fixed point, a 2-cycle or
``max_steps`` (default ``N``) updates.  The score of a memory is the mean overlap
``m = x . xi / N`` of the recalled state with the stored pattern, over all patterns
(:func:`recall_score`); the recall and score of Blümel et al. 2025 (arXiv:2511.02584) and
their published code.

Weight rules (``W[i, j]`` is the weight from neuron ``j`` to neuron ``i``; field ``h = W x``):

- :func:`hebbian_weights`: ``W = (1/N) sum_mu xi xi^T`` with zero diagonal (Hopfield 1982;
  capacity 0.138 N for large N, Amit, Gutfreund & Sompolinsky 1985).
- :func:`storkey_weights`: the incremental rule of Storkey (1997), local and online.
- :func:`pseudo_inverse_weights`: the projection rule ``W = Xi (Xi^T Xi)^+ Xi^T``
  (Personnaz, Guyon & Dreyfus 1985), which stores any ``M < N`` linearly independent patterns
  exactly; by default with zero diagonal, like every other network here (no self-connections).
  For ``M >= N`` the projection is the identity and the zero-diagonal matrix vanishes, so the
  rule is only meaningful below ``M = N``.
- :func:`modern_field`: one step of the continuous modern Hopfield network (Ramsauer et al.
  2021), ``h = Xi^T softmax(beta Xi x)``, a reference point with exponential capacity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "random_patterns",
    "flip_bits",
    "hebbian_weights",
    "storkey_weights",
    "pseudo_inverse_weights",
    "modern_field",
    "linear_field",
    "recall",
    "overlaps",
    "recall_score",
    "RULES",
    "rule_field",
]

Field = Callable[[Tensor], Tensor]


def random_patterns(
    n_patterns: int, n_neurons: int, generator: torch.Generator | None = None, p_plus: float = 0.5
) -> Tensor:
    """``(M, N)`` i.i.d. patterns in ``{-1, +1}`` with ``P(+1) = p_plus`` (float32)."""
    if n_patterns < 1 or n_neurons < 2:
        raise ValueError(f"need n_patterns >= 1 and n_neurons >= 2, got M={n_patterns}, N={n_neurons}")
    u = torch.rand(n_patterns, n_neurons, generator=generator)
    return torch.where(u < p_plus, 1.0, -1.0)


def flip_bits(patterns: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """Copies of ``patterns`` with exactly ``round(fraction * N)`` randomly chosen entries flipped per row."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"the fraction of flipped bits must be in [0, 1], got {fraction}")
    m, n = patterns.shape
    k = int(round(fraction * n))
    if k == 0:
        return patterns.clone()
    order = torch.rand(m, n, generator=generator).argsort(dim=1)[:, :k]
    sign = torch.ones_like(patterns).scatter_(1, order, -1.0)
    return patterns * sign


def hebbian_weights(patterns: Tensor) -> Tensor:
    """Hebbian outer-product rule ``W = (1/N) sum xi xi^T``, zero diagonal, ``(N, N)``."""
    n = patterns.shape[1]
    w = patterns.T.double() @ patterns.double() / n
    w.fill_diagonal_(0.0)
    return w


def storkey_weights(patterns: Tensor) -> Tensor:
    """Storkey's (1997) incremental rule, one pattern after another, zero diagonal, ``(N, N)``.

    ``w_ij += (xi_i xi_j - xi_i h_ji - h_ij xi_j) / N`` with the local field
    ``h_ij = sum_{k != i, j} w_ik xi_k``.
    """
    n = patterns.shape[1]
    w = torch.zeros(n, n, dtype=torch.float64)
    for xi in patterns.double():
        h = w @ xi  # diagonal is zero, so h_i excludes k = i
        h_ij = h[:, None] - w * xi[None, :]  # exclude k = j
        w = w + (torch.outer(xi, xi) - xi[:, None] * h_ij.T - h_ij * xi[None, :]) / n
        w.fill_diagonal_(0.0)
    return w


def pseudo_inverse_weights(patterns: Tensor, zero_diagonal: bool = True) -> Tensor:
    """Projection (pseudo-inverse) rule ``W = Xi^T (Xi Xi^T)^+ Xi`` onto the patterns' span, ``(N, N)``."""
    xi = patterns.double()
    w = xi.T @ torch.linalg.pinv(xi @ xi.T, hermitian=True) @ xi
    if zero_diagonal:
        w.fill_diagonal_(0.0)
    return w


def linear_field(weights: Tensor) -> Field:
    """The field ``h = W x`` of a weight matrix, as a function of states ``(B, N)``."""
    w = weights.detach()

    def field(x: Tensor) -> Tensor:
        return x.to(w.dtype) @ w.T

    return field


def modern_field(patterns: Tensor, beta: float = 1.0) -> Field:
    """Continuous modern Hopfield retrieval ``h = Xi^T softmax(beta * Xi x)`` (Ramsauer et al. 2021)."""
    xi = patterns.double()

    def field(x: Tensor) -> Tensor:
        return torch.softmax(beta * (x.double() @ xi.T), dim=1) @ xi

    return field


@torch.no_grad()
def recall(field: Field, cues: Tensor, max_steps: int | None = None) -> tuple[Tensor, Tensor]:
    """Synchronous deterministic recall ``x <- sign(h(x))`` from each cue.

    A zero field keeps the entry.  Each row stops at a fixed point or a 2-cycle (the state
    after the step that closes the cycle is returned) or after ``max_steps`` (default ``N``).

    Returns
    -------
    states, steps:
        ``(B, N)`` final states and ``(B,)`` the number of updates each row took.

    Shape
    -----
    cues ``(B, N)`` in ``{-1, +1}``.
    """
    b, n = cues.shape
    steps_max = n if max_steps is None else max_steps
    x = cues.clone()
    prev = torch.full_like(x, float("nan"))
    active = torch.ones(b, dtype=torch.bool)
    steps = torch.zeros(b, dtype=torch.long)
    for _ in range(steps_max):
        idx = active.nonzero().squeeze(1)
        if len(idx) == 0:
            break
        cur = x[idx]
        h = field(cur).to(cur.dtype)
        new = torch.where(h > 0, 1.0, torch.where(h < 0, -1.0, cur)).to(cur.dtype)
        done = (new == cur).all(1) | (new == prev[idx]).all(1)
        prev[idx] = cur
        x[idx] = new
        steps[idx] += 1
        active[idx[done]] = False
    return x, steps


def overlaps(states: Tensor, patterns: Tensor) -> Tensor:
    """Overlap ``m = x . xi / N`` of each state with its pattern, ``(B,)``, in ``[-1, 1]``."""
    return (states.double() * patterns.double()).mean(1)


def recall_score(
    field: Field,
    patterns: Tensor,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
    max_steps: int | None = None,
) -> float:
    """Mean overlap after recall from every stored pattern (with a fraction ``noise`` of its bits flipped)."""
    cues = flip_bits(patterns, noise, generator) if noise > 0 else patterns
    states, _ = recall(field, cues, max_steps)
    return float(overlaps(states, patterns).mean())


RULES: dict[str, Callable[[Tensor], Field]] = {
    "hebbian": lambda p: linear_field(hebbian_weights(p)),
    "storkey": lambda p: linear_field(storkey_weights(p)),
    "pseudo-inverse": lambda p: linear_field(pseudo_inverse_weights(p)),
    "modern": lambda p: modern_field(p, beta=1.0),
}
"""Classical baselines by name: patterns ``(M, N)`` -> the recall field of the stored memory."""


def rule_field(method: str, patterns: Tensor) -> Field | None:
    """The recall field of baseline ``method`` (a key of :data:`RULES`) storing ``patterns``.

    ``None`` for the pseudo-inverse at ``M >= N``, where the projection is the identity and
    stores nothing.
    """
    if method == "pseudo-inverse" and len(patterns) >= patterns.shape[1]:
        return None
    return RULES[method](patterns)
