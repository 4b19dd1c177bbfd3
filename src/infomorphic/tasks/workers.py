"""Independent jobs in worker processes (one torch thread each), results reported as they finish."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

import torch

__all__ = ["map_jobs"]


def _init_worker() -> None:
    torch.set_num_threads(1)


def map_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    on_result: Callable[[Any], None] | None = None,
) -> list[Any]:
    """``fn(*job)`` for every job, in ``workers`` processes (in this one if ``workers == 1``).

    Results come back in completion order; ``on_result`` is called with each as it arrives.
    ``fn`` and the job arguments must be picklable (module-level functions, dataclasses).
    Worker processes start from a clean interpreter (``forkserver`` on POSIX), so they do not
    inherit this process's threads or open files.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results: list[Any] = []
    if workers == 1:
        for job in jobs:
            results.append(fn(*job))
            if on_result is not None:
                on_result(results[-1])
        return results
    ctx = None
    if os.name == "posix":
        import multiprocessing as mp

        ctx = mp.get_context("forkserver")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)
    try:
        futures = [pool.submit(fn, *job) for job in jobs]
        for fut in as_completed(futures):
            results.append(fut.result())
            if on_result is not None:
                on_result(results[-1])
    except BaseException:
        # Ctrl-C, SIGTERM or a failed job: end the workers now.  The executor's own exit would
        # wait for every queued job to run first (minutes to hours of a sweep nobody wants).
        _stop(pool)
        raise
    pool.shutdown()
    return results


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel ``pool``'s queued jobs and terminate its worker processes."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
    # and the executor's manager thread, which closes its wake-up pipe once it sees the workers
    # gone: left running, it could close the pipe while the interpreter's exit hook writes to it
    # ("Exception ignored ... _python_exit" on stderr after a clean stop)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(timeout=10)
