"""sx_pid on other libraries' objects: dit distributions (against dit's own PID_SX) and pandas
DataFrames of samples (against the pmf counted by hand)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from infomorphic.pid import sx_pid
from infomorphic.pid.external import as_pmf, pmf_from_dataframe, pmf_from_dit

dit = pytest.importorskip("dit")
try:
    import pandas as pd
except ImportError:  # pandas is optional: only the DataFrame tests need it
    pd = None
needs_pandas = pytest.mark.skipif(pd is None, reason="pandas is not installed")

TOL = 1e-9


def _key(node: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """dit's lattice node (variable indices; variables 0..n-1 are the sources) -> our antichain."""
    return tuple(sorted((tuple(sorted(m)) for m in node), key=lambda m: (len(m), m)))


def _dit_atoms(dist, n_sources: int) -> dict:
    from dit.pid import PID_SX

    pid = PID_SX(dist, [[i] for i in range(n_sources)], [n_sources])
    return {_key(node): pid.get_pi(node) for node in pid._lattice}


def _dit_of_pmf(pmf: np.ndarray):
    cells = [idx for idx in itertools.product(*map(range, pmf.shape)) if pmf[idx] > 0]
    return dit.Distribution(cells, [float(pmf[c]) for c in cells])


def _assert_matches_dit(dist, n_sources: int) -> None:
    ours = sx_pid(dist)
    theirs = _dit_atoms(dist, n_sources)
    assert set(ours.atoms) == set(theirs)
    for key, value in theirs.items():
        assert ours.atoms[key] == pytest.approx(value, abs=TOL), key


def test_xor_and_and_match_dit() -> None:
    xor = dit.Distribution(["000", "011", "101", "110"], [0.25] * 4)
    _assert_matches_dit(xor, 2)
    assert sx_pid(xor).atoms[((0, 1),)] == pytest.approx(np.log2(4 / 3), abs=TOL)  # synergy 0.415 bit
    and_ = dit.Distribution(["000", "010", "100", "111"], [0.25] * 4)
    _assert_matches_dit(and_, 2)


def test_random_distributions_match_dit() -> None:
    rng = np.random.default_rng(7)
    pmf = rng.dirichlet(np.ones(8)).reshape(2, 2, 2)
    _assert_matches_dit(_dit_of_pmf(pmf), 2)
    # three sources: a random pmf on 8 of the 16 cells (dit's PID_SX is slow beyond that)
    p3 = np.zeros(16)
    p3[rng.choice(16, size=8, replace=False)] = rng.dirichlet(np.ones(8))
    _assert_matches_dit(_dit_of_pmf(p3.reshape(2, 2, 2, 2)), 3)
    # a wider alphabet with text values: the axes follow dist.alphabet
    cells = [("a", 0, "x"), ("a", 2, "y"), ("b", 1, "y"), ("c", 0, "x"), ("c", 2, "x")]
    wide = dit.Distribution(cells, rng.dirichlet(np.ones(5)).tolist())
    got = pmf_from_dit(wide)
    assert got.shape == (3, 3, 2)
    assert got[2, 2, 0] == pytest.approx(wide[("c", 2, "x")])
    _assert_matches_dit(wide, 2)


def test_dit_target_and_sources_by_name_and_log_base() -> None:
    rng = np.random.default_rng(3)
    pmf = rng.dirichlet(np.ones(12)).reshape(2, 3, 2)  # axes: T, A, B
    dist = _dit_of_pmf(pmf)
    dist.set_rv_names("TAB")
    moved = np.moveaxis(pmf, 0, -1)  # A, B, T
    np.testing.assert_allclose(pmf_from_dit(dist, target="T"), moved)
    np.testing.assert_allclose(pmf_from_dit(dist, target=0), moved)
    np.testing.assert_allclose(pmf_from_dit(dist, target="T", sources=["B", "A"]), np.moveaxis(moved, 0, 1))
    assert sx_pid(dist, target="T").atom_vector() == pytest.approx(sx_pid(moved).atom_vector(), abs=TOL)
    logged = dist.copy(base=2)
    assert logged.is_log()
    np.testing.assert_allclose(pmf_from_dit(logged, target="T"), moved)
    # three variables, one left out: summed over
    three = _dit_of_pmf(rng.dirichlet(np.ones(8)).reshape(2, 2, 2))
    with pytest.raises(ValueError, match="at least 2 sources"):
        sx_pid(three, sources=[0])


def test_dit_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="at least 2 sources, got 1"):  # one source and the target
        sx_pid(dit.Distribution(["00", "11"], [0.5, 0.5]))
    dist = dit.Distribution(["000", "011"], [0.5, 0.5])
    with pytest.raises(ValueError, match="target 'Z' not found"):
        sx_pid(dist, target="Z")
    with pytest.raises(ValueError, match="both the target and a source"):
        sx_pid(dist, target=2, sources=[0, 2])


def _hand_pmf(columns: list[list[object]]) -> np.ndarray:
    """Relative frequencies, each column's values coded by sorted order."""
    levels = [sorted(set(c)) for c in columns]
    pmf = np.zeros([len(lv) for lv in levels])
    for row in zip(*columns):
        pmf[tuple(lv.index(v) for lv, v in zip(levels, row))] += 1
    return pmf / pmf.sum()


@needs_pandas
def test_dataframe_of_samples_is_its_plugin_pmf() -> None:
    rng = np.random.default_rng(11)
    n = 500
    a = rng.choice(["lo", "mid", "hi"], size=n).tolist()
    b = rng.integers(0, 2, size=n).tolist()
    c = rng.choice([0.5, 1.5, 10.0], size=n).tolist()
    t = [int((x == "hi") ^ y) for x, y in zip(a, b)]
    frame = pd.DataFrame({"a": a, "b": b, "c": c, "t": t})
    by_hand = _hand_pmf([a, b, c, t])
    np.testing.assert_allclose(pmf_from_dataframe(frame), by_hand)
    assert sx_pid(frame).atom_vector() == pytest.approx(sx_pid(by_hand).atom_vector(), abs=TOL)
    # target by name, sources chosen (and ordered); the other column is summed over
    two = _hand_pmf([b, a, t])
    np.testing.assert_allclose(pmf_from_dataframe(frame, target="t", sources=["b", "a"]), two)
    assert sx_pid(frame, target="t", sources=["b", "a"]).atom_vector() == pytest.approx(
        sx_pid(two).atom_vector(), abs=TOL
    )
    # target in the middle: the other columns are the sources, in order
    middle = pd.DataFrame({"x": a, "y": t, "z": b})
    np.testing.assert_allclose(pmf_from_dataframe(middle, target="y"), _hand_pmf([a, b, t]))


@needs_pandas
def test_dataframe_errors() -> None:
    frame = pd.DataFrame({"a": [0, 1, None], "b": [0, 1, 1], "t": [0, 0, 1]})
    with pytest.raises(ValueError, match="column 'a' has 1 missing value"):
        sx_pid(frame)
    with pytest.raises(ValueError, match="no rows"):
        sx_pid(pd.DataFrame({"a": [], "b": [], "t": []}))
    with pytest.raises(ValueError, match="target 'q' not found"):
        sx_pid(frame.dropna(), target="q")


def test_arrays_pass_through_and_reject_variable_names() -> None:
    xor = np.zeros((2, 2, 2))
    xor[0, 0, 0] = xor[0, 1, 1] = xor[1, 0, 1] = xor[1, 1, 0] = 0.25
    assert as_pmf(xor) is xor
    with pytest.raises(ValueError, match="target= and sources= select variables"):
        sx_pid(xor, target=0)


def test_no_optional_library_is_imported_for_arrays() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from infomorphic.pid import sx_pid; "
        "sx_pid(np.full((2, 2, 2), 0.125)); "
        "assert 'pandas' not in sys.modules and 'dit' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
