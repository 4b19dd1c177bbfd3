"""``infomorphic search status``: trial counts, running trials and the best goal of a study, read
without changing it (the SQLite file stays byte-identical), one-line errors for a missing study
(listing the studies there), a missing file (not created), a bad URL and search flags.

The same on a PostgreSQL server: tests/goalsearch/test_postgres.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from tiny_configs import tiny_config
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.goalsearch import search as gs
from infomorphic.goalsearch.search import SearchSettings, search_status
from infomorphic.goalsearch.space import GoalSpace

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]


def _study(tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """A study without training: 3 complete trials (one best), 1 pruned, 1 failed, 1 running (this
    process), 1 waiting; another study beside it.  Its URL and the trials' states and values."""
    settings = SearchSettings(tiny_config(), GoalSpace.build("FCL"), sampler="random", seed=0)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = gs.create_study(settings, url, "s1")
    space = settings.space
    for value in (0.5, 0.9, 0.7):
        trial = study.ask()
        trial.set_user_attr("goal", space.suggest(trial).to_expression())
        trial.set_user_attr("test_acc", value - 0.01)
        trial.set_user_attr("cpu_seconds", 1800.0)  # what the objective records
        trial.set_user_attr("epochs", 4)
        study.tell(trial, value)
    pruned = study.ask()
    space.suggest(pruned)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    running = study.ask()
    space.suggest(running)
    study.enqueue_trial({name: 0.0 for name in space.params})
    study.set_user_attr(gs.TARGET_KEY, 10)
    gs.create_study(settings, url, "s2")
    gs._rdb(study._storage).engine.dispose()
    states = [{"n": t.number, "state": t.state.name, "value": t.value} for t in study.get_trials()]
    return url, states


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["search", "status", *args])


def _one_line_error(args: list[str]) -> str:
    result = _invoke(args)
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_status_counts_trials_and_names_the_best_goal_and_changes_nothing(tmp_path: Path) -> None:
    url, states = _study(tmp_path)
    db = tmp_path / "study.db"
    before = db.read_bytes()
    result = _invoke(["--storage", url, "--study-name", "s1", "--json"])
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert {k: status[k] for k in ("complete", "pruned", "running", "failed", "waiting", "total")} == {
        "complete": 3,
        "pruned": 1,
        "running": 1,
        "failed": 1,
        "waiting": 1,
        "total": 7,
    }
    assert status["counts"] == {"COMPLETE": 3, "PRUNED": 1, "RUNNING": 1, "FAIL": 1, "WAITING": 1}
    assert status["best_value"] == 0.9 and status["best_trial"] == 1
    assert status["best_test_acc"] == pytest.approx(0.89)
    text = _invoke(["--storage", url, "--study-name", "s1"])  # the human form: the same numbers
    assert text.exit_code == 0, text.stderr
    assert db.read_bytes() == before  # read-only: the file is byte-identical
    assert "3 complete, 1 pruned, 1 running, 1 failed, 1 waiting (7 in all)" in text.stdout
    assert "best validation accuracy 90.00% (trial 1)" in text.stdout
    study, settings = gs.load_search(url, "s1")
    best = study.trials[1]
    assert status["best_goal"] == best.user_attrs["goal"]
    assert status["best_params"] == best.params
    assert status["best_goal"] == settings.space.goal(best.params).to_expression()
    assert (status["sampler"], status["pruner"], status["layer"]) == ("random", "median", "hidden")
    assert status["task"] == "supervised" and status["best_capacity_per_seed"] is None  # (memory: its own)
    assert (status["study"], status["epochs_trained"], status["cpu_hours"]) == ("s1", 12, 1.5)
    # still needed: 6 of the target's 10 trials at the mean of the 4 finished ones (5400 s / 4)
    assert (status["target"], status["cpu_seconds_per_trial"]) == (10, 1350.0)
    assert status["cpu_hours_to_target"] == pytest.approx(6 * 1350 / 3600)
    assert (
        "compute: 12 epochs, 1.50 CPU hours; about 2.25 CPU hours more to the target "
        "(1350 CPU s per finished trial so far)" in text.stdout
    )
    (running,) = status["running_trials"]
    assert running["number"] == 5 and isinstance(running["pid"], int) and running["host"]
    assert best.user_attrs["goal"] in text.stdout
    # no trial changed (the running one of this process stays running)
    assert [{"n": t.number, "state": t.state.name, "value": t.value} for t in study.get_trials()] == states


@pytest.mark.parametrize(
    ("prune", "pruner", "shown"), [(False, "median", "no pruning"), (True, "halving", "halving pruner")]
)
def test_status_names_the_pruning(tmp_path: Path, prune: bool, pruner: str, shown: str) -> None:
    config = tiny_config()
    settings = SearchSettings(
        config, GoalSpace.build("FCL"), sampler="tpe", seed=0, prune=prune, pruner=pruner, min_epochs=1
    )
    url = f"sqlite:///{tmp_path / 'study.db'}"
    gs.create_study(settings, url, "s")
    text = _invoke(["--storage", url, "--study-name", "s"])
    assert text.exit_code == 0, text.stderr
    assert f"(tpe sampler, {shown}, layer hidden)" in text.stdout.splitlines()[0]


def test_status_reads_the_storage_of_a_search_directory(tmp_path: Path) -> None:
    url, _ = _study(tmp_path)
    (tmp_path / "search.json").write_text(json.dumps({"storage": url, "study_name": "s2", "n_trials": 3}))
    status = json.loads(_invoke(["--out", str(tmp_path), "--json"]).stdout)
    assert status["study"] == "s2" and status["total"] == 0 and status["best_goal"] is None
    text = _invoke(["--out", str(tmp_path)])
    assert "best: none yet" in text.stdout
    assert search_status(url, "s1")["complete"] == 3


def test_status_errors_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    url, _ = _study(tmp_path)
    before = (tmp_path / "study.db").read_bytes()
    line = _one_line_error(["--storage", url, "--study-name", "nope"])
    assert "no study 'nope'" in line and "studies there: s1, s2" in line
    missing = tmp_path / "other.db"
    line = _one_line_error(["--storage", f"sqlite:///{missing}"])
    assert str(missing) in line and not missing.exists()  # not created
    assert "not a database URL" in _one_line_error(["--storage", "foo://"])
    line = _one_line_error(["--storage", "postgresql+psycopg://me:secret@127.0.0.1:1/x"])
    assert "reachable" in line and "secret" not in line
    assert "needs --storage URL" in _one_line_error([])
    assert "holds no search" in _one_line_error(["--out", str(tmp_path / "empty")])
    line = _one_line_error(["--storage", url, "--epochs", "3", "--resume", "--workers", "2"])
    assert "drop --epochs, --workers, --resume" in line
    assert (tmp_path / "study.db").read_bytes() == before
    wrong = CliRunner().invoke(app, ["search", "stats"])
    assert wrong.exit_code == 2 and "but status" in wrong.stderr


def test_status_of_an_empty_database_lists_no_studies(tmp_path: Path) -> None:
    import sqlite3

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    line = _one_line_error(["--storage", f"sqlite:///{empty}"])
    assert "no study 'goal-search'" in line and "studies there: none" in line
    assert empty.stat().st_size == 0  # no optuna tables were created


def test_status_says_which_running_trials_lost_their_process(tmp_path: Path) -> None:
    """A trial left RUNNING by a killed search (its process recorded on this host, now ended) is
    shown as such, beside one whose process lives; nothing in the study changes."""
    import subprocess
    import sys

    url, _ = _study(tmp_path)
    study, settings = gs.load_search(url, "s1")
    dead = study.ask()
    settings.space.suggest(dead)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()  # reaped: its pid names no process now
    record = {**gs._process_record(), "pid": ended.pid}
    for key, value in (("process", record), ("host", record["host"]), ("pid", ended.pid)):
        dead.set_user_attr(key, value)
    gs._rdb(study._storage).engine.dispose()
    before = (tmp_path / "study.db").read_bytes()
    status = json.loads(_invoke(["--storage", url, "--study-name", "s1", "--json"]).stdout)
    gone = {t["number"]: t["process_gone"] for t in status["running_trials"]}
    assert gone == {5: False, dead.number: True}  # trial 5: this process, alive
    text = _invoke(["--storage", url, "--study-name", "s1"]).stdout
    (line,) = [row for row in text.splitlines() if row.startswith("running trials:")]
    assert f"pid {ended.pid}: its process is gone; --resume runs it again" in line
    assert line.count("process is gone") == 1
    assert (tmp_path / "study.db").read_bytes() == before
