"""Train one run directory of an experiment with ``infomorphic train``, beside other sweeps.

Shared by the experiment scripts that train many runs (``size_sweep.py``, ``depth.py``,
``search_compare.py``, ``goal_path.py``); never imported by the package.  Several sweeps may work on the same
output folder at once (two invocations on one machine, or on several machines that share the
folder): a run that another process is training is left to it (``"busy"``), and a run that
another process created between our look and our start is continued instead of refused.  A
sweep that ends, however (``kill -9``, a plain ``kill``), stops the trainings it started, which
keep their finished epochs for the sweep started again.

A *ledger* (``--ledger FILE`` of these scripts) is a JSON-lines file with one record per finished
run (its final figures, the date and the machine): the results outlive the run directories
(a sweep that takes several days on machines that are handed back keeps what it measured), and
a run recorded there counts as done.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infomorphic.runs import run_holder


def at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``low`` (argparse reports anything else as a usage
    error naming the option, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    return parse


def check_out(parser: argparse.ArgumentParser, out: Path) -> None:
    """A usage error (exit 2) when the sweep's output folder exists as something else."""
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} exists and is not a folder")


def infomorphic_exe() -> str:
    """The ``infomorphic`` command of this Python environment."""
    return str(Path(sys.executable).with_name("infomorphic"))


def train_run(run_dir: Path, command: Callable[[], list[str]], env: Mapping[str, str] | None = None) -> str:
    """Train (or continue) the run in ``run_dir``; ``"trained"``, ``"busy"`` or ``"failed"``.

    ``command()`` gives the ``infomorphic train`` command for the directory as it is when called:
    one that creates the run when it holds none (no ``config.json``; it may write files such as
    a config first), else ``--resume``.  A run that another live process holds is not touched
    and gives ``"busy"`` (one JSON line ``{"run", "skipped"}`` on stderr).  When a start fails
    and the run is held, or was created, by another process meanwhile, it is looked at once
    more (busy, or continued).  Any other failure gives ``"failed"`` and one JSON line
    ``{"run", "error"}`` with the command's last error line on stderr.
    """
    error: list[str] = []
    for _ in range(2):  # a second look after a start that lost a race with another process
        holder = run_holder(run_dir)
        if holder is not None:
            skipped = f"another process trains it ({holder})"
            print(json.dumps({"run": run_dir.name, "skipped": skipped}), file=sys.stderr, flush=True)
            return "busy"
        existed = (run_dir / "config.json").exists()
        cmd = command()
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=None if env is None else dict(env),
            preexec_fn=stop_with_this_process(),
        )
        if done.returncode == 0:
            return "trained"
        error = done.stderr.strip().splitlines()[-1:]
        raced = run_holder(run_dir) is not None or (not existed and (run_dir / "config.json").exists())
        if not raced:
            break
    print(json.dumps({"run": run_dir.name, "error": error}), file=sys.stderr, flush=True)
    return "failed"


def train_from_config(run_dir: Path, config_text: Callable[[], str], resume: Sequence[str] = ()) -> str:
    """Train the run ``run_dir`` from a TOML config, or continue it; as :func:`train_run`.

    A new run's config, ``config_text()``, is written (atomically: a second sweep may write it
    at the same moment) to ``<out>/configs/<name>.toml`` beside the run directories and trained
    with ``infomorphic train --config``; a run that exists is continued with ``--resume`` and the
    extra arguments ``resume`` (e.g. ``("--epochs", "100")`` to train it further)."""
    from infomorphic.runs import atomic_write

    exe = infomorphic_exe()
    out = run_dir.parent
    tail = ["--no-progress", "--json"]

    def command() -> list[str]:
        if (run_dir / "config.json").exists():
            return [exe, "train", "--resume", str(run_dir), *resume, *tail]
        path = out / "configs" / f"{run_dir.name}.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = config_text()
        atomic_write(path, lambda fh: fh.write(text))
        return [exe, "train", "--config", str(path), "--out-dir", str(out), "--name", run_dir.name, *tail]

    return train_run(run_dir, command)


def stop_with_this_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has a child process sent SIGTERM when this process ends, however
    it ends (``kill -9``, a plain ``kill``): ``infomorphic train`` then stops as on ``kill``,
    keeping its finished epochs, instead of training on in the background, holding its run
    against the sweep started again.  None where Linux's ``PR_SET_PDEATHSIG`` is missing.

    The signal follows the thread that starts the child; :func:`train_run` waits for its child
    in that thread, so it lives as long as the child does."""
    import ctypes
    import signal

    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # this process ended before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def report_statuses(statuses: list[str]) -> int:
    """One line on stderr for runs left to other processes and for failed runs; returns the
    number of failed runs (a sweep exits with status 1 after its output when there are any)."""
    busy, failed = statuses.count("busy"), statuses.count("failed")
    if busy:
        print(
            f"{busy} run(s) were being trained by another process: the rows show what they held "
            "when this sweep ended; run it again (or with --summarise) after they finish",
            file=sys.stderr,
            flush=True,
        )
    if failed:
        print(
            f"{failed} run(s) failed (errors above); run the sweep again to retry them",
            file=sys.stderr,
            flush=True,
        )
    return failed


def machine() -> str:
    """The CPU model and core count of this machine (recorded beside every ledger record: the
    same seed gives other figures on another kind of CPU)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def add_ledger_option(parser: argparse.ArgumentParser) -> None:
    """The ``--ledger FILE`` option of a sweep."""
    parser.add_argument(
        "--ledger",
        type=Path,
        metavar="JSONL",
        help="record every finished run's final figures in this file, and count a run recorded there "
        "(with at least --epochs) as done, its directory gone or not",
    )


def open_ledger(parser: argparse.ArgumentParser, path: Path | None) -> dict[str, dict[str, Any]]:
    """The records of ``--ledger`` (empty without one); a usage error (exit 2) when the path is
    a folder or a file that is not a ledger."""
    if path is not None and path.exists() and not path.is_file():
        parser.error(f"--ledger {path} exists and is not a file")
    try:
        return read_ledger(path)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")


def read_ledger(path: Path | None) -> dict[str, dict[str, Any]]:
    """The runs recorded in the ledger ``path`` (run name -> record); empty without one.
    ``ValueError`` naming the file and line when it is not a ledger."""
    from infomorphic.runs import read_jsonl

    if path is None or not path.exists():
        return {}
    records = {}
    for number, record in enumerate(read_jsonl(path), 1):
        if not isinstance(record.get("run"), str) or not isinstance(record.get("epochs"), int):
            raise ValueError(
                f"{path} is not a ledger of runs: record {number} lacks a run name or its epochs; "
                "give another --ledger file"
            )
        records[record["run"]] = record
    return records


def recorded(ledger: Mapping[str, dict[str, Any]], name: str, epochs: int) -> bool:
    """Whether the ledger records run ``name`` with at least ``epochs`` epochs (it is done)."""
    return ledger.get(name, {}).get("epochs", -1) >= epochs


def run_figures(
    own: dict[str, Any] | None, ledger: Mapping[str, dict[str, Any]], name: str, epochs: int
) -> dict[str, Any] | None:
    """A run's figures: ``own`` (read from its directory) when that run finished ``epochs``,
    else the ledger's record when it has them (the directory may be gone), else ``own`` (a run
    still training, or None)."""
    unfinished = own is None or not own["finished"] or (own["epochs"] or 0) < epochs
    return ledger[name] if unfinished and recorded(ledger, name, epochs) else own


def record_runs(path: Path, records: Mapping[str, dict[str, Any]]) -> int:
    """Merge ``records`` (run name -> final figures) into the ledger ``path``; returns how many
    records were new or changed.  A changed record (the run trained again, e.g. to more epochs)
    replaces the earlier one; records of other runs are kept.  Two sweeps may record at once:
    the read-merge-write holds an exclusive ``flock`` on the ledger's folder, and the file is
    replaced atomically (a reader never sees half of it)."""
    import fcntl

    from infomorphic.runs import atomic_write

    if not records:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        ledger = read_ledger(path)
        stamp = {"recorded": datetime.date.today().isoformat(), "machine": machine()}
        changed = 0
        for name, figures in json.loads(json.dumps(records)).items():  # as read back (lists, not tuples)
            fresh = {"run": name, **figures}
            old = {k: v for k, v in ledger.get(name, {}).items() if k not in stamp}
            if old == fresh:
                continue
            ledger[name] = {**fresh, **stamp}
            changed += 1
        if changed:
            text = "".join(json.dumps(ledger[k], sort_keys=True) + "\n" for k in sorted(ledger))
            atomic_write(path, lambda fh: fh.write(text))
        return changed
    finally:
        os.close(folder)  # closing drops the flock
