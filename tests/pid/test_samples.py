"""The training path from samples: equal to the dense engine, gradients checked."""

from __future__ import annotations

import pytest
import torch

from infomorphic.estimate import binary_weights, soft_histogram
from infomorphic.pid import (
    get_lattice,
    sample_cells,
    sx_pid_from_binary_samples,
    sx_pid_from_samples,
    sx_pid_torch,
)
from infomorphic.pid.kernel import load_kernel

BACKENDS = pytest.mark.parametrize("backend", ["torch", "kernel"])  # both implementations


def test_compiled_kernel_builds() -> None:
    """The C++ kernel compiles here (a compiler and ninja are part of the setup)."""
    assert load_kernel() is not None


def _inputs(batch: int, neurons: int, n: int, n_bins: int, seed: int, n_t: int = 2):
    gen = torch.Generator().manual_seed(seed)
    bins = torch.randint(0, n_bins, (batch, neurons, n), generator=gen)
    raw = torch.rand(batch, neurons, n_t, generator=gen, dtype=torch.float64) + 0.01
    return bins, raw / raw.sum(-1, keepdim=True)


@pytest.mark.parametrize(
    "batch, neurons, n, n_bins, n_t",
    [
        (256, 4, 3, 6, 2),  # all tables dense (216 <= 256 cells)
        (64, 3, 3, 20, 2),  # pairs and the triple per sample (400 > 64)
        (512, 3, 3, 20, 2),  # pairs dense, triple per sample: the training layout
        (300, 3, 2, 20, 3),  # bivariate, three target values
        (128, 2, 4, 3, 2),
        (200, 2, 4, 10, 2),
        (40, 2, 3, 4, 2),  # few samples: some cells empty, others shared
        (16, 3, 3, 20, 2),  # pairs rank-compressed too (400 > 256): every table filled per sample
    ],
)
@BACKENDS
def test_sx_pid_from_samples_matches_dense(
    batch: int, neurons: int, n: int, n_bins: int, n_t: int, backend: str
) -> None:
    bins, weights = _inputs(batch, neurons, n, n_bins, seed=batch + n, n_t=n_t)
    # per-sample target probabilities live on the simplex: differentiate through a softmax
    logits = weights.log().requires_grad_(True)
    weights = torch.softmax(logits, -1)
    ours = sx_pid_from_samples(bins, weights, n_bins, parts=True, backend=backend)
    dense = sx_pid_torch(soft_histogram(bins, weights, n_bins), n, parts=True)
    assert ours.atoms.shape == (neurons, len(get_lattice(n)))
    for name in ("atoms", "redundancies", "informative_atoms", "misinformative_atoms"):
        assert torch.allclose(getattr(ours, name), getattr(dense, name), atol=1e-11), name
    assert torch.allclose(ours.residual_entropy, dense.residual_entropy, atol=1e-12)
    gen = torch.Generator().manual_seed(1)
    gamma = torch.rand(ours.atoms.shape[-1], generator=gen, dtype=torch.float64) * 2 - 1
    (g_ours,) = torch.autograd.grad(
        (ours.atoms @ gamma + 0.3 * ours.residual_entropy).sum(), logits, retain_graph=True
    )
    (g_dense,) = torch.autograd.grad((dense.atoms @ gamma + 0.3 * dense.residual_entropy).sum(), logits)
    assert torch.allclose(g_ours, g_dense, atol=1e-11)


@pytest.mark.parametrize("n, n_bins", [(3, 5), (2, 4), (4, 2)])
@BACKENDS
def test_sx_pid_from_samples_gradcheck(n: int, n_bins: int, backend: str) -> None:
    """The hand-written backward pass against finite differences of the goal."""
    gen = torch.Generator().manual_seed(n)
    batch = 12
    bins = torch.randint(0, n_bins, (batch, 2, n), generator=gen)
    logits = torch.randn(batch, 2, generator=gen, dtype=torch.float64).requires_grad_(True)
    gamma = torch.rand(len(get_lattice(n)), generator=gen, dtype=torch.float64) * 2 - 1

    def goal(z: torch.Tensor) -> torch.Tensor:
        res = sx_pid_from_samples(bins, binary_weights(torch.sigmoid(z)), n_bins, backend=backend)
        return res.atoms @ gamma + 0.2 * res.residual_entropy

    assert torch.autograd.gradcheck(goal, (logits,), eps=1e-6, atol=1e-7, rtol=1e-5)


@BACKENDS
def test_sx_pid_from_samples_float32_close_to_float64(backend: str) -> None:
    bins, weights = _inputs(1024, 8, 3, 20, seed=5)
    a64 = sx_pid_from_samples(bins, weights, 20, backend=backend).atoms
    a32 = sx_pid_from_samples(bins, weights.float(), 20, backend=backend).atoms
    assert float((a32.double() - a64).abs().max()) < 1e-5


@BACKENDS
def test_sx_pid_from_samples_saturated_theta_keeps_gradients_finite(backend: str) -> None:
    gen = torch.Generator().manual_seed(0)
    bins = torch.randint(0, 20, (256, 4, 3), generator=gen)
    logits = (torch.randn(256, 4, generator=gen) * 60).requires_grad_(True)  # sigmoid hits exactly 0 / 1
    theta = torch.sigmoid(logits)
    assert bool(((theta == 0) | (theta == 1)).any())
    res = sx_pid_from_samples(bins, binary_weights(theta), 20, backend=backend)
    (res.atoms @ torch.linspace(-1, 1, 18) + res.residual_entropy).sum().backward()
    assert torch.isfinite(res.atoms).all() and torch.isfinite(logits.grad).all()


@BACKENDS
def test_sample_cells_reusable_for_several_weights(backend: str) -> None:
    bins, weights = _inputs(200, 3, 3, 8, seed=2)
    cells = sample_cells(bins, 8, dtype=torch.float64, backend=backend)
    first = sx_pid_from_samples(cells, weights).atoms
    second = sx_pid_from_samples(cells, weights.flip(-1)).atoms
    assert torch.allclose(first, sx_pid_from_samples(bins, weights, 8).atoms)
    assert torch.allclose(second, sx_pid_from_samples(bins, weights.flip(-1), 8).atoms)


@BACKENDS
def test_sx_pid_from_samples_locality(backend: str) -> None:
    """Each neuron's atoms depend only on its own weights: the Jacobian is block diagonal."""
    bins, weights = _inputs(64, 3, 3, 5, seed=9)
    weights.requires_grad_(True)
    atoms = sx_pid_from_samples(bins, weights, 5, backend=backend).atoms
    (grad,) = torch.autograd.grad(atoms[1].sum(), weights)
    assert grad[:, [0, 2]].abs().max() == 0
    assert grad[:, 1].abs().max() > 0


@pytest.mark.parametrize(
    "bins_shape, weights_shape, n_bins, match",
    [
        ((8, 2, 3), (8, 3, 2), 4, "weights must have shape"),
        ((8, 2), (8, 2, 2), 4, "bins must have shape"),
        ((8, 2, 1), (8, 2, 2), 4, "at least 2 sources"),
        ((8, 2, 5), (8, 2, 2), 4, "at most 4 sources"),
        ((8, 2, 3), (8, 2, 2), [4, 4], "n_bins must be"),
        ((8, 2, 3), (8, 2, 2), 2, "outside"),
    ],
)
def test_sx_pid_from_samples_rejects_bad_input(bins_shape, weights_shape, n_bins, match) -> None:
    bins = torch.randint(0, 4, bins_shape)
    weights = torch.full(weights_shape, 0.5)
    with pytest.raises(ValueError, match=match):
        sx_pid_from_samples(bins, weights, n_bins)


def test_sx_pid_from_samples_rejects_float_bins() -> None:
    with pytest.raises(ValueError, match="integer"):
        sx_pid_from_samples(torch.zeros(4, 2, 3), torch.full((4, 2, 2), 0.5), 3)


def test_grad_hint_gives_the_same_gradients_in_any_direction() -> None:
    """The kernel's one-pass gradient along the hint, and the general backward otherwise."""
    from infomorphic.goals import Goal

    goal = Goal.preset("trivariate-mnist-tpe")
    gen = torch.Generator().manual_seed(4)
    bins = torch.randint(0, 20, (256, 5, 3), generator=gen)
    z = torch.randn(256, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    gamma = torch.rand(18, generator=gen, dtype=torch.float64) * 2 - 1

    def grads(hint: torch.Tensor | None, backend: str) -> tuple[torch.Tensor, torch.Tensor]:
        res = sx_pid_from_samples(bins, binary_weights(torch.sigmoid(z)), 20, backend=backend, grad_hint=hint)
        (along,) = torch.autograd.grad(
            -3.0 * goal.evaluate(res.atoms, res.residual_entropy).sum(), z, retain_graph=True
        )
        (other,) = torch.autograd.grad((res.atoms @ gamma).sum(), z)
        return along, other

    ref_along, ref_other = grads(None, "torch")
    along, other = grads(goal.redundancy_weights(), "kernel")
    assert torch.allclose(along, ref_along, atol=1e-12)
    assert torch.allclose(other, ref_other, atol=1e-12)


@pytest.mark.parametrize("n, n_bins", [(3, 20), (2, 7), (4, 6)])
@BACKENDS
def test_binary_samples_equal_the_general_path(n: int, n_bins: int, backend: str) -> None:
    """``theta`` alone gives the atoms and gradients of the weights ``(1 - theta, theta)``, also
    for strided (non-contiguous) bins and theta and for int32 bins."""
    gen = torch.Generator().manual_seed(n_bins)
    bins = torch.randint(0, n_bins, (n, 300, 5), generator=gen).permute(1, 2, 0)  # (B, N, n), strided
    logits = torch.randn(5, 300, generator=gen, dtype=torch.float64).requires_grad_(True)
    theta = torch.sigmoid(logits).T  # (B, N), strided
    gamma = torch.rand(len(get_lattice(n)), generator=gen, dtype=torch.float64) * 2 - 1
    ours = sx_pid_from_binary_samples(bins.int(), theta, n_bins, parts=True, backend=backend)
    ref = sx_pid_from_samples(bins.contiguous(), binary_weights(theta), n_bins, parts=True, backend="torch")
    for name in ("atoms", "redundancies", "informative_atoms", "residual_entropy"):
        assert torch.allclose(getattr(ours, name), getattr(ref, name), atol=1e-11), name
    (g_ours,) = torch.autograd.grad(
        (ours.atoms @ gamma + 0.3 * ours.residual_entropy).sum(), logits, retain_graph=True
    )
    (g_ref,) = torch.autograd.grad((ref.atoms @ gamma + 0.3 * ref.residual_entropy).sum(), logits)
    assert torch.allclose(g_ours, g_ref, atol=1e-11)


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("spread", [1, 3, 20])
@pytest.mark.parametrize("bins_dtype", [torch.int32, torch.int64])
def test_binary_kernel_pass_sums_the_tables_of_the_general_one_to_the_bit(
    n: int, spread: int, bins_dtype: torch.dtype
) -> None:
    """The kernel's pass over the samples for a binary target (keys, masses and table updates in
    one loop, for 2 to 4 sources) adds the same masses in the same order as its general pass over
    the weights (1 - theta, theta): in float64 the per-antichain sums agree to the bit, for few
    occupied cells (every sample in one cell with spread 1) and many, either layout of the bins,
    and the gradient (d/dtheta against d/dw_1 - d/dw_0) to rounding."""
    from infomorphic.pid.samples import _DENSE_TABLE_FACTOR, _kernel_lattice

    kernel = load_kernel()
    assert kernel is not None
    gen = torch.Generator().manual_seed(100 * n + spread)
    n_bins = 20 if n < 4 else 6  # 6^4 cells: the finest table stays dense
    width = min(spread, n_bins)
    rows = torch.randint(0, width, (257, 9, n), generator=gen) + (n_bins - width) // 2
    coeffs, unions, members = _kernel_lattice(n)
    g_cond = torch.randn(9, coeffs.shape[0], generator=gen, dtype=torch.float64)
    g_plus = torch.randn(9, coeffs.shape[0], generator=gen, dtype=torch.float64)
    theta = torch.rand(9, 257, generator=gen, dtype=torch.float64).t()  # neuron-major
    for bins in (rows.to(bins_dtype), rows.permute(1, 2, 0).contiguous().permute(2, 0, 1).to(bins_dtype)):
        common = (bins, torch.tensor([n_bins] * n), members, _DENSE_TABLE_FACTOR)
        rest = (coeffs, unions, g_cond, g_plus, True, False)
        cond, plus, grad = kernel.run(*common, theta, True, *rest)
        cond_w, plus_w, grad_w = kernel.run(*common, binary_weights(theta), False, *rest)
        assert torch.equal(cond, cond_w) and torch.equal(plus, plus_w)
        torch.testing.assert_close(grad, grad_w[..., 1] - grad_w[..., 0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("binary", [True, False])
def test_kernel_reads_uint8_bins_as_int32_ones(n: int, binary: bool) -> None:
    """Training hands the kernel uint8 bins (at most 256 bins): every output is that of the same
    integers as int32 or int64, to the bit, on the one-pass binary path (dense finest table, 1024
    samples) and the general paths (rank-compressed tables, 257 samples), in both layouts."""
    from infomorphic.pid.samples import _kernel_lattice, _run_kernel

    assert load_kernel() is not None
    coeffs, _, _ = _kernel_lattice(n)
    for samples, n_bins in ((1024, 20 if n < 4 else 6), (257, 200)):
        gen = torch.Generator().manual_seed(10 * n + samples)
        rows = torch.randint(0, n_bins, (samples, 7, n), generator=gen)
        rows[0, 0] = n_bins - 1  # the top bin
        g_cond = torch.randn(7, coeffs.shape[0], generator=gen, dtype=torch.float64)
        theta = torch.rand(7, samples, generator=gen).t()
        weights = theta if binary else torch.softmax(torch.randn(samples, 7, 3, generator=gen), -1)
        empty = torch.empty(0, dtype=torch.float64)
        for layout in (rows, rows.permute(1, 2, 0).contiguous().permute(2, 0, 1)):
            outs = [
                _run_kernel(layout.to(dtype), (n_bins,) * n, weights, binary, g_cond, empty, True)
                for dtype in (torch.uint8, torch.int32, torch.int64)
            ]
            for other in outs[1:]:
                assert all(torch.equal(a, b) for a, b in zip(outs[0], other))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_results_do_not_depend_on_the_memory_layout(dtype: torch.dtype) -> None:
    """Row-major theta (read through a tiled transpose) and bins, or both stored neuron by neuron:
    the same atoms and gradients (to the bit for the bins' layouts; theta's layout changes the
    order of torch's mean over the batch, the target marginal, hence 1 ulp), and the gradient
    comes back in theta's row layout."""
    gen = torch.Generator().manual_seed(11)
    rows = torch.randint(0, 20, (333, 37, 3), generator=gen, dtype=torch.int32)  # (B, N, n) row-major
    by_neuron = rows.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # same values, samples contiguous
    logits = torch.randn(333, 37, generator=gen, dtype=dtype)
    results = []
    for bins, theta_layout in (
        (rows, "rows"),
        (by_neuron, "rows"),
        (rows, "neurons"),
        (by_neuron, "neurons"),
    ):
        z = logits.clone() if theta_layout == "rows" else logits.t().contiguous().t()
        z.requires_grad_(True)
        theta = torch.sigmoid(z)
        res = sx_pid_from_binary_samples(bins, theta, 20, backend="kernel", validate=False)
        (g_theta,) = torch.autograd.grad((res.atoms * torch.arange(18, dtype=dtype)).sum(), theta)
        results.append((res.atoms.detach(), g_theta))
    assert results[0][1].is_contiguous()  # row-major theta, row-major gradient
    assert torch.equal(results[1][0], results[0][0]) and torch.equal(results[1][1], results[0][1])
    assert torch.equal(results[3][0], results[2][0]) and torch.equal(results[3][1], results[2][1])
    ulp = torch.finfo(dtype).eps
    torch.testing.assert_close(results[2][0], results[0][0], rtol=0, atol=4 * ulp)
    torch.testing.assert_close(
        results[2][1], results[0][1], rtol=8 * ulp, atol=8 * ulp * float(results[0][1].abs().max())
    )


@BACKENDS
def test_binary_samples_gradcheck(backend: str) -> None:
    gen = torch.Generator().manual_seed(3)
    bins = torch.randint(0, 4, (12, 2, 3), generator=gen)
    logits = torch.randn(12, 2, generator=gen, dtype=torch.float64).requires_grad_(True)
    gamma = torch.rand(18, generator=gen, dtype=torch.float64) * 2 - 1

    def goal(z: torch.Tensor) -> torch.Tensor:
        res = sx_pid_from_binary_samples(bins, torch.sigmoid(z), 4, backend=backend, grad_hint=gamma)
        return res.atoms @ gamma + 0.2 * res.residual_entropy

    assert torch.autograd.gradcheck(goal, (logits,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_binary_samples_rejects_bad_theta() -> None:
    bins = torch.zeros(8, 2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="theta must have shape"):
        sx_pid_from_binary_samples(bins, torch.rand(8, 3), 4)
    with pytest.raises(ValueError, match="floating point"):
        sx_pid_from_binary_samples(bins, torch.ones(8, 2, dtype=torch.long), 4)


# ------------------------------------------------------------------ four sources
@pytest.mark.parametrize(
    "batch, n_bins",
    [
        (200, 8),  # the four-source table (4096 cells) is rank-compressed, triples per sample
        (600, 5),  # every table dense
    ],
)
@BACKENDS
def test_four_sources_match_the_exact_numpy_pid(batch: int, n_bins: int, backend: str) -> None:
    """The training path for F, C, L, B against the exact float64 I^sx of the plug-in pmf."""
    from infomorphic.pid import sx_pid

    gen = torch.Generator().manual_seed(batch)
    bins = torch.randint(0, n_bins, (batch, 2, 4), generator=gen)
    bins[: batch // 2, :, 3] = bins[: batch // 2, :, 0]  # B partly copies F: real redundancy with B
    drive = bins[..., 0].double() - (n_bins - 1) / 2  # the target follows F: F and B carry it redundantly
    theta = torch.sigmoid(drive + torch.randn(batch, 2, generator=gen, dtype=torch.float64))
    ours = sx_pid_from_binary_samples(bins, theta, n_bins, parts=True, backend=backend)
    pmf = soft_histogram(bins, binary_weights(theta), n_bins).numpy()
    lat = get_lattice(4)
    for j in range(2):
        exact = sx_pid(pmf[j])
        assert torch.allclose(ours.atoms[j], torch.as_tensor(exact.atom_vector()), atol=1e-11)
        informative = torch.tensor([exact.informative_atoms[a] for a in lat.antichains], dtype=torch.float64)
        assert torch.allclose(ours.informative_atoms[j], informative, atol=1e-11)
        assert float(ours.residual_entropy[j]) == pytest.approx(exact.residual_entropy, abs=1e-12)
    assert float(ours.redundancies[:, lat.index("{F}{B}", "FCLB")].min()) > 0.05


@BACKENDS
def test_four_sources_marginal_goal_equals_the_trivariate_goal_with_gradients(backend: str) -> None:
    """Training layout (B = 1024, 20 bins): the 'marginal' embedding of a trivariate goal on the
    four-source PID equals the trivariate goal on F, C, L alone, values and gradients w.r.t. theta,
    for a B that carries information (an independent check of all 166 atoms and their backward)."""
    from infomorphic.goals import Goal

    goal3 = Goal.preset("trivariate-mnist-tpe")
    goal4 = goal3.embed("FCLB", mode="marginal")
    gen = torch.Generator().manual_seed(8)
    bins = torch.randint(0, 20, (1024, 3, 4), generator=gen, dtype=torch.int32)
    z = torch.randn(1024, 3, generator=gen, dtype=torch.float64).mul(2).requires_grad_(True)
    values, grads = [], []
    for goal, b in ((goal3, bins[..., :3]), (goal4, bins)):
        res = sx_pid_from_binary_samples(
            b, torch.sigmoid(z), 20, backend=backend, grad_hint=goal.redundancy_weights()
        )
        value = goal.evaluate(res.atoms, res.residual_entropy)
        values.append(value)
        grads.append(torch.autograd.grad(-value.sum(), z)[0])
    assert torch.allclose(values[1], values[0], atol=1e-10)
    assert torch.allclose(grads[1], grads[0], atol=1e-10)
    assert grads[0].abs().max() > 1e-5


def test_four_source_float32_goal_reuses_the_hinted_gradient(monkeypatch: pytest.MonkeyPatch) -> None:
    """A general four-source goal in float32 (its Moebius transform rounds near-zero weights far
    beyond 1e-6 relative) still gets its gradient from the forward pass: one kernel call, and
    the gradient of the general backward pass up to float32 rounding."""
    from infomorphic.goals import Goal
    from infomorphic.pid import samples

    gen = torch.Generator().manual_seed(6)
    names = get_lattice(4).names("FCLB")
    goal = Goal("FCLB", {**dict(zip(names, (torch.rand(166, generator=gen) * 2 - 1).tolist())), "H_res": 0.1})
    bins = torch.randint(0, 20, (512, 3, 4), generator=gen, dtype=torch.int32)
    z = torch.randn(512, 3, generator=gen).requires_grad_(True)
    calls = []
    run = samples._run_kernel
    monkeypatch.setattr(samples, "_run_kernel", lambda *args: calls.append(1) or run(*args))

    def grad(hint: torch.Tensor | None) -> torch.Tensor:
        calls.clear()
        res = sx_pid_from_binary_samples(bins, torch.sigmoid(z), 20, backend="kernel", grad_hint=hint)
        return torch.autograd.grad(-goal.evaluate(res.atoms, res.residual_entropy).sum(), z)[0]

    reference = grad(None)
    assert len(calls) == 2  # forward, then the general backward
    hinted = grad(goal.redundancy_weights())
    assert len(calls) == 1  # the backward reused the forward pass's gradient
    torch.testing.assert_close(hinted, reference, rtol=1e-4, atol=1e-4 * float(reference.abs().max()))


@pytest.mark.parametrize("occupied", [1, 31, 32, 33, 64, 65, 200])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_cell_blocks_match_the_torch_path(occupied: int, dtype: torch.dtype) -> None:
    """The kernel evaluates the occupied cells of each table in blocks of 32 (vectorised over the
    cells): with exactly 1, 31, 32, 33, 64, 65 and 200 occupied four-source cells (partial,
    full and several blocks), its atoms and the gradient of a goal (from the forward pass's hint
    and from the general backward) equal the PyTorch path's."""
    from infomorphic.goals import Goal

    gen = torch.Generator().manual_seed(occupied)
    cells = torch.randperm(12**4, generator=gen)[:occupied]
    digits = torch.stack([cells // 12**3, cells // 12**2 % 12, cells // 12 % 12, cells % 12], -1)
    pick = torch.cat([torch.arange(occupied), torch.randint(0, occupied, (300,), generator=gen)])
    bins = digits[pick][:, None, :].expand(-1, 2, -1).clone()  # every cell occupied, some shared
    bins[:, 1] = bins[:, 1].roll(1, dims=-1)
    names = get_lattice(4).names("FCLB")
    goal = Goal("FCLB", {**dict(zip(names, (torch.rand(166, generator=gen) * 2 - 1).tolist())), "H_res": 0.2})
    z0 = torch.randn(len(pick), 2, generator=gen, dtype=dtype)
    out = {}
    for backend in ("torch", "kernel"):
        for hint in (None, goal.redundancy_weights()):
            z = z0.clone().requires_grad_(True)
            res = sx_pid_from_binary_samples(
                bins, torch.sigmoid(z), 12, parts=True, backend=backend, grad_hint=hint
            )
            value = goal.evaluate(res.atoms, res.residual_entropy)
            out[backend, hint is None] = (res.atoms.detach(), torch.autograd.grad(-value.sum(), z)[0])
    tol = {"rtol": 1e-9, "atol": 1e-11} if dtype == torch.float64 else {"rtol": 2e-4, "atol": 2e-5}
    for hinted in (True, False):
        atoms, grad = out["kernel", hinted]
        torch.testing.assert_close(atoms, out["torch", hinted][0], **tol)
        scale = float(out["torch", hinted][1].abs().max())
        assert scale > 0
        torch.testing.assert_close(
            grad, out["torch", hinted][1], rtol=tol["rtol"], atol=tol["atol"] * max(scale, 1)
        )


# ------------------------------------------------------------------ hinted only (no atoms recorded)
@pytest.mark.parametrize("n", [3, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hinted_only_gives_the_goal_and_exactly_the_gradient_of_the_full_call(
    n: int, dtype: torch.dtype
) -> None:
    """Training steps that record no atoms compute only the redundancies the goal weighs: the
    goal's value up to rounding and its gradient to the bit, while the skipped redundancies are
    really not computed (they differ from the PID's)."""
    from infomorphic.goals import Goal

    if n == 4:  # the published goal, B atoms at 0: 99 of 166 redundancy weights are 0
        goal = Goal.preset("trivariate-mnist-tpe").embed("FCLB")
    else:  # unique information of F and half the synergy: 8 of 18 weights are 0
        goal = Goal.resolve("{F} + 0.5 {F,C,L}", "FCL")
    hint = goal.redundancy_weights()
    gen = torch.Generator().manual_seed(11 + n)
    bins = torch.randint(0, 20, (1024, 6, n), generator=gen, dtype=torch.int32)
    bins[:, :, 1] = bins[:, :, 0] // 2  # sources that share information: non-trivial redundancies
    z = torch.randn(1024, 6, generator=gen, dtype=dtype).mul(2).requires_grad_(True)

    def run(hinted_only: bool):
        res = sx_pid_from_binary_samples(
            bins, torch.sigmoid(z), 20, backend="kernel", grad_hint=hint, hinted_only=hinted_only
        )
        value = goal.evaluate(res.atoms, res.residual_entropy)
        (grad,) = torch.autograd.grad(-value.sum(), z)
        return res, value.detach(), grad

    full, value_full, grad_full = run(False)
    only, value_only, grad_only = run(True)
    assert torch.equal(grad_only, grad_full)
    assert grad_full.abs().max() > 1e-5
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    assert torch.allclose(value_only, value_full, atol=tol, rtol=0)
    weighed = hint != 0
    assert 0 < int(weighed.sum()) < len(hint)
    red_full, red_only = full.redundancies.detach(), only.redundancies.detach()
    assert torch.equal(red_only[:, weighed], red_full[:, weighed])
    skipped = red_only[:, ~weighed]
    assert torch.allclose(skipped, only.target_entropy.detach()[:, None].expand_as(skipped))  # H(T): sum of 0
    assert not torch.allclose(red_only[:, ~weighed], red_full[:, ~weighed], atol=1e-3)


def test_hinted_only_needs_a_hint_and_no_parts() -> None:
    bins = torch.zeros(8, 2, 3, dtype=torch.long)
    theta = torch.full((8, 2), 0.5)
    with pytest.raises(ValueError, match="needs a grad_hint"):
        sx_pid_from_binary_samples(bins, theta, 4, hinted_only=True)
    with pytest.raises(ValueError, match="parts=False"):
        sx_pid_from_samples(
            bins, binary_weights(theta), 4, parts=True, grad_hint=torch.ones(18), hinted_only=True
        )


def test_hinted_only_is_the_full_pid_on_the_torch_path() -> None:
    """The PyTorch path computes every redundancy whatever ``hinted_only`` says."""
    bins, weights = _inputs(128, 3, 3, 6, seed=5)
    hint = torch.zeros(18, dtype=torch.float64)
    hint[0] = 1.0
    ref = sx_pid_from_samples(bins, weights, 6, backend="torch")
    res = sx_pid_from_samples(bins, weights, 6, backend="torch", grad_hint=hint, hinted_only=True)
    assert torch.equal(res.atoms, ref.atoms)
