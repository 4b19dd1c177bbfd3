"""Joint pmfs from other libraries' objects: ``dit`` distributions and pandas DataFrames.

:func:`infomorphic.pid.sx_pid` calls :func:`as_pmf` on its argument, so it accepts

- a :class:`dit.Distribution` (any joint distribution of ``dit``): its outcomes and
  probabilities become our pmf array, one axis per random variable, each variable's values
  in the order of ``dist.alphabet``;
- a :class:`pandas.DataFrame` of samples (one row per observation): each column's distinct
  values are coded ``0 .. k-1`` in sorted order and the plug-in (relative-frequency) pmf is
  estimated (:func:`infomorphic.estimate.plugin_pmf`);
- an :class:`infomorphic.tables.Distribution` (its ``pmf``);
- anything array-like, unchanged.

For the first two, the target is the last variable / column unless ``target=`` names it (a
column name, a dit random-variable name, or an index); the sources are all other variables in
their order unless ``sources=`` lists them.  Variables that are neither are marginalised out
(summed over).  The result has the target on the LAST axis, as :func:`~infomorphic.pid.sx_pid`
expects.

Neither ``dit`` nor ``pandas`` is a dependency of infomorphic: they are imported only when the
argument is an object of theirs (recognised by its class's module), so passing one needs that
library installed and nothing else does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["as_pmf", "pmf_from_dit", "pmf_from_dataframe", "is_dit_distribution", "is_dataframe"]

Key = object
"""A variable named by its name (a column / random-variable name) or by its position (an int)."""


def _from_library(obj: object, library: str) -> bool:
    return any(cls.__module__.split(".")[0] == library for cls in type(obj).__mro__)


def is_dit_distribution(obj: object) -> bool:
    """Whether ``obj`` is an object of the ``dit`` library (checked without importing dit)."""
    return _from_library(obj, "dit")


def is_dataframe(obj: object) -> bool:
    """Whether ``obj`` is a pandas DataFrame (checked without importing pandas unless it is pandas')."""
    if not _from_library(obj, "pandas"):
        return False
    import pandas as pd

    return isinstance(obj, pd.DataFrame)


def as_pmf(obj: object, *, target: Key | None = None, sources: Sequence[Key] | None = None) -> Any:
    """``obj`` as a joint pmf array (target last) when it is a dit / pandas / tables object.

    Anything else is returned unchanged (the caller validates it); ``target`` and ``sources``
    are then an error, since an array has no variable names.
    """
    if is_dit_distribution(obj):
        return pmf_from_dit(obj, target=target, sources=sources)
    if is_dataframe(obj):
        return pmf_from_dataframe(obj, target=target, sources=sources)
    if _from_library(obj, "infomorphic") and hasattr(obj, "pmf") and hasattr(obj, "target_values"):
        if target is not None or sources is not None:
            raise ValueError(
                "target= and sources= select variables of a dit Distribution or a pandas DataFrame; "
                "an infomorphic.tables.Distribution is decomposed as it is"
            )
        return obj.pmf
    if target is not None or sources is not None:
        raise ValueError(
            "target= and sources= select variables of a dit Distribution or a pandas DataFrame; "
            "give an array pmf with the target on its last axis instead"
        )
    return obj


def _select(
    names: Sequence[Key], target: Key | None, sources: Sequence[Key] | None, what: str
) -> tuple[list[int], int]:
    """Positions of the sources and of the target among ``names`` (names or indices)."""
    n = len(names)

    def position(key: Key, role: str) -> int:
        if key in names:
            hits = [i for i, name in enumerate(names) if name == key]
            if len(hits) > 1:
                raise ValueError(f"{role} {key!r}: the {what} has {len(hits)} variables of that name")
            return hits[0]
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            if -n <= int(key) < n:
                return int(key) % n
            raise ValueError(f"{role} {key!r} is out of range: the {what} has {n} variables")
        raise ValueError(
            f"{role} {key!r} not found; the {what} has the variables {', '.join(repr(k) for k in names)}"
        )

    t = n - 1 if target is None else position(target, "target")
    if sources is None:
        src = [i for i in range(n) if i != t]
    else:
        if isinstance(sources, (str, bytes)):
            raise ValueError(f"sources must be a list of variables, got the string {sources!r}")
        src = [position(k, "source") for k in sources]
        if t in src:
            raise ValueError(f"variable {names[t]!r} is both the target and a source")
        if len(set(src)) != len(src):
            raise ValueError("a variable is listed twice among the sources")
    return src, t


def pmf_from_dit(dist: Any, *, target: Key | None = None, sources: Sequence[Key] | None = None) -> np.ndarray:
    """The joint pmf of a :class:`dit.Distribution`: shape ``(|S_1|, ..., |S_n|, |T|)``, float64.

    Each axis indexes the values of one random variable in the order of ``dist.alphabet``
    (also values of probability 0 that the alphabet lists).  ``target`` / ``sources`` select
    variables by random-variable name (``dist.set_rv_names``) or index; default: the last
    variable is the target and all others are sources.  Log-probability distributions are
    converted.  Probabilities, not information: the PID of the result is in bits.
    """
    import dit

    if not isinstance(dist, dit.Distribution):
        kind = type(dist).__name__
        raise ValueError(
            f"a dit {kind} is not a joint distribution of several variables; build a "
            "dit.Distribution whose outcomes list the sources and the target"
        )
    if dist.is_log():
        dist = dist.copy(base="linear")
    n_vars = dist.outcome_length()
    rv_names = dist.get_rv_names()
    names: list[Key] = list(rv_names) if rv_names is not None else list(range(n_vars))
    src, t = _select(names, target, sources, "dit distribution")
    alphabet = dist.alphabet
    index = [{value: k for k, value in enumerate(values)} for values in alphabet]
    keep = [*src, t]
    pmf = np.zeros(tuple(len(alphabet[i]) for i in keep))
    for outcome, p in zip(dist.outcomes, dist.pmf):
        values = tuple(outcome)
        pmf[tuple(index[i][values[i]] for i in keep)] += float(p)
    return pmf


def pmf_from_dataframe(
    frame: Any, *, target: Key | None = None, sources: Sequence[Key] | None = None
) -> np.ndarray:
    """The plug-in joint pmf of a pandas DataFrame of samples (one row per observation).

    ``target`` / ``sources`` select columns by name (or position when no column has that
    name); default: the last column is the target, all others are sources (other columns are
    ignored).  Each column's distinct values are coded ``0 .. k-1`` in sorted order, so the
    axes of the pmf follow the sorted values; missing values (NaN / None) are an error.
    """
    import pandas as pd

    from ..estimate import plugin_pmf

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise ValueError("the DataFrame has no rows (samples)")
    names = list(frame.columns)
    src, t = _select(names, target, sources, "DataFrame")
    codes, sizes = [], []
    for i in [*src, t]:
        column = frame.iloc[:, i]
        if bool(column.isna().any()):
            raise ValueError(
                f"column {names[i]!r} has {int(column.isna().sum())} missing values; drop or fill them"
            )
        try:
            code, uniques = pd.factorize(column, sort=True)
        except TypeError:  # values that do not sort together (e.g. numbers and text): by their text
            code, uniques = pd.factorize(column.astype(str), sort=True)
        codes.append(code)
        sizes.append(len(uniques))
    return plugin_pmf(np.stack(codes, axis=1), sizes=sizes)
