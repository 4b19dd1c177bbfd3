"""Readers that turn files of discrete data into joint pmfs for the PID engine.

A :class:`Distribution` holds a joint pmf with the target on the LAST axis (the layout that
:func:`infomorphic.pid.sx_pid` expects), the source labels used to name PID atoms, the target
label, and the original value of every category along each axis.

Supported inputs (:func:`read_distribution` picks the reader from the file extension):

``.npy``
    A pmf array of shape ``(|S_1|, ..., |S_n|, |T|)``, ``2 <= n <= 4``.
``.csv``
    A header row of column names, then either

    - a table of **samples**: each row is one observation; values may be any strings or
      numbers.  Each column's distinct values are coded ``0 .. k-1`` in sorted order (numeric
      order when every value is a number, text order otherwise) and the plug-in pmf is
      estimated with :func:`infomorphic.estimate.plugin_pmf`; or
    - a table of **probabilities**: one column holds the probability of each row (see
      :data:`PROBABILITY_COLUMNS`); every row is a cell of the pmf, and rows with the same
      source and target values add up.
``.json``
    One of

    - a list of records (objects), with the same semantics as a CSV table;
    - ``{"columns": [...], "rows": [[...], ...]}``, also a table;
    - ``{"pmf": nested list, "sources": [labels, optional], "target": label (optional)}``.

Columns of a table that are neither sources, target nor the probability column are
marginalised out (summed over).  Every malformed input raises ``ValueError`` with a message
that says what is wrong and where; a file that cannot be opened raises ``OSError``.
Information quantities computed from these pmfs are in bits.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .estimate import plugin_pmf
from .pid.checks import SUM_TOLERANCE, check_pmf
from .pid.distributions import get as get_example
from .pid.lattice import DEFAULT_LETTERS, MAX_SOURCES, MIN_SOURCES, get_lattice

__all__ = [
    "Distribution",
    "PROBABILITY_COLUMNS",
    "SUPPORTED_SUFFIXES",
    "DEFAULT_TARGET",
    "read_distribution",
    "read_npy",
    "read_csv",
    "read_json",
    "distribution_from_pmf",
    "distribution_from_table",
    "example_distribution",
]

PROBABILITY_COLUMNS: tuple[str, ...] = ("p", "prob", "probability", "P", "mass")
"""Column names auto-detected as the probability column of a table (exact, case-sensitive)."""

SUPPORTED_SUFFIXES: tuple[str, ...] = (".npy", ".csv", ".json")
"""File extensions understood by :func:`read_distribution` (case-insensitive)."""

DEFAULT_TARGET = "T"
"""Target label used when the input does not name the target (pmf arrays, examples)."""

_PMF_KEYS = frozenset({"pmf", "sources", "target"})
_TABLE_KEYS = frozenset({"columns", "rows"})


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


def _check_names(names: Sequence[str] | None, n: int) -> Sequence[str] | None:
    if names is not None and len(names) != n:
        raise ValueError(
            f"got {len(names)} source labels {list(names)} for {n} sources; give exactly {n}"
        )
    return names


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


# --------------------------------------------------------------------------- builders
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
            raise ValueError(
                f"{w}: expected {len(cols)} values ({', '.join(cols)}), got {len(row)}"
            )

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
        labels = _check_labels(src, "the source column names; rename them or give source labels (CLI: --names)")

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


# --------------------------------------------------------------------------- readers
def _no_table_options(**options: object) -> None:
    given = [k for k, v in options.items() if v is not None]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ValueError(
            f"{flags} only apply to tables (.csv, or .json records/columns); "
            "a pmf array has its target on the last axis"
        )


def read_npy(path: str | os.PathLike[str], *, names: Sequence[str] | None = None,
             normalize: bool = False) -> Distribution:
    """Read a pmf array saved with :func:`numpy.save`.

    Parameters
    ----------
    path:
        A ``.npy`` file holding an array of shape ``(|S_1|, ..., |S_n|, |T|)``.
    names:
        Source labels; default ``F, C, L, M``.
    normalize:
        Rescale a pmf that does not sum to 1.

    Raises
    ------
    OSError
        If the file cannot be opened.
    ValueError
        If it is not a valid ``.npy`` file or not a valid pmf.
    """
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError) as exc:
        raise ValueError(f"not a valid .npy array file ({exc})") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError("not a single .npy array (an .npz archive?)")
    return distribution_from_pmf(arr, names=names, normalize=normalize)


def read_csv(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    sources: Sequence[str] | None = None,
    prob_column: str | None = None,
    names: Sequence[str] | None = None,
    normalize: bool = False,
) -> Distribution:
    """Read a comma-separated table with a header row (samples or probabilities).

    Blank lines are skipped; cells are stripped of surrounding white space.  See
    :func:`distribution_from_table` for the meaning of the options.

    Raises
    ------
    OSError
        If the file cannot be opened.
    ValueError
        If the file is not UTF-8 text, is not valid CSV, or the table is malformed.
    """
    header: list[str] | None = None
    rows: list[list[str]] = []
    where: list[str] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if header is None:
                    header = [cell.strip() for cell in row]
                else:
                    rows.append(row)
                    where.append(f"line {reader.line_num}")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ValueError(f"malformed CSV: {exc}") from None
    if header is None:
        raise ValueError("the file is empty (expected a header row of column names)")
    return distribution_from_table(
        header, rows, target=target, sources=sources, prob_column=prob_column,
        names=names, normalize=normalize, row_names=where,
    )


def _json_pmf(obj: Mapping[str, Any], names: Sequence[str] | None, normalize: bool) -> Distribution:
    labels = obj.get("sources")
    if labels is not None and (
        not isinstance(labels, list) or not all(isinstance(s, str) for s in labels)
    ):
        raise ValueError('"sources" must be a list of strings')
    target = obj.get("target", DEFAULT_TARGET)
    if not isinstance(target, str) or not target:
        raise ValueError('"target" must be a non-empty string')
    pmf = obj["pmf"]
    if not isinstance(pmf, list):
        raise ValueError('"pmf" must be a nested list of numbers')
    return distribution_from_pmf(
        pmf, names=names if names is not None else labels, target=target, normalize=normalize
    )


def read_json(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    sources: Sequence[str] | None = None,
    prob_column: str | None = None,
    names: Sequence[str] | None = None,
    normalize: bool = False,
) -> Distribution:
    """Read a JSON file: a list of records, a columns/rows table, or a pmf object.

    Forms
    -----
    ``[{"A": 0, "B": 1, "T": 1}, ...]``
        Records; the columns are the keys in order of first appearance.  Same semantics as CSV.
    ``{"columns": ["A", "B", "T"], "rows": [[0, 1, 1], ...]}``
        A table; same semantics as CSV.
    ``{"pmf": [[[...]]], "sources": ["A", "B"], "target": "T"}``
        A pmf array, target on the last axis; ``sources`` and ``target`` are optional labels
        (``names`` overrides ``sources``).

    Raises
    ------
    OSError
        If the file cannot be opened.
    ValueError
        If the file is not valid JSON or not one of the forms above, or the data is malformed.
    """
    try:
        with open(path, encoding="utf-8-sig") as fh:
            obj = json.load(fh)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    table = dict(target=target, sources=sources, prob_column=prob_column, names=names, normalize=normalize)
    forms = (
        'expected a list of records, {"columns": [...], "rows": [[...], ...]} '
        'or {"pmf": [...], "sources": [...], "target": "..."}'
    )
    if isinstance(obj, list):
        if not obj:
            raise ValueError("the list of records is empty")
        columns: dict[str, None] = {}
        for i, rec in enumerate(obj):
            if not isinstance(rec, dict):
                raise ValueError(f"record {i + 1} is a {type(rec).__name__}, not an object; {forms}")
            columns.update(dict.fromkeys(rec))
        cols = list(columns)
        rows: list[list[object]] = []
        for i, rec in enumerate(obj):
            absent = [c for c in cols if c not in rec]
            if absent:
                raise ValueError(
                    f"record {i + 1} lacks column(s) {', '.join(repr(a) for a in absent)}"
                )
            rows.append([rec[c] for c in cols])
        return distribution_from_table(
            cols, rows, row_names=[f"record {i + 1}" for i in range(len(rows))], **table  # type: ignore[arg-type]
        )
    if not isinstance(obj, dict):
        raise ValueError(f"the file holds a {type(obj).__name__}; {forms}")
    if "pmf" in obj:
        extra = sorted(set(obj) - _PMF_KEYS)
        if extra:
            raise ValueError(f"unexpected key(s) {', '.join(map(repr, extra))} next to \"pmf\"; {forms}")
        _no_table_options(target=target, sources=sources, prob_column=prob_column)
        return _json_pmf(obj, names, normalize)
    if "columns" in obj or "rows" in obj:
        extra = sorted(set(obj) - _TABLE_KEYS)
        if extra or not _TABLE_KEYS <= set(obj):
            raise ValueError(f'a table needs exactly the keys "columns" and "rows"; {forms}')
        cols_obj, rows_obj = obj["columns"], obj["rows"]
        if not isinstance(cols_obj, list) or not all(isinstance(c, str) for c in cols_obj):
            raise ValueError('"columns" must be a list of strings')
        if not isinstance(rows_obj, list):
            raise ValueError('"rows" must be a list of lists')
        return distribution_from_table(
            cols_obj, rows_obj, row_names=[f"row {i + 1}" for i in range(len(rows_obj))], **table  # type: ignore[arg-type]
        )
    raise ValueError(f"unrecognised JSON object with keys {', '.join(map(repr, obj)) or '(none)'}; {forms}")


def read_distribution(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    sources: Sequence[str] | None = None,
    prob_column: str | None = None,
    names: Sequence[str] | None = None,
    normalize: bool = False,
) -> Distribution:
    """Read a joint distribution from a ``.npy``, ``.csv`` or ``.json`` file.

    Parameters
    ----------
    path:
        The file; its extension (case-insensitive) selects the reader.
    target:
        Target column of a table; default the last non-probability column not in ``sources``.
    sources:
        Source columns of a table, in axis order; default all other non-probability columns.
    prob_column:
        Probability column of a table; default auto-detected from :data:`PROBABILITY_COLUMNS`.
    names:
        Source labels for atom names; default ``F, C, L, M`` for arrays, column names for tables.
    normalize:
        Rescale a pmf or probability column that does not sum to 1 instead of rejecting it.

    Returns
    -------
    Distribution
        pmf with the target on the last axis, ready for :func:`infomorphic.pid.sx_pid`
        (whose results are in bits).

    Raises
    ------
    OSError
        If the file cannot be opened or read.
    ValueError
        For an unsupported extension or malformed content; the message starts with the path.

    Examples
    --------
    >>> d = read_distribution("and.csv")  # doctest: +SKIP
    >>> d.sources, d.target, d.pmf.shape  # doctest: +SKIP
    (('A', 'B'), 'T', (2, 2, 2))
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported file type {p.suffix or '(no extension)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        if suffix == ".npy":
            _no_table_options(target=target, sources=sources, prob_column=prob_column)
            return read_npy(p, names=names, normalize=normalize)
        reader = read_csv if suffix == ".csv" else read_json
        return reader(
            p, target=target, sources=sources, prob_column=prob_column, names=names, normalize=normalize
        )
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
