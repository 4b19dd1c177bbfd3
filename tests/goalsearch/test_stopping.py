"""StopRequests: Ctrl-C and SIGTERM of a search raised only inside open sections, held elsewhere
(a storage transaction is never cut half-way), and the previous handlers restored after."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from infomorphic.goalsearch.stopping import StopRequests


def _signal(sig: signal.Signals) -> None:
    """Send ``sig`` to this process and let Python run its handler (next bytecode)."""
    os.kill(os.getpid(), sig)
    for _ in range(1000):
        pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_inside_an_open_section_is_raised_at_once(sig: signal.Signals) -> None:
    stops = StopRequests()
    reached = False
    with stops.installed(), pytest.raises(KeyboardInterrupt), stops.open():
        _signal(sig)
        reached = True
    assert not reached and stops.requested


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_inside_a_closed_section_waits_for_its_end(sig: signal.Signals) -> None:
    stops = StopRequests()
    steps = []
    with stops.installed(), pytest.raises(KeyboardInterrupt), stops.open():
        with stops.closed():  # a storage call
            _signal(sig)
            steps.append("closed section finished")
        steps.append("after it")  # not reached: raised when the closed section ended
    assert steps == ["closed section finished"]


def test_a_stop_between_sections_is_held_until_the_next_open_one_or_a_check() -> None:
    stops = StopRequests()
    with stops.installed():
        _signal(signal.SIGTERM)  # e.g. while optuna asks for the next trial
        done = True  # nothing raised here
        with pytest.raises(KeyboardInterrupt), stops.open():
            done = False
        with pytest.raises(KeyboardInterrupt):
            stops.check()  # it stays asked for
    assert done


def test_a_closed_section_outside_open_ones_holds_the_stop() -> None:
    stops = StopRequests()
    with stops.installed():
        with stops.closed():
            _signal(signal.SIGINT)
        assert stops.requested  # held, not raised


def test_the_previous_handlers_come_back() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stops = StopRequests()
    with stops.installed():
        assert all(signal.getsignal(sig) != handler for sig, handler in before.items())
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_without_installing_sections_change_nothing() -> None:
    stops = StopRequests()
    with stops.open(), stops.closed():
        pass
    stops.check()
    assert not stops.requested


def test_a_stop_swallowed_by_a_finaliser_is_not_printed_and_raised_at_the_next_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python may run the handler inside ``__del__`` (garbage collection), where the exception
    cannot propagate: it used to be printed ("Exception ignored in ...", a traceback)."""
    printed: list[type[BaseException] | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: printed.append(info.exc_type))

    class Finalised:
        def __del__(self) -> None:
            _signal(signal.SIGTERM)  # the handler runs here, inside the finaliser

    stops = StopRequests()
    with stops.installed(), stops.open():
        Finalised()  # collected at once: Python swallows the KeyboardInterrupt
        assert stops.requested
        with pytest.raises(KeyboardInterrupt), stops.closed():  # the next check
            pass
    assert printed == []
    with stops.installed():  # other unraisable exceptions are printed as before
        sys.unraisablehook(type("Info", (), {"exc_type": ValueError})())
    assert printed == [ValueError]
