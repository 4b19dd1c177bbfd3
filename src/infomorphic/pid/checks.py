"""Validation of joint probability mass functions given to the PID engine."""

from __future__ import annotations

import numpy as np

from .lattice import MAX_SOURCES, MIN_SOURCES

__all__ = ["check_pmf", "check_n_sources", "SUM_TOLERANCE"]

SUM_TOLERANCE = 1e-6


def check_n_sources(n: int) -> None:
    """Raise ``ValueError`` unless ``MIN_SOURCES <= n <= MAX_SOURCES``."""
    if n < MIN_SOURCES:
        raise ValueError(
            f"a PID needs at least {MIN_SOURCES} sources, got {n}: give a pmf of shape "
            "(|S_1|, ..., |S_n|, |T|) with the target on the last axis"
        )
    if n > MAX_SOURCES:
        raise ValueError(f"at most {MAX_SOURCES} sources are supported, got {n}")


def check_pmf(pmf: object, *, normalize: bool = False, tol: float = SUM_TOLERANCE) -> np.ndarray:
    """Return ``pmf`` as a validated float64 array that sums to 1.

    Parameters
    ----------
    pmf:
        Array-like of shape ``(|S_1|, ..., |S_n|, |T|)``, target on the last axis.
    normalize:
        Rescale a non-negative array with positive total to sum to 1 instead of
        rejecting a total that differs from 1 by more than ``tol``.
    tol:
        Allowed absolute deviation of the total from 1.

    Raises
    ------
    ValueError
        For non-numeric input, fewer than 2 or more than 4 sources, an empty axis,
        NaN/inf or negative mass, or a total different from 1.
    """
    try:
        p = np.asarray(pmf, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the pmf must be a numeric array: {exc}") from None
    check_n_sources(p.ndim - 1)
    if p.size == 0 or min(p.shape) == 0:
        raise ValueError(f"the pmf has an empty axis: shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"the pmf contains {int(np.sum(~np.isfinite(p)))} NaN or infinite entries")
    if np.any(p < 0):
        raise ValueError(f"the pmf has negative mass (minimum {p.min():.3g}); probabilities must be >= 0")
    total = float(p.sum())
    if normalize:
        if total <= 0:
            raise ValueError("the pmf has zero total mass and cannot be normalised")
        return p / total
    if abs(total - 1.0) > tol:
        raise ValueError(
            f"the pmf sums to {total:.9g}, not 1 (tolerance {tol:g}); pass normalize=True "
            "(CLI: --normalize) to rescale it"
        )
    return p
