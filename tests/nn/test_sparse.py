"""Sparse partners: the sparse product against the dense masked one (float64, finite differences),
the storage rule, initialisation identical to the masked layer, storage conversion, and old
checkpoints (dense weight + mask, from the frozen legacy network) loading, resuming and reporting."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from legacy_network import InfomorphicNetwork as LegacyNetwork
from typer.testing import CliRunner

import infomorphic.nn.functional as functional_module
import infomorphic.nn.layer as layer_module
from infomorphic.cli import app
from infomorphic.config import TrainConfig
from infomorphic.goals import Goal
from infomorphic.nn.functional import (
    aggregate,
    lateral_mask,
    lateral_partners,
    partner_mask,
    prefer_sparse,
    sparse_aggregate,
)
from infomorphic.nn.layer import InfomorphicLayer
from infomorphic.nn.network import InfomorphicNetwork, _random_partners
from infomorphic.pid.kernel import load_kernel
from infomorphic.seeding import generator

D, K = 64, 10  # inputs and classes of the network cases
HID, PART = 40, 2  # setup 2 with 2 of 40 lateral partners: 0.05 <= 1/20, stored sparsely


def _partners(n: int, n_inputs: int, p: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, n_inputs, generator=gen).topk(p, dim=1).indices  # unsorted, distinct per row


def _dense(values: torch.Tensor, index: torch.Tensor, n_inputs: int) -> torch.Tensor:
    """Independent reference: the dense weight, built element by element."""
    w = torch.zeros(index.shape[0], n_inputs, dtype=values.dtype)
    for j in range(index.shape[0]):
        for p in range(index.shape[1]):
            w[j, int(index[j, p])] = values[j, p]
    return w


# ------------------------------------------------------------------ the sparse product
def test_sparse_aggregate_equals_the_dense_masked_product_float64() -> None:
    gen = torch.Generator().manual_seed(0)
    n, n_in, p, b = 11, 23, 4, 37
    index = _partners(n, n_in, p, 1)
    values = torch.randn(n, p, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(n, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(b, n_in, generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(b, n, generator=gen, dtype=torch.float64)

    out = sparse_aggregate(x, values, index, bias)
    assert out.shape == (b, n)
    gv, gb, gx = torch.autograd.grad(out, (values, bias, x), upstream)

    # reference: the dense masked formulation (a full weight matrix, masked, autograd)
    weight = _dense(values.detach(), index, n_in).requires_grad_(True)
    mask = partner_mask(index, n_in, torch.float64)
    x2, b2 = x.detach().clone().requires_grad_(True), bias.detach().clone().requires_grad_(True)
    ref = aggregate(x2, weight, b2, mask)
    rw, rb, rx = torch.autograd.grad(ref, (weight, b2, x2), upstream)

    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(gv, rw.gather(1, index), rtol=0, atol=1e-12)  # each value: the dense gradient
    torch.testing.assert_close(gb, rb, rtol=0, atol=1e-12)
    torch.testing.assert_close(gx, rx, rtol=0, atol=1e-12)
    # aggregate() with index is the same call
    assert torch.equal(aggregate(x, values, bias, index=index), out)


def test_sparse_aggregate_gradients_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(2)
    index = _partners(5, 9, 3, 3)
    values = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    x = torch.randn(7, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, xx: sparse_aggregate(xx, v, index), (values, x))


def test_sparse_aggregate_float32_at_training_sizes() -> None:
    gen = torch.Generator().manual_seed(4)
    n, p, b = 300, 12, 256
    index = lateral_partners(n, p, gen)
    values = torch.randn(n, p, generator=gen) * 0.06
    x = torch.randint(0, 2, (b, n), generator=gen).float() * 2 - 1
    out = sparse_aggregate(x, values, index)
    ref = x.double() @ _dense(values, index, n).double().T
    torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-6)


def _torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sparse_aggregate take its PyTorch path (embedding_bag / sampled_addmm)."""
    monkeypatch.setattr(functional_module, "_partner_kernel", lambda *args: None)


@pytest.mark.parametrize(
    "b, n, n_in, p, dtype",
    [
        (1024, 300, 300, 15, torch.float32),  # setup 2's shape, smaller: partners of the layer itself
        (37, 19, 45, 7, torch.float32),  # no size a multiple of the kernel's blocks (16 neurons, 4 partners)
        (1100, 33, 64, 1, torch.float64),  # one partner; more samples than one accumulator row
        (5, 1, 3, 3, torch.float64),  # one neuron reading every input
    ],
)
def test_compiled_partner_product_agrees_with_the_pytorch_path(
    b: int, n: int, n_in: int, p: int, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_kernel() is not None, "the compiled kernel did not build"
    gen = torch.Generator().manual_seed(b + n + p)
    index = _partners(n, n_in, p, b)
    values = torch.randn(n, p, generator=gen, dtype=dtype)
    # a strided input (a transposed view) and a strided upstream gradient
    x = torch.randn(n_in, b, generator=gen, dtype=dtype).t()
    up = torch.randn(n, b, generator=gen, dtype=dtype).t()
    results = []
    for patch in (False, True):
        if patch:
            _torch_path(monkeypatch)
        v = values.clone().requires_grad_(True)
        out = sparse_aggregate(x, v, index)
        out.backward(up)
        results.append((out.detach(), v.grad))
    (out_k, grad_k), (out_t, grad_t) = results
    assert out_k.is_contiguous() and out_k.shape == (b, n)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out_k, out_t, rtol=0, atol=tol)
    torch.testing.assert_close(grad_k, grad_t, rtol=tol, atol=tol * b)
    # and both against the independent dense reference, in float64
    dense = _dense(values.double(), index, n_in)
    torch.testing.assert_close(out_k.double(), x.double() @ dense.T, rtol=0, atol=tol * 10)
    ref_grad = (up.double().T @ x.double()).gather(1, index)
    torch.testing.assert_close(grad_k.double(), ref_grad, rtol=tol, atol=tol * b)


def test_compiled_partner_forward_adds_the_partners_in_order() -> None:
    """Each output is the float32 sum of its partners' products taken one after another."""
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    gen = torch.Generator().manual_seed(7)
    index = _partners(21, 50, 9, 8)
    values = torch.randn(21, 9, generator=gen) * 0.1
    x = torch.randint(0, 2, (70, 50), generator=gen).float() * 2 - 1
    out = sparse_aggregate(x, values, index)
    expected = torch.zeros(70, 21)
    for q in range(9):
        expected = expected + values[:, q] * x[:, index[:, q]]
    assert torch.equal(out, expected)


def test_compiled_partner_product_rejects_an_index_out_of_range() -> None:
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    x = torch.randn(8, 5)
    values = torch.randn(3, 2)
    for bad in (torch.tensor([[0, 5], [1, 2], [3, 4]]), torch.tensor([[0, 1], [-1, 2], [3, 4]])):
        with pytest.raises(RuntimeError, match=r"partner index out of range \[0, 5\)"):
            sparse_aggregate(x, values, bad)


class _FloatKernel:
    """The compiled kernel without its spike path (as a kernel built before it had one)."""

    def __init__(self, kernel: object) -> None:
        self._kernel = kernel

    def __getattr__(self, name: str) -> object:
        if name.startswith("sign_pack") or name.endswith("_signs"):
            raise AttributeError(name)
        return getattr(self._kernel, name)


def _spikes(b: int, n: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (b, n), generator=gen).float() * 2 - 1


@pytest.mark.parametrize(
    "b, n, n_in, p",
    [
        (1024, 300, 300, 15),  # setup 2's lateral class, smaller
        (37, 19, 45, 7),  # no size a multiple of the blocks (16 samples, 64 bits, 8 neurons, 8 partners)
        (1, 5, 3, 3),  # one sample
        (300, 9, 700, 1),  # one partner; more samples than one block of 256; inputs over one task of 512
    ],
)
def test_spike_partner_product_gives_the_float_kernels_bits(
    b: int, n: int, n_in: int, p: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """x of +-1 runs on bits: output and gradient equal the float kernel's to the bit (every version
    of the spike kernels this CPU runs: AVX-512, AVX2 and the portable one)."""
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    gen = torch.Generator().manual_seed(b + n + p)
    index = _partners(n, n_in, p, b)
    values = torch.randn(n, p, generator=gen) * 0.1
    x = _spikes(n_in, b, gen).t()  # strided
    up = torch.randn(n, b, generator=gen).t()
    results = []
    # the spike path through the autograd function also where no vector version runs (there the
    # product takes the float kernel: test_spikes_take_the_bit_kernel_only_where_it_is_vectorised)
    monkeypatch.setattr(functional_module, "spike_kernel_vectorised", lambda kernel: True)
    for patch in (False, True):
        if patch:
            monkeypatch.setattr(functional_module, "active_kernel", lambda: _FloatKernel(kernel))
        v = values.clone().requires_grad_(True)
        out = sparse_aggregate(x, v, index)
        out.backward(up)
        results.append((out.detach(), v.grad))
    (out_s, grad_s), (out_f, grad_f) = results
    assert torch.equal(out_s, out_f) and torch.equal(grad_s, grad_f)
    words = kernel.sign_pack(x)
    paths = kernel.vector_paths()
    assert paths[-1] == "generic"
    for path in ("best", *paths):
        assert torch.equal(kernel.partner_forward_signs(words, values, index, b, path), out_f), path
        assert torch.equal(kernel.partner_backward_signs(up, words, index, path), grad_f), path
        nm = kernel.partner_forward_signs(words, values, index, b, path, neuron_major=True)
        assert nm.t().is_contiguous() and torch.equal(nm, out_f), path
    # and against the dense float64 reference
    dense = _dense(values.double(), index, n_in)
    torch.testing.assert_close(out_s.double(), x.double() @ dense.T, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        grad_s.double(), (up.double().T @ x.double()).gather(1, index), rtol=1e-5, atol=1e-3
    )


class _SpyKernel(_FloatKernel):
    """The compiled kernel, counting the calls of its functions."""

    def __init__(self, kernel: object) -> None:
        super().__init__(kernel)
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> object:
        function = getattr(self._kernel, name)

        def call(*args: object, **kwargs: object) -> object:
            self.calls.append(name)
            return function(*args, **kwargs)  # type: ignore[operator]

        return call


@pytest.mark.parametrize("vectorised", [True, False])
def test_spikes_take_the_bit_kernel_only_where_it_is_vectorised(
    vectorised: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bit kernels' portable version is about 30x slower than the float kernel: a CPU without
    AVX2 multiplies spikes with the float kernel (the same bits)."""
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    spy = _SpyKernel(kernel)
    monkeypatch.setattr(functional_module, "active_kernel", lambda: spy)
    monkeypatch.setattr(functional_module, "spike_kernel_vectorised", lambda kernel: vectorised)
    gen = torch.Generator().manual_seed(5)
    index = _partners(40, 300, 15, 2)
    values = torch.randn(40, 15, generator=gen, requires_grad=True)
    x = _spikes(64, 300, gen)
    sparse_aggregate(x, values, index).sum().backward()
    used = set(spy.calls)
    if vectorised:
        assert {"sign_pack", "partner_forward_signs", "partner_backward_signs"} <= used
    else:
        assert not {name for name in used if "sign" in name}
        assert {"transpose_tiled", "partner_forward", "partner_backward"} <= used


def test_a_neuron_major_input_is_not_transposed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The spikes of a large layer are stored neuron by neuron: x.T is contiguous already, so the
    float kernel reads it as it is (no tiled copy) and gives the bits of a row-major copy of x."""
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    spy = _SpyKernel(kernel)
    monkeypatch.setattr(functional_module, "active_kernel", lambda: spy)
    monkeypatch.setattr(functional_module, "spike_kernel_vectorised", lambda kernel: False)
    gen = torch.Generator().manual_seed(6)
    index = _partners(40, 300, 15, 3)
    values = torch.randn(40, 15, generator=gen)
    x = _spikes(300, 64, gen).t()  # (64, 300), neuron-major
    up = torch.randn(64, 40, generator=gen)
    results = []
    for given in (x, x.contiguous()):
        spy.calls.clear()
        v = values.clone().requires_grad_(True)
        out = sparse_aggregate(given, v, index)
        out.backward(up)
        results.append((out.detach(), v.grad, "transpose_tiled" in spy.calls))
    (out_nm, grad_nm, copied_nm), (out_rm, grad_rm, copied_rm) = results
    assert not copied_nm and copied_rm
    assert torch.equal(out_nm, out_rm) and torch.equal(grad_nm, grad_rm)


class _PathsKernel:
    """A kernel stand-in whose spike products run the versions ``paths`` (None: a kernel built
    before ``vector_paths``, which had only the AVX-512 version)."""

    def __init__(self, paths: list[str] | None) -> None:
        if paths is not None:
            self.vector_paths = lambda: paths


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["avx512", "avx2", "generic"], {"AVX512": True, "AVX2": True, "DEFAULT": False}),
        (["avx2", "generic"], {"AVX512": True, "AVX2": True, "DEFAULT": False}),
        (["generic"], {"AVX512": False, "AVX2": False, "DEFAULT": False}),
        (None, {"AVX512": True, "AVX2": False, "DEFAULT": False}),
    ],
)
def test_the_vector_spike_kernel_follows_pytorchs_cpu_dispatch(
    paths: list[str] | None, expected: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel = _PathsKernel(paths)
    for capability, vectorised in expected.items():
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert functional_module.spike_kernel_vectorised(kernel) is vectorised, capability


def test_a_spike_product_path_this_cpu_lacks_is_refused_by_name() -> None:
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    words = kernel.sign_pack(torch.ones(8, 3))
    index = torch.zeros(2, 1, dtype=torch.int64)
    values = torch.ones(2, 1)
    for path in ("avx1024", "AVX2", ""):
        with pytest.raises(RuntimeError, match=f"path '{path}' does not run on this CPU; it runs: best, "):
            kernel.partner_forward_signs(words, values, index, 8, path)
        with pytest.raises(RuntimeError, match=f"path '{path}' does not run on this CPU"):
            kernel.partner_backward_signs(torch.ones(8, 2), words, index, path)


def test_sign_pack_holds_the_bits_and_refuses_anything_but_plus_minus_one() -> None:
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    gen = torch.Generator().manual_seed(3)
    x = _spikes(130, 600, gen)
    words = kernel.sign_pack(x)
    assert words.shape == (600, 3) and words.dtype == torch.int64
    bits = (words.view(torch.uint8).reshape(600, 24, 1) >> torch.arange(8, dtype=torch.uint8)) & 1
    assert torch.equal(bits.reshape(600, 192)[:, :130].bool(), (x > 0).T)
    assert not bits.reshape(600, 192)[:, 130:].any()
    for bad in (0.0, -0.0, 0.5, float("nan"), float("inf"), 1.0000001, -3.0):
        y = x.clone()
        y[129, 599] = bad
        assert kernel.sign_pack(y).numel() == 0, bad
        # the product then takes the float kernel: still the right numbers
        index = _partners(4, 600, 5, 1)
        values = torch.randn(4, 5, generator=gen)
        ref = y.double() @ _dense(values.double(), index, 600).double().T
        out = sparse_aggregate(y, values, index)
        if bad == bad and abs(bad) != float("inf"):
            torch.testing.assert_close(out.double(), ref, rtol=0, atol=1e-4)


def test_spike_partner_product_passes_the_gradient_of_x_and_checks_the_index() -> None:
    gen = torch.Generator().manual_seed(11)
    index = _partners(6, 20, 4, 2)
    values = torch.randn(6, 4, generator=gen, requires_grad=True)
    x = _spikes(33, 20, gen).requires_grad_(True)
    out = sparse_aggregate(x, values, index)
    up = torch.randn(33, 6, generator=gen)
    out.backward(up)
    assert x.grad is not None
    torch.testing.assert_close(x.grad, up @ _dense(values.detach(), index, 20), rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match=r"partner index out of range \[0, 20\)"):
        sparse_aggregate(x.detach(), values.detach(), torch.full((6, 4), 20))


@pytest.mark.parametrize(
    "partners, n_inputs, sparse",
    [
        (100, 2000, True),
        (101, 2000, False),
        (250, 2000, False),
        (2, 40, True),
        (3, 40, False),
        (4, 40, False),
        (100, 100, False),
        (3, 8, False),
    ],
)
def test_storage_rule(partners: int, n_inputs: int, sparse: bool) -> None:
    assert prefer_sparse(partners, n_inputs) is sparse


# ------------------------------------------------------------------ partners
@pytest.mark.parametrize("n, m", [(30, 5), (12, 11), (12, 100), (7, 0), (1, 3)])
def test_lateral_partners_are_the_lateral_mask(n: int, m: int) -> None:
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    index = lateral_partners(n, m, g1)
    assert index.dtype == torch.int64 and index.shape == (n, min(m, n - 1))
    assert torch.equal(partner_mask(index, n), lateral_mask(n, m, g2))
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))  # the same draws


@pytest.mark.parametrize("n, n_in, p", [(20, 50, 7), (5, 4, 9)])
def test_random_partners_are_the_old_random_mask(n: int, n_in: int, p: int) -> None:
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    index = _random_partners(n, n_in, p, g1)
    if p >= n_in:  # the old code: all ones, no draw
        old = torch.ones(n, n_in)
    else:
        keep = torch.rand(n, n_in, generator=g2).topk(p, dim=1).indices
        old = torch.zeros(n, n_in).scatter_(1, keep, 1.0)
    assert torch.equal(partner_mask(index, n_in), old)
    assert bool((index[:, 1:] > index[:, :-1]).all())  # sorted rows
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


# ------------------------------------------------------------------ the layer
N, NF, NC = 30, 12, 4
TPE = Goal.preset("trivariate-mnist-tpe")


def _layer(sparse: bool | None, seed: int = 0, dtype: torch.dtype = torch.float32) -> InfomorphicLayer:
    index = lateral_partners(N, 3, torch.Generator().manual_seed(11))
    layer = InfomorphicLayer(
        N,
        {"F": NF, "C": NC, "L": N},
        TPE,
        partners={"L": index},
        sparse=sparse,
        generator=torch.Generator().manual_seed(seed),
    )
    return layer.to(dtype)


def _inputs(batch: int = 96, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "F": (torch.randn(batch, NF, generator=gen) * 3).to(dtype),
        "C": torch.nn.functional.one_hot(torch.randint(0, NC, (batch,), generator=gen), NC).to(dtype),
        "L": (torch.randint(0, 2, (batch, N), generator=gen) * 2 - 1).to(dtype),
    }


@pytest.mark.parametrize("block", [None, 50])
def test_sparse_init_equals_the_masked_init(block: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if block is not None:  # draw the dense uniform matrix in blocks of 4 rows: the same numbers
        monkeypatch.setattr(layer_module, "_DRAW_BLOCK", block)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    index = lateral_partners(N, 3, torch.Generator().manual_seed(11))
    sparse = InfomorphicLayer(
        N, {"F": NF, "C": NC, "L": N}, TPE, partners={"L": index}, sparse=True, generator=g1
    )
    masked = InfomorphicLayer(
        N,
        {"F": NF, "C": NC, "L": N},
        TPE,
        masks={"L": lateral_mask(N, 3, torch.Generator().manual_seed(11))},
        generator=g2,
    )
    assert sparse.is_sparse("L") and not masked.is_sparse("L")
    assert sparse.weight["L"].shape == (N, 3) and sparse.partners("L").shape == (N, 3)
    assert torch.equal(sparse.effective_weight("L"), masked.weight["L"])
    assert torch.equal(sparse.mask("L"), masked.mask("L"))
    assert torch.equal(sparse.weight["L"], masked.weight["L"].gather(1, index))
    for k in ("F", "C"):
        assert torch.equal(sparse.weight[k], masked.weight[k])
    for k in "FCL":
        assert torch.equal(sparse.bias[k], masked.bias[k])
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    assert "L=30[3 partners]" in repr(sparse)


def test_the_rule_decides_the_storage_by_default() -> None:
    few = lateral_partners(N, 1, torch.Generator().manual_seed(0))  # 1 of 30 <= 1/20: sparse
    assert InfomorphicLayer(N, {"F": NF, "L": N}, partners={"L": few}).is_sparse("L")
    assert not _layer(None).is_sparse("L")  # 3 of 30 = 0.1: masked
    index = lateral_partners(N, 10, torch.Generator().manual_seed(0))  # 10 of 30: masked
    layer = InfomorphicLayer(N, {"F": NF, "L": N}, partners={"L": index})
    assert not layer.is_sparse("L") and torch.equal(layer.mask("L"), partner_mask(index, N))
    assert "mask_L" in layer.state_dict() and "index_L" not in layer.state_dict()


def test_sparse_layer_computes_the_masked_layer_float64() -> None:
    sparse, masked = _layer(True, dtype=torch.float64), _layer(False, dtype=torch.float64)
    inputs = _inputs(dtype=torch.float64)
    a, b = sparse(inputs), masked(inputs)
    torch.testing.assert_close(a.aggregates, b.aggregates, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.theta, b.theta, rtol=0, atol=1e-12)
    assert torch.equal(sparse.bins(a.aggregates), masked.bins(b.aggregates))
    ga, gb = sparse.local_goal(a), masked.local_goal(b)
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-12)
    (-ga.sum()).backward()
    (-gb.sum()).backward()
    index = sparse.partners("L")
    torch.testing.assert_close(
        sparse.weight["L"].grad, masked.weight["L"].grad.gather(1, index), rtol=0, atol=1e-12
    )
    # off the partners the dense gradient is exactly zero: nothing is lost by storing only the partners
    assert torch.count_nonzero(masked.weight["L"].grad * (1 - masked.mask("L"))) == 0
    for k in ("F", "C"):
        torch.testing.assert_close(sparse.weight[k].grad, masked.weight[k].grad, rtol=0, atol=1e-12)


def test_storage_conversion_round_trip_keeps_the_parameter() -> None:
    layer = _layer(True)
    param, index = layer.weight["L"], layer.partners("L").clone()
    dense = layer.effective_weight("L").detach().clone()
    layer.set_storage_("L", False)
    assert layer.weight["L"] is param and param.shape == (N, N)
    assert torch.equal(param.detach(), dense) and torch.equal(layer.mask("L"), partner_mask(index, N))
    assert set(layer.state_dict()) >= {"mask_L", "weight.L"} and "index_L" not in layer.state_dict()
    layer.set_storage_("L", True)
    assert layer.weight["L"] is param and param.shape == (N, 3)
    assert torch.equal(layer.partners("L"), index) and torch.equal(layer.effective_weight("L"), dense)
    with pytest.raises(ValueError, match="dense \\(no mask\\)"):
        layer.set_storage_("F", True)
    ragged = InfomorphicLayer(
        3, {"F": 4, "C": 2}, masks={"F": torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 0, 0.0]])}
    )
    with pytest.raises(ValueError, match="1 to 2 connections per neuron"):
        ragged.set_storage_("F", True)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(N, 3, dtype=torch.long), "distinct in every row"),
        (torch.full((N, 3), 40) + torch.arange(3), r"must lie in \[0, 30\)"),
        (torch.zeros(N - 1, 3, dtype=torch.long), r"integers of shape \(30, P\)"),
        (torch.zeros(N, 3), r"integers of shape \(30, P\)"),
    ],
)
def test_bad_partners(bad: torch.Tensor, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        InfomorphicLayer(N, {"F": NF, "L": N}, partners={"L": bad})


def test_partners_and_mask_for_one_class_is_an_error() -> None:
    with pytest.raises(ValueError, match="has partners and a mask"):
        InfomorphicLayer(
            N, {"F": NF, "L": N}, partners={"L": lateral_partners(N, 3)}, masks={"L": lateral_mask(N)}
        )


# ------------------------------------------------------------------ checkpoints
def _legacy(seed: int = 0) -> LegacyNetwork:
    return LegacyNetwork(
        D, K, "trivariate", setup=2, n_hidden=HID, lateral_partners=PART, generator=generator(seed, "init")
    )


def _new(seed: int = 0) -> InfomorphicNetwork:
    return InfomorphicNetwork(
        D, K, "trivariate", setup=2, n_hidden=HID, lateral_partners=PART, generator=generator(seed, "init")
    )


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(128, D, generator=gen) * 2, torch.randint(0, K, (128,), generator=gen)


def _step(net: torch.nn.Module, opts: dict[str, torch.optim.Optimizer], seed: int) -> None:
    out = net(*_batch(seed), torch.Generator().manual_seed(seed))
    goals = net.local_goals(out)
    for o in opts.values():
        o.zero_grad()
    (-sum(g.sum() for g in goals.values())).backward()
    for o in opts.values():
        o.step()


def _adam(net: torch.nn.Module) -> dict[str, torch.optim.Optimizer]:
    return {
        n: torch.optim.Adam(layer.parameters(), lr=0.01, weight_decay=1e-3, fused=True)
        for n, layer in net.layers().items()
    }


def test_old_checkpoint_loads_and_trains_on_like_the_old_network() -> None:
    """A legacy setup-2 state dict (dense weight.L + mask_L) and its Adam state load into the new network
    (built sparse, optimisers built before loading, as --resume does), which then trains on bit for bit."""
    old = _legacy()
    old_opts = _adam(old)
    _step(old, old_opts, 1)
    # copies, as a checkpoint file holds (an optimiser's state_dict shares the live moment tensors)
    model, optim = copy.deepcopy((old.state_dict(), {n: o.state_dict() for n, o in old_opts.items()}))
    assert model["hidden.weight.L"].shape == (HID, HID) and "hidden.mask_L" in model

    new = _new(seed=7)  # different weights: everything must come from the checkpoint
    assert new.hidden.is_sparse("L")
    new_opts = _adam(new)
    param = new.hidden.weight["L"]
    new.load_state_dict(model)
    for n, o in new_opts.items():
        o.load_state_dict(optim[n])
    assert new.hidden.weight["L"] is param and not new.hidden.is_sparse("L")  # adopted the dense storage
    assert new.state_dict().keys() == model.keys()
    assert all(torch.equal(new.state_dict()[k], model[k]) for k in model)
    for seed in (2, 3):
        _step(old, old_opts, seed)
        _step(new, new_opts, seed)
    after, expected = new.state_dict(), old.state_dict()
    assert all(torch.equal(after[k], expected[k]) for k in expected)


def test_sparse_checkpoint_round_trip() -> None:
    net = _new()
    state = net.state_dict()
    assert state["hidden.weight.L"].shape == (HID, PART) and state["hidden.index_L"].shape == (HID, PART)
    assert "hidden.mask_L" not in state
    other = _new(seed=5)
    other.hidden.set_storage_("L", False)  # a masked class adopts the sparse storage of the state dict
    other.load_state_dict(state)
    assert other.hidden.is_sparse("L")
    assert all(torch.equal(other.state_dict()[k], v) for k, v in state.items())
    x, y = _batch(0)
    assert torch.equal(
        other(x, y, torch.Generator().manual_seed(0)).readout.theta,
        net(x, y, torch.Generator().manual_seed(0)).readout.theta,
    )
    state["hidden.index_L"] = state["hidden.index_L"] + HID  # out of range: refused, naming the class
    with pytest.raises(RuntimeError, match="partners of 'L' must lie in"):
        _new().load_state_dict(state)


def _metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("train_seconds", "eval_seconds")}
        for line in lines
    ]


def _setup2_config(tmp_path: Path, epochs: int) -> TrainConfig:
    """The small setup-2 run (sparse lateral partners) of the resume tests."""
    return TrainConfig(
        network="trivariate",
        setup=2,
        hidden=HID,
        lateral_partners=PART,
        epochs=epochs,
        batch_size=256,
        baselines=(),
        threads=1,
        out_dir=str(tmp_path),
    )


def test_an_old_run_resumes_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A setup-2 run written by the old network resumes (continuing exactly as the old network would)
    and reports with the new code."""
    import infomorphic.train.loop as loop
    from infomorphic.train import fit

    def config(epochs: int) -> TrainConfig:
        return _setup2_config(tmp_path, epochs)

    class Legacy(LegacyNetwork):  # the old loop's optimiser settings: hidden, then readout
        def optimizer_settings(self, hidden: tuple, readout: tuple) -> dict:
            return {"hidden": hidden, "readout": readout}

    with monkeypatch.context() as m:
        m.setattr(
            loop,
            "build_network",
            lambda c, n_in, n_cls: Legacy(
                n_in,
                n_cls,
                "trivariate",
                setup=2,
                n_hidden=HID,
                lateral_partners=PART,
                generator=generator(c.seed, "init"),
            ),
        )
        fit(config(1), run_dir=tmp_path / "old", progress=False)
        fit(config(2), run_dir=tmp_path / "reference", progress=False)
    assert "hidden.mask_L" in torch.load(tmp_path / "old" / "checkpoint.pt", weights_only=True)["model"]
    assert loop.build_network(config(2), 64, 10).hidden.is_sparse("L")  # the new code builds it sparse

    res = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "old"), "--epochs", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["epochs"] == 2
    assert _metrics(tmp_path / "old") == _metrics(tmp_path / "reference")
    with np.load(tmp_path / "old" / "atoms.npz") as a, np.load(tmp_path / "reference" / "atoms.npz") as b:
        for key in b.files:
            np.testing.assert_array_equal(a[key], b[key])

    res = CliRunner().invoke(app, ["report", str(tmp_path / "old"), "--no-data"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "old" / "report" / "report.html").exists()


def test_a_sparse_run_resumes_like_an_uninterrupted_one(tmp_path: Path) -> None:
    from infomorphic.train import fit

    def config(epochs: int) -> TrainConfig:
        return _setup2_config(tmp_path, epochs)

    fit(config(1), run_dir=tmp_path / "a", progress=False)
    ckpt = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert ckpt["model"]["hidden.weight.L"].shape == (HID, PART)  # written sparse
    fit(config(2), run_dir=tmp_path / "a", resume=True, progress=False)
    fit(config(2), run_dir=tmp_path / "b", progress=False)
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


# ------------------------------------------------------------------ CUDA
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sparse_aggregate_on_cuda_matches_the_cpu() -> None:
    gen = torch.Generator().manual_seed(0)
    index = lateral_partners(500, 25, gen)
    values = torch.randn(500, 25, generator=gen, dtype=torch.float64)
    x = torch.randn(256, 500, generator=gen, dtype=torch.float64)
    up = torch.randn(256, 500, generator=gen, dtype=torch.float64)
    vc, vg = values.clone().requires_grad_(True), values.cuda().requires_grad_(True)
    out_c, out_g = sparse_aggregate(x, vc, index), sparse_aggregate(x.cuda(), vg, index.cuda())
    out_c.backward(up)
    out_g.backward(up.cuda())
    torch.testing.assert_close(out_g.cpu(), out_c, rtol=0, atol=1e-10)
    torch.testing.assert_close(vg.grad.cpu(), vc.grad, rtol=0, atol=1e-10)
    net = _new().cuda()
    x32, y32 = _batch(0)
    out = net(x32.cuda(), y32.cuda(), torch.Generator(device="cuda").manual_seed(0))
    (-sum(g.sum() for g in net.local_goals(out).values())).backward()
    assert net.hidden.is_sparse("L") and net.hidden.weight["L"].grad.shape == (HID, PART)
