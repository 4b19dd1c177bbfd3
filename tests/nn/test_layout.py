"""Neuron-major storage: a large layer on the CPU keeps its aggregates, firing probabilities, bins,
spikes and gradients neuron by neuron (the transposed view of an ``(N, B)`` tensor).  Each kernel
that follows the layout is checked against the sample-major computation: the same values (to the
bit where the arithmetic is the same, to float rounding where a matrix product reads its
operands in another order)."""

from __future__ import annotations

import pytest
import torch

import infomorphic.nn.layer as layer_module
from infomorphic.goals import Goal
from infomorphic.nn.functional import (
    aggregate,
    fused_theta,
    is_neuron_major,
    lateral_partners,
    sample_binary,
    sparse_aggregate,
)
from infomorphic.nn.layer import InfomorphicLayer
from infomorphic.pid.kernel import load_kernel

TPE = Goal.preset("trivariate-mnist-tpe")


def _neuron_major(x: torch.Tensor) -> torch.Tensor:
    return x.t().contiguous().t()


def _kernel():  # noqa: ANN202
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    return kernel


def test_aggregate_neuron_major_is_the_same_product() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(300, 70, generator=gen)
    w = torch.randn(260, 70, generator=gen)
    b = torch.randn(260, generator=gen)
    ref = aggregate(x, w, b).double()
    for bias in (b, None):
        out = aggregate(x, w, bias, neuron_major=True)
        assert is_neuron_major(out)
        torch.testing.assert_close(
            out.double(), ref - (0 if bias is not None else b.double()), rtol=1e-5, atol=1e-5
        )
    # a neuron-major input (the spikes of such a layer) is read in rows, whatever was asked
    s = _neuron_major(torch.randint(0, 2, (300, 70), generator=gen).float() * 2 - 1)
    torch.testing.assert_close(
        aggregate(s, w, b).double(), s.double() @ w.double().T + b.double(), rtol=1e-5, atol=1e-4
    )


def test_fused_activation_follows_the_layout_of_f() -> None:
    """Elementwise: every value and gradient the same bits in either layout, also when the
    modulators come in another layout (copied to f's) or expanded (a missing class's bias)."""
    gen = torch.Generator().manual_seed(1)
    f, c, lat = (torch.randn(130, 270, generator=gen) for _ in range(3))
    bias = torch.randn(270, generator=gen)
    up = torch.randn(130, 270, generator=gen)
    results = []
    for layout in ("sample", "neuron", "mixed"):
        tensors = [f, c, lat]
        if layout != "sample":
            tensors = [_neuron_major(t) for t in tensors]
        if layout == "mixed":
            tensors[2] = bias.expand(130, -1)
        leaves = [
            t.clone().requires_grad_(True) if t.is_contiguous() or is_neuron_major(t) else t for t in tensors
        ]
        theta = fused_theta("trivariate", {}, *leaves)
        assert theta is not None
        if layout != "sample":
            assert is_neuron_major(theta)
        theta.backward(up)
        results.append((theta.detach(), [t.grad for t in leaves[:2]]))
    (t0, g0), (t1, g1), _ = results
    assert torch.equal(t0, t1) and all(torch.equal(a, b) for a, b in zip(g0, g1))
    t2, _ = results[2]
    ref = fused_theta("trivariate", {}, f, c, bias.expand(130, -1))
    assert ref is not None and torch.equal(t2, ref)


def test_fixed_bins_are_stored_by_neuron_whatever_the_parts_layout() -> None:
    """The PID kernel reads each neuron's samples in a row: the one-pass binning writes them so
    for sample-major, neuron-major and mixed parts, with bin_fixed's integers."""
    from infomorphic.estimate import bin_fixed

    kernel = _kernel()
    gen = torch.Generator().manual_seed(2)
    parts = [torch.randn(100, 300, generator=gen) * 8 for _ in range(3)]
    ref = bin_fixed(torch.stack(parts, dim=2), 20, -20.0, 20.0, dtype=torch.int32)  # (B, N, K)
    layouts = {
        "sample-major": parts,
        "neuron-major": [_neuron_major(p) for p in parts],
        "mixed": [_neuron_major(parts[0]), parts[1], parts[2]],
    }
    for name, given in layouts.items():
        bins = kernel.bins_fixed(given, 20, -20.0, 20.0).permute(
            1, 2, 0
        )  # (B, N, K) as the layer hands it on
        assert torch.equal(bins, ref), name
        assert bins.stride(0) == 1 and bins.stride(1) == 100, name  # each neuron's samples in a row
    # one sample or one neuron: nothing to gain, stored as given
    assert torch.equal(kernel.bins_fixed([p[:1] for p in parts], 20, -20.0, 20.0).permute(1, 2, 0), ref[:1])
    assert torch.equal(
        kernel.bins_fixed([p[:, :1] for p in parts], 20, -20.0, 20.0).permute(1, 2, 0), ref[:, :1]
    )


def test_sampling_a_neuron_major_theta_draws_the_same_spikes() -> None:
    theta = torch.rand(257, 301, generator=torch.Generator().manual_seed(3))
    a = sample_binary(theta, torch.Generator().manual_seed(9))
    b = sample_binary(_neuron_major(theta), torch.Generator().manual_seed(9))
    assert is_neuron_major(b) and torch.equal(a, b)


@pytest.mark.parametrize("spikes", [True, False])
def test_partner_product_writes_neuron_major_output(spikes: bool) -> None:
    gen = torch.Generator().manual_seed(4)
    index = lateral_partners(300, 12, gen)
    values = torch.randn(300, 12, generator=gen)
    x = (
        torch.randint(0, 2, (200, 300), generator=gen).float() * 2 - 1
        if spikes
        else torch.randn(200, 300, generator=gen)
    )
    up = torch.randn(200, 300, generator=gen)
    outs = []
    for neuron_major in (False, True):
        v = values.clone().requires_grad_(True)
        out = sparse_aggregate(x, v, index, neuron_major=neuron_major)
        out.backward(_neuron_major(up) if neuron_major else up)
        assert is_neuron_major(out) is neuron_major
        outs.append((out.detach(), v.grad))
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])
    # and the packing of neuron-major spikes holds the same bits
    if spikes:
        kernel = _kernel()
        assert torch.equal(kernel.sign_pack(_neuron_major(x)), kernel.sign_pack(x))


def _layer_step(neuron_major: bool, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    monkeypatch.setattr(layer_module, "NEURON_MAJOR_MIN_NEURONS", 1 if neuron_major else 10**9)
    n, nf, nc, batch = 300, 50, 10, 512
    gen = torch.Generator().manual_seed(5)
    layer = InfomorphicLayer(
        n, {"F": nf, "C": nc, "L": n}, TPE, generator=gen, partners={"L": lateral_partners(n, 10, gen)}
    )
    data = torch.Generator().manual_seed(6)
    inputs = {
        "F": torch.rand(batch, nf, generator=data) * 4,
        "C": torch.nn.functional.one_hot(torch.randint(0, nc, (batch,), generator=data), nc).float(),
    }
    first = layer(inputs)
    spikes = layer.sample(first.theta, torch.Generator().manual_seed(7))
    out = layer({"L": spikes}, reuse=first)
    goal = layer.local_goal(out)
    goal.sum().backward()
    grads = {name: p.grad.clone() for name, p in layer.named_parameters()}
    return first.theta.detach(), spikes, out.theta.detach(), goal.detach(), grads


def test_a_large_layer_is_neuron_major_and_computes_the_same_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two presentations (the second with the first's spikes as lateral input), the local goal and
    its gradient: the same in either storage, to the rounding of the matrix products."""
    theta_a, spikes_a, out_a, goal_a, grads_a = _layer_step(False, monkeypatch)
    theta_b, spikes_b, out_b, goal_b, grads_b = _layer_step(True, monkeypatch)
    assert theta_a.is_contiguous() and is_neuron_major(theta_b) and is_neuron_major(out_b)
    torch.testing.assert_close(theta_b, theta_a, rtol=0, atol=1e-6)
    assert torch.equal(spikes_a, spikes_b)  # no probability within rounding of its uniform number here
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(goal_b, goal_a, rtol=1e-5, atol=1e-7)
    for name, g in grads_a.items():
        torch.testing.assert_close(grads_b[name], g, rtol=1e-4, atol=1e-5 * float(g.abs().max())), name


def test_small_layers_stay_sample_major(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = InfomorphicLayer(8, {"F": 5, "C": 3, "L": 8}, TPE)
    out = layer({"F": torch.rand(20, 5), "C": torch.rand(20, 3)})
    assert out.theta.is_contiguous()
    assert layer_module.NEURON_MAJOR_MIN_NEURONS > 8
