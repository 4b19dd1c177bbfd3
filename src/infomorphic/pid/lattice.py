"""The redundancy lattice of partial information decomposition (PID).

Williams & Beer (2010); the ordering and naming follow Makkeh, Gutknecht & Wibral,
Phys. Rev. E 103, 032149 (2021).

An *antichain* is a set of non-empty source subsets ("members"), none contained in
another.  It is written as a tuple of tuples of 0-based source indices, e.g.
``((0,), (1,))`` for the redundancy of sources 0 and 1 and ``((0, 1),)`` for their
synergy.  The order is: ``beta <= alpha`` iff every member of ``alpha`` contains some
member of ``beta``.  A redundancy function on the lattice is the cumulative sum of the
atoms below it, ``I(alpha) = sum_{beta <= alpha} Pi(beta)``; the atoms follow by
Moebius inversion.

Everything here is generated in code at first use and cached per number of sources.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

__all__ = [
    "Antichain",
    "Lattice",
    "get_lattice",
    "MIN_SOURCES",
    "MAX_SOURCES",
    "DEFAULT_LETTERS",
]

Antichain = tuple[tuple[int, ...], ...]
MIN_SOURCES = 2
MAX_SOURCES = 4
DEFAULT_LETTERS = "FCLM"


def _sort_key(antichain: Antichain) -> tuple[object, ...]:
    """Canonical order: smallest member size, then more members first, then total size.

    For three sources this reproduces the order used by the papers' goal vectors:
    {1}{2}{3}, {1}{2}, {1}{3}, {2}{3}, {1}{23}, ..., {1}, {2}, {3}, {12}{13}{23}, ..., {123}.
    """
    sizes = [len(a) for a in antichain]
    return (min(sizes), -len(antichain), sum(sizes), antichain)


def _member_key(member: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    return (len(member), member)


def _is_antichain(members: Sequence[frozenset[int]]) -> bool:
    return not any(a < b or b < a for a, b in itertools.combinations(members, 2))


def _normalise(antichain: Sequence[Iterable[int]]) -> Antichain:
    return tuple(sorted((tuple(sorted(set(m))) for m in antichain), key=_member_key))


@dataclass(frozen=True, eq=False)
class Lattice:
    """The redundancy lattice for ``n_sources`` sources (4, 18 or 166 antichains for 2, 3, 4).

    Use :func:`get_lattice` rather than the constructor: it caches one instance per ``n``.

    Attributes
    ----------
    n_sources:
        Number of sources.
    antichains:
        All antichains in canonical order (the atom axis of every array in this package).
    subsets:
        All non-empty source subsets, as sorted index tuples, ordered by size then lexically.
    zeta:
        ``(n_atoms, n_atoms)`` int matrix, ``zeta[a, b] = 1`` iff ``antichains[b] <= antichains[a]``;
        redundancies = ``zeta @ atoms``.
    moebius:
        Integer inverse of ``zeta``; atoms = ``moebius @ redundancies``.
    union_coeffs:
        ``(n_atoms, n_subsets)`` int matrix of inclusion-exclusion coefficients:
        ``P(union_j {S_aj = s_aj}) = sum_U union_coeffs[alpha, U] * P(S_U = s_U)``.
    union_index:
        ``(n_atoms,)`` int: position in :attr:`subsets` of the sources each antichain involves.
    """

    n_sources: int
    antichains: tuple[Antichain, ...] = field(init=False)
    subsets: tuple[tuple[int, ...], ...] = field(init=False)
    zeta: np.ndarray = field(init=False, repr=False)
    moebius: np.ndarray = field(init=False, repr=False)
    union_coeffs: np.ndarray = field(init=False, repr=False)
    union_index: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = self.n_sources
        if not MIN_SOURCES <= n <= MAX_SOURCES:
            raise ValueError(f"the lattice needs between {MIN_SOURCES} and {MAX_SOURCES} sources, got {n}")
        subsets = [tuple(c) for k in range(1, n + 1) for c in itertools.combinations(range(n), k)]
        sets = [frozenset(s) for s in subsets]
        chains: list[Antichain] = []
        for mask in range(1, 1 << len(subsets)):
            members = [sets[i] for i in range(len(subsets)) if mask >> i & 1]
            if _is_antichain(members):
                chains.append(_normalise(members))
        chains.sort(key=_sort_key)
        m = len(chains)
        zeta = np.zeros((m, m), dtype=np.int64)
        for i, alpha in enumerate(chains):
            for j, beta in enumerate(chains):
                if all(any(set(b) <= set(a) for b in beta) for a in alpha):
                    zeta[i, j] = 1
        moebius = np.rint(np.linalg.inv(zeta.astype(np.float64))).astype(np.int64)
        if not np.array_equal(moebius @ zeta, np.eye(m, dtype=np.int64)):
            raise RuntimeError("Moebius inversion of the redundancy lattice failed")  # pragma: no cover
        index = {s: i for i, s in enumerate(subsets)}
        coeffs = np.zeros((m, len(subsets)), dtype=np.int64)
        for i, alpha in enumerate(chains):
            for k in range(1, len(alpha) + 1):
                for group in itertools.combinations(alpha, k):
                    union = tuple(sorted(set().union(*group)))
                    coeffs[i, index[union]] += (-1) ** (k + 1)
        unions = np.array([index[tuple(sorted(set().union(*a)))] for a in chains], dtype=np.int64)
        for name, value in (
            ("union_index", unions),
            ("antichains", tuple(chains)),
            ("subsets", tuple(subsets)),
            ("zeta", zeta),
            ("moebius", moebius),
            ("union_coeffs", coeffs),
        ):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return len(self.antichains)

    def index(self, antichain: Sequence[Sequence[int]] | str, letters: Sequence[str] | None = None) -> int:
        """Position of an antichain (tuple form or readable name) on the atom axis."""
        key = self.parse(antichain, letters) if isinstance(antichain, str) else _normalise(antichain)
        try:
            return self._positions()[key]
        except KeyError:
            raise ValueError(f"{antichain!r} is not an antichain of {self.n_sources} sources") from None

    def _positions(self) -> dict[Antichain, int]:
        return _positions(self.n_sources)

    @property
    def top(self) -> Antichain:
        """The antichain of all sources jointly, ``((0, ..., n-1),)``: its redundancy is I(T : S)."""
        return (tuple(range(self.n_sources)),)

    def source_union(self, antichain: Antichain) -> tuple[int, ...]:
        """The sources an antichain involves."""
        return tuple(sorted(set().union(*antichain)))

    # ------------------------------------------------------------------- names
    def letters(self, letters: Sequence[str] | None = None) -> tuple[str, ...]:
        """Validated source labels (default ``F, C, L, M``)."""
        labels = tuple(letters) if letters is not None else tuple(DEFAULT_LETTERS[: self.n_sources])
        if len(labels) != self.n_sources:
            raise ValueError(f"need {self.n_sources} source labels, got {len(labels)}: {list(labels)}")
        if len(set(labels)) != len(labels) or any(not s or any(c in s for c in "{},") for s in labels):
            raise ValueError(
                f"source labels must be distinct, non-empty and free of '{{', '}}' and ',': {list(labels)}"
            )
        return labels

    def name(self, antichain: Sequence[Sequence[int]], letters: Sequence[str] | None = None) -> str:
        """Readable name, e.g. ``{F}{C}`` or ``{FC}{FL}``; multi-character labels are comma-joined."""
        labels = self.letters(letters)
        sep = "" if all(len(s) == 1 for s in labels) else ","
        return "".join("{" + sep.join(labels[i] for i in member) + "}" for member in _normalise(antichain))

    def names(self, letters: Sequence[str] | None = None) -> tuple[str, ...]:
        """Readable names of all antichains in canonical order."""
        return tuple(self.name(a, letters) for a in self.antichains)

    def parse(self, name: str, letters: Sequence[str] | None = None) -> Antichain:
        """Inverse of :meth:`name`: ``"{F}{CL}"`` -> ``((0,), (1, 2))``.  Order inside is free."""
        labels = self.letters(letters)
        text = name.replace(" ", "")
        if not text.startswith("{") or not text.endswith("}"):
            raise ValueError(f"atom name {name!r} must look like {self.name(self.antichains[0], labels)}")
        members: list[tuple[int, ...]] = []
        single = all(len(s) == 1 for s in labels)
        for part in text[1:-1].split("}{"):
            tokens = list(part) if single and "," not in part else part.split(",")
            if not part or any(t not in labels for t in tokens):
                raise ValueError(f"atom name {name!r}: {part!r} is not a set of sources from {list(labels)}")
            if len(set(tokens)) != len(tokens):
                raise ValueError(f"atom name {name!r}: source repeated inside {{{part}}}")
            members.append(tuple(labels.index(t) for t in tokens))
        if len(set(map(frozenset, members))) != len(members):
            raise ValueError(f"atom name {name!r} lists the same set of sources twice")
        key = _normalise(members)
        if key not in self._positions():
            raise ValueError(f"atom name {name!r} is not an antichain (a member contains another)")
        return key


@cache
def _positions(n: int) -> dict[Antichain, int]:
    return {a: i for i, a in enumerate(get_lattice(n).antichains)}


@cache
def get_lattice(n_sources: int) -> Lattice:
    """The (cached) redundancy lattice for ``n_sources`` in ``[2, 4]``."""
    return Lattice(n_sources)
