"""Storkey's (1997) incremental rule written out element by element: the tests' independent reference."""

from __future__ import annotations

import numpy as np


def storkey_step(w: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """One pattern ``xi`` added to ``W`` (``(N, N)``, zero diagonal) by the published formula, with loops.

    ``w_ij += (xi_i xi_j - xi_i h_ji - h_ij xi_j) / N`` for ``i != j``, with the local fields
    ``h_ij = sum_{k != i, j} w_ik xi_k``.
    """
    n = len(xi)
    new = w.copy()
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            h_ij = sum(w[i, k] * xi[k] for k in range(n) if k not in (i, j))
            h_ji = sum(w[j, k] * xi[k] for k in range(n) if k not in (i, j))
            new[i, j] = w[i, j] + (xi[i] * xi[j] - xi[i] * h_ji - h_ij * xi[j]) / n
    return new
