"""The fused activation of the compiled kernel (``fused_theta``) against independent references.

References: the PyTorch expressions of the built-in activations (``trivariate_activation`` etc.)
with ``torch.sigmoid`` and autograd, finite differences (``torch.autograd.gradcheck`` in float64)
and the exact trivariate neuron for a four-source neuron whose fourth class is 0.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from infomorphic.nn.functional import (
    ACTIVATION_DEFAULTS,
    bivariate_activation,
    fused_theta,
    quadrivariate_activation,
    trivariate_activation,
)
from infomorphic.nn.layer import InfomorphicLayer, LayerOutput
from infomorphic.pid.kernel import load_kernel

CASES: list[tuple[str, Callable[..., torch.Tensor], int, dict[str, float]]] = [
    ("bivariate", bivariate_activation, 1, {}),
    ("bivariate", bivariate_activation, 1, {"k1": 1.0}),  # the readout: A = f
    ("bivariate", bivariate_activation, 1, {"k1": 0.3, "k2": -1.5}),
    ("trivariate", trivariate_activation, 2, {}),
    ("trivariate", trivariate_activation, 2, {"alpha1": 0.3, "alpha2": 0.05, "beta1": 0.7, "beta2": 3.0}),
    ("quadrivariate", quadrivariate_activation, 3, {}),
    ("quadrivariate", quadrivariate_activation, 3, {"alpha3": 0.25, "beta3": -2.0}),
]


@pytest.fixture(autouse=True)
def _kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFOMORPHIC_KERNEL", raising=False)
    assert load_kernel() is not None, "the compiled kernel did not build"


def _tensors(n: int, dtype: torch.dtype, scale: float, seed: int = 0, shape=(64, 37)) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(shape, generator=gen, dtype=dtype) * scale).requires_grad_() for _ in range(n + 1)]


def _reference(
    fn: Callable[..., torch.Tensor], params: dict[str, float], xs: list[torch.Tensor]
) -> torch.Tensor:
    return torch.sigmoid(fn(*xs, **params))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [0.5, 8.0])  # 8: many saturated neurons
@pytest.mark.parametrize(("name", "fn", "n_mods", "params"), CASES)
def test_fused_theta_and_gradients_match_the_pytorch_expression(
    name: str,
    fn: Callable[..., torch.Tensor],
    n_mods: int,
    params: dict[str, float],
    dtype: torch.dtype,
    scale: float,
) -> None:
    xs = _tensors(n_mods, dtype, scale)
    theta = fused_theta(name, {**ACTIVATION_DEFAULTS[name], **params}, *xs)
    assert theta is not None and theta.dtype == dtype and theta.shape == xs[0].shape
    expected = _reference(fn, params, xs)
    tol = {"rtol": 0, "atol": 3e-7} if dtype == torch.float32 else {"rtol": 0, "atol": 1e-15}
    torch.testing.assert_close(theta, expected, **tol)
    upstream = torch.randn(theta.shape, generator=torch.Generator().manual_seed(9), dtype=dtype)
    got = torch.autograd.grad(theta, xs, upstream)
    want = torch.autograd.grad(expected, xs, upstream)
    for g, w in zip(got, want):
        if not w.abs().max() > 0:  # k1 = 1: the context does not modulate (gradient exactly 0)
            assert torch.all(g == 0)
            continue
        gtol = 2e-6 if dtype == torch.float32 else 1e-13
        torch.testing.assert_close(g, w, rtol=0, atol=gtol * float(w.abs().max()))


@pytest.mark.parametrize(("name", "fn", "n_mods", "params"), CASES)
def test_fused_gradient_matches_finite_differences(
    name: str, fn: Callable[..., torch.Tensor], n_mods: int, params: dict[str, float]
) -> None:
    xs = _tensors(n_mods, torch.float64, 1.5, seed=3, shape=(5, 4))
    full = {**ACTIVATION_DEFAULTS[name], **params}
    assert torch.autograd.gradcheck(
        lambda *t: fused_theta(name, full, *t), xs, eps=1e-6, atol=1e-8, rtol=1e-6
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_silent_fourth_class_gives_the_trivariate_values_bit_for_bit(dtype: torch.dtype) -> None:
    f, c, lat = _tensors(2, dtype, 3.0, seed=4)
    b = torch.zeros_like(f, requires_grad=True)
    tri = fused_theta("trivariate", ACTIVATION_DEFAULTS["trivariate"], f, c, lat)
    quad = fused_theta("quadrivariate", ACTIVATION_DEFAULTS["quadrivariate"], f, c, lat, b)
    assert tri is not None and quad is not None
    assert torch.equal(quad, tri)
    upstream = torch.randn(f.shape, dtype=dtype)
    g3 = torch.autograd.grad(tri, (f, c, lat), upstream)
    g4 = torch.autograd.grad(quad, (f, c, lat, b), upstream)
    for a, e in zip(g4, g3):
        assert torch.equal(a, e)
    assert g4[3].abs().max() > 0  # the silent class still gets a gradient


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_saturation_stays_finite_and_nan_propagates(dtype: torch.dtype) -> None:
    f = torch.tensor([-1e4, -200.0, -90.0, 0.0, 90.0, 200.0, 1e4, float("nan")], dtype=dtype)
    c = torch.ones_like(f)
    theta = fused_theta("bivariate", {"k1": 0.5, "k2": 2.0}, f, c)
    assert theta is not None
    expected = torch.sigmoid(bivariate_activation(f, c))
    assert torch.isnan(theta[-1])
    finite = theta[:-1]
    assert torch.all((finite >= 0) & (finite <= 1))
    # float32 clamps the exponent to [-80, 80]: saturated values within 2e-35 of the exact ones
    torch.testing.assert_close(
        finite, expected[:-1], rtol=0, atol=2e-35 if dtype == torch.float32 else 1e-300
    )
    assert float(theta[3]) == 0.5


@pytest.mark.parametrize("modulators", [1, 2, 3])
@pytest.mark.parametrize("scale", [0.3, 4.0, 60.0])
def test_every_vector_path_gives_the_bits_of_the_loops_as_written(modulators: int, scale: float) -> None:
    """The kernel's versions of the float32 activation on this CPU (AVX2: the sigmoids in
    interleaved blocks of 32, the remainder one by one) against its loops as written for the
    baseline instruction set: theta and every gradient the same bits, NaN where those give NaN.
    On a CPU with AVX-512 the best path uses fused multiply-adds and is compared to rounding."""
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    gen = torch.Generator().manual_seed(modulators * 100 + int(scale))
    n = 64 * 37 + 29  # blocks of 256 and of 32, and a remainder of each
    f = torch.randn(n, generator=gen) * scale
    mods = [torch.randn(n, generator=gen) * scale for _ in range(modulators)]
    f[::17] = 0.0
    f[5::97] = float("inf")
    f[6::89] = -1e30
    mods[0][7::101] = float("nan")
    a = (0.3, 0.8, -0.5)[:modulators]
    b = (2.0, 0.7, 1.5)[:modulators]
    centred = (False, True, True)[:modulators]
    form = (0.6, list(a), list(b), list(centred))
    upstream = torch.randn(n, generator=gen)

    def run(path: str) -> list[torch.Tensor]:
        theta = kernel.act_forward(f, mods, *form, path=path)
        return [theta, *kernel.act_backward(upstream, theta, f, mods, *form, path=path)]

    reference = run("generic")
    assert torch.isnan(reference[0]).any() and not torch.isnan(reference[0]).all()
    for path in ("best", *kernel.vector_paths()):
        if path in ("avx512", "best") and kernel.vector_paths()[0] == "avx512":
            for got, want in zip(run(path), reference):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-30, equal_nan=True)
            continue
        for got, want in zip(run(path), reference):
            nan = torch.isnan(want)
            assert torch.equal(torch.isnan(got), nan), path
            assert torch.equal(got[~nan].view(torch.int32), want[~nan].view(torch.int32)), path


def test_an_activation_path_this_cpu_lacks_is_refused_by_name() -> None:
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    x = torch.ones(4)
    with pytest.raises(RuntimeError, match="path 'avx1024' does not run on this CPU; it runs: best, "):
        kernel.act_forward(x, [x], 0.5, [1.0], [1.0], [False], path="avx1024")


def test_the_kernel_leaves_subnormal_arithmetic_as_it_found_it() -> None:
    """The kernel flushes subnormals while it runs and must restore the thread's float mode."""
    tiny = torch.tensor([1e-38], dtype=torch.float32)
    assert float(tiny / 16) > 0  # subnormal results exist before ...
    xs = _tensors(2, torch.float32, 50.0)
    theta = fused_theta("trivariate", ACTIVATION_DEFAULTS["trivariate"], *xs)
    assert theta is not None
    torch.autograd.grad(theta.sum(), xs)
    assert float(tiny / 16) > 0  # ... and after the forward and backward passes


def test_threads_and_strided_inputs_give_the_same_values() -> None:
    """Elementwise work: any number of threads, and an expanded (bias-only) modulator, agree."""
    f, c, _ = (t.detach() for t in _tensors(2, torch.float32, 2.0, shape=(1024, 300)))
    bias = torch.randn(300)
    params = ACTIVATION_DEFAULTS["trivariate"]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fused_theta("trivariate", params, f, c, bias.expand(1024, -1))
        torch.set_num_threads(2)
        two = fused_theta("trivariate", params, f, c, bias.expand(1024, -1).contiguous())
    finally:
        torch.set_num_threads(threads)
    assert one is not None and two is not None
    assert torch.equal(one, two)
    torch.testing.assert_close(one, torch.sigmoid(trivariate_activation(f, c, bias)), rtol=0, atol=3e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1024, 2000), (37, 1001), (300, 7), (2, 3)])
@pytest.mark.parametrize("neuron_major", [False, True])
def test_a_modulator_broadcast_over_the_samples_gives_the_bits_of_its_copy(
    dtype: torch.dtype, shape: tuple[int, int], neuron_major: bool
) -> None:
    # an absent class (its bias expanded over the batch) is read per neuron, chunk by chunk (8192
    # elements, not a multiple of these batches), instead of copied to f's layout
    B, N = shape
    gen = torch.Generator().manual_seed(B + N)
    f = (
        torch.randn(N, B, generator=gen, dtype=dtype).t()
        if neuron_major
        else torch.randn(B, N, generator=gen, dtype=dtype)
    )
    c = (
        torch.randn(N, B, generator=gen, dtype=dtype).t()
        if neuron_major
        else torch.randn(B, N, generator=gen, dtype=dtype)
    )
    bias = torch.randn(N, generator=gen, dtype=dtype) * 3
    params = ACTIVATION_DEFAULTS["trivariate"]
    expanded = fused_theta("trivariate", params, f, c, bias.expand(B, -1))
    copied = torch.empty_like(f).copy_(bias.expand(B, -1))  # f's layout
    materialised = fused_theta("trivariate", params, f, c, copied)
    assert expanded is not None and materialised is not None
    assert torch.equal(expanded, materialised) and expanded.stride() == materialised.stride()
    # and as the first modulator, beside a full one
    first = fused_theta("quadrivariate", ACTIVATION_DEFAULTS["quadrivariate"], f, bias.expand(B, -1), c, c)
    again = fused_theta("quadrivariate", ACTIVATION_DEFAULTS["quadrivariate"], f, copied, c, c)
    assert first is not None and again is not None and torch.equal(first, again)


def test_not_fused_where_the_kernel_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    f, c, lat = (t.detach() for t in _tensors(2, torch.float32, 1.0))
    params = ACTIVATION_DEFAULTS["trivariate"]
    assert fused_theta("trivariate", params, f, c) is None  # wrong number of modulators
    assert fused_theta("feedforward", {}, f, c) is None  # not a modulated activation
    assert fused_theta("trivariate", {**params, "gamma": 1.0}, f, c, lat) is None  # unknown parameter
    assert fused_theta("trivariate", params, f.half(), c.half(), lat.half()) is None  # dtype
    assert fused_theta("trivariate", params, f, c, lat.double()) is None  # mixed dtypes
    monkeypatch.setenv("INFOMORPHIC_KERNEL", "0")
    assert fused_theta("trivariate", params, f, c, lat) is None


def test_a_custom_activation_named_like_a_built_in_is_not_replaced() -> None:
    def trivariate(f: torch.Tensor, c: torch.Tensor, l: torch.Tensor) -> torch.Tensor:  # noqa: E741
        return 2.0 * f

    layer = InfomorphicLayer(4, {"F": 3, "C": 2, "L": 4}, activation=trivariate)
    assert layer.activation_name == "trivariate"
    x = {"F": torch.randn(8, 3), "C": torch.randn(8, 2), "L": torch.randn(8, 4)}
    out = layer(x)
    torch.testing.assert_close(out.theta, torch.sigmoid(2.0 * out.aggregates[..., 0]))


def test_layer_theta_is_the_same_with_and_without_the_fused_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(2)
    layer = InfomorphicLayer(50, {"F": 20, "C": 5, "L": 50}, generator=gen)
    x = {
        "F": torch.randn(256, 20, generator=gen) * 3,
        "C": torch.randn(256, 5, generator=gen),
        "L": torch.randn(256, 50, generator=gen),
    }
    calls: list[str] = []
    real = fused_theta

    def spy(name: str, *args: object, **kwargs: object) -> torch.Tensor | None:
        out = real(name, *args, **kwargs)  # type: ignore[arg-type]
        calls.append(name if out is not None else "none")
        return out

    monkeypatch.setattr("infomorphic.nn.layer.fused_theta", spy)
    fused = layer(x).theta
    assert calls == ["trivariate"]  # the layer took the kernel's theta
    monkeypatch.setattr("infomorphic.nn.layer.fused_theta", lambda *a, **k: None)
    plain = layer(x).theta
    torch.testing.assert_close(fused, plain, rtol=0, atol=3e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_bins", "bin_range"), [(20, (-20.0, 20.0)), (7, (-1.3, 2.9)), (2, (0.0, 1.0))])
def test_bins_from_the_parts_equal_the_bins_of_the_stacked_aggregates(
    dtype: torch.dtype, n_bins: int, bin_range: tuple[float, float]
) -> None:
    """The kernel's one-pass binning gives exactly bin_fixed's integers, edges included."""
    gen = torch.Generator().manual_seed(6)
    low, high = bin_range
    width = (high - low) / n_bins
    edges = torch.tensor([low + i * width for i in range(n_bins + 1)], dtype=dtype)
    special = torch.tensor(
        [float("inf"), -float("inf"), float("nan"), low - 1e-3, high + 1e-3, 0.0, -0.0], dtype=dtype
    )
    values = torch.cat([edges, torch.nextafter(edges, edges + 1), torch.nextafter(edges, edges - 1), special])
    f = torch.cat([values, torch.randn(300 - values.numel(), generator=gen, dtype=dtype) * (high - low)])
    parts = (
        f.view(30, 10),
        (torch.rand(30, 10, generator=gen, dtype=dtype) * 3 - 1) * (high - low),
        torch.linspace(low - 1, high + 1, 10, dtype=dtype).expand(30, -1),  # strided: a bias alone
    )
    layer = InfomorphicLayer(10, {"F": 1, "C": 1, "L": 1}, n_bins=n_bins, bin_range=bin_range)
    out = LayerOutput(None, torch.rand(30, 10, dtype=dtype), parts)
    got = layer.bins_of(out)
    want = layer.bins(torch.stack(parts, -1))
    assert got.dtype == torch.uint8 and got.shape == (30, 10, 3)  # at most 256 bins: a byte each
    assert torch.equal(got, want)
    assert int(got.min()) == 0 and int(got.max()) == n_bins - 1


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_bins", [20, 7, 2])
def test_adaptive_bins_from_the_parts_equal_bin_adaptive(dtype: torch.dtype, n_bins: int) -> None:
    """The kernel's adaptive binning (each neuron scaled by its batch maximum) gives exactly
    bin_adaptive's integers: at the edges, for neurons that are all zero, hold a NaN or an
    infinity, and for sample-major, neuron-major and broadcast parts."""
    gen = torch.Generator().manual_seed(7)
    edges = torch.linspace(-1, 1, n_bins + 1, dtype=dtype)
    # neuron 0: the bin edges and their neighbours (the batch maximum is 1)
    col0 = torch.cat(
        [
            edges,
            torch.nextafter(edges, edges + 1).clamp(-1, 1),
            torch.nextafter(edges, edges - 1).clamp(-1, 1),
        ]
    )
    f = torch.randn(64, 12, generator=gen, dtype=dtype) * 5
    f[: col0.numel(), 0] = col0
    f[col0.numel() :, 0] = 0.5
    f[:, 1] = 0.0  # all zero: the middle bin
    f[:, 2] = -0.0
    f[5, 3] = float("nan")
    f[6, 4] = float("inf")
    f[7, 5] = -float("inf")
    f[:, 6] = 3.0  # constant: the top bin
    c = (torch.rand(12, 64, generator=gen, dtype=dtype) * 2 - 1).t()  # neuron-major
    lateral = torch.linspace(-3, 2, 12, dtype=dtype).expand(64, -1)  # a bias alone: stride 0
    layer = InfomorphicLayer(12, {"F": 1, "C": 1, "L": 1}, n_bins=n_bins, binning="adaptive")
    got = layer.bins_of(LayerOutput(None, torch.rand(64, 12, dtype=dtype), (f, c, lateral)))
    want = layer.bins(torch.stack((f, c, lateral), -1))
    assert got.dtype == torch.uint8 and got.shape == (64, 12, 3)
    assert got.stride(0) == 1  # each neuron's samples in a row, for the PID kernel
    assert torch.equal(got, want)
    assert int(got.min()) == 0 and int(got.max()) == n_bins - 1


@pytest.mark.parametrize("binning", ["fixed", "adaptive"])
def test_bins_are_bytes_up_to_256_bins_and_int32_above(binning: str) -> None:
    """The kernel's bins are uint8 for at most 256 bins (the layer asks with ``small=True``) and
    int32 above or when not asked; the integers are the same either way, the top bin included."""
    kernel = load_kernel()
    assert kernel is not None, "the compiled kernel did not build"
    gen = torch.Generator().manual_seed(12)
    parts = [torch.randn(200, 9, generator=gen) * 3 for _ in range(3)]
    parts[0][0, 0] = 1e9  # the top bin (fixed) / a neuron's maximum (adaptive)
    for n_bins, small_dtype in (
        (2, torch.uint8),
        (256, torch.uint8),
        (257, torch.int32),
        (1000, torch.int32),
    ):
        if binning == "fixed":
            small, plain = (kernel.bins_fixed(parts, n_bins, -4.0, 4.0, small=s) for s in (True, False))
        else:
            small, plain = (kernel.bins_adaptive(parts, n_bins, small=s) for s in (True, False))
        assert small.dtype == small_dtype and plain.dtype == torch.int32
        assert torch.equal(small.long(), plain.long()) and int(plain.max()) == n_bins - 1
        assert small.stride() == plain.stride()
        layer = InfomorphicLayer(
            9, {"F": 1, "C": 1, "L": 1}, n_bins=n_bins, binning=binning, bin_range=(-4.0, 4.0)
        )
        got = layer.bins_of(LayerOutput(None, torch.rand(200, 9), tuple(parts)))
        assert got.dtype == small_dtype and torch.equal(got.long(), layer.bins(torch.stack(parts, -1)).long())


def test_a_second_presentation_reuses_the_parts_without_stacking_the_first() -> None:
    gen = torch.Generator().manual_seed(8)
    layer = InfomorphicLayer(12, {"F": 9, "C": 3, "L": 12}, generator=gen)
    x = {"F": torch.randn(40, 9, generator=gen) * 3, "C": torch.randn(40, 3, generator=gen)}
    first = layer(x)  # L absent: its bias
    lateral = torch.randn(40, 12, generator=gen).sign()
    second = layer({"L": lateral}, reuse=first)
    assert first._aggregates is None and second._aggregates is None  # nothing stacked for training
    full = layer({**x, "L": lateral})
    torch.testing.assert_close(second.theta, full.theta, rtol=0, atol=1e-7)
    assert torch.equal(second.aggregates, full.aggregates)  # stacked on request
    assert torch.equal(layer.bins_of(second), layer.bins(full.aggregates))
    with pytest.raises(ValueError, match=r"reused aggregates must be 3 tensors of shape \(39, 12\)"):
        layer({"L": lateral[:39]}, reuse=first)
