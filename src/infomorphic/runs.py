"""The run directory: resolved config, per-epoch metrics, per-neuron atoms, checkpoints, summary.

Layout of ``<out_dir>/<name>/``::

    config.json        resolved TrainConfig (+ versions, seed), written before training
    metrics.jsonl      one JSON object per epoch (accuracies, goals, mean atoms, seconds)
    atoms.npz          per-neuron PID atoms (bits) per epoch and layer: <layer>_atoms (E, N, A),
                       <layer>_hres (E, N), <layer>_names (A,), plus <layer>_wdist (E,)
    checkpoint.pt      model, optimisers, generators, epoch: ``--resume`` continues from it
    baselines.json     results of the baselines on the same split
    backprop-checkpoint.pt  the backprop baseline after its last finished epoch, while it trains:
                       ``--resume`` continues it (removed once baselines.json holds its figures)
    summary.json       final figures
    .lock              held (``flock``) by the process writing the run

What survives a crash
---------------------
- Every file is written atomically (a temporary file next to it, then a rename), so a killed
  run never leaves a half-written file; temporaries of killed writers are removed when the run
  directory is next claimed.  Files get the user's usual permissions (the umask applies).
- A process claims its run directory with an exclusive lock (:func:`claim_run_dir`), released
  by the operating system when the process ends however it ends: a second process given the
  same directory is refused, and a dead one never blocks a ``--resume``.
- Run names are single folder names (:func:`check_run_name`), never paths.
- JSON files hold only finite numbers: NaN and infinities are written as ``null``.
- Readers (:func:`read_json`, :func:`read_jsonl`, :func:`load_checkpoint`, :func:`load_npz`)
  turn any malformed file into a ``ValueError`` naming the file and what is wrong; checkpoints
  are loaded with ``weights_only=True`` (tensors and plain containers only: opening someone
  else's run never executes code).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_write",
    "write_json",
    "write_jsonl",
    "read_json",
    "read_jsonl",
    "save_npz",
    "load_npz",
    "load_checkpoint",
    "save_checkpoint",
    "versions",
    "check_run_name",
    "claim_run_dir",
    "RunClaim",
    "run_holder",
    "remove_stale_temporaries",
    "finite_json",
]

_TMP_SUFFIX = ".tmp"
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@,~-]{0,199}")
LOCK_NAME = ".lock"
"""File in a run directory that its writer holds an exclusive ``flock`` on."""


# ------------------------------------------------------------------------------ writing
def atomic_write(path: Path, write: Callable[[IO[Any]], object], mode: str = "w") -> None:
    """Write through ``write(fh)`` into a temporary file next to ``path``, then rename it.

    The temporary file ``.<name>.<host>-<pid>.<random>.tmp`` is created with mode 0666 minus
    the umask (as ``open`` would), so the final file has the user's usual permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def finite_json(value: Any) -> Any:
    """``value`` with NumPy scalars / arrays as Python values and NaN / infinities as ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return finite_json(value.item())
    if isinstance(value, np.ndarray):
        return finite_json(value.tolist())
    return value


def _dumps(data: Any, **kwargs: Any) -> str:
    try:
        return json.dumps(finite_json(data), allow_nan=False, **kwargs)
    except TypeError as exc:
        raise TypeError(f"not JSON serialisable: {exc}") from None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (non-finite numbers become ``null``)."""
    atomic_write(path, lambda fh: fh.write(_dumps(data, indent=2)))


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write a JSON-lines file holding all ``records`` (atomic rewrite; the history is small)."""
    atomic_write(path, lambda fh: fh.write("".join(_dumps(r) + "\n" for r in records)))


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # (typed loosely: numpy's stub gives savez_compressed an ``allow_pickle: bool`` keyword, which a
    # ``**dict[str, ndarray]`` cannot be told apart from)
    savez: Callable[..., None] = np.savez_compressed
    atomic_write(path, lambda fh: savez(fh, **arrays), mode="wb")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint (tensors and plain containers only) atomically."""
    import torch

    atomic_write(path, lambda fh: torch.save(state, fh), mode="wb")


# ------------------------------------------------------------------------------ reading
def _unreadable(path: Path, what: str, reason: object) -> ValueError:
    text = " ".join(str(reason).split()) or type(reason).__name__
    return ValueError(f"{path} is not {what} ({text}); restore it from a copy or start a new run")


def read_json(path: Path, what: str = "a valid JSON file", kind: type | None = dict) -> Any:
    """The JSON value in ``path``; ``ValueError`` naming the file when it is unreadable or malformed.

    ``kind`` (default ``dict``) is the type the top-level value must have (``None``: any).
    """
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _unreadable(path, what, f"not UTF-8 text: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise _unreadable(path, what, f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if kind is not None and not isinstance(value, kind):
        raise _unreadable(path, what, f"expected a JSON {_json_kind(kind)}, found a {type(value).__name__}")
    return value


def _json_kind(kind: type) -> str:
    names: dict[type, str] = {dict: "object", list: "array"}
    return names.get(kind, kind.__name__)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file ([] when it does not exist); ``ValueError`` naming the file
    and line when one is malformed."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _unreadable(path, "a valid JSON-lines file", f"line {number}: {exc.msg}") from None
        if not isinstance(record, dict):
            raise _unreadable(path, "a valid JSON-lines file", f"line {number} is not a JSON object")
        records.append(record)
    return records


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file (no pickles); ``ValueError`` naming the file when it is damaged."""
    import zipfile
    import zlib

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise _unreadable(path, "a readable .npz archive", exc) from None


def load_checkpoint(path: Path, map_location: Any = "cpu", required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, loaded with ``weights_only=True``.

    Raises
    ------
    ValueError
        Naming the file, when it is missing, empty, truncated, not a checkpoint, holds anything
        but tensors and plain containers, or lacks one of the ``required`` keys.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise _unreadable(path, "a checkpoint", "the file is empty")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unpickling failed"
        raise _unreadable(path, "a checkpoint of plain tensors and containers", first) from None
    except (
        RuntimeError,
        OSError,
        EOFError,
        ValueError,
        KeyError,
        AttributeError,
        ImportError,
        zipfile.BadZipFile,
    ) as exc:
        raise _unreadable(
            path,
            "a readable checkpoint",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        ) from None
    if not isinstance(state, dict):
        raise _unreadable(path, "a checkpoint", f"it holds a {type(state).__name__}, not a dict")
    missing = [k for k in required if k not in state]
    if missing:
        raise _unreadable(path, "an infomorphic checkpoint", f"missing {', '.join(missing)}")
    return state


# ------------------------------------------------------------------------ run directories
def check_run_name(name: str) -> str:
    """``name`` if it is a valid run name (one folder name, not a path), else ``ValueError``."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(
            f"run name {name!r} is not a plain folder name: use up to 200 letters, digits and . _ - + = @ , ~ "
            "(starting with a letter, digit or _; no '/' or '..'); put the parent folder in --out-dir"
        )
    return name


@dataclass
class RunClaim:
    """An exclusive claim on a run directory, held until :meth:`release` (or the process ends)."""

    path: Path
    _fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_holder(lock: Path) -> str:
    """The holder's description that its lock file holds ("" when empty or unreadable)."""
    try:
        return lock.read_text().strip()
    except OSError:
        return ""


def claim_run_dir(
    path: Path,
    *,
    resume: bool,
    markers: tuple[str, ...] = ("config.json",),
    taken: str = "pass --resume to continue it, or choose another --name",
    busy: str = "wait for it to finish or choose another --name",
) -> RunClaim:
    """Create (or, with ``resume``, reopen) ``path`` and lock it for this process.

    A new run needs a directory that holds none of ``markers`` (the files every run writes
    first); a resumed one needs one that does.  Temporaries of killed writers are removed.
    ``taken``: what the error for a directory that already holds a run tells the user to do;
    ``busy``: what the error for a directory another live process holds tells them.

    Raises
    ------
    ValueError
        When another live process holds the directory, or it already holds a run (new) or holds
        none (resume).
    """
    path = Path(path)
    if resume and not path.is_dir():
        raise ValueError(f"cannot resume: {path} is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_NAME
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        _flock(fd)
    except BlockingIOError:
        os.close(fd)
        holder = _lock_holder(lock)
        raise ValueError(
            f"{path} is in use by another running process{f' ({holder})' if holder else ''}; {busy}"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    claim = RunClaim(path, fd)
    try:
        os.ftruncate(fd, 0)
        os.write(
            fd,
            f"host {socket.gethostname()}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(),
        )
        present = [m for m in markers if (path / m).exists()]
        if not resume and present:
            raise ValueError(f"{path} already holds a run ({', '.join(present)}); {taken}")
        if resume and not present:
            raise ValueError(f"cannot resume: {path} holds no run (no {markers[0]})")
        remove_stale_temporaries(path, all_of_them=True)
    except BaseException:
        claim.release()
        raise
    return claim


def run_holder(path: Path) -> str | None:
    """Who holds the run directory ``path`` now (see :func:`claim_run_dir`), or None.

    Returns the holder's description (``"host H, pid P, since T"``, or ``"another process"``
    when its lock file is empty) while a live process holds the directory's lock, None when no
    process does (also when ``path`` or its lock file does not exist).  A run directory whose
    writer was killed is free again at once: the lock dies with its process.  Looking takes a
    shared lock for an instant, so a process that claims the directory at that very moment can
    be refused once; try again then.
    """
    lock = Path(path) / LOCK_NAME
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, nobody holds anything
        os.close(fd)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _lock_holder(lock) or "another process"
    finally:
        os.close(fd)  # closing drops a lock taken here
    return None


def _flock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks, no claim
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as exc:  # pragma: no cover
        return exc.errno != errno.ESRCH
    return True


_TMP_RE = re.compile(r"\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")


def remove_stale_temporaries(
    folder: Path, *, all_of_them: bool = False, max_age_s: float = 86400.0
) -> list[Path]:
    """Remove the temporary files that killed :func:`atomic_write` calls left in ``folder``.

    With ``all_of_them`` (the caller holds the folder's lock, so nobody else writes there) every
    ``.*.tmp`` goes; otherwise only those whose writer, on this host, no longer runs, and those
    older than ``max_age_s``.  Returns the removed paths.
    """
    removed = []
    now = time.time()
    for tmp in Path(folder).glob(".*" + _TMP_SUFFIX):
        if not tmp.is_file():
            continue
        stale = all_of_them
        if not stale:
            m = _TMP_RE.fullmatch(tmp.name)
            try:
                old = now - tmp.stat().st_mtime > max_age_s
            except OSError:
                continue
            stale = old or (m is not None and m["host"] == _HOST and not _pid_alive(int(m["pid"])))
        if stale:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def versions() -> dict[str, Any]:
    """Versions recorded in every run's ``config.json`` (package, torch, CUDA, Python)."""
    import platform

    import torch

    from . import __version__

    return {
        "infomorphic": __version__,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
    }
