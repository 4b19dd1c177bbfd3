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
- :func:`descent_l2_weights`: *Descent L2* of Tolmachev & Manton (2020), the weights and biases
  that minimise ``1/2 sum_{mu,i} (lambda h_i^mu - xi_i^mu)^2`` plus a small L2 penalty (a
  ridge regression of each neuron on the others; exact storage with margin up to ``M ~ N``).
- :func:`mpf_weights`: minimum probability flow (Hillar, Sohl-Dickstein & Koepsell 2012): the
  symmetric weights and biases that minimise the probability flow from every pattern to its
  single-bit-flip neighbours, ``K = sum_{mu,i} exp(-xi_i^mu h_i^mu)`` in the ``{-1, +1}`` states
  used here.
- :func:`modern_field`: one step of the continuous modern Hopfield network (Ramsauer et al.
  2021), ``h = Xi^T softmax(beta Xi x)``, a reference point with exponential capacity.

Descent L2 and MPF learn a bias ``b`` as well (the papers' external inputs / thresholds); their
field is ``h = W x + b`` (:func:`linear_field` with ``bias``), recalled with the same zero
threshold ``sign(h)``.  Both are batch rules, computed in float64 and
deterministic given the patterns (Descent L2 in closed form, MPF by full-batch L-BFGS from
``W = 0, b = 0``); the online-storage experiment (:func:`~.capacity.online_storage`) uses
neither.
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
    "descent_l2_loss",
    "descent_l2_weights",
    "mpf_objective",
    "mpf_weights",
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


def linear_field(weights: Tensor, bias: Tensor | None = None) -> Field:
    """The field ``h = W x`` (``+ b`` when ``bias`` is given) of a weight matrix, as a function of states ``(B, N)``."""
    w = weights.detach()
    b = None if bias is None else bias.detach().to(w.dtype)

    def field(x: Tensor) -> Tensor:
        h = x.to(w.dtype) @ w.T
        return h if b is None else h + b

    return field


def _lbfgs(
    x0: Tensor,
    fun: Callable[[Tensor], tuple[Tensor, Tensor]],
    max_iter: int,
    tol_grad: float,
    tol_change: float,
) -> Tensor:
    """Minimise ``fun`` (value and gradient of a flat float64 vector) by L-BFGS from ``x0``.

    ``torch.optim.LBFGS`` with a strong-Wolfe line search, step 1, history 100, at most
    ``max_iter`` iterations (``2 max_iter`` evaluations); it stops early when the largest
    gradient entry is ``<= tol_grad`` or the value or the step changes by ``<= tol_change``.
    """
    x = x0.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x],
        lr=1.0,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        tolerance_grad=tol_grad,
        tolerance_change=tol_change,
        history_size=100,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        with torch.no_grad():
            value, grad = fun(x.detach())
        x.grad = grad
        return value

    opt.step(closure)
    return x.detach()


def descent_l2_loss(
    patterns: Tensor, weights: Tensor, bias: Tensor, lam: float = 0.5, alpha: float = 1e-3
) -> tuple[Tensor, Tensor, Tensor]:
    """The Descent L2 loss of Tolmachev & Manton (2020) and its gradient.

    ``L = 1/2 sum_{mu,i} (lam h_i^mu - xi_i^mu)^2 + alpha/2 (|W|_F^2 + |b|^2)`` with
    ``h^mu = W xi^mu + b``.  As ``(xi_i^mu)^2 = 1`` each term is ``(1 - lam xi_i^mu h_i^mu)^2``:
    the aligned field is pulled to the margin ``1 / lam``.

    Parameters
    ----------
    patterns:
        ``(M, N)`` in ``{-1, +1}``.
    weights, bias:
        ``(N, N)`` with zero diagonal (not necessarily symmetric) and ``(N,)``.

    Returns
    -------
    loss, grad_w, grad_b:
        The scalar loss and its gradient; ``grad_w`` has a zero diagonal (the self-couplings
        are held at zero).
    """
    xi = patterns.double()
    w, b = weights.double(), bias.double()
    r = lam * (xi @ w.T + b) - xi  # (M, N) residuals
    loss = 0.5 * (r * r).sum() + 0.5 * alpha * ((w * w).sum() + (b * b).sum())
    grad_w = lam * r.T @ xi + alpha * w
    grad_w.fill_diagonal_(0.0)
    grad_b = lam * r.sum(0) + alpha * b
    return loss, grad_w, grad_b


def descent_l2_weights(
    patterns: Tensor, lam: float = 0.5, alpha: float = 1e-3, bias: bool = True
) -> tuple[Tensor, Tensor]:
    """*Descent L2* (Tolmachev & Manton 2020, IJCNN, arXiv:2010.01472): the minimiser of :func:`descent_l2_loss`.

    The loss ``1/2 sum_{mu,i} (lam h_i^mu - xi_i^mu)^2 + alpha/2 (|W|_F^2 + |b|^2)`` is the
    paper's L2 cost of the local fields (every pattern a fixed point whose aligned field
    ``xi_i h_i`` sits at the margin ``1/lam``) with the weight decay its authors add; the
    defaults ``lam = 0.5, alpha = 1e-3`` are the values of their non-incremental experiments.
    ``W`` is free off the diagonal (asymmetric, no self-coupling), ``b`` is learned unless
    ``bias=False`` (then ``b = 0``).

    The loss is a strictly convex quadratic (for ``alpha > 0``) that separates over neurons,
    so gradient descent on it (the paper's learning rule; it also applies Newton's method)
    converges to one minimiser, which is computed here exactly, as one Newton step from
    ``W = 0`` does: for neuron ``i`` with ``theta = (w_i, b_i)``, ``Z = [Xi, 1]``,
    ``A = lam^2 Z^T Z + alpha I`` and ``r = lam Z^T xi_i``, the minimiser of
    ``1/2 theta^T A theta - r^T theta`` subject to ``theta_i = 0`` (no self-coupling) is
    ``A^-1 r - A^-1 e_i (A^-1 r)_i / (A^-1)_ii`` (a Lagrange multiplier), all neurons at once
    from one Cholesky factor, float64, deterministic.  No learning rate, epochs or stopping
    rule enter.  (Iterating instead is slow where it matters: near ``M = N`` the Hessian's
    condition number is about ``lam^2 |Z|_2^2 / alpha``, and 1000 L-BFGS iterations at
    ``N = M = 100`` still left weight errors of 0.05.)  For ``M`` up to about ``N`` the fit
    ``lam h = xi`` is almost exact, so every pattern is a fixed point.

    Returns
    -------
    weights, bias:
        ``(N, N)`` with zero diagonal and ``(N,)``, float64; recall with
        ``linear_field(weights, bias)``.
    """
    if not alpha > 0:
        raise ValueError(f"Descent L2 needs a weight decay alpha > 0, got {alpha}")
    xi = patterns.double()
    m, n = xi.shape
    z = torch.cat([xi, torch.ones(m, 1, dtype=torch.float64)], 1) if bias else xi
    a = lam**2 * z.T @ z + alpha * torch.eye(z.shape[1], dtype=torch.float64)
    a_inv = torch.cholesky_inverse(torch.linalg.cholesky(a))
    free = a_inv @ (lam * z.T @ xi)  # column i: the unconstrained minimiser of neuron i
    ratio = free.diagonal()[:n] / a_inv.diagonal()[:n]
    theta = free - a_inv[:, :n] * ratio[None, :]  # column i: theta_i with theta_i[i] = 0
    w = theta[:n].T.contiguous()
    w.fill_diagonal_(0.0)
    b = theta[n].clone() if bias else torch.zeros(n, dtype=torch.float64)
    return w, b


_EXP_LINEAR_FROM = 50.0
"""MPF's ``exp`` is continued linearly above this argument (values > 5e21, far above the starting
``K / M = N``), so that trial steps of the line search never overflow."""


def _safe_exp(z: Tensor) -> tuple[Tensor, Tensor]:
    """``exp(z)`` and its derivative, continued linearly (C^1, convex) above :data:`_EXP_LINEAR_FROM`."""
    c = _EXP_LINEAR_FROM
    e = torch.exp(z.clamp(max=c))
    big = z > c
    value = torch.where(big, e * (1.0 + z - c), e)
    return value, e


def mpf_objective(patterns: Tensor, weights: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The minimum-probability-flow objective of a Hopfield network and its gradient.

    With the Ising energy ``E(x) = -1/2 x^T W x - b^T x`` (``W`` symmetric, zero diagonal),
    flipping bit ``k`` of ``x`` changes the energy by ``E(x') - E(x) = 2 x_k h_k`` with
    ``h = W x + b``, so Sohl-Dickstein et al.'s flow to all single-flip neighbours
    ``K = sum_mu sum_{x' ~ xi^mu} exp((E(xi^mu) - E(x')) / 2)`` is
    ``K = sum_{mu,k} exp(-xi_k^mu h_k^mu)``.

    Returns
    -------
    k, grad_w, grad_b:
        ``K``; ``grad_w[i, j] = dK/dw_ij`` along the symmetric direction (``W[i, j]`` and
        ``W[j, i]`` move together; zero diagonal); ``dK/db``.
    """
    xi = patterns.double()
    w, b = weights.double(), bias.double()
    z = -xi * (xi @ w.T + b)
    flow, dflow = _safe_exp(z)
    a = -dflow * xi  # dK/dh, (M, N)
    g = a.T @ xi  # dK/dW[k, j] with the entries independent
    grad_w = g + g.T
    grad_w.fill_diagonal_(0.0)
    return flow.sum(), grad_w, a.sum(0)


def mpf_weights(
    patterns: Tensor,
    bias: bool = True,
    max_iter: int = 1000,
    tol_grad: float = 1e-7,
    tol_change: float = 1e-12,
) -> tuple[Tensor, Tensor]:
    """Minimum probability flow (MPF) storage (Hillar, Sohl-Dickstein & Koepsell 2012, arXiv:1204.2916).

    Minimises :func:`mpf_objective` ``K = sum_{mu,k} exp(-xi_k^mu h_k^mu)`` (MPF of
    Sohl-Dickstein, Battaglino & DeWeese 2011, PRL 107, 220601, with the single-bit-flip
    connectivity) over a symmetric, zero-diagonal ``W`` and a bias ``b`` (``b = 0`` when
    ``bias=False``).  Hillar et al. write the states in ``{0, 1}`` with weights ``J`` and
    thresholds ``theta``; substituting ``x = (s + 1) / 2`` turns that energy into the
    ``{-1, +1}`` energy ``E(s) = -1/2 s^T W s - b^T s`` plus a constant, with ``W = J / 4`` and
    ``b`` an affine function of ``J`` and ``theta``.  ``K`` depends only on energy differences,
    so it is the same function of the energy landscape in either convention, and the patterns'
    own ``{-1, +1}`` states are used directly.

    Full-batch L-BFGS on ``K / M`` from ``W = 0, b = 0`` in float64 (:func:`_lbfgs`: at most
    ``max_iter`` iterations, stop at a largest gradient entry ``<= tol_grad`` or a change
    ``<= tol_change``); deterministic.  When every pattern can be made a strict minimum, ``K``
    has no minimiser (scaling ``W, b`` up lowers it), and the iteration stops once the
    gradient is below ``tol_grad``; recall depends only on the direction of ``(W, b)``.

    Returns
    -------
    weights, bias:
        ``(N, N)`` symmetric with zero diagonal and ``(N,)``, float64; recall with
        ``linear_field(weights, bias)``.
    """
    xi = patterns.double()
    m, n = xi.shape
    iu = torch.triu_indices(n, n, 1)
    n_w = iu.shape[1]

    def unpack(x: Tensor) -> tuple[Tensor, Tensor]:
        w = torch.zeros(n, n, dtype=torch.float64)
        w[iu[0], iu[1]] = x[:n_w]
        return w + w.T, x[n_w:] if bias else torch.zeros(n, dtype=torch.float64)

    def fun(x: Tensor) -> tuple[Tensor, Tensor]:
        w, b = unpack(x)
        k, gw, gb = mpf_objective(xi, w, b)
        g = gw[iu[0], iu[1]]
        return k / m, (torch.cat([g, gb]) if bias else g) / m

    x0 = torch.zeros(n_w + (n if bias else 0), dtype=torch.float64)
    return unpack(_lbfgs(x0, fun, max_iter, tol_grad, tol_change))


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
    "descent-l2": lambda p: linear_field(*descent_l2_weights(p)),
    "mpf": lambda p: linear_field(*mpf_weights(p)),
    "modern": lambda p: modern_field(p, beta=1.0),
}
"""Classical baselines by name: patterns ``(M, N)`` -> the recall field of the stored memory.

All are batch rules of the whole pattern set (Storkey's is incremental but is applied here to
the whole set at once); ``descent-l2`` and ``mpf`` use their functions' defaults.
"""


def rule_field(method: str, patterns: Tensor) -> Field | None:
    """The recall field of baseline ``method`` (a key of :data:`RULES`) storing ``patterns``.

    ``None`` for the pseudo-inverse at ``M >= N``, where the projection is the identity and
    stores nothing.
    """
    if method == "pseudo-inverse" and len(patterns) >= patterns.shape[1]:
        return None
    return RULES[method](patterns)
