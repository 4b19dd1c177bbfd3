"""The redundancy lattice: sizes, order, Moebius inversion, names and union coefficients.

Expected values come from the definitions (recomputed here by brute force), from the Dedekind
numbers and from the trivariate order printed in Makkeh, Gutknecht & Wibral (2021) -- never
from the lattice module's own output.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from infomorphic.pid import get_lattice

NS = (2, 3, 4)

#: Dedekind numbers D(n) = number of monotone Boolean functions of n variables (OEIS A000372).
DEDEKIND = {0: 2, 1: 3, 2: 6, 3: 20, 4: 168}

#: The trivariate atom order of the paper's goal vectors (1 = F, 2 = C, 3 = L).
PAPER_ORDER_3 = (
    "{1}{2}{3}", "{1}{2}", "{1}{3}", "{2}{3}", "{1}{23}", "{2}{13}", "{3}{12}", "{1}", "{2}", "{3}",
    "{12}{13}{23}", "{12}{13}", "{12}{23}", "{13}{23}", "{12}", "{13}", "{23}", "{123}",
)  # fmt: skip
LETTER_ORDER_3 = (
    "{F}{C}{L}", "{F}{C}", "{F}{L}", "{C}{L}", "{F}{CL}", "{C}{FL}", "{L}{FC}", "{F}", "{C}", "{L}",
    "{FC}{FL}{CL}", "{FC}{FL}", "{FC}{CL}", "{FL}{CL}", "{FC}", "{FL}", "{CL}", "{FCL}",
)  # fmt: skip


def paper_antichain(name: str) -> tuple[tuple[int, ...], ...]:
    """``"{1}{23}"`` (1-based digits, paper notation) -> ``((0,), (1, 2))``, written independently."""
    members = [tuple(sorted(int(c) - 1 for c in part)) for part in name.strip("{}").split("}{")]
    return tuple(sorted(members, key=lambda m: (len(m), m)))


def is_below(beta, alpha) -> bool:
    """The lattice order from its definition: every member of alpha contains a member of beta."""
    return all(any(set(b) <= set(a) for b in beta) for a in alpha)


def brute_force_antichains(n: int) -> set[frozenset[frozenset[int]]]:
    """All non-empty antichains of non-empty subsets of range(n), by enumeration."""
    subsets = [frozenset(c) for k in range(1, n + 1) for c in itertools.combinations(range(n), k)]
    found = set()
    for r in range(1, math.comb(n, n // 2) + 1):  # Sperner: no antichain is larger
        for group in itertools.combinations(subsets, r):
            if not any(a < b or b < a for a, b in itertools.combinations(group, 2)):
                found.add(frozenset(group))
    return found


def count_monotone_boolean_functions(n: int) -> int:
    """D(n) by brute force over all 2**(2**n) truth tables."""
    n_inputs = 1 << n
    tables = np.arange(1 << n_inputs, dtype=np.int64)
    bits = (tables[:, None] >> np.arange(n_inputs)) & 1
    monotone = np.ones(tables.size, dtype=bool)
    for x in range(n_inputs):
        for i in range(n):
            if not x >> i & 1:
                monotone &= bits[:, x] <= bits[:, x | 1 << i]
    return int(monotone.sum())


# --------------------------------------------------------------------------- size and contents
@pytest.mark.parametrize("n, expected", [(2, 4), (3, 18), (4, 166)])
def test_get_lattice_counts(n, expected):
    lat = get_lattice(n)
    assert len(lat) == expected == len(lat.antichains) == len(set(lat.antichains))
    assert lat.zeta.shape == lat.moebius.shape == (expected, expected)
    assert lat.union_coeffs.shape == (expected, 2**n - 1)


@pytest.mark.parametrize("n", NS)
def test_get_lattice_counts_equal_dedekind_minus_two(n):
    # D(n) counts antichains including the empty one and {emptyset}; the PID lattice has neither.
    assert count_monotone_boolean_functions(n) == DEDEKIND[n]
    assert len(get_lattice(n)) == DEDEKIND[n] - 2


@pytest.mark.parametrize("n", NS)
def test_get_lattice_antichains_match_brute_force(n):
    lat = get_lattice(n)
    ours = {frozenset(frozenset(m) for m in a) for a in lat.antichains}
    assert ours == brute_force_antichains(n)
    for a in lat.antichains:  # canonical tuple form: sorted members, sorted by (size, indices)
        assert all(list(m) == sorted(m) for m in a)
        assert list(a) == sorted(a, key=lambda m: (len(m), m))
    assert lat.subsets == tuple(c for k in range(1, n + 1) for c in itertools.combinations(range(n), k))
    assert lat.top == (tuple(range(n)),)


@pytest.mark.parametrize("n", [0, 1, 5, 6])
def test_get_lattice_rejects_unsupported_sizes(n):
    with pytest.raises(ValueError, match="between 2 and 4 sources"):
        get_lattice(n)


def test_get_lattice_is_cached():
    assert get_lattice(3) is get_lattice(3)


# ------------------------------------------------------------------------------- the order
@pytest.mark.parametrize("n", NS)
def test_zeta_matches_definition(n):
    lat = get_lattice(n)
    expected = np.array([[is_below(b, a) for b in lat.antichains] for a in lat.antichains], dtype=int)
    np.testing.assert_array_equal(lat.zeta, expected)


@pytest.mark.parametrize("n", NS)
def test_zeta_is_partial_order(n):
    z = get_lattice(n).zeta.astype(bool)
    assert z.diagonal().all(), "reflexive"
    assert not (z & z.T & ~np.eye(len(z), dtype=bool)).any(), "antisymmetric"
    two_step = (z.astype(int) @ z.astype(int)) > 0
    assert not (two_step & ~z).any(), "transitive"


@pytest.mark.parametrize("n", NS)
def test_zeta_has_unique_bottom_and_top(n):
    lat = get_lattice(n)
    bottom = tuple((i,) for i in range(n))
    assert lat.zeta[:, lat.index(bottom)].all()  # below everything
    assert lat.zeta[lat.index(lat.top)].all()  # above everything


@pytest.mark.parametrize("n", [2, 3])
def test_canonical_order_is_linear_extension(n):
    # Holds for the published 2- and 3-source orders (not claimed, and not true, for n = 4).
    z = get_lattice(n).zeta
    np.testing.assert_array_equal(z, np.tril(z))


@pytest.mark.parametrize("n", NS)
def test_moebius_inverts_zeta(n):
    lat = get_lattice(n)
    eye = np.eye(len(lat), dtype=np.int64)
    np.testing.assert_array_equal(lat.moebius @ lat.zeta, eye)
    np.testing.assert_array_equal(lat.zeta @ lat.moebius, eye)
    assert lat.moebius.dtype.kind == "i"


def test_moebius_bivariate_closed_form():
    # atoms from redundancies: unq_i = I_i - red, syn = I_12 - I_1 - I_2 + red.
    lat = get_lattice(2)
    red, i1, i2, i12 = 0.1, 0.5, 0.3, 0.9
    reds = np.zeros(4)
    for key, value in {((0,), (1,)): red, ((0,),): i1, ((1,),): i2, ((0, 1),): i12}.items():
        reds[lat.index(key)] = value
    atoms = lat.moebius @ reds
    assert atoms[lat.index(((0,),))] == pytest.approx(i1 - red)
    assert atoms[lat.index(((1,),))] == pytest.approx(i2 - red)
    assert atoms[lat.index(((0,), (1,)))] == pytest.approx(red)
    assert atoms[lat.index(((0, 1),))] == pytest.approx(i12 - i1 - i2 + red)


def test_lattice_arrays_are_read_only():
    lat = get_lattice(2)
    for arr in (lat.zeta, lat.moebius, lat.union_coeffs):
        with pytest.raises(ValueError):
            arr[0, 0] = 7


# -------------------------------------------------------------------------- canonical order
def test_canonical_order_trivariate_matches_paper():
    lat = get_lattice(3)
    assert lat.antichains == tuple(paper_antichain(s) for s in PAPER_ORDER_3)
    assert lat.names(["F", "C", "L"]) == LETTER_ORDER_3
    assert lat.names() == LETTER_ORDER_3  # default letters F, C, L


def test_canonical_order_bivariate():
    lat = get_lattice(2)
    assert lat.antichains == (((0,), (1,)), ((0,),), ((1,),), ((0, 1),))
    assert lat.names() == ("{F}{C}", "{F}", "{C}", "{FC}")


# ------------------------------------------------------------------------------ names/parse
LABELS = {
    "default": None,
    "digits": ["1", "2", "3", "4"],
    "multi": ["ff", "ctx", "lat", "m4"],
    "mixed": ["F", "ctx", "L", "mm"],
}


@pytest.mark.parametrize("labels", list(LABELS), ids=list(LABELS))
@pytest.mark.parametrize("n", NS)
def test_name_parse_round_trip(n, labels):
    lat = get_lattice(n)
    letters = None if LABELS[labels] is None else LABELS[labels][:n]
    names = lat.names(letters)
    assert len(set(names)) == len(names)
    for k, a in enumerate(lat.antichains):
        name = lat.name(a, letters)
        assert lat.parse(name, letters) == a
        assert lat.index(name, letters) == k
        assert lat.index(a) == k


def test_name_multi_character_labels_are_comma_joined():
    lat = get_lattice(3)
    labels = ["ff", "ctx", "lat"]
    assert lat.name(((0,), (1, 2)), labels) == "{ff}{ctx,lat}"
    assert lat.parse("{ff}{ctx,lat}", labels) == ((0,), (1, 2))
    assert lat.parse("{lat,ctx}{ff}", labels) == ((0,), (1, 2))  # order inside is free


def test_name_normalises_member_order():
    lat = get_lattice(3)
    assert lat.name([[2, 1], [0]]) == "{F}{CL}"
    assert lat.parse("{CL}{F}") == lat.parse("{F}{LC}") == ((0,), (1, 2))
    assert lat.parse(" {F} {C} ") == ((0,), (1,))  # spaces are ignored


@pytest.mark.parametrize(
    "name, match",
    [
        ("{X}", "not a set of sources"),
        ("{F}{X}", "not a set of sources"),
        ("{F}{FC}", "not an antichain"),
        ("{F}{F C}", "not an antichain"),
        ("{FCL}{F}", "not an antichain"),
        ("{F}{F}", "same set of sources twice"),
        ("F", "must look like"),
        ("", "must look like"),
        ("{F}{C", "must look like"),
        ("{}", "not a set of sources"),
        ("{F}{}", "not a set of sources"),
        ("{F}}{C}", "not a set of sources"),
        ("{M}", "not a set of sources"),  # a fourth letter in a 3-source lattice
    ],
)
def test_parse_rejects_bad_names(name, match):
    with pytest.raises(ValueError, match=match):
        get_lattice(3).parse(name)


def test_parse_rejects_repeated_label_in_member():
    with pytest.raises(ValueError):
        get_lattice(2).parse("{FF}")


@pytest.mark.parametrize(
    "letters, match",
    [(["F", "C"], "need 3 source labels"), (["F", "F", "C"], "distinct"), (["F", "", "C"], "non-empty"),
     (["F", "{C}", "L"], "free of"), (["F", "C,L", "M"], "free of")],
)  # fmt: skip
def test_letters_rejects_bad_labels(letters, match):
    with pytest.raises(ValueError, match=match):
        get_lattice(3).name(((0,),), letters)


def test_index_rejects_non_antichain():
    lat = get_lattice(3)
    with pytest.raises(ValueError, match="not an antichain"):
        lat.index(((0,), (0, 1)))
    with pytest.raises(ValueError, match="not an antichain"):
        lat.index(((3,),))


# -------------------------------------------------------------------------- union coefficients
@pytest.mark.parametrize("n, shape", [(2, (3, 2)), (3, (2, 3, 2)), (4, (2, 2, 3, 2))])
def test_union_coeffs_reproduce_brute_force_union_probabilities(n, shape):
    """P(union_j {S_aj = s_aj}) from boolean masks over all cells vs. the inclusion-exclusion sum."""
    lat = get_lattice(n)
    rng = np.random.default_rng(7 + n)
    p = rng.dirichlet(np.ones(int(np.prod(shape)))).reshape(shape)
    p[(0,) * n] = 0.0  # a zero cell
    p /= p.sum()
    grid = np.indices(shape)  # grid[i] = value of source i in each cell

    def prob(event_mask: np.ndarray) -> float:
        return float(p[event_mask].sum())

    for s in itertools.product(*(range(k) for k in shape)):
        match = [grid[i] == s[i] for i in range(n)]
        subset_probs = np.array([prob(np.logical_and.reduce([match[i] for i in u])) for u in lat.subsets])
        for k, alpha in enumerate(lat.antichains):
            union = np.logical_or.reduce([np.logical_and.reduce([match[i] for i in m]) for m in alpha])
            assert lat.union_coeffs[k] @ subset_probs == pytest.approx(prob(union), abs=1e-14), (s, alpha)


@pytest.mark.parametrize("n", NS)
def test_union_coeffs_single_member_is_indicator(n):
    lat = get_lattice(n)
    for k, alpha in enumerate(lat.antichains):
        if len(alpha) == 1:
            expected = np.zeros(len(lat.subsets), dtype=int)
            expected[lat.subsets.index(alpha[0])] = 1
            np.testing.assert_array_equal(lat.union_coeffs[k], expected)
