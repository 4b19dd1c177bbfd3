"""Descent L2 (Tolmachev & Manton 2020) and minimum probability flow (Hillar et al. 2012).

The objectives and gradients are checked against element-by-element loops, brute-force
energies of every single-bit flip, autograd and finite differences; the learned weights against
an independent per-neuron ridge solve; storage against the Hebbian rule on the same patterns.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infomorphic.seeding import generator
from infomorphic.tasks.capacity import METHODS, CapacityConfig, online_storage, run_point
from infomorphic.tasks.hopfield import (
    RULES,
    descent_l2_loss,
    descent_l2_weights,
    hebbian_weights,
    linear_field,
    mpf_objective,
    mpf_weights,
    random_patterns,
    recall,
    recall_score,
    rule_field,
)
from infomorphic.tasks.memory import MemoryConfig


def _random_params(n: int, seed: int, symmetric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = generator(seed, "params", n)
    w = 0.3 * torch.randn(n, n, generator=g, dtype=torch.float64)
    if symmetric:
        w = (w + w.T) / 2
    w.fill_diagonal_(0.0)
    return w, 0.2 * torch.randn(n, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- Descent L2


def _descent_l2_loop(p: np.ndarray, w: np.ndarray, b: np.ndarray, lam: float, alpha: float) -> tuple:
    """Loss and gradient by explicit loops over patterns, neurons and weights."""
    m, n = p.shape
    loss = 0.0
    gw = np.zeros((n, n))
    gb = np.zeros(n)
    for mu in range(m):
        for i in range(n):
            h = sum(w[i, j] * p[mu, j] for j in range(n) if j != i) + b[i]
            r = lam * h - p[mu, i]
            loss += 0.5 * r * r
            for j in range(n):
                if j != i:
                    gw[i, j] += lam * r * p[mu, j]
            gb[i] += lam * r
    loss += 0.5 * alpha * (sum(w[i, j] ** 2 for i in range(n) for j in range(n)) + sum(b**2))
    for i in range(n):
        for j in range(n):
            if i != j:
                gw[i, j] += alpha * w[i, j]
    gb += alpha * b
    return loss, gw, gb


def test_descent_l2_loss_and_gradient_match_loops_and_finite_differences() -> None:
    p = random_patterns(5, 9, generator(0, "dl2"))
    w, b = _random_params(9, 0, symmetric=False)
    lam, alpha = 0.5, 0.01
    loss, gw, gb = descent_l2_loss(p, w, b, lam, alpha)
    ref_loss, ref_gw, ref_gb = _descent_l2_loop(p.double().numpy(), w.numpy(), b.numpy(), lam, alpha)
    assert float(loss) == pytest.approx(ref_loss, rel=1e-12)
    assert np.allclose(gw.numpy(), ref_gw, atol=1e-12) and np.allclose(gb.numpy(), ref_gb, atol=1e-12)
    # central finite differences along a few off-diagonal weights and biases
    eps = 1e-6
    for i, j in [(0, 1), (3, 7), (8, 2)]:
        d = torch.zeros_like(w)
        d[i, j] = eps
        up = float(descent_l2_loss(p, w + d, b, lam, alpha)[0])
        down = float(descent_l2_loss(p, w - d, b, lam, alpha)[0])
        assert (up - down) / (2 * eps) == pytest.approx(float(gw[i, j]), rel=1e-6, abs=1e-8)
    for k in [0, 5]:
        d = torch.zeros_like(b)
        d[k] = eps
        up = float(descent_l2_loss(p, w, b + d, lam, alpha)[0])
        down = float(descent_l2_loss(p, w, b - d, lam, alpha)[0])
        assert (up - down) / (2 * eps) == pytest.approx(float(gb[k]), rel=1e-6, abs=1e-8)


def _ridge_per_neuron(p: np.ndarray, lam: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Independent reference: for each neuron drop its own column, then solve the normal equations."""
    m, n = p.shape
    w = np.zeros((n, n))
    b = np.zeros(n)
    for i in range(n):
        z = np.hstack([np.delete(p, i, axis=1), np.ones((m, 1))])
        theta = np.linalg.solve(lam**2 * z.T @ z + alpha * np.eye(n), lam * z.T @ p[:, i])
        w[i, np.arange(n) != i] = theta[:-1]
        b[i] = theta[-1]
    return w, b


@pytest.mark.parametrize(("n", "m"), [(10, 4), (10, 10), (12, 20)])
def test_descent_l2_weights_are_the_minimiser(n: int, m: int) -> None:
    p = random_patterns(m, n, generator(1, "dl2-min", n, m))
    w, b = descent_l2_weights(p)
    ref_w, ref_b = _ridge_per_neuron(p.double().numpy(), 0.5, 1e-3)
    assert torch.all(w.diagonal() == 0)
    assert np.allclose(w.numpy(), ref_w, atol=1e-9) and np.allclose(b.numpy(), ref_b, atol=1e-9)
    # the gradient vanishes there
    _, gw, gb = descent_l2_loss(p, w, b)
    assert float(gw.abs().max()) < 1e-9 and float(gb.abs().max()) < 1e-9
    if m < n // 2:  # well conditioned: plain gradient descent from zero reaches the same point
        z = torch.cat([p.double(), torch.ones(m, 1, dtype=torch.float64)], 1)
        step = 1.0 / (0.25 * float(torch.linalg.matrix_norm(z, 2)) ** 2 + 1e-3)  # 1 / Lipschitz
        wd, bd = torch.zeros_like(w), torch.zeros_like(b)
        for _ in range(500):
            _, gw, gb = descent_l2_loss(p, wd, bd)
            wd, bd = wd - step * gw, bd - step * gb
        assert torch.allclose(wd, w, atol=1e-8) and torch.allclose(bd, b, atol=1e-8)


def test_descent_l2_without_bias_and_validation() -> None:
    p = random_patterns(6, 10, generator(2, "dl2-nobias"))
    w, b = descent_l2_weights(p, bias=False)
    assert torch.all(b == 0)
    _, gw, _ = descent_l2_loss(p, w, b)
    assert float(gw.abs().max()) < 1e-9  # the minimiser over W with b held at 0
    with pytest.raises(ValueError, match="alpha > 0"):
        descent_l2_weights(p, alpha=0.0)


# ---------------------------------------------------------------- minimum probability flow


def _energy(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return -0.5 * x @ w @ x - b @ x


def _mpf_brute_force(p: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """K = sum over patterns and every single-bit flip of exp((E(x) - E(x')) / 2), explicit energies."""
    total = torch.zeros((), dtype=torch.float64)
    for x in p.double():
        e = _energy(x, w, b)
        for k in range(len(x)):
            flipped = x.clone()
            flipped[k] = -flipped[k]
            total = total + torch.exp((e - _energy(flipped, w, b)) / 2)
    return total


def test_mpf_objective_and_gradient_match_brute_force_flips() -> None:
    n = 8
    p = random_patterns(4, n, generator(3, "mpf"))
    w, b = _random_params(n, 3, symmetric=True)
    k, gw, gb = mpf_objective(p, w, b)
    # brute force: free parameters are the upper triangle (W symmetric, zero diagonal) and b
    iu = torch.triu_indices(n, n, 1)
    u = w[iu[0], iu[1]].clone().requires_grad_(True)
    bb = b.clone().requires_grad_(True)
    sym = torch.zeros(n, n, dtype=torch.float64).index_put((iu[0], iu[1]), u)
    ref = _mpf_brute_force(p, sym + sym.T, bb)
    ref.backward()
    assert float(k) == pytest.approx(ref.item(), rel=1e-12)
    assert u.grad is not None and bb.grad is not None
    assert torch.allclose(gw[iu[0], iu[1]], u.grad, rtol=1e-10, atol=1e-12)
    assert torch.allclose(gw, gw.T) and torch.all(gw.diagonal() == 0)
    assert torch.allclose(gb, bb.grad, rtol=1e-10, atol=1e-12)
    # finite differences along one symmetric pair and one bias
    eps = 1e-6
    d = torch.zeros(n, n, dtype=torch.float64)
    d[2, 5] = d[5, 2] = eps
    fd = (float(mpf_objective(p, w + d, b)[0]) - float(mpf_objective(p, w - d, b)[0])) / (2 * eps)
    assert fd == pytest.approx(float(gw[2, 5]), rel=1e-6)
    db = torch.zeros(n, dtype=torch.float64)
    db[4] = eps
    fd = (float(mpf_objective(p, w, b + db)[0]) - float(mpf_objective(p, w, b - db)[0])) / (2 * eps)
    assert fd == pytest.approx(float(gb[4]), rel=1e-6)


def test_mpf_weights_are_symmetric_and_lower_the_flow() -> None:
    p = random_patterns(6, 12, generator(4, "mpf-fit"))
    w, b = mpf_weights(p)
    assert torch.equal(w, w.T) and torch.all(w.diagonal() == 0)
    k0 = float(mpf_objective(p, torch.zeros_like(w), torch.zeros_like(b))[0])
    assert k0 == 6 * 12  # every flow term is exp(0) at W = 0
    assert float(mpf_objective(p, w, b)[0]) < 1e-3 * k0
    again = mpf_weights(p)
    assert torch.equal(again[0], w) and torch.equal(again[1], b)  # deterministic
    w0, b0 = mpf_weights(p, bias=False)
    assert torch.all(b0 == 0)
    assert recall_score(linear_field(w0, b0), p) == 1.0


def test_mpf_flow_stays_finite_for_huge_fields() -> None:
    p = random_patterns(3, 6, generator(5, "mpf-big"))
    w = -1e3 * (p.double().T @ p.double())  # anti-Hebbian: aligned fields of about -1e3
    w.fill_diagonal_(0.0)
    k, gw, gb = mpf_objective(p, w, torch.zeros(6, dtype=torch.float64))
    assert torch.isfinite(k) and torch.isfinite(gw).all() and torch.isfinite(gb).all()


# ---------------------------------------------------------------- storage


def test_linear_field_adds_the_bias() -> None:
    w = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([0.5, -3.0], dtype=torch.float64)
    h = linear_field(w, b)(torch.tensor([[1.0, -1.0]]))
    assert h.tolist() == [[-0.5, -2.0]]
    states, _ = recall(linear_field(w, b), torch.tensor([[1.0, 1.0]]))
    assert states.tolist() == [[-1.0, -1.0]]  # the bias of neuron 1 wins over its input


@pytest.mark.parametrize("method", ["descent-l2", "mpf"])
def test_rules_store_above_hebbian_capacity(method: str) -> None:
    p = random_patterns(15, 50, generator(6, "load-0.3"))  # alpha = 0.3 > 0.138
    assert recall_score(linear_field(hebbian_weights(p)), p) < 1.0
    field = rule_field(method, p)
    assert field is not None
    states, steps = recall(field, p)
    assert torch.equal(states, p) and steps.tolist() == [1] * 15  # every pattern is a fixed point
    assert recall_score(field, p) == 1.0


@pytest.mark.parametrize("method", ["descent-l2", "mpf"])
def test_rules_store_three_quarters_of_a_pattern_per_neuron(method: str) -> None:
    p = random_patterns(24, 32, generator(7, "load-0.75"))
    field = rule_field(method, p)
    assert field is not None
    assert recall_score(field, p) == 1.0
    assert recall_score(linear_field(hebbian_weights(p)), p) < 0.9


def test_mpf_stores_above_one_pattern_per_neuron_where_descent_l2_fails() -> None:
    p = random_patterns(48, 32, generator(8, "load-1.5"))  # alpha = 1.5
    mpf = rule_field("mpf", p)
    dl2 = rule_field("descent-l2", p)
    assert mpf is not None and dl2 is not None
    assert recall_score(mpf, p) == 1.0
    assert recall_score(dl2, p) < 0.95


def test_capacity_methods_include_the_new_rules() -> None:
    assert {"descent-l2", "mpf"} <= set(METHODS) and {"descent-l2", "mpf"} <= set(RULES)
    cfg = CapacityConfig(methods=("descent-l2", "mpf"))
    point = run_point(MemoryConfig(n_neurons=20), 0.5, 0, cfg.methods)
    assert point["scores"] == {"descent-l2": 1.0, "mpf": 1.0}


def test_online_storage_leaves_out_the_batch_rules() -> None:
    memory = MemoryConfig(n_neurons=16, max_epochs=4, check_every=2)
    out = online_storage(memory, n_total=4, group_size=2, epochs_per_group=2, n_early=2)
    assert set(out["curves"]) == {"infomorphic", "hebbian"}
