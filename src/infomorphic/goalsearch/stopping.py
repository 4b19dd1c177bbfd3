"""Stopping a search process cleanly: Ctrl-C (SIGINT) and SIGTERM raised only where that is safe.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when Ctrl-C arrives,
and a plain ``kill`` (SIGTERM, also a batch scheduler's time limit) ends the process on the
spot.  In a search the main thread spends a small part of its time inside a database transaction
of optuna's storage; a ``KeyboardInterrupt`` raised there leaves the transaction open, and with
SQLite the file stays locked, so that the next write of this process (marking its trial for a
re-run) and every other process of the search wait for the lock timeout.

:class:`StopRequests` takes over both signals for the duration of a search and raises
``KeyboardInterrupt`` only inside *open* sections: training (between the storage calls of the
epoch reports) and waiting for worker processes, which is where a search spends its time.  A
signal that arrives elsewhere is held and raised at the start of the next open section (or by
:meth:`StopRequests.check`), after the transaction has finished.  The rest of the search (the
trial re-queued, worker processes stopped, one line said) is the ``KeyboardInterrupt`` path.

Python may run the handler inside a finaliser or a weak-reference callback (garbage collection),
where an exception cannot propagate: Python prints it as "Exception ignored in ..." with a
traceback and goes on.  Inside :meth:`StopRequests.installed` such a swallowed stop is not
printed; it stays asked for and is raised at the next check (the end of the epoch's report at
the latest).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StopRequests", "caused_by_stop"]


class StopRequests:
    """Ctrl-C and SIGTERM of one search process (see the module doc).

    Use ``with stops.installed():`` around the search; ``with stops.open():`` around work that
    may be interrupted at any point (it raises a held request on entry); ``with stops.closed():``
    around a storage call inside an open section (a held request is raised when it ends).
    Outside the main thread, or before :meth:`installed`, the sections only check for held
    requests: Python's own handling stays.
    """

    def __init__(self) -> None:
        self.requested = False
        """A stop was asked for (it stays asked for: every later check raises again)."""
        self._open = False

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self._open:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self) -> Iterator[StopRequests]:
        """Handle SIGINT and SIGTERM with this object inside the block (main thread only);
        the previous handlers (and ``sys.unraisablehook``) come back after it."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        hook = sys.unraisablehook

        def unraisable(info: Any) -> None:  # a stop raised where it cannot propagate: held, unsaid
            if not (self.requested and info.exc_type is KeyboardInterrupt):
                hook(info)

        sys.unraisablehook = unraisable
        try:
            yield self
        finally:
            sys.unraisablehook = hook
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` when a stop was asked for."""
        if self.requested:
            raise KeyboardInterrupt

    @contextmanager
    def open(self) -> Iterator[None]:
        """A block that a stop may interrupt anywhere (a held stop is raised on entry)."""
        outer = self._open
        try:
            self._open = True
            self.check()
            yield
        finally:
            self._open = outer

    @contextmanager
    def closed(self) -> Iterator[None]:
        """A block that a stop must not interrupt (e.g. a storage call inside :meth:`open`); a stop
        that arrives meanwhile is raised when it ends, if the enclosing block is open."""
        outer = self._open
        self._open = False
        try:
            yield
        finally:
            self._open = outer
        if outer:
            self.check()


def caused_by_stop(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a Ctrl-C / SIGTERM stop unwound a library call.

    A stop that lands inside, e.g., ``torch.save`` unwinds through the zip writer's clean-up,
    which then fails on its own (``RuntimeError: ... unexpected pos``) and replaces the
    ``KeyboardInterrupt``: such an error is the stop, not a failure of the work it stopped.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
