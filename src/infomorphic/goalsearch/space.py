"""The search space of goal parameters: which gammas are searched, their bounds, the rest fixed.

Parameters are named by atom (``"{F}{C}"``, ``"{FC}{FL}"``, ...) and ``H_res``, as in goal
expressions, so a study's ``best_params`` read like a goal and
``optuna.trial.FixedTrial(best_params)`` replays the same goal through :meth:`GoalSpace.suggest`.

Schneider et al. 2025 (arXiv:2412.02482), section 3 and appendix A.10: every gamma in [-1, 1]; TPE over
all 19 trivariate parameters, CMA-ES with ``H_res`` fixed at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..goals import H_RES, Goal, paper_order

__all__ = ["GoalSpace"]


@dataclass(frozen=True)
class GoalSpace:
    """Which gammas of a layer's goal are searched, in which range, and what the others are.

    Attributes
    ----------
    sources:
        Source labels of the layer, ``"FCL"`` (trivariate hidden layer) or ``"FC"``.
    params:
        Searched names (canonical atom names and/or ``H_res``) in the papers' order.
    low, high:
        Bounds of every searched gamma.
    base:
        Goal giving the value of every parameter that is not searched (default: all zero).
    """

    sources: tuple[str, ...] = ("F", "C", "L")
    params: tuple[str, ...] = ()
    low: float = -1.0
    high: float = 1.0
    base: Goal = field(default_factory=lambda: Goal(("F", "C", "L"), {}))

    @classmethod
    def build(
        cls,
        sources: Sequence[str] = "FCL",
        atoms: Sequence[str] | None = None,
        *,
        fix_hres: bool = False,
        base: Goal | None = None,
        low: float = -1.0,
        high: float = 1.0,
    ) -> GoalSpace:
        """A space over ``atoms`` (default: every atom and ``H_res``).

        ``fix_hres`` keeps ``H_res`` at its base value (0 by default) and out of the search.

        Raises
        ------
        ValueError
            For unknown atom names, an empty space, or ``low >= high``.
        """
        labels = tuple(sources)
        if not low < high:
            raise ValueError(f"the gamma range needs low < high, got [{low}, {high}]")
        order = (*paper_order(labels), H_RES)
        probe = Goal(labels, {})
        if atoms is None:
            chosen = set(order)
        else:
            chosen = {probe.canonical(name) for name in atoms}  # ValueError listing the valid names
        if fix_hres:
            chosen.discard(H_RES)
        params = tuple(n for n in order if n in chosen)
        if not params:
            raise ValueError("the search space is empty: choose at least one atom (H_res is fixed)")
        base_goal = Goal(labels, {}) if base is None else base.with_sources(labels)
        return cls(labels, params, float(low), float(high), base_goal)

    def suggest(self, trial: Any) -> Goal:
        """The goal a trial proposes: ``trial.suggest_float(name, low, high)`` for each parameter.

        Works with any optuna trial, including ``FixedTrial(params)`` for a replay.
        """
        values = {name: trial.suggest_float(name, self.low, self.high) for name in self.params}
        return self.goal(values)

    def goal(self, params: Mapping[str, float]) -> Goal:
        """The goal for a mapping of parameter values (e.g. ``study.best_params``)."""
        missing = [n for n in self.params if n not in params]
        if missing:
            raise ValueError(f"parameters missing for the goal: {missing}")
        return self.base.with_gamma({n: float(params[n]) for n in self.params})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (stored in the study's user attributes)."""
        return {
            "sources": "".join(self.sources),
            "params": list(self.params),
            "low": self.low,
            "high": self.high,
            "base": self.base.to_expression(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GoalSpace:
        sources = tuple(data["sources"])
        base = Goal.parse(data["base"], sources)
        return cls(sources, tuple(data["params"]), float(data["low"]), float(data["high"]), base)
