"""The :class:`Goal` of an infomorphic neuron: weighted PID atoms and ``H_res``, in bits."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType

import torch
from torch import Tensor

from ..pid.lattice import Lattice, get_lattice
from .atoms import H_RES, _canonical, _labels, _valid_names, paper_order
from .expressions import _PRESET_LIKE_RE, _format_number, _number_list, _parse_terms
from .meanings import atom_meaning

GAMMA_LIMIT = 1e12
"""Largest magnitude of a goal coefficient: larger ones overflow float32 atoms x gammas and gradients."""


def _as_gamma(key: str, value: object) -> float:
    if isinstance(value, (str, bytes, bool)):
        raise ValueError(f"gamma for {key!r} must be a finite number, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"gamma for {key!r} must be a finite number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"gamma for {key!r} must be a finite number, got {value!r}")
    if abs(number) > GAMMA_LIMIT:
        raise ValueError(
            f"gamma for {key!r} is {number:g}; coefficients beyond +-{GAMMA_LIMIT:g} overflow single-precision "
            "training: scale the goal down (Adam's steps depend only on the ratios of the coefficients)"
        )
    return number


@dataclass(frozen=True, slots=True, repr=False)
class Goal:
    """A neuron's local goal ``G = sum_alpha gamma_alpha Pi_alpha + gamma_res H_res`` (bits).

    Parameters
    ----------
    sources:
        Source labels in declaration order, e.g. ``("F", "C")``, ``"FCL"`` or ``"FCLB"`` (2 to 4
        sources; four sources weigh the 166 atoms of the four-source lattice).
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
    >>> Goal.parse("{F}{C}{L}{B} + {F}{B} - {FB}", sources="FCLB").n_sources
    4
    >>> Goal.resolve("trivariate-mnist-tpe", "FCLB") == Goal.preset("trivariate-mnist-tpe").embed("FCLB")
    True
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

    def canonical(self, name: str) -> str:
        """Canonical name of an atom (any member order, e.g. ``"{C}{F}"`` -> ``"{F}{C}"``) or ``H_res``.

        Raises
        ------
        ValueError
            If ``name`` is not a valid atom name for these sources nor ``H_res``; the message
            lists the valid names.
        """
        try:
            return _canonical(name, self.sources)
        except ValueError as err:
            raise ValueError(f"unknown atom name {name!r} ({err}); {_valid_names(self.sources)}") from None

    def weight(self, name: str) -> float:
        """Weight of one atom (any member order) or of ``H_res``; 0 for absent terms.

        Raises
        ------
        ValueError
            If ``name`` is not a valid atom name for these sources nor ``H_res``.
        """
        return self.gamma.get(self.canonical(name), 0.0)

    def with_gamma(self, updates: Mapping[str, float]) -> Goal:
        """A copy with some weights replaced (0 removes a term), e.g. for ablations."""
        merged = dict(self.gamma)
        for key, value in updates.items():
            merged[self.canonical(key)] = _as_gamma(key, value)
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

    def embed(self, sources: Sequence[str], *, mode: str = "zero") -> Goal:
        """The goal over more sources, e.g. a trivariate goal for a four-source (F, C, L, B) neuron.

        Sources are matched by label (the new ones may sit anywhere in ``sources``); rename
        first with :meth:`with_sources` if the labels differ.

        Parameters
        ----------
        sources:
            The new source labels: all of this goal's labels plus the new ones (2 to 4 in all).
        mode:
            ``"zero"`` (default): every atom keeps its weight under the same name (``{F}{C}``
            stays ``{F}{C}``), every atom involving a new source weighs 0, ``H_res`` keeps its
            weight.  When the new sources are constant (e.g. a feedback class with zero weights
            and zero bias) the I^sx atoms of the larger lattice equal the smaller lattice's
            atoms on the atoms without the new sources and are 0 on all others, and
            ``H(Y | sources)`` is unchanged, so the embedded goal has the same value (bits) and
            gradients as the original.  Otherwise it weighs, e.g., only the part of the
            redundancy of F and C that B does not also carry.

            ``"marginal"``: the goal that equals the original goal of the pmf of the old
            sources for *any* distribution of the new ones (the new sources are ignored).
            I^sx redundancies of antichains of the old sources do not depend on other
            sources, so the goal's weights on the redundancies (:meth:`redundancy_weights`)
            are kept and those of the new antichains are 0; the atom weights follow by the
            lattice's zeta transform (computed exactly in rationals) and are in general
            non-zero on atoms involving the new sources.

        Raises
        ------
        ValueError
            If ``sources`` lacks one of this goal's labels or ``mode`` is unknown.

        Examples
        --------
        >>> Goal.parse("{F}{C} - {FCL}").embed("FCLB").to_expression()
        '{F}{C} - {FCL}'
        """
        if mode not in ("zero", "marginal"):
            raise ValueError(f"mode must be 'zero' or 'marginal', got {mode!r}")
        labels = _labels(sources)
        missing = [s for s in self.sources if s not in labels]
        if missing:
            raise ValueError(
                f"cannot embed a goal over {', '.join(self.sources)} into sources {', '.join(labels)}: "
                f"{', '.join(missing)} missing; rename the goal's sources first with with_sources"
            )
        old, new = self.lattice, get_lattice(len(labels))
        where = [labels.index(s) for s in self.sources]

        def moved(antichain: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
            return tuple(tuple(where[i] for i in member) for member in antichain)

        if mode == "zero":
            gamma = {
                H_RES if k == H_RES else new.name(moved(old.parse(k, self.sources)), labels): v
                for k, v in self.gamma.items()
            }
            return Goal(labels, gamma)
        # marginal: redundancy weights w = M^T gamma - gamma_res [top] moved into the new
        # lattice (0 elsewhere), gamma' = zeta^T (w + gamma_res [top']); exact in rationals
        gammas = [Fraction(self.gamma.get(name, 0.0)) for name in self.atom_names]
        res = Fraction(self.gamma_res)
        weights = [Fraction(0)] * len(new)
        top_old = old.index(old.top)
        for a, alpha in enumerate(old.antichains):
            terms = (int(old.moebius[b, a]) * gammas[b] for b in range(len(old)) if old.moebius[b, a])
            weights[new.index(moved(alpha))] = sum(terms, Fraction(0)) - (res if a == top_old else 0)
        weights[new.index(new.top)] += res
        names = new.names(labels)
        gamma = {
            names[b]: float(sum((weights[a] for a in range(len(new)) if new.zeta[a, b]), Fraction(0)))
            for b in range(len(new))
        }
        gamma[H_RES] = float(res)
        return Goal(labels, gamma)

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
        ``{F}{C}{L}, {F}{C}, ..., {FCL}`` then ``H_res``; four sources: the 166 atoms in the
        lattice's canonical order (:mod:`infomorphic.pid.lattice`: smallest member size, then
        more members, then total size; ``Goal("FCLB", {}).atom_names`` lists them, from
        ``{F}{C}{L}{B}`` to ``{FCLB}``) then ``H_res``.  Without the final ``H_res`` entry
        (4, 18 or 166 values) ``gamma_res = 0``.

        Parameters
        ----------
        values:
            The weights, a flat sequence, array or 1-D tensor.
        sources:
            Source labels; ``None`` infers ``FC`` from 4 or 5 values, ``FCL`` from 18 or 19 and
            ``FCLB`` (B: feedback) from 166 or 167.

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
            if len(numbers) not in _BY_LENGTH:
                raise ValueError(
                    f"a goal vector needs 4 or 5 values (bivariate: {', '.join(paper_order('FC'))}"
                    f"[, {H_RES}]), 18 or 19 values (trivariate, canonical atom order[, {H_RES}]) or "
                    f"166 or 167 values (four sources, canonical atom order[, {H_RES}]), got {len(numbers)}"
                )
            sources = _BY_LENGTH[len(numbers)]
        labels = _labels(sources)
        names = paper_order(labels)
        if len(numbers) not in (len(names), len(names) + 1):
            order = ", ".join(names) if len(names) <= 18 else f"{names[0]}, {names[1]}, ..., {names[-1]}"
            raise ValueError(
                f"a goal vector for sources {', '.join(labels)} needs {len(names)} or {len(names) + 1} "
                f"values ({order}[, {H_RES}]), got {len(numbers)}"
            )
        keys = (*names, H_RES)[: len(numbers)]
        return cls(labels, {k: _as_gamma(k, v) for k, v in zip(keys, numbers)})

    @classmethod
    def from_dict(cls, mapping: Mapping[str, float], sources: Sequence[str] = "FCL") -> Goal:
        """Inverse of :meth:`to_dict`: a mapping of atom names (and ``H_res``) to weights."""
        return cls(tuple(sources), mapping)

    @classmethod
    def preset(cls, name: str, sources: Sequence[str] | None = None) -> Goal:
        """A published goal from :data:`PRESETS` by name, optionally for other sources.

        ``sources`` as in :meth:`resolve`: the same number renames the preset's sources
        position by position; more (e.g. ``"FCLB"`` for a trivariate preset) renames the
        first ones and embeds the goal with :meth:`embed` (atoms of the extra sources at 0).

        Raises
        ------
        ValueError
            For an unknown name (the message lists the presets), or fewer sources than the
            preset has.
        """
        from .presets import PRESETS, _unknown_preset  # presets build Goals: import at call time

        try:
            goal = PRESETS[name].goal
        except (KeyError, TypeError):
            raise ValueError(_unknown_preset(name)) from None
        return _fit_sources(goal, sources)

    @classmethod
    def resolve(cls, text: str, sources: Sequence[str] | None = None) -> Goal:
        """One entry point for configs and the CLI: a preset name, an expression or a vector.

        Parameters
        ----------
        text:
            A name from :data:`PRESETS`, an expression for :meth:`parse`, or a comma- or
            space-separated list of numbers (optionally in brackets) for :meth:`from_vector`.
        sources:
            Source labels.  For a preset they rename its sources position by position; more
            labels than the preset has (e.g. ``"FCLB"`` for a trivariate preset) rename the
            first ones and embed the goal (:meth:`embed`: atoms involving the extra sources
            weigh 0, ``H_res`` kept), so ``resolve("trivariate-mnist-tpe", "FCLB")`` is the
            published goal for a four-source neuron.  For a vector ``None`` infers them from
            the length, and a vector of a smaller lattice (e.g. 19 values for ``"FCLB"``) is
            read for the first labels and embedded the same way; for an expression ``None``
            means ``"FCL"`` (atoms not named weigh 0 for any sources).

        Raises
        ------
        ValueError
            If the text is none of the three forms, with the message of the closest one.
        """
        from .presets import PRESETS, _unknown_preset  # presets build Goals: import at call time

        if not isinstance(text, str):
            raise ValueError(f"a goal must be given as text, got {text!r}")
        stripped = text.strip()
        if stripped in PRESETS:
            return _fit_sources(PRESETS[stripped].goal, sources)
        numbers = _number_list(stripped)
        if numbers is not None:
            if sources is not None:
                labels = _labels(sources)
                fits = [k for k in range(2, len(labels) + 1) if len(numbers) - len(get_lattice(k)) in (0, 1)]
                if fits and fits[0] < len(labels):  # a smaller lattice's vector: embed it
                    return cls.from_vector(numbers, labels[: fits[0]]).embed(labels)
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
            (default dtype unless given; a new tensor on every call, computed once per goal).
        gamma_res:
            The weight of ``H_res``, a Python float.
        """
        gamma = _gamma_vector(self).to(dtype=dtype or torch.get_default_dtype(), device=device, copy=True)
        return gamma, self.gamma_res

    def redundancy_weights(self) -> Tensor:
        """The goal's gradient with respect to the I^sx redundancies, float64 ``(n_atoms,)``.

        Atoms are the Moebius inversion of the redundancies and ``H_res = H(Y) - I^sx(top)``,
        so ``dG/dI(alpha) = sum_beta gamma_beta mu(alpha, beta) - gamma_res [alpha = top]``.
        The training path uses it to compute values and gradients in one pass (every step: the
        result is computed once per goal and copied).
        """
        return _redundancy_weights(self).clone()

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


_BY_LENGTH: Mapping[int, str] = {4: "FC", 5: "FC", 18: "FCL", 19: "FCL", 166: "FCLB", 167: "FCLB"}
"""Sources :meth:`Goal.from_vector` infers from a vector's length (B: feedback)."""


def _fit_sources(goal: Goal, sources: Sequence[str] | None) -> Goal:
    """``goal`` renamed to ``sources`` position by position, embedded if ``sources`` has more labels."""
    if sources is None:
        return goal
    labels = _labels(sources)
    if len(labels) <= goal.n_sources:
        return goal.with_sources(labels)  # fewer: its one-line error
    return goal.with_sources(labels[: goal.n_sources]).embed(labels)


@lru_cache(maxsize=128)
def _gamma_vector(goal: Goal) -> Tensor:
    """The atom weights in the lattice's canonical order, float64 (shared: callers copy it)."""
    return torch.tensor([goal.gamma.get(name, 0.0) for name in goal.atom_names], dtype=torch.float64)


@lru_cache(maxsize=128)
def _redundancy_weights(goal: Goal) -> Tensor:
    lat = goal.lattice
    weights = torch.as_tensor(lat.moebius.T.astype("float64")) @ _gamma_vector(goal)
    weights[lat.index(lat.top)] -= goal.gamma_res
    return weights
