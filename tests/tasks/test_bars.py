"""Bars: images, the neurons x bars MI matrix, the success criterion, and a training smoke run."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from infomorphic.tasks.bars import (
    BarsConfig,
    bar_configurations,
    bar_images,
    bars_solved,
    build_layer,
    evaluate_bars,
    mi_matrix,
    sample_bars,
    train_bars,
    train_step,
    weight_decay_at,
)


def _h(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def test_bar_images_light_rows_and_columns() -> None:
    s = torch.zeros(1, 16)
    s[0, 2] = 1.0  # horizontal bar 2
    s[0, 8 + 5] = 1.0  # vertical bar 5
    img = bar_images(s).reshape(8, 8)
    assert img[2].tolist() == [1.0] * 8 and img[:, 5].tolist() == [1.0] * 8
    assert img.sum() == 15  # the crossing pixel is on once
    assert bar_images(s[:, :8]).reshape(8, 8)[2].sum() == 8 and bar_images(s[:, :8]).sum() == 8
    with pytest.raises(ValueError):
        bar_images(torch.zeros(1, 5))


def test_bar_configurations_probabilities_sum_to_one() -> None:
    states, prob = bar_configurations(8, 0.3)
    assert states.shape == (256, 8)
    assert prob.sum().item() == pytest.approx(1.0)
    assert prob[-1].item() == pytest.approx(0.3**8)


def _mi_reference(theta: np.ndarray, states: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Plug-in I(Y_j ; bar_k) from the explicit joint table p(y, b)."""
    out = np.zeros((theta.shape[1], states.shape[1]))
    for j, k in itertools.product(range(theta.shape[1]), range(states.shape[1])):
        joint = np.zeros((2, 2))
        for th, s, p in zip(theta[:, j], states[:, k], prob):
            joint[1, int(s)] += p * th
            joint[0, int(s)] += p * (1 - th)
        py, pb = joint.sum(1), joint.sum(0)
        nz = joint > 0
        out[j, k] = (joint[nz] * np.log2(joint[nz] / np.outer(py, pb)[nz])).sum()
    return out


def test_mi_matrix_matches_plugin_reference() -> None:
    states, prob = bar_configurations(8, 0.5)
    theta = torch.sigmoid(torch.randn(256, 3, generator=torch.Generator().manual_seed(0)) * 3)
    ours = mi_matrix(theta, states, prob).numpy()
    assert np.allclose(ours, _mi_reference(theta.double().numpy(), states.numpy(), prob.numpy()), atol=1e-9)


@pytest.mark.parametrize("n_bars,p", [(8, 0.5), (16, 1 / 8)])
def test_perfect_solution_is_solved_with_one_bit_per_bar(n_bars: int, p: float) -> None:
    states, prob = bar_configurations(n_bars, p)
    perm = torch.randperm(n_bars, generator=torch.Generator().manual_seed(1))
    theta = states[:, perm]  # neuron j fires exactly when bar perm[j] is on
    mi = mi_matrix(theta, states, prob)
    assert mi.max(0).values.numpy() == pytest.approx(np.full(n_bars, _h(p)), abs=1e-9)
    status = bars_solved(mi, _h(p))
    assert status["solved"] and status["bars_coded"] == n_bars
    assert status["best_neuron"] == torch.argsort(perm).tolist()
    if n_bars == 8:
        assert _h(p) == pytest.approx(1.0)


def test_duplicate_or_weak_codes_are_not_solved() -> None:
    states, prob = bar_configurations(8, 0.5)
    dup = states.clone()
    dup[:, 1] = states[:, 0]  # neurons 0 and 1 both code bar 0; bar 1 uncoded
    status = bars_solved(mi_matrix(dup, states, prob), 1.0)
    assert not status["solved"] and status["bars_coded"] < 8
    noisy = 0.8 * states + 0.1  # right bars, but only ~0.53 bit each
    status = bars_solved(mi_matrix(noisy, states, prob), 1.0)
    assert not status["solved"] and status["distinct"] and status["bars_coded"] == 0
    mixture = (states.sum(1, keepdim=True) > 4).float().expand(-1, 8)  # every neuron codes "more than 4 bars"
    assert not bars_solved(mi_matrix(mixture, states, prob), 1.0)["solved"]


def test_training_smoke_is_seeded_and_records_atoms() -> None:
    cfg = BarsConfig(epochs=2, batches_per_epoch=3, batch_size=64, seed=5)
    a, b = train_bars(cfg), train_bars(cfg)
    assert a["atoms"].shape == (2, 8, 4) and a["hres"].shape == (2, 8) and a["mi"].shape == (2, 8, 8)
    assert np.array_equal(a["atoms"], b["atoms"])
    assert len(a["history"]) == 2 and "atom {F}" in a["history"][0]
    # the atoms plus H_res add up to H(Y) <= 1 bit per neuron
    total = a["atoms"][-1].sum(1) + a["hres"][-1]
    assert (total <= 1 + 1e-5).all() and (total >= 0).all()
    _, status = evaluate_bars(a["layer"], cfg)
    assert status["threshold_bits"] == pytest.approx(0.9)


def test_bars_config_validates() -> None:
    with pytest.raises(ValueError, match="variant"):
        BarsConfig(variant="diagonal")
    with pytest.raises(ValueError, match="p must"):
        BarsConfig(p=1.5)
    with pytest.raises(ValueError, match="context"):
        BarsConfig(context="random")
    with pytest.raises(ValueError, match="weight_decay"):
        BarsConfig(weight_decay=-1.0)
    with pytest.raises(ValueError, match="decay_fraction"):
        BarsConfig(decay_fraction=1.5)
    assert BarsConfig(variant="hv").n_bars == 16 and BarsConfig(variant="hv").bar_p == 0.5


def test_variant_defaults_fill_only_unset_fields() -> None:
    hv = BarsConfig(variant="hv").resolved()
    assert (hv.epochs, hv.weight_decay, hv.decay_fraction) == (150, 5.0, 0.6)
    horizontal = BarsConfig(epochs=7).resolved()
    assert (horizontal.epochs, horizontal.weight_decay, horizontal.decay_fraction) == (7, 10.0, 0.8)
    # replacing the variant of an unresolved config picks up the new variant's defaults
    assert replace(BarsConfig(), variant="hv").resolved().epochs == 150
    assert BarsConfig(variant="hv").to_dict()["epochs"] == 150


def test_weight_decay_falls_linearly_to_zero() -> None:
    cfg = BarsConfig(epochs=10, weight_decay=4.0, decay_fraction=0.5)  # 5 epochs of decay
    got = [weight_decay_at(cfg, e) for e in range(1, 11)]
    assert got == pytest.approx([4.0, 3.2, 2.4, 1.6, 0.8, 0, 0, 0, 0, 0])
    assert weight_decay_at(BarsConfig(epochs=10, weight_decay=4.0, decay_fraction=0.0), 1) == 0.0


def test_training_applies_the_decay_schedule() -> None:
    cfg = BarsConfig(epochs=4, batches_per_epoch=2, batch_size=64, weight_decay=2.0, decay_fraction=0.5)
    history = train_bars(cfg)["history"]
    assert [r["weight_decay"] for r in history] == pytest.approx([2.0, 1.0, 0.0, 0.0])


def _layer_and_batch() -> tuple:
    cfg = BarsConfig(seed=3)
    layer = build_layer(cfg)
    _, x = sample_bars(32, 8, 0.5, torch.Generator().manual_seed(0))
    return layer, x


@pytest.mark.parametrize("context", ["lateral", "shuffled", "none"])
def test_context_modes_feed_the_right_lateral_input(context: str, monkeypatch: pytest.MonkeyPatch) -> None:
    layer, x = _layer_and_batch()
    seen: list[torch.Tensor] = []
    original = layer.forward

    def spy(inputs, reuse=None):  # type: ignore[no-untyped-def]
        seen.append(inputs["C"].clone())
        return original(inputs, reuse=reuse)

    monkeypatch.setattr(layer, "forward", spy)
    opt = torch.optim.SGD(layer.parameters(), lr=0.0)
    first_theta = layer({"F": x, "C": x.new_zeros(32, 8)}).theta.detach()
    seen.clear()
    train_step(layer, opt, x, torch.Generator().manual_seed(1), context)
    assert torch.equal(seen[0], torch.zeros(32, 8))  # the first pass has no lateral input
    if context == "none":
        assert len(seen) == 1
        return
    lateral = seen[1]
    expected = layer.sample(first_theta, torch.Generator().manual_seed(1))
    if context == "shuffled":
        expected = expected.roll(1, dims=0)
    assert torch.equal(lateral, expected)


def test_default_horizontal_run_solves_the_task() -> None:
    """The full default training (60 epochs, ~10 s) gives every bar its own neuron at >= 0.9 bit."""
    res = train_bars(BarsConfig(seed=0))
    status = res["status"]
    assert status["solved"], status
    assert sorted(status["best_neuron"]) == list(range(8))
    assert min(status["best_mi"]) >= 0.95
    # the atoms are the unique-F goal: at the end each neuron carries ~1 bit of unique F information
    assert res["atoms"][-1][:, res["atom_names"].index("{F}")].min() > 0.3
