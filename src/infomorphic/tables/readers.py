"""Reading joint distributions from ``.npy``, ``.csv`` and ``.json`` files.

:func:`read_distribution` picks the reader from the file extension (:data:`SUPPORTED_SUFFIXES`):
:func:`read_npy` for pmf arrays, :func:`read_csv` for tables, :func:`read_json` for records,
columns/rows tables or pmf objects.  Every malformed input raises ``ValueError`` with a message
that says what is wrong and where; a file that cannot be opened raises ``OSError``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .distribution import DEFAULT_TARGET, Distribution, distribution_from_pmf
from .table import distribution_from_table

__all__ = ["SUPPORTED_SUFFIXES", "read_distribution", "read_npy", "read_csv", "read_json"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (".npy", ".csv", ".json")
"""File extensions understood by :func:`read_distribution` (case-insensitive)."""

_PMF_KEYS = frozenset({"pmf", "sources", "target"})
_TABLE_KEYS = frozenset({"columns", "rows"})


def _no_table_options(**options: object) -> None:
    given = [k for k, v in options.items() if v is not None]
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ValueError(
            f"{flags} only apply to tables (.csv, or .json records/columns); "
            "a pmf array has its target on the last axis"
        )


def read_npy(
    path: str | os.PathLike[str], *, names: Sequence[str] | None = None, normalize: bool = False
) -> Distribution:
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
        header,
        rows,
        target=target,
        sources=sources,
        prob_column=prob_column,
        names=names,
        normalize=normalize,
        row_names=where,
    )


def _json_pmf(obj: Mapping[str, Any], names: Sequence[str] | None, normalize: bool) -> Distribution:
    labels = obj.get("sources")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(s, str) for s in labels)):
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
                raise ValueError(f"record {i + 1} lacks column(s) {', '.join(repr(a) for a in absent)}")
            rows.append([rec[c] for c in cols])
        return distribution_from_table(
            cols,
            rows,
            row_names=[f"record {i + 1}" for i in range(len(rows))],
            **table,  # type: ignore[arg-type]
        )
    if not isinstance(obj, dict):
        raise ValueError(f"the file holds a {type(obj).__name__}; {forms}")
    if "pmf" in obj:
        extra = sorted(set(obj) - _PMF_KEYS)
        if extra:
            raise ValueError(f'unexpected key(s) {", ".join(map(repr, extra))} next to "pmf"; {forms}')
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
            cols_obj,
            rows_obj,
            row_names=[f"row {i + 1}" for i in range(len(rows_obj))],
            **table,  # type: ignore[arg-type]
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
