"""Plain-language meanings of PID atoms (and ``H_res``) for any source labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..pid.lattice import DEFAULT_LETTERS, get_lattice
from .atoms import H_RES, _atom_key, _canonical, _labels, _member_name, _valid_names

_ROLES: Mapping[str, str] = {"F": "feedforward", "C": "context", "L": "lateral", "B": "feedback"}
_NUMBER_WORDS: Mapping[int, str] = {2: "two", 3: "three", 4: "four"}


def _join_and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def atom_meaning(atom: str, sources: Sequence[str] = "FCL") -> str:
    """Plain-language meaning of an atom (or ``H_res``) for the given sources.

    The wording follows Schneider et al. 2025, Table 2 (arXiv:2412.02482): each phrase completes
    "information about the output Y that is ...".  Bivariate atoms get the names of the
    bivariate papers (unique, redundancy, synergy).

    Raises
    ------
    ValueError
        If ``atom`` is not an atom name for these sources nor ``H_res``.
    """
    labels = _labels(sources)
    n = len(labels)
    try:
        name = _canonical(atom, labels)
    except ValueError as err:
        raise ValueError(f"unknown atom name {atom!r}: {err}; {_valid_names(labels)}") from None
    if name == H_RES:
        return f"not about the inputs at all: the neuron's own randomness, H(Y | {', '.join(labels)})"
    key = _atom_key(name, labels)

    def who(i: int) -> str:
        return f"the {_ROLES[labels[i]]} input {labels[i]}" if labels[i] in _ROLES else labels[i]

    def group(member: tuple[int, ...]) -> str:
        return _member_name(member, labels).strip("{}")

    if n == 2:
        a, b = labels
        if key == ((0,), (1,)):
            return f"redundancy: available from {a} alone and equally from {b} alone"
        if key == ((0, 1),):
            return f"synergy: available only from {a} and {b} taken together"
        i = key[0][0]
        return f"unique information of {who(i)}: available from {labels[i]} alone, not from {labels[1 - i]}"
    singles = [labels[m[0]] for m in key if len(m) == 1]
    groups = [m for m in key if len(m) > 1]
    if len(key) == 1:
        member = key[0]
        if len(member) == 1:
            return f"available only from {who(member[0])} (unique information)"
        parts = _join_and([labels[i] for i in member])
        if len(member) == n:
            return f"available only from {parts} together (full synergy)"
        kind = "pair" if len(member) == 2 else "group"
        return f"available only from {parts} taken jointly (synergy of the {kind})"
    if not groups:
        if len(singles) == n:
            return f"available from each of {_join_and(singles)} alone (redundant in all {_NUMBER_WORDS[n]})"
        others = [s for s in labels if s not in singles]
        tail = f" (and not from {others[0]} alone)" if len(others) == 1 else ""
        word = "either" if len(singles) == 2 else "each"
        return f"available from {word} of {_join_and(singles)} alone{tail}"
    if not singles:
        kind = "pairs" if all(len(m) == 2 for m in groups) else "groups"
        names = _join_and([group(m) for m in groups])
        if len(groups) == 2:
            return f"available from either of the {kind} {names} taken jointly"
        count = _NUMBER_WORDS.get(len(groups), str(len(groups)))
        return f"available from any of the {count} {kind} {names} taken jointly"
    pieces = [f"{s} alone" for s in singles]
    pieces += [f"{_join_and([labels[i] for i in m])} taken together" for m in groups]
    return "available from " + " and also from ".join(pieces)


ATOM_MEANINGS: Mapping[int, Mapping[str, str]] = {
    n: {name: atom_meaning(name, DEFAULT_LETTERS[:n]) for name in (*get_lattice(n).names(), H_RES)}
    for n in (2, 3)
}
"""``ATOM_MEANINGS[n_sources][name]``: meaning of each atom (and ``H_res``) with the default
letters (F, C for two sources; F, C, L for three), keyed by canonical name.  The same name means
different atoms for 2 and 3 sources (``{F}`` is unique with respect to C only, or to C and L),
hence the outer key.  Built at import, never mutated; :func:`atom_meaning` covers other labels."""
