"""How data files are verified against their published digests, and the stamps that remember it.

Digests
-------
Every file is checked against a published digest: SHA-256 of the *uncompressed* IDX content for
MNIST and Fashion-MNIST (so a raw file and its ``.gz`` verify alike), MD5 of each CIFAR-10 batch
file (the values torchvision uses).  A file that fails its check raises
:class:`~infomorphic.data.errors.CorruptDataError`, whose one-line message names the file, the
expected and the actual digest, and says how to get the file again.

What is verified when
---------------------
- ``infomorphic data fetch`` (:func:`~infomorphic.data.fetch.fetch_mnist`, and the check of
  Fashion-MNIST and CIFAR-10 it does) **always hashes** every file already present; stamps are not
  consulted.  A present file that fails is replaced (MNIST) or reported (the others).
- ``infomorphic data verify`` (:func:`~infomorphic.data.fetch.verify_dataset`) **always hashes**
  every file of every dataset asked for, whatever the stamps say.
- Loading a dataset (training, ``data info``, ``data list``) hashes a file unless its stamp still
  vouches for it.  A successful check is remembered in a stamp file ``.infomorphic-verified.json``
  next to the data: the file's size, modification time (``st_mtime_ns``), status-change time
  (``st_ctime_ns``), inode and device numbers, the algorithm and digest, and when the check
  started.  The stamp is trusted only while **all** of these hold:

  * size, mtime, ctime, inode and device are the ones recorded (replacing the file, rewriting it,
    or restoring its mtime with ``os.utime`` / ``touch -d`` / ``cp -p`` all change the ctime or
    the inode, and nobody can set a ctime back);
  * the mtime is at least two seconds older than the check (as in git's "racy" check: file-system
    timestamps are coarse, so a same-size rewrite within one tick of the check could otherwise
    go unnoticed; a freshly written file is therefore hashed again on its next use);
  * the algorithm and digest are the published ones.

  A stamp without the ctime / inode / device fields (written by an older version) is not trusted:
  the file is hashed once more and stamped anew.  A stamp is written only if the file's status
  did not change while it was being hashed, and a file that fails a check loses its stamp, so a
  failure found by ``data verify`` or ``data fetch`` is found again by the next load.  Stamps are
  written only in folders under the data root, never in system folders; files elsewhere (such as
  ``/usr/share/datasets``) are hashed on every load.

What the stamps do not catch
----------------------------
Changes that leave size, mtime, ctime and inode as they were: bit rot below the file system
(a failing disk or controller, a corrupted block on a file system without data checksums), edits
of the raw device, or a rewrite with the mtime restored within the same file-system timestamp tick
(milliseconds on Linux) as the check that wrote the stamp.  Run ``infomorphic data verify`` to
catch these; it hashes everything.  The ctime argument holds on Linux and other POSIX systems;
on Windows ``st_ctime`` is the creation time, which a rewrite in place does not change.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptDataError

__all__ = [
    "STAMP_NAME",
    "FileCheck",
    "read_content",
    "content_digest",
    "verify_file",
    "rehash_file",
    "read_verified",
]

logger = logging.getLogger(__name__)

STAMP_NAME = ".infomorphic-verified.json"
"""Stamp file remembering verified files in a data folder: per file name its size, mtime_ns,
ctime_ns, ino, dev, algorithm, digest and verified_at_ns (when the check started)."""

_RACY_NS = 2_000_000_000  # a stamp vouches only for files this much older than their check

_STAT_FIELDS = ("size", "mtime_ns", "ctime_ns", "ino", "dev")
"""The status fields a stamp records; all must be unchanged for it to be trusted."""

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class FileCheck:
    """Outcome of hashing one file (:func:`rehash_file`).

    Attributes
    ----------
    path
        The file.
    algorithm
        ``hashlib`` algorithm name.
    expected
        Published hex digest.
    actual
        Hex digest found; ``None`` when the file could not be read or decompressed.
    error
        ``None`` when the file matches, else the one-line message of the failure (names the file,
        the expected and actual digest, and how to get the file again).
    """

    path: Path
    algorithm: str
    expected: str
    actual: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the file matches its published digest."""
        return self.error is None


def read_content(path: Path) -> bytearray:
    """The bytes of ``path``, decompressed when it is gzip (detected by its magic bytes).

    Raises
    ------
    CorruptDataError
        If a gzip file is truncated or not valid gzip.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        n_read = handle.readinto(data)
    del data[n_read:]
    if data[:2] != _GZIP_MAGIC:
        return data
    try:
        return bytearray(gzip.decompress(data))
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptDataError(f"{path} is not a valid gzip file ({exc})") from None


def content_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of the (decompressed, for gzip) content of ``path``, read in chunks."""
    path = Path(path)
    digest = hashlib.new(algorithm)
    with open(path, "rb") as raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        try:
            stream = gzip.GzipFile(fileobj=raw) if is_gzip else raw
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            raise CorruptDataError(f"{path} is not a valid gzip file ({exc})") from None
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.parent / STAMP_NAME


def _read_stamps(stamp: Path) -> dict[str, dict[str, object]]:
    try:
        loaded = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _stat_fields(st: os.stat_result) -> dict[str, int]:
    """The status fields a stamp records (:data:`_STAT_FIELDS`)."""
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
    }


def _stamp_matches(path: Path, algorithm: str, expected: str) -> bool:
    """Whether the stamp says ``path``, unchanged since, had digest ``expected``.

    Unchanged means: size, mtime, ctime, inode and device as recorded, and the mtime at least
    :data:`_RACY_NS` older than the check.  Stamps lacking any of these fields are not trusted.
    """
    entry = _read_stamps(_stamp_path(path)).get(path.name)
    if not isinstance(entry, dict):
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    now = _stat_fields(st)
    verified_at = entry.get("verified_at_ns")
    return (
        all(type(entry.get(key)) is int and entry[key] == now[key] for key in _STAT_FIELDS)
        and type(verified_at) is int
        and st.st_mtime_ns < verified_at - _RACY_NS
        and entry.get("algorithm") == algorithm
        and entry.get("digest") == expected
    )


def _save_stamps(stamp: Path, stamps: dict[str, dict[str, object]]) -> None:
    """Write ``stamps`` to ``stamp`` atomically; failures are only logged."""
    from ..runs import atomic_write  # temporary file with the umask's permissions, then rename

    try:
        atomic_write(stamp, lambda handle: json.dump(stamps, handle, indent=1, sort_keys=True))
    except OSError as exc:
        logger.debug("could not write verification stamp %s: %s", stamp, exc)


def _write_stamp(path: Path, st: os.stat_result, algorithm: str, digest: str, verified_at_ns: int) -> None:
    """Record in its folder's stamp that ``path``, with status ``st``, had ``digest``.

    ``st`` must be the status taken *before* the content was hashed, and ``verified_at_ns`` a
    time no later than that.
    """
    stamp = _stamp_path(path)
    stamps = _read_stamps(stamp)
    stamps[path.name] = {
        **_stat_fields(st),
        "algorithm": algorithm,
        "digest": digest,
        "verified_at_ns": verified_at_ns,
    }
    _save_stamps(stamp, stamps)


def _forget_stamp(path: Path) -> None:
    """Remove ``path``'s entry from its folder's stamp, if there is one."""
    stamp = _stamp_path(path)
    stamps = _read_stamps(stamp)
    if stamps.pop(path.name, None) is not None:
        _save_stamps(stamp, stamps)


def _is_under(path: Path, root: Path | None) -> bool:
    if root is None:
        return False
    try:
        path.resolve().relative_to(root.resolve())
    except (OSError, ValueError):
        return False
    return True


def _mismatch(path: Path, algorithm: str, expected: str, got: str, hint: str) -> CorruptDataError:
    return CorruptDataError(
        f"{path} failed its {algorithm} check (expected {expected}, got {got}); delete it and {hint}"
    )


def _record(
    path: Path,
    st: os.stat_result,
    algorithm: str,
    expected: str,
    got: str,
    started: int,
    hint: str,
    use_stamp: bool,
) -> None:
    """After hashing: stamp a match (if the file did not change meanwhile), or raise and forget."""
    if got != expected:
        if use_stamp:
            _forget_stamp(path)
        raise _mismatch(path, algorithm, expected, got, hint)
    if not use_stamp:
        return
    try:
        unchanged = _stat_fields(path.stat()) == _stat_fields(st)
    except OSError:
        unchanged = False
    if unchanged:
        _write_stamp(path, st, algorithm, got, started)
    else:
        logger.debug("%s changed while it was hashed; no stamp written", path)


def _hash_file(path: Path, expected: str, algorithm: str, hint: str, use_stamp: bool) -> None:
    started = time.time_ns()
    st = path.stat()
    try:
        got = content_digest(path, algorithm)
    except CorruptDataError:
        if use_stamp:
            _forget_stamp(path)
        raise
    _record(path, st, algorithm, expected, got, started, hint, use_stamp)


def verify_file(
    path: Path,
    expected: str,
    *,
    algorithm: str = "sha256",
    stamp_root: Path | None = None,
    hint: str = "obtain it again",
    trust_stamp: bool = True,
) -> None:
    """Check that the content of ``path`` has digest ``expected``.

    Parameters
    ----------
    path
        The file; gzip files are checked on their decompressed content.
    expected
        Expected hex digest.
    algorithm
        ``hashlib`` algorithm name.
    stamp_root
        Stamps are read and written only when ``path`` lies under this folder (the data root);
        ``None`` hashes every time.
    hint
        How to obtain the file again, appended to the error message.
    trust_stamp
        ``False`` hashes the file even when a valid stamp vouches for it (the stamp is still
        renewed on a match and removed on a mismatch).

    Raises
    ------
    CorruptDataError
        On a digest mismatch or a malformed gzip file.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    use_stamp = _is_under(path, stamp_root)
    if trust_stamp and use_stamp and _stamp_matches(path, algorithm, expected):
        return
    _hash_file(path, expected, algorithm, hint, use_stamp)


def rehash_file(
    path: Path,
    expected: str,
    *,
    algorithm: str = "sha256",
    stamp_root: Path | None = None,
    hint: str = "obtain it again",
) -> FileCheck:
    """Hash ``path`` whatever its stamp says and report the outcome instead of raising.

    Stamps under ``stamp_root`` are renewed on a match and removed on a mismatch, as by
    :func:`verify_file` with ``trust_stamp=False``.  An unreadable file is reported as a failure
    with ``actual=None``.
    """
    path = Path(path)
    use_stamp = _is_under(path, stamp_root)
    started = time.time_ns()
    try:
        st = path.stat()
        got = content_digest(path, algorithm)
    except CorruptDataError as exc:
        if use_stamp:
            _forget_stamp(path)
        return FileCheck(path, algorithm, expected, None, f"{exc}; delete it and {hint}")
    except OSError as exc:
        return FileCheck(
            path, algorithm, expected, None, f"cannot read {path}: {exc.strerror or exc}; {hint}"
        )
    try:
        _record(path, st, algorithm, expected, got, started, hint, use_stamp)
    except CorruptDataError as exc:
        return FileCheck(path, algorithm, expected, got, str(exc))
    return FileCheck(path, algorithm, expected, got, None)


def read_verified(
    path: Path,
    expected: str,
    *,
    algorithm: str = "sha256",
    stamp_root: Path | None = None,
    hint: str = "obtain it again",
) -> bytearray:
    """The (decompressed) content of ``path`` after checking its digest; see :func:`verify_file`.

    The file is read once; it is hashed only when no valid stamp vouches for it.
    """
    path = Path(path)
    use_stamp = _is_under(path, stamp_root)
    if use_stamp and _stamp_matches(path, algorithm, expected):
        return read_content(path)
    started = time.time_ns()
    st = path.stat()
    try:
        data = read_content(path)
    except CorruptDataError:
        if use_stamp:
            _forget_stamp(path)
        raise
    got = hashlib.new(algorithm, data).hexdigest()
    _record(path, st, algorithm, expected, got, started, hint, use_stamp)
    return data
