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


def _spikes_as_before(theta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The spikes as sample_binary computed them before the kernel drew and compared in one pass:
    torch.rand's numbers u, then -copysign(1, u - theta), elementwise."""
    u = torch.rand(theta.shape, generator=generator)
    return torch.copysign(torch.ones(()), u - theta).neg()


@pytest.mark.parametrize("neuron_major", [False, True])
@pytest.mark.parametrize("generic", [False, True])
@pytest.mark.parametrize("shape", [(1024, 2000), (200, 1000), (63, 7), (65, 1), (1, 130), (0, 5)])
def test_kernel_spikes_are_the_bits_of_the_elementwise_path(
    shape: tuple[int, int], neuron_major: bool, generic: bool
) -> None:
    # blocks of 64 samples: whole blocks, a partial last block and fewer samples than one block;
    # a neuron-major theta (a large layer's layout) and a sample-major one
    B, N = shape
    gen = torch.Generator().manual_seed(B * 7919 + N)
    theta = torch.rand(N, B, generator=gen).t() if neuron_major else torch.rand(B, N, generator=gen)
    ours, theirs = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    torch.rand(5, generator=ours), torch.rand(5, generator=theirs)  # not at the start of a refill
    if theta.numel():
        # theta exactly at the number drawn (u - theta = +0: -1), at the ends, and NaN
        u = torch.rand(shape, generator=torch.Generator().set_state(theirs.get_state()))
        theta[0, N - 1] = 1.0
        theta[B - 1, 0] = 0.0
        theta[B // 2, N // 2] = float("nan")
        theta[0, 0] = u[0, 0]
        theta[-1, -1] = u[-1, -1]
    expected = _spikes_as_before(theta, theirs)
    state = ours.get_state()
    spikes = _kernel().sample_signs(theta, state, generic=generic)
    ours.set_state(state)
    assert spikes.shape == theta.shape
    if min(shape) > 1:  # theta's layout (strides of a dimension of size 1 or 0 say nothing)
        assert spikes.stride() == theta.stride()
    assert torch.equal(spikes.contiguous().view(torch.int32), expected.contiguous().view(torch.int32))
    assert torch.equal(ours.get_state(), theirs.get_state())
    if theta.numel():
        assert spikes[0, 0] == -1.0 and spikes[-1, -1] == -1.0
    # and sample_binary takes it, with the same generator state after
    ours2, theirs2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(sample_binary(theta, ours2), _spikes_as_before(theta, theirs2))
    assert torch.equal(ours2.get_state(), theirs2.get_state())


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("neuron_major", [False, True])
@pytest.mark.parametrize("shape", [(200, 1000), (1000, 70), (130, 5)])
def test_kernel_spikes_are_the_same_with_many_threads(
    neuron_major: bool, threads: int, shape: tuple[int, int]
) -> None:
    # with several threads one thread at a time draws the next block of 64 samples into a ring of 4
    # while the others compare the blocks drawn: 4 blocks (the ring just full), 16 (every slot
    # reused three times, the last block partial) and 3 (two whole blocks and a partial one)
    B, N = shape
    theta = torch.rand(N, B).t() if neuron_major else torch.rand(B, N)
    expected = _spikes_as_before(theta, torch.Generator().manual_seed(3))
    reference = torch.Generator().manual_seed(3)
    torch.rand(B, N, generator=reference)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for _ in range(5):  # the threads' interleaving differs between calls
            state = torch.Generator().manual_seed(3).get_state()
            spikes = _kernel().sample_signs(theta, state)
            assert torch.equal(spikes.contiguous().view(torch.int32), expected.contiguous().view(torch.int32))
            assert torch.equal(state, reference.get_state())
    finally:
        torch.set_num_threads(previous)


def test_sample_binary_uses_the_kernels_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = _kernel()
    calls: list[str] = []

    class Spy:
        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(kernel, name)

    monkeypatch.setattr(functional_module, "active_kernel", lambda: Spy())
    sample_binary(torch.rand(2000, 300).t(), torch.Generator().manual_seed(1))
    assert "sample_signs" in calls and "transpose_tiled" not in calls
