"""Binning of aggregated inputs (the source side of the training estimate)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infomorphic.estimate import bin_adaptive, bin_fixed


def test_bin_fixed_matches_floor_formula_and_clamps() -> None:
    x = torch.tensor([-30.0, -20.0, -19.99, -0.01, 0.0, 1.9, 2.0, 19.99, 20.0, 45.0])
    expected = np.clip(np.floor((np.clip(x.numpy(), -20, 20) + 20) * 20 / 40), 0, 19).astype(np.int64)
    got = bin_fixed(x, 20, -20.0, 20.0)
    assert got.dtype == torch.int64
    assert got.tolist() == expected.tolist()
    assert got.tolist()[0] == 0 and got.tolist()[-1] == 19  # outside values clamp to the edge bins


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_bin_fixed_dtype_and_strided_input(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 50, 7, generator=gen) * 15).permute(1, 2, 0)  # strided (50, 7, 3)
    got = bin_fixed(x, 20, -20.0, 20.0, dtype=dtype)
    assert got.dtype == dtype and got.shape == x.shape
    assert torch.equal(got.long(), bin_fixed(x.contiguous(), 20, -20.0, 20.0))


def test_bin_adaptive_scales_each_column_by_its_max() -> None:
    x = torch.tensor([[1.0, 0.0, -10.0], [-0.5, 0.0, 5.0], [0.25, 0.0, 10.0]])
    got = bin_adaptive(x, 4, dim=0, dtype=torch.int32)
    # column 0 / 1: 1 -> bin 3, -0.5 -> bin 1, 0.25 -> bin 2; column 1 all zero -> middle bin 2;
    # column 2 / 10: -1 -> 0, 0.5 -> 3, 1 -> 3
    assert got.T.tolist() == [[3, 1, 2], [2, 2, 2], [0, 3, 3]]


def test_bin_fixed_rejects_bad_range() -> None:
    with pytest.raises(ValueError, match="high > low"):
        bin_fixed(torch.zeros(3), 20, 1.0, 1.0)
