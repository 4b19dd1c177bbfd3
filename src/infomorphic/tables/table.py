"""Joint pmfs from tables of samples or of probabilities (:func:`distribution_from_table`).

A table is a header of column names and rows of values.  Without a probability column (see
:data:`PROBABILITY_COLUMNS`) each row is one observation: each column's distinct values are
coded ``0 .. k-1`` in sorted order (numeric order when every value is a number, text order
otherwise) and the plug-in pmf is estimated with :func:`infomorphic.estimate.plugin_pmf`.  With
one, every row is a cell of the pmf and rows with the same source and target values add up.
Columns that are neither sources, target nor the probability column are marginalised out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..estimate import plugin_pmf
from ..pid.checks import SUM_TOLERANCE, check_pmf
from ..pid.lattice import MAX_SOURCES, MIN_SOURCES
from .distribution import Distribution, _check_labels, _check_names, _frozen

__all__ = ["PROBABILITY_COLUMNS", "distribution_from_table"]

PROBABILITY_COLUMNS: tuple[str, ...] = ("p", "prob", "probability", "P", "mass")
"""Column names auto-detected as the probability column of a table (exact, case-sensitive)."""


def _cell_text(value: object, where: str, column: str) -> str | float:
    """A table cell as a category key: a float for numbers, stripped text otherwise."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"{where}: column {column!r} has a non-finite value {value!r}")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"{where}: column {column!r} is empty")
        return text
    if value is None:
        raise ValueError(f"{where}: column {column!r} is missing (null)")
    raise ValueError(
        f"{where}: column {column!r} holds a {type(value).__name__}; values must be strings or numbers"
    )


def _as_number(key: str | float) -> float | None:
    if isinstance(key, float):
        return key
    try:
        x = float(key)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _label(key: str | float) -> str:
    if isinstance(key, float):
        return str(int(key)) if key.is_integer() and abs(key) < 2**53 else repr(key)
    return key


def _encode(
    values: Sequence[object], column: str, where: Sequence[str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Code a column's distinct values as ``0 .. k-1`` in sorted order.

    Numeric order is used when every value is a number (or text that parses as one),
    text order otherwise.

    Returns
    -------
    codes, labels:
        int64 codes, one per row, and the label of each code.
    """
    keys = [_cell_text(v, w, column) for v, w in zip(values, where)]
    numbers = [_as_number(k) for k in keys]
    if all(x is not None for x in numbers):
        first: dict[float, str | float] = {}
        for x, k in zip(numbers, keys):
            first.setdefault(float(x), k)  # type: ignore[arg-type]
        order = sorted(first)
        index = {x: i for i, x in enumerate(order)}
        codes = np.array([index[float(x)] for x in numbers], dtype=np.int64)  # type: ignore[arg-type]
        labels = tuple(_label(first[x]) for x in order)
        return codes, labels
    texts = [_label(k) for k in keys]
    order_t = sorted(set(texts))
    index_t = {t: i for i, t in enumerate(order_t)}
    return np.array([index_t[t] for t in texts], dtype=np.int64), tuple(order_t)


def _probability(value: object, where: str, column: str) -> float:
    """Parse one probability cell; must be a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: probability column {column!r} has a non-numeric value {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise ValueError(
            f"{where}: probability column {column!r} has a non-numeric value {value!r}"
        ) from None
    if not math.isfinite(x):
        raise ValueError(f"{where}: probability column {column!r} has a non-finite value {value!r}")
    if x < 0:
        raise ValueError(f"{where}: probability column {column!r} has negative mass {x:g}")
    return x


def _missing(kind: str, wanted: Sequence[str], available: Sequence[str]) -> ValueError:
    s = "s" if len(wanted) > 1 else ""
    return ValueError(
        f"{kind} column{s} {', '.join(repr(w) for w in wanted)} not found; "
        f"available columns: {', '.join(available)}"
    )


def distribution_from_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    target: str | None = None,
    sources: Sequence[str] | None = None,
    prob_column: str | None = None,
    names: Sequence[str] | None = None,
    normalize: bool = False,
    row_names: Sequence[str] | None = None,
) -> Distribution:
    """Joint pmf of a table of samples or of probabilities.

    Parameters
    ----------
    columns:
        Column names (distinct, non-empty).
    rows:
        One sequence of values per row, as long as ``columns``.
    target:
        Target column; default the last column that is neither the probability column nor
        listed in ``sources``.
    sources:
        Source columns in axis order; default every other non-probability column in table
        order.  Columns that are neither sources nor target are marginalised out.
    prob_column:
        Column holding each row's probability.  Default: the one column named as in
        :data:`PROBABILITY_COLUMNS`, if any; without one the rows are samples.
    names:
        Source labels for atom names; default the source column names.
    normalize:
        For a probability table, rescale probabilities that do not sum to 1 instead of
        rejecting them.  (A table of samples is always normalised by its row count.)
    row_names:
        How to refer to each row in error messages (default ``"row 1"``, ``"row 2"``, ...).

    Returns
    -------
    Distribution
        Source and target categories coded in sorted order (numeric if all values are numbers).

    Raises
    ------
    ValueError
        For an empty table, missing, duplicate or conflicting columns, rows of the wrong
        length, fewer than 2 or more than 4 sources, empty or non-numeric cells where numbers
        are needed, negative mass, or probabilities that do not sum to 1.
    """
    cols = [str(c) for c in columns]
    if not cols:
        raise ValueError("the table has no columns")
    blank = [i + 1 for i, c in enumerate(cols) if not c.strip()]
    if blank:
        raise ValueError(f"column {blank[0]} of the header has no name")
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise ValueError(f"duplicate column name(s): {', '.join(repr(d) for d in dup)}")
    where = list(row_names) if row_names is not None else [f"row {i + 1}" for i in range(len(rows))]
    if not rows:
        raise ValueError(f"the table has no data rows (columns: {', '.join(cols)})")
    for row, w in zip(rows, where):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise ValueError(f"{w}: expected a list of {len(cols)} values, got {type(row).__name__}")
        if len(row) != len(cols):
            raise ValueError(f"{w}: expected {len(cols)} values ({', '.join(cols)}), got {len(row)}")

    src = list(sources) if sources is not None else None
    if src is not None:
        if not src:
            raise ValueError("the list of source columns is empty")
        dup_src = sorted({s for s in src if src.count(s) > 1})
        if dup_src:
            raise ValueError(f"source column(s) listed twice: {', '.join(repr(d) for d in dup_src)}")
        absent = [s for s in src if s not in cols]
        if absent:
            raise _missing("source", absent, cols)
    if target is not None and target not in cols:
        raise _missing("target", [target], cols)
    if target is not None and src is not None and target in src:
        raise ValueError(f"column {target!r} is both the target and a source")

    prob: str | None
    if prob_column is not None:
        if prob_column not in cols:
            raise _missing("probability", [prob_column], cols)
        prob = prob_column
    else:
        chosen = set(src or []) | ({target} if target is not None else set())
        found = [c for c in PROBABILITY_COLUMNS if c in cols and c not in chosen]
        if len(found) > 1:
            raise ValueError(
                f"several possible probability columns ({', '.join(found)}); choose one with "
                "prob_column (CLI: --prob-column)"
            )
        prob = found[0] if found else None
    if prob is not None and (prob == target or (src is not None and prob in src)):
        raise ValueError(f"column {prob!r} is the probability column and cannot be a source or the target")

    data_cols = [c for c in cols if c != prob]
    if target is None:
        candidates = [c for c in data_cols if src is None or c not in src]
        if not candidates:
            raise ValueError(
                f"no column is left for the target (columns: {', '.join(cols)}); name one with "
                "target (CLI: --target)"
            )
        target = candidates[-1]
    if src is None:
        src = [c for c in data_cols if c != target]
    if not MIN_SOURCES <= len(src) <= MAX_SOURCES:
        raise ValueError(
            f"need between {MIN_SOURCES} and {MAX_SOURCES} source columns, got {len(src)} "
            f"({', '.join(src) if src else 'none'}) with target {target!r}; "
            f"columns: {', '.join(cols)}"
        )
    if names is not None:
        labels = _check_labels(_check_names(names, len(src)), "source labels")
    else:
        labels = _check_labels(
            src, "the source column names; rename them or give source labels (CLI: --names)"
        )

    idx = {c: i for i, c in enumerate(cols)}
    variables = [*src, target]
    codes = np.empty((len(rows), len(variables)), dtype=np.int64)
    values: list[tuple[str, ...]] = []
    for j, c in enumerate(variables):
        codes[:, j], vals = _encode([row[idx[c]] for row in rows], c, where)
        values.append(vals)
    sizes = [len(v) for v in values]

    if prob is None:
        pmf = plugin_pmf(codes, sizes=sizes)
        kind = "samples"
    else:
        mass = np.array([_probability(row[idx[prob]], w, prob) for row, w in zip(rows, where)])
        total = float(mass.sum())
        if normalize:
            if total <= 0:
                raise ValueError(f"probability column {prob!r} sums to 0 and cannot be normalised")
        elif abs(total - 1.0) > SUM_TOLERANCE:
            raise ValueError(
                f"probability column {prob!r} sums to {total:.9g}, not 1 (tolerance {SUM_TOLERANCE:g}); "
                "pass normalize=True (CLI: --normalize) to rescale it"
            )
        pmf = np.zeros(sizes)
        np.add.at(pmf, tuple(codes.T), mass)
        pmf = check_pmf(pmf, normalize=normalize)
        kind = "probabilities"
    return Distribution(
        pmf=_frozen(pmf),
        sources=labels,
        target=target,
        source_values=tuple(values[:-1]),
        target_values=values[-1],
        kind=kind,
        n_rows=len(rows),
    )
