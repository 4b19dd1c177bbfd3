"""Goal search for the associative memory (issue 13, part 3): the memory neuron's bivariate goal.

A memory neuron (:mod:`infomorphic.tasks.memory`) has the sources ``T`` (external input, the
pattern) and ``R`` (recurrent input); its goal has 5 gammas, the atoms ``{T}{R}``, ``{T}``,
``{R}``, ``{TR}`` and ``H_res`` (default goal: the redundancy ``{T}{R}``).  The search runs on the
same machinery as the network goal search (:mod:`.search`: the study and its stored settings,
:class:`~.search.TrialSeededSampler`, SQLite or ``postgresql://`` storage, worker processes,
crash detection and re-queueing, ``infomorphic search status``); only the settings
(:class:`MemorySearchSettings`, stored with ``"task": "memory"``) and the objective differ.

**Objective (a proxy of the capacity alpha_c).**  For every seed of ``seeds`` (default one,
seed 0) the largest load ``alpha`` of the grid ``loads`` (default 0.51, 0.56, ..., 2.01: the
points of ``infomorphic capacity``'s default grid from 0.51 on, 31 loads) at which a fresh
memory with the trial's goal recalls its patterns, i.e. the capacity harness's rule: one grid
point is :func:`infomorphic.tasks.capacity.run_point` (the same patterns, initialisation and
training as ``infomorphic capacity``), and it succeeds when the mean overlap after recall from
the clean patterns is ``>= threshold`` (0.95).  The value of a trial is the mean over seeds;
0.0 for a seed whose lowest load already fails.  The grid is searched by *bisection*: first the
lowest load (a goal that stores nothing costs one training), then the middle of the loads not
yet decided, halving until the largest recalled load is known: 6 trainings for 31 loads.  This
assumes that success falls with the load; where it does not (a failure below a success), the
proxy can be lower than the harness's alpha_c (the largest successful load of the whole grid).
All memory hyperparameters are :class:`~infomorphic.tasks.memory.MemoryConfig`'s (``--set``
overrides them); its ``goal``, ``alpha`` and ``seed`` are the trial's goal and each probe's
load and seed.

**Pruning.**  After every probe (step ``k``: the ``k``-th probe of each seed, step 0 the lowest
load) the trial reports the mean over seeds of the largest load recalled so far (the lower bound
of its value) and is pruned (optuna's ``MedianPruner``, after 5 completed trials) when that is
below the median of the completed trials at the same step.  With one seed every trial bisects the
same grid, so after ``k`` probes the loads still possible for two trials are equal or disjoint:
a trial whose lower bound is below another's at the same step ends below that trial, and a
pruned trial is certainly worse than half of the completed trials that got that far.

**Cost** at N = 100 (measured with :func:`capacity_proxy`, the defaults above, seed 0, one torch
thread, on a 2-core CPU busy with other work): the redundancy ``{T}{R}`` 41 CPU s (value 1.61,
6 trainings: 0.51, 1.26, 1.66 failed, 1.46, 1.56, 1.61; 10575 epochs);
``0.3*{T}{R} + 0.5*{T} - 0.2*{R} + 0.1*{TR} - 0.4*H_res`` 93 CPU s (value 1.66; its three
failed probes ran the full 5000 epochs, 19-27 CPU s each).  Loads well below the capacity stop
after 25-150 epochs (< 1 CPU s), probes near it take 2000-5000 epochs (8-27 CPU s); a goal that
fails the lowest load costs one such training.  So a trial costs about 0.01-0.03 CPU hours, and
1000 trials 10-25 CPU hours before pruning.

Each trial stores the user attributes ``goal`` (expression), ``probes`` (one record per
training: ``seed``, ``alpha``, ``n_patterns``, ``score``, ``recalled``, ``epochs``,
``stopped``, ``cpu_seconds``), ``capacity_per_seed``, ``epochs`` (summed) and ``cpu_seconds``
(of the trial's process), updated after every probe.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..goals import Goal
from .space import GoalSpace
from .stopping import StopRequests

if TYPE_CHECKING:
    from ..tasks.memory import MemoryConfig

__all__ = [
    "MemorySearchSettings",
    "DEFAULT_LOADS",
    "capacity_proxy",
    "make_memory_objective",
    "memory_space",
    "parse_loads",
]

DEFAULT_LOADS: tuple[float, ...] = tuple(round(0.51 + 0.05 * i, 6) for i in range(31))
"""0.51, 0.56, ..., 2.01: the points of ``infomorphic capacity``'s default grid from 0.51 on."""
MEMORY_SOURCES = "TR"
"""Source letters of a memory neuron: external input T, recurrent input R."""


def memory_space(
    atoms: Sequence[str] | None = None, *, fix_hres: bool = False, base: Goal | None = None
) -> GoalSpace:
    """The gammas searched (default all 5 in [-1, 1]) of a memory neuron's goal over ``T``, ``R``."""
    return GoalSpace.build(MEMORY_SOURCES, atoms, fix_hres=fix_hres, base=base)


def parse_loads(text: str) -> tuple[float, ...]:
    """Loads from ``"start:stop:step"`` (inclusive, as ``infomorphic capacity --grid``) or a
    comma-separated list ``"0.5,1.0,1.5"``.

    Raises
    ------
    ValueError
        For anything else.
    """
    text = text.strip()
    try:
        if ":" in text:
            from ..tasks.capacity import default_grid

            start, stop, step = (float(p) for p in text.split(":"))
            return tuple(default_grid(start, stop, step))
        return tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(
            f"--loads expects start:stop:step or comma-separated loads, got {text!r} ({exc})"
        ) from None


@dataclass(frozen=True)
class MemorySearchSettings:
    """Everything that defines a memory-goal search (stored with the study, ``"task": "memory"``).

    Attributes
    ----------
    memory:
        The memory of every probe (``goal``, ``alpha`` and ``seed`` are replaced by the trial's
        goal and the probe's load and seed).
    space:
        The searched gammas (sources ``TR``).
    loads:
        The grid of loads ``alpha = M / N``, increasing.
    seeds:
        Seeds of every trial (patterns and initialisation); the value is the mean over them.
    threshold:
        A load is recalled when the clean-cue score is ``>= threshold``.
    sampler, seed, startup_trials:
        As in :class:`~.search.SearchSettings` (``seed``: the sampler seed).
    prune:
        Prune by the median rule on the lower bounds (module doc); False: every trial bisects
        to the end.
    threads:
        torch threads per process.
    """

    memory: MemoryConfig
    space: GoalSpace
    loads: tuple[float, ...] = DEFAULT_LOADS
    seeds: tuple[int, ...] = (0,)
    threshold: float = 0.95
    sampler: str = "tpe"
    seed: int = 0
    startup_trials: int = 10
    prune: bool = True
    threads: int = 1

    task: ClassVar[str] = "memory"
    layer: ClassVar[str] = "memory"
    """Whose goal (for messages and ``search status``): the memory neuron's."""
    pruner: ClassVar[str] = "median"

    def __post_init__(self) -> None:
        from .search import SAMPLERS

        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if "".join(self.space.sources) != MEMORY_SOURCES:
            raise ValueError(
                f"a memory goal has the sources T and R, got a space over {''.join(self.space.sources)}"
            )
        if not self.loads or any(not a > 0 for a in self.loads):
            raise ValueError(f"loads must be a non-empty list of loads > 0, got {list(self.loads)}")
        if any(b <= a for a, b in zip(self.loads, self.loads[1:])):
            raise ValueError(f"loads must increase, got {list(self.loads)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.startup_trials < 0:
            raise ValueError(f"startup_trials must be >= 0, got {self.startup_trials}")
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["memory"] = self.memory.to_dict()
        out["space"] = self.space.to_dict()
        out["loads"], out["seeds"] = list(self.loads), list(self.seeds)
        return {"task": self.task, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemorySearchSettings:
        from ..tasks.memory import MemoryConfig

        data = {k: v for k, v in data.items() if k != "task"}
        memory: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data["memory"].items()
        }
        return cls(
            **{
                **data,
                "memory": MemoryConfig(**memory),
                "space": GoalSpace.from_dict(data["space"]),
                "loads": tuple(float(a) for a in data["loads"]),
                "seeds": tuple(int(s) for s in data["seeds"]),
            }
        )

    def memory_for(self, goal: Goal) -> MemoryConfig:
        """The memory of a trial: ``memory`` with ``goal`` (written as an expression)."""
        return dataclasses.replace(self.memory, goal=goal.to_expression())


def capacity_proxy(
    memory: MemoryConfig,
    loads: Sequence[float] = DEFAULT_LOADS,
    seeds: Sequence[int] = (0,),
    threshold: float = 0.95,
    on_step: Callable[[int, float, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The largest load of ``loads`` recalled by a memory like ``memory`` (mean over ``seeds``),
    found by bisection (module doc), each probe one :func:`~infomorphic.tasks.capacity.run_point`.

    ``on_step(step, lower_bound, record)`` is called after every step (one probe per seed not
    yet decided; ``lower_bound``: the mean over seeds of the largest load recalled so far;
    ``record``: the result so far, ``finished`` True at the last step); it may raise to stop.

    Returns
    -------
    ``value`` (mean over seeds), ``capacity_per_seed`` (``{str(seed): alpha}``, 0.0 where the
    lowest load fails), ``probes`` (one record per training, in order), ``steps``,
    ``epochs`` and ``cpu_seconds`` (summed over probes), ``finished``.
    """
    from ..tasks.capacity import run_point

    loads = [float(a) for a in loads]
    if not loads or any(b <= a for a, b in zip(loads, loads[1:])):
        raise ValueError(f"loads must be a non-empty increasing list, got {loads}")
    bounds = {s: [-1, len(loads)] for s in seeds}  # index of the largest recalled / smallest failed load
    probes: list[dict[str, Any]] = []

    def record(finished: bool) -> dict[str, Any]:
        per_seed = {str(s): loads[lo] if lo >= 0 else 0.0 for s, (lo, _) in bounds.items()}
        return {
            "value": sum(per_seed.values()) / len(per_seed),
            "capacity_per_seed": per_seed,
            "probes": probes,
            "steps": step + 1,
            "epochs": sum(p["epochs"] for p in probes),
            "cpu_seconds": round(sum(p["cpu_seconds"] for p in probes), 3),
            "finished": finished,
        }

    step = 0
    while True:
        for s, bound in bounds.items():
            lo, hi = bound
            if hi - lo <= 1:
                continue
            i = 0 if lo < 0 else (lo + hi) // 2
            point = run_point(memory, loads[i], s, ("infomorphic",))
            score = point["scores"]["infomorphic"]
            recalled = score is not None and score >= threshold
            bound[0 if recalled else 1] = i
            probes.append(
                {
                    "seed": s,
                    "alpha": loads[i],
                    "n_patterns": point["n_patterns"],
                    "score": score,
                    "recalled": recalled,
                    "epochs": point["epochs"],
                    "stopped": point["stopped"],
                    "cpu_seconds": round(point["cpu_seconds"], 3),
                }
            )
        finished = all(hi - lo <= 1 for lo, hi in bounds.values())
        result = record(finished)
        if on_step is not None:
            on_step(step, result["value"], result)
        if finished:
            return result
        step += 1


def make_memory_objective(
    settings: MemorySearchSettings, stops: StopRequests | None = None
) -> Callable[[Any], float]:
    """``objective(trial) -> capacity proxy`` of a memory trained with the trial's goal.

    The proxy's lower bound goes to ``trial.report`` after every step and the trial is pruned
    when ``trial.should_prune()`` (not after the last step: a finished trial completes with its
    value).  User attributes: see the module doc.  Works with ``optuna.trial.FixedTrial`` (a
    replay of ``best_params``).  A trial stopped by Ctrl-C is marked for re-queueing; with
    ``stops`` (installed by the search) Ctrl-C and SIGTERM interrupt training, not storage calls.
    """
    import optuna

    from .search import interruptible

    stops_ = stops or StopRequests()

    def run(trial: Any) -> float:
        cpu_start = time.process_time()
        goal = settings.space.suggest(trial)
        trial.set_user_attr("goal", goal.to_expression())  # also marks "all parameters suggested"

        def on_step(step: int, lower: float, result: dict[str, Any]) -> None:
            with stops_.closed():  # storage calls
                trial.set_user_attr("probes", result["probes"])
                trial.set_user_attr("capacity_per_seed", result["capacity_per_seed"])
                trial.set_user_attr("epochs", result["epochs"])
                trial.set_user_attr("cpu_seconds", round(time.process_time() - cpu_start, 3))
                trial.report(lower, step)
                if not result["finished"] and trial.should_prune():
                    trial.set_user_attr("pruned_at_step", step)
                    raise optuna.TrialPruned(f"largest load recalled {lower:g} after step {step}")

        with stops_.open():
            result = capacity_proxy(
                settings.memory_for(goal), settings.loads, settings.seeds, settings.threshold, on_step
            )
        return float(result["value"])

    return interruptible(run)
