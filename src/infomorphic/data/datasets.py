"""Image classification datasets as flat float32 tensors with fixed train/val/test splits.

:func:`load_dataset` reads ``digits`` (8x8, scikit-learn), ``mnist`` and ``fashion-mnist``
(28x28, IDX files) and ``cifar10`` (3x32x32, the "python version" pickles) and returns
:class:`DataSplits`:

- Pixels are scaled to [0, 1] (divided by 255; by 16 for ``digits``) and images flattened to
  ``(n, d)`` float32 tensors; labels are int64.
- Validation: a random ``val_fraction`` of the training set, drawn with
  ``numpy.random.default_rng(seed)`` (same seed, same split; 20 %, as in Schneider et al. 2025,
  appendix A.8).
- ``digits`` has no official test set: a stratified 20 % of each class is held out as test with the
  fixed seed :data:`DIGITS_TEST_SEED` (independent of ``seed``, so the test set never changes);
  the validation split is then drawn from the other 80 %.
- Standardisation (MNIST standardised by the training mean and std, as in the authors' code,
  github.com/Priesemann-Group/Infomorphic_Networks): the global scalar mean and std of the
  [0, 1] pixels of the *training* split (after the validation split is removed) are subtracted
  and divided out of all three splits.  They are computed exactly from the histogram of the
  integer pixel values.

Where the files are looked for and how to obtain them: :mod:`infomorphic.data.locate`; how they
are verified: :mod:`infomorphic.data.verify`.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import locate, verify
from .errors import CorruptDataError, DataNotFoundError
from .locate import canonical_name, resolve_data_root

__all__ = [
    "DIGITS_TEST_SEED",
    "DIGITS_TEST_FRACTION",
    "CLASS_NAMES",
    "Split",
    "DataSplits",
    "read_idx",
    "parse_idx",
    "read_cifar10_batch",
    "load_dataset",
]

logger = logging.getLogger(__name__)

DIGITS_TEST_SEED = 0
"""Seed of the fixed, stratified test split of ``digits`` (independent of ``load_dataset(seed=)``)."""

DIGITS_TEST_FRACTION = 0.2
"""Fraction of each ``digits`` class held out as the test set."""

CLASS_NAMES: Mapping[str, tuple[str, ...]] = {
    "digits": tuple(str(i) for i in range(10)),
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
"""Class names of each dataset, indexed by label."""

# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES: Mapping[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


# ------------------------------------------------------------------------------ containers
@dataclass(frozen=True, slots=True)
class Split:
    """One split of a dataset.

    Attributes
    ----------
    x
        Flattened images, float32.
    y
        Labels in ``[0, n_classes)``, int64.

    Shape
    -----
    ``x``: ``(n, d)``; ``y``: ``(n,)``.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.x.dim() != 2:
            raise ValueError(f"x must be a float32 (n, d) tensor, got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise ValueError(
                f"y must be an int64 ({self.x.shape[0]},) tensor, got {self.y.dtype} {tuple(self.y.shape)}"
            )

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True, slots=True)
class DataSplits:
    """Train / validation / test splits of one dataset, ready for training.

    Attributes
    ----------
    name
        Canonical dataset name.
    train, val, test
        The splits; ``val`` is ``val_fraction`` of the official training set.
    n_classes
        Number of classes.
    image_shape
        Shape of one image before flattening, e.g. ``(28, 28)`` or ``(3, 32, 32)``.
    mean, std
        Global mean and std of the training split's pixels on the [0, 1] scale (the values
        subtracted and divided out when ``standardized``).
    standardized
        Whether ``x`` was standardised with ``mean`` and ``std``.
    seed, val_fraction
        The arguments that chose the validation split.
    train_index, val_index
        Positions of the training and validation examples in the pool they were drawn from (the
        official training set; for ``digits`` the 80 % that is not test), int64, sorted.
    class_names
        Names of the classes, indexed by label.
    """

    name: str
    train: Split
    val: Split
    test: Split
    n_classes: int
    image_shape: tuple[int, ...]
    mean: float
    std: float
    standardized: bool
    seed: int
    val_fraction: float
    train_index: torch.Tensor = field(repr=False)
    val_index: torch.Tensor = field(repr=False)
    class_names: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        """Length ``d`` of a flattened image."""
        return int(np.prod(self.image_shape))


# ------------------------------------------------------------------------------ readers
def parse_idx(data: bytes | bytearray | memoryview, source: str = "<bytes>") -> np.ndarray:
    """Decode the IDX format (magic ``00 00 <type> <ndim>``, big-endian uint32 dimensions).

    Parameters
    ----------
    data
        The uncompressed file content.
    source
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        Array of the declared shape in native byte order.

    Raises
    ------
    CorruptDataError
        If the magic number, type code or dimensions do not match the content's size.
    """
    buf = memoryview(data)
    if len(buf) < 4:
        raise CorruptDataError(f"{source}: too short for an IDX file ({len(buf)} bytes)")
    if buf[0] != 0 or buf[1] != 0:
        raise CorruptDataError(
            f"{source}: bad IDX magic number {bytes(buf[:4]).hex()} (must start with 0000)"
        )
    code, ndim = buf[2], buf[3]
    if code not in _IDX_DTYPES:
        raise CorruptDataError(f"{source}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise CorruptDataError(f"{source}: IDX file declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise CorruptDataError(f"{source}: truncated IDX header ({len(buf)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(buf[4:header], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(buf) != expected:
        raise CorruptDataError(
            f"{source}: IDX dimensions {dims} of {dtype.name} need {expected} bytes, file has {len(buf)}"
        )
    array = np.frombuffer(buf, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed (detected by its magic bytes, not its name).

    Returns
    -------
    numpy.ndarray
        The array in native byte order.

    Raises
    ------
    CorruptDataError
        (a ``ValueError``) if the file is not valid gzip or not a consistent IDX file.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    return parse_idx(verify.read_content(path), source=str(path))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds NumPy arrays (CIFAR-10 batches are plain pickled dicts)."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = "numpy._core" + module[len("numpy.core") :]
        return super().find_class(module, name)


def _get(batch: Mapping[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    raise KeyError(key)


def read_cifar10_batch(data: bytes | bytearray, source: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 python batch (a pickled dict with ``data`` and ``labels``).

    Only NumPy arrays are rebuilt, so a pickle cannot run arbitrary code.

    Returns
    -------
    tuple of numpy.ndarray
        ``x`` uint8 ``(n, 3072)`` (1024 red, 1024 green, 1024 blue values, row-major) and ``y``
        int64 ``(n,)``.

    Raises
    ------
    CorruptDataError
        If the pickle is unreadable or lacks a consistent ``data`` / ``labels`` pair.
    """
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
        x = np.asarray(_get(batch, "data"))
        y = np.asarray(_get(batch, "labels"))
    except (
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
    ) as exc:
        raise CorruptDataError(
            f"{source}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})"
        ) from None
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise CorruptDataError(f"{source}: data must be uint8 (n, 3072), got {x.dtype} {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
        raise CorruptDataError(f"{source}: labels must be {x.shape[0]} integers, got {y.dtype} {y.shape}")
    return x, y.astype(np.int64)


# ------------------------------------------------------------------------------ raw loading
@dataclass(frozen=True, slots=True)
class _Raw:
    """Integer pixels before splitting: ``x`` uint8 ``(n, d)``, ``y`` int64, pixel ``scale``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, ...]
    scale: float


def _load_idx_raw(name: str, root: Path) -> _Raw:
    algorithm, digests = locate.expected_digests(name)
    paths = locate.find_idx_files(name, root)
    hint = locate.how_to_get(name, root)
    arrays: dict[str, np.ndarray] = {}
    for stem, path in paths.items():
        content = verify.read_verified(path, digests[stem], algorithm=algorithm, stamp_root=root, hint=hint)
        arrays[stem] = parse_idx(content, source=str(path))
        logger.debug("read %s: %s %s", path, arrays[stem].dtype, arrays[stem].shape)
    out: list[np.ndarray] = []
    for part in ("train", "t10k"):
        images, labels = arrays[f"{part}-images-idx3-ubyte"], arrays[f"{part}-labels-idx1-ubyte"]
        src = paths[f"{part}-images-idx3-ubyte"].parent
        if images.dtype != np.uint8 or images.ndim != 3 or labels.dtype != np.uint8 or labels.ndim != 1:
            raise CorruptDataError(
                f"{name} {part} files in {src} are not uint8 images (n, h, w) and labels (n,)"
            )
        if images.shape[0] != labels.shape[0]:
            raise CorruptDataError(
                f"{name} {part} files in {src}: {images.shape[0]} images but {labels.shape[0]} labels"
            )
        out += [images.reshape(images.shape[0], -1), labels.astype(np.int64)]
    if arrays["train-images-idx3-ubyte"].shape[1:] != arrays["t10k-images-idx3-ubyte"].shape[1:]:
        raise CorruptDataError(f"{name}: training and test images differ in size")
    return _Raw(out[0], out[1], out[2], out[3], tuple(arrays["train-images-idx3-ubyte"].shape[1:]), 255.0)


def _load_cifar10_raw(root: Path) -> _Raw:
    algorithm, digests = locate.expected_digests("cifar10")
    directory = locate.find_cifar10_dir(root)
    hint = locate.how_to_get("cifar10", root)
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for stem, path in locate.cifar10_files(directory).items():
        content = verify.read_verified(path, digests[stem], algorithm=algorithm, stamp_root=root, hint=hint)
        parts[stem] = read_cifar10_batch(content, source=str(path))
    train = [parts[f"data_batch_{i}"] for i in range(1, 6)]
    return _Raw(
        np.concatenate([x for x, _ in train]),
        np.concatenate([y for _, y in train]),
        parts["test_batch"][0],
        parts["test_batch"][1],
        (3, 32, 32),
        255.0,
    )


def _stratified_holdout(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of ``round(fraction * count)`` random examples of each class."""
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        picked.append(rng.permutation(members)[: int(round(fraction * members.size))])
    return np.sort(np.concatenate(picked))


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits ``(x (1797, 64) values 0..16, y)``.

    Read straight from scikit-learn's bundled ``datasets/data/digits.csv.gz`` (the file
    ``sklearn.datasets.load_digits`` reads), located without importing scikit-learn, whose import
    takes seconds; falls back to ``load_digits`` if the file is not where expected.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DataNotFoundError(f"digits needs scikit-learn; {locate.how_to_get('digits', Path('.'))}")
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if csv.is_file():
        table = np.loadtxt(csv, delimiter=",")
        if table.shape == (1797, 65):
            return table[:, :-1], table[:, -1]
        logger.debug("unexpected shape %s of %s; using load_digits", table.shape, csv)
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return np.asarray(x), np.asarray(y)


def _load_digits_raw() -> _Raw:
    x, y = _digits_arrays()
    x = np.rint(x).astype(np.uint8)
    y = np.rint(y).astype(np.int64)
    test = _stratified_holdout(y, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    keep = np.setdiff1d(np.arange(y.size), test)
    return _Raw(x[keep], y[keep], x[test], y[test], (8, 8), 16.0)


# ------------------------------------------------------------------------------ splitting
def _validation_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) indices: a random ``round(val_fraction * n)`` of ``range(n)`` is val."""
    n_val = int(round(val_fraction * n))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _pixel_stats(x: np.ndarray, scale: float) -> tuple[float, float]:
    """Exact mean and std of ``x / scale`` for uint8 ``x``, from its value histogram."""
    flat = torch.from_numpy(np.ascontiguousarray(x).reshape(-1))
    counts = torch.bincount(flat, minlength=256).numpy().astype(np.float64)
    values = np.arange(counts.size, dtype=np.float64) / scale
    total = counts.sum()
    mean = float(counts @ values / total)
    var = float(counts @ (values - mean) ** 2 / total)
    return mean, var**0.5


def _to_split(x: np.ndarray, y: np.ndarray, scale: float, mean: float, std: float) -> Split:
    """``(x / scale - mean) / std`` as float32 (``mean=0, std=1`` leaves [0, 1] pixels)."""
    xf = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32)
    xf.div_(scale)
    if mean != 0.0 or std != 1.0:
        xf.sub_(mean).div_(std)
    return Split(xf, torch.from_numpy(np.ascontiguousarray(y)))


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    standardize: bool = True,
) -> DataSplits:
    """Load a dataset as train / validation / test tensors.

    Parameters
    ----------
    name
        ``"digits"``, ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
    data_dir
        Data root; defaults to ``$INFOMORPHIC_DATA_DIR`` or ``~/.cache/infomorphic``
        (:func:`infomorphic.data.locate.resolve_data_root`).  For CIFAR-10 it may also be the
        ``cifar-10-batches-py`` folder itself.  Ignored for ``digits``.
    val_fraction
        Fraction of the training set held out for validation, in ``[0, 1)``.
    seed
        Seed of the ``numpy.random.Generator`` that draws the validation split.
    standardize
        Subtract the training split's global pixel mean and divide by its std (on the [0, 1]
        scale); otherwise pixels stay in [0, 1].

    Returns
    -------
    DataSplits
        ``x`` float32 ``(n, d)``, ``y`` int64 ``(n,)`` for each split.

    Raises
    ------
    ValueError
        For an unknown name or a bad ``val_fraction``.
    DataNotFoundError
        If the files are missing; the message says how to get them.
    CorruptDataError
        If a file is malformed or fails its checksum.
    """
    key = canonical_name(name)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if key == "digits":
        raw = _load_digits_raw()
    else:
        root = resolve_data_root(data_dir)
        raw = _load_cifar10_raw(root) if key == "cifar10" else _load_idx_raw(key, root)

    n_classes = len(CLASS_NAMES[key])
    for split, labels in (("training", raw.y_train), ("test", raw.y_test)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise CorruptDataError(
                f"{key} {split} labels outside [0, {n_classes}): {int(labels.min())}..{int(labels.max())}"
            )
    train_idx, val_idx = _validation_split(raw.y_train.size, float(val_fraction), int(seed))
    if train_idx.size == 0:
        raise ValueError(f"val_fraction={val_fraction} leaves no training examples in {key}")
    x_train = raw.x_train[train_idx]
    mean, std = _pixel_stats(x_train, raw.scale)
    if standardize and std == 0.0:
        raise ValueError(f"{key}: the training pixels are constant, cannot standardise")
    shift, div = (mean, std) if standardize else (0.0, 1.0)
    return DataSplits(
        name=key,
        train=_to_split(x_train, raw.y_train[train_idx], raw.scale, shift, div),
        val=_to_split(raw.x_train[val_idx], raw.y_train[val_idx], raw.scale, shift, div),
        test=_to_split(raw.x_test, raw.y_test, raw.scale, shift, div),
        n_classes=n_classes,
        image_shape=raw.image_shape,
        mean=mean,
        std=std,
        standardized=bool(standardize),
        seed=int(seed),
        val_fraction=float(val_fraction),
        train_index=torch.from_numpy(train_idx.astype(np.int64)),
        val_index=torch.from_numpy(val_idx.astype(np.int64)),
        class_names=CLASS_NAMES[key],
    )
