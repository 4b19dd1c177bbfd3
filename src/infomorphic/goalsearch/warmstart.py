"""Trials of one search as JSON lines, and a new search warm-started from them.

A model-based sampler (TPE, GP) proposes goals from the trials its study holds; trials evaluated
elsewhere (an earlier search with another sampler, a search on another machine, a study whose
database is gone) can inform it as well when they measured the same thing.

- :func:`trial_record` / :func:`export_trials`: every trial of a study as one JSON object
  (``number``, ``state``, ``value``, ``params``, ``user_attrs``, ``datetime_start``,
  ``datetime_complete``), what ``infomorphic search export`` prints, one per line.
- :func:`read_warm_start`: the complete trials of such files as optuna trials of a new study
  (``infomorphic search --warm-start FILE``), checked against the new search's settings: the
  same searched gammas in the same range, the same goal for the same gammas (so the same
  fixed gammas), and, where the file says, the same number of epochs and seeds.  What the file cannot
  say (data set, network, seed, code version) is the user's to match.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["WARM_START_KEY", "export_trials", "read_warm_start", "trial_record"]

WARM_START_KEY = "warm_start"
"""User attribute of a trial added by ``--warm-start``: ``"<file>:<line>"`` it came from."""


def _when(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def trial_record(trial: Any) -> dict[str, Any]:
    """One optuna trial as a JSON-ready object (the form :func:`read_warm_start` reads)."""
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value,
        "params": dict(trial.params),
        "user_attrs": dict(trial.user_attrs),
        "datetime_start": _when(trial.datetime_start),
        "datetime_complete": _when(trial.datetime_complete),
    }


def export_trials(storage: str, study_name: str) -> list[dict[str, Any]]:
    """Every trial of a study, in trial order, as :func:`trial_record` objects (read-only:
    the study is not changed).

    Raises
    ------
    ValueError
        One line: the storage cannot be used, the SQLite file does not exist, or there is no
        such study (the message lists the studies there).
    """
    from .search import read_only_study

    with read_only_study(storage, study_name) as study:
        records = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    return records


def _epochs(settings: Any) -> int | None:
    config = getattr(settings, "config", None)
    return None if config is None or not hasattr(config, "epochs") else int(config.epochs)


def _seeds(settings: Any) -> list[str] | None:
    """The run seeds whose mean is a trial's value in a supervised search (None otherwise)."""
    config = getattr(settings, "config", None)
    if config is None or not hasattr(config, "seed"):
        return None
    return [str(s) for s in (getattr(settings, "seeds", ()) or (config.seed,))]


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _trial(record: Any, where: str, settings: Any) -> Any | None:
    """The optuna trial of one record (None when it is not a complete trial), or ValueError."""
    import optuna
    from optuna.distributions import BaseDistribution, FloatDistribution

    from ..goals import Goal

    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object (a trial), got {type(record).__name__}")
    if record.get("state", "COMPLETE") != "COMPLETE":
        return None
    space = settings.space
    params, value = record.get("params"), record.get("value")
    if not isinstance(params, dict):
        raise ValueError(f"{where}: no 'params' object (the trial's gammas)")
    if not _finite(value):
        raise ValueError(f"{where}: 'value' must be a finite number, got {value!r}")
    missing = [n for n in space.params if n not in params]
    extra = [n for n in params if n not in space.params]
    if missing or extra:
        what = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"not searched here: {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise ValueError(
            f"{where}: its gammas are not this search's ({what}); this search's: {', '.join(space.params)}"
        )
    for name in space.params:
        x = params[name]
        if not _finite(x) or not space.low <= x <= space.high:
            raise ValueError(f"{where}: {name} = {x!r} is not a number in [{space.low:g}, {space.high:g}]")
    attrs = record.get("user_attrs") or {}
    if not isinstance(attrs, dict):
        raise ValueError(f"{where}: 'user_attrs' must be an object")
    goal = space.goal(params)
    stored = attrs.get("goal")
    if isinstance(stored, str):
        try:
            theirs = Goal.resolve(stored, space.sources)
        except ValueError as exc:
            raise ValueError(f"{where}: its goal {stored!r} does not parse: {exc}") from None
        if not all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(theirs.to_vector(), goal.to_vector())):
            raise ValueError(
                f"{where}: its goal differs from this search's goal for the same gammas (the gammas "
                "that are not searched differ: --base-goal / --fix-hres)"
            )
    epochs, theirs_epochs = _epochs(settings), attrs.get("epochs")
    if epochs is not None and theirs_epochs is not None and theirs_epochs != epochs:
        raise ValueError(
            f"{where}: trained for {theirs_epochs} epochs, this search trains {epochs}: values of "
            "another fidelity are not comparable (give --epochs "
            f"{theirs_epochs}, or leave this file out)"
        )
    per_seed, seeds = attrs.get("val_acc_per_seed"), _seeds(settings)
    if isinstance(per_seed, dict) and seeds is not None and sorted(per_seed) != sorted(seeds):
        raise ValueError(
            f"{where}: its value is the mean over seeds {', '.join(sorted(per_seed))}, this search's "
            f"over {', '.join(sorted(seeds))} (--seeds)"
        )
    kept = {
        k: attrs[k] for k in ("test_acc", "epochs", "val_acc_per_seed", "test_acc_per_seed") if k in attrs
    }
    if "cpu_seconds" in attrs:  # spent elsewhere: not this study's compute
        kept["warm_start_cpu_seconds"] = attrs["cpu_seconds"]
    distributions: dict[str, BaseDistribution] = {
        n: FloatDistribution(space.low, space.high) for n in space.params
    }
    return optuna.trial.create_trial(
        params={n: float(params[n]) for n in space.params},
        distributions=distributions,
        value=float(value),  # type: ignore[arg-type]  # checked finite above
        user_attrs={**kept, "goal": goal.to_expression(), WARM_START_KEY: where},
    )


def read_warm_start(paths: Sequence[Path | str], settings: Any) -> list[Any]:
    """The complete trials of JSON-lines files (:func:`export_trials`' form) as optuna trials
    for a new search with ``settings``; other states (pruned, failed, running) are skipped.

    Each trial keeps ``test_acc``, ``epochs`` and the per-seed accuracies of its user
    attributes, its goal (``goal``), where it came from (``warm_start``: ``"<file>:<line>"``)
    and the CPU seconds it cost (``warm_start_cpu_seconds``, not counted as this study's).

    Raises
    ------
    ValueError
        One line naming the file and line: unreadable file, invalid JSON, a trial over other
        gammas, out of the range, with another goal for the same gammas (other fixed gammas),
        trained for another number of epochs, or without a finite value; a file without a
        complete trial.
    """
    trials: list[Any] = []
    for path in paths:
        path = Path(path)
        try:
            lines: Iterable[str] = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read the warm-start file {path}: {exc}") from None
        found = 0
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{where}: not a JSON object ({exc.msg}); expected one trial per line"
                ) from None
            trial = _trial(record, where, settings)
            if trial is not None:
                trials.append(trial)
                found += 1
        if not found:
            raise ValueError(
                f"{path} holds no complete trial (expected the JSON lines of infomorphic search export)"
            )
    return trials
