"""Tests for infomorphic.nn.layer.InfomorphicLayer: masks, fixed weights, locality, binning, errors."""

from __future__ import annotations

import math

import pytest
import torch

from infomorphic.goals import Goal
from infomorphic.nn.functional import lateral_mask, lateral_partners
from infomorphic.nn.layer import InfomorphicLayer, LayerOutput

N, NF, NC = 6, 12, 4
TPE = Goal.preset("trivariate-mnist-tpe")


def _trivariate(seed: int = 0, dtype: torch.dtype = torch.float32, **kwargs) -> InfomorphicLayer:
    gen = torch.Generator().manual_seed(seed)
    kwargs.setdefault("masks", {"L": lateral_mask(N)})
    layer = InfomorphicLayer(N, {"F": NF, "C": NC, "L": N}, TPE, generator=gen, **kwargs)
    return layer.to(dtype)


def _inputs(seed: int = 1, batch: int = 64, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NC, (batch,), generator=gen)
    return {
        "F": (torch.randn(batch, NF, generator=gen) * 3).to(dtype),
        "C": torch.nn.functional.one_hot(labels, NC).to(dtype),
        "L": (torch.randint(0, 2, (batch, N), generator=gen) * 2 - 1).to(dtype),
    }


def _binary_entropy_bits(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log2(p) + (1 - p) * torch.log2(1 - p))


# -------------------------------------------------------------------- structure
def test_parameters_shapes_and_init_range() -> None:
    layer = _trivariate()
    assert set(layer.weight) == {"F", "C", "L"}
    assert set(layer.bias) == {"F", "C", "L"}
    for name, size in (("F", NF), ("C", NC), ("L", N)):
        w, b = layer.weight[name], layer.bias[name]
        assert w.shape == (N, size)
        assert b.shape == (N,)
        bound = 1 / math.sqrt(size)
        assert w.abs().max() <= bound
        assert b.abs().max() <= bound
    assert torch.all(layer.weight["L"].diagonal() == 0)


def test_init_reproducible_with_generator() -> None:
    a, b, c = _trivariate(seed=5), _trivariate(seed=5), _trivariate(seed=6)
    for name in ("F", "C", "L"):
        assert torch.equal(a.weight[name], b.weight[name])
    assert not torch.equal(a.weight["F"], c.weight["F"])


def test_forward_output_shapes() -> None:
    layer = _trivariate()
    out = layer(_inputs(batch=10))
    assert isinstance(out, LayerOutput)
    assert out.aggregates.shape == (10, N, 3)
    assert out.theta.shape == (10, N)
    assert torch.all((out.theta > 0) & (out.theta < 1))


def test_default_activation_by_number_of_sources() -> None:
    assert InfomorphicLayer(2, {"F": 3, "C": 2}).activation_name == "bivariate"
    assert InfomorphicLayer(2, {"F": 3, "C": 2, "L": 2}).activation_name == "trivariate"
    four = InfomorphicLayer(2, {"F": 3, "C": 2, "L": 2, "B": 1})
    assert four.activation_name == "quadrivariate"
    assert four.activation_params == {
        "alpha1": 0.1,
        "alpha2": 0.1,
        "alpha3": 0.1,
        "beta1": 2.0,
        "beta2": 2.0,
        "beta3": 2.0,
    }


def test_masked_weights_stay_zero_under_adam_with_weight_decay() -> None:
    gen = torch.Generator().manual_seed(0)
    mask_f = (torch.rand(N, NF, generator=gen) > 0.5).float()
    layer = _trivariate(masks={"F": mask_f, "L": lateral_mask(N, 2, gen)})
    masked = {"F": mask_f == 0, "L": layer.mask("L") == 0}
    for name, where in masked.items():
        assert torch.all(layer.weight[name][where] == 0)
    opt = torch.optim.Adam(layer.parameters(), lr=0.05, weight_decay=0.01)
    before = {k: w.detach().clone() for k, w in layer.weight.items()}
    for step in range(5):
        out = layer(_inputs(seed=step))
        loss = -layer.local_goal(out).sum()
        opt.zero_grad()
        loss.backward()
        for name, where in masked.items():
            assert torch.all(layer.weight[name].grad[where] == 0)
        opt.step()
    for name, where in masked.items():
        assert torch.all(layer.weight[name][where] == 0), name
        # the unmasked weights did learn
        assert not torch.equal(layer.weight[name][~where], before[name][~where])
    assert torch.all(layer.effective_weight("F")[masked["F"]] == 0)


def test_fixed_weights_are_buffers_and_do_not_change() -> None:
    layer = InfomorphicLayer(
        NC,
        {"F": NF, "C": NC},
        Goal.preset("readout"),
        fixed_weights={"C": torch.eye(NC)},
        binning="adaptive",
        generator=torch.Generator().manual_seed(0),
    )
    assert "C" not in layer.weight
    assert "C" not in layer.bias
    names = [n for n, _ in layer.named_parameters()]
    assert names and all("C" not in n for n in names)
    assert any(buf is layer.fixed_C for buf in layer.buffers())
    assert "fixed_C" in layer.state_dict()
    assert torch.equal(layer.effective_weight("C"), torch.eye(NC))
    opt = torch.optim.Adam(layer.parameters(), lr=0.05, weight_decay=0.01)
    inputs = _inputs()
    for _ in range(3):
        loss = -layer.local_goal(layer({"F": inputs["F"], "C": inputs["C"]})).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(layer.fixed_C, torch.eye(NC))
    # the fixed context without a bias aggregates to exactly the label element of each neuron
    out = layer({"F": inputs["F"], "C": inputs["C"]})
    assert torch.equal(out.aggregates[..., 1], inputs["C"])


# --------------------------------------------------------------------- locality
def _goal_grads(layer: InfomorphicLayer, inputs: dict[str, torch.Tensor], pick) -> list[torch.Tensor]:
    """Gradients of ``pick(goals)`` w.r.t. all weights and biases, from a fresh forward pass."""
    params = [layer.weight[k] for k in layer.sources] + [layer.bias[k] for k in layer.sources]
    goals = layer.local_goal(layer(inputs))
    assert goals.shape == (N,)
    grads = torch.autograd.grad(pick(goals), params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _sparse_trivariate(dtype: torch.dtype = torch.float64) -> InfomorphicLayer:
    """F and L stored sparsely (partner values (N, P) and indices), C dense."""
    gen = torch.Generator().manual_seed(0)
    partners = {
        "F": torch.rand(N, NF, generator=gen).topk(4, dim=1).indices,
        "L": lateral_partners(N, 2, gen),
    }
    layer = InfomorphicLayer(
        N, {"F": NF, "C": NC, "L": N}, TPE, partners=partners, sparse=True, generator=gen
    )
    assert layer.is_sparse("F") and layer.is_sparse("L") and layer.weight["L"].shape == (N, 2)
    return layer.to(dtype)


@pytest.mark.parametrize("storage", ["masked", "sparse"])
def test_locality_per_neuron_gradients_are_block_diagonal(storage: str) -> None:
    layer = _trivariate(dtype=torch.float64) if storage == "masked" else _sparse_trivariate()
    inputs = _inputs(dtype=torch.float64)
    # the forward pass is deterministic, so each neuron's goal can get its own graph
    per_neuron = [_goal_grads(layer, inputs, lambda g, j=j: g[j]) for j in range(N)]
    for j, grads in enumerate(per_neuron):
        others = torch.ones(N, dtype=torch.bool)
        others[j] = False
        for g in grads:  # weights (N, in) or partner values (N, P), biases (N,): only row j may be non-zero
            assert torch.all(g[others] == 0), f"goal of neuron {j} has a gradient on other neurons' weights"
        assert torch.any(grads[0][j] != 0)  # its own feedforward weights do get a gradient
        assert torch.any(grads[2][j] != 0)  # and its own lateral weights
    total = _goal_grads(layer, inputs, lambda g: g.sum())
    for i, g_sum in enumerate(total):
        for j in range(N):
            torch.testing.assert_close(g_sum[j], per_neuron[j][i][j], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(g_sum, sum(pn[i] for pn in per_neuron), rtol=1e-9, atol=1e-12)


def test_goal_gradient_can_be_taken_twice_with_retain_graph() -> None:
    # the PID's hand-written backward must not free what a retained graph still needs
    layer = _trivariate(dtype=torch.float64)
    inputs = _inputs(dtype=torch.float64)
    goals = layer.local_goal(layer(inputs))
    w = layer.weight["F"]
    (g0,) = torch.autograd.grad(goals[0], w, retain_graph=True)
    (g1,) = torch.autograd.grad(goals[1], w)
    assert torch.all(g0[1:] == 0) and torch.all(g1[0] == 0)
    torch.testing.assert_close(g0[0], _goal_grads(layer, inputs, lambda g: g[0])[0][0])


def test_inputs_are_detached() -> None:
    layer = _trivariate()
    inputs = {k: v.clone().requires_grad_(True) for k, v in _inputs().items()}
    out = layer(inputs)
    assert out.theta.requires_grad
    layer.local_goal(out).sum().backward()
    for name, x in inputs.items():
        assert x.grad is None, name
    assert layer.weight["F"].grad is not None


def test_missing_input_class_equals_zeros() -> None:
    layer = _trivariate()
    inputs = _inputs(batch=16)
    for missing in ("C", "L", ("C", "L")):
        drop = (missing,) if isinstance(missing, str) else missing
        partial = {k: v for k, v in inputs.items() if k not in drop}
        zeros = {k: (torch.zeros_like(v) if k in drop else v) for k, v in inputs.items()}
        a, b = layer(partial), layer(zeros)
        assert torch.equal(a.aggregates, b.aggregates), missing
        assert torch.equal(a.theta, b.theta), missing
        for k in drop:
            i = layer.sources.index(k)
            assert torch.equal(a.aggregates[..., i], layer.bias[k].detach().expand(16, -1))


def test_missing_input_without_bias_is_zero() -> None:
    layer = InfomorphicLayer(3, {"F": 4, "C": 2}, bias=False)
    out = layer({"F": torch.randn(5, 4)})
    assert torch.equal(out.aggregates[..., 1], torch.zeros(5, 3))


# ------------------------------------------------------------------------ errors
def test_input_errors() -> None:
    layer = _trivariate()
    good = _inputs(batch=8)
    with pytest.raises(ValueError, match=r"unknown input classes \['X'\]"):
        layer({**good, "X": torch.zeros(8, 3)})
    with pytest.raises(ValueError, match=r"input 'F' must have shape \(B, 12\), got \(8, 11\)"):
        layer({**good, "F": torch.zeros(8, 11)})
    with pytest.raises(ValueError, match=r"input 'C' must have shape \(B, 4\), got \(8,\)"):
        layer({**good, "C": torch.zeros(8)})
    with pytest.raises(ValueError, match="no inputs"):
        layer({})
    with pytest.raises(ValueError, match=r"'C' has 7 samples"):
        layer({**good, "C": torch.zeros(7, NC)})


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="2 to 4 input classes"):
        InfomorphicLayer(3, {"F": 4})
    with pytest.raises(ValueError, match="2 to 4 input classes"):
        InfomorphicLayer(3, {"A": 1, "B": 1, "C": 1, "D": 1, "E": 1})
    with pytest.raises(ValueError, match="n_neurons must be >= 1"):
        InfomorphicLayer(0, {"F": 4, "C": 2})
    with pytest.raises(ValueError, match="binning must be 'fixed' or 'adaptive'"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, binning="quantile")
    with pytest.raises(ValueError, match="n_bins must be >= 2"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, n_bins=1)
    with pytest.raises(ValueError, match=r"mask of 'F' must have shape \(3, 4\)"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, masks={"F": torch.ones(4, 3)})
    with pytest.raises(ValueError, match=r"fixed weight of 'C' must have shape \(3, 2\)"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, fixed_weights={"C": torch.eye(2)})
    with pytest.raises(ValueError, match="unknown input class 'L'"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, masks={"L": torch.ones(3, 3)})
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, activation="tanh")


def test_goal_sources_must_match_layer() -> None:
    with pytest.raises(
        ValueError, match=r"goal is written for sources \['F', 'C'\] but the layer has \['F', 'L'\]"
    ):
        InfomorphicLayer(3, {"F": 4, "L": 3}, Goal.preset("readout"))
    with pytest.raises(ValueError, match="goal is written for sources"):
        InfomorphicLayer(3, {"F": 4, "C": 2}, TPE)
    # renamed sources fit
    InfomorphicLayer(3, {"F": 4, "L": 3}, Goal.preset("readout").with_sources("FL"))


def test_local_goal_needs_a_goal() -> None:
    layer = InfomorphicLayer(3, {"F": 4, "C": 2})
    with pytest.raises(ValueError, match="no goal"):
        layer.local_goal(layer({"F": torch.randn(5, 4)}))


# ------------------------------------------------------------- atoms and goal
def test_last_atoms_shape_and_sum_to_output_entropy() -> None:
    layer = _trivariate(dtype=torch.float64)
    assert layer.last_atoms.numel() == 0
    out = layer(_inputs(batch=128, dtype=torch.float64))
    goals = layer.local_goal(out)
    assert layer.last_atoms.shape == (N, 18)
    assert layer.last_residual_entropy.shape == (N,)
    assert not layer.last_atoms.requires_grad
    h_y = _binary_entropy_bits(out.theta.detach().mean(0))
    total = layer.last_atoms.sum(1) + layer.last_residual_entropy
    torch.testing.assert_close(total, h_y, rtol=0, atol=1e-4)
    # the goal is the gamma-weighted sum of the stored atoms
    gamma, gamma_res = TPE.gamma_tensor(torch.float64)
    expected = layer.last_atoms @ gamma + gamma_res * layer.last_residual_entropy
    torch.testing.assert_close(goals.detach(), expected, rtol=1e-9, atol=1e-9)


def test_last_atoms_float32_sum_to_output_entropy() -> None:
    layer = _trivariate()
    out = layer(_inputs(batch=128))
    layer.local_goal(out)
    h_y = _binary_entropy_bits(out.theta.detach().double().mean(0))
    total = (layer.last_atoms.sum(1) + layer.last_residual_entropy).double()
    torch.testing.assert_close(total, h_y, rtol=0, atol=1e-4)


def test_bivariate_layer_atoms() -> None:
    layer = InfomorphicLayer(
        NC,
        {"F": NF, "C": NC},
        Goal.preset("readout"),
        binning="adaptive",
        generator=torch.Generator().manual_seed(0),
    )
    inputs = _inputs(batch=64)
    layer.local_goal(layer({"F": inputs["F"], "C": inputs["C"]}))
    assert layer.last_atoms.shape == (NC, 4)


def test_extra_repr_mentions_goal() -> None:
    goal = Goal.parse("{F}{C} - 0.5*{F}", "FC")
    layer = InfomorphicLayer(3, {"F": 4, "C": 2}, goal)
    text = repr(layer)
    assert goal.to_expression() in text
    assert "goal=" in text
    assert "n_neurons=3" in text
    assert "goal=None" in repr(InfomorphicLayer(3, {"F": 4, "C": 2}))


# ----------------------------------------------------------------------- binning
def test_fixed_binning_clamps_into_range() -> None:
    layer = _trivariate()
    assert layer.bin_range == (-20.0, 20.0)
    values = torch.tensor([-1e6, -100.0, -20.0, -19.99, -0.01, 0.0, 0.01, 19.99, 20.0, 100.0, 1e6])
    aggregates = values[:, None, None].expand(-1, N, 3)
    bins = layer.bins(aggregates)
    assert bins.shape == aggregates.shape
    assert bins.dtype == torch.int32  # half the memory traffic; the PID engine takes int32 or int64
    # width 2 on [-20, 20]: floor((x + 20) / 2), clamped to [0, 19]
    expected = torch.tensor([0, 0, 0, 0, 9, 10, 10, 19, 19, 19, 19])
    assert torch.equal(bins[:, 0, 0], expected)
    assert torch.equal(bins, expected[:, None, None].expand(-1, N, 3))


def test_fixed_binning_custom_range() -> None:
    layer = InfomorphicLayer(1, {"F": 1, "C": 1}, n_bins=4, bin_range=(-1.0, 1.0))
    bins = layer.bins(torch.tensor([-5.0, -0.75, -0.25, 0.25, 0.75, 5.0])[:, None, None])
    assert bins.flatten().tolist() == [0, 0, 1, 2, 3, 3]


def test_adaptive_binning_uses_all_bins() -> None:
    layer = InfomorphicLayer(3, {"F": 4, "C": 2}, binning="adaptive")
    spread = torch.linspace(-1, 1, 201)
    scales = torch.tensor([1 / 64, 1.0, 256.0])  # per neuron (powers of 2: exact rescaling)
    aggregates = torch.stack([spread[:, None] * scales, -spread[:, None] * scales], dim=-1)  # (201, 3, 2)
    bins = layer.bins(aggregates)
    assert bins.shape == (201, 3, 2)
    for j in range(3):
        for k in range(2):
            assert sorted(bins[:, j, k].unique().tolist()) == list(range(20))
    # scale invariance per neuron
    assert torch.equal(bins[:, 0], bins[:, 2])


def test_adaptive_binning_all_zero_neuron() -> None:
    layer = InfomorphicLayer(2, {"F": 4, "C": 2}, binning="adaptive")
    aggregates = torch.zeros(10, 2, 2)
    bins = layer.bins(aggregates)
    assert torch.all((bins >= 0) & (bins < 20))
    assert bins.unique().numel() == 1
