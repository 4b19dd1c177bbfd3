"""The PyTorch backend: agreement with the exact NumPy engine, autograd vs finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infomorphic.pid import distributions as catalogue
from infomorphic.pid import get_lattice, sx_pid, sx_pid_torch


def _random_pmf(rng: np.random.Generator, shape: tuple[int, ...], zero_frac: float = 0.3) -> np.ndarray:
    p = rng.random(shape)
    p[rng.random(shape) < zero_frac] = 0.0
    p.flat[0] = 0.5  # never all zero
    return p / p.sum()


@pytest.mark.parametrize(
    "shape", [(2, 2, 2), (3, 2, 4), (2, 3, 2, 2), (3, 3, 2, 3), (2, 2, 2, 2, 2), (3, 2, 2, 2, 2)]
)
def test_sx_pid_torch_matches_numpy_random(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    pmfs = np.stack([_random_pmf(rng, shape) for _ in range(3)])
    res = sx_pid_torch(torch.tensor(pmfs), len(shape) - 1, parts=True)
    for k in range(3):
        ref = sx_pid(pmfs[k])
        lat = ref.lattice
        np.testing.assert_allclose(res.atoms[k].numpy(), ref.atom_vector(), atol=1e-12)
        np.testing.assert_allclose(
            res.informative_atoms[k].numpy(),
            [ref.informative_atoms[a] for a in lat.antichains],
            atol=1e-11,
        )
        np.testing.assert_allclose(
            res.misinformative_atoms[k].numpy(),
            [ref.misinformative_atoms[a] for a in lat.antichains],
            atol=1e-11,
        )
        assert float(res.residual_entropy[k]) == pytest.approx(ref.residual_entropy, abs=1e-12)
        assert float(res.target_entropy[k]) == pytest.approx(ref.target_entropy, abs=1e-12)
        for subset, mi in ref.mutual_information.items():
            assert float(res.mutual_information(subset)[k]) == pytest.approx(mi, abs=1e-12)


def test_sx_pid_torch_float32_close_to_float64() -> None:
    rng = np.random.default_rng(1)
    pmf = torch.tensor(np.stack([_random_pmf(rng, (4, 4, 4, 2)) for _ in range(4)]))
    a64 = sx_pid_torch(pmf, 3).atoms
    a32 = sx_pid_torch(pmf.float(), 3).atoms
    assert a32.dtype == torch.float32
    assert float((a32.double() - a64).abs().max()) < 1e-5


def test_sx_pid_torch_multiple_batch_axes_and_named_atoms() -> None:
    xor3 = torch.tensor(catalogue.get("xor3"))
    pmf = xor3.expand(2, 3, *xor3.shape)
    res = sx_pid_torch(pmf, 3)
    assert res.atoms.shape == (2, 3, 18)
    assert torch.allclose(res.atom("{FCL}"), torch.full((2, 3), np.log2(32 / 27), dtype=torch.float64))
    assert torch.allclose(
        res.atom(((0,), (1,), (2,))), torch.full((2, 3), np.log2(8 / 7), dtype=torch.float64)
    )


def _positive_pmf(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen, dtype=torch.float64) + 0.05


@pytest.mark.parametrize("shape", [(2, 3, 2), (2, 2, 3, 2), (2, 2, 2, 2, 2)])
def test_sx_pid_torch_gradient_matches_finite_differences(shape: tuple[int, ...]) -> None:
    n = len(shape) - 1
    gen = torch.Generator().manual_seed(7)
    gamma = torch.rand(len(get_lattice(n)), generator=gen, dtype=torch.float64) * 2 - 1

    def goal(raw: torch.Tensor) -> torch.Tensor:
        res = sx_pid_torch(raw / raw.sum(), n)
        return res.atoms @ gamma + 0.37 * res.residual_entropy

    raw = _positive_pmf(shape, seed=len(shape)).requires_grad_(True)
    assert torch.autograd.gradcheck(goal, (raw,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_sx_pid_torch_gradient_finite_with_zero_cells() -> None:
    pmf = torch.tensor(catalogue.get("and3"))  # half the cells have zero probability
    pmf = pmf.unsqueeze(0).repeat(2, 1, 1, 1, 1).requires_grad_(True)
    res = sx_pid_torch(pmf, 3)
    gamma = torch.linspace(-1, 1, 18, dtype=torch.float64)
    (res.atoms @ gamma + res.residual_entropy).sum().backward()
    assert pmf.grad is not None and torch.isfinite(pmf.grad).all()
    # float32 and a target that is never 1 in some pmf: still finite
    p32 = torch.zeros(2, 2, 2, 2)
    p32[..., 0] = 0.25
    p32.requires_grad_(True)
    r32 = sx_pid_torch(p32, 2)
    (r32.atoms.sum() + r32.residual_entropy.sum()).backward()
    assert torch.isfinite(p32.grad).all()
    assert torch.allclose(r32.atoms, torch.zeros(4))


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.full((2, 2, 2), 0.2), "sums to"),
        (torch.tensor([[[0.5, 0.5], [0.25, -0.25]], [[0.0, 0.0], [0.0, 0.0]]]), "negative"),
        (torch.full((2, 2, 2), float("nan")), "NaN"),
        (torch.full((2, 2), 0.25), "at least 3 axes"),
        (torch.ones(2, 2, 2, dtype=torch.long), "floating-point"),
    ],
)
def test_sx_pid_torch_rejects_bad_input(bad: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sx_pid_torch(bad, 2)


def test_sx_pid_torch_rejects_bad_source_counts() -> None:
    with pytest.raises(ValueError, match="at least 2 sources"):
        sx_pid_torch(torch.full((2, 2), 0.25), 1)
    with pytest.raises(ValueError, match="at most 4 sources"):
        sx_pid_torch(torch.full((2,) * 6, 1 / 64), 5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sx_pid_torch_cuda_matches_cpu() -> None:
    rng = np.random.default_rng(3)
    pmf = torch.tensor(np.stack([_random_pmf(rng, (3, 3, 3, 2)) for _ in range(5)]))
    cpu = sx_pid_torch(pmf, 3).atoms
    gpu = sx_pid_torch(pmf.cuda(), 3).atoms
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-12)
