"""Four-source infomorphic neurons (F, C, L and feedback B): a silent B gives the trivariate neuron.

References are independent of the four-source code: the trivariate layer with the same
weights (values, goals in bits and gradients), and per-neuron gradients for locality.
"""

from __future__ import annotations

import pytest
import torch

from infomorphic.goals import Goal
from infomorphic.nn.functional import lateral_mask
from infomorphic.nn.layer import InfomorphicLayer
from infomorphic.pid.kernel import load_kernel

N, NF, NC, NB = 6, 12, 4, 5
TPE = Goal.preset("trivariate-mnist-tpe")
TPE4 = Goal.resolve("trivariate-mnist-tpe", "FCLB")  # the embedded goal: atoms with B at 0


@pytest.fixture(params=["kernel", "torch"])
def pid_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the layer's PID on the compiled kernel or on the PyTorch path (INFOMORPHIC_KERNEL=0)."""
    if request.param == "kernel":
        monkeypatch.delenv("INFOMORPHIC_KERNEL", raising=False)
        assert load_kernel() is not None, "the compiled kernel did not build"
    else:
        monkeypatch.setenv("INFOMORPHIC_KERNEL", "0")
    return request.param


def _inputs(seed: int = 1, batch: int = 256) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, NC, (batch,), generator=gen)
    return {
        "F": torch.randn(batch, NF, generator=gen, dtype=torch.float64) * 3,
        "C": torch.nn.functional.one_hot(labels, NC).double(),
        "L": (torch.randint(0, 2, (batch, N), generator=gen) * 2 - 1).double(),
        "B": (torch.randint(0, 2, (batch, NB), generator=gen) * 2 - 1).double(),  # feedback spikes
    }


def _pair(binning: str, seed: int = 0) -> tuple[InfomorphicLayer, InfomorphicLayer]:
    """A trivariate layer and a four-source one with the same F, C, L weights and silent B."""
    gen = torch.Generator().manual_seed(seed)
    mask = {"L": lateral_mask(N)}
    tri = InfomorphicLayer(N, {"F": NF, "C": NC, "L": N}, TPE, masks=mask, binning=binning, generator=gen)
    quad = InfomorphicLayer(N, {"F": NF, "C": NC, "L": N, "B": NB}, TPE4, masks=mask, binning=binning)
    tri, quad = tri.double(), quad.double()
    with torch.no_grad():
        for name in "FCL":
            quad.weight[name].copy_(tri.weight[name])
            quad.bias[name].copy_(tri.bias[name])
        quad.weight["B"].zero_()
        quad.bias["B"].zero_()
    return tri, quad


def test_embedded_goal_is_the_trivariate_goal_with_b_atoms_at_zero() -> None:
    assert TPE4.sources == ("F", "C", "L", "B") and len(TPE4.atom_names) == 166
    assert TPE4.to_dict() == TPE.to_dict()  # same names, same weights, H_res kept; B atoms absent (0)
    assert TPE4 == Goal.preset("trivariate-mnist-tpe", "FCLB") == TPE.embed("FCLB")


@pytest.mark.parametrize("binning", ["fixed", "adaptive"])
def test_silent_feedback_gives_the_trivariate_layer(binning: str, pid_path: str) -> None:
    """Same theta, same goals (bits) and same gradients w.r.t. the F, C, L weights and biases."""
    tri, quad = _pair(binning)
    assert quad.activation_name == "quadrivariate"
    inputs = _inputs()
    out3 = tri({k: inputs[k] for k in "FCL"})
    out4 = quad(inputs)
    assert torch.all(out4.aggregates[..., 3] == 0)  # B is silent: a constant source
    assert torch.equal(out4.theta, out3.theta)  # the activation reduces exactly
    g3, g4 = tri.local_goal(out3), quad.local_goal(out4)
    assert g3.abs().min() > 1e-3  # non-trivial goals
    torch.testing.assert_close(g4, g3, rtol=0, atol=1e-11)
    # the atoms without B equal the trivariate atoms, those with B vanish (a constant source)
    names4 = TPE4.atom_names
    free = [names4.index(name) for name in TPE.atom_names]
    with_b = [i for i in range(len(names4)) if i not in free]
    torch.testing.assert_close(quad.last_atoms[:, free], tri.last_atoms, rtol=0, atol=1e-11)
    assert quad.last_atoms[:, with_b].abs().max() < 1e-11
    torch.testing.assert_close(quad.last_residual_entropy, tri.last_residual_entropy, rtol=0, atol=1e-12)
    # gradients of the summed goal (the training loss up to sign) w.r.t. F, C, L parameters
    params3 = [p for name in "FCL" for p in (tri.weight[name], tri.bias[name])]
    params4 = [p for name in "FCL" for p in (quad.weight[name], quad.bias[name])]
    grads3 = torch.autograd.grad(-g3.sum(), params3)
    grads4 = torch.autograd.grad(-g4.sum(), params4 + [quad.weight["B"]])
    for a, e in zip(grads4, grads3):
        assert e.abs().max() > 1e-6
        torch.testing.assert_close(a, e, rtol=1e-9, atol=1e-12)
    assert grads4[-1].abs().max() > 0  # the silent feedback weights do get a learning signal


def _goal_grads(layer: InfomorphicLayer, inputs: dict[str, torch.Tensor], pick) -> list[torch.Tensor]:
    params = [layer.weight[k] for k in layer.sources] + [layer.bias[k] for k in layer.sources]
    grads = torch.autograd.grad(pick(layer.local_goal(layer(inputs))), params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def test_four_source_locality_per_neuron_gradients_are_block_diagonal(pid_path: str) -> None:
    """Neuron j's goal depends on row j of every weight matrix only (B active, random weights)."""
    goal = Goal.parse("{F}{C}{L}{B} + {F}{B} - {FB} + 0.5*{F}{C} - 0.2*{FCLB} + 0.1*H_res", "FCLB")
    gen = torch.Generator().manual_seed(3)
    layer = InfomorphicLayer(
        N, {"F": NF, "C": NC, "L": N, "B": NB}, goal, masks={"L": lateral_mask(N)}, generator=gen
    ).double()
    with torch.no_grad():
        layer.weight["B"].mul_(4)  # a clearly non-constant feedback aggregate
    inputs = _inputs(batch=128)
    per_neuron = [_goal_grads(layer, inputs, lambda g, j=j: g[j]) for j in range(N)]
    for j, grads in enumerate(per_neuron):
        others = torch.ones(N, dtype=torch.bool)
        others[j] = False
        for g in grads:
            assert torch.all(g[others] == 0), f"goal of neuron {j} has a gradient on other neurons' weights"
        assert torch.any(grads[0][j] != 0) and torch.any(grads[3][j] != 0)  # own F and B weights learn
    total = _goal_grads(layer, inputs, lambda g: g.sum())
    for i, g_sum in enumerate(total):
        torch.testing.assert_close(g_sum, sum(pn[i] for pn in per_neuron), rtol=1e-9, atol=1e-12)


def test_four_source_layer_goal_gradient_matches_finite_differences(pid_path: str) -> None:
    """d(goal of neuron 0)/d(one B weight), by central differences (bins stay put for a tiny step)."""
    goal = Goal.resolve("trivariate-mnist-tpe", "FCLB").with_gamma({"{F}{B}": 0.7, "{FCLB}": -0.4})
    gen = torch.Generator().manual_seed(5)
    layer = InfomorphicLayer(2, {"F": NF, "C": NC, "L": 2, "B": NB}, goal, generator=gen).double()
    inputs = {k: v[:, :2] if k == "L" else v for k, v in _inputs(batch=96).items()}
    out = layer(inputs)
    bins = layer.bins(out.aggregates)
    (grad,) = torch.autograd.grad(layer.local_goal(out)[0], layer.weight["B"])
    eps = 1e-6
    for i in range(NB):
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                layer.weight["B"][0, i] += sign * eps
            shifted = layer(inputs)
            assert torch.equal(layer.bins(shifted.aggregates), bins)
            values.append(float(layer.local_goal(shifted)[0].detach()))
            with torch.no_grad():
                layer.weight["B"][0, i] -= sign * eps
        assert float(grad[0, i]) == pytest.approx((values[0] - values[1]) / (2 * eps), rel=1e-5, abs=1e-9)
