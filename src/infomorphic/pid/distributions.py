"""A catalogue of canonical joint distributions for PID, shared by tests, docs and the CLI.

Each entry is a pmf of shape ``(|S_1|, ..., |S_n|, |T|)`` (target last) with uniform,
independent binary sources unless stated.  Expected I^sx atoms (bits), worked out by hand from
the definition of Makkeh, Gutknecht & Wibral (2021) and checked against dit's ``PID_SX``, are
in ``tests/pid/test_numpy_sx.py``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

__all__ = ["from_function", "CATALOGUE", "DESCRIPTIONS", "get"]


def from_function(fn: Callable[..., int], n_sources: int, n_target: int, arity: int = 2) -> np.ndarray:
    """pmf of ``T = fn(S_1, ..., S_n)`` with i.i.d. uniform sources over ``range(arity)``."""
    p = np.zeros((arity,) * n_sources + (n_target,))
    for s in itertools.product(range(arity), repeat=n_sources):
        p[s + (fn(*s),)] += arity**-n_sources
    return p


CATALOGUE: dict[str, Callable[[], np.ndarray]] = {
    "xor": lambda: from_function(lambda a, b: a ^ b, 2, 2),
    "and": lambda: from_function(lambda a, b: a & b, 2, 2),
    "unq": lambda: from_function(lambda a, b: a, 2, 2),
    "rdn": lambda: np.array([[[0.5, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.5]]]),
    "copy": lambda: from_function(lambda a, b: 2 * a + b, 2, 4),
    "sum": lambda: from_function(lambda a, b: a + b, 2, 3),
    "xor3": lambda: from_function(lambda a, b, c: a ^ b ^ c, 3, 2),
    "and3": lambda: from_function(lambda a, b, c: a & b & c, 3, 2),
    "rdn3": lambda: np.einsum("i,ij,ik,il->ijkl", [0.5, 0.5], np.eye(2), np.eye(2), np.eye(2)),
    "xor4": lambda: from_function(lambda a, b, c, d: a ^ b ^ c ^ d, 4, 2),
}

DESCRIPTIONS: dict[str, str] = {
    "xor": "T = S1 XOR S2: pure synergy in mutual information, with negative redundancy under I^sx",
    "and": "T = S1 AND S2: redundancy and synergy together",
    "unq": "T = S1: unique information of S1 (I^sx gives U2 < 0 and Red > 0)",
    "rdn": "S1 = S2 = T, one fair bit: pure redundancy",
    "copy": "T = (S1, S2): two bits, one from each source",
    "sum": "T = S1 + S2 (three values)",
    "xor3": "T = S1 XOR S2 XOR S3 (three-bit parity)",
    "and3": "T = S1 AND S2 AND S3",
    "rdn3": "S1 = S2 = S3 = T, one fair bit: pure three-way redundancy",
    "xor4": "T = parity of four bits",
}


def get(name: str) -> np.ndarray:
    """A fresh copy of the named distribution; ``ValueError`` lists the names if unknown."""
    try:
        return CATALOGUE[name]()
    except KeyError:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(CATALOGUE)}") from None
