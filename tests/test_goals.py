"""Tests for infomorphic.goals: building, printing and evaluating local goals (bits).

Expected values are typed from the published goals (Schneider et al. 2025, arXiv:2412.02482),
not computed with the code under test.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import infomorphic.goals as goals_module
from infomorphic.goals import ATOM_MEANINGS, H_RES, PRESETS, Goal, Preset, atom_meaning, paper_order
from infomorphic.pid import get_lattice, sx_pid_torch

# Schneider et al. 2025, Fig. 5A and appendix A.10: optimised MNIST (TPE, setup 1, N = 100),
# papers' order, H_res last.
MNIST_TPE = [
    0.33073, 0.97808, -0.99350, 0.40173, 0.24278, 0.62554, 0.47128, 0.02121, 0.06054, -0.94698,
    -0.01985, -0.96766, -0.69245, 0.42701, 0.97364, 0.73696, -0.12183, -0.21512, 0.03500,
]  # fmt: skip
# The papers' trivariate order (Schneider et al. 2025, Table 2) {1}{2}{3}, {1}{2}, ... with
# 1 -> F, 2 -> C, 3 -> L, typed by hand.
TRIVARIATE_NAMES = [
    "{F}{C}{L}", "{F}{C}", "{F}{L}", "{C}{L}", "{F}{CL}", "{C}{FL}", "{L}{FC}",
    "{F}", "{C}", "{L}", "{FC}{FL}{CL}", "{FC}{FL}", "{FC}{CL}", "{FL}{CL}",
    "{FC}", "{FL}", "{CL}", "{FCL}",
]  # fmt: skip
READOUT = [-0.2, 0.1, 1.0, 0.1, 0.0]


def _random_pid(n_sources: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    pmf = torch.rand((3,) + (2,) * (n_sources + 1), generator=gen, dtype=torch.float64)
    pmf = pmf / pmf.sum(dim=tuple(range(1, pmf.ndim)), keepdim=True)
    res = sx_pid_torch(pmf, n_sources)
    return res.atoms, res.residual_entropy


# ------------------------------------------------------------------ from_vector
def test_from_vector_mnist_tpe_critical_parameters() -> None:
    goal = Goal.from_vector(MNIST_TPE, "FCL")
    assert goal.weight("{F}{C}") == 0.97808
    assert goal.weight("{F}{L}") == -0.99350
    assert goal.weight("{F}{C}{L}") == 0.33073
    assert goal.weight("{FC}{FL}") == -0.96766
    assert goal.gamma_res == 0.035
    assert goal.weight(H_RES) == 0.035


def test_from_vector_mnist_tpe_every_atom_by_name() -> None:
    goal = Goal.from_vector(MNIST_TPE)  # sources inferred from 19 values
    assert goal.sources == ("F", "C", "L")
    for name, value in zip(TRIVARIATE_NAMES, MNIST_TPE):
        assert goal.weight(name) == value, name
    assert goal.to_vector() == MNIST_TPE


def test_from_vector_bivariate_readout_order() -> None:
    goal = Goal.from_vector(READOUT, "FC")
    assert goal.weight("{F}") == -0.2
    assert goal.weight("{C}") == 0.1
    assert goal.weight("{F}{C}") == 1.0
    assert goal.weight("{FC}") == 0.1
    assert goal.gamma_res == 0.0
    assert goal.to_vector() == READOUT
    assert paper_order("FC") == ("{F}", "{C}", "{F}{C}", "{FC}")


def test_from_vector_without_h_res_and_tensor_input() -> None:
    short = Goal.from_vector([0.0, 0.0, 1.0, 0.0])
    assert short == Goal(("F", "C"), {"{F}{C}": 1.0})
    assert short.gamma_res == 0.0
    assert Goal.from_vector(torch.tensor(MNIST_TPE[:18], dtype=torch.float64)) == Goal.from_vector(
        MNIST_TPE[:18] + [0.0]
    )


@pytest.mark.parametrize(
    "values, sources, match",
    [
        ([1.0, 2.0, 3.0], None, "got 3"),
        ([0.0] * 7, "FCL", "needs 18 or 19 values"),
        ([0.0] * 18, "FC", "needs 4 or 5 values"),
        ([float("nan"), 0.0, 1.0, 0.0, 0.0], "FC", "finite"),
        ([0.0, float("inf"), 1.0, 0.0], "FC", "finite"),
        (np.zeros((2, 5)), "FC", "one-dimensional"),
        ("0 0 1 0 0", "FC", "string"),
    ],
)
def test_from_vector_rejects(values: object, sources: str | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Goal.from_vector(values, sources)  # type: ignore[arg-type]


# ------------------------------------------------------------------ construction
def test_goal_normalises_names_and_drops_zeros() -> None:
    goal = Goal(("F", "C", "L"), {"{CL}{F}": 0.5, "{C}{F}": 1, "{L}": 0.0, "H_res": 0.1})
    assert dict(goal.gamma) == {"{F}{C}": 1.0, "{F}{CL}": 0.5, "H_res": 0.1}
    assert list(goal.gamma) == ["{F}{C}", "{F}{CL}", "H_res"]  # canonical order, H_res last
    assert goal == Goal.parse("{F}{C} + 0.5*{F}{CL} + 0.1*H_res")
    assert hash(goal) == hash(Goal.parse("0.1*H_res + {F}{C} + 0.5*{CL}{F}"))
    with pytest.raises(TypeError):
        goal.gamma["{F}"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize(
    "sources, gamma, match",
    [
        ("FCL", {"{F}{X}": 1.0}, r"unknown atom name '\{F\}\{X\}'.*valid names.*\{FC\}\{FL\}\{CL\}"),
        ("FC", {"{L}": 1.0}, r"'L' is not a source"),
        ("FCL", {"{F}{FC}": 1.0}, "not an antichain"),
        ("FCL", {"H_Y": 1.0}, "neither an atom name nor 'H_res'"),
        ("FCL", {"{F}": float("nan")}, "finite"),
        ("FCL", {"{F}": "1.0"}, "finite"),
        ("FCL", {"{F}{C}": 1.0, "{C}{F}": 2.0}, "name the same atom"),
        ("F", {"{F}": 1.0}, "2 to 4 sources"),
        ("FF", {"{F}": 1.0}, "distinct"),
    ],
)
def test_goal_rejects(sources: str, gamma: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Goal(tuple(sources), gamma)  # type: ignore[arg-type]


def test_with_gamma_and_with_sources() -> None:
    goal = Goal.preset("trivariate-mnist-tpe")
    ablated = goal.with_gamma({"{L}{F}": 0.0})
    assert ablated.weight("{F}{L}") == 0.0 and "{F}{L}" not in ablated.gamma
    assert ablated.weight("{F}{C}") == 0.97808
    lateral = Goal.preset("bivariate-lateral-optimised").with_sources("FL")
    assert lateral.sources == ("F", "L")
    assert lateral.weight("{F}{L}") == 0.9030 and lateral.weight("{L}") == -0.2038
    with pytest.raises(ValueError, match="cannot rename"):
        goal.with_sources("FC")


# ------------------------------------------------------------------ parse
def test_parse_examples_from_brief() -> None:
    goal = Goal.parse("0.33*{F}{C}{L} + {F}{C} - {F}{L} - {FC}{FL}")
    assert dict(goal.gamma) == {"{F}{C}{L}": 0.33, "{F}{C}": 1.0, "{F}{L}": -1.0, "{FC}{FL}": -1.0}
    readout = Goal.parse("-0.2*{F} + 0.1 {C} + {F}{C} + 0.1*{FC}", sources="FC")
    assert readout == Goal.preset("readout")
    assert Goal.parse("1e-1*H_res").gamma_res == 0.1
    assert dict(Goal.parse("+{F}").gamma) == {"{F}": 1.0}
    assert Goal.parse("  -0.5 *{CL}{F}+H_res ").to_dict() == {"{F}{CL}": -0.5, "H_res": 1.0}


def test_parse_repeated_terms_add_up() -> None:
    goal = Goal.parse("{F}{C} + 0.5*{C}{F} - 0.25 {F}{C} + {F} - {F}")
    assert goal.to_dict() == {"{F}{C}": 1.25}


def test_parse_accepts_unicode_minus_as_in_spec() -> None:
    assert Goal.parse("\u22120.2*{F} + {F}{C}", "FC").weight("{F}") == -0.2


@pytest.mark.parametrize(
    "expression, match",
    [
        ("2*{F}{X}", r"unknown atom '\{F\}\{X\}'.*'X' is not a source"),
        ("{F}{FC}", r"not an antichain: \{F\} is contained in \{FC\}"),
        ("0.3*", "incomplete term '0.3\\*'"),
        ("{F}} + 1", "unbalanced '}' at column 4"),
        ("abc", "unknown name 'abc'"),
        ("", "empty goal expression"),
        ("   ", "empty goal expression"),
        ("{F} {C}", "expected '\\+' or '-' before '{C}'"),
        ("--{F}", "expected an atom name"),
        ("*{F}", "without a coefficient"),
        ("1e999*{F}", "not finite"),
        ("{F", "unbalanced '{'"),
        ("{F}{C} -", "incomplete term"),
    ],
)
def test_parse_rejects(expression: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Goal.parse(expression)


def test_parse_error_points_at_the_bad_term() -> None:
    expression = "{F}{C} + 2*{F}{X}"
    with pytest.raises(ValueError) as info:
        Goal.parse(expression)
    message = str(info.value)
    assert "unknown atom '{F}{X}' at column 12" in message
    lines = message.splitlines()
    shown = next(line for line in lines if line.strip() == expression)
    marker = lines[lines.index(shown) + 1]
    assert marker.strip() == "^" * len("{F}{X}")
    assert marker.index("^") == shown.index("{F}{X}")
    assert "{FC}{FL}{CL}" in message and "H_res" in message  # lists the valid names


# ------------------------------------------------------------------ output
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_to_expression_round_trips_every_preset(name: str) -> None:
    goal = Goal.preset(name)
    text = goal.to_expression()
    assert Goal.parse(text, goal.sources) == goal
    assert Goal.resolve(text, goal.sources) == goal
    assert Goal.from_dict(goal.to_dict(), goal.sources) == goal
    assert Goal.from_vector(goal.to_vector(), goal.sources) == goal
    assert str(goal) == text


def test_to_expression_format_and_exact_floats() -> None:
    text = Goal.preset("trivariate-mnist-tpe").to_expression()
    assert text.startswith("0.33073*{F}{C}{L} + 0.97808*{F}{C} - 0.9935*{F}{L} + ")
    assert text.endswith(" - 0.21512*{FCL} + 0.035*H_res")
    awkward = Goal(("F", "C"), {"{F}": 0.1 + 0.2, "{C}": -1e-17, "{FC}": 1 / 3, "H_res": 1.0})
    assert Goal.parse(awkward.to_expression(), "FC") == awkward
    zero = Goal(("F", "C"), {})
    assert Goal.parse(zero.to_expression(), "FC") == zero
    assert eval(repr(awkward), {"Goal": Goal}) == awkward


def test_gamma_tensor_uses_lattice_order() -> None:
    gamma, gamma_res = Goal.preset("readout").gamma_tensor(torch.float64)
    # lattice order for two sources: {F}{C}, {F}, {C}, {FC}
    assert gamma.tolist() == [1.0, -0.2, 0.1, 0.1]
    assert gamma.dtype == torch.float64 and gamma_res == 0.0
    gamma3, res3 = Goal.from_vector(MNIST_TPE).gamma_tensor(torch.float64)
    assert gamma3.tolist() == MNIST_TPE[:18]  # trivariate papers' order = lattice order
    assert res3 == 0.035
    assert get_lattice(3).names() == tuple(TRIVARIATE_NAMES)


# ------------------------------------------------------------------ evaluate
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_evaluate_is_the_dot_product(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(3)
    atoms = torch.randn(7, 18, generator=gen, dtype=dtype)
    residual = torch.rand(7, generator=gen, dtype=dtype)
    value = Goal.from_vector(MNIST_TPE).evaluate(atoms, residual)
    expected = [
        sum(g * float(atoms[i, k]) for k, g in enumerate(MNIST_TPE[:18])) + 0.035 * float(residual[i])
        for i in range(7)
    ]
    assert value.shape == (7,) and value.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(value.double().numpy(), expected, atol=tol)


def test_evaluate_gradient_is_gamma() -> None:
    atoms = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    residual = torch.rand(4, dtype=torch.float64, requires_grad=True)
    goal = Goal.preset("bivariate-context-optimised")
    goal.evaluate(atoms, residual).sum().backward()
    assert atoms.grad is not None and residual.grad is not None
    expected = torch.tensor([0.5118, -0.0990, 0.3916, 0.5942], dtype=torch.float64)  # lattice order
    assert torch.equal(atoms.grad, expected.expand(4, 4))
    assert torch.equal(residual.grad, torch.full((4,), 0.0885, dtype=torch.float64))


def test_evaluate_checks_shapes_and_residual() -> None:
    goal = Goal.preset("trivariate-mnist-tpe")
    with pytest.raises(ValueError, match=r"\(\*batch, 18\)"):
        goal.evaluate(torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="residual_entropy must have shape"):
        goal.evaluate(torch.zeros(3, 18), torch.zeros(2))
    with pytest.raises(ValueError, match="pass residual_entropy"):
        goal.evaluate(torch.zeros(3, 18))
    with pytest.raises(ValueError, match="floating-point"):
        goal.evaluate(torch.zeros(3, 18, dtype=torch.int64), torch.zeros(3))
    naive = Goal.preset("trivariate-naive")
    assert naive.evaluate(torch.ones(2, 5, 18)).shape == (2, 5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_evaluate_on_cuda() -> None:
    atoms = torch.randn(5, 18, device="cuda")
    value = Goal.preset("trivariate-mnist-tpe").evaluate(atoms, torch.zeros(5, device="cuda"))
    assert value.device.type == "cuda"
    expected = Goal.preset("trivariate-mnist-tpe").evaluate(atoms.cpu(), torch.zeros(5))
    assert torch.allclose(value.cpu(), expected, atol=1e-5)


# ------------------------------------------------------------------ presets and resolve
def test_preset_values_typed_from_spec() -> None:
    assert Goal.preset("trivariate-mnist-tpe").to_vector() == MNIST_TPE
    assert Goal.preset("readout").to_vector() == READOUT
    assert Goal.preset("bivariate-lateral-optimised").to_vector() == [0.8281, -0.2038, 0.9030, 0.5267, 0.1350]
    assert Goal.preset("trivariate-naive").to_dict() == {"{F}{C}": 1.0}
    assert Goal.preset("bars-unique").to_dict() == {"{F}": 1.0}
    cifar = Goal.preset("trivariate-cifar-cmaes")
    assert cifar.weight("{F}{C}{L}") == 0.98378 and cifar.weight("{FCL}") == -0.26290
    assert cifar.gamma_res == 0.0
    cmaes = Goal.preset("trivariate-mnist-cmaes")
    assert cmaes.weight("{FC}{FL}") == -0.70579 and cmaes.weight("{FCL}") == 0.05719


def test_preset_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown goal preset 'readuot' \\(did you mean 'readout'\\?\\)"):
        Goal.preset("readuot")


def test_resolve_accepts_all_three_forms() -> None:
    readout = Goal.preset("readout")
    assert Goal.resolve("readout") == readout
    assert Goal.resolve("  readout ") == readout
    assert Goal.resolve("-0.2*{F} + 0.1*{C} + {F}{C} + 0.1*{FC}", "FC") == readout
    assert Goal.resolve("-0.2, 0.1, 1.0, 0.1, 0.0") == readout
    assert Goal.resolve("[\u22120.2, 0.1, 1.0, 0.1]") == readout
    assert Goal.resolve("-0.2 0.1 1 0.1 0", "FC") == readout
    assert Goal.resolve("{F}{C}") == Goal.preset("trivariate-naive")  # expressions default to F, C, L
    assert Goal.resolve("bars-unique", "FL").to_dict() == {"{F}": 1.0}
    assert Goal.resolve("H_res").to_dict() == {"H_res": 1.0}


@pytest.mark.parametrize(
    "text, match",
    [
        ("trivariate-mnist", "unknown goal preset .*did you mean"),
        ("nope", "unknown goal preset 'nope'"),
        ("1, 2, 3", "got 3"),
        ("nan, 0, 1, 0, 0", "finite"),
        ("{F}{Q}", "unknown atom"),
        ("", "empty goal expression"),
    ],
)
def test_resolve_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Goal.resolve(text)


# ------------------------------------------------------------------ contract over presets
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_contract(name: str) -> None:
    preset = PRESETS[name]
    assert isinstance(preset, Preset) and preset.name == name
    assert preset.description and "\n" not in preset.description and preset.source
    goal = preset.goal
    assert goal.n_sources in (2, 3)
    assert len(goal.to_vector()) == {2: 5, 3: 19}[goal.n_sources]
    assert all(-1.0 <= g <= 1.0 for g in goal.gamma.values())
    atoms, residual = _random_pid(goal.n_sources, seed=len(name))
    atoms = atoms.clone().requires_grad_(True)
    value = goal.evaluate(atoms, residual)
    assert value.shape == (3,) and bool(torch.isfinite(value).all())
    value.sum().backward()
    assert atoms.grad is not None and bool(torch.isfinite(atoms.grad).all())
    rows = goal.describe()
    assert [abs(g) for _, g, _ in rows] == sorted((abs(g) for _, g, _ in rows), reverse=True)
    assert {atom for atom, _, _ in rows} == set(goal.gamma)


def test_equal_gammas_give_gamma_times_target_entropy() -> None:
    """Atoms plus H_res add up to H(Y): a flat goal is gamma * H(Y) on a real PID."""
    gen = torch.Generator().manual_seed(11)
    pmf = torch.rand((4, 2, 3, 2, 2), generator=gen, dtype=torch.float64)
    pmf = pmf / pmf.sum(dim=(1, 2, 3, 4), keepdim=True)
    res = sx_pid_torch(pmf, 3)
    flat = Goal.from_vector([0.5] * 19)
    value = flat.evaluate(res.atoms, res.residual_entropy)
    assert torch.allclose(value, 0.5 * res.target_entropy, rtol=0.0, atol=1e-12)


# ------------------------------------------------------------------ meanings
def test_atom_meanings_cover_every_atom() -> None:
    for n in (2, 3):
        assert set(ATOM_MEANINGS[n]) == set(get_lattice(n).names()) | {H_RES}
    assert "unique" in ATOM_MEANINGS[2]["{F}"] and "feedforward" in ATOM_MEANINGS[2]["{F}"]
    assert "unique" in ATOM_MEANINGS[2]["{C}"] and "context" in ATOM_MEANINGS[2]["{C}"]
    assert "redundancy" in ATOM_MEANINGS[2]["{F}{C}"]
    assert "synergy" in ATOM_MEANINGS[2]["{FC}"]
    assert "redundant in all three" in ATOM_MEANINGS[3]["{F}{C}{L}"]
    assert "full synergy" in ATOM_MEANINGS[3]["{FCL}"]
    assert "any of the three pairs" in ATOM_MEANINGS[3]["{FC}{FL}{CL}"]
    assert "randomness" in ATOM_MEANINGS[3][H_RES]
    assert atom_meaning("{CL}{F}") == ATOM_MEANINGS[3]["{F}{CL}"]
    assert "X" in atom_meaning("{X}", "XY")
    with pytest.raises(ValueError, match="unknown atom name"):
        atom_meaning("{F}{Z}")


def test_describe_sorted_by_magnitude() -> None:
    rows = Goal.preset("readout").describe()
    expected = [("{F}{C}", 1.0), ("{F}", -0.2), ("{C}", 0.1), ("{FC}", 0.1)]
    assert [(atom, gamma) for atom, gamma, _ in rows] == expected
    assert rows[0][2] == ATOM_MEANINGS[2]["{F}{C}"]


# ------------------------------------------------------------------ module hygiene
def test_goals_imports_only_torch_and_pid() -> None:
    package = Path(goals_module.__file__).parent
    siblings = {path.stem for path in package.glob("*.py")} - {"__init__"}
    local = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module in siblings:
                continue  # the goals package's own modules
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                local.add(node.module or "")
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("infomorphic"):
                local.add(node.module)
    assert local <= {"pid.lattice", "pid"}, local
    assert set(goals_module.__all__) <= set(dir(goals_module))
    assert math.isfinite(sum(Goal.preset(n).gamma_res for n in PRESETS))


def test_redundancy_weights_is_the_gradient_of_the_goal() -> None:
    """dG/dI(alpha), checked by autograd through the Moebius inversion of a real PID."""
    from infomorphic.pid import sx_pid_torch

    goal = Goal.preset("trivariate-mnist-tpe")
    gen = torch.Generator().manual_seed(0)
    pmf = torch.rand(2, 2, 2, 2, generator=gen, dtype=torch.float64) + 0.05
    res = sx_pid_torch(pmf / pmf.sum(), 3)
    red = res.redundancies.detach().requires_grad_(True)
    atoms = red @ torch.as_tensor(res.lattice.moebius.T.astype("float64"))
    h_res = res.target_entropy - red[res.lattice.index(res.lattice.top)]
    (grad,) = torch.autograd.grad(goal.evaluate(atoms, h_res), red)
    assert torch.allclose(grad, goal.redundancy_weights(), atol=1e-12)


# ------------------------------------------------------------------ four sources (F, C, L, B)
def _exact_pid(pmf: np.ndarray) -> tuple[dict[str, float], float]:
    """Exact NumPy I^sx atoms by name (letters F, C, L, B) and H_res, bits."""
    from infomorphic.pid import sx_pid

    res = sx_pid(pmf)
    return res.named("FCLB"[: pmf.ndim - 1]), res.residual_entropy


def _value(goal: Goal, atoms: dict[str, float], h_res: float) -> float:
    """The goal by hand: sum of weights times atoms, by name (independent of Goal.evaluate)."""
    return sum(w * (h_res if name == H_RES else atoms[name]) for name, w in goal.gamma.items())


def test_four_source_expression_and_vector_in_lattice_order() -> None:
    goal = Goal.parse("{F}{C}{L}{B} + {F}{B} - {BF} + 0.5*H_res", "FCLB")
    assert goal.to_dict() == {"{F}{C}{L}{B}": 1.0, "{F}{B}": 1.0, "{FB}": -1.0, "H_res": 0.5}
    assert Goal.parse(goal.to_expression(), "FCLB") == goal
    names = get_lattice(4).names("FCLB")
    assert len(names) == 166 and names[0] == "{F}{C}{L}{B}" and names[-1] == "{FCLB}"
    vector = goal.to_vector()
    assert len(vector) == 167 and vector[names.index("{FB}")] == -1.0 and vector[-1] == 0.5
    assert Goal.from_vector(vector) == goal  # 167 values: sources F, C, L, B inferred
    assert Goal.from_vector(vector[:-1]).gamma_res == 0.0
    assert Goal.resolve(", ".join(map(str, vector)), "FCLB") == goal
    with pytest.raises(ValueError, match="166 or 167 values"):
        Goal.from_vector([0.0] * 165)
    with pytest.raises(ValueError, match="needs 166 or 167 values"):
        Goal.from_vector([0.0] * 18, "FCLB")


def test_embed_zero_keeps_names_weights_and_h_res() -> None:
    tpe = Goal.preset("trivariate-mnist-tpe")
    embedded = tpe.embed("FCLB")
    assert embedded.sources == ("F", "C", "L", "B")
    assert embedded.to_dict() == tpe.to_dict()  # every atom involving B weighs 0
    vector = embedded.to_vector()
    for name, value in zip(TRIVARIATE_NAMES + [H_RES], MNIST_TPE):
        assert vector[(*get_lattice(4).names("FCLB"), H_RES).index(name)] == value
    assert sum(v != 0 for v in vector) == 19
    # the new source may sit anywhere; labels, not positions, are matched
    assert tpe.embed("BFCL").weight("{F}{L}") == -0.9935 and tpe.embed("BFCL").weight("{B}") == 0.0
    assert Goal.preset("readout").embed("FCL").to_dict() == Goal.preset("readout").to_dict()


def test_embed_rejects() -> None:
    with pytest.raises(ValueError, match="L missing; rename"):
        Goal.preset("trivariate-naive").embed("FCB")
    with pytest.raises(ValueError, match="mode must be"):
        Goal.preset("trivariate-naive").embed("FCLB", mode="nope")


def test_presets_and_vectors_resolve_for_four_sources_by_embedding() -> None:
    for name in (
        "trivariate-mnist-tpe",
        "trivariate-mnist-cmaes",
        "trivariate-cifar-cmaes",
        "trivariate-naive",
    ):
        embedded = Goal.preset(name).embed("FCLB")
        assert Goal.resolve(name, "FCLB") == embedded
        assert Goal.preset(name, "FCLB") == embedded
    # 19 numbers for four sources: the trivariate vector, embedded
    assert Goal.resolve(", ".join(map(str, MNIST_TPE)), "FCLB") == Goal.preset("trivariate-mnist-tpe", "FCLB")
    # a bivariate preset for F and B: renamed position by position, then embedded
    feedback = Goal.resolve("bivariate-context-naive", "FBCL")
    assert feedback.to_dict() == {"{F}{B}": 1.0} and feedback.sources == ("F", "B", "C", "L")
    with pytest.raises(ValueError, match="cannot rename"):
        Goal.resolve("trivariate-mnist-tpe", "FC")


@pytest.mark.parametrize("name", ["trivariate-mnist-tpe", "trivariate-cifar-cmaes", "trivariate-naive"])
def test_embedded_goal_on_a_constant_fourth_source_equals_the_trivariate_goal(name: str) -> None:
    """Exact I^sx: with B constant the four-source atoms without B are the trivariate atoms,
    every atom with B is 0, and H_res is unchanged; so the embedded goal has the same value."""
    rng = np.random.default_rng(11)
    pmf3 = rng.random((3, 2, 3, 2)) * (rng.random((3, 2, 3, 2)) > 0.2)
    pmf3 /= pmf3.sum()
    pmf4 = np.zeros((3, 2, 3, 2, 2))
    pmf4[:, :, :, 1, :] = pmf3  # B (axis 3) always 1
    atoms3, h3 = _exact_pid(pmf3)
    atoms4, h4 = _exact_pid(pmf4)
    for atom, value in atoms4.items():
        expected = atoms3[atom] if "B" not in atom else 0.0
        assert value == pytest.approx(expected, abs=1e-12), atom
    assert h4 == pytest.approx(h3, abs=1e-12)
    goal = Goal.preset(name)
    assert _value(goal.embed("FCLB"), atoms4, h4) == pytest.approx(_value(goal, atoms3, h3), abs=1e-12)
    assert abs(_value(goal, atoms3, h3)) > 1e-3


def test_embed_marginal_equals_the_goal_of_the_marginal_pmf_for_any_fourth_source() -> None:
    rng = np.random.default_rng(5)
    pmf4 = rng.random((2, 3, 2, 2, 2)) + 0.01
    pmf4 /= pmf4.sum()
    atoms4, h4 = _exact_pid(pmf4)
    atoms3, h3 = _exact_pid(pmf4.sum(axis=3))  # B marginalised out
    goal = Goal.preset("trivariate-mnist-tpe")
    marginal = goal.embed("FCLB", mode="marginal")
    assert _value(marginal, atoms4, h4) == pytest.approx(_value(goal, atoms3, h3), abs=1e-12)
    # the zero embedding is a different goal once B carries information
    assert abs(_value(goal.embed("FCLB"), atoms4, h4) - _value(goal, atoms3, h3)) > 1e-3
    # as a function of the redundancies the goal is unchanged: the same weights, B antichains 0
    lat3, lat4 = get_lattice(3), get_lattice(4)
    w3, w4 = goal.redundancy_weights(), marginal.redundancy_weights()
    moved = [lat4.index(a) for a in lat3.antichains]  # F, C, L keep their positions 0, 1, 2
    assert torch.allclose(w4[moved], w3, atol=1e-12)
    rest = torch.ones(len(lat4), dtype=torch.bool)
    rest[moved] = False
    assert w4[rest].abs().max() < 1e-12
    assert marginal.gamma_res == goal.gamma_res
    # a goal already over these sources is unchanged by either mode
    assert marginal.embed("FCLB", mode="marginal") == marginal


def test_atom_meanings_for_four_sources() -> None:
    names = get_lattice(4).names("FCLB")
    meanings = {atom_meaning(name, "FCLB") for name in names}
    assert len(meanings) == 166  # every atom has its own wording
    assert atom_meaning("{B}", "FCLB") == "available only from the feedback input B (unique information)"
    assert atom_meaning("{F}{C}{L}{B}", "FCLB") == (
        "available from each of F, C, L and B alone (redundant in all four)"
    )
    rows = Goal.preset("trivariate-mnist-tpe", "FCLB").describe()
    assert rows[0][0] == "{F}{L}" and len(rows) == 19
