"""``map_jobs``: results as the serial loop gives them, and a stop that ends the workers at once."""

from __future__ import annotations

import math
import operator
import os
import time
from pathlib import Path

import pytest

from infomorphic.tasks.workers import map_jobs

JOBS = 12


@pytest.mark.parametrize("workers", [1, 2])
def test_results_are_the_jobs_results(workers: int) -> None:
    seen: list[float] = []
    got = map_jobs(math.sqrt, [(float(k),) for k in range(8)], workers, seen.append)
    assert sorted(got) == [math.sqrt(k) for k in range(8)] and seen == got


def _started(folder: Path) -> int:
    return len(list(folder.iterdir()))


def test_a_stop_ends_the_workers_without_running_the_queued_jobs(tmp_path: Path) -> None:
    """Ctrl-C or SIGTERM while a sweep's workers run (here: raised in ``on_result``) ends it
    after the jobs in flight, and no job starts afterwards (before: the pool's exit ran every
    queued job before the stop reached the command).  Counted by the jobs that started, not
    timed."""

    def stop(_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        map_jobs(_mark_and_sleep, [(tmp_path, k, 1.0) for k in range(JOBS)], 2, stop)
    started = _started(tmp_path)
    time.sleep(1.5)  # a worker left alive would start another job meanwhile
    assert started == _started(tmp_path) and started < JOBS // 2, started


def test_a_failed_job_is_raised_without_running_the_rest(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError):
        map_jobs(operator.truediv, [(1.0, 0.0), (1.0, 1.0)], 2)
    with pytest.raises(ZeroDivisionError):
        map_jobs(_mark_and_sleep, [(tmp_path, 0, -1.0)] + [(tmp_path, k, 1.0) for k in range(1, JOBS)], 2)
    started = _started(tmp_path)
    time.sleep(1.5)
    assert started == _started(tmp_path) and started < JOBS // 2, started


def _mark_and_sleep(folder: Path, job: int, seconds: float) -> None:
    """Leave a file saying this job started; sleep ``seconds`` (negative: fail at once)."""
    (folder / f"job-{job}-pid-{os.getpid()}").touch()
    if seconds < 0:
        raise ZeroDivisionError("a job failed")
    time.sleep(seconds)
