"""Atom names of a goal: source labels, canonical atom names, the papers' vector order.

Atom names are written as in :mod:`infomorphic.pid.lattice` (``"{F}{C}"``, ``"{FC}{FL}"``, ...);
``H_res`` is the reserved name of the residual-entropy term.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence

from ..pid.lattice import Antichain, get_lattice

H_RES = "H_res"
"""Reserved name of the residual-entropy term ``H(Y | all sources)`` in a goal."""

# The papers' order of goal vectors, written with 1-based source numbers (F = 1, C = 2, L = 3):
# bivariate as the goal parameters of Makkeh et al. 2025 (Fig. 1E), trivariate as the atoms of
# Schneider et al. 2025 (Table 2); H_res follows as the last entry.
_PAPER_ORDER: Mapping[int, tuple[str, ...]] = {
    2: ("{1}", "{2}", "{1}{2}", "{12}"),
    3: (
        "{1}{2}{3}", "{1}{2}", "{1}{3}", "{2}{3}", "{1}{23}", "{2}{13}", "{3}{12}",
        "{1}", "{2}", "{3}", "{12}{13}{23}", "{12}{13}", "{12}{23}", "{13}{23}",
        "{12}", "{13}", "{23}", "{123}",
    ),
}  # fmt: skip


def _labels(sources: Sequence[str]) -> tuple[str, ...]:
    """Validated source labels; a string is split into single letters."""
    labels = tuple(sources)
    if not all(isinstance(s, str) for s in labels):
        raise ValueError(f"source labels must be strings, got {list(labels)!r}")
    if not 2 <= len(labels) <= 4:
        raise ValueError(f"a goal needs 2 to 4 sources, got {len(labels)}: {list(labels)}")
    return get_lattice(len(labels)).letters(labels)


def _member_name(member: Iterable[int], labels: tuple[str, ...]) -> str:
    sep = "" if all(len(s) == 1 for s in labels) else ","
    return "{" + sep.join(labels[i] for i in member) + "}"


def _atom_key(name: str, labels: tuple[str, ...]) -> Antichain:
    """Parse an atom name into its antichain; ``ValueError`` carries a short reason only."""
    text = "".join(name.split())
    if not re.fullmatch(r"(\{[^{}]*\})+", text):
        example = "{" + labels[0] + "}{" + labels[1] + "}"
        raise ValueError(f"an atom name is a sequence of {{...}} groups such as {example}")
    single = all(len(s) == 1 for s in labels)
    members: list[frozenset[int]] = []
    for part in re.findall(r"\{([^{}]*)\}", text):
        if not part:
            raise ValueError("it contains an empty group {}")
        tokens = list(part) if single and "," not in part else part.split(",")
        unknown = [t for t in tokens if t not in labels]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a source (sources: {', '.join(labels)})")
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"the group {{{part}}} names a source twice")
        members.append(frozenset(labels.index(t) for t in tokens))
    for a, b in itertools.combinations(members, 2):
        if a == b:
            raise ValueError(f"the group {_member_name(sorted(a), labels)} appears twice")
        if a < b or b < a:
            small, big = (a, b) if a < b else (b, a)
            raise ValueError(
                f"it is not an antichain: {_member_name(sorted(small), labels)} is contained in "
                f"{_member_name(sorted(big), labels)}"
            )
    return tuple(sorted((tuple(sorted(m)) for m in members), key=lambda m: (len(m), m)))


def _canonical(name: str, labels: tuple[str, ...]) -> str:
    """Canonical name of an atom or ``H_res``; ``ValueError`` with a reason otherwise."""
    if name == H_RES:
        return H_RES
    if not name.lstrip().startswith("{"):
        raise ValueError(f"{name!r} is neither an atom name nor {H_RES!r}")
    lat = get_lattice(len(labels))
    key = _atom_key(name, labels)
    return lat.name(lat.antichains[lat.index(key)], labels)


def _valid_names(labels: tuple[str, ...]) -> str:
    names = get_lattice(len(labels)).names(labels)
    return f"valid names for sources {', '.join(labels)}: {', '.join(names)}, {H_RES}"


def paper_order(sources: Sequence[str] = "FCL") -> tuple[str, ...]:
    """Atom names in the order of the papers' goal vectors (without the final ``H_res``).

    Bivariate: ``{F}, {C}, {F}{C}, {FC}`` (unique F, unique C, redundancy, synergy), which
    differs from the lattice's canonical order.  Trivariate: the canonical 18 atoms.  Four
    sources have no published order; the canonical one is used.
    """
    labels = _labels(sources)
    lat = get_lattice(len(labels))
    if len(labels) not in _PAPER_ORDER:
        return lat.names(labels)
    digits = tuple(str(i + 1) for i in range(len(labels)))
    return tuple(lat.name(lat.antichains[lat.index(n, digits)], labels) for n in _PAPER_ORDER[len(labels)])
