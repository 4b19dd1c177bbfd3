"""Goal search on a real PostgreSQL server with several processes (slow; scripts/test.sh runs it).

scripts/postgres_start.sh starts a server in a temporary folder (installing Debian's postgresql
package when it is missing); ``infomorphic search --storage URL --workers 3`` runs a tiny search;
one worker process is killed with ``kill -9`` in the middle of a trial, the others finish, the
search is resumed; then: the requested number of trials completed, none lost or repeated, the
killed trial failed and its goal was trained again, and ``infomorphic search status`` reports the
counts without changing the study.  The same for the memory-goal search (``--task memory``, a
tiny memory; the study remembers its task, so the resume and status need nothing else).  The
server is stopped at the end, also on failure.

The test must not be skipped in CI: when no server can be started it fails, saying why.  On a
machine without PostgreSQL, INFOMORPHIC_NO_POSTGRES=1 skips it (ignored when CI is set).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_configs import tiny_search_args
from tiny_memory import tiny_memory_args
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.goalsearch import search as gs

ROOT = Path(__file__).resolve().parents[2]
N_TRIALS = 10
WORKERS = 3
STUDY = "pg-search"
SAMPLING = [
    "--sampler",
    "tpe",
    "--startup-trials",
    "2",
    "--no-prune",
]  # --no-prune: every finished trial is COMPLETE
SEARCH = [
    *tiny_search_args(epochs=5),
    *SAMPLING,
]  # long enough for the spawned workers to start while trials remain
CASES = {  # task: study, options, trials
    "supervised": (STUDY, SEARCH, N_TRIALS),
    "memory": (  # probes run >= 500 epochs unless recalled: 1-10 s a trial, the workers start in time
        "pg-memory-search",
        [
            *tiny_memory_args(neurons=30, max_epochs=600, min_epochs=500),
            *("--sampler", "tpe", "--startup-trials", "2", "--no-prune"),
        ],
        8,
    ),
}
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]


def _script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def postgres(pg_server: tuple[Path, str]) -> str:
    """The storage URL of the module's PostgreSQL server."""
    return pg_server[1]


@pytest.fixture(scope="module")
def pg_server() -> Iterator[tuple[Path, str]]:
    """The cluster folder and storage URL of a PostgreSQL server started by
    scripts/postgres_start.sh (stopped and deleted afterwards)."""
    if os.environ.get("INFOMORPHIC_NO_POSTGRES") == "1" and not os.environ.get("CI"):
        pytest.skip("INFOMORPHIC_NO_POSTGRES=1: no PostgreSQL server on this machine")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail(
            "the PostgreSQL driver psycopg is not installed: bash scripts/setup.sh test "
            "(or pip install 'infomorphic[postgres]')"
        )
    # under /tmp, not pytest's root-only tmp_path: run as root, the server runs as the user postgres
    folder = Path(tempfile.mkdtemp(prefix="infomorphic-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    try:
        started = _script("postgres_start.sh", str(folder), timeout=900)  # may apt-get install postgresql
        if started.returncode != 0:
            pytest.fail(
                f"scripts/postgres_start.sh could not start a PostgreSQL server (exit {started.returncode}): "
                f"{started.stderr.strip()}  (outside CI, INFOMORPHIC_NO_POSTGRES=1 skips this test)"
            )
        url = started.stdout.strip().splitlines()[-1]
        again = _script("postgres_start.sh", str(folder), timeout=60)  # idempotent: the same URL
        assert again.returncode == 0 and again.stdout.strip() == url, again.stderr
        _refusals(folder, url)
        yield folder, url
    finally:
        stopped = _script("postgres_stop.sh", str(folder), timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
        assert stopped.returncode == 0, stopped.stderr


def _refusals(folder: Path, url: str) -> None:
    """One-line errors of the scripts: a taken port, a folder that is not a cluster, another port
    for the running server."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    with tempfile.TemporaryDirectory(prefix="infomorphic-pg-", dir=folder.parent) as other:
        taken = _script("postgres_start.sh", other, "--port", port, timeout=60)
        assert taken.returncode == 1 and taken.stderr.splitlines() == [
            f"error: port {port} is in use by another program: give another --port, or leave it out for a free one"
        ]
        (Path(other) / "notes.txt").write_text("not a cluster")
        for script in ("postgres_start.sh", "postgres_stop.sh"):
            refused = _script(script, other, timeout=60)
            assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1, refused.stderr
            assert "is not" in refused.stderr and "a cluster" in refused.stderr
    moved = _script("postgres_start.sh", str(folder), "--port", str(int(port) + 1), timeout=60)
    assert moved.returncode == 1 and "already running on port" in moved.stderr


def _infomorphic(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("infomorphic")), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _start_search(
    url: str, name: str, search_args: list[str], n_trials: int, workers: int, out: Path
) -> subprocess.Popen[str]:
    """``infomorphic search`` with ``workers`` processes on study ``name`` at ``url`` (JSON out)."""
    return subprocess.Popen(
        _infomorphic(
            "search",
            *search_args,
            *("--trials", str(n_trials), "--workers", str(workers), "--storage", url, "--study-name", name),
            *("--out", str(out), "--no-progress", "--json"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _resume(out: Path) -> subprocess.CompletedProcess[str]:
    """``infomorphic search --resume --out OUT`` (storage and study from its search.json)."""
    return subprocess.run(
        _infomorphic("search", "--resume", "--out", str(out), "--no-progress", "--json"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


def _running(url: str, study: str) -> list[tuple[int, int]]:
    """(trial number, pid) of the RUNNING trials that have suggested their goal (are training)."""
    import psycopg

    query = """
        SELECT t.number, p.value_json FROM trials t
        JOIN studies s ON s.study_id = t.study_id
        JOIN trial_user_attributes p ON p.trial_id = t.trial_id AND p.key = 'pid'
        JOIN trial_user_attributes g ON g.trial_id = t.trial_id AND g.key = 'goal'
        WHERE t.state = 'RUNNING' AND s.study_name = %s
    """
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, connect_timeout=10) as connection:
            return [(number, int(json.loads(pid))) for number, pid in connection.execute(query, (study,))]
    except psycopg.errors.UndefinedTable:  # the study is not created yet
        return []


def _snapshot(url: str, name: str) -> list[tuple[Any, ...]]:
    study, _ = gs.load_search(url, name)
    return [
        (t.number, t.state.name, t.value, json.dumps(t.params, sort_keys=True), t.datetime_complete)
        for t in study.get_trials()
    ]


@pytest.mark.parametrize("task", list(CASES))
def test_three_workers_on_postgres_one_killed_then_resumed(postgres: str, tmp_path: Path, task: str) -> None:
    url, out = postgres, tmp_path / "search"
    name, search_args, n_trials = CASES[task]
    start = time.monotonic()
    search = _start_search(url, name, search_args, n_trials, WORKERS, out)
    try:
        # wait until a worker process (not the one we started: a spawned worker) is training a trial
        deadline = time.monotonic() + 240
        while not (others := [(n, pid) for n, pid in _running(url, name) if pid != search.pid]):
            assert search.poll() is None, (
                f"the search ended before a spawned worker ran a trial: {search.communicate()}"
            )
            assert time.monotonic() < deadline, "no spawned worker started a trial"
            time.sleep(0.05)
        killed_number, killed_pid = others[0]
        time.sleep(0.3)
        status_during = gs.search_status(url, name)  # read while the workers write
        os.kill(killed_pid, signal.SIGKILL)
        before = {row[0]: row for row in _snapshot(url, name) if row[1] == "COMPLETE"}
        stdout, stderr = search.communicate(timeout=300)
    finally:
        if search.poll() is None:
            search.kill()
            search.communicate()
    assert search.returncode == 0, stderr
    assert json.loads(stdout)["study"] == name
    assert status_during["running"] >= 1 and status_during["total"] >= 1

    # resume: the same search again (storage and study from search.json)
    resumed = _resume(out)
    assert resumed.returncode == 0, resumed.stderr
    elapsed = time.monotonic() - start

    study, settings = gs.load_search(url, name)
    assert settings.task == task
    trials = study.get_trials()
    by_state: dict[str, list[Any]] = {}
    for t in trials:
        by_state.setdefault(t.state.name, []).append(t)
    complete = by_state.get("COMPLETE", [])
    assert set(by_state) <= {"COMPLETE", "FAIL"}, {k: len(v) for k, v in by_state.items()}
    # the requested number completed (parallel workers may each finish one more that they began
    # while the target was not yet met)
    assert n_trials <= len(complete) <= n_trials + WORKERS - 1
    # none lost: what had completed at the kill is still there, unchanged
    after = {row[0]: row for row in _snapshot(url, name)}
    assert all(after[number] == row for number, row in before.items())
    # none repeated: every completed goal is different
    goals = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(set(goals)) == len(goals)
    # the killed trial failed, and its goal was queued again and completed (once)
    (failed,) = by_state["FAIL"]
    assert failed.number == killed_number and failed.user_attrs["pid"] == killed_pid and failed.params
    (rerun,) = [t for t in complete if t.system_attrs.get("retry_history")]
    assert rerun.system_attrs["retry_history"] == [killed_number] and rerun.params == failed.params
    assert rerun.user_attrs["pid"] != killed_pid
    assert len({t.user_attrs["pid"] for t in trials}) >= 2  # several processes trained

    # search status: the counts, read-only
    snapshot = _snapshot(url, name)
    status = subprocess.run(
        _infomorphic("search", "status", "--storage", url, "--study-name", name, "--json"),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert (report["complete"], report["failed"], report["running"], report["waiting"], report["pruned"]) == (
        len(complete),
        1,
        0,
        0,
        0,
    )
    best = max(complete, key=lambda t: (t.value, -t.number))
    assert (report["best_value"], report["best_trial"]) == (best.value, best.number)
    assert report["best_goal"] == best.user_attrs["goal"] and report["best_params"] == best.params
    assert report["task"] == task
    if task == "memory":  # the value is the capacity proxy of the tiny memory
        assert report["best_capacity_per_seed"] == best.user_attrs["capacity_per_seed"] == {"0": best.value}
    assert _snapshot(url, name) == snapshot
    runner = CliRunner()  # (in this process: the human form, and a missing study)
    text = runner.invoke(app, ["search", "status", "--out", str(out)])
    assert f"{len(complete)} complete, 0 pruned, 0 running, 1 failed, 0 waiting" in text.stdout, text.stderr
    missing = runner.invoke(app, ["search", "status", "--storage", url, "--study-name", "nope"])
    (line,) = missing.stderr.strip().splitlines()
    assert missing.exit_code == 2 and line.startswith(f"error: no study 'nope' in {url}; studies there: ")
    assert name in line.rsplit(": ", 1)[1].split(", ")
    per_process = sorted(
        sum(t.user_attrs["pid"] == pid for t in trials) for pid in {t.user_attrs["pid"] for t in trials}
    )
    print(
        f"{task} search with {WORKERS} workers, kill -9, resume: {elapsed:.0f} s; trials per process {per_process}"
    )


def test_server_lost_mid_search_one_line_error_then_resumed(
    pg_server: tuple[Path, str], tmp_path: Path
) -> None:
    """The server stops while two workers train: the search exits 1 with one-line errors that say
    how to go on (no traceback); after a restart, --resume keeps every finished trial and runs the
    interrupted ones again.  (Last in the module: it stops and restarts the shared server.)"""
    folder, url = pg_server
    name, out, n_trials = "pg-outage", tmp_path / "search", 4
    # trials of seconds (not a fraction of one): the server goes down while one is surely training
    search = _start_search(url, name, [*tiny_search_args(epochs=60), *SAMPLING], n_trials, 2, out)
    try:
        deadline = time.monotonic() + 240
        while not (_running(url, name) and any(row[1] == "COMPLETE" for row in _snapshot(url, name))):
            assert search.poll() is None, f"the search ended before the outage: {search.communicate()}"
            assert time.monotonic() < deadline, "no trial completed and none ran"
            time.sleep(0.05)
        stopped = _script("postgres_stop.sh", str(folder), timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        stdout, stderr = search.communicate(timeout=120)
    finally:
        if search.poll() is None:
            search.kill()
            search.communicate()
        restarted = _script("postgres_start.sh", str(folder), timeout=120)  # same port: the same URL
    assert restarted.returncode == 0 and restarted.stdout.strip() == url, restarted.stderr

    assert search.returncode == 1 and stdout == "", (search.returncode, stdout, stderr)
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors and errors[-1].startswith("error: lost the study's storage "), stderr
    for line in errors:  # the main process's and any worker's: what happened and how to go on
        assert "during the search" in line and f"infomorphic search --resume --out {out} " in line, line

    before = {row[0]: row for row in _snapshot(url, name) if row[1] == "COMPLETE"}
    interrupted = {row[0] for row in _snapshot(url, name) if row[1] == "RUNNING"}
    assert before and interrupted
    resumed = _resume(out)
    assert resumed.returncode == 0, resumed.stderr
    study, _ = gs.load_search(url, name)
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert {t.state.name for t in trials} <= {"COMPLETE", "FAIL"}
    assert n_trials <= len(complete) <= n_trials + 1
    after = {row[0]: row for row in _snapshot(url, name)}
    assert all(after[number] == row for number, row in before.items())  # none lost or changed
    assert {t.number for t in trials if t.state.name == "FAIL"} == interrupted
    retried = sorted(n for t in complete for n in t.system_attrs.get("retry_history", []))
    assert retried == sorted(interrupted)  # each interrupted goal trained again, once
    goals = [json.dumps(t.params, sort_keys=True) for t in complete]
    assert len(set(goals)) == len(goals)
