"""Classical memories and the shared recall routine, against hand-built and independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from storkey_reference import storkey_step

from infomorphic.seeding import generator
from infomorphic.tasks.hopfield import (
    flip_bits,
    hebbian_weights,
    linear_field,
    modern_field,
    overlaps,
    pseudo_inverse_weights,
    random_patterns,
    recall,
    recall_score,
    storkey_weights,
)


def _hadamard(n: int) -> torch.Tensor:
    h = torch.ones(1, 1)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@pytest.mark.parametrize("m", [1, 2, 3])
def test_hebbian_recalls_orthogonal_patterns_exactly(m: int) -> None:
    patterns = _hadamard(32)[1 : m + 1]  # mutually orthogonal rows
    field = linear_field(hebbian_weights(patterns))
    states, steps = recall(field, patterns)
    assert torch.equal(states, patterns)
    assert steps.tolist() == [1] * m  # already fixed points
    # a few flipped bits are corrected in one sweep
    noisy = flip_bits(patterns, 3 / 32, generator(0, "t"))
    assert recall_score(field, patterns, 3 / 32, generator(0, "t")) == 1.0
    assert not torch.equal(noisy, patterns)


def test_hebbian_weights_match_outer_product_sum() -> None:
    p = random_patterns(5, 12, generator(1, "p"))
    ref = sum(np.outer(x, x) for x in p.numpy()) / 12
    np.fill_diagonal(ref, 0)
    assert np.allclose(hebbian_weights(p).numpy(), ref)


def test_storkey_matches_elementwise_rule() -> None:
    p = random_patterns(4, 7, generator(2, "p")).double().numpy()
    n = p.shape[1]
    w = np.zeros((n, n))
    for xi in p:
        w = storkey_step(w, xi)
    assert np.allclose(storkey_weights(torch.tensor(p)).numpy(), w)


def test_pseudo_inverse_stores_fewer_than_n_patterns_exactly() -> None:
    p = random_patterns(30, 64, generator(3, "p"))
    w_full = pseudo_inverse_weights(p, zero_diagonal=False)
    # a projection onto the patterns' span: W xi = xi (reference: least squares)
    coef = np.linalg.lstsq(p.numpy().T.astype(float), p.numpy().T.astype(float), rcond=None)[0]
    assert np.allclose((w_full @ p.double().T).numpy(), p.numpy().T @ coef, atol=1e-8)
    assert np.allclose((w_full @ p.double().T).numpy(), p.numpy().T, atol=1e-8)
    states, _ = recall(linear_field(pseudo_inverse_weights(p)), p)
    assert torch.equal(states, p)
    # Hebbian fails at the same load (alpha = 0.47 > 0.14)
    assert recall_score(linear_field(hebbian_weights(p)), p) < 0.9


def test_recall_detects_two_cycles() -> None:
    w = torch.tensor([[0.0, -1.0], [-1.0, 0.0]], dtype=torch.float64)
    states, steps = recall(linear_field(w), torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
    assert steps.tolist() == [2, 1]  # (1,1) -> (-1,-1) -> (1,1); (1,-1) is a fixed point
    assert states.tolist() == [[1.0, 1.0], [1.0, -1.0]]


def test_recall_keeps_entries_with_zero_field() -> None:
    states, _ = recall(linear_field(torch.zeros(4, 4)), torch.tensor([[1.0, -1.0, 1.0, 1.0]]))
    assert states.tolist() == [[1.0, -1.0, 1.0, 1.0]]


def test_flip_bits_flips_exact_count_and_validates() -> None:
    p = random_patterns(6, 50, generator(4, "p"))
    q = flip_bits(p, 0.2, generator(4, "f"))
    assert ((q != p).sum(1) == 10).all()
    assert torch.allclose(overlaps(q, p), torch.full((6,), 0.6, dtype=torch.float64))
    with pytest.raises(ValueError, match="fraction"):
        flip_bits(p, 1.5)


def test_hebbian_capacity_is_low_and_modern_is_high() -> None:
    low = random_patterns(10, 200, generator(5, "low"))
    high = random_patterns(100, 200, generator(5, "high"))
    assert recall_score(linear_field(hebbian_weights(low)), low) == 1.0
    assert recall_score(linear_field(hebbian_weights(high)), high) < 0.6
    many = random_patterns(100, 50, generator(5, "many"))  # alpha = 2
    assert recall_score(modern_field(many), many, 0.1, generator(5, "n")) == 1.0
