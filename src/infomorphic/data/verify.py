"""How data files are verified against their published digests, and the stamps that remember it.

Verification
------------
Every file is checked against a published digest before use: SHA-256 of the *uncompressed*
IDX content for MNIST and Fashion-MNIST (so a raw file and its ``.gz`` verify alike), MD5 of each
CIFAR-10 batch file (the values torchvision uses).  A successful check is remembered in a stamp
file ``.infomorphic-verified.json`` next to the data (file size, modification time in ns and
digest), so later loads skip the hashing while the file is unchanged.  As in git's "racy" check,
a stamp is trusted only for a file whose modification time is at least two seconds older than
its verification, because file-system timestamps are coarse and a same-size rewrite within one
tick would otherwise go unnoticed; a freshly written file is therefore hashed again on its next
use.  Stamps are written only in folders under the data root, never in system folders; files
elsewhere are hashed on every load.

A file that fails its check raises :class:`~infomorphic.data.errors.CorruptDataError`, whose
message says how to get the data again.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import time
import zlib
from pathlib import Path

from .errors import CorruptDataError

__all__ = [
    "STAMP_NAME",
    "read_content",
    "content_digest",
    "verify_file",
    "read_verified",
]

logger = logging.getLogger(__name__)

STAMP_NAME = ".infomorphic-verified.json"
"""Stamp file remembering verified files (size, mtime_ns, algorithm, digest) in a data folder."""

_RACY_NS = 2_000_000_000  # a stamp vouches only for files this much older than their check

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


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


def _stamp_matches(path: Path, algorithm: str, expected: str) -> bool:
    """Whether the stamp says ``path``, unchanged since, had digest ``expected``."""
    entry = _read_stamps(_stamp_path(path)).get(path.name)
    if not isinstance(entry, dict):
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return (
        entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
        and isinstance(entry.get("verified_at_ns"), int)
        and st.st_mtime_ns < int(entry["verified_at_ns"]) - _RACY_NS  # type: ignore[call-overload]
        and entry.get("algorithm") == algorithm
        and entry.get("digest") == expected
    )


def _write_stamp(path: Path, st: os.stat_result, algorithm: str, digest: str, verified_at_ns: int) -> None:
    """Record a verified file in its folder's stamp (atomic; failures are only logged)."""
    stamp = _stamp_path(path)
    stamps = _read_stamps(stamp)
    stamps[path.name] = {
        "size": st.st_size, "mtime_ns": st.st_mtime_ns, "algorithm": algorithm, "digest": digest,
        "verified_at_ns": verified_at_ns,
    }
    try:
        fd, tmp = tempfile.mkstemp(dir=stamp.parent, prefix=".stamp-", suffix=".tmp")
        try:
            os.chmod(tmp, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(stamps, handle, indent=1, sort_keys=True)
            os.replace(tmp, stamp)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.debug("could not write verification stamp %s: %s", stamp, exc)


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
        f"{path} failed its {algorithm} check (expected {expected}, got {got}); "
        f"delete it and {hint}"
    )


def verify_file(
    path: Path, expected: str, *, algorithm: str = "sha256", stamp_root: Path | None = None,
    hint: str = "obtain it again",
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

    Raises
    ------
    CorruptDataError
        On a digest mismatch or a malformed gzip file.
    """
    path = Path(path)
    use_stamp = _is_under(path, stamp_root)
    if use_stamp and _stamp_matches(path, algorithm, expected):
        return
    started = time.time_ns()
    st = path.stat()
    got = content_digest(path, algorithm)
    if got != expected:
        raise _mismatch(path, algorithm, expected, got, hint)
    if use_stamp:
        _write_stamp(path, st, algorithm, got, started)


def read_verified(
    path: Path, expected: str, *, algorithm: str = "sha256", stamp_root: Path | None = None,
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
    data = read_content(path)
    got = hashlib.new(algorithm, data).hexdigest()
    if got != expected:
        raise _mismatch(path, algorithm, expected, got, hint)
    if use_stamp:
        _write_stamp(path, st, algorithm, got, started)
    return data
