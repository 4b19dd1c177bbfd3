"""Tests for infomorphic.nn.network: wiring of the supervised networks, passes, evaluation helpers."""

from __future__ import annotations

import pytest
import torch

from infomorphic.goals import Goal
from infomorphic.nn.functional import sample_binary
from infomorphic.nn.network import (
    NETWORK_KINDS,
    InfomorphicNetwork,
    class_inversion,
    correct_inverted,
    predict,
)

D, K, H, B = 20, 4, 8, 32  # inputs, classes, hidden neurons, batch


def _net(kind: str, setup: int = 1, partners: int = 3, seed: int = 0) -> InfomorphicNetwork:
    return InfomorphicNetwork(
        D,
        K,
        kind,
        n_hidden=H,
        setup=setup,
        lateral_partners=partners,
        generator=torch.Generator().manual_seed(seed),
    )


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, D, generator=gen) * 2, torch.randint(0, K, (B,), generator=gen)


CASES = [
    ("single", 1),
    ("trivariate", 1),
    ("trivariate", 2),
    ("trivariate", 3),
    ("bivariate-context", 1),
    ("bivariate-lateral", 1),
    ("bivariate-lateral", 2),
    ("random-hidden", 1),
]
HIDDEN_SOURCES = {
    "trivariate": ("F", "C", "L"),
    "bivariate-context": ("F", "C"),
    "bivariate-lateral": ("F", "L"),
    "random-hidden": ("F", "C"),
}


def test_cases_cover_all_kinds() -> None:
    assert {k for k, _ in CASES} == set(NETWORK_KINDS)


@pytest.mark.parametrize("kind, setup", CASES)
@pytest.mark.parametrize("with_labels", [True, False])
def test_every_kind_builds_and_runs(kind: str, setup: int, with_labels: bool) -> None:
    net = _net(kind, setup)
    x, y = _batch()
    out = net(x, y if with_labels else None, torch.Generator().manual_seed(1))
    assert out.readout.theta.shape == (B, K)
    assert out.readout.aggregates.shape == (B, K, 2)
    assert torch.all((out.readout.theta > 0) & (out.readout.theta < 1))
    if kind == "single":
        assert net.hidden is None and out.hidden is None and out.hidden_spikes is None
        assert net.readout.in_features == {"F": D, "C": K}
        return
    assert net.hidden is not None
    assert net.hidden.sources == HIDDEN_SOURCES[kind]
    assert out.hidden.theta.shape == (B, H)
    assert out.hidden.aggregates.shape == (B, H, len(HIDDEN_SOURCES[kind]))
    assert out.hidden_spikes.shape == (B, H)
    assert set(out.hidden_spikes.unique().tolist()) <= {-1.0, 1.0}
    assert net.readout.in_features == {"F": H, "C": K}


@pytest.mark.parametrize("kind, setup", CASES)
def test_local_goals_of_trainable_layers(kind: str, setup: int) -> None:
    net = _net(kind, setup)
    x, y = _batch()
    goals = net.local_goals(net(x, y, torch.Generator().manual_seed(1)))
    expected = {"readout": K} if kind in ("single", "random-hidden") else {"hidden": H, "readout": K}
    assert {k: v.shape[0] for k, v in goals.items()} == expected
    assert set(net.layers()) == set(expected)
    for g in goals.values():
        assert torch.all(torch.isfinite(g))
    if "hidden" in goals:
        n_atoms = 18 if kind == "trivariate" else 4
        assert net.hidden.last_atoms.shape == (H, n_atoms)
    assert net.readout.last_atoms.shape == (K, 4)


def test_default_goals_and_activations() -> None:
    tri = _net("trivariate")
    assert tri.hidden.goal == Goal.preset("trivariate-mnist-tpe").with_sources("FCL")
    assert tri.hidden.activation_name == "trivariate"
    assert tri.readout.goal == Goal.preset("readout")
    assert tri.readout.activation_params["k1"] == 1.0
    assert tri.readout.binning == "adaptive" and tri.hidden.binning == "fixed"
    lat = _net("bivariate-lateral")
    assert lat.hidden.goal.sources == ("F", "L")
    assert lat.hidden.activation_params["k1"] == 0.9
    # the readout's context is the label through a fixed identity
    assert torch.equal(tri.readout.effective_weight("C"), torch.eye(K))
    assert "C" not in tri.readout.weight


def test_constructor_errors() -> None:
    with pytest.raises(ValueError, match="unknown network 'deep'"):
        InfomorphicNetwork(D, K, "deep")
    with pytest.raises(ValueError, match="setup must be 1, 2 or 3"):
        InfomorphicNetwork(D, K, "trivariate", n_hidden=H, setup=4)


def _count_calls(module: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    calls: list[dict[str, torch.Tensor]] = []
    # copy the inputs mapping: the network reuses and updates one dict between passes
    module.register_forward_hook(lambda mod, args, output: calls.append(dict(args[0])))
    return calls


@pytest.mark.parametrize(
    "kind, setup, hidden_calls, readout_calls",
    [
        ("trivariate", 1, 2, 1),
        ("trivariate", 2, 2, 1),
        ("trivariate", 3, 2, 2),
        ("bivariate-lateral", 1, 2, 1),
        ("bivariate-context", 1, 1, 1),
        ("random-hidden", 1, 1, 1),
        ("single", 1, 0, 1),
    ],
)
def test_number_of_presentations(kind: str, setup: int, hidden_calls: int, readout_calls: int) -> None:
    net = _net(kind, setup)
    hidden = _count_calls(net.hidden) if net.hidden is not None else []
    readout = _count_calls(net.readout)
    x, y = _batch()
    net(x, y)
    assert len(hidden) == hidden_calls
    assert len(readout) == readout_calls
    hidden.clear()
    readout.clear()
    net(x, None)  # evaluation presents the batch the same number of times
    assert len(hidden) == hidden_calls
    assert len(readout) == readout_calls


def test_second_pass_sees_first_pass_samples() -> None:
    net = _net("trivariate", 1)
    calls = _count_calls(net.hidden)
    thetas: list[torch.Tensor] = []
    net.hidden.register_forward_hook(lambda mod, args, output: thetas.append(output.theta.detach()))
    x, y = _batch()
    out = net(x, y, torch.Generator().manual_seed(5))
    first, second = calls
    assert "L" not in first  # no lateral input yet: a missing input aggregates like zeros (to the bias)
    replay = torch.Generator().manual_seed(5)
    spikes1 = sample_binary(thetas[0], replay)
    assert torch.equal(second["L"], spikes1)
    assert torch.equal(out.hidden_spikes, sample_binary(thetas[1], replay))
    # the learning pass is the second one, and the readout sees its samples
    assert torch.equal(out.hidden.theta, thetas[1])
    torch.testing.assert_close(
        out.readout.aggregates[..., 0],
        out.hidden_spikes @ net.readout.weight["F"].detach().T + net.readout.bias["F"].detach(),
    )
    torch.testing.assert_close(first["F"], x)
    torch.testing.assert_close(first["C"], torch.nn.functional.one_hot(y, K).float())


def test_setup3_context_is_readout_feedback() -> None:
    net = _net("trivariate", 3)
    calls = _count_calls(net.hidden)
    x, y = _batch()
    net(x, y, torch.Generator().manual_seed(0))
    first, second = calls
    assert "C" not in first  # no label as context in setup 3: no feedback yet, C aggregates to its bias
    assert torch.all((second["C"] > 0) & (second["C"] < 1))  # the readout's firing probabilities


@pytest.mark.parametrize("kind", ["trivariate", "bivariate-context"])
def test_withheld_context(kind: str) -> None:
    net = _net(kind, 1)
    x, y = _batch()
    with_labels = net(x, y, torch.Generator().manual_seed(0))
    without = net(x, None, torch.Generator().manual_seed(0))
    f = net.hidden.sources.index("F")
    c = net.hidden.sources.index("C")
    assert torch.equal(with_labels.hidden.aggregates[..., f], without.hidden.aggregates[..., f])
    assert torch.equal(without.hidden.aggregates[..., c], net.hidden.bias["C"].detach().expand(B, -1))
    assert not torch.equal(with_labels.hidden.aggregates[..., c], without.hidden.aggregates[..., c])
    # the readout's context (fixed identity, no bias) is zero without labels, the label with them
    assert torch.equal(without.readout.aggregates[..., 1], torch.zeros(B, K))
    assert torch.equal(with_labels.readout.aggregates[..., 1], torch.nn.functional.one_hot(y, K).float())


def test_single_network_withheld_context_is_feedforward() -> None:
    net = _net("single")
    x, _ = _batch()
    out = net(x, None)
    assert torch.equal(out.readout.aggregates[..., 1], torch.zeros(B, K))
    f = out.readout.aggregates[..., 0]
    torch.testing.assert_close(out.readout.theta, torch.sigmoid(f))  # k1 = 1, no modulation anyway


@pytest.mark.parametrize("kind", ["trivariate", "bivariate-lateral"])
def test_lateral_masks(kind: str) -> None:
    dense = _net(kind, 1)
    assert torch.equal(dense.hidden.mask("L"), 1 - torch.eye(H))
    sparse = _net(kind, 2, partners=3)
    mask = sparse.hidden.mask("L")
    assert torch.all(mask.diagonal() == 0)
    assert torch.all(mask.sum(1) <= 3)
    assert torch.all(mask.sum(1) == 3)
    assert torch.all(sparse.hidden.effective_weight("L")[mask == 0] == 0)
    # more partners than neurons: dense
    assert torch.equal(_net(kind, 2, partners=100).hidden.mask("L"), 1 - torch.eye(H))


def test_init_reproducible() -> None:
    a, b, c = _net("trivariate", 2, seed=1), _net("trivariate", 2, seed=1), _net("trivariate", 2, seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_random_hidden_layer_is_not_trained() -> None:
    net = _net("random-hidden")
    assert net.hidden.goal is None
    assert all(not p.requires_grad for p in net.hidden.parameters())
    assert list(net.layers()) == ["readout"]
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("readout.") for n in trainable)
    before = {k: v.clone() for k, v in net.hidden.state_dict().items()}
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.1)
    x, y = _batch()
    loss = -sum(g.sum() for g in net.local_goals(net(x, y)).values())
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(torch.equal(v, net.hidden.state_dict()[k]) for k, v in before.items())


# ----------------------------------------------------------------- evaluation
def test_correct_inverted_flips_neurons_with_mean_at_least_half() -> None:
    theta = torch.tensor(
        [
            [0.9, 0.1, 0.5, 0.6, 0.2],
            [0.8, 0.2, 0.5, 0.3, 0.4],
            [0.7, 0.3, 0.5, 0.6, 0.5],
            [0.6, 0.0, 0.5, 0.5, 0.3],
        ]
    )  # column means: 0.75, 0.15, 0.5, 0.5, 0.35
    out = correct_inverted(theta)
    flipped = torch.tensor([True, False, True, True, False])
    torch.testing.assert_close(out[:, flipped], 1 - theta[:, flipped])
    assert torch.equal(out[:, ~flipped], theta[:, ~flipped])
    assert out.shape == theta.shape


def test_predict_after_correction() -> None:
    # neuron 0 is inverted (silent for its class): mean 0.8 >= 0.5, read as 1 - theta
    theta = torch.tensor(
        [
            [0.95, 0.10, 0.20],  # raw arg-max 0; corrected [0.05, 0.10, 0.20] -> 2
            [0.90, 0.40, 0.10],  # corrected [0.10, 0.40, 0.10] -> 1
            [0.35, 0.20, 0.10],  # corrected [0.65, 0.20, 0.10] -> 0
            [0.99, 0.05, 0.60],  # corrected [0.01, 0.05, 0.60] -> 2
        ]
    )
    assert theta.argmax(1).tolist() == [0, 0, 0, 0]
    assert predict(theta).tolist() == [2, 1, 0, 2]
    assert predict(theta).dtype == torch.int64


def test_class_inversion_asks_the_labels() -> None:
    """Neuron k inverted iff it fires less for class k than for the rest (hand-computed means)."""
    theta = torch.tensor(
        [  # labels 0, 0, 1, 2
            [0.2, 0.9, 0.5],
            [0.4, 0.7, 0.5],
            [0.9, 0.1, 0.5],
            [0.8, 0.8, 0.5],
        ]
    )
    labels = torch.tensor([0, 0, 1, 2])
    # neuron 0: class 0 mean 0.3 < others 0.85 -> inverted; neuron 1: class 1 0.1 < others 0.8 ->
    # inverted; neuron 2: 0.5 = 0.5 -> not inverted
    assert class_inversion(theta, labels).tolist() == [True, True, False]
    # a class without samples (3 of 4) is never inverted
    theta4 = torch.cat([theta, torch.zeros(4, 1)], 1)
    assert class_inversion(theta4, labels).tolist() == [True, True, False, False]


def test_class_inversion_where_the_mean_rule_guesses_wrong() -> None:
    """A readout that cannot be selective (one binary hidden neuron: two distinct inputs) fires
    for about half of the samples; the mean rule then inverts the neurons that code their class
    and predicts below chance, the labels do not."""
    labels = torch.arange(4000) % 4
    hidden_on = labels < 2  # the one hidden neuron fires for classes 0 and 1
    # neuron k fires with 0.6 when the hidden neuron's state is the one of its class, else 0.4
    theta = torch.where(hidden_on[:, None] == (torch.arange(4) < 2)[None, :], 0.6, 0.4)
    theta = theta + 0.01 * torch.arange(4)  # break the ties: neurons 1 and 3 win their halves
    assert (theta.mean(0) >= 0.5).all()  # the mean rule inverts every neuron
    assert class_inversion(theta, labels).tolist() == [False, False, False, False]
    paper = (predict(theta) == labels).float().mean().item()
    by_class = (predict(theta, class_inversion(theta, labels)) == labels).float().mean().item()
    assert by_class == 0.5 and paper == 0.0  # neurons 1 and 3 win their halves; chance is 0.25


def test_predict_without_inverted_neurons_is_argmax() -> None:
    theta = torch.tensor([[0.1, 0.3], [0.4, 0.2], [0.05, 0.06]])
    assert predict(theta).tolist() == [1, 0, 1]
