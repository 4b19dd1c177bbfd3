"""Tests for infomorphic.nn.functional: aggregation, activations, sampling, lateral masks.

Expected activation values are computed by hand from the closed forms (bivariate: Makkeh et al.
2025; trivariate: Schneider et al. 2025, appendix A.4) with math.exp, not with the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch

from infomorphic.nn.functional import (
    ACTIVATION_DEFAULTS,
    ACTIVATIONS,
    aggregate,
    bivariate_activation,
    feedforward_activation,
    lateral_mask,
    quadrivariate_activation,
    resolve_activation,
    sample_binary,
    trivariate_activation,
)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _grid(seed: int = 0, n: int = 50) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=gen, dtype=torch.float64) * 3


# ------------------------------------------------------------------------ aggregate
def test_aggregate_is_masked_weighted_sum_plus_bias() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=gen)
    w = torch.randn(3, 5, generator=gen, requires_grad=True)
    b = torch.randn(3, generator=gen)
    mask = (torch.rand(3, 5, generator=gen) > 0.5).float()
    out = aggregate(x, w, b, mask)
    assert out.shape == (7, 3)
    expected = x @ (w * mask).T + b
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert w.grad is not None
    assert torch.all(w.grad[mask == 0] == 0)
    assert torch.all(w.grad[mask == 1] != 0)


def test_aggregate_without_bias_or_mask() -> None:
    x = torch.tensor([[1.0, 2.0]])
    w = torch.tensor([[3.0, -1.0], [0.5, 0.5]])
    torch.testing.assert_close(aggregate(x, w), torch.tensor([[1.0, 1.5]]))


# ---------------------------------------------------------------------- activations
def test_builtin_activation_names_and_defaults() -> None:
    assert set(ACTIVATIONS) == {"feedforward", "bivariate", "trivariate", "quadrivariate", "step"}
    assert ACTIVATION_DEFAULTS["step"] == {} and ACTIVATION_DEFAULTS["feedforward"] == {}
    assert ACTIVATION_DEFAULTS["bivariate"] == {"k1": 0.5, "k2": 2.0}
    assert ACTIVATION_DEFAULTS["trivariate"] == {"alpha1": 0.1, "alpha2": 0.1, "beta1": 2.0, "beta2": 2.0}
    assert ACTIVATION_DEFAULTS["quadrivariate"] == {
        "alpha1": 0.1,
        "alpha2": 0.1,
        "alpha3": 0.1,
        "beta1": 2.0,
        "beta2": 2.0,
        "beta3": 2.0,
    }
    assert ACTIVATIONS["quadrivariate"] is quadrivariate_activation


def test_feedforward_activation_is_identity_on_f() -> None:
    f, c = _grid(0), _grid(1)
    assert torch.equal(feedforward_activation(f, c, c), f)


def test_bivariate_k1_one_is_f() -> None:
    f, c = _grid(0), _grid(1)
    assert torch.equal(bivariate_activation(f, c, k1=1.0), f)
    assert torch.equal(bivariate_activation(f, c, k1=1.0, k2=7.0), f)


@pytest.mark.parametrize("k1", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_bivariate_zero_context_is_f(k1: float) -> None:
    f = _grid(2)
    out = bivariate_activation(f, torch.zeros_like(f), k1=k1)
    torch.testing.assert_close(out, f, rtol=1e-12, atol=1e-12)


def test_bivariate_hand_computed() -> None:
    # A(2, 0.5) with k1 = 0.5, k2 = 2: 2 * (0.5 + 0.5 * 2 * sigmoid(2 * 2 * 0.5)) = 2 * (0.5 + sigmoid(2))
    expected = 2.0 * (0.5 + _sigmoid(2.0))
    assert expected == pytest.approx(2.761594155955765, abs=1e-12)
    out = bivariate_activation(torch.tensor(2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    assert float(out) == pytest.approx(expected, abs=1e-12)
    # k1 = 0.9, k2 = 2, f = -1.5, c = 1: -1.5 * (0.9 + 0.1 * 2 * sigmoid(-3))
    out = bivariate_activation(
        torch.tensor(-1.5, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64), k1=0.9, k2=2.0
    )
    assert float(out) == pytest.approx(-1.5 * (0.9 + 0.2 * _sigmoid(-3.0)), abs=1e-12)


def test_bivariate_context_amplifies_agreement() -> None:
    # context of the same sign as f amplifies |A| (above |f| for k1 < 1), opposite sign attenuates
    f = torch.tensor([1.0, -1.0])
    assert torch.all(bivariate_activation(f, f).abs() > f.abs())
    assert torch.all(bivariate_activation(f, -f).abs() < f.abs())


def test_trivariate_hand_computed() -> None:
    # f = 1, c = 2, l = -1, alpha = 0.1, beta = 2:
    # 1 * (0.8 + 0.1 * sigmoid(4) + 0.1 * sigmoid(-2))
    expected = 0.8 + 0.1 * _sigmoid(4.0) + 0.1 * _sigmoid(-2.0)
    assert expected == pytest.approx(0.9101216712060026, abs=1e-12)
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    assert float(trivariate_activation(t(1.0), t(2.0), t(-1.0))) == pytest.approx(expected, abs=1e-12)
    # other parameters: f = -2, c = 0.5, l = 1, a1 = 0.2, a2 = 0.3, b1 = 1, b2 = 3
    out = trivariate_activation(t(-2.0), t(0.5), t(1.0), alpha1=0.2, alpha2=0.3, beta1=1.0, beta2=3.0)
    expected = -2.0 * (0.5 + 0.2 * _sigmoid(-1.0) + 0.3 * _sigmoid(-6.0))
    assert float(out) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("a1, a2", [(0.1, 0.1), (0.2, 0.3), (0.0, 0.5)])
def test_trivariate_without_modulators(a1: float, a2: float) -> None:
    f = _grid(3)
    zero = torch.zeros_like(f)
    out = trivariate_activation(f, zero, zero, alpha1=a1, alpha2=a2, beta1=2.0, beta2=5.0)
    expected = f * (1 - a1 - a2 + a1 / 2 + a2 / 2)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_trivariate_default_without_modulators_is_0_9_f() -> None:
    f = _grid(4)
    zero = torch.zeros_like(f)
    torch.testing.assert_close(trivariate_activation(f, zero, zero), 0.9 * f, rtol=1e-12, atol=1e-12)


def test_activations_broadcast_shapes() -> None:
    f = torch.randn(4, 3)
    assert bivariate_activation(f, torch.randn(4, 3)).shape == (4, 3)
    assert trivariate_activation(f, torch.randn(4, 3), torch.randn(4, 3)).shape == (4, 3)
    assert quadrivariate_activation(f, torch.randn(4, 3), torch.randn(4, 3), torch.randn(3)).shape == (4, 3)


# ------------------------------------------------------- quadrivariate (four input classes)
def test_quadrivariate_hand_computed() -> None:
    t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    # f = 1, c = 2, l = -1, b = 0.5, defaults: 1 * (0.8 + 0.1 sig(4) + 0.1 sig(-2) + 0.1 (2 sig(1) - 1))
    expected = 0.8 + 0.1 * _sigmoid(4.0) + 0.1 * _sigmoid(-2.0) + 0.1 * (2 * _sigmoid(1.0) - 1)
    assert expected == pytest.approx(0.9563333869, abs=1e-10)
    out = quadrivariate_activation(t(1.0), t(2.0), t(-1.0), t(0.5))
    assert float(out) == pytest.approx(expected, abs=1e-12)
    # f = -2, c = 0.5, l = 1, b = 1.5, a = (0.2, 0.3, 0.25), beta = (1, 3, 0.5)
    out = quadrivariate_activation(
        t(-2.0), t(0.5), t(1.0), t(1.5), alpha1=0.2, alpha2=0.3, alpha3=0.25, beta1=1.0, beta2=3.0, beta3=0.5
    )
    expected = -2.0 * (0.5 + 0.2 * _sigmoid(-1.0) + 0.3 * _sigmoid(-6.0) + 0.25 * math.tanh(-1.5 / 2))
    assert float(out) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("params", [{}, {"alpha1": 0.2, "alpha2": 0.3, "beta1": 1.0, "beta2": 5.0}])
def test_quadrivariate_with_silent_fourth_class_is_exactly_trivariate(
    dtype: torch.dtype, params: dict[str, float]
) -> None:
    """b = 0: the same values and the same gradients with respect to f, c and l, bit for bit."""
    gen = torch.Generator().manual_seed(7)
    f, c, l = (torch.randn(200, generator=gen).mul(4).to(dtype).requires_grad_(True) for _ in range(3))  # noqa: E741
    b = torch.zeros(200, dtype=dtype, requires_grad=True)
    quad = quadrivariate_activation(f, c, l, b, alpha3=0.3, beta3=3.0, **params)
    tri = trivariate_activation(f, c, l, **params)
    assert torch.equal(quad, tri)
    weights = torch.randn(200, generator=gen).to(dtype)
    g_quad = torch.autograd.grad((quad * weights).sum(), (f, c, l, b))
    g_tri = torch.autograd.grad((tri * weights).sum(), (f, c, l))
    for a, e in zip(g_quad, g_tri):
        assert torch.equal(a, e)
    # the silent class still gets a gradient (a3 b3 f^2 / 2), so it can start to learn
    torch.testing.assert_close(g_quad[3], weights * 0.3 * 3.0 * f.detach() ** 2 / 2)


def test_quadrivariate_fourth_class_is_zero_centred_and_bounded() -> None:
    f, c, l, b = _grid(5), _grid(6), _grid(7), _grid(8)  # noqa: E741 (the input classes F, C, L, B)
    zero = quadrivariate_activation(f, c, l, torch.zeros_like(b))
    up, down = quadrivariate_activation(f, c, l, b), quadrivariate_activation(f, c, l, -b)
    torch.testing.assert_close(up + down, 2 * zero, rtol=1e-12, atol=1e-12)  # odd in b around b = 0
    agree = f * b > 0
    assert torch.all(up.abs()[agree] > zero.abs()[agree])  # agreement amplifies, disagreement attenuates
    assert torch.all(up.abs()[~agree & (f * b < 0)] < zero.abs()[~agree & (f * b < 0)])
    assert torch.all((up - zero).abs() <= 0.1 * f.abs() + 1e-12)
    # the bracket stays positive for a3 <= 1 - a1 - a2: never flips the sign of f
    extreme = quadrivariate_activation(f, -1e3 * f.sign(), -1e3 * f.sign(), -1e3 * f.sign(), alpha3=0.8)
    assert torch.all(extreme * f >= 0)


# ------------------------------------------------------------------- resolution
def test_resolve_activation_by_name_and_callable() -> None:
    assert resolve_activation("bivariate") is bivariate_activation
    assert resolve_activation("trivariate") is trivariate_activation
    assert resolve_activation("feedforward") is feedforward_activation

    def custom(f: torch.Tensor, *mods: torch.Tensor) -> torch.Tensor:
        return 2 * f

    assert resolve_activation(custom) is custom


def test_resolve_activation_unknown_lists_names() -> None:
    with pytest.raises(ValueError) as info:
        resolve_activation("relu")
    message = str(info.value)
    assert "'relu'" in message
    for name in ("feedforward", "bivariate", "trivariate"):
        assert name in message


# ---------------------------------------------------------------------- sampling
def test_sample_binary_values_and_dtype() -> None:
    theta = torch.rand(100, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = sample_binary(theta, torch.Generator().manual_seed(1))
    assert out.shape == theta.shape
    assert out.dtype == torch.float64
    assert set(out.unique().tolist()) <= {-1.0, 1.0}


def test_sample_binary_has_no_gradient() -> None:
    theta = torch.full((10,), 0.5, requires_grad=True)
    out = sample_binary(theta, torch.Generator().manual_seed(0))
    assert not out.requires_grad


def test_sample_binary_extremes_are_deterministic() -> None:
    gen = torch.Generator().manual_seed(0)
    assert torch.all(sample_binary(torch.zeros(1000), gen) == -1)
    assert torch.all(sample_binary(torch.ones(1000), gen) == 1)


def test_sample_binary_mean_matches_theta() -> None:
    probs = torch.tensor([0.05, 0.25, 0.5, 0.7, 0.95])
    n = 200_000
    out = sample_binary(probs.expand(n, -1).contiguous(), torch.Generator().manual_seed(123))
    mean = out.double().mean(0)
    expected = 2 * probs.double() - 1
    # standard error of the mean of +-1 samples: 2 sqrt(theta (1 - theta) / n) <= 0.0023; allow ~6 sigma
    stderr = 2 * torch.sqrt(probs.double() * (1 - probs.double()) / n)
    assert torch.all((mean - expected).abs() < 6 * stderr + 1e-12), (mean, expected)


def test_sample_binary_reproducible_with_generator() -> None:
    theta = torch.rand(50, 20, generator=torch.Generator().manual_seed(0))
    a = sample_binary(theta, torch.Generator().manual_seed(7))
    b = sample_binary(theta, torch.Generator().manual_seed(7))
    c = sample_binary(theta, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ----------------------------------------------------------------- lateral masks
@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_lateral_mask_all_to_all(n: int) -> None:
    mask = lateral_mask(n)
    assert mask.shape == (n, n)
    assert mask.dtype == torch.get_default_dtype()
    assert torch.equal(mask, 1 - torch.eye(n))


@pytest.mark.parametrize("m", [11, 12, 100])
def test_lateral_mask_enough_partners_is_all_to_all(m: int) -> None:
    assert torch.equal(lateral_mask(12, m), 1 - torch.eye(12))


@pytest.mark.parametrize("m", [0, 1, 3, 10])
def test_lateral_mask_exactly_m_partners(m: int) -> None:
    n = 12
    mask = lateral_mask(n, m, torch.Generator().manual_seed(0))
    assert mask.shape == (n, n)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(mask.diagonal() == 0)
    assert torch.all(mask.sum(1) == m)


def test_lateral_mask_reproducible_with_generator() -> None:
    a = lateral_mask(30, 5, torch.Generator().manual_seed(3))
    b = lateral_mask(30, 5, torch.Generator().manual_seed(3))
    c = lateral_mask(30, 5, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_lateral_mask_negative_partners() -> None:
    with pytest.raises(ValueError, match="max_partners"):
        lateral_mask(5, -1)


def test_sample_binary_fires_exactly_when_the_draw_is_below_theta() -> None:
    """+1 iff u < theta for the generator's uniform draw u (u == theta gives -1)."""
    u = torch.rand(1000, generator=torch.Generator().manual_seed(3))
    theta = torch.rand(1000, generator=torch.Generator().manual_seed(4))
    theta[:10] = u[:10]  # ties
    spikes = sample_binary(theta, torch.Generator().manual_seed(3))
    assert torch.equal(spikes, torch.where(u < theta, 1.0, -1.0))
    assert bool((spikes[:10] == -1).all())
