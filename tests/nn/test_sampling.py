"""Sampling: the compiled kernel's uniform numbers are torch.rand's (the same values and the same
generator state afterwards), and the spikes are +1 exactly where the number is below theta."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import infomorphic.nn.functional as functional_module
from infomorphic.nn.functional import sample_binary, uniform
from infomorphic.pid.kernel import load_kernel


def _kernel() -> Any:
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    return kernel


def test_kernel_draws_torch_rands_numbers_and_leaves_the_same_state() -> None:
    assert functional_module._kernel_draws_like_torch(_kernel())
    ours, theirs = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    like = torch.empty(0)
    # across refills of the engine (624 numbers), in between other draws of the generator
    for shape in [(1,), (3, 207), (624,), (625,), (1024, 300), (0,), (2, 0, 3), (7, 11, 13)]:
        a = torch.rand(shape, generator=theirs)
        b = uniform(shape, ours, like)
        assert b.shape == a.shape and torch.equal(a, b), shape
        assert torch.equal(ours.get_state(), theirs.get_state())
        torch.randn(3, generator=ours), torch.randn(3, generator=theirs)
    # the default generator
    torch.manual_seed(11)
    a = torch.rand(1000, 3)
    torch.manual_seed(11)
    assert torch.equal(uniform((1000, 3), None, like), a)
    # other dtypes take torch.rand
    torch.manual_seed(12)
    a64 = torch.rand(50, dtype=torch.float64)
    torch.manual_seed(12)
    assert torch.equal(uniform((50,), None, torch.empty(0, dtype=torch.float64)), a64)


def test_spikes_are_plus_one_below_theta() -> None:
    theta = torch.rand(300, 257, generator=torch.Generator().manual_seed(1))
    theta[0, :5] = torch.tensor([0.0, 1.0, 0.5, 1e-30, 1 - 2**-24])
    spikes = sample_binary(theta, torch.Generator().manual_seed(2))
    u = torch.rand(300, 257, generator=torch.Generator().manual_seed(2))
    assert torch.equal(spikes, torch.where(u < theta, 1.0, -1.0))


class _Wrong:
    """A kernel whose numbers are not torch.rand's."""

    def mt_uniform_(self, out: torch.Tensor, state: torch.Tensor) -> None:
        out.fill_(0.5)


class _Refusing:
    def mt_uniform_(self, out: torch.Tensor, state: torch.Tensor) -> None:
        raise RuntimeError("not an MT19937 state")


@pytest.mark.parametrize("kernel", [_Wrong(), _Refusing(), object()])
def test_a_kernel_that_does_not_draw_like_torch_is_not_used(
    kernel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not functional_module._kernel_draws_like_torch(kernel)
    monkeypatch.setattr(functional_module, "active_kernel", lambda: kernel)
    a = torch.rand(40, generator=torch.Generator().manual_seed(3))
    assert torch.equal(uniform((40,), torch.Generator().manual_seed(3), torch.empty(0)), a)


def test_mt_uniform_rejects_a_state_it_does_not_know() -> None:
    kernel = _kernel()
    with pytest.raises(RuntimeError, match="state"):
        kernel.mt_uniform_(torch.empty(4), torch.zeros(100, dtype=torch.uint8))
    bad = torch.Generator().manual_seed(0).get_state()
    bad[8:12] = torch.tensor([0, 0, 0, 0], dtype=torch.uint8)  # left = 0: never in a real state
    with pytest.raises(RuntimeError, match="MT19937"):
        kernel.mt_uniform_(torch.empty(4), bad)
