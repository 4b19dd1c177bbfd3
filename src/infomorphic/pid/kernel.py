"""The compiled CPU kernel of the training path: built at install, else on first use.

``_sx_kernel.cpp`` fuses, per neuron, the table building, the per-sample inclusion-exclusion,
the logarithms and the sums of :func:`infomorphic.pid.samples.sx_pid_from_samples`, and its
backward pass; neurons run in parallel on torch's thread pool.  The same module holds the fused
activation of the neurons (:func:`infomorphic.nn.functional.fused_theta`: the firing
probability of the built-in modulated activations and its gradient, one pass each) and the
product of the neurons with their sparse partners
(:func:`infomorphic.nn.functional.sparse_aggregate`).  :func:`load_kernel` takes the first of:

1. the module compiled when the package was installed (``setup.py`` builds
   ``infomorphic.pid._sx_kernel_prebuilt`` when torch and a C++ compiler are found in the build
   environment, e.g. ``pip install --no-build-isolation``), but only if the record written
   next to it (``_sx_kernel_prebuilt.json``: torch and Python versions, flags, a hash of the
   source) matches the running torch and today's source; a mismatch (torch upgraded since, an
   edited source in a checkout) says so in one line and goes on to 2.
   ``INFOMORPHIC_KERNEL_PREBUILT=0`` skips it;
2. the module compiled on first use with ``torch.utils.cpp_extension`` (a C++ compiler and
   ``ninja`` are needed) into a build folder under ``$TORCH_EXTENSIONS_DIR`` (by default
   ``~/.cache/torch_extensions/py311_cpu``) named by a hash of the source text and location,
   so checkouts and versions never share one;
3. none: the pure PyTorch path (also when ``INFOMORPHIC_KERNEL=0``); both give the same values
   (tests compare them).

The build never hangs a run:

* it runs in a child process (this file run as a script, ``python -P kernel.py --build ...``,
  in a session of its own), which the loading process kills, with ninja and the compiler,
  when it takes longer than ``INFOMORPHIC_KERNEL_BUILD_TIMEOUT`` seconds (default 600, waiting
  for another build included) or when the run is interrupted (Ctrl-C); when the loading
  process is killed (``kill -9``), the child kills its compiler and itself;
* builders are serialised by an ``fcntl.flock`` on ``infomorphic-build.lock`` in the build
  folder (shared by the child), which the operating system releases when its holders die.
  While holding it, a ``lock`` file of torch's own ``FileBaton`` in the folder can only be
  left by a killed build (torch would wait on it forever), so it is removed.  A process that
  finds the flock taken says in one line that it waits for that build, within the timeout;
* a finished build writes ``infomorphic-built.txt`` (torch and Python versions, flags); later
  runs find it and import the cached module directly, without compiler, ninja or child.

Any failure (compiler error, no compiler, killed build, timeout) is reported as one warning
line saying why, with the build log in ``infomorphic-build.log`` in the build folder, and the
PyTorch path is used; the next run tries again.  This file must import only the standard
library and torch: the child runs it as a plain script, outside the package, and ``setup.py``
loads it by path for :func:`prebuilt_record` (the build environment may lack numpy).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.util
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "load_kernel",
    "kernel_enabled",
    "active_kernel",
    "prebuilt_record",
    "PREBUILT_NAME",
    "PREBUILT_RECORD",
]

log = logging.getLogger(__name__)

TIMEOUT_VARIABLE = "INFOMORPHIC_KERNEL_BUILD_TIMEOUT"
DEFAULT_BUILD_TIMEOUT = 600.0
"""Seconds a run waits for the kernel (another process's build and its own) before falling back."""

PREBUILT_NAME = "_sx_kernel_prebuilt"
"""Module name (in this folder) of the kernel that ``setup.py`` compiles at install."""
PREBUILT_RECORD = PREBUILT_NAME + ".json"
"""What the kernel built at install was built with (:func:`prebuilt_record`), written next to it."""
PREBUILT_VARIABLE = "INFOMORPHIC_KERNEL_PREBUILT"
TORCH_PATH_COST = (
    "same values up to rounding, but 3-4x slower per training epoch: MNIST setup 1 with 100 "
    "neurons on one CPU thread took 10.2 s instead of 2.5 s"
)
"""What falling back to the PyTorch path costs.

Measured 2026-12-01 on the 2-core x86_64 machine (torch 2.13.0+cpu, other jobs running), seconds
per training epoch with ``--threads 1`` (``INFOMORPHIC_KERNEL=0`` for the PyTorch path): MNIST
setup 1, N = 100, batch 1024: 2.50 s with the kernel, 10.24 s without (4.1x); digits
(configs/digits.toml): 0.21-0.22 s against 0.62-0.66 s (3x).  The PID call alone, as timed by
``benchmarks/bench_pid.py --train-path --threads 1`` (batch 1024, uniformly random bins), differed
much less (0.8-1.05x in CPU time); the epoch times are what a user waits for.
"""

_USUAL_BUILD = "about 40 s on 2 idle CPU cores, longer on busy ones"  # measured here: 29-42 s
_CFLAGS = ["-O3", "-fopenmp", "-fno-trapping-math"]  # the last lets g++ vectorise exp_v
_LDFLAGS = ["-fopenmp"]
_FLOCK_FILE = "infomorphic-build.lock"  # our lock: released by the OS when its holder dies
_TORCH_BATON = "lock"  # torch's FileBaton: a file whose mere existence blocks every later load
_DONE_FILE = "infomorphic-built.txt"  # written after a build that imported; holds _build_key()
_LOG_FILE = "infomorphic-build.log"  # output of the last build child
_REASON = "infomorphic-build-failed: "  # prefix of the child's one-line reason in the log
_QUIET_WAIT = 1.0  # seconds of waiting on the lock before saying so (a cached load holds it ms)
_POLL = 0.1


def kernel_enabled() -> bool:
    """False when the environment variable ``INFOMORPHIC_KERNEL`` is ``0``."""
    return os.environ.get("INFOMORPHIC_KERNEL", "1") != "0"


def active_kernel() -> ModuleType | None:
    """The compiled kernel module when it is enabled and can be had, else ``None``."""
    return load_kernel() if kernel_enabled() else None


@lru_cache(maxsize=1)
def load_kernel() -> ModuleType | None:
    """The compiled kernel module, or ``None`` (with one warning) if it cannot be had in time.

    The kernel built at install when it matches the running torch, else the one compiled on
    first use (cached), else ``None``: the caller uses the PyTorch path.
    """
    source = Path(__file__).with_name("_sx_kernel.cpp")
    module = _load_prebuilt(source)
    if module is not None:
        return module
    try:
        # one build folder per source text and location: checkouts and versions never share one
        # (a shared folder would be rebuilt each time another checkout loads its kernel)
        digest = hashlib.sha256(source.read_bytes() + str(source.resolve()).encode()).hexdigest()[:16]
    except OSError as exc:
        log.warning(
            "the compiled I^sx kernel is unavailable (%s); using the PyTorch path (%s)", exc, TORCH_PATH_COST
        )
        return None
    return _load_or_build(f"infomorphic_sx_kernel_{digest}", source)


def prebuilt_record(torch_version: str, source: Path) -> dict[str, Any]:
    """What a kernel compiled at install records, and must still match to be imported.

    The torch version it was compiled against (a C++ extension only works with that one), the
    Python it was built for, the compiler flags and the SHA-256 of ``source`` (a checkout whose
    source changed since the install must not run the old kernel).  ``setup.py`` writes it to
    :data:`PREBUILT_RECORD`; :func:`load_kernel` compares it with the running torch's.
    """
    return {
        "torch": torch_version,
        "python": sys.implementation.cache_tag,
        "cflags": _CFLAGS,
        "ldflags": _LDFLAGS,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
    }


def _prebuilt_module_file(folder: Path) -> Path | None:
    """The compiled module :data:`PREBUILT_NAME` in ``folder`` (any extension-module suffix)."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / (PREBUILT_NAME + suffix)
        if candidate.is_file():
            return candidate
    return None


def _load_prebuilt(source: Path) -> ModuleType | None:
    """The kernel compiled at install next to ``source``, if present and built for this torch.

    ``None`` when there is none (silently: it was not built at install), when
    ``INFOMORPHIC_KERNEL_PREBUILT=0``, or when its record does not match the running torch
    (one line saying so: the first-use build takes over).  Its record is checked before the
    module is imported: a module built against another torch may not even load.
    """
    if os.environ.get(PREBUILT_VARIABLE, "1") == "0":
        return None
    folder = source.parent
    module_file = _prebuilt_module_file(folder)
    if module_file is None:
        return None
    try:
        recorded = json.loads((folder / PREBUILT_RECORD).read_text())
        import torch

        expected = prebuilt_record(torch.__version__, source)
    except (OSError, ValueError, ImportError) as exc:
        log.info(
            "ignoring the I^sx kernel built at install (%s); compiling it for this installation instead",
            _one_line(str(exc)),
        )
        return None
    if recorded != expected:
        log.info(
            "ignoring the I^sx kernel built at install (%s); compiling it for this installation instead",
            _mismatch(recorded, expected),
        )
        return None
    spec = importlib.util.spec_from_file_location(f"infomorphic.pid.{PREBUILT_NAME}", module_file)
    if spec is None or spec.loader is None:
        return None
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError) as exc:
        log.info(
            "the I^sx kernel built at install does not load (%s); compiling it for this installation instead",
            _one_line(str(exc)),
        )
        return None
    return module


def _mismatch(recorded: Any, expected: dict[str, Any]) -> str:
    """Why a prebuilt kernel's record differs from what the running installation needs."""
    if not isinstance(recorded, dict):
        return "its record is not a JSON object"
    if recorded.get("torch") != expected["torch"]:
        return f"it was built for torch {recorded.get('torch')}, this is torch {expected['torch']}"
    if recorded.get("python") != expected["python"]:
        return f"it was built for {recorded.get('python')}, this is {expected['python']}"
    if recorded.get("source_sha256") != expected["source_sha256"]:
        return "its source _sx_kernel.cpp has changed since it was built"
    return "it was built with other compiler flags"


def build_timeout() -> float:
    """Seconds from ``INFOMORPHIC_KERNEL_BUILD_TIMEOUT``: 600 if unset; a bad value warns, gives 600."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_BUILD_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:  # also rejects nan
        log.warning(
            "%s=%r is not a positive number of seconds; using %g (set e.g. %s=900)",
            TIMEOUT_VARIABLE,
            text,
            DEFAULT_BUILD_TIMEOUT,
            TIMEOUT_VARIABLE,
        )
        return DEFAULT_BUILD_TIMEOUT
    return seconds


def _load_or_build(name: str, source: Path) -> ModuleType | None:
    """The extension ``name`` compiled from ``source``: cached, or built in a child process.

    Returns ``None`` after one warning line when it cannot be had within :func:`build_timeout`.
    """
    timeout = build_timeout()
    try:
        import torch

        _get_build_directory = _quiet_cpp_extension()._get_build_directory

        build_dir = Path(_get_build_directory(name, verbose=False))  # the folder torch's load uses
        lock_fd = os.open(build_dir / _FLOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout  # for waiting and building, not for importing torch
    except Exception as exc:  # noqa: BLE001 - no kernel (no folder, no torch extension support)
        log.warning(
            "the compiled I^sx kernel is unavailable (%s); using the PyTorch path (%s; fix the "
            "cause and rerun, or set INFOMORPHIC_KERNEL=0)",
            _one_line(str(exc)),
            TORCH_PATH_COST,
        )
        return None
    try:
        holder = _acquire(lock_fd, deadline, build_dir)
        if holder is not None:
            log.warning(
                "the compiled I^sx kernel is unavailable (%s was still compiling it in %s "
                "after %g s); using the PyTorch path (%s; rerun when it has finished, or raise %s)",
                holder,
                build_dir,
                timeout,
                TORCH_PATH_COST,
                TIMEOUT_VARIABLE,
            )
            return None
        key = _build_key(torch.__version__)
        module = _import_cached(name, build_dir, key)
        if module is not None:
            return module
        why = _build(name, source, build_dir, lock_fd, deadline, timeout)
        if why is not None:
            log.warning(
                "the compiled I^sx kernel is unavailable (%s; build log: %s); using the PyTorch "
                "path (%s; rerun to retry, or set INFOMORPHIC_KERNEL=0 to skip the build)",
                why,
                build_dir / _LOG_FILE,
                TORCH_PATH_COST,
            )
            return None
        module = _import_built(name, build_dir)
        (build_dir / _DONE_FILE).write_text(key + "\n")
        return module
    except Exception as exc:  # noqa: BLE001 - anything else also falls back to PyTorch
        log.warning(
            "the compiled I^sx kernel is unavailable (%s); using the PyTorch path (%s; rerun to "
            "retry, or set INFOMORPHIC_KERNEL=0)",
            _one_line(f"{type(exc).__name__}: {exc}"),
            TORCH_PATH_COST,
        )
        return None
    finally:
        os.close(lock_fd)  # releases the flock


def _quiet_cpp_extension() -> ModuleType:
    """``torch.utils.cpp_extension``, imported without its CUDA warnings.

    A CUDA build of torch on a machine without CUDA says "No CUDA runtime is found, using
    CUDA_HOME=..." when that module is first imported: through logging (seen with torch
    2.14.1+cu130) or printed to stderr (torch 2.4.0): irrelevant to this CPU-only kernel, and it
    would break the promise of one line per kernel event.  Anything else printed then is passed on.
    """
    cpp_log = logging.getLogger("torch.utils.cpp_extension")
    level = cpp_log.level
    cpp_log.setLevel(logging.ERROR)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stderr(printed):
            import torch.utils.cpp_extension as cpp_extension
    finally:
        cpp_log.setLevel(level)
        other = [line for line in printed.getvalue().splitlines() if not line.startswith("No CUDA runtime")]
        if other:
            print("\n".join(other), file=sys.stderr)
    return cpp_extension


def _acquire(lock_fd: int, deadline: float, build_dir: Path) -> str | None:
    """Take the exclusive build lock before ``deadline``; otherwise name its holder.

    Says once (after a second) that it waits for another process's build.
    """
    import fcntl  # POSIX only: elsewhere the ImportError means no kernel

    start = time.monotonic()
    said = False
    while True:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None
        except BlockingIOError:
            pass
        now = time.monotonic()
        holder = _holder(lock_fd)
        if now >= deadline:
            return holder
        if not said and now - start >= _QUIET_WAIT:
            log.info(
                "waiting for %s, which is compiling the I^sx kernel in %s (for at most %.0f s "
                "more; %s sets the limit)",
                holder,
                build_dir,
                deadline - now,
                TIMEOUT_VARIABLE,
            )
            said = True
        time.sleep(min(_POLL, max(deadline - now, 0.0)))


def _holder(lock_fd: int) -> str:
    """Who holds the build lock, as written into it by a compiling holder."""
    try:
        text = os.pread(lock_fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return f"process {text}" if text.isdigit() else "another process"


def _build_key(torch_version: str) -> str:
    """What a cached build must match to be imported without rebuilding."""
    return json.dumps(
        {
            "torch": torch_version,
            "python": sys.implementation.cache_tag,
            "cflags": _CFLAGS,
            "ldflags": _LDFLAGS,
        }
    )


def _import_cached(name: str, build_dir: Path, key: str) -> ModuleType | None:
    """The module of a finished build with this ``key``, or ``None`` (then it must be built)."""
    done = build_dir / _DONE_FILE
    try:
        if done.read_text().strip() != key:
            return None
    except OSError:
        return None
    try:
        return _import_built(name, build_dir)
    except (ImportError, OSError) as exc:
        log.info(
            "the cached I^sx kernel in %s does not load (%s); rebuilding it", build_dir, _one_line(str(exc))
        )
        done.unlink(missing_ok=True)
        (build_dir / f"{name}.so").unlink(missing_ok=True)  # else ninja would call it up to date
        return None


def _import_built(name: str, build_dir: Path) -> ModuleType:
    """Import the extension module that torch's ``load`` left in ``build_dir``."""
    spec = importlib.util.spec_from_file_location(name, build_dir / f"{name}.so")
    if spec is None or spec.loader is None:
        raise ImportError(f"no module {name} in {build_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(
    name: str, source: Path, build_dir: Path, lock_fd: int, deadline: float, timeout: float
) -> str | None:
    """Compile in a child process, holding the build lock; ``None``, or why it did not finish."""
    notes = ""
    baton = build_dir / _TORCH_BATON
    if baton.exists():  # we hold the flock, so no live build of ours owns it: a killed build left it
        baton.unlink(missing_ok=True)
        notes = "; removed the stale lock file a killed build left there"
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return f"no time was left to compile it within {timeout:g} s ({TIMEOUT_VARIABLE})"
    log.info(
        "compiling the I^sx kernel (%s) into %s: %s, once per machine (INFOMORPHIC_KERNEL=0 skips it)%s",
        source.name,
        build_dir,
        _USUAL_BUILD,
        notes,
    )
    os.ftruncate(lock_fd, 0)
    os.pwrite(lock_fd, f"{os.getpid()}\n".encode(), 0)  # for the message of processes waiting on us
    spec = {
        "name": name,
        "source": str(source.resolve()),
        "build_directory": str(build_dir),
        "cflags": _CFLAGS,
        "ldflags": _LDFLAGS,
        "parent": os.getpid(),
        "seconds": remaining,
    }
    start = time.monotonic()
    try:
        with open(build_dir / _LOG_FILE, "wb") as log_file:
            # the child shares the flock (pass_fds): if this process dies, the lock is held until
            # the child has killed ninja and the compilers, so no new build meets them
            child = subprocess.Popen(
                [sys.executable, "-P", str(Path(__file__).resolve()), "--build", json.dumps(spec)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(lock_fd,),
            )
            try:
                code = child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                return f"it did not finish within {timeout:g} s; {TIMEOUT_VARIABLE} sets the limit"
            finally:
                if child.returncode is None:  # timed out, or this process is being interrupted
                    _kill_session(child.pid)
                    child.wait()
                    (build_dir / _TORCH_BATON).unlink(missing_ok=True)  # the killed child's
    finally:
        os.ftruncate(lock_fd, 0)
    if code < 0:
        return f"the build process was killed by {_signal_name(-code)}"
    if code != 0:
        return _child_reason(build_dir / _LOG_FILE) or f"the build process exited with code {code}"
    log.info(
        "built the compiled I^sx kernel in %.0f s (cached in %s for later runs)",
        time.monotonic() - start,
        build_dir,
    )
    return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _child_reason(log_path: Path) -> str | None:
    """The one-line reason the build child wrote last into its log."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    reasons = [line[len(_REASON) :] for line in lines if line.startswith(_REASON)]
    return reasons[-1] if reasons else None


def _one_line(text: str, limit: int = 300) -> str:
    """The telling line of a (compiler) message: its first error, else its first line."""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    if not lines:
        return "no message"
    for marks in (("error:",), ("not found", "no such file", "permission denied")):
        for line in lines:
            if any(mark in line.lower() for mark in marks):
                return line[:limit]
    return lines[0][:limit]


def _session_members(sid: int) -> list[int]:
    """Live processes of session ``sid`` other than this one (Linux ``/proc``; else empty)."""
    members: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return members
    me = os.getpid()
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # state ppid pgrp session ...
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def _kill_session(sid: int) -> None:
    """SIGKILL the build session ``sid``: the child, ninja, and the compilers in their own groups.

    Called by the loading process, or by the child itself (which then dies last).
    """
    for _ in range(100):
        members = _session_members(sid)
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    try:
        os.killpg(sid, signal.SIGKILL)  # without /proc: the child and ninja at least
    except (ProcessLookupError, PermissionError):
        pass


def _watch(parent: int, deadline: float) -> None:
    """In the build child: kill the whole build when the loading process dies or time is up."""
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(_POLL)
    _kill_session(os.getsid(0))


def _build_main(argv: list[str]) -> int:
    """The build child: ``kernel.py --build JSON``; exit 0 once the module is built and imports."""
    if len(argv) != 2 or argv[0] != "--build":
        print(
            "usage: kernel.py --build SPEC_JSON (run by infomorphic.pid.kernel, not by hand)", file=sys.stderr
        )
        return 2
    spec = json.loads(argv[1])
    threading.Thread(
        target=_watch, args=(spec["parent"], time.monotonic() + spec["seconds"] + 5.0), daemon=True
    ).start()
    compiler = os.environ.get("CXX", "c++")  # what torch.utils.cpp_extension compiles with
    if shutil.which(compiler) is None:  # say so plainly (torch's own message differs by release)
        print(
            _REASON + f"the C++ compiler {compiler}: not found (install one, e.g. g++, or set CXX)",
            file=sys.stderr,
            flush=True,
        )
        return 1
    try:
        load = _quiet_cpp_extension().load
        load(
            name=spec["name"],
            sources=[spec["source"]],
            extra_cflags=spec["cflags"],
            extra_ldflags=spec["ldflags"],
            build_directory=spec["build_directory"],
            verbose=False,
        )
    except Exception as exc:  # noqa: BLE001 - reported to the loading process
        traceback.print_exc()
        print(_REASON + _one_line(str(exc)), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_build_main(sys.argv[1:]))
