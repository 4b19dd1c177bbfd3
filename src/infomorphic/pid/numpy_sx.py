"""Exact shared-exclusion PID (I^sx) in NumPy float64.

Makkeh, Gutknecht & Wibral, "Introducing a differentiable measure of pointwise shared
information", Phys. Rev. E 103, 032149 (2021).

For a realisation ``(s, t)`` and an antichain ``alpha = {a_1, ..., a_k}`` the event of
``alpha`` is ``E_alpha(s) = union_j {S_aj = s_aj}``.  The pointwise redundancy is

    i^sx(t : alpha) = log2 P(E_alpha(s), T=t) / (P(E_alpha(s)) P(T=t))
                    = i+ - i-,   i+ = -log2 P(E_alpha(s)),   i- = -log2 P(E_alpha(s) | T=t).

Union probabilities come from inclusion-exclusion over marginals of source subsets
(:attr:`Lattice.union_coeffs`).  Averages over ``p(s, t)`` are the redundancies; atoms
follow by Moebius inversion.  All values are in bits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .checks import SUM_TOLERANCE, check_pmf
from .lattice import Antichain, Lattice, get_lattice

__all__ = ["sx_pid", "SxPIDResult", "memory_estimate", "available_memory"]


@dataclass(frozen=True)
class SxPIDResult:
    """The I^sx decomposition of one joint pmf; every value in bits.

    Attributes
    ----------
    lattice:
        The redundancy lattice (defines the canonical atom order).
    atoms, informative_atoms, misinformative_atoms:
        Antichain -> partial information Pi (and its i+ / i- parts; Pi = Pi+ - Pi-).
    redundancies, informative_redundancies, misinformative_redundancies:
        Antichain -> I^sx redundancy (cumulative sum of the atoms below it).
    mutual_information:
        Source subset (sorted index tuple) -> I(T : S_A).
    target_entropy:
        H(T).
    residual_entropy:
        H(T | S_1, ..., S_n) = H(T) - I(T : S_1..S_n).
    local_redundancy, local_informative, local_misinformative:
        Arrays of shape ``(n_atoms, *pmf.shape)``: pointwise i^sx, i+ and i- of each cell;
        NaN at cells with zero probability.
    """

    lattice: Lattice
    atoms: dict[Antichain, float]
    informative_atoms: dict[Antichain, float]
    misinformative_atoms: dict[Antichain, float]
    redundancies: dict[Antichain, float]
    informative_redundancies: dict[Antichain, float]
    misinformative_redundancies: dict[Antichain, float]
    mutual_information: dict[tuple[int, ...], float]
    target_entropy: float
    residual_entropy: float
    local_redundancy: np.ndarray = field(repr=False)
    local_informative: np.ndarray = field(repr=False)
    local_misinformative: np.ndarray = field(repr=False)

    def atom_vector(self) -> np.ndarray:
        """Atoms as a float64 vector in canonical lattice order (bits)."""
        return np.array([self.atoms[a] for a in self.lattice.antichains])

    def named(self, letters: Sequence[str] | None = None) -> dict[str, float]:
        """Atoms keyed by readable name (``{F}{C}`` ...), in canonical order (bits)."""
        return {self.lattice.name(a, letters): v for a, v in self.atoms.items()}

    def to_dict(self, letters: Sequence[str] | None = None) -> dict[str, object]:
        """JSON-ready summary: atoms (with i+/i- parts), entropies and mutual informations."""
        lat = self.lattice
        labels = lat.letters(letters)
        return {
            "unit": "bits",
            "sources": list(labels),
            "atoms": [
                {
                    "name": lat.name(a, labels),
                    "antichain": [list(m) for m in a],
                    "value": self.atoms[a],
                    "informative": self.informative_atoms[a],
                    "misinformative": self.misinformative_atoms[a],
                    "redundancy": self.redundancies[a],
                }
                for a in lat.antichains
            ],
            "target_entropy": self.target_entropy,
            "residual_entropy": self.residual_entropy,
            "mutual_information": {
                "".join(labels[i] for i in s)
                if all(len(x) == 1 for x in labels)
                else ",".join(labels[i] for i in s): v
                for s, v in self.mutual_information.items()
            },
        }


def memory_estimate(shape: tuple[int, ...], n_cells: int) -> int:
    """Bytes :func:`sx_pid` allocates for a pmf of ``shape`` with ``n_cells`` non-zero cells.

    Per cell: the subset marginals with and without the target (2 x subsets) and six
    (cells x atoms) arrays of event probabilities and local values; per pmf cell: the three
    local-value arrays of the result (atoms x cells of the whole shape).  float64 throughout.
    """
    n = len(shape) - 1
    lat = get_lattice(n)
    size = int(np.prod(shape, dtype=np.int64))
    return 8 * (n_cells * (2 * len(lat.subsets) + 6 * len(lat)) + 3 * len(lat) * size)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: ``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def sx_pid(
    pmf: object,
    *,
    normalize: bool = False,
    tol: float = SUM_TOLERANCE,
    max_bytes: int | None = None,
    target: object = None,
    sources: Sequence[object] | None = None,
) -> SxPIDResult:
    """Exact I^sx decomposition of a discrete joint distribution.

    Parameters
    ----------
    pmf:
        The joint distribution of 2 to 4 sources and a target, as

        - an array-like of shape ``(|S_1|, ..., |S_n|, |T|)`` with ``2 <= n <= 4``, target on
          the LAST axis;
        - a :class:`dit.Distribution` (needs ``dit``): one axis per random variable, its values
          in the order of ``dist.alphabet``;
        - a :class:`pandas.DataFrame` of samples, one row per observation (needs ``pandas``):
          the plug-in pmf of the columns' values (each column's distinct values in sorted order);
        - an :class:`infomorphic.tables.Distribution`.

        See :mod:`infomorphic.pid.external`.
    target, sources:
        For a dit distribution or a DataFrame only: the target variable / column (a name or an
        index; default: the last one) and the sources in order (default: all others; variables
        that are neither are summed over).
    normalize:
        Rescale the pmf to sum to 1 instead of rejecting it.
    tol:
        Allowed deviation of the total mass from 1.
    max_bytes:
        Refuse (``ValueError`` with the estimate) a pmf whose decomposition would allocate more
        than this (default: the memory available now, see :func:`memory_estimate`).

    Returns
    -------
    SxPIDResult
        Atoms, redundancies, mutual informations and entropies, all in bits.

    Raises
    ------
    ValueError
        If the pmf is malformed (see :func:`infomorphic.pid.checks.check_pmf`), or ``target`` /
        ``sources`` do not name variables of a dit distribution or DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> xor = np.zeros((2, 2, 2)); xor[0, 0, 0] = xor[0, 1, 1] = xor[1, 0, 1] = xor[1, 1, 0] = 0.25
    >>> round(sx_pid(xor).atoms[((0, 1),)], 6)
    0.415037
    """
    from .external import as_pmf

    p = check_pmf(as_pmf(pmf, target=target, sources=sources), normalize=normalize, tol=tol)
    n = p.ndim - 1
    lat = get_lattice(n)
    n_cells = int(np.count_nonzero(p > 0))
    need = memory_estimate(p.shape, n_cells)
    limit = available_memory() if max_bytes is None else max_bytes
    if limit is not None and need > limit:
        raise ValueError(
            f"decomposing this pmf of shape {p.shape} ({n_cells:,} non-zero cells, {len(lat)} atoms) needs about "
            f"{need / 2**30:.1f} GiB of memory, more than the {limit / 2**30:.1f} GiB available; use fewer values "
            "per source (coarser bins) or fewer sources"
        )
    cells = np.nonzero(p > 0)
    mass = p[cells]
    p_t = p.sum(axis=tuple(range(n)))

    # Marginal probabilities of every source subset, with and without the target, at each cell.
    marg = np.empty((mass.size, len(lat.subsets)))
    marg_t = np.empty_like(marg)
    for k, subset in enumerate(lat.subsets):
        drop = tuple(i for i in range(n) if i not in subset)
        joint = p.sum(axis=drop, keepdims=True)
        marg_t[:, k] = np.broadcast_to(joint, p.shape)[cells]
        marg[:, k] = np.broadcast_to(joint.sum(axis=-1, keepdims=True), p.shape)[cells]
    coeffs = lat.union_coeffs.T.astype(np.float64)
    p_event = marg @ coeffs  # (cells, atoms): P(E_alpha(s))
    p_event_t = marg_t @ coeffs  # P(E_alpha(s), T = t)

    i_plus = -np.log2(p_event)
    i_minus = -np.log2(p_event_t / p_t[cells[-1]][:, None])
    local = np.log2(p_event_t / (p_event * p_t[cells[-1]][:, None]))

    red = mass @ local
    red_plus = mass @ i_plus
    red_minus = mass @ i_minus
    mob = lat.moebius.astype(np.float64)
    atoms, atoms_plus, atoms_minus = mob @ red, mob @ red_plus, mob @ red_minus

    h_t = float(-np.sum(p_t[p_t > 0] * np.log2(p_t[p_t > 0])))
    mi_top = float(red[lat.index(lat.top)])

    def scatter(values: np.ndarray) -> np.ndarray:
        out = np.full((len(lat),) + p.shape, np.nan)
        out[(slice(None),) + cells] = values.T
        return out

    def keyed(values: np.ndarray) -> dict[Antichain, float]:
        return {a: float(v) for a, v in zip(lat.antichains, values)}

    return SxPIDResult(
        lattice=lat,
        atoms=keyed(atoms),
        informative_atoms=keyed(atoms_plus),
        misinformative_atoms=keyed(atoms_minus),
        redundancies=keyed(red),
        informative_redundancies=keyed(red_plus),
        misinformative_redundancies=keyed(red_minus),
        mutual_information={s: float(red[lat.index((s,))]) for s in lat.subsets},
        target_entropy=h_t,
        residual_entropy=h_t - mi_top,
        local_redundancy=scatter(local),
        local_informative=scatter(i_plus),
        local_misinformative=scatter(i_minus),
    )
