"""Regenerate ``dit_reference.json``: I^sx atoms computed by dit's ``PID_SX``, the oracle.

Run from the repository root (dit 2.3 must be installed, ``pip install -e .[test]``)::

    python tests/pid/make_dit_reference.py            # writes tests/pid/dit_reference.json
    python tests/pid/make_dit_reference.py --check    # regenerate in memory, diff against the file

This module is a script, never collected by pytest (its name does not start with ``test_``).
Nothing here calls ``infomorphic``'s PID engine: the pmfs come from the shared catalogue
(:mod:`infomorphic.pid.distributions`) and a seeded NumPy generator, the numbers from dit alone.

How a pmf becomes a dit distribution
------------------------------------
Our pmf has shape ``(|S_1|, ..., |S_n|, |T|)``, target on the last axis.  The dit distribution
is built from the outcome tuples ``(s_1, ..., s_n, t)`` with nonzero probability, so dit's
random variable ``v`` is axis ``v`` of the array.  ``PID_SX`` gets ``sources=[[0], ..., [n-1]]``
and ``target=[n]``.  dit keys its lattice nodes as tuples of tuples of *variable* indices
(e.g. ``((0,), (1, 2))``); each is mapped back to our antichain form through the explicit
map variable -> source index (:data:`SOURCE_OF_VARIABLE`), members sorted by (size, indices).

Atoms are ``pid.get_pi(node)`` and redundancies ``pid.get_red(node)``.  dit exposes the
informative / misinformative parts only pointwise (``pointwise=True``:
``get_pw_pi_plus(node)[outcome]``, ``get_pw_pi_minus``); this script averages them with the
outcome probabilities ``d[outcome]`` to obtain the averaged Pi+ and Pi-.

Speed
-----
dit 2.3's ``Distribution.outcomes`` is a property that rebuilds the outcome tuple from the xarray
coordinates on every access, and ``isx._prob_union`` reads it inside its innermost loop, so a
4-source pmf with ~24 nonzero cells would take over an hour (estimated from 3-source timings).
By default this script memoises that property (keyed on the instance and its array contents,
so it cannot serve a stale value) -- a pure speed-up that changes no arithmetic.  To show that,
every 2-source case and every 3-source case with at most 8 nonzero cells is also computed with
unpatched dit and must agree *bit for bit*.
``--no-cache`` runs everything unpatched (expect hours for the 4-source cases).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dit
import numpy as np
from dit.pid import PID_SX

from infomorphic.pid.distributions import get as catalogue_pmf

SEED = 20210315
OUTPUT = Path(__file__).with_name("dit_reference.json")
#: Tolerance for the script's own sanity checks of dit's output (not the test tolerance).
SELF_CHECK_TOL = 1e-9


def SOURCE_OF_VARIABLE(n_sources: int) -> dict[int, int]:
    """dit random-variable index -> our 0-based source index (variables 0..n-1 are the sources)."""
    return {v: v for v in range(n_sources)}


# ----------------------------------------------------------------------------- the pmfs
def random_pmf(rng: np.random.Generator, shape: tuple[int, ...], zero_fraction: float = 0.0) -> np.ndarray:
    """Dirichlet(1) pmf over ``shape``; optionally a fraction of cells set to exactly 0, renormalised."""
    p = rng.dirichlet(np.ones(math.prod(shape)))
    n_zero = int(round(zero_fraction * p.size))
    if n_zero:
        p[rng.choice(p.size, size=n_zero, replace=False)] = 0.0
        p = p / p.sum()
    return p.reshape(shape)


def build_cases() -> list[tuple[str, np.ndarray]]:
    """All reference pmfs, in a fixed order, from a fixed seed."""
    rng = np.random.default_rng(SEED)
    cases = [(name, catalogue_pmf(name)) for name in ("xor", "and", "unq", "rdn", "copy", "sum")]
    cases += [(name, catalogue_pmf(name)) for name in ("xor3", "and3", "rdn3")]
    specs = [
        ("random2_222", (2, 2, 2), 0.0),
        ("random2_222_zeros", (2, 2, 2), 0.25),
        ("random2_322_zeros", (3, 2, 2), 0.25),
        ("random2_233_zeros", (2, 3, 3), 0.3),
        ("random2_432_zeros", (4, 3, 2), 0.4),
        ("random3_2222", (2, 2, 2, 2), 0.0),
        ("random3_3222_zeros", (3, 2, 2, 2), 0.3),
        ("random3_2223_zeros", (2, 2, 2, 3), 0.3),
        ("random3_2232_sparse", (2, 2, 3, 2), 0.7),
        ("random4_22222_zeros", (2, 2, 2, 2, 2), 0.25),
        ("random4_32223_sparse", (3, 2, 2, 2, 3), 0.8),
    ]
    for name, shape, zero_fraction in specs:
        cases.append((name, random_pmf(rng, shape, zero_fraction)))
    return cases


# ------------------------------------------------------------------------------ dit glue
def to_dit(pmf: np.ndarray) -> dit.Distribution:
    """dit distribution over ``(s_1, ..., s_n, t)`` from the nonzero cells of ``pmf`` (C order)."""
    outcomes, probs = [], []
    for idx in itertools.product(*(range(k) for k in pmf.shape)):
        if pmf[idx] > 0:
            outcomes.append(tuple(int(i) for i in idx))
            probs.append(float(pmf[idx]))
    return dit.Distribution(outcomes, probs)


def to_ours(node: tuple[tuple[int, ...], ...], n_sources: int) -> list[list[int]]:
    """dit lattice node (tuple of tuples of variable indices) -> our antichain, as lists."""
    src = SOURCE_OF_VARIABLE(n_sources)
    members = [tuple(sorted(src[v] for v in member)) for member in node]
    return [list(m) for m in sorted(members, key=lambda m: (len(m), m))]


@contextlib.contextmanager
def memoised_outcomes() -> Iterator[None]:
    """Temporarily memoise ``dit.Distribution.outcomes`` (speed only; see the module docstring)."""
    cls = dit.Distribution
    original = cls.__dict__["outcomes"]
    attr = "_make_dit_reference_outcomes_memo"

    def outcomes(self):  # type: ignore[no-untyped-def]
        values = np.asarray(self.data.values)
        key = (
            self._sparse,
            self._unwrap_scalar,
            tuple(self.data.dims),
            values.dtype.str,
            values.shape,
            values.tobytes(),
        )
        memo = self.__dict__.get(attr)
        if memo is None or memo[0] != key:
            memo = (key, original.fget(self))
            self.__dict__[attr] = memo
        return memo[1]

    cls.outcomes = property(outcomes, original.fset, original.fdel, original.__doc__)
    try:
        yield
    finally:
        cls.outcomes = original


def dit_pid(pmf: np.ndarray) -> dict[str, object]:
    """Run dit's PID_SX on ``pmf`` and return the JSON-ready atoms (our antichain form)."""
    n = pmf.ndim - 1
    d = to_dit(pmf)
    pid = PID_SX(d, sources=[[v] for v in range(n)], target=[n], pointwise=True)
    weights = {o: float(d[o]) for o in d.outcomes}
    atoms = []
    for node in pid._lattice:
        plus = sum(weights[o] * v for o, v in pid.get_pw_pi_plus(node).items())
        minus = sum(weights[o] * v for o, v in pid.get_pw_pi_minus(node).items())
        value = float(pid.get_pi(node))
        if not abs((plus - minus) - value) < SELF_CHECK_TOL:
            raise RuntimeError(f"dit's Pi+ - Pi- differs from Pi at {node}: {plus - minus} vs {value}")
        atoms.append(
            {
                "antichain": to_ours(node, n),
                "dit_node": [list(m) for m in node],
                "value": value,
                "informative": float(plus),
                "misinformative": float(minus),
                "redundancy": float(pid.get_red(node)),
            }
        )
    atoms.sort(key=lambda a: (len(a["antichain"]), a["antichain"]))
    expected_count = {2: 4, 3: 18, 4: 166}[n]
    if len(atoms) != expected_count or len({json.dumps(a["antichain"]) for a in atoms}) != expected_count:
        raise RuntimeError(f"dit's lattice for {n} sources has {len(atoms)} nodes, expected {expected_count}")
    return {"atoms": atoms, "mutual_information": float(pid._total), "n_outcomes": len(d.outcomes)}


def cross_check_unpatched(name: str, pmf: np.ndarray, cached: dict[str, object]) -> bool:
    """Recompute with unpatched dit and require bit-identical atoms; False if skipped as too slow."""
    n_nonzero = int(np.count_nonzero(pmf))
    if not (pmf.ndim - 1 == 2 or (pmf.ndim - 1 == 3 and n_nonzero <= 8)):
        return False
    plain = dit_pid(pmf)
    for a, b in zip(plain["atoms"], cached["atoms"]):
        if a != b:
            raise RuntimeError(f"{name}: memoised dit differs from plain dit: {a} vs {b}")
    return True


# ---------------------------------------------------------------------------------- main
def generate(use_cache: bool = True) -> dict[str, object]:
    records = []
    total_start = time.perf_counter()
    for name, pmf in build_cases():
        pmf = np.asarray(pmf, dtype=np.float64)
        start = time.perf_counter()
        with memoised_outcomes() if use_cache else contextlib.nullcontext():
            result = dit_pid(pmf)
        elapsed = time.perf_counter() - start
        checked = use_cache and cross_check_unpatched(name, pmf, result)
        print(
            f"{name:24s} shape={str(pmf.shape):18s} nonzero={np.count_nonzero(pmf):3d}/{pmf.size:<3d} "
            f"dit {elapsed:7.2f} s{'  (= unpatched dit, bit for bit)' if checked else ''}",
            flush=True,
        )
        records.append(
            {
                "name": name,
                "n_sources": pmf.ndim - 1,
                "shape": list(pmf.shape),
                "pmf": pmf.tolist(),  # json writes floats with repr: exact round trip
                **result,
            }
        )
    print(f"total {time.perf_counter() - total_start:.1f} s", flush=True)
    return {
        "description": (
            "I^sx atoms (bits) from dit.pid.PID_SX, the independent oracle for infomorphic.pid.sx_pid. "
            "pmf axes: sources in order, target last. 'antichain': our 0-based source-index form; "
            "'dit_node': dit's node (variable indices; variable v = axis v). 'informative' / "
            "'misinformative': dit's pointwise Pi+/Pi- averaged over the pmf by the generating script. "
            "'mutual_information': dit's I(T : all sources)."
        ),
        "generated_by": "tests/pid/make_dit_reference.py",
        "dit_version": dit.__version__,
        "numpy_version": np.__version__,
        "seed": SEED,
        "units": "bits",
        "outcomes_memoised": use_cache,
        "cases": records,
    }


def dumps(reference: dict[str, object]) -> str:
    """Plain JSON, one line per atom and per pmf (floats written with repr: exact round trip)."""
    cases = reference["cases"]
    lines = ["{"]
    lines += [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in reference.items() if k != "cases"]
    lines.append(' "cases": [')
    for i, case in enumerate(cases):
        lines.append("  {")
        lines += [f"   {json.dumps(k)}: {json.dumps(v)}," for k, v in case.items() if k != "atoms"]
        lines.append('   "atoms": [')
        atoms = case["atoms"]
        lines += [f"    {json.dumps(a)}{',' if j < len(atoms) - 1 else ''}" for j, a in enumerate(atoms)]
        lines.append("   ]")
        lines.append("  }" + ("," if i < len(cases) - 1 else ""))
    lines += [" ]", "}"]
    text = "\n".join(lines) + "\n"
    if json.loads(text) != reference:
        raise RuntimeError("the JSON writer does not round-trip")  # pragma: no cover
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-cache", action="store_true", help="run dit unpatched (very slow for n=4)")
    parser.add_argument("--check", action="store_true", help="compare with the existing file, write nothing")
    args = parser.parse_args(argv)
    reference = generate(use_cache=not args.no_cache)
    text = dumps(reference)
    if args.check:
        old = json.loads(args.output.read_text())
        same = old["cases"] == reference["cases"]
        print("identical to", args.output if same else f"DIFFERENT from {args.output}")
        return 0 if same else 1
    args.output.write_text(text)
    print(f"wrote {args.output} ({len(text) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
