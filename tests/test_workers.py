"""``map_jobs``: results as the serial loop gives them, and a stop that ends the workers at once."""

from __future__ import annotations

import math
import operator
import time

import pytest

from infomorphic.tasks.workers import map_jobs


@pytest.mark.parametrize("workers", [1, 2])
def test_results_are_the_jobs_results(workers: int) -> None:
    seen: list[float] = []
    got = map_jobs(math.sqrt, [(float(k),) for k in range(8)], workers, seen.append)
    assert sorted(got) == [math.sqrt(k) for k in range(8)] and seen == got


def test_a_stop_ends_the_workers_without_running_the_queued_jobs() -> None:
    """Ctrl-C or SIGTERM while a sweep's workers run (here: raised in ``on_result``) stops it after
    the jobs in flight, not after every queued job (before: the pool's exit ran all twelve two-second
    jobs, 12 s on two workers, before the stop reached the command)."""

    def stop(_: object) -> None:
        raise KeyboardInterrupt

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        map_jobs(time.sleep, [(2.0,)] * 12, 2, stop)
    assert time.monotonic() - t0 < 7.0


def test_a_failed_job_is_raised_without_running_the_rest() -> None:
    with pytest.raises(ZeroDivisionError):
        map_jobs(operator.truediv, [(1.0, 0.0), (1.0, 1.0)], 2)
    t0 = time.monotonic()
    with pytest.raises(ZeroDivisionError):
        map_jobs(_sleep_or_fail, [(0.0,)] + [(2.0,)] * 12, 2)
    assert time.monotonic() - t0 < 7.0


def _sleep_or_fail(seconds: float) -> None:
    if seconds == 0.0:
        raise ZeroDivisionError("a job failed")
    time.sleep(seconds)
