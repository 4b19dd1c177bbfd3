"""A memory-goal search survives ``kill -9`` (SQLite; the same on PostgreSQL: test_postgres.py).

A real ``infomorphic search --task memory`` on the tiny memory is killed with ``kill -9`` in the
middle of a trial and resumed with ``--resume`` (which knows the task from the stored settings):
the killed trial is failed and its goal trained again, no finished trial is lost or repeated,
and the finished trials are those of an uninterrupted search (same goals, same order, same
capacity proxies: one worker, seeded).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tiny_memory import tiny_memory_args

from infomorphic.goalsearch import search as gs
from infomorphic.goalsearch.memory_search import MemorySearchSettings

N_TRIALS = 6
SEARCH = [
    *tiny_memory_args(),
    "--seed",
    "3",
    "--sampler",
    "tpe",
    "--startup-trials",
    "2",
    "--trials",
    str(N_TRIALS),
]
FINISHED = ("COMPLETE", "PRUNED")
pytestmark = pytest.mark.filterwarnings(
    "ignore:Heartbeat of storage is supposed to be used with Study.optimize"
)


def _start(out: Path, *, resume: bool = False) -> subprocess.Popen:
    args = ["search", "--out", str(out), "--no-progress", "--json", *(["--resume"] if resume else SEARCH)]
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("infomorphic")), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _finish(proc: subprocess.Popen) -> str:
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["task"] == "memory"
    return stderr


def _training(out: Path) -> list[int]:
    """Numbers of the RUNNING trials of ``out/study.db`` that have suggested their goal."""
    query = (
        "SELECT t.number FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
        "WHERE t.state = 'RUNNING' AND a.key = 'goal'"
    )
    if not (out / "study.db").exists():
        return []
    try:
        with sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True, timeout=5) as connection:
            return [row[0] for row in connection.execute(query)]
    except sqlite3.Error:  # not created yet, or busy
        return []


def _trials(out: Path) -> list[Any]:
    study, settings = gs.load_search(f"sqlite:///{out / 'study.db'}", "goal-search")
    assert isinstance(settings, MemorySearchSettings)
    return study.get_trials()


def _path(trials: list[Any]) -> list[tuple[str, dict[str, float], float | None]]:
    return [(t.state.name, t.params, t.value) for t in trials if t.state.name in FINISHED]


def test_kill_9_of_a_memory_search_then_resume(tmp_path: Path) -> None:
    plain = _start(tmp_path / "plain")  # the uninterrupted search, in parallel
    out = tmp_path / "killed"
    proc = _start(out)
    deadline = time.monotonic() + 180
    while 2 not in _training(out):  # trials 0 and 1 finished, trial 2 training
        assert proc.poll() is None, f"the search ended before trial 2 ran: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, "trial 2 never ran"
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    before = {t.number: t for t in _trials(out) if t.state.name in FINISHED}
    killed = _trials(out)[2]
    assert sorted(before) == [0, 1] and killed.state.name == "RUNNING" and killed.params

    _finish(_start(out, resume=True))
    trials = _trials(out)
    states = [t.state.name for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states
    assert [t.number for t in trials if t.state.name == "FAIL"] == [2]
    (rerun,) = [t for t in trials if t.system_attrs.get("retry_history")]
    assert rerun.system_attrs["retry_history"] == [2] and rerun.params == killed.params
    assert rerun.state.name in FINISHED and rerun.user_attrs["probes"]
    # none lost: what had finished is unchanged; none repeated: the finished goals differ
    for number, t in before.items():
        now = trials[number]
        assert (now.state, now.params, now.value, now.user_attrs) == (
            t.state,
            t.params,
            t.value,
            t.user_attrs,
        )
    finished = [t for t in trials if t.state.name in FINISHED]
    assert len(finished) == N_TRIALS
    assert len({json.dumps(t.params, sort_keys=True) for t in finished}) == N_TRIALS
    # one seeded worker: the path of an uninterrupted search
    _finish(plain)
    expected = _path(_trials(tmp_path / "plain"))
    assert len(expected) == N_TRIALS and _path(trials) == expected
    assert len({value for _, _, value in expected}) >= 2  # values that tell paths apart
