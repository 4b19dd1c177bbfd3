"""Local goals of infomorphic neurons: weighted sums of PID atoms, in bits.

Each neuron maximises its own goal

    G = sum_alpha gamma_alpha * Pi_alpha + gamma_res * H_res

over the partial information decomposition (I^sx) of its output Y with its input classes as
sources, where ``H_res = H(Y | sources)``.  A goal is always *maximised*; only the training loop
turns it into a loss (``loss = -G``).

References: Makkeh et al., "A general framework for interpretable neural learning based on local
information-theoretic goal functions" (bivariate neurons; seeds/001) and Schneider et al.,
"What should a neuron aim for? Designing local objective functions based on information
theory", ICLR 2025 (trivariate neurons, optimised goals; seeds/003).

Goals are keyed by atom *name* (``"{F}{C}"``, ``"{FC}{FL}"``, ...; see
:mod:`infomorphic.pid.lattice`) plus the reserved name ``H_res``.  Ways to build one:

- ``Goal(("F", "C", "L"), {"{F}{C}": 1.0})`` or :meth:`Goal.from_dict` (configs);
- :meth:`Goal.parse` of a readable expression, ``"0.33*{F}{C}{L} + {F}{C} - {F}{L}"``;
- :meth:`Goal.from_vector` of a raw vector in the papers' order;
- :meth:`Goal.preset` / :data:`PRESETS` for the published goals;
- :meth:`Goal.resolve`, which accepts any of the three textual forms.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor

from .pid.lattice import DEFAULT_LETTERS, Antichain, Lattice, get_lattice

__all__ = [
    "Goal",
    "Preset",
    "PRESETS",
    "ATOM_MEANINGS",
    "H_RES",
    "atom_meaning",
    "paper_order",
]

H_RES = "H_res"
"""Reserved name of the residual-entropy term ``H(Y | all sources)`` in a goal."""

# The papers' order of goal vectors, written with 1-based source numbers exactly as in
# SPEC.md section 3 (F = 1, C = 2, L = 3); H_res follows as the last entry.
_PAPER_ORDER: Mapping[int, tuple[str, ...]] = {
    2: ("{1}", "{2}", "{1}{2}", "{12}"),
    3: (
        "{1}{2}{3}", "{1}{2}", "{1}{3}", "{2}{3}", "{1}{23}", "{2}{13}", "{3}{12}",
        "{1}", "{2}", "{3}", "{12}{13}{23}", "{12}{13}", "{12}{23}", "{13}{23}",
        "{12}", "{13}", "{23}", "{123}",
    ),
}  # fmt: skip

_ROLES: Mapping[str, str] = {"F": "feedforward", "C": "context", "L": "lateral"}
_NUMBER_WORDS: Mapping[int, str] = {2: "two", 3: "three", 4: "four"}


# --------------------------------------------------------------------------- atom names
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


def _as_gamma(key: str, value: object) -> float:
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"gamma for {key!r} must be a finite number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"gamma for {key!r} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"gamma for {key!r} must be a finite number, got {value!r}")
    return number


# --------------------------------------------------------------------------- expressions
class _Token(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TOKEN_RE = re.compile(
    rf"(?P<ws>\s+)|(?P<num>{_NUM})|(?P<atom>(?:\{{[^{{}}]*\}})+)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<sign>[+\-\u2212])|(?P<star>\*)"
)
_PRESET_LIKE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")


def _number_list(text: str) -> list[float] | None:
    """``[-0.2, 0.1, ...]``, ``-0.2 0.1 ...`` or ``-0.2,0.1,...`` as floats; ``None`` if not numbers."""
    body = text.strip()
    if len(body) >= 2 and (body[0], body[-1]) in (("[", "]"), ("(", ")")):
        body = body[1:-1]
    tokens = [t for t in re.split(r"[\s,]+", body.replace("\u2212", "-")) if t]
    if not tokens:
        return None
    try:
        return [float(t) for t in tokens]
    except ValueError:
        return None


def _expression_error(
    expression: str, start: int, end: int, message: str, hint: str = "", detail: str = ""
) -> ValueError:
    """A ``ValueError`` quoting the expression with a ``^^^`` marker under ``[start, end)``.

    The text reads ``<message> at column <start + 1> [(<detail>)]``, the expression, the
    marker line and an optional ``hint`` line.
    """
    shown = re.sub(r"\s", " ", expression)
    marker = " " * start + "^" * max(1, end - start)
    where = f" at column {start + 1}" + (f" ({detail})" if detail else "")
    text = f"{message}{where} of the goal expression:\n    {shown}\n    {marker}"
    return ValueError(text + (f"\n{hint}" if hint else ""))


def _tokenize(expression: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(expression):
        match = _TOKEN_RE.match(expression, pos)
        if match is None:
            char = expression[pos]
            what = {"{": "unbalanced '{'", "}": "unbalanced '}'"}.get(char, f"unexpected character {char!r}")
            raise _expression_error(
                expression, pos, pos + 1, what,
                "terms look like 0.5*{F}{C}, -{FC} or 0.1*H_res, joined by + or -",
            )  # fmt: skip
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), match.start(), match.end()))
        pos = match.end()
    return tokens


def _parse_terms(expression: str, labels: tuple[str, ...]) -> dict[str, float]:
    """Parse ``expression`` into canonical name -> summed coefficient (zeros kept)."""
    tokens = _tokenize(expression)
    if not tokens:
        raise ValueError(
            f"empty goal expression {expression!r}: give terms such as "
            f"'{{{labels[0]}}}{{{labels[1]}}} - 0.5*{{{labels[0]}}} + 0.1*{H_RES}'"
        )
    sums: dict[str, float] = {}
    i = 0
    while i < len(tokens):
        start = tokens[i].start
        sign = 1.0
        if tokens[i].kind == "sign":
            sign = 1.0 if tokens[i].text == "+" else -1.0
            i += 1
        elif sums:
            tok = tokens[i]
            raise _expression_error(
                expression, tok.start, tok.end, f"expected '+' or '-' before {tok.text!r}"
            )
        coefficient = 1.0
        if i < len(tokens) and tokens[i].kind == "num":
            coefficient = float(tokens[i].text)
            if not math.isfinite(coefficient):
                tok = tokens[i]
                raise _expression_error(
                    expression, tok.start, tok.end, f"coefficient {tok.text!r} is not finite"
                )
            i += 1
            if i < len(tokens) and tokens[i].kind == "star":
                i += 1
        elif i < len(tokens) and tokens[i].kind == "star":
            tok = tokens[i]
            raise _expression_error(expression, tok.start, tok.end, "'*' without a coefficient before it")
        if i >= len(tokens):
            end = tokens[-1].end
            raise _expression_error(
                expression, start, end,
                f"incomplete term {expression[start:end]!r}: expected an atom name such as "
                f"{{{labels[0]}}}{{{labels[1]}}} or {H_RES}",
            )  # fmt: skip
        tok = tokens[i]
        if tok.kind == "atom":
            try:
                name = _canonical(tok.text, labels)
            except ValueError as err:
                raise _expression_error(
                    expression, tok.start, tok.end, f"unknown atom {tok.text!r}",
                    hint=_valid_names(labels), detail=str(err),
                ) from None  # fmt: skip
        elif tok.kind == "name":
            if tok.text != H_RES:
                raise _expression_error(
                    expression, tok.start, tok.end, f"unknown name {tok.text!r}",
                    f"{_valid_names(labels)}; preset names are accepted by Goal.resolve, not Goal.parse",
                )  # fmt: skip
            name = H_RES
        else:
            raise _expression_error(
                expression, tok.start, tok.end,
                f"expected an atom name such as {{{labels[0]}}}{{{labels[1]}}} or {H_RES}, got {tok.text!r}",
            )  # fmt: skip
        sums[name] = sums.get(name, 0.0) + sign * coefficient
        i += 1
    return sums


def _format_number(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (``repr`` of a float)."""
    return repr(float(value))


# --------------------------------------------------------------------------- meanings
def _join_and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def atom_meaning(atom: str, sources: Sequence[str] = "FCL") -> str:
    """Plain-language meaning of an atom (or ``H_res``) for the given sources.

    The wording follows Schneider et al. 2025, Table 2 (seeds/003): each phrase completes
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


# --------------------------------------------------------------------------- the goal
@dataclass(frozen=True, slots=True, repr=False)
class Goal:
    """A neuron's local goal ``G = sum_alpha gamma_alpha Pi_alpha + gamma_res H_res`` (bits).

    Parameters
    ----------
    sources:
        Source labels in declaration order, e.g. ``("F", "C")`` or ``"FCL"`` (2 to 4 sources).
    gamma:
        Mapping from atom name (any member order, e.g. ``"{CL}{F}"``) or ``"H_res"`` to its
        weight.  Missing names weigh 0.

    Attributes
    ----------
    sources:
        The labels as a tuple.
    gamma:
        Read-only mapping of canonical names to the non-zero weights, in the lattice's
        canonical order with ``H_res`` last.

    Raises
    ------
    ValueError
        For unknown atom names (the message lists the valid ones), two keys naming the same
        atom, or weights that are not finite numbers.

    Examples
    --------
    >>> g = Goal.parse("0.33*{F}{C}{L} + {F}{C} - {F}{L} - {FC}{FL}")
    >>> g.weight("{C}{F}")
    1.0
    """

    sources: tuple[str, ...]
    gamma: Mapping[str, float]

    def __post_init__(self) -> None:
        labels = _labels(self.sources)
        if not isinstance(self.gamma, Mapping):
            raise ValueError(f"gamma must be a mapping of atom names to weights, got {self.gamma!r}")
        lat = get_lattice(len(labels))
        clean: dict[str, float] = {}
        origin: dict[str, str] = {}
        for key, value in self.gamma.items():
            if not isinstance(key, str):
                raise ValueError(f"goal keys must be atom names, got {key!r}; {_valid_names(labels)}")
            try:
                name = _canonical(key, labels)
            except ValueError as err:
                raise ValueError(
                    f"unknown atom name {key!r} in a goal for sources {', '.join(labels)} ({err}); "
                    f"{_valid_names(labels)}"
                ) from None
            if name in origin:
                raise ValueError(f"goal keys {origin[name]!r} and {key!r} name the same atom {name}")
            origin[name] = key
            clean[name] = _as_gamma(key, value)
        order = {name: i for i, name in enumerate((*lat.names(labels), H_RES))}
        ordered = {k: clean[k] for k in sorted(clean, key=order.__getitem__) if clean[k] != 0.0}
        object.__setattr__(self, "sources", labels)
        object.__setattr__(self, "gamma", MappingProxyType(ordered))

    def __hash__(self) -> int:
        return hash((self.sources, tuple(self.gamma.items())))

    def __repr__(self) -> str:
        sources = "".join(self.sources) if all(len(s) == 1 for s in self.sources) else self.sources
        return f"Goal.parse({self.to_expression()!r}, sources={sources!r})"

    # ------------------------------------------------------------------ basics
    @property
    def n_sources(self) -> int:
        """Number of sources (2 to 4)."""
        return len(self.sources)

    @property
    def lattice(self) -> Lattice:
        """The redundancy lattice whose atoms this goal weighs."""
        return get_lattice(len(self.sources))

    @property
    def atom_names(self) -> tuple[str, ...]:
        """All atom names for these sources in the lattice's canonical (tensor) order."""
        return self.lattice.names(self.sources)

    @property
    def gamma_res(self) -> float:
        """Weight of the residual entropy ``H_res``."""
        return self.gamma.get(H_RES, 0.0)

    def weight(self, name: str) -> float:
        """Weight of one atom (any member order) or of ``H_res``; 0 for absent terms.

        Raises
        ------
        ValueError
            If ``name`` is not a valid atom name for these sources nor ``H_res``.
        """
        try:
            canonical = _canonical(name, self.sources)
        except ValueError as err:
            raise ValueError(f"unknown atom name {name!r} ({err}); {_valid_names(self.sources)}") from None
        return self.gamma.get(canonical, 0.0)

    def with_gamma(self, updates: Mapping[str, float]) -> Goal:
        """A copy with some weights replaced (0 removes a term), e.g. for ablations."""
        merged = dict(self.gamma)
        for key, value in updates.items():
            try:
                name = _canonical(key, self.sources)
            except ValueError as err:
                raise ValueError(f"unknown atom name {key!r} ({err}); {_valid_names(self.sources)}") from None
            merged[name] = _as_gamma(key, value)
        return Goal(self.sources, merged)

    def with_sources(self, sources: Sequence[str]) -> Goal:
        """The same weights with the sources renamed position by position.

        ``Goal.preset("bivariate-lateral-optimised").with_sources("FL")`` writes the lateral
        input as ``L`` instead of ``C``.
        """
        labels = _labels(sources)
        if len(labels) != self.n_sources:
            raise ValueError(
                f"cannot rename the {self.n_sources} sources {', '.join(self.sources)} to "
                f"{len(labels)} sources {', '.join(labels)}"
            )
        lat = self.lattice
        renamed = {
            H_RES if k == H_RES else lat.name(lat.parse(k, self.sources), labels): v
            for k, v in self.gamma.items()
        }
        return Goal(labels, renamed)

    # ------------------------------------------------------------ constructors
    @classmethod
    def parse(cls, expression: str, sources: Sequence[str] = "FCL") -> Goal:
        """Build a goal from a readable expression.

        Terms are ``[+|-] [coefficient [*]] name`` where name is an atom such as ``{F}{C}``
        (members in any order) or ``H_res``; the ``*`` is optional, whitespace is free,
        repeated terms add up.  Examples: ``"0.33*{F}{C}{L} + {F}{C} - {F}{L} - {FC}{FL}"``,
        ``"-0.2*{F} + 0.1 {C} + {F}{C} + 0.1*{FC}"`` (with ``sources="FC"``),
        ``"1e-1*H_res"``.

        Raises
        ------
        ValueError
            For a malformed expression; the message quotes it, marks the bad term with
            ``^^^`` and, for an unknown atom, lists the valid names.
        """
        if not isinstance(expression, str):
            raise ValueError(f"a goal expression must be a string, got {expression!r}")
        labels = _labels(sources)
        return cls(labels, _parse_terms(expression, labels))

    @classmethod
    def from_vector(cls, values: Sequence[float] | Tensor, sources: Sequence[str] | None = None) -> Goal:
        """Build a goal from a raw vector in the papers' order (see :func:`paper_order`).

        Bivariate: ``[unq_F, unq_C, red {F}{C}, syn {FC}, H_res]``; trivariate: the 18 atoms
        ``{F}{C}{L}, {F}{C}, ..., {FCL}`` then ``H_res``.  Without the final ``H_res`` entry
        (4 or 18 values) ``gamma_res = 0``.

        Parameters
        ----------
        values:
            The weights, a flat sequence, array or 1-D tensor.
        sources:
            Source labels; ``None`` infers ``FC`` from 4 or 5 values and ``FCL`` from 18 or 19.

        Raises
        ------
        ValueError
            For a length that fits no order, or non-finite values.
        """
        if isinstance(values, str):
            raise ValueError(f"a goal vector must be a sequence of numbers, got the string {values!r}")
        ndim = getattr(values, "ndim", 1)
        if ndim != 1:
            shape = tuple(getattr(values, "shape", ()))
            raise ValueError(f"a goal vector must be one-dimensional, got shape {shape}")
        numbers = list(values)
        if sources is None:
            by_length = {4: "FC", 5: "FC", 18: "FCL", 19: "FCL"}
            if len(numbers) not in by_length:
                raise ValueError(
                    f"a goal vector needs 4 or 5 values (bivariate: {', '.join(paper_order('FC'))}"
                    f"[, {H_RES}]) or 18 or 19 values (trivariate, canonical atom order[, {H_RES}]), "
                    f"got {len(numbers)}"
                )
            sources = by_length[len(numbers)]
        labels = _labels(sources)
        names = paper_order(labels)
        if len(numbers) not in (len(names), len(names) + 1):
            raise ValueError(
                f"a goal vector for sources {', '.join(labels)} needs {len(names)} or {len(names) + 1} "
                f"values ({', '.join(names)}[, {H_RES}]), got {len(numbers)}"
            )
        keys = (*names, H_RES)[: len(numbers)]
        return cls(labels, {k: _as_gamma(k, v) for k, v in zip(keys, numbers)})

    @classmethod
    def from_dict(cls, mapping: Mapping[str, float], sources: Sequence[str] = "FCL") -> Goal:
        """Inverse of :meth:`to_dict`: a mapping of atom names (and ``H_res``) to weights."""
        return cls(tuple(sources), mapping)

    @classmethod
    def preset(cls, name: str) -> Goal:
        """A published goal from :data:`PRESETS` by name.

        Raises
        ------
        ValueError
            For an unknown name; the message lists the presets.
        """
        try:
            return PRESETS[name].goal
        except (KeyError, TypeError):
            raise ValueError(_unknown_preset(name)) from None

    @classmethod
    def resolve(cls, text: str, sources: Sequence[str] | None = None) -> Goal:
        """One entry point for configs and the CLI: a preset name, an expression or a vector.

        Parameters
        ----------
        text:
            A name from :data:`PRESETS`, an expression for :meth:`parse`, or a comma- or
            space-separated list of numbers (optionally in brackets) for :meth:`from_vector`.
        sources:
            Source labels.  For a preset they rename its sources position by position
            (the count must match); for a vector ``None`` infers them from the length; for an
            expression ``None`` means ``"FCL"``.

        Raises
        ------
        ValueError
            If the text is none of the three forms, with the message of the closest one.
        """
        if not isinstance(text, str):
            raise ValueError(f"a goal must be given as text, got {text!r}")
        stripped = text.strip()
        if stripped in PRESETS:
            goal = PRESETS[stripped].goal
            return goal if sources is None else goal.with_sources(sources)
        numbers = _number_list(stripped)
        if numbers is not None:
            return cls.from_vector(numbers, sources)
        if _PRESET_LIKE_RE.fullmatch(stripped) and stripped != H_RES:
            raise ValueError(
                _unknown_preset(stripped)
                + "; or give an expression such as '{F}{C} - 0.5*{F}' or a vector such as '0, 0, 1, 0, 0'"
            )
        return cls.parse(text, "FCL" if sources is None else sources)

    # ----------------------------------------------------------------- outputs
    def to_expression(self) -> str:
        """Readable expression in canonical order that :meth:`parse` reads back exactly.

        Coefficients use the shortest exact float text; a coefficient of 1 is left out,
        e.g. ``"0.33073*{F}{C}{L} + 0.97808*{F}{C} - 0.9935*{F}{L} + ... + 0.035*H_res"``.
        The zero goal is written ``"0*H_res"``.
        """
        if not self.gamma:
            return f"0*{H_RES}"
        parts: list[str] = []
        for name, value in self.gamma.items():
            magnitude = abs(value)
            term = name if magnitude == 1.0 else f"{_format_number(magnitude)}*{name}"
            if not parts:
                parts.append(f"-{term}" if value < 0 else term)
            else:
                parts.append(f"{'-' if value < 0 else '+'} {term}")
        return " ".join(parts)

    def __str__(self) -> str:
        return self.to_expression()

    def to_vector(self) -> list[float]:
        """Weights in the papers' order (:func:`paper_order`), ``H_res`` last."""
        return [self.gamma.get(k, 0.0) for k in (*paper_order(self.sources), H_RES)]

    def to_dict(self) -> dict[str, float]:
        """Non-zero weights by canonical name (``H_res`` last), for configs."""
        return dict(self.gamma)

    def gamma_tensor(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> tuple[Tensor, float]:
        """Atom weights in the lattice's canonical order, and the ``H_res`` weight.

        Returns
        -------
        gamma:
            Tensor of shape ``(n_atoms,)`` aligned with ``SxPIDTensors.atoms[..., k]``
            (default dtype unless given).
        gamma_res:
            The weight of ``H_res``, a Python float.
        """
        values = [self.gamma.get(name, 0.0) for name in self.atom_names]
        return torch.tensor(values, dtype=dtype or torch.get_default_dtype(), device=device), self.gamma_res

    def redundancy_weights(self) -> Tensor:
        """The goal's gradient with respect to the I^sx redundancies, float64 ``(n_atoms,)``.

        Atoms are the Moebius inversion of the redundancies and ``H_res = H(Y) - I^sx(top)``,
        so ``dG/dI(alpha) = sum_beta gamma_beta mu(alpha, beta) - gamma_res [alpha = top]``.
        The training path uses it to compute values and gradients in one pass.
        """
        lat = self.lattice
        gamma = torch.tensor([self.gamma.get(name, 0.0) for name in self.atom_names], dtype=torch.float64)
        weights = torch.as_tensor(lat.moebius.T.astype("float64")) @ gamma
        weights[lat.index(lat.top)] -= self.gamma_res
        return weights

    # -------------------------------------------------------------- evaluation
    def evaluate(self, atoms: Tensor, residual_entropy: Tensor | None = None) -> Tensor:
        """Goal value of each neuron, in bits; differentiable (the gradient w.r.t. atoms is gamma).

        Parameters
        ----------
        atoms:
            PID atoms in bits, in the lattice's canonical order (``SxPIDTensors.atoms``).
        residual_entropy:
            ``H(Y | sources)`` in bits (``SxPIDTensors.residual_entropy``); may be omitted only
            when ``gamma_res == 0``.

        Returns
        -------
        Tensor
            ``G`` in bits, to be maximised, on the atoms' device and dtype.

        Shape
        -----
        atoms ``(*batch, n_atoms)`` (usually ``(neuron, atom)``), residual_entropy ``(*batch,)``,
        output ``(*batch,)``.

        Raises
        ------
        ValueError
            For a wrong number of atoms, mismatched shapes, a non-float tensor, or a missing
            residual entropy that the goal needs.
        """
        n_atoms = len(self.lattice)
        if not isinstance(atoms, Tensor) or atoms.ndim < 1 or atoms.shape[-1] != n_atoms:
            shape = tuple(atoms.shape) if isinstance(atoms, Tensor) else type(atoms).__name__
            raise ValueError(
                f"a goal for {self.n_sources} sources needs atoms of shape (*batch, {n_atoms}), got {shape}"
            )
        if not atoms.is_floating_point():
            raise ValueError(f"atoms must be a floating-point tensor, got {atoms.dtype}")
        gamma, gamma_res = self.gamma_tensor(atoms.dtype, atoms.device)
        value = atoms @ gamma
        if residual_entropy is None:
            if gamma_res != 0.0:
                raise ValueError(
                    f"this goal weighs {H_RES} by {gamma_res!r}: pass residual_entropy of shape "
                    f"{tuple(atoms.shape[:-1])}"
                )
            return value
        if not isinstance(residual_entropy, Tensor) or residual_entropy.shape != atoms.shape[:-1]:
            shape = (
                tuple(residual_entropy.shape)
                if isinstance(residual_entropy, Tensor)
                else type(residual_entropy).__name__
            )
            raise ValueError(
                f"residual_entropy must have shape {tuple(atoms.shape[:-1])} to match atoms "
                f"{tuple(atoms.shape)}, got {shape}"
            )
        return value + gamma_res * residual_entropy

    # ----------------------------------------------------------- interpretation
    def describe(self) -> list[tuple[str, float, str]]:
        """Rows ``(name, gamma, meaning)`` of the non-zero terms, largest ``|gamma|`` first.

        Ties keep the canonical order.  Meanings come from :func:`atom_meaning`.
        """
        rows = [(name, value, atom_meaning(name, self.sources)) for name, value in self.gamma.items()]
        return sorted(rows, key=lambda row: -abs(row[1]))


# --------------------------------------------------------------------------- presets
@dataclass(frozen=True, slots=True)
class Preset:
    """A published goal with a one-line description and where it comes from."""

    name: str
    goal: Goal
    description: str
    source: str


def _unknown_preset(name: object) -> str:
    close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown goal preset {name!r}{hint}; presets: {', '.join(PRESETS)}"


def _build_presets() -> dict[str, Preset]:
    trivariate_order = "order {F}{C}{L}, {F}{C}, ..., {FCL}, H_res"
    table: list[tuple[str, str, list[float], str, str]] = [
        (
            "readout", "FC", [-0.2, 0.1, 1.0, 0.1, 0.0],
            "bivariate output/readout layer (F = hidden outputs, C = own label element): "
            "mainly redundancy, some synergy and unique context, less unique feedforward",
            "Schneider et al. 2025 (seeds/003), Table 1; SPEC.md section 3",
        ),
        (
            "bivariate-context-naive", "FC", [0.0, 0.0, 1.0, 0.0, 0.0],
            "bivariate hidden layer with context only: maximise the redundancy {F}{C} of "
            "feedforward and context",
            "Schneider et al. 2025 (seeds/003), Fig. 8 (bivariate baseline); SPEC.md section 3",
        ),
        (
            "bivariate-context-optimised", "FC", [-0.0990, 0.3916, 0.5118, 0.5942, 0.0885],
            "bivariate hidden layer with context only, optimised goal (CMA-ES)",
            "Schneider et al. 2025 (seeds/003), Fig. 8 (bivariate baseline); SPEC.md section 3",
        ),
        (
            "bivariate-lateral-naive", "FC", [1.0, 0.0, 0.0, 0.0, 0.0],
            "bivariate hidden layer with lateral input only (C is the lateral input here): "
            "maximise unique feedforward information",
            "Schneider et al. 2025 (seeds/003), Fig. 8 (bivariate baseline); SPEC.md section 3",
        ),
        (
            "bivariate-lateral-optimised", "FC", [0.8281, -0.2038, 0.9030, 0.5267, 0.1350],
            "bivariate hidden layer with lateral input only (C is the lateral input here), "
            "optimised goal (CMA-ES)",
            "Schneider et al. 2025 (seeds/003), Fig. 8 (bivariate baseline); SPEC.md section 3",
        ),
        (
            "bars-unique", "FC", [1.0, 0.0, 0.0, 0.0, 0.0],
            "unsupervised bars (C = outputs of the other neurons): maximise unique feedforward "
            "information so that each neuron codes a different bar",
            "Makkeh et al. (seeds/001), Fig. 5; SPEC.md section 3",
        ),
        (
            "trivariate-naive", "FCL", [0.0, 1.0] + [0.0] * 17,
            "trivariate hidden layer, intuitive goal: maximise the redundancy {F}{C} of "
            "feedforward and context",
            "Schneider et al. 2025 (seeds/003), Fig. 1D; SPEC.md section 3",
        ),
        (
            "trivariate-mnist-tpe", "FCL",
            [
                0.33073, 0.97808, -0.99350, 0.40173, 0.24278, 0.62554, 0.47128, 0.02121, 0.06054,
                -0.94698, -0.01985, -0.96766, -0.69245, 0.42701, 0.97364, 0.73696, -0.12183,
                -0.21512, 0.03500,
            ],
            "trivariate hidden layer, optimised on MNIST with TPE (setup 1, N = 100); the goal "
            "of all main results",
            f"Schneider et al. 2025 (seeds/003), Fig. 5A and appendix A.10; {trivariate_order}",
        ),
        (
            "trivariate-mnist-cmaes", "FCL",
            [
                0.21016, 0.98604, -0.44868, 0.46835, -0.62376, 0.43270, 0.84127, 0.00973, -0.41209,
                -0.48135, -0.14115, -0.70579, -0.53288, 0.14942, 0.70986, 0.33916, 0.78664,
                0.05719, 0.0,
            ],
            "trivariate hidden layer, optimised on MNIST with CMA-ES (setup 1, N = 100, H_res fixed at 0)",
            f"Schneider et al. 2025 (seeds/003), Fig. 6; {trivariate_order}",
        ),
        (
            "trivariate-cifar-cmaes", "FCL",
            [
                0.98378, 0.60485, -0.21335, 0.24266, 0.33963, -0.57904, 0.05000, 0.03362, 0.59739,
                -0.07824, 0.47624, -0.84754, -0.39919, 0.55634, 0.27147, -0.46228, -0.06276,
                -0.26290, 0.0,
            ],
            "trivariate hidden layer, optimised on CIFAR-10 with CMA-ES (setup 1, N = 100, H_res fixed at 0)",
            f"Schneider et al. 2025 (seeds/003), Fig. 5D; {trivariate_order}",
        ),
    ]  # fmt: skip
    return {
        name: Preset(name, Goal.from_vector(vector, sources), description, source)
        for name, sources, vector, description, source in table
    }


PRESETS: Mapping[str, Preset] = _build_presets()
"""Published goals by name (SPEC.md section 3).  A plain dict built at import, never mutated."""
