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

The work is split into :mod:`.distribution` (the :class:`Distribution` type, pmf arrays and
the catalogue examples), :mod:`.table` (tables of samples or probabilities) and :mod:`.readers`
(the file formats); this package re-exports their public names.
"""

from __future__ import annotations

from .distribution import DEFAULT_TARGET, Distribution, distribution_from_pmf, example_distribution
from .readers import SUPPORTED_SUFFIXES, read_csv, read_distribution, read_json, read_npy
from .table import PROBABILITY_COLUMNS, distribution_from_table

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
