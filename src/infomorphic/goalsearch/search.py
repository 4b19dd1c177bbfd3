"""Goal-parameter search with optuna: the objective, the study, and worker processes.

Schneider et al. 2025 (seeds/003), appendix A.10: the gammas of the trivariate hidden goal are
searched in [-1, 1] with TPE (multivariate) and CMA-ES (``H_res`` fixed at 0) to maximise the
validation accuracy of a network trained with that goal.

- :func:`make_objective` returns a plain ``objective(trial)`` that uses only
  ``trial.suggest_float`` (through :class:`~.space.GoalSpace`), so that
  ``optuna.trial.FixedTrial(study.best_params)`` replays the best goal exactly.  Each trial
  trains the configured network (:func:`infomorphic.train.fit`) into its own run directory,
  reports the validation accuracy after every epoch and is pruned when unpromising.
- Storage: a URL is handed to optuna's ``RDBStorage`` unchanged (SQLite in the search directory
  by default, or e.g. ``postgresql://...``), with heartbeats so that a trial whose process was
  killed is marked failed and its parameters are tried again; finished trials stay.  All search
  settings live in the study's user attributes, so any process on any machine can join.
- Samplers are seeded: worker ``k`` of a search with seed ``s`` that starts when ``n`` trials
  exist uses seed ``s + 1000 k + 7919 n`` (a fresh single-worker search uses ``s`` itself).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import TrainConfig
from ..goals import Goal
from ..runs import write_json
from .space import GoalSpace

__all__ = [
    "SearchSettings", "SAMPLERS", "make_objective", "make_sampler", "open_storage", "create_study",
    "load_search", "run_search", "best_goal", "write_best", "subset_train", "SETTINGS_KEY",
    "study_settings", "counts", "load_search_data", "config_with_goal",
]

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "cmaes", "random")
SETTINGS_KEY = "infomorphic_search"
"""User attribute of a study holding its :class:`SearchSettings` (JSON)."""
HEARTBEAT_S = 5
GRACE_S = 20


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
        ``hidden`` (the hidden layer's goal) or ``readout``.
    sampler:
        ``tpe``, ``cmaes`` or ``random``.
    seed:
        Sampler seed.
    startup_trials:
        Random trials before TPE models the objective (the paper: 100 of 1000).
    prune:
        Prune trials whose validation accuracy falls below the median of earlier trials at the
        same epoch (optuna's ``MedianPruner``; from the first epoch on, never among the first
        5 trials).
    train_subset:
        Train every trial on this many training examples (a fixed seeded subset) instead of
        all; validation always uses the whole validation split.
    """

    config: TrainConfig
    space: GoalSpace
    layer: str = "hidden"
    sampler: str = "tpe"
    seed: int = 0
    startup_trials: int = 10
    prune: bool = True
    train_subset: int | None = None

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if self.layer not in ("hidden", "readout"):
            raise ValueError(f"layer must be hidden or readout, got {self.layer!r}")
        if self.layer == "hidden" and self.config.network in ("single", "random-hidden", "backprop"):
            raise ValueError(f"network {self.config.network!r} has no hidden goal to search; use --layer readout")
        if self.startup_trials < 0:
            raise ValueError(f"startup_trials must be >= 0, got {self.startup_trials}")
        if self.train_subset is not None and self.train_subset < 2:
            raise ValueError(f"train_subset must be >= 2, got {self.train_subset}")

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["config"] = self.config.to_dict()
        out["space"] = self.space.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SearchSettings":
        return cls(**{**data, "config": TrainConfig.from_dict(data["config"]),
                      "space": GoalSpace.from_dict(data["space"])})

    def config_for(self, goal: Goal, **changes: Any) -> TrainConfig:
        """The trial's training config: the goal written as an expression into ``layer``."""
        return config_with_goal(self.config, self.layer, goal, **changes)


def config_with_goal(config: TrainConfig, layer: str, goal: Goal, **changes: Any) -> TrainConfig:
    """``config`` training with ``goal`` as the goal of ``layer`` (``hidden`` or ``readout``), no
    baselines, and ``changes`` applied (they may override ``baselines`` too)."""
    key = "hidden_goal" if layer == "hidden" else "readout_goal"
    return config.replace(**{key: goal.to_expression(), "baselines": (), **changes})


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

    splits = load_dataset(config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction,
                          seed=config.seed)
    return subset_train(splits, train_subset, config.seed)


# ------------------------------------------------------------------------ objective
def make_objective(settings: SearchSettings, trials_dir: Path, data: Any | None = None) -> Callable[[Any], float]:
    """``objective(trial) -> validation accuracy`` (last epoch) of a network trained with the trial's goal.

    The validation accuracy of every epoch goes to ``trial.report``; ``TrialPruned`` raised
    from there stops training.  The trial's goal expression and test accuracy are stored as
    user attributes.  ``data`` (preloaded splits) is loaded on first use when omitted.
    """
    import optuna

    from ..train import fit

    cache: dict[str, Any] = {"data": data}

    def objective(trial: Any) -> float:
        goal = settings.space.suggest(trial)
        if cache["data"] is None:
            cache["data"] = load_search_data(settings.config, settings.train_subset)
        run_dir = Path(trials_dir) / f"trial-{trial.number:05d}"
        if (run_dir / "checkpoint.pt").exists():  # a FixedTrial replay into a used folder
            run_dir = run_dir.with_name(f"{run_dir.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        trial.set_user_attr("goal", goal.to_expression())
        trial.set_user_attr("pid", os.getpid())

        def report(epoch: int, metrics: dict[str, Any]) -> None:
            trial.report(float(metrics["val_acc"]), epoch)
            if trial.should_prune():
                trial.set_user_attr("pruned_at_epoch", epoch + 1)
                raise optuna.TrialPruned(f"val_acc {metrics['val_acc']:.4f} after epoch {epoch + 1}")

        result = fit(settings.config_for(goal), run_dir=run_dir, progress=False, report=report,
                     data=cache["data"])
        trial.set_user_attr("test_acc", float(result["test_acc"]))
        trial.set_user_attr("run_dir", str(run_dir))
        return float(result["val_acc"])

    return objective


# ---------------------------------------------------------------------------- study
def open_storage(url: str) -> Any:
    """An optuna ``RDBStorage`` for ``url`` (unchanged), with heartbeats and failed-trial retry.

    A trial whose process died stops beating; after ``GRACE_S`` seconds the next worker marks
    it failed and enqueues its parameters again, so no finished trial is lost or repeated.
    SQLite gets a long lock timeout so that several processes can share one file.
    """
    import warnings

    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are flagged experimental
        return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3))


def make_sampler(settings: SearchSettings, seed: int) -> Any:
    """The seeded sampler of ``settings.sampler``."""
    import optuna

    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=settings.startup_trials,
                                          constant_liar=True)
    if settings.sampler == "cmaes":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # consider_pruned_trials is flagged experimental
            return optuna.samplers.CmaEsSampler(
                seed=seed, n_startup_trials=max(1, settings.startup_trials), warn_independent_sampling=False,
                consider_pruned_trials=settings.prune,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed))
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(settings: SearchSettings) -> Any:
    import optuna

    if not settings.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def _counted_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def create_study(settings: SearchSettings | None, storage: str, study_name: str, *, worker: int = 0,
                 resume: bool = False) -> Any:
    """Create the study (``resume=False``) or load it and its stored settings (``resume=True``).

    Raises
    ------
    ValueError
        When creating a study that exists, or resuming one that does not, or one with other settings.
    """
    import optuna

    store = open_storage(storage)
    names = optuna.get_all_study_names(store)
    if resume and study_name not in names:
        raise ValueError(f"cannot resume: no study {study_name!r} in {storage}")
    if not resume and study_name in names:
        raise ValueError(f"study {study_name!r} already exists in {storage}; pass --resume to continue it")
    if resume:
        study = optuna.load_study(study_name=study_name, storage=store)
    else:
        if settings is None:
            raise ValueError("a new study needs its search settings")
        study = optuna.create_study(storage=store, study_name=study_name, direction="maximize")
        study.set_user_attr(SETTINGS_KEY, json.dumps(settings.to_dict()))
    stored = study_settings(study)
    n_existing = len(study.get_trials(deepcopy=False)) if resume else 0
    study.sampler = make_sampler(stored, stored.seed + 1000 * worker + 7919 * n_existing)
    study.pruner = _pruner(stored)
    return study


def study_settings(study: Any) -> SearchSettings:
    """The :class:`SearchSettings` stored in a study's user attributes."""
    raw = study.user_attrs.get(SETTINGS_KEY)
    if raw is None:
        raise ValueError(f"study {study.study_name!r} was not created by infomorphic search (no stored settings)")
    return SearchSettings.from_dict(json.loads(raw))


def load_search(storage: str, study_name: str) -> tuple[Any, SearchSettings]:
    """A finished or running study (default sampler) and its settings, for analysis."""
    import optuna

    store = open_storage(storage)
    names = optuna.get_all_study_names(store)
    if study_name not in names:
        raise ValueError(f"no study {study_name!r} in {storage}; studies there: {', '.join(names) or 'none'}")
    study = optuna.load_study(study_name=study_name, storage=store)
    return study, study_settings(study)


# ------------------------------------------------------------------------- results
def counts(study: Any) -> dict[str, int]:
    """Trials by state name (``COMPLETE``, ``PRUNED``, ``RUNNING``, ``FAIL``, ...)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def best_goal(study: Any, settings: SearchSettings) -> tuple[Goal, Any] | None:
    """The best completed trial's goal (rebuilt from its parameters) and the trial; None if none."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return None
    trial = max(done, key=lambda t: (t.value, -t.number))
    return settings.space.goal(trial.params), trial


def write_best(study: Any, settings: SearchSettings, out_dir: Path) -> dict[str, Any] | None:
    """Write ``best_goal.txt`` (an expression for ``infomorphic train --goal``) and ``best.json``."""
    from ..runs import atomic_write

    found = best_goal(study, settings)
    if found is None:
        return None
    goal, trial = found
    record = {
        "study": study.study_name, "sampler": settings.sampler, "value": trial.value, "trial": trial.number,
        "test_acc": trial.user_attrs.get("test_acc"), "params": trial.params, "goal": goal.to_expression(),
        "vector": goal.to_vector(), "sources": "".join(goal.sources), "layer": settings.layer,
        "counts": counts(study),
    }
    atomic_write(out_dir / "best_goal.txt", lambda fh: fh.write(goal.to_expression() + "\n"))
    write_json(out_dir / "best.json", record)
    return record


# -------------------------------------------------------------------------- running
def _optimize(study: Any, settings: SearchSettings, trials_dir: Path, n_trials: int,
              callbacks: list[Callable[[Any, Any], None]], data: Any | None = None) -> None:
    import optuna

    if settings.config.threads:
        import torch

        torch.set_num_threads(settings.config.threads)
    if _finished(study) >= n_trials:
        return
    stop = optuna.study.MaxTrialsCallback(n_trials, states=_counted_states())
    study.optimize(make_objective(settings, trials_dir, data), callbacks=[stop, *callbacks],
                   catch=(), gc_after_trial=True, show_progress_bar=False)


def _finished(study: Any) -> int:
    return len(study.get_trials(deepcopy=False, states=_counted_states()))


def _worker_main(storage: str, study_name: str, worker: int, trials_dir: str, n_trials: int) -> None:
    """Entry point of a worker process: ``python -m infomorphic.goalsearch.search STORAGE STUDY K DIR N``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(None, storage, study_name, worker=worker, resume=True)
    _optimize(study, study_settings(study), Path(trials_dir), n_trials, [])


def run_search(
    settings: SearchSettings | None,
    out_dir: Path,
    *,
    n_trials: int,
    storage: str | None = None,
    study_name: str = "goal-search",
    workers: int = 1,
    resume: bool = False,
    on_trial: Callable[[Any, SearchSettings, dict[str, Any] | None], None] | None = None,
    data: Any | None = None,
) -> tuple[Any, SearchSettings, dict[str, Any] | None]:
    """Run (or resume, or join) a search until the study holds ``n_trials`` finished trials.

    Worker 0 runs in this process (``on_trial(study, settings, record)`` after each of its
    trials, ``record`` being what :func:`write_best` wrote then, None before a trial completed);
    workers 1..K-1 are spawned processes on the same storage.  ``search.json`` in ``out_dir``
    records the storage URL and study name for ``--resume``; the best goal is written after
    every trial of this process and at the end.

    Returns
    -------
    The study, the stored settings and the final :func:`write_best` record (None when no
    trial completed).
    """
    import optuna

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    if not resume and settings is None:
        raise ValueError("a new search needs its settings")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = create_study(settings, storage, study_name, worker=0, resume=resume)
    stored = study_settings(study)
    write_json(out_dir / "search.json", {"storage": storage, "study_name": study_name, "n_trials": n_trials,
                                         "settings": stored.to_dict()})
    trials_dir = out_dir / "trials"

    def after_trial(study_: Any, trial: Any) -> None:
        record = write_best(study_, stored, out_dir)
        if on_trial is not None:
            on_trial(study_, stored, record)

    procs = [subprocess.Popen([sys.executable, "-m", __name__, storage, study_name, str(k), str(trials_dir),
                               str(n_trials)]) for k in range(1, workers)]
    try:
        _optimize(study, stored, trials_dir, n_trials, [after_trial], data)
        for p in procs:
            p.wait()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()
    failed = [p.returncode for p in procs if p.returncode not in (0, None)]
    if failed:
        log.warning("%d worker process(es) exited with codes %s", len(failed), failed)
    return study, stored, write_best(study, stored, out_dir)


if __name__ == "__main__":  # a worker process started by run_search
    _worker_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
