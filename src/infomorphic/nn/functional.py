"""Stateless pieces of an infomorphic neuron: aggregate -> activate -> fire.

Schneider et al. (2024), appendix A.4; Makkeh et al. (2025).  Each input class (feedforward
F, context C, lateral L, and for four-source neurons a fourth class such as feedback B) is
aggregated per neuron by a weighted sum plus bias; an activation function combines the
aggregates, with F driving and the others modulating; a sigmoid gives the firing probability
theta, and hidden neurons emit +1 with probability theta, else -1.

The modules in :mod:`infomorphic.nn.layer` hold parameters and delegate here.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..pid.kernel import active_kernel

__all__ = [
    "aggregate",
    "sparse_aggregate",
    "prefer_sparse",
    "SPARSE_MAX_DENSITY",
    "partner_mask",
    "lateral_partners",
    "bivariate_activation",
    "trivariate_activation",
    "quadrivariate_activation",
    "feedforward_activation",
    "step_activation",
    "ACTIVATIONS",
    "ACTIVATION_DEFAULTS",
    "ACTIVATION_CLASSES",
    "DEFAULT_ACTIVATION",
    "resolve_activation",
    "activation_problem",
    "fused_theta",
    "sample_binary",
    "lateral_mask",
]

Activation = Callable[..., Tensor]


SPARSE_MAX_DENSITY = 0.05
"""Largest share of partners ``P / in`` that is stored and multiplied sparsely (see
:func:`prefer_sparse`)."""


def prefer_sparse(partners: int, n_inputs: int) -> bool:
    """Whether an input class with ``partners`` random inputs (of ``n_inputs``) per neuron is
    stored sparsely: ``partners <= SPARSE_MAX_DENSITY * n_inputs`` (1/20).

    Measured with ``benchmarks/bench_sparse.py`` (``benchmarks/README.md``; the project's 2-core
    CPU, 2 threads, quiet machine, batch 1024, forward + weight gradient, float32): the sparse
    product (:func:`sparse_aggregate`) against the dense masked GEMM took, for N >= 500 neurons
    and >= 784 inputs, 0.48 - 0.93x the time at ``P / in = 0.02``, 0.84 - 1.12x at 0.05
    (setup 2's lateral class, 100 of 2000: 0.84x), 1.2 - 1.7x at 0.1, 1.3 - 2.1x at 1/8 and
    2 - 6x above; with 100 neurons or 100 inputs (products under a millisecond) sparse was
    slower at most densities.  The dense GEMM runs near the machine's peak (about 175 GFLOP/s
    here), so sparse storage pays only for very sparse classes; it always saves the memory of
    the dense ``(N, in)`` weight, its mask and Adam's two moments.
    """
    return partners <= SPARSE_MAX_DENSITY * n_inputs


def is_neuron_major(x: Tensor) -> bool:
    """Whether ``x`` ``(B, N)`` is stored neuron by neuron: the transposed view of a contiguous
    ``(N, B)`` tensor (see :func:`aggregate`)."""
    return x.dim() == 2 and not x.is_contiguous() and x.stride(0) == 1 and x.t().is_contiguous()


def aggregate(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    mask: Tensor | None = None,
    index: Tensor | None = None,
    neuron_major: bool = False,
) -> Tensor:
    """Weighted sum of one input class per neuron: ``x @ (weight * mask).T + bias``.

    Shape: x ``(B, in)``, weight and mask ``(N, in)``, bias ``(N,)`` -> ``(B, N)``.
    Masked weights receive exactly zero gradient.

    With ``index`` (``(N, P)`` int64, neuron ``j``'s inputs ``index[j]``), ``weight`` holds the
    ``(N, P)`` partner weights and the sum is sparse (:func:`sparse_aggregate`; no mask).

    ``neuron_major``: the same values stored neuron by neuron (the transposed view of an
    ``(N, B)`` tensor, computed as ``W @ x.T``), the layout in which the PID kernel reads each
    neuron's samples in a row (see :class:`~infomorphic.nn.layer.InfomorphicLayer`).
    """
    if index is not None:
        return sparse_aggregate(x, weight, index, bias, neuron_major=neuron_major)
    w = weight if mask is None else weight * mask
    if neuron_major or is_neuron_major(x):
        # also for a neuron-major input (the spikes of such a layer): x @ W.T read it with a
        # stride (32 against 2.9 ms for the readout of 2000 such neurons); W @ x.T reads it in rows
        if bias is None:
            return torch.mm(w, x.t()).t()
        return torch.addmm(bias.unsqueeze(1), w, x.t()).t()
    return torch.nn.functional.linear(x, w, bias)


def _csr_pattern(index: Tensor, n_inputs: int, dtype: torch.dtype) -> Tensor:
    """The ``(N, in)`` CSR matrix with zeros at ``index`` (``(N, P)``, sorted rows)."""
    n, p = index.shape
    crow = torch.arange(0, n * p + 1, p, device=index.device)
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state" (once per process)
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(
            crow,
            index.reshape(-1),
            torch.zeros(n * p, dtype=dtype, device=index.device),
            (n, n_inputs),
            check_invariants=False,
        )


def spike_kernel_vectorised(kernel: Any) -> bool:
    """Whether ``kernel``'s spike (bit) partner products run vectorised on this CPU.

    They have an AVX-512 version, an AVX2 one and a portable scalar one (``kernel.vector_paths()``
    lists those this CPU runs, the fastest first).  The portable one is far slower than the float
    kernel on the same product (setup 2's lateral class, B = 1024, N = 2000, P = 100, one thread,
    on an AVX2-only AMD EPYC: forward 1.3 s against 0.04 s, backward 1.2 s against 0.02 s), so
    spikes take the float kernel unless a vector version runs.  Follows PyTorch's own CPU dispatch
    (``torch.backends.cpu.get_cpu_capability()``: ``"AVX512"`` or ``"AVX2"``; the environment
    variable ``ATEN_CPU_CAPABILITY`` can lower it to ``"DEFAULT"``).  A kernel built before the
    AVX2 version (no ``vector_paths``) is vectorised only with AVX-512.  Every version gives the
    same bits as the float kernel, so the choice changes the speed only.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    paths = getattr(kernel, "vector_paths", None)
    if paths is None:
        return capability == "AVX512"
    return capability in ("AVX2", "AVX512") and paths()[0] != "generic"


def _partner_kernel(x: Tensor, values: Tensor, index: Tensor) -> Any | None:
    """The compiled kernel when it can run this product (CPU, float32 / float64, one dtype), else None."""
    if x.device.type != "cpu" or x.dim() != 2 or x.dtype not in (torch.float32, torch.float64):
        return None
    if values.dtype != x.dtype or values.device != x.device or index.dtype != torch.int64:
        return None
    kernel = active_kernel()
    return kernel if hasattr(kernel, "partner_forward") else None  # a kernel built before it had one


class _PartnerProduct(torch.autograd.Function):
    """``out[b, j] = sum_p values[j, p] * x[b, index[j, p]] (+ bias[j])`` without a dense ``(N, in)`` weight.

    Both passes read ``x`` transposed, ``(in, B)``: a partner's samples are then one contiguous
    row.  With the compiled kernel (CPU, float32 / float64): the transpose is made once in tiles
    (or, for a neuron-major ``x``, is ``x.T`` as stored), kept for the backward pass, and the
    forward sum (partners added in order per neuron) and the gradient of ``values``
    (``grad[:, j] . x[:, index[j, p]]`` per partner) each run in one pass over neurons,
    B * N * P multiply-adds, writing the ``(B, N)`` output directly.  When every value of
    ``x`` is exactly +1 or -1 (spikes: a lateral or feedback class), ``x`` is packed into bits
    instead (``(in, B / 8)`` bytes, 32x smaller, so the partners' rows are read from the
    core's own cache) and each partner adds +-``values[j, p]`` under its bit,
    in the same order: the same bits as the float kernel, in about 0.4x its time on a CPU with
    AVX-512 (setup 2's lateral class: forward 9.0 against 21.2 ms, backward 11.4 against 26.8
    ms, packing 1.5 against 5.5 ms for the transpose; ``benchmarks/ab_kernel.py``) and about
    0.7x with AVX2 only (AMD EPYC, Zen 2: forward 13.7 against 17.8 ms, backward 11.7 against
    18.7 ms); without either, spikes take the float kernel (:func:`spike_kernel_vectorised`).  Measured
    at setup 2's lateral class (B = 1024, N = 2000, P = 100, one thread): the two passes took
    about half the time of the PyTorch path below in a training step.  Without the kernel (or on
    other devices and dtypes): one ``embedding_bag`` over the rows of ``x.T`` forward, and
    ``grad.T @ x`` sampled at the partners only (``torch.sparse.sampled_addmm``) backward.  The
    gradient of ``x`` (not needed by the layers, whose inputs are detached) uses the dense weight.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        values: Tensor,
        index: Tensor,
        neuron_major: bool = False,
        bias: Tensor | None = None,
    ) -> Tensor:
        out = _PartnerProduct._product(ctx, x, values, index, neuron_major)
        # the bias added in place: ``out + bias`` outside allocated a second (B, N) tensor and
        # wrote it in one more pass; the same float additions
        return out if bias is None else out.add_(bias)

    @staticmethod
    def _product(ctx: Any, x: Tensor, values: Tensor, index: Tensor, neuron_major: bool) -> Tensor:
        kernel = _partner_kernel(x, values, index)
        ctx.kernel = kernel
        ctx.signs = False
        ctx.n_inputs = x.shape[1]
        if kernel is not None:
            index = index.contiguous()
            if x.dtype == torch.float32 and hasattr(kernel, "sign_pack") and spike_kernel_vectorised(kernel):
                words = kernel.sign_pack(x)  # empty unless every value is exactly +1 or -1
                if words.numel() > 0:
                    ctx.signs = True
                    ctx.save_for_backward(words, values, index)
                    return kernel.partner_forward_signs(
                        words, values.contiguous(), index, x.shape[0], neuron_major=neuron_major
                    )
            # a neuron-major x (the spikes of a large layer) is x.T stored contiguously already
            xt = x.t() if x.t().is_contiguous() else kernel.transpose_tiled(x)
            ctx.save_for_backward(xt, values, index)
            return kernel.partner_forward(xt, values.contiguous(), index, neuron_major=neuron_major)
        ctx.save_for_backward(x, values, index)
        out = torch.nn.functional.embedding_bag(
            index, x.t().contiguous(), per_sample_weights=values, mode="sum"
        )
        return out.t().contiguous().t() if neuron_major else out.t()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, Tensor | None]:
        # saved: x packed into bits (spikes), x.T (the float kernel) or x (the PyTorch path)
        saved, values, index = ctx.saved_tensors
        kernel = ctx.kernel
        grad_x = grad_values = None
        if ctx.needs_input_grad[1]:
            if ctx.signs:
                grad_values = kernel.partner_backward_signs(grad, saved, index)
            elif kernel is not None:
                grad_values = kernel.partner_backward(grad, saved, index)
            else:
                pattern = _csr_pattern(index, ctx.n_inputs, grad.dtype)
                sampled = torch.sparse.sampled_addmm(
                    pattern, grad.t().contiguous(), saved.contiguous(), beta=0.0
                )
                grad_values = sampled.values().view(index.shape)
        if ctx.needs_input_grad[0]:
            dense = values.new_zeros(index.shape[0], ctx.n_inputs).scatter_(1, index, values)
            grad_x = grad @ dense
        grad_bias = grad.sum(0) if ctx.needs_input_grad[4] else None
        return grad_x, grad_values, None, None, grad_bias


def sparse_aggregate(
    x: Tensor, values: Tensor, index: Tensor, bias: Tensor | None = None, *, neuron_major: bool = False
) -> Tensor:
    """Weighted sum over each neuron's partners: ``out[b, j] = sum_p values[j, p] x[b, index[j, p]] + bias[j]``.

    The same numbers as :func:`aggregate` with the dense weight ``W[j, index[j, p]] =
    values[j, p]`` (zero elsewhere), up to the order of the float additions, in B * N * P
    multiply-adds instead of B * N * in, and without forming ``W``.  The gradient of
    ``values`` is exact: row ``j`` of it is the dense gradient of ``W`` at ``index[j]``.

    Shape: x ``(B, in)``, values and index ``(N, P)`` (int64, distinct entries per row), bias
    ``(N,)`` -> ``(B, N)``; with ``neuron_major`` stored neuron by neuron (see :func:`aggregate`).
    """
    return _PartnerProduct.apply(x, values, index, neuron_major, bias)


def join_parts(parts: Sequence[Tensor | None], sizes: Sequence[int], like: Tensor) -> Tensor | None:
    """A joined input class (``"h1+h2"``): the parts side by side, an absent part (None) as zeros
    of its width in ``sizes``; None when every part is absent.  ``like``: any ``(B, ...)``
    tensor of the batch's size, dtype and device."""
    if all(v is None for v in parts):
        return None
    return torch.cat(
        [v if v is not None else like.new_zeros(like.shape[0], n) for v, n in zip(parts, sizes)], dim=1
    )


def feedforward_activation(f: Tensor, *modulators: Tensor) -> Tensor:
    """``A = f``: a purely feedforward neuron (the context only enters through the goal)."""
    return f


def step_activation(f: Tensor, *modulators: Tensor) -> Tensor:
    """Heaviside step of the feedforward aggregate: ``A = +inf`` where ``f > 0``, else ``-inf``.

    So ``theta = sigmoid(A)`` is exactly 1 or 0 and the neuron fires deterministically (+1 where
    ``f > 0``, else -1), whatever the scale of its weights; no gradient reaches ``f``.  The
    modulators cannot change the sign (as in the papers' activations, whose modulation factor is
    positive), so they are ignored.  This is the fixed random hidden layer of Schneider et al.
    2025, appendix A.3 ("a fixed-random hidden layer setup using step-function activation").
    """
    inf = torch.full((), float("inf"), dtype=f.dtype, device=f.device)
    return torch.where(f.detach() > 0, inf, -inf)


def bivariate_activation(f: Tensor, c: Tensor, *, k1: float = 0.5, k2: float = 2.0) -> Tensor:
    """Receptive/contextual activation ``A(f, c) = f * [k1 + (1 - k1) * 2 sigmoid(k2 f c)]``.

    ``k1 = 1`` gives ``A = f`` (no modulation); with ``c = 0`` it reduces to ``f`` for any k1.
    """
    return f * (k1 + (1.0 - k1) * 2.0 * torch.sigmoid(k2 * f * c))


def trivariate_activation(
    f: Tensor,
    c: Tensor,
    l: Tensor,  # noqa: E741 - the lateral aggregate is called L in the papers
    *,
    alpha1: float = 0.1,
    alpha2: float = 0.1,
    beta1: float = 2.0,
    beta2: float = 2.0,
) -> Tensor:
    """``A(f, c, l) = f * [(1 - a1 - a2) + a1 sigmoid(b1 f c) + a2 sigmoid(b2 f l)]``."""
    return f * (
        (1.0 - alpha1 - alpha2)
        + alpha1 * torch.sigmoid(beta1 * f * c)
        + alpha2 * torch.sigmoid(beta2 * f * l)
    )


def quadrivariate_activation(
    f: Tensor,
    c: Tensor,
    l: Tensor,  # noqa: E741 - the lateral aggregate is called L in the papers
    b: Tensor,
    *,
    alpha1: float = 0.1,
    alpha2: float = 0.1,
    alpha3: float = 0.1,
    beta1: float = 2.0,
    beta2: float = 2.0,
    beta3: float = 2.0,
) -> Tensor:
    """Four input classes: the trivariate activation plus a zero-centred modulation by ``b``.

    ``A(f, c, l, b) = f * [(1 - a1 - a2) + a1 sigmoid(b1 f c) + a2 sigmoid(b2 f l)
    + a3 (2 sigmoid(b3 f b) - 1)]``, where ``2 sigmoid(x) - 1 = tanh(x / 2)``.

    F drives, C and L modulate exactly as in :func:`trivariate_activation`, and the fourth
    class (e.g. B, feedback from the layer above) adds ``a3 f (2 sigmoid(b3 f b) - 1)``:
    ``|A|`` grows when ``b`` agrees in sign with ``f`` and shrinks when it disagrees, by at
    most ``a3 |f|``.

    Why zero-centred: the extra term is exactly 0 at ``b = 0`` (``sigmoid(0) = 0.5``), so a
    neuron whose fourth class is silent (zero weights and zero bias) computes exactly the
    trivariate activation, bit for bit, with the same gradients with respect to f, c and l;
    a term ``a3 sigmoid(b3 f b)`` like the C and L ones would instead add ``a3 f / 2`` at
    ``b = 0`` and change the neuron's gain.  For ``a3 <= 1 - a1 - a2`` the bracket stays
    positive, so the modulators never flip the sign of ``f``.

    Defaults: ``a1 = a2 = a3 = 0.1`` and ``b1 = b2 = b3 = 2``, those of the trivariate
    activation with the same values for the fourth class.  Shapes broadcast; aggregates are
    dimensionless, as is ``A``.
    """
    return f * (
        (1.0 - alpha1 - alpha2)
        + alpha1 * torch.sigmoid(beta1 * f * c)
        + alpha2 * torch.sigmoid(beta2 * f * l)
        + alpha3 * (2.0 * torch.sigmoid(beta3 * f * b) - 1.0)
    )


ACTIVATIONS: Mapping[str, Activation] = {
    "feedforward": feedforward_activation,
    "step": step_activation,
    "bivariate": bivariate_activation,
    "trivariate": trivariate_activation,
    "quadrivariate": quadrivariate_activation,
}
"""Built-in activations by name; pass any callable ``(f, *modulators, **params)`` for your own."""

ACTIVATION_DEFAULTS: Mapping[str, Mapping[str, float]] = {
    "feedforward": {},
    "step": {},
    "bivariate": {"k1": 0.5, "k2": 2.0},
    "trivariate": {"alpha1": 0.1, "alpha2": 0.1, "beta1": 2.0, "beta2": 2.0},
    "quadrivariate": {"alpha1": 0.1, "alpha2": 0.1, "alpha3": 0.1, "beta1": 2.0, "beta2": 2.0, "beta3": 2.0},
}


_Form = tuple[float, list[float], list[float], list[bool]]


def _bivariate_form(p: Mapping[str, float]) -> _Form:
    return p["k1"], [2.0 * (1.0 - p["k1"])], [p["k2"]], [False]


def _trivariate_form(p: Mapping[str, float]) -> _Form:
    return (
        1.0 - p["alpha1"] - p["alpha2"],
        [p["alpha1"], p["alpha2"]],
        [p["beta1"], p["beta2"]],
        [False, False],
    )


def _quadrivariate_form(p: Mapping[str, float]) -> _Form:
    alphas, betas = [p["alpha1"], p["alpha2"], p["alpha3"]], [p["beta1"], p["beta2"], p["beta3"]]
    return 1.0 - p["alpha1"] - p["alpha2"], alphas, betas, [False, False, True]


_FUSED_FORMS: Mapping[str, tuple[Callable[[Mapping[str, float]], _Form], int]] = {
    "bivariate": (_bivariate_form, 1),
    "trivariate": (_trivariate_form, 2),
    "quadrivariate": (_quadrivariate_form, 3),
}
"""The built-in modulated activations as ``A = f (k0 + sum_i term_i(b_i f m_i))``: each name's
parameters (:data:`ACTIVATION_DEFAULTS` completed by the given ones) -> ``(k0, a, b,
centred)``, and its number of modulators."""


class _FusedActivation(torch.autograd.Function):
    """``theta = sigmoid(A)`` of a modulated activation in one pass of the compiled kernel."""

    @staticmethod
    def forward(ctx: Any, kernel: Any, form: tuple[Any, ...], f: Tensor, *mods: Tensor) -> Tensor:
        theta = kernel.act_forward(f, list(mods), *form)
        ctx.kernel, ctx.form = kernel, form
        ctx.save_for_backward(theta, f, *mods)
        return theta

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        theta, f, *mods = ctx.saved_tensors
        grads = ctx.kernel.act_backward(grad, theta, f, mods, *ctx.form)
        return (None, None, *grads)


def fused_theta(
    activation: str, params: Mapping[str, float], f: Tensor, *modulators: Tensor
) -> Tensor | None:
    """``sigmoid(activation(f, *modulators, **params))`` from the compiled CPU kernel, or ``None``.

    For the built-in ``bivariate``, ``trivariate`` and ``quadrivariate`` activations on CPU
    float32 / float64 tensors of one shape: one pass over the elements forward and one backward,
    instead of about a dozen elementwise tensor operations each way (measured on MNIST setup 2,
    N = 2000: those operations took about a third of a training step).  The values agree with
    the PyTorch expression to float rounding (the kernel's float32 exp is within about 1 ulp
    of the exact one); a four-source neuron whose fourth class is exactly 0 gives the
    trivariate values and gradients bit for bit, as with the PyTorch expression.  ``None`` (the
    caller computes the PyTorch expression) for any other activation, device or dtype, unknown
    parameters, or when the kernel is disabled (``INFOMORPHIC_KERNEL=0``) or unavailable.
    """
    entry = _FUSED_FORMS.get(activation)
    if entry is None or len(modulators) != entry[1]:
        return None
    tensors = (f, *modulators)
    if f.device.type != "cpu" or f.dtype not in (torch.float32, torch.float64):
        return None
    if any(m.shape != f.shape or m.dtype != f.dtype or m.device != f.device for m in modulators):
        return None
    kernel = active_kernel()
    if kernel is None:
        return None
    defaults = ACTIVATION_DEFAULTS[activation]
    if not set(params) <= set(defaults):  # unknown names: the PyTorch expression raises the usual error
        return None
    return _FusedActivation.apply(kernel, entry[0]({**defaults, **params}), *tensors)


ACTIVATION_CLASSES: Mapping[str, tuple[int, ...]] = {
    "feedforward": (2, 3, 4),
    "step": (2, 3, 4),
    "bivariate": (2,),
    "trivariate": (3,),
    "quadrivariate": (4,),
}
"""How many input classes each built-in activation takes (F first, then the modulators)."""

DEFAULT_ACTIVATION: Mapping[int, str] = {2: "bivariate", 3: "trivariate", 4: "quadrivariate"}
"""The activation of a layer that names none, by its number of input classes."""


def activation_problem(activation: str, n_classes: int, params: Mapping[str, Any]) -> tuple[str, str] | None:
    """What is wrong with a built-in activation for a layer of ``n_classes`` input classes and
    these ``activation_params``: ``(key, message)`` with key ``activation`` or
    ``activation_params``, or None when it fits (also for names that are not built in: those are
    :func:`resolve_activation`'s to reject)."""
    if activation not in ACTIVATIONS:
        return None
    takes = ACTIVATION_CLASSES[activation]
    if n_classes not in takes:
        fitting = [name for name, k in ACTIVATION_CLASSES.items() if n_classes in k]
        return (
            "activation",
            f"{activation} takes {' or '.join(map(str, takes))} input classes, the layer has {n_classes}; "
            f"for {n_classes} use one of {', '.join(fitting)}",
        )
    allowed = ACTIVATION_DEFAULTS[activation]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(allowed) if allowed else "none"
        return "activation_params", f"{activation} has no parameter {unknown[0]!r}; its parameters: {names}"
    return None


def resolve_activation(activation: str | Activation) -> Activation:
    """A built-in activation by name, or the given callable; ``ValueError`` lists the names."""
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)} or pass a callable"
        ) from None


@functools.cache
def _kernel_draws_like_torch(kernel: Any) -> bool:
    """Whether ``kernel.mt_uniform_`` gives torch.rand's float32 numbers and generator states
    (checked once per kernel and process, across the engine's 624-word refills)."""
    if not hasattr(kernel, "mt_uniform_"):
        return False
    ours, theirs = torch.Generator().manual_seed(20261203), torch.Generator().manual_seed(20261203)
    for n in (1, 5, 618, 1, 624, 625, 1, 2000, 3):
        expected = torch.rand(n, generator=theirs)
        got = torch.empty(n)
        state = ours.get_state()
        try:
            kernel.mt_uniform_(got, state)
        except RuntimeError:  # a state layout this kernel does not know
            return False
        ours.set_state(state)
        if not (torch.equal(got, expected) and torch.equal(ours.get_state(), theirs.get_state())):
            return False
    return True


def uniform(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, like: Tensor) -> Tensor:
    """``torch.rand(shape, generator=generator)`` on ``like``'s device and dtype: the same numbers,
    and the generator left in the same state.  For float32 on the CPU the compiled kernel draws
    them (PyTorch draws one number at a time under a lock: 13 ms for 1024 x 2000, the kernel
    1.6 ms), once it has been checked to agree with torch.rand in this process."""
    if like.device.type == "cpu" and like.dtype == torch.float32:
        kernel = active_kernel()
        if kernel is not None and _kernel_draws_like_torch(kernel):
            out = torch.empty(shape, dtype=torch.float32)
            fill = kernel.mt_uniform_
            _draw_from_state(generator, lambda state: fill(out, state))
            return out
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def _draw_from_state(generator: torch.Generator | None, draw: Callable[[Tensor], Any]) -> Any:
    """``draw(state)`` on the bytes of ``generator``'s state (torch's default generator when None),
    which the kernel advances in place as torch.rand would; the generator is then set to it."""
    gen = generator if generator is not None else torch.default_generator
    state = gen.get_state()
    result = draw(state)
    gen.set_state(state)
    return result


def sample_binary(theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Stochastic binary output: +1 with probability ``theta``, else -1 (no gradient).

    Shape: any -> same, dtype of ``theta``.
    """
    if theta.device.type == "cpu" and theta.dtype == torch.float32 and theta.dim() == 2:
        kernel = active_kernel()
        if kernel is not None and hasattr(kernel, "sample_signs") and _kernel_draws_like_torch(kernel):
            t = theta.detach()
            if t.is_contiguous() or t.t().is_contiguous():
                # the same numbers and operations as below in one pass of the kernel, u drawn in
                # blocks of samples that stay in cache (transposed there for a neuron-major theta)
                signs = kernel.sample_signs
                spikes: Tensor = _draw_from_state(generator, lambda state: signs(t, state))
                return spikes
    u = uniform(theta.shape, generator, theta)
    # +1 exactly where u < theta: the sign of u - theta, negated (u == theta gives +0 -> -1)
    one = torch.ones((), dtype=theta.dtype, device=theta.device)
    theta = theta.detach()
    if is_neuron_major(theta):
        # a neuron-major theta: the same numbers u, drawn sample by sample as always, transposed
        # once in tiles (an elementwise pass over u and the transposed theta read one of them
        # with a stride of N); the spikes come out neuron-major as well
        kernel = active_kernel() if theta.device.type == "cpu" else None
        if (
            kernel is not None
            and hasattr(kernel, "transpose_tiled")
            and theta.dtype in (torch.float32, torch.float64)
        ):
            ut = kernel.transpose_tiled(u)
            return torch.copysign(one, ut.sub_(theta.t()), out=ut).neg_().t()
    # in place: a fresh (B, N) result costs its page faults (3-10 ms at 1024 x 2000 in a step)
    return torch.copysign(one, u.sub_(theta), out=u).neg_()


def lateral_mask(
    n_neurons: int, max_partners: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """Lateral connectivity without self-connections: all-to-all, or ``max_partners`` random ones.

    Returns a float ``(N, N)`` mask; row ``j`` marks the neurons whose output neuron ``j`` sees.
    """
    mask = 1.0 - torch.eye(n_neurons)
    if max_partners is None or max_partners >= n_neurons - 1:
        return mask
    if max_partners < 0:
        raise ValueError(f"max_partners must be >= 0, got {max_partners}")
    scores = torch.rand(n_neurons, n_neurons, generator=generator)
    scores.fill_diagonal_(-1.0)  # never pick yourself
    keep = scores.topk(max_partners, dim=1).indices
    return torch.zeros(n_neurons, n_neurons).scatter_(1, keep, 1.0)


def lateral_partners(n_neurons: int, max_partners: int, generator: torch.Generator | None = None) -> Tensor:
    """The partner indices of :func:`lateral_mask`: ``(N, P)`` int64, each row sorted, never ``j``
    itself in row ``j``; ``P = min(max_partners, N - 1)``.

    The same random draw as ``lateral_mask(n_neurons, max_partners, generator)``, so the two
    describe the same connections: ``partner_mask(lateral_partners(n, m, g), n)`` equals
    ``lateral_mask(n, m, g)`` for a generator in the same state (with ``m >= N - 1`` neither
    draws, and every other neuron is a partner).
    """
    if max_partners < 0:
        raise ValueError(f"max_partners must be >= 0, got {max_partners}")
    if max_partners >= n_neurons - 1:
        full = torch.arange(n_neurons).expand(n_neurons, -1)
        return full[~torch.eye(n_neurons, dtype=torch.bool)].view(n_neurons, n_neurons - 1)
    scores = torch.rand(n_neurons, n_neurons, generator=generator)
    scores.fill_diagonal_(-1.0)  # never pick yourself
    return scores.topk(max_partners, dim=1).indices.sort(1).values


def partner_mask(index: Tensor, n_inputs: int, dtype: torch.dtype | None = None) -> Tensor:
    """The dense 0/1 ``(N, in)`` mask of partner indices ``(N, P)``."""
    mask = torch.zeros(
        index.shape[0], n_inputs, dtype=dtype or torch.get_default_dtype(), device=index.device
    )
    return mask.scatter_(1, index, 1.0)
