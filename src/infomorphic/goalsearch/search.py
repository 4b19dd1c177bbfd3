"""Goal-parameter search with optuna: the objective, the study, and worker processes.

Schneider et al. 2025 (arXiv:2412.02482), appendix A.10: the gammas of the trivariate hidden goal are
searched in [-1, 1] with TPE (multivariate) and CMA-ES (``H_res`` fixed at 0) to maximise the
validation accuracy of a network trained with that goal.  The associative memory's bivariate
goal is searched by the same machinery (:mod:`.memory_search`: settings
:class:`~.memory_search.MemorySearchSettings`, stored with ``"task": "memory"``; the objective is
a capacity proxy); everything below holds for both.

- :func:`make_objective` returns a plain ``objective(trial)`` that uses only
  ``trial.suggest_float`` (through :class:`~.space.GoalSpace`), so that
  ``optuna.trial.FixedTrial(study.best_params)`` replays the best goal exactly.  Each trial
  trains the configured network (:func:`infomorphic.train.fit`) into its own run directory,
  reports the validation accuracy after every epoch and is pruned when unpromising.
- Storage: a URL is handed to optuna's ``RDBStorage`` unchanged (SQLite in the search directory
  by default, or e.g. ``postgresql://...``).  All search settings live in the study's user
  attributes, so any process on any machine can join.  A URL optuna cannot use, or a file that is
  not an optuna database, raises ``ValueError`` with a one-line message.
- Crashes: every trial records its host, process id and heartbeat.  Before each trial, and so
  also first thing on every resume or join (before the target is checked), a process fails the
  RUNNING trials whose process is gone (:func:`fail_stale_trials`): the process recorded on this
  host no longer exists, or the heartbeat is older than ``GRACE_S`` seconds.  Their parameters
  go back into the queue (WAITING) and are trained again from the start; a trial whose process died more than
  ``MAX_RETRY`` times stays failed (logged once).  A trial stopped by Ctrl-C is re-queued too.
  A process stops when the study holds the target number of finished (complete or pruned)
  trials and no re-queued trial is waiting.
- Samplers (:class:`TrialSeededSampler`) are built afresh for every trial, seeded from the
  search seed, the worker index, the number of finished trials and the number of trials running
  elsewhere when the trial is sampled (:func:`trial_seed`).  TPE and random sampling keep no
  other state; CMA-ES keeps its state in the study (trial system attributes), so nothing is lost
  with the process.

Determinism: with one worker, a seeded search that is killed at any point (``kill -9``, Ctrl-C,
a crash) and resumed on the same machine evaluates the same goals in the same order with the
same validation accuracies as an uninterrupted one: the trial that was running when it was
killed is re-run from its start, and its result is the same because training is deterministic
for a given seed on the same machine and thread count.  (A process resumed on another machine
notices the killed trial only ``GRACE_S`` seconds after the kill, and its training may differ in
the last bits.)  With several workers (``--workers`` or processes that join) a trial's goal
depends on which trials had finished when it was sampled, i.e. on timing, so the order is not
reproducible; what holds is that no finished trial is lost or repeated, the goal of a killed
trial is trained again, and no two workers sample with the same seed (spawned workers differ by
their index, a joining process by the number of trials running when it samples; two processes
that start a trial at the same instant may still coincide).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.util
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..config import TrainConfig
from ..goals import Goal
from ..runs import remove_stale_temporaries, write_json
from .memory_search import MemorySearchSettings, make_memory_objective
from .space import GoalSpace
from .stopping import StopRequests, caused_by_stop
from .warmstart import WARM_START_KEY

if TYPE_CHECKING:
    from typing import TypeAlias

    from .trust import TrustRegion

    AnySettings: TypeAlias = "SearchSettings | MemorySearchSettings"
    """The settings of a network goal search or of a memory-goal search."""

__all__ = [
    "SearchSettings",
    "settings_from_dict",
    "SAMPLERS",
    "PRUNERS",
    "make_objective",
    "make_sampler",
    "open_storage",
    "create_study",
    "load_search",
    "search_status",
    "run_search",
    "best_goal",
    "top_trials",
    "write_best",
    "subset_train",
    "SETTINGS_KEY",
    "TARGET_KEY",
    "study_target",
    "study_settings",
    "counts",
    "load_search_data",
    "config_with_goal",
    "layer_letters",
    "layer_goal",
    "fail_stale_trials",
    "TrialSeededSampler",
    "trial_seed",
    "RequeueStaleTrial",
]

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "cmaes", "gp", "random")
PRUNERS = ("median", "halving", "hyperband")
SETTINGS_KEY = "infomorphic_search"
TARGET_KEY = "infomorphic:n_trials"
"""User attribute of a study holding its target number of finished trials (the last one given)."""
DEFAULT_TRIALS = 100
"""User attribute of a study holding its :class:`SearchSettings` (JSON)."""
HEARTBEAT_S = 5
GRACE_S = 20
MAX_RETRY = 3
"""A trial whose process died is tried again at most this many times."""
UNRECORDED_S = 5
"""A RUNNING trial that has not recorded its process this long after its start is stale (its
process died inside ``ask()``, between creating the trial and recording itself)."""
_CRASHES_KEY = "infomorphic:crashes"
_WARM_PENDING_KEY = "infomorphic:warm_start_pending"
"""User attribute of a new study, set before its warm-start trials: how many, and which process
adds them (see :func:`_warm_start_pending`)."""
_REQUEUE_KEY = "infomorphic:requeue"


@dataclass(frozen=True)
class SearchSettings:
    """Everything that defines a goal search (stored with the study).

    Attributes
    ----------
    config:
        The training run of every trial (its goal for ``layer`` is replaced by the trial's).
    space:
        The searched gammas.
    layer:
        Whose goal: ``hidden`` or ``readout`` for the papers' networks, any trained layer's name
        for a wired (custom) network.
    sampler:
        ``tpe`` (multivariate TPE), ``cmaes``, ``gp`` (optuna's Gaussian-process Bayesian
        optimisation: a Matern-5/2 model of the objective with one length scale per gamma and
        a noise term, next goal by expected improvement; it models every complete trial, so its
        proposals cost about a second with a few hundred trials, and it needs no step size) or
        ``random``.
    seed:
        Sampler seed.
    startup_trials:
        Random trials before TPE / GP model the objective (the paper: 100 of 1000); trials
        added with ``--warm-start`` count among them.
    prune:
        Prune unpromising trials (by ``pruner``); False: every trial trains all its epochs,
        and may then be evaluated less often (``config.eval_every > 1``, e.g. only after its
        last epoch: the objective, the last epoch's validation accuracy, is the same, and a
        trial at MNIST setup 1, N = 100 spent about a sixth of its time evaluating every epoch).
    pruner:
        ``median``: prune a trial whose validation accuracy falls below the median of earlier
        trials at the same epoch (optuna's ``MedianPruner``; from the first epoch on, never
        among the first 5 trials).  ``halving``: asynchronous successive halving over epochs
        (optuna's ``SuccessiveHalvingPruner``): at ``min_epochs``, ``min_epochs * eta``,
        ``min_epochs * eta**2``, ... epochs a trial goes on only if its validation accuracy is
        in the best ``1/eta`` of the trials that reached that epoch, so most trials stop
        early and the best train the full ``config.epochs``.  ``hyperband``: several such
        brackets with different first stops (optuna's ``HyperbandPruner``, resources from
        ``min_epochs`` to ``config.epochs``).
    min_epochs:
        Epochs every trial trains before ``halving`` / ``hyperband`` may stop it.
    reduction_factor:
        ``eta`` of ``halving`` / ``hyperband``: each stop keeps the best ``1/eta``.
    train_subset:
        Train every trial on this many training examples (a fixed seeded subset) instead of
        all; validation always uses the whole validation split.
    cma_sigma0:
        CMA-ES only: its initial step size in gamma units (None: optuna's default, a sixth of
        the [-1, 1] range); larger values explore further from the all-zero start.
    cma_x0:
        CMA-ES only: a goal (expression or preset over the searched layer's sources) whose
        weights of the searched atoms are the search's start, e.g. the best goal of an earlier
        search to refine it (None: the all-zero goal, optuna's start at the middle of the range).
        Weights outside ``[low, high]`` are clipped to it.
    trust_region:
        GP only: propose every goal inside a box of this half-width per gamma (gamma units)
        around the best complete trial so far, warm-start trials included, instead of anywhere
        in the range (None).  The model is still fitted on every complete trial; the box doubles
        after 3 improvements in a row and halves after as many failures in a row as there are
        searched gammas (TuRBO's rules, :mod:`.trust`); each trial records its box in the user
        attribute ``trust_region``.
    seeds:
        Run seeds of every trial (empty: the config's seed alone).  With more than one, every
        trial trains its goal once per seed (each seed with its own validation split, as
        ``infomorphic train --seed`` does) and its value is the mean final validation accuracy,
        which ranks goals whose single runs differ by less than the noise of one run; the
        epochs reported along the way are the first seed's.  Needs ``prune=False``.
    """

    config: TrainConfig
    space: GoalSpace
    layer: str = "hidden"
    sampler: str = "tpe"
    seed: int = 0
    startup_trials: int = 10
    prune: bool = True
    train_subset: int | None = None
    pruner: str = "median"
    min_epochs: int = 1
    reduction_factor: int = 3
    cma_sigma0: float | None = None
    cma_x0: str | None = None
    seeds: tuple[int, ...] = ()
    trust_region: float | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        layer_letters(self.config, self.layer)  # raises for a layer without a goal to search
        if self.config.epochs < 1:  # a run of 0 epochs trains only the baselines: nothing to rank
            raise ValueError(f"every trial trains its network: epochs must be >= 1, got {self.config.epochs}")
        if self.config.eval_every != 1 and self.prune:
            raise ValueError(
                f"eval_every must be 1 in a search that prunes (got {self.config.eval_every}): the "
                "pruner reads every epoch's validation accuracy; use --no-prune to evaluate less often"
            )
        if self.startup_trials < 0:
            raise ValueError(f"startup_trials must be >= 0, got {self.startup_trials}")
        seeds = tuple(self.seeds)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in seeds):
            raise ValueError(f"seeds must be integers >= 0, got {list(seeds)}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must differ, got {list(seeds)}")
        if len(seeds) > 1 and self.prune:
            raise ValueError(
                "several seeds per trial (--seeds) need --no-prune: a pruner compares one run's "
                "accuracy epoch by epoch"
            )
        object.__setattr__(self, "seeds", seeds)  # a JSON list when read back from a study
        if self.train_subset is not None and self.train_subset < 2:
            raise ValueError(f"train_subset must be >= 2, got {self.train_subset}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")
        if self.min_epochs < 1 or self.reduction_factor < 2:
            raise ValueError(
                f"min_epochs must be >= 1 and reduction_factor >= 2, got {self.min_epochs} and "
                f"{self.reduction_factor}"
            )
        if self.cma_sigma0 is not None and (self.sampler != "cmaes" or not 0 < self.cma_sigma0 <= 2):
            raise ValueError(
                f"cma_sigma0 ({self.cma_sigma0}) is for the cmaes sampler only, in (0, 2] "
                f"(this search's sampler: {self.sampler})"
            )
        width = self.space.high - self.space.low
        if self.trust_region is not None and (self.sampler != "gp" or not 0 < self.trust_region <= width):
            raise ValueError(
                f"trust_region ({self.trust_region}) is for the gp sampler only, a half-width in "
                f"(0, {width:g}] gamma units (this search's sampler: {self.sampler})"
            )
        if self.cma_x0 is not None:
            if self.sampler != "cmaes":
                raise ValueError(
                    f"cma_x0 is for the cmaes sampler only (this search's sampler: {self.sampler})"
                )
            self.start_point()  # raises for a goal that does not parse over the layer's sources
        if self.prune and self.pruner != "median" and self.min_epochs >= self.config.epochs:
            raise ValueError(
                f"min_epochs ({self.min_epochs}) must be below the epochs of a trial "
                f"({self.config.epochs}) for the {self.pruner} pruner to stop anything"
            )

    def start_point(self) -> dict[str, float] | None:
        """CMA-ES's start: each searched gamma's weight in ``cma_x0``, clipped to the range
        (None without ``cma_x0``)."""
        if self.cma_x0 is None:
            return None
        try:
            goal = Goal.resolve(self.cma_x0, self.space.sources)
        except ValueError as exc:
            raise ValueError(f"cma_x0 is not a goal over {''.join(self.space.sources)}: {exc}") from None
        low, high = self.space.low, self.space.high
        return {name: min(high, max(low, goal.weight(name))) for name in self.space.params}

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["config"] = self.config.to_dict()
        out["space"] = self.space.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSettings:
        return cls(
            **{
                **{k: v for k, v in data.items() if k != "task"},
                "config": TrainConfig.from_dict(data["config"]),
                "space": GoalSpace.from_dict(data["space"]),
            }
        )

    task: ClassVar[str] = "supervised"
    """What a trial trains: the network of ``config`` (``memory``: :class:`~.memory_search.MemorySearchSettings`)."""

    def config_for(self, goal: Goal, **changes: Any) -> TrainConfig:
        """The trial's training config: the goal written as an expression into ``layer``."""
        return config_with_goal(self.config, self.layer, goal, **changes)


def config_with_goal(config: TrainConfig, layer: str, goal: Goal, **changes: Any) -> TrainConfig:
    """``config`` training with ``goal`` as the goal of ``layer`` (``hidden`` / ``readout``, or a
    layer of a wired network), no baselines, and ``changes`` applied (they may override
    ``baselines`` too)."""
    if config.wiring is not None:
        import copy

        layer_letters(config, layer)
        wiring = copy.deepcopy(config.wiring)
        for entry in wiring["layers"]:
            if entry.get("name") == layer:
                entry["goal"] = goal.to_expression()
        return config.replace(**{"wiring": wiring, "baselines": (), **changes})
    key = "hidden_goal" if layer == "hidden" else "readout_goal"
    return config.replace(**{key: goal.to_expression(), "baselines": (), **changes})


def layer_letters(config: TrainConfig, layer: str) -> str:
    """The input-class letters of ``layer``'s goal in the network of ``config`` (``ValueError``
    when the network has no such layer or it has no goal to search)."""
    spec = config.network_spec()
    if spec is not None:
        names = [ls.name for ls in spec.layers]
        if layer not in names:
            raise ValueError(
                f"the network has no layer {layer!r}; its layers: {', '.join(names)} (--layer NAME)"
            )
        ls = spec.layer(layer)
        if ls.frozen or ls.goal is None:
            raise ValueError(f"layer {layer!r} is frozen: it has no goal to search")
        return "".join(ls.inputs)
    if layer not in ("hidden", "readout"):
        raise ValueError(f"layer must be hidden or readout for network {config.network!r}, got {layer!r}")
    if layer == "hidden" and config.network in ("single", "random-hidden", "backprop"):
        raise ValueError(f"network {config.network!r} has no hidden goal to search; use --layer readout")
    return "FCL" if layer == "hidden" and config.network == "trivariate" else "FC"


def layer_goal(config: TrainConfig, layer: str) -> Any:
    """The goal ``layer`` trains with in ``config`` (a preset name, expression, Goal or None)."""
    spec = config.network_spec()
    if spec is not None:
        layer_letters(config, layer)
        return spec.layer(layer).goal
    return config.hidden_goal if layer == "hidden" else config.readout_goal


# ----------------------------------------------------------------------------- data
def subset_train(splits: Any, n: int | None, seed: int) -> Any:
    """``splits`` with the training split cut to ``n`` examples drawn with ``seed`` (no-op for None)."""
    import torch

    from ..data.datasets import Split

    if n is None or n >= len(splits.train):
        return splits
    keep = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    train = Split(splits.train.x[keep].contiguous(), splits.train.y[keep].contiguous())
    return dataclasses.replace(splits, train=train, train_index=splits.train_index[keep])


def load_search_data(config: TrainConfig, train_subset: int | None = None) -> Any:
    """The splits of ``config`` (dataset, data folder, validation fraction, seed), the training
    split cut to ``train_subset`` examples drawn with the config's seed (all for None)."""
    from ..data import load_dataset

    splits = load_dataset(
        config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction, seed=config.seed
    )
    return subset_train(splits, train_subset, config.seed)


# ------------------------------------------------------------------------ objective
def make_objective(
    settings: AnySettings, trials_dir: Path, data: Any | None = None, stops: StopRequests | None = None
) -> Callable[[Any], float]:
    """``objective(trial) -> validation accuracy`` (last epoch) of a network trained with the trial's goal.

    The validation accuracy of every epoch goes to ``trial.report``; ``TrialPruned`` raised
    from there stops training.  The trial's goal expression and test accuracy are stored as
    user attributes (the process that runs it is recorded by :class:`TrialSeededSampler`); a
    trial stopped by Ctrl-C is marked for re-queueing.  ``data`` (preloaded splits) is loaded on
    first use when omitted.  With ``stops`` (installed by the search), Ctrl-C and SIGTERM
    interrupt data loading and training but not the storage calls of the epoch reports.  For a
    memory-goal search the objective is the capacity proxy of
    :func:`~.memory_search.make_memory_objective` (``trials_dir`` and ``data`` unused).  With
    several ``settings.seeds`` the value is the mean over one run per seed (``trial-NNNNN`` and
    ``trial-NNNNN-seed<s>``), each seed's validation and test accuracy in the user attributes
    ``val_acc_per_seed`` / ``test_acc_per_seed`` (``test_acc``: their mean), and only the first
    seed's epochs are reported.
    """
    stops = stops or StopRequests()
    if isinstance(settings, MemorySearchSettings):
        return make_memory_objective(settings, stops)
    seeds = settings.seeds or (settings.config.seed,)
    cache: dict[int, Any] = {settings.config.seed: data} if data is not None else {}

    def run(trial: Any) -> float:
        cpu_start = time.process_time()
        goal = settings.space.suggest(trial)
        trial.set_user_attr("goal", goal.to_expression())  # also marks "all parameters suggested"
        first = Path(trials_dir) / f"trial-{trial.number:05d}"
        if (first / "checkpoint.pt").exists():  # a FixedTrial replay into a used folder
            first = first.with_name(f"{first.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        val: dict[str, float] = {}
        test: dict[str, float] = {}
        for k, seed in enumerate(seeds):
            config = settings.config_for(goal, seed=seed)
            if seed not in cache:
                with stops.open():
                    cache[seed] = load_search_data(config, settings.train_subset)
            run_dir = first if k == 0 else first.with_name(f"{first.name}-seed{seed}")
            result = _train_trial(trial, config, run_dir, cache[seed], stops, cpu_start, report=k == 0)
            val[str(seed)], test[str(seed)] = float(result["val_acc"]), float(result["test_acc"])
        trial.set_user_attr("test_acc", sum(test.values()) / len(test))
        if len(seeds) > 1:
            trial.set_user_attr("val_acc_per_seed", val)
            trial.set_user_attr("test_acc_per_seed", test)
        trial.set_user_attr("run_dir", str(first))
        trial.set_user_attr("cpu_seconds", round(time.process_time() - cpu_start, 3))
        return sum(val.values()) / len(val)

    return interruptible(run)


def _train_trial(
    trial: Any,
    config: TrainConfig,
    run_dir: Path,
    data: Any,
    stops: StopRequests,
    cpu_start: float,
    report: bool,
) -> dict[str, Any]:
    """Train one run of a trial; with ``report``, every epoch's validation accuracy goes to
    ``trial.report`` (and the pruner may stop it)."""
    import optuna

    from ..train import fit

    def report_epoch(epoch: int, metrics: dict[str, Any]) -> None:
        if metrics["val_acc"] is None:  # not evaluated (eval_every > 1, allowed without pruning)
            return
        with stops.closed():  # storage calls
            # step = epochs trained, the resource of the halving / hyperband pruners
            trial.report(float(metrics["val_acc"]), epoch + 1)
            trial.set_user_attr("epochs", epoch + 1)
            trial.set_user_attr("cpu_seconds", round(time.process_time() - cpu_start, 3))
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch + 1)
                raise optuna.TrialPruned(f"val_acc {metrics['val_acc']:.4f} after epoch {epoch + 1}")

    with stops.open():
        return fit(
            config, run_dir=run_dir, progress=False, report=report_epoch if report else None, data=data
        )


def interruptible(run: Callable[[Any], float]) -> Callable[[Any], float]:
    """The objective ``run`` that, when Ctrl-C stops it, marks its trial for re-queueing first."""

    def objective(trial: Any) -> float:
        try:
            return run(trial)
        except KeyboardInterrupt:
            _mark_interrupted(trial)
            raise
        except Exception as exc:
            if not caused_by_stop(exc):
                raise
            _mark_interrupted(trial)
            raise KeyboardInterrupt from exc

    return objective


# ---------------------------------------------------------------------------- study
def _shown(url: str) -> str:
    """``url`` with any password hidden (for messages)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown as given
        return repr(url)


def _sqlite_file(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL (None for other URLs and in-memory SQLite)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:
        return None
    if not parsed.get_backend_name() == "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return str(parsed.database)


class StorageLost(ValueError):
    """The study's storage failed while trials ran (e.g. the database server went down); the
    message says how to go on once it is back."""


def _reason(exc: BaseException) -> str:
    """The first line of a database error (its driver's message when it wraps one)."""
    return " ".join(str(getattr(exc, "orig", None) or exc).split("\n")[0].split())


def _storage_error(url: str, exc: BaseException) -> ValueError:
    """A one-line ``ValueError`` saying what is wrong with storage ``url`` and how to fix it."""
    import sqlalchemy.exc as sa_exc

    reason = _reason(exc)
    file = _sqlite_file(url)
    if isinstance(exc, (sa_exc.NoSuchModuleError, sa_exc.ArgumentError)):
        return ValueError(
            f"storage {_shown(url)} is not a database URL that optuna can use ({reason}); give e.g. "
            "sqlite:///path/to/study.db or postgresql://user@host/db, or leave out --storage"
        )
    if isinstance(exc, ImportError):
        return ValueError(
            f"storage {_shown(url)}: its database driver is not installed ({_missing_driver(exc)}); "
            "use sqlite:///path/to/study.db or leave out --storage otherwise"
        )
    if file is not None and isinstance(exc, sa_exc.OperationalError):  # cannot open, read-only, locked
        return ValueError(
            f"cannot use the study database {file} ({reason}); check that its folder exists, that "
            "it is writable and that no other program holds it locked"
        )
    if file is not None and isinstance(exc, sa_exc.DatabaseError):  # not a database, malformed
        return ValueError(
            f"{file} is not a readable optuna study database ({reason}); move it aside to start a "
            "new search there, or restore it from a copy"
        )
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return ValueError(
            f"cannot use storage {_shown(url)} ({reason}); check the URL, that the database server "
            "is reachable, and the user's rights"
        )
    return ValueError(f"storage {_shown(url)}: {reason}")


_DRIVERS = {
    "psycopg": "pip install 'infomorphic[postgres]'",
    "psycopg2": "pip install psycopg2-binary, or pip install 'infomorphic[postgres]' and write "
    "postgresql+psycopg://",
    "pymysql": "pip install pymysql",
    "MySQLdb": "pip install mysqlclient",
}


def _missing_driver(exc: ImportError) -> str:
    """Which module a failed driver import lacked and how to install it (optuna wraps sqlalchemy's
    ``ModuleNotFoundError`` in an ``ImportError`` of its own)."""
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, ImportError) and cause.name):
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return f"{exc}; install the Python package of its driver"
    module = str(getattr(cause, "name", "")).split(".")[0]
    fix = _DRIVERS.get(module, f"install the Python package that provides the module {module}")
    return f"no module {module}: {fix}"


def _database_cause(exc: BaseException) -> BaseException | None:
    """The database error behind ``exc``: ``exc`` itself or the first sqlalchemy error in its chain
    of causes and contexts (optuna wraps them in ``StorageInternalError``, and a failed commit
    inside ``study.optimize`` can surface as an unrelated error raised while handling it)."""
    import sqlalchemy.exc as sa_exc
    from optuna.exceptions import StorageInternalError

    seen: set[int] = set()
    node: BaseException | None = exc
    wrapped = None
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, sa_exc.SQLAlchemyError):
            return node
        if isinstance(node, StorageInternalError) and wrapped is None:
            wrapped = node
        node = node.__cause__ or node.__context__
    return wrapped


@contextmanager
def _storage_errors(url: str, resume_hint: str | None = None) -> Iterator[None]:
    """Turn the database errors inside the block (sqlalchemy's, and optuna's
    ``StorageInternalError`` wrapping one of them) into :func:`_storage_error`.

    ``resume_hint`` (e.g. ``--resume --out DIR``) marks a block that runs trials: the message
    then says that the finished trials are kept and how to go on once the storage is back.
    """
    try:
        yield
    except Exception as exc:
        if isinstance(exc, StorageLost) or (cause := _database_cause(exc)) is None:
            raise
        if resume_hint is None or _sqlite_file(url) is not None:  # a file: its own advice
            if isinstance(exc, ValueError):  # already one line (an inner block's)
                raise
            raise _storage_error(url, cause) from exc
        raise StorageLost(
            f"lost the study's storage {_shown(url)} during the search ({_reason(cause)}); the "
            "finished trials are kept there: once the server is reachable again, go on with "
            f"infomorphic search {resume_hint} (the interrupted trial is run again)"
        ) from exc


def open_storage(url: str) -> Any:
    """An optuna ``RDBStorage`` for ``url`` (unchanged), with heartbeats and failed-trial retry.

    A trial whose process died stops beating; after ``GRACE_S`` seconds (at once for a process
    of this host that no longer exists, see :func:`fail_stale_trials`) it is marked failed and
    its parameters are queued again, so no finished trial is lost or repeated.  SQLite gets a
    long lock timeout so that several processes can share one file.

    Raises
    ------
    ValueError
        When optuna cannot use ``url`` (not a database URL, driver missing, not a database file,
        server unreachable, schema of another optuna version).
    """
    import warnings

    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    with _storage_errors(url), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are flagged experimental
        try:
            return _search_storage_class()(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S,
                heartbeat_stale_trial_callback=RequeueStaleTrial(MAX_RETRY),
            )
        except (ImportError, RuntimeError) as exc:  # a missing driver; a schema of another optuna version
            raise _storage_error(url, exc) from exc


@functools.cache
def _search_storage_class() -> type:
    """optuna's ``RDBStorage``, but its own stale-trial pass (before each trial of ``optimize``)
    finds nothing: stale trials are failed by :func:`fail_stale_trials` only, which claims each
    one atomically and can be resumed if its process dies half-way."""
    from optuna.storages import RDBStorage

    class SearchStorage(RDBStorage):
        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            return []

        def heartbeat_stale_trial_ids(self, study_id: int) -> list[int]:
            """RUNNING trials whose heartbeat is older than the grace period."""
            return super()._get_stale_trial_ids(study_id)

    return SearchStorage


# ----------------------------------------------------------------- crashed trials
_HOST_KEY: str | None = None


def _host_key() -> str:
    """Host name, boot id and pid namespace: processes with equal keys share one process table."""
    global _HOST_KEY
    if _HOST_KEY is None:
        parts = [socket.gethostname()]
        try:
            parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
        except OSError:
            pass
        try:
            parts.append(os.readlink("/proc/self/ns/pid"))
        except OSError:
            pass
        _HOST_KEY = "|".join(parts)
    return _HOST_KEY


def _process_record() -> dict[str, Any]:
    """Which process runs a trial: the user attribute ``process`` (also ``host`` and ``pid``)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "host_key": _host_key()}


def _record_process(study: Any, trial: Any) -> None:
    """Store :func:`_process_record` in ``trial``'s user attributes (``process`` first, in one write)."""
    record = _process_record()
    for key, value in (("process", record), ("host", record["host"]), ("pid", record["pid"])):
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as gone; unknown: alive)."""
    if os.name != "posix" or pid <= 0:
        return True  # os.kill(pid, 0) would terminate a process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _process_gone(attrs: dict[str, Any]) -> bool:
    """Whether the process recorded in a trial's user attributes ran on this host and has ended."""
    record = attrs.get("process")
    if not isinstance(record, dict):
        return False
    pid = record.get("pid")
    if record.get("host_key") != _host_key() or not isinstance(pid, int) or pid == os.getpid():
        return False
    return not _pid_alive(pid)


def _unrecorded(study: Any) -> list[Any]:
    """RUNNING trials that hold no process record (their process is, or died, inside ``ask()``)."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if "process" not in t.user_attrs]


def _age(trial: Any) -> float:
    """Seconds since ``trial`` started (by this host's clock; 0 when unknown)."""
    return 0.0 if trial.datetime_start is None else (datetime.now() - trial.datetime_start).total_seconds()


def _settle(study: Any) -> None:
    """Wait (at most ``UNRECORDED_S`` s) until every RUNNING trial records its process or is old
    enough to count as stale without one, so that a process killed inside ``ask()`` is noticed."""
    deadline = time.monotonic() + UNRECORDED_S + 1
    while any(_age(t) <= UNRECORDED_S for t in _unrecorded(study)) and time.monotonic() < deadline:
        time.sleep(0.1)


def _marker(crashed: bool) -> dict[str, Any]:
    """The system attribute ``_REQUEUE_KEY`` of a failed trial: who re-queues it, when, and why."""
    return {**_process_record(), "crashed": crashed, "at": time.time()}


def _rdb(storage: Any) -> Any:
    """The ``RDBStorage`` behind ``storage`` (None for other storages)."""
    import optuna

    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def _claim_failed(storage: Any, trial_id: int, *, crashed: bool = True) -> bool:
    """Set trial ``trial_id`` from RUNNING to FAIL; True only for the one process that did it.

    In the same transaction the trial gets the marker ``_REQUEUE_KEY`` naming this process, so
    that if it dies before it has re-queued the trial another process does it (:func:`_orphans`).
    """
    import optuna
    from optuna.trial import TrialState

    backend = _rdb(storage)
    if backend is None:
        try:
            return bool(storage.set_trial_state_values(trial_id, state=TrialState.FAIL))
        except optuna.exceptions.UpdateFinishedTrialError:
            return False
    import sqlalchemy
    from optuna.storages._rdb import models

    trials, attrs = models.TrialModel, models.TrialSystemAttributeModel
    with backend.engine.begin() as connection:  # a conditional UPDATE: atomic, also on SQLite
        claimed = (
            connection.execute(
                sqlalchemy.update(trials)
                .where(trials.trial_id == trial_id, trials.state == TrialState.RUNNING)
                .values(state=TrialState.FAIL, datetime_complete=datetime.now())
            ).rowcount
            == 1
        )
        if claimed:
            mine = (attrs.trial_id == trial_id, attrs.key == _REQUEUE_KEY)
            connection.execute(sqlalchemy.delete(attrs).where(*mine))
            connection.execute(
                sqlalchemy.insert(attrs).values(
                    trial_id=trial_id, key=_REQUEUE_KEY, value_json=json.dumps(_marker(crashed))
                )
            )
    return claimed


def _reclaim(storage: Any, trial_id: int) -> dict[str, Any] | None:
    """Take over the re-queueing of failed trial ``trial_id`` from a process that died first:
    its marker is replaced by one naming this process (compare-and-swap); the old marker, or None
    when another process was faster."""
    import sqlalchemy
    from optuna.storages._rdb import models

    backend = _rdb(storage)
    if backend is None:
        return None
    attrs = models.TrialSystemAttributeModel
    where = (attrs.trial_id == trial_id, attrs.key == _REQUEUE_KEY)
    with backend.engine.begin() as connection:
        row = connection.execute(sqlalchemy.select(attrs.value_json).where(*where)).first()
        if row is None:
            return None
        old = json.loads(row[0])
        new = json.dumps(_marker(bool(old.get("crashed", True))))
        swapped = (
            connection.execute(
                sqlalchemy.update(attrs).where(*where, attrs.value_json == row[0]).values(value_json=new)
            ).rowcount
            == 1
        )
    return old if swapped else None


def _requeued_numbers(trials: list[Any]) -> set[int]:
    """Numbers of the trials that have been queued again (some trial's ``retry_history`` ends there)."""
    return {t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")}


def _orphans(study: Any, max_retry: int) -> list[Any]:
    """Failed trials that a process claimed for re-queueing but died before it did so (its marker
    names a process of this host that is gone, or is older than ``GRACE_S``)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    requeued = _requeued_numbers(trials)
    out = []
    for t in trials:
        marker = t.system_attrs.get(_REQUEUE_KEY)
        if t.state != TrialState.FAIL or not isinstance(marker, dict) or t.number in requeued:
            continue
        if marker.get("crashed", True) and int(t.system_attrs.get(_CRASHES_KEY, 0)) + 1 > max_retry:
            continue  # given up on (said when it happened)
        if _process_gone({"process": marker}) or time.time() - float(marker.get("at", 0)) > GRACE_S:
            out.append(t)
    return out


def _stale_trial_ids(study: Any) -> list[int]:
    """RUNNING trials whose process is gone: recorded on this host and ended, heartbeat older than
    ``GRACE_S``, no process record ``UNRECORDED_S`` s after the start, or no heartbeat at all
    ``GRACE_S`` s after the start (the last two: the process died inside ``ask()``)."""
    from optuna.trial import TrialState

    backend = _rdb(study._storage)
    beats = getattr(backend, "heartbeat_stale_trial_ids", None) or study._storage._get_stale_trial_ids
    stale = set(beats(study._study_id))
    old = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _process_gone(t.user_attrs) or ("process" not in t.user_attrs and _age(t) > UNRECORDED_S):
            stale.add(t._trial_id)
        elif t._trial_id not in stale and _age(t) > GRACE_S:
            old.append(t._trial_id)
    stale.update(set(old) - _with_heartbeat(study._storage, old))
    return sorted(stale)


def _with_heartbeat(storage: Any, trial_ids: list[int]) -> set[int]:
    """Those of ``trial_ids`` that have recorded a heartbeat (all of them for a non-RDB storage)."""
    import optuna

    backend = getattr(storage, "_backend", storage)
    if not trial_ids or not isinstance(backend, optuna.storages.RDBStorage):
        return set(trial_ids)
    import sqlalchemy
    from optuna.storages._rdb import models

    table = models.TrialHeartbeatModel
    with backend.engine.connect() as connection:
        rows = connection.execute(sqlalchemy.select(table.trial_id).where(table.trial_id.in_(trial_ids)))
        return {row[0] for row in rows}


def fail_stale_trials(study: Any) -> list[int]:
    """Fail the RUNNING trials of ``study`` whose process is gone and queue their parameters again.

    A trial is stale when the process recorded in its user attributes ran on this host and no
    longer exists, or when its heartbeat is older than ``GRACE_S`` seconds, or when it has
    recorded no process ``UNRECORDED_S`` seconds, or no heartbeat ``GRACE_S`` seconds, after it
    started (its process died inside ``ask()``).  Each stale trial is set to FAIL by exactly one
    process, which calls the storage's stale-trial callback (:class:`RequeueStaleTrial`).  A failed
    trial whose re-queueing process died in between is re-queued too.  Returns the numbers of
    the trials this call failed or re-queued.
    """
    storage = study._storage
    callback = storage.get_heartbeat_stale_trial_callback()
    numbers = []
    for trial_id in _stale_trial_ids(study):
        if _claim_failed(storage, trial_id):
            trial = copy.deepcopy(storage.get_trial(trial_id))
            numbers.append(trial.number)
            if callback is not None:
                callback(study, trial)
    if isinstance(callback, RequeueStaleTrial):
        for orphan in _orphans(study, callback.max_retry):
            old = _reclaim(storage, orphan._trial_id)
            if old is not None:
                numbers.append(orphan.number)
                trial = copy.deepcopy(storage.get_trial(orphan._trial_id))
                callback(study, trial, crashed=bool(old.get("crashed", True)))
    return numbers


class RequeueStaleTrial:
    """Stale-trial callback: queue a failed trial's parameters again (WAITING), ``max_retry`` times.

    Like optuna's ``RetryHeartbeatStaleTrialCallback`` (the system attributes ``failed_trial``
    and ``retry_history`` are kept the same way), but a trial whose parameters were not all
    suggested when it died is queued without parameters, so that the sampler draws them again
    exactly as it did then, and the trial's process attributes are not copied (a queued trial
    must not look like one run by a dead process).  When the trial's process died more than
    ``max_retry`` times (a Ctrl-C does not count), it stays failed and a warning says so once.
    """

    def __init__(self, max_retry: int) -> None:
        self.max_retry = max_retry

    def __call__(self, study: Any, trial: Any, *, crashed: bool = True) -> None:
        import optuna

        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        crashes = int(trial.system_attrs.get(_CRASHES_KEY, 0)) + int(crashed)
        if crashed and crashes > self.max_retry:
            goal = trial.user_attrs.get("goal", trial.params)
            log.warning(
                "trial %d stays failed: its process died %d times (trials %s); its goal is not tried again: "
                "%s",
                trial.number,
                crashes,
                ", ".join(map(str, history)),
                goal,
            )
            return
        inherited = {k: v for k, v in trial.system_attrs.items() if k != _REQUEUE_KEY}
        system_attrs = {
            **inherited,
            "failed_trial": history[0],
            "retry_history": history,
            _CRASHES_KEY: crashes,
        }
        complete = _all_suggested(study, trial)
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.WAITING,
                params=trial.params if complete else {},
                distributions=trial.distributions if complete else {},
                system_attrs=system_attrs,
            )
        )
        log.info(
            "trial %d %s; its goal is queued again",
            trial.number,
            "was interrupted" if not crashed else "failed: its process is gone",
        )


def _all_suggested(study: Any, trial: Any) -> bool:
    """Whether ``trial`` holds every parameter of the study's search space (True when unknown)."""
    try:
        names = study_settings(study).space.params
    except ValueError:
        return True
    return all(n in trial.params for n in names)


# -------------------------------------------------------------------------- sampler
def trial_seed(seed: int, worker: int, finished: int, running: int) -> int:
    """The sampler seed of a trial: a hash of the search seed, the worker index, the number of
    finished (complete or pruned) trials and of trials running elsewhere when it is sampled."""
    import numpy as np

    entropy = [seed % (1 << 64), worker, finished, running]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0])


def require_sampler(sampler: str) -> None:
    """Raise a one-line ``ValueError`` when ``sampler`` needs a package that is not installed.

    CMA-ES needs ``cmaes`` (the optional extra ``infomorphic[cmaes]``); optuna would only fail
    inside the first trial that samples with it.
    """
    if sampler == "cmaes" and importlib.util.find_spec("cmaes") is None:
        raise ValueError(
            "the CMA-ES sampler needs the cmaes package, which is not installed: "
            "pip install 'infomorphic[cmaes]' (or pip install cmaes), or use another sampler (tpe)"
        )


def _cma_sigma0(settings: AnySettings) -> float | None:
    """``cma_sigma0`` (gamma units) in optuna's units: CMA-ES runs on every parameter's range
    scaled to [0, 1], so a step of ``s`` gammas is ``s / (high - low)`` there."""
    sigma = getattr(settings, "cma_sigma0", None)
    space = getattr(settings, "space", None)
    if sigma is None or space is None:
        return sigma
    return float(sigma) / (space.high - space.low)


def make_sampler(settings: AnySettings, seed: int) -> Any:
    """The seeded sampler of ``settings.sampler``."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multivariate, constant_liar, consider_pruned_trials: experimental
        if settings.sampler == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=settings.startup_trials, constant_liar=True
            )
        if settings.sampler == "gp":
            return optuna.samplers.GPSampler(
                seed=seed,
                n_startup_trials=settings.startup_trials,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )
        if settings.sampler == "cmaes":
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                n_startup_trials=max(1, settings.startup_trials),
                warn_independent_sampling=False,
                consider_pruned_trials=settings.prune,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                sigma0=_cma_sigma0(settings),
                x0=settings.start_point() if hasattr(settings, "start_point") else None,
            )
    return optuna.samplers.RandomSampler(seed=seed)


def study_trust_region(settings: Any, trials: Sequence[Any]) -> TrustRegion | None:
    """The trust region (:class:`.trust.TrustRegion`) of the next proposal after the study's
    ``trials`` (its complete ones count), or None: no ``trust_region`` in ``settings``, or the GP
    still samples its start-up trials at random."""
    from optuna.trial import TrialState

    from .trust import TrialPoint, trust_region

    radius0 = getattr(settings, "trust_region", None)
    if radius0 is None:
        return None
    space = settings.space
    points = [
        TrialPoint(t.number, float(t.value), t.params, WARM_START_KEY in t.user_attrs)
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and all(n in t.params for n in space.params)
    ]
    if not points or len(points) < settings.startup_trials:
        return None
    return trust_region(points, radius0, width=space.high - space.low, failure_streak=len(space.params))


def _trust_region_space(
    settings: Any, study: Any, trial: Any, search_space: dict[str, Any]
) -> dict[str, Any]:
    """``search_space`` with every searched gamma's range cut to :func:`study_trust_region`,
    recorded in the trial's user attribute ``trust_region`` (centre trial, radius, streaks);
    unchanged while the GP still samples its start-up trials at random."""
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState

    region = study_trust_region(settings, study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if region is None:
        return search_space
    space = settings.space
    narrowed = dict(search_space)
    for name in space.params:
        if name in narrowed:
            narrowed[name] = FloatDistribution(*region.bounds(name, space.low, space.high))
    study._storage.set_trial_user_attr(trial._trial_id, "trust_region", region.record())
    return narrowed


class TrialSeededSampler:
    """An optuna sampler that builds a fresh :func:`make_sampler` for every trial.

    Its seed is :func:`trial_seed` of the search seed, ``worker``, and the numbers of finished
    trials and of other running trials when the trial starts, so that what a trial proposes
    depends only on the study's stored trials, not on what this process sampled before: a
    resumed process continues a search exactly where a killed one stopped.  TPE and random
    sampling keep no state but their random generator; CMA-ES restores its optimizer from the
    study's trials (system attributes), and its per-trial reseed (random draw + trial number) gets
    the number of finished trials instead of the trial number, which a re-run trial shifts.

    It also records the process that runs each trial (user attributes ``process``, ``host``,
    ``pid``) as soon as ``ask()`` has created it, for :func:`fail_stale_trials`.
    """

    def __init__(self, settings: AnySettings, worker: int = 0) -> None:
        self.settings = settings
        self.worker = worker
        self.trial_id: int | None = None
        """The trial this sampler last started (used to re-queue a trial stopped by Ctrl-C)."""
        self._inner: Any = None
        self._finished = 0

    def _sampler(self, study: Any, trial: Any) -> Any:
        from optuna.trial import TrialState

        if self._inner is None or trial._trial_id != self.trial_id:
            trials = study.get_trials(
                deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            )
            self._finished = sum(t.state != TrialState.RUNNING for t in trials)
            running = sum(t.state == TrialState.RUNNING and t._trial_id != trial._trial_id for t in trials)
            seed = trial_seed(self.settings.seed, self.worker, self._finished, running)
            self._inner, self.trial_id = make_sampler(self.settings, seed), trial._trial_id
        return self._inner

    def before_trial(self, study: Any, trial: Any) -> None:
        """Record this process in the trial (first thing after ``ask()`` created it) and start a
        new sampler."""
        _record_process(study, trial)
        self._inner = None
        self._sampler(study, trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
        return self._sampler(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict[str, Any]) -> dict[str, Any]:
        import optuna

        inner = self._sampler(study, trial)
        if isinstance(inner, optuna.samplers.CmaEsSampler):  # it reseeds with `... + trial.number`
            trial = copy.copy(trial)
            trial.number = self._finished
        if getattr(self.settings, "trust_region", None) is not None and search_space:
            search_space = _trust_region_space(self.settings, study, trial, search_space)
        return inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self._sampler(study, trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self._sampler(study, trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial gets its own seed."""


def _pruner(settings: AnySettings) -> Any:
    import optuna

    if not settings.prune:
        return optuna.pruners.NopPruner()
    if isinstance(settings, MemorySearchSettings):  # the median of the lower bounds per bisection step
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=settings.min_epochs, reduction_factor=settings.reduction_factor
        )
    if settings.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=settings.min_epochs,
            max_resource=settings.config.epochs,
            reduction_factor=settings.reduction_factor,
        )
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def _counted_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def create_study(
    settings: AnySettings | None,
    storage: str,
    study_name: str,
    *,
    worker: int = 0,
    resume: bool = False,
    warm_start: Sequence[Any] = (),
) -> Any:
    """Create the study (``resume=False``) or load it and its stored settings (``resume=True``).

    Its sampler is a :class:`TrialSeededSampler` for ``worker``.  A new study first receives
    the ``warm_start`` trials (finished optuna trials, :func:`~.warmstart.read_warm_start`,
    checked by :func:`run_search` with :func:`check_warm_start`).

    Raises
    ------
    ValueError
        When creating a study that exists, or resuming one that does not, or one with other
        settings, or when the storage cannot be used.
    """
    import optuna

    if settings is not None and not resume:
        require_sampler(settings.sampler)  # before the study is created
    store = open_storage(storage)
    with _storage_errors(storage):
        names = optuna.get_all_study_names(store)
        if resume and study_name not in names:
            raise ValueError(
                f"cannot resume: no study {study_name!r} in {_shown(storage)}; "
                f"studies there: {', '.join(names) or 'none'}"
            )
        pending = (
            _warm_start_pending(optuna.load_study(study_name=study_name, storage=store))
            if study_name in names
            else None
        )
        if pending is not None and not _process_gone(pending):
            where = pending.get("process") or {}
            raise ValueError(
                f"study {study_name!r} is still receiving its warm-start trials from process {where.get('pid')} on "
                f"{where.get('host')}: wait for it to start its first trial and join with --resume (if that "
                f"process died on another machine: optuna delete-study --storage URL --study-name {study_name})"
            )
        if pending is not None:
            if resume:
                raise ValueError(
                    f"study {study_name!r} was stopped while it received its warm-start trials, before its "
                    "first own trial: run the same command without --resume to start it again"
                )
            log.warning(
                "study %r was stopped while it received its warm-start trials: starting it again", study_name
            )
            optuna.delete_study(study_name=study_name, storage=store)
            names.remove(study_name)
        if not resume and study_name in names:
            raise ValueError(
                f"study {study_name!r} already exists in {_shown(storage)}; pass --resume to continue it"
            )
        if resume:
            study = optuna.load_study(study_name=study_name, storage=store)
        else:
            if settings is None:
                raise ValueError("a new study needs its search settings")
            study = optuna.create_study(storage=store, study_name=study_name, direction="maximize")
            if warm_start:  # one trial at a time: the settings, stored last, say that all of them arrived
                study.set_user_attr(
                    _WARM_PENDING_KEY, {"trials": len(warm_start), "process": _process_record()}
                )
                study.add_trials(warm_start)
            study.set_user_attr(SETTINGS_KEY, json.dumps(settings.to_dict()))
        stored = study_settings(study)
    require_sampler(stored.sampler)
    study.sampler = TrialSeededSampler(stored, worker)
    study.pruner = _pruner(stored)
    return study


def _warm_start_pending(study: Any) -> dict[str, Any] | None:
    """What :func:`create_study` recorded before adding ``study``'s warm-start trials
    (``trials``: how many, ``process``: who adds them), while it has no settings yet (so no
    trial of its own can have run); None for a study past that point."""
    attrs = study.user_attrs
    pending = attrs.get(_WARM_PENDING_KEY)
    return pending if isinstance(pending, dict) and SETTINGS_KEY not in attrs else None


def check_warm_start(settings: AnySettings | None, resume: bool) -> None:
    """``ValueError`` (one line) where warm-start trials cannot be used: a resumed study (it
    received them when it was created) or a sampler that does not learn from added trials."""
    if resume or settings is None:
        raise ValueError(
            "--warm-start adds trials to a new study only; a resumed study keeps the ones it started with"
        )
    if settings.sampler not in ("tpe", "gp"):
        hint = " (start CMA-ES at a goal with --cma-x0)" if settings.sampler == "cmaes" else ""
        raise ValueError(
            f"--warm-start informs the tpe and gp samplers; the {settings.sampler} sampler does not "
            f"learn from added trials{hint}"
        )


def settings_from_dict(data: dict[str, Any]) -> AnySettings:
    """The settings of a study from their JSON form: :class:`~.memory_search.MemorySearchSettings`
    for ``"task": "memory"``, else :class:`SearchSettings` (studies written before the memory
    search hold no ``task``)."""
    task = data.get("task", "supervised")
    if task == "memory":
        return MemorySearchSettings.from_dict(data)
    if task != "supervised":
        raise ValueError(f"unknown search task {task!r}")
    return SearchSettings.from_dict(data)


def study_settings(study: Any) -> AnySettings:
    """The settings stored in a study's user attributes (:func:`settings_from_dict`)."""
    raw = study.user_attrs.get(SETTINGS_KEY)
    if raw is None:
        raise ValueError(
            f"study {study.study_name!r} was not created by infomorphic search (no stored settings)"
        )
    try:
        return settings_from_dict(json.loads(raw))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(
            f"study {study.study_name!r}: its stored search settings cannot be read ({exc}); "
            "was it written by another version of infomorphic?"
        ) from exc


def load_search(storage: str, study_name: str) -> tuple[Any, AnySettings]:
    """A finished or running study (default sampler) and its settings, for analysis.

    ``ValueError`` (one line) when there is no such study, or no such ``sqlite:///`` file (which
    is then not created)."""
    import optuna

    _require_sqlite_file(storage)
    store = open_storage(storage)
    with _storage_errors(storage):
        names = optuna.get_all_study_names(store)
        if study_name not in names:
            raise ValueError(
                f"no study {study_name!r} in {_shown(storage)}; studies there: {', '.join(names) or 'none'}"
            )
        study = optuna.load_study(study_name=study_name, storage=store)
        return study, study_settings(study)


def _require_sqlite_file(url: str) -> None:
    """``ValueError`` when ``url`` names a ``sqlite:///`` file that does not exist (opening it
    would create an empty database there)."""
    file = _sqlite_file(url)
    if file is not None and not Path(file).is_file():
        raise ValueError(f"no study database {file} (storage {_shown(url)}): check the path")


def _read_only_storage(url: str) -> Any:
    """An ``RDBStorage`` of ``url`` that writes nothing when opened (no table creation, no
    heartbeats); None when the database holds no optuna tables.  A ``sqlite:///`` file that does
    not exist is a ``ValueError`` (opening it would create it)."""
    import warnings

    import optuna
    import sqlalchemy

    _require_sqlite_file(url)
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with _storage_errors(url), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            engine = sqlalchemy.create_engine(url, **engine_kwargs)
        except ImportError as exc:  # the driver
            raise _storage_error(url, exc) from exc
        try:
            with engine.connect() as connection:
                if not sqlalchemy.inspect(connection).has_table("studies"):
                    return None
        finally:
            engine.dispose()
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=True)
        except (ImportError, RuntimeError) as exc:
            raise _storage_error(url, exc) from exc


@contextmanager
def read_only_study(storage: str, study_name: str) -> Iterator[Any]:
    """The study ``study_name`` of ``storage`` opened without writing anything (no table creation,
    no heartbeat), its connections closed on exit; storage errors become one-line ValueErrors.

    Raises
    ------
    ValueError
        The storage cannot be used, the SQLite file does not exist, or there is no such study
        (the message lists the studies there).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = _read_only_storage(storage)
    with _storage_errors(storage):
        names = [] if store is None else optuna.get_all_study_names(store)
        if study_name not in names:
            raise ValueError(
                f"no study {study_name!r} in {_shown(storage)}; studies there: {', '.join(names) or 'none'}"
            )
        try:
            yield optuna.load_study(study_name=study_name, storage=store)
        finally:
            store.engine.dispose()


def search_status(storage: str, study_name: str) -> dict[str, Any]:
    """What a search's study holds, read without changing anything (``infomorphic search status``).

    Returns the storage (password hidden) and study name; the trial counts ``complete``,
    ``pruned``, ``running``, ``failed``, ``waiting`` (re-queued, not started) and ``total``, and
    ``counts`` by optuna state name; the running trials (number, host, pid, start, and
    ``process_gone``: True when the trial's process ran on this host and has ended); the best
    completed trial (``best_value``, ``best_trial``, ``best_goal``: the goal expression the
    trial stored, ``best_params``: its gammas, ``best_test_acc``; None before a trial
    completed); and the search's ``sampler``, ``pruner``, ``layer`` and ``task`` (None for a
    study that ``infomorphic search`` did not create); ``trust_region``: the box of the next
    proposal of a GP search with a trust region (centre trial, radius, streaks; None
    otherwise).  For a memory-goal search (``task`` ``memory``, ``layer`` ``memory``)
    ``best_value`` is the capacity proxy and ``best_capacity_per_seed`` its value per seed (None
    otherwise).  The compute spent: ``cpu_hours`` (the CPU time of the trials' processes while
    they ran the trials, summed; a killed trial counts up to its last epoch) and
    ``epochs_trained`` (summed over trials; both leave out the ``warm_start_trials``, added from
    files and trained elsewhere); the compute still needed: ``cpu_seconds_per_trial`` (the mean
    over the finished, i.e. complete or pruned, trials trained here) and ``cpu_hours_to_target``
    (that mean times the trials the target still lacks; None without a target or a finished
    trial).  With a halving pruner later trials tend to train longer than early ones, so the
    estimate is a lower bound early in a search.  It does not fail stale trials: a trial whose
    process died shows as running (with ``process_gone`` where that process ran on this host;
    another host's processes cannot be seen from here) until a search process joins or resumes,
    which fails it and queues its goal again.

    Raises
    ------
    ValueError
        One line: the storage cannot be used, the SQLite file does not exist, or there is no such
        study (the message lists the studies there).
    """
    from optuna.trial import TrialState

    with read_only_study(storage, study_name) as study:
        trials = study.get_trials(deepcopy=False)
        target = study_target(study)
        try:
            settings: AnySettings | None = study_settings(study)
        except ValueError:
            settings = None
    by_state = {state: [t for t in trials if t.state == state] for state in TrialState}
    done = by_state[TrialState.COMPLETE]
    finished = done + by_state[TrialState.PRUNED]
    own = [t for t in trials if WARM_START_KEY not in t.user_attrs]  # trained in this study
    own_finished = [t for t in finished if WARM_START_KEY not in t.user_attrs]
    per_trial = _cpu_seconds(own_finished) / len(own_finished) if own_finished else None
    best = max(done, key=lambda t: (t.value, -t.number)) if done else None
    goal = None
    if best is not None:
        goal = best.user_attrs.get("goal")
        if goal is None and settings is not None:
            goal = settings.space.goal(best.params).to_expression()
    region = None if settings is None else study_trust_region(settings, trials)
    return {
        "storage": _shown(storage),
        "study": study_name,
        "complete": len(done),
        "pruned": len(by_state[TrialState.PRUNED]),
        "running": len(by_state[TrialState.RUNNING]),
        "failed": len(by_state[TrialState.FAIL]),
        "waiting": len(by_state[TrialState.WAITING]),
        "total": len(trials),
        "counts": {state.name: len(ts) for state, ts in by_state.items() if ts},
        "running_trials": [
            {
                "number": t.number,
                "host": t.user_attrs.get("host"),
                "pid": t.user_attrs.get("pid"),
                "process_gone": _process_gone(t.user_attrs),
                "started": None
                if t.datetime_start is None
                else t.datetime_start.isoformat(timespec="seconds"),
            }
            for t in by_state[TrialState.RUNNING]
        ],
        "best_value": None if best is None else best.value,
        "best_trial": None if best is None else best.number,
        "best_goal": goal,
        "best_params": None if best is None else best.params,
        "best_test_acc": None if best is None else best.user_attrs.get("test_acc"),
        "sampler": None if settings is None else settings.sampler,
        "pruner": None if settings is None else (settings.pruner if settings.prune else "none"),
        "layer": None if settings is None else settings.layer,
        "task": None if settings is None else settings.task,
        "best_capacity_per_seed": None if best is None else best.user_attrs.get("capacity_per_seed"),
        "target": target,
        "trust_region": None if region is None else region.record(),
        "warm_start_trials": len(trials) - len(own),
        "cpu_hours": _cpu_seconds(own) / 3600.0,
        "epochs_trained": sum(int(t.user_attrs.get("epochs", 0)) for t in own),
        "cpu_seconds_per_trial": per_trial,
        "cpu_hours_to_target": None
        if target is None or per_trial is None
        else max(target - len(finished), 0) * per_trial / 3600.0,
    }


def _cpu_seconds(trials: list[Any]) -> float:
    """The CPU seconds the trials' processes spent on them (user attribute ``cpu_seconds``)."""
    return sum(float(t.user_attrs.get("cpu_seconds", 0.0)) for t in trials)


# ------------------------------------------------------------------------- results
def counts(study: Any) -> dict[str, int]:
    """Trials by state name (``COMPLETE``, ``PRUNED``, ``RUNNING``, ``FAIL``, ...)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def best_goal(study: Any, settings: AnySettings) -> tuple[Goal, Any] | None:
    """The best completed trial's goal (rebuilt from its parameters) and the trial; None if none."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    trial = max(done, key=lambda t: (t.value, -t.number))
    return settings.space.goal(trial.params), trial


def top_trials(study: Any, settings: AnySettings, top: int) -> list[tuple[Any, str]]:
    """The ``top`` completed trials with the highest value, one per distinct goal, best first
    (ties: the earlier trial), each with its goal expression."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    picked: list[tuple[Any, str]] = []
    seen: set[str] = set()
    for trial in sorted(done, key=lambda t: (-t.value, t.number)):
        goal = trial.user_attrs.get("goal") or settings.space.goal(trial.params).to_expression()
        if goal not in seen and len(picked) < top:
            seen.add(goal)
            picked.append((trial, goal))
    return picked


BEST_CONFIG_HEADER = (
    "# The searched network with the best goal found so far in the searched layer; train it with\n"
    "#   infomorphic train --config best_config.toml [--epochs N]\n"
)


def write_best(study: Any, settings: AnySettings, out_dir: Path) -> dict[str, Any] | None:
    """Write ``best_goal.txt`` (the goal as an expression), ``best.json`` and, for a supervised
    search, ``best_config.toml`` (the searched training config with that goal in the searched
    layer, for ``infomorphic train --config``)."""
    from ..runs import atomic_write

    found = best_goal(study, settings)
    if found is None:
        return None
    goal, trial = found
    record = {
        "study": study.study_name,
        "sampler": settings.sampler,
        "value": trial.value,
        "trial": trial.number,
        "test_acc": trial.user_attrs.get("test_acc"),
        "params": trial.params,
        "goal": goal.to_expression(),
        "vector": goal.to_vector(),
        "sources": "".join(goal.sources),
        "layer": settings.layer,
        "task": settings.task,
        "counts": counts(study),
    }
    if isinstance(settings, MemorySearchSettings):  # the value is the capacity proxy: how it was found
        record["capacity_per_seed"] = trial.user_attrs.get("capacity_per_seed")
        record["probes"] = trial.user_attrs.get("probes")
    atomic_write(out_dir / "best_goal.txt", lambda fh: fh.write(goal.to_expression() + "\n"))
    if isinstance(settings, SearchSettings):  # ready to train: the searched network, this goal in its layer
        # threads back to the default: a search's are per worker
        config = config_with_goal(
            settings.config, settings.layer, goal, baselines=settings.config.baselines, threads=None
        )
        text = config.to_toml()
        atomic_write(out_dir / "best_config.toml", lambda fh: fh.write(BEST_CONFIG_HEADER + text))
    write_json(out_dir / "best.json", record)
    return record


# -------------------------------------------------------------------------- running
def _optimize(
    study: Any,
    settings: AnySettings,
    trials_dir: Path,
    n_trials: int,
    callbacks: list[Callable[[Any, Any], None]],
    data: Any | None = None,
    stops: StopRequests | None = None,
) -> None:
    """Run trials until the study holds ``n_trials`` finished trials and no queued one.

    Before every trial (so first of all on a resume or join) the trials of dead processes are
    failed and their parameters queued again (:func:`fail_stale_trials`); only then is the target
    checked.  A trial stopped by Ctrl-C (or SIGTERM, with ``stops`` installed) is queued again
    before the ``KeyboardInterrupt`` goes on; a stop asked for between trials is raised before
    the next one.
    """
    stops = stops or StopRequests()
    threads = settings.threads if isinstance(settings, MemorySearchSettings) else settings.config.threads
    if threads:
        import torch

        torch.set_num_threads(threads)
    objective = make_objective(settings, trials_dir, data, stops)
    _settle(study)
    with _quiet_interrupted_trials():
        while True:
            stops.check()
            fail_stale_trials(study)
            if _finished(study) >= n_trials and not _waiting(study):
                return
            try:
                study.optimize(
                    objective,
                    n_trials=1,
                    callbacks=callbacks,
                    catch=(),
                    gc_after_trial=True,
                    show_progress_bar=False,
                )
            except KeyboardInterrupt:
                _requeue_interrupted(study)
                raise


class _InterruptedTrialFilter(logging.Filter):
    """Drops optuna's two warnings about a trial that Ctrl-C (or SIGTERM) stopped, "Trial N failed
    with parameters ... KeyboardInterrupt()" with its traceback and "Trial N failed with value
    None.": the search says in one line that the trial is queued again.  Other failures pass."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        words = record.getMessage().split(maxsplit=3)
        if len(words) < 3 or words[0] != "Trial" or words[2] != "failed" or not words[1].isdigit():
            return True
        number = int(words[1])
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            self._interrupted.add(number)
        return number not in self._interrupted


@contextmanager
def _quiet_interrupted_trials() -> Iterator[None]:
    """Inside the block, optuna does not report trials stopped by Ctrl-C as failures
    (:class:`_InterruptedTrialFilter` on the logger of optuna's trial loop)."""
    logger = logging.getLogger("optuna.study._optimize")
    quiet = _InterruptedTrialFilter()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def _finished(study: Any) -> int:
    return len(study.get_trials(deepcopy=False, states=_counted_states()))


def _waiting(study: Any) -> bool:
    from optuna.trial import TrialState

    return bool(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) and SIGTERM inside the block, so that a second signal cannot cut
    it short."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _mark_interrupted(trial: Any) -> None:
    """Mark a trial that Ctrl-C stopped for re-queueing (before optuna fails it)."""
    storage, trial_id = getattr(trial, "storage", None), getattr(trial, "_trial_id", None)
    if storage is None or trial_id is None:  # a FixedTrial
        return
    with _sigint_deferred():
        try:
            storage.set_trial_system_attr(trial_id, _REQUEUE_KEY, _marker(False))
        except Exception:  # already finished, or the storage is gone: the resume will see it RUNNING or FAIL
            log.debug("could not mark trial %s as interrupted", trial_id, exc_info=True)


def _requeue_interrupted(study: Any) -> None:
    """Queue again the trial this process ran when Ctrl-C stopped it (optuna has failed it)."""
    from optuna.trial import TrialState

    trial_id = getattr(study.sampler, "trial_id", None)
    callback = study._storage.get_heartbeat_stale_trial_callback()
    if trial_id is None or not isinstance(callback, RequeueStaleTrial):
        return
    with _sigint_deferred():
        storage = study._storage
        trial = storage.get_trial(trial_id)
        if trial.state == TrialState.RUNNING and not _claim_failed(storage, trial_id, crashed=False):
            return
        trial = copy.deepcopy(storage.get_trial(trial_id))
        if trial.state != TrialState.FAIL or trial.number in _requeued_numbers(
            study.get_trials(deepcopy=False)
        ):
            return
        callback(study, trial, crashed=False)


PARENT_POLL_S = 1.0
"""Seconds between a worker process's checks that the search process that started it lives."""


def _stop_with_parent(parent: int, worker: int) -> None:
    """Stop this worker process, as Ctrl-C would (its trial is queued again), when its parent
    ``parent`` (the ``infomorphic search`` process that spawned it) is gone, e.g. ``kill -9``:
    a search stops as a whole (workers joining from elsewhere are separate searches).

    Called in the main thread: a process started in the background by a shell inherits SIGINT
    ignored, and Python then never raises ``KeyboardInterrupt``; the worker takes Python's
    handler back (its parent stops it on Ctrl-C anyway)."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        print(
            f"search worker {worker}: its search process (pid {parent}) is gone; stopping "
            "(its trial is queued again)",
            file=sys.stderr,
            flush=True,
        )
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_main(
    storage: str, study_name: str, worker: int, trials_dir: str, n_trials: int, parent: int | None = None
) -> None:
    """Entry point of a worker process:
    ``python -m infomorphic.goalsearch.search STORAGE STUDY K DIR N [PARENT_PID]`` (without
    ``PARENT_PID``, e.g. a worker started by hand, it watches no parent)."""
    import optuna

    if parent is not None:
        _stop_with_parent(parent, worker)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stops = StopRequests()
    with stops.installed(), _storage_errors(storage, f"--resume --out {Path(trials_dir).parent}"):
        study = create_study(None, storage, study_name, worker=worker, resume=True)
        _optimize(study, study_settings(study), Path(trials_dir), n_trials, [], stops=stops)


def run_search(
    settings: AnySettings | None,
    out_dir: Path,
    *,
    n_trials: int | None,
    storage: str | None = None,
    study_name: str = "goal-search",
    workers: int = 1,
    resume: bool = False,
    on_trial: Callable[[Any, AnySettings, dict[str, Any] | None], None] | None = None,
    data: Any | None = None,
    on_start: Callable[[Any], None] | None = None,
    warm_start: Sequence[Any] = (),
) -> tuple[Any, AnySettings, dict[str, Any] | None]:
    """Run (or resume, or join) a search until the study holds ``n_trials`` finished trials.

    A new study first receives the ``warm_start`` trials (:func:`~.warmstart.read_warm_start`,
    for the tpe and gp samplers); they count among its finished trials and its start-up trials.

    The target is stored in the study (user attribute :data:`TARGET_KEY`): ``n_trials=None``
    (e.g. a process joining from another machine without ``--trials``) takes the study's
    target, else the one in ``out_dir/search.json``, else :data:`DEFAULT_TRIALS`; a given
    ``n_trials`` becomes the study's target for every process that starts or joins later.

    ``on_start(study)`` is called once the study is open (e.g. to start a progress bar only
    when the storage works).

    Worker 0 runs in this process (``on_trial(study, settings, record)`` after each of its
    trials, ``record`` being what :func:`write_best` wrote then, None before a trial completed);
    workers 1..K-1 are spawned processes on the same storage.  ``search.json`` in ``out_dir``
    records the storage URL and study name for ``--resume``; the best goal is written after
    every trial of this process and at the end.  Trials of dead processes are failed and queued
    again first (see :func:`_optimize`), and the search goes on until no queued trial is left.

    Returns
    -------
    The study, the stored settings and the final :func:`write_best` record (None when no
    trial completed).

    Raises
    ------
    ValueError
        For a study that exists (new search) or does not (``resume``), and for a storage that
        cannot be used (one line saying what is wrong).
    """
    import optuna

    out_dir = Path(out_dir)
    if warm_start:
        check_warm_start(settings, resume)
        target = DEFAULT_TRIALS if n_trials is None else n_trials
        if target <= len(warm_start):
            raise ValueError(
                f"the {len(warm_start)} warm-start trials alone reach the target of {target} finished trials "
                f"(--trials counts every finished trial of the study): give --trials above {len(warm_start)}"
            )
    if settings is not None and not resume:
        require_sampler(settings.sampler)  # before anything is written
    if storage is None:
        out_dir.mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{(out_dir / 'study.db').resolve()}"
    if not resume and settings is None:
        raise ValueError("a new search needs its settings")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(settings, storage, study_name, worker=0, resume=resume, warm_start=warm_start)
    stored = study_settings(study)
    with _storage_errors(storage):
        n_trials = _resolve_target(study, n_trials, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / "search.json",
        {"storage": storage, "study_name": study_name, "n_trials": n_trials, "settings": stored.to_dict()},
    )
    trials_dir = out_dir / "trials"
    remove_stale_temporaries(out_dir)  # of killed writers of best.json / search.json (dead pids only)
    if on_start is not None:
        on_start(study)

    def after_trial(study_: Any, trial: Any) -> None:
        record = write_best(study_, stored, out_dir)
        if on_trial is not None:
            on_trial(study_, stored, record)

    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", __name__, storage, study_name),
                *(str(k), str(trials_dir), str(n_trials), str(os.getpid())),
            ]
        )
        for k in range(1, workers)
    ]
    try:
        stops = StopRequests()
        with stops.installed(), _storage_errors(storage, f"--resume --out {out_dir}"):
            _optimize(study, stored, trials_dir, n_trials, [after_trial], data, stops)
            with stops.open():
                for p in procs:
                    p.wait()
    finally:
        _stop_workers(procs)
    failed = [p.returncode for p in procs if p.returncode not in (0, None)]
    if failed:
        log.warning("%d worker process(es) exited with codes %s", len(failed), failed)
    with _storage_errors(storage):
        return study, stored, write_best(study, stored, out_dir)


WORKER_STOP_S = 60.0
"""Seconds a stopped search waits for each worker process to queue its trial again and exit
before it kills it."""


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    """Stop the worker processes still running (the search itself stops: Ctrl-C, SIGTERM, an
    error) as Ctrl-C would, each queueing its trial again; kill one that takes longer than
    :data:`WORKER_STOP_S`.  (Should a second Ctrl-C cut this short, the workers see their
    parent gone within a second and stop by themselves: :func:`_stop_with_parent`.)"""
    for p in procs:
        if p.poll() is None:
            p.terminate()  # SIGTERM: Ctrl-C in a worker (StopRequests)
    for p in procs:
        try:
            p.wait(timeout=WORKER_STOP_S)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def study_target(study: Any) -> int | None:
    """The target number of finished trials stored in a study (None for a study made before
    targets were stored)."""
    value = study.user_attrs.get(TARGET_KEY)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def _resolve_target(study: Any, n_trials: int | None, out_dir: Path) -> int:
    """The target of this process (see :func:`run_search`), stored in the study when it changes."""
    if n_trials is None:
        n_trials = study_target(study)
    if n_trials is None:
        try:
            recorded = json.loads((out_dir / "search.json").read_text()).get("n_trials")
        except (OSError, ValueError, AttributeError):
            recorded = None
        n_trials = recorded if isinstance(recorded, int) and recorded >= 1 else DEFAULT_TRIALS
    if study_target(study) != n_trials:
        study.set_user_attr(TARGET_KEY, n_trials)
    return n_trials


if __name__ == "__main__":  # a worker process started by run_search
    # its messages (a trial queued again, a stale trial failed) on stderr, as the search's own
    logging.basicConfig(level=logging.WARNING, format=f"search worker {sys.argv[3]}: %(message)s")
    for name in ("infomorphic", __name__):  # this module runs as __main__ here
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        parent_pid = int(sys.argv[6]) if len(sys.argv) > 6 else None
        _worker_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), parent_pid)
    except KeyboardInterrupt:  # Ctrl-C reaches the workers too; their trial is queued again
        sys.exit(130)
    except ValueError as exc:  # one line, as the main process says it (e.g. the storage is gone)
        print(f"error: search worker {sys.argv[3]}: {exc}", file=sys.stderr)
        sys.exit(1)
