"""Datasets: digits, MNIST, Fashion-MNIST and CIFAR-10 as flat tensors with fixed splits.

- :func:`load_dataset` returns :class:`DataSplits` (train / val / test, standardised by the
  training split's mean and std) from verified files (:mod:`.datasets`).
- :func:`fetch_mnist` downloads and verifies MNIST, :func:`dataset_status` says whether a
  dataset is in place (:mod:`.fetch`); :func:`resolve_data_root` says where data lives
  (``data_dir`` > ``$INFOMORPHIC_DATA_DIR`` > ``~/.cache/infomorphic``) (:mod:`.locate`); files
  are checked against their digests by :mod:`.verify`.
- Missing or corrupt files raise :class:`DataNotFoundError` / :class:`CorruptDataError`, both
  ``ValueError``s whose message says how to get the data.

The tensor parts (:mod:`.datasets`, which imports torch) load on first use, so checking and
fetching files starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import CorruptDataError, DataError, DataNotFoundError, FetchError
from .fetch import DatasetStatus, FetchResult, dataset_status, fetch_mnist
from .locate import DATA_DIR_ENV, DATASET_NAMES, resolve_data_root

if TYPE_CHECKING:
    from .datasets import CLASS_NAMES, DataSplits, Split, load_dataset, read_cifar10_batch, read_idx

__all__ = [
    "CLASS_NAMES",
    "DATA_DIR_ENV",
    "DATASET_NAMES",
    "CorruptDataError",
    "DataError",
    "DataNotFoundError",
    "DataSplits",
    "DatasetStatus",
    "FetchError",
    "FetchResult",
    "Split",
    "dataset_status",
    "fetch_mnist",
    "load_dataset",
    "read_cifar10_batch",
    "read_idx",
    "resolve_data_root",
]

_LAZY = frozenset({"CLASS_NAMES", "DataSplits", "Split", "load_dataset", "read_cifar10_batch", "read_idx"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(".datasets", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
