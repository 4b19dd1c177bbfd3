"""The :class:`Distribution` type: a joint pmf of sources and a target, ready for PID.

A :class:`Distribution` holds a joint pmf with the target on the LAST axis (the layout that
:func:`infomorphic.pid.sx_pid` expects), the source labels used to name PID atoms, the target
label, and the original value of every category along each axis.  This module builds one from
a pmf array (:func:`distribution_from_pmf`) or a catalogue example
(:func:`example_distribution`) and holds the label checks shared with :mod:`.table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..pid.checks import check_pmf
from ..pid.distributions import get as get_example
from ..pid.lattice import DEFAULT_LETTERS, MAX_SOURCES, MIN_SOURCES, get_lattice

__all__ = ["DEFAULT_TARGET", "Distribution", "distribution_from_pmf", "example_distribution"]

DEFAULT_TARGET = "T"
"""Target label used when the input does not name the target (pmf arrays, examples)."""


@dataclass(frozen=True)
class Distribution:
    """A discrete joint distribution of sources and a target, ready for PID.

    Attributes
    ----------
    pmf:
        Read-only float64 array of shape ``(|S_1|, ..., |S_n|, |T|)`` summing to 1, target on
        the last axis.
    sources:
        Source labels in axis order (used for atom names such as ``{F}{C}``).
    target:
        Target label.
    source_values:
        For each source, the value (as text) that each index along its axis stands for.
    target_values:
        The value (as text) of each index along the target axis.
    kind:
        ``"pmf"`` (an array or example), ``"samples"`` (a table of observations) or
        ``"probabilities"`` (a table with a probability column).
    n_rows:
        Number of table rows read (0 for a pmf array).
    """

    pmf: np.ndarray
    sources: tuple[str, ...]
    target: str
    source_values: tuple[tuple[str, ...], ...]
    target_values: tuple[str, ...]
    kind: str = "pmf"
    n_rows: int = 0

    @property
    def n_sources(self) -> int:
        """Number of sources (2 to 4)."""
        return len(self.sources)


# --------------------------------------------------------------------------- helpers
def _frozen(pmf: np.ndarray) -> np.ndarray:
    out = np.array(pmf, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out


def _check_labels(labels: Sequence[str], what: str) -> tuple[str, ...]:
    """Validate source labels for atom names; ``what`` says where they came from."""
    out = tuple(labels)
    n = len(out)
    if not MIN_SOURCES <= n <= MAX_SOURCES:
        raise ValueError(f"need between {MIN_SOURCES} and {MAX_SOURCES} sources, got {n}: {list(out)}")
    try:
        return get_lattice(n).letters(out)
    except ValueError as exc:
        raise ValueError(f"{exc} ({what})") from None


def _check_names(names: Sequence[str], n: int) -> Sequence[str]:
    if len(names) != n:
        raise ValueError(f"got {len(names)} source labels {list(names)} for {n} sources; give exactly {n}")
    return names


def distribution_from_pmf(
    pmf: object,
    *,
    names: Sequence[str] | None = None,
    target: str = DEFAULT_TARGET,
    normalize: bool = False,
) -> Distribution:
    """Wrap a pmf array as a :class:`Distribution`.

    Parameters
    ----------
    pmf:
        Array-like of shape ``(|S_1|, ..., |S_n|, |T|)``, ``2 <= n <= 4``, target last.
    names:
        Source labels for atom names; default the first ``n`` of ``F, C, L, M``.
    target:
        Target label.
    normalize:
        Rescale a non-negative pmf that does not sum to 1 instead of rejecting it.

    Returns
    -------
    Distribution
        With values labelled ``"0" .. "k-1"`` along each axis.

    Raises
    ------
    ValueError
        For a malformed pmf (see :func:`infomorphic.pid.checks.check_pmf`) or bad labels.
    """
    if isinstance(pmf, np.ndarray) and pmf.dtype.kind not in "biuf":
        raise ValueError(f"the pmf must be a real numeric array, got dtype {pmf.dtype}")
    p = check_pmf(pmf, normalize=normalize)
    n = p.ndim - 1
    labels = _check_labels(
        _check_names(names, n) if names is not None else tuple(DEFAULT_LETTERS[:n]), "source labels"
    )
    if not isinstance(target, str) or not target:
        raise ValueError(f"the target label must be a non-empty string, got {target!r}")
    return Distribution(
        pmf=_frozen(p),
        sources=labels,
        target=target,
        source_values=tuple(tuple(str(i) for i in range(k)) for k in p.shape[:-1]),
        target_values=tuple(str(i) for i in range(p.shape[-1])),
        kind="pmf",
    )


def example_distribution(name: str, *, names: Sequence[str] | None = None) -> Distribution:
    """A named distribution from :data:`infomorphic.pid.distributions.CATALOGUE`.

    Parameters
    ----------
    name:
        Catalogue name, e.g. ``"xor"`` or ``"and3"``.
    names:
        Source labels; default ``F, C, L, M`` (as many as the example has sources).

    Raises
    ------
    ValueError
        For an unknown name (the message lists the catalogue) or the wrong number of labels.
    """
    pmf = get_example(name)
    try:
        return distribution_from_pmf(pmf, names=names)
    except ValueError as exc:
        raise ValueError(f"example {name!r}: {exc}") from None
