"""A trust region for the Gaussian-process sampler: propose goals only near the best one so far.

Bayesian optimisation by expected improvement over the whole range of 18 gammas sends most
proposals to the range's corners (measured on the 50-epoch MNIST search: 62 % of the proposed
gammas at +-1), far past the region where the model's slope was measured.  A trust region
(Eriksson et al. 2019, "Scalable global optimization via local Bayesian optimization", TuRBO)
keeps the model global (it is fitted on every complete trial) but maximises the acquisition
only inside a box ``[c - r, c + r]`` per gamma around the best complete trial ``c``; the box
grows after repeated improvements and shrinks after repeated failures.

The radius is not state kept by a process: :func:`trust_region` replays the study's complete
trials in the order of their numbers, so a killed and resumed search, and every worker process,
compute the same box from the same stored trials.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SUCCESS_STREAK", "RESTART_FACTOR", "TrustRegion", "TrialPoint", "trust_region"]

SUCCESS_STREAK = 3
"""Improvements in a row after which the radius doubles (TuRBO's tau_succ)."""
RESTART_FACTOR = 8.0
"""The radius starts again at its initial value when it has shrunk below initial / this."""


@dataclass(frozen=True)
class TrialPoint:
    """What the trust region needs of one complete trial.

    Attributes
    ----------
    number:
        The trial's number in its study.
    value:
        Its objective (larger is better; validation accuracy, a fraction).
    params:
        Its searched gammas.
    warm:
        True for a trial copied from an earlier search (``--warm-start``): it can be the centre
        but does not count as a success or failure of this search's proposals.
    """

    number: int
    value: float
    params: Mapping[str, float]
    warm: bool = False


@dataclass(frozen=True)
class TrustRegion:
    """The box the next proposal is drawn from.

    Attributes
    ----------
    center:
        The best complete trial's searched gammas.
    center_trial:
        Its number.
    radius:
        Half the box's width per gamma, in gamma units.
    successes, failures:
        The current streaks of proposals that did / did not beat the best before them.
    """

    center: Mapping[str, float]
    center_trial: int
    radius: float
    successes: int
    failures: int

    def record(self) -> dict[str, float | int]:
        """JSON-ready: ``center_trial``, ``radius``, ``successes``, ``failures``."""
        return {
            "center_trial": self.center_trial,
            "radius": self.radius,
            "successes": self.successes,
            "failures": self.failures,
        }

    def bounds(self, name: str, low: float, high: float) -> tuple[float, float]:
        """The box's interval for gamma ``name``, cut to the search range ``[low, high]``."""
        c = float(self.center[name])
        return max(low, c - self.radius), min(high, c + self.radius)


def trust_region(
    trials: Sequence[TrialPoint], radius0: float, *, width: float, failure_streak: int
) -> TrustRegion | None:
    """The trust region after ``trials`` (complete ones; any order: they are replayed by number).

    Rules (TuRBO's, with the search's own trials only): a trial that beats the best value before
    it is a success, any other a failure; after :data:`SUCCESS_STREAK` successes in a row the
    radius doubles (at most ``width``, the search range's width, where the box covers the whole
    range), after ``failure_streak`` failures in a row it halves, and once it is below
    ``radius0 / RESTART_FACTOR`` it starts again at ``radius0``.  Warm-start trials only set the
    best value the first proposal must beat.  The centre is the best trial (on a tie the one
    replayed first: warm-start trials, then by number).

    Returns None when there is no complete trial yet (nothing to centre on).
    """
    if radius0 <= 0 or width <= 0 or failure_streak < 1:
        raise ValueError(
            f"radius0 and width must be > 0 and failure_streak >= 1, got {radius0}, {width}, {failure_streak}"
        )
    ordered = sorted(trials, key=lambda t: (not t.warm, t.number))
    if not ordered:
        return None
    radius, successes, failures = float(radius0), 0, 0
    best: TrialPoint | None = None
    for t in ordered:
        if best is None or t.warm:
            if best is None or t.value > best.value:
                best = t
            continue
        if t.value > best.value:
            best, successes, failures = t, successes + 1, 0
        else:
            successes, failures = 0, failures + 1
        if successes == SUCCESS_STREAK:
            radius, successes = min(2 * radius, width), 0
        elif failures == failure_streak:
            radius, failures = radius / 2, 0
            if radius < radius0 / RESTART_FACTOR:
                radius = float(radius0)
    assert best is not None
    return TrustRegion(dict(best.params), best.number, radius, successes, failures)
