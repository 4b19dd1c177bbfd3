"""Tests for ``infomorphic.data.datasets``: IDX and CIFAR-10 readers, splits, standardisation.

Everything runs on tiny files written to ``tmp_path`` (with their checksums substituted for the
published ones); ``digits`` is tested for real since it ships with scikit-learn.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from infomorphic.data import datasets, locate, verify
from infomorphic.data.datasets import (
    DIGITS_TEST_SEED,
    DataSplits,
    Split,
    load_dataset,
    parse_idx,
    read_cifar10_batch,
    read_idx,
)
from infomorphic.data.errors import CorruptDataError, DataNotFoundError

IDX_CODES = {
    np.dtype("u1"): 0x08,
    np.dtype("i1"): 0x09,
    np.dtype(">i2"): 0x0B,
    np.dtype(">i4"): 0x0C,
    np.dtype(">f4"): 0x0D,
    np.dtype(">f8"): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` in the IDX format (big-endian)."""
    dtype = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    header = bytes([0, 0, IDX_CODES[dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def tiny_idx_set(n_train: int = 60, n_test: int = 20, side: int = 4, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }


def install_idx(
    monkeypatch: pytest.MonkeyPatch,
    directory: Path,
    attr: str,
    *,
    compress: bool = False,
    arrays: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Write a tiny IDX dataset into ``directory`` and make its SHA-256s the expected ones."""
    arrays = tiny_idx_set() if arrays is None else arrays
    directory.mkdir(parents=True, exist_ok=True)
    digests = {}
    for stem, array in arrays.items():
        write_idx(directory / (f"{stem}.gz" if compress else stem), array, compress=compress)
        digests[stem] = hashlib.sha256(idx_bytes(array)).hexdigest()
    monkeypatch.setattr(locate, attr, digests)
    return arrays


def cifar_batch(n: int, seed: int, *, str_keys: bool = False) -> dict[object, object]:
    rng = np.random.default_rng(seed)
    batch = {
        "batch_label": "training batch",
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img{i}.png" for i in range(n)],
    }
    return (
        batch
        if str_keys
        else {k.encode(): (v.encode() if isinstance(v, str) else v) for k, v in batch.items()}
    )


def install_cifar(monkeypatch: pytest.MonkeyPatch, directory: Path, n: int = 6) -> dict[str, dict]:
    directory.mkdir(parents=True, exist_ok=True)
    batches, digests = {}, {}
    for i, stem in enumerate(locate.CIFAR10_MD5):
        batch = cifar_batch(n, seed=i)
        payload = pickle.dumps(batch, protocol=2)
        (directory / stem).write_bytes(payload)
        digests[stem] = hashlib.md5(payload).hexdigest()
        batches[stem] = batch
    monkeypatch.setattr(locate, "CIFAR10_MD5", digests)
    return batches


@pytest.fixture(autouse=True)
def isolated_data(isolated_data_root: Path) -> Path:
    """Every test here runs against an empty data root in ``tmp_path``."""
    return isolated_data_root


# ------------------------------------------------------------------------------ read_idx
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_roundtrip(tmp_path: Path, compress: bool, dtype: str) -> None:
    array = np.arange(24, dtype="u1") if dtype == "u1" else (np.arange(24) - 5).astype(dtype)
    array = array.reshape(2, 3, 4)
    # the name never says gzip: compression is detected from the magic bytes
    path = write_idx(tmp_path / "data-idx3", array, compress=compress)
    out = read_idx(path)
    assert out.shape == (2, 3, 4)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 1  # writable


def test_read_idx_raw_file_named_gz(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "labels.gz", array)), array)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b[:3], "too short"),
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "type code"),
        (lambda b: b[:3] + b"\x00" + b[4:], "0 dimensions"),
        (lambda b: b[:3] + b"\x09" + b[4:], "truncated IDX header"),
        (lambda b: b[:-1], "need"),
        (lambda b: b + b"\x00", "need"),
    ],
)
def test_read_idx_corrupt(tmp_path: Path, mutate, message: str) -> None:
    good = idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    path = tmp_path / "bad"
    path.write_bytes(mutate(good))
    with pytest.raises(CorruptDataError, match=message) as info:
        read_idx(path)
    assert isinstance(info.value, ValueError) and str(path) in str(info.value)


def test_read_idx_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8)))[:-20])
    with pytest.raises(CorruptDataError, match="gzip"):
        read_idx(path)


def test_parse_idx_big_endian_values() -> None:
    data = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + struct.pack(">2i", 1, -2)
    np.testing.assert_array_equal(parse_idx(data), [1, -2])


# ------------------------------------------------------------------------------ mnist / fashion
def test_load_dataset_mnist_tiny(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    arrays = install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256")
    splits = load_dataset("mnist")
    assert isinstance(splits, DataSplits)
    assert splits.name == "mnist" and splits.n_classes == 10 and splits.image_shape == (4, 4)
    assert splits.n_features == 16
    assert (len(splits.train), len(splits.val), len(splits.test)) == (48, 12, 20)
    for split in (splits.train, splits.val, splits.test):
        assert split.x.dtype == torch.float32 and split.x.shape[1] == 16
        assert split.y.dtype == torch.int64
    y_all = arrays["train-labels-idx1-ubyte"].astype(np.int64)
    np.testing.assert_array_equal(splits.train.y.numpy(), y_all[splits.train_index.numpy()])
    np.testing.assert_array_equal(splits.val.y.numpy(), y_all[splits.val_index.numpy()])
    np.testing.assert_array_equal(splits.test.y.numpy(), arrays["t10k-labels-idx1-ubyte"])


def test_load_dataset_split_deterministic_disjoint(
    monkeypatch: pytest.MonkeyPatch, isolated_data: Path
) -> None:
    install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256")
    a = load_dataset("mnist", seed=7, val_fraction=0.25)
    b = load_dataset("mnist", seed=7, val_fraction=0.25)
    c = load_dataset("mnist", seed=8, val_fraction=0.25)
    assert torch.equal(a.val_index, b.val_index) and torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.val_index, c.val_index)
    train, val = set(a.train_index.tolist()), set(a.val_index.tolist())
    assert not train & val and train | val == set(range(60))
    assert len(val) == 15 and a.val_fraction == 0.25 and a.seed == 7


def test_load_dataset_standardisation(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    arrays = install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256")
    splits = load_dataset("mnist")
    x = splits.train.x.double()
    assert x.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert x.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    pixels = arrays["train-images-idx3-ubyte"].reshape(60, -1)[splits.train_index.numpy()] / 255.0
    assert splits.mean == pytest.approx(pixels.mean(), rel=1e-12)
    assert splits.std == pytest.approx(pixels.std(), rel=1e-12)
    test_pixels = arrays["t10k-images-idx3-ubyte"].reshape(20, -1) / 255.0
    np.testing.assert_allclose(splits.test.x.numpy(), (test_pixels - splits.mean) / splits.std, atol=1e-5)
    assert splits.standardized


def test_load_dataset_unstandardised(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    arrays = install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256")
    splits = load_dataset("mnist", standardize=False, val_fraction=0.0)
    assert len(splits.val) == 0 and splits.val.x.shape == (0, 16) and not splits.standardized
    np.testing.assert_allclose(
        splits.train.x.numpy(), arrays["train-images-idx3-ubyte"].reshape(60, -1) / 255.0, atol=1e-7
    )
    assert 0.0 <= float(splits.test.x.min()) and float(splits.test.x.max()) <= 1.0


def test_load_dataset_fashion_gzip_and_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    install_idx(monkeypatch, elsewhere / "fashion-mnist", "FASHION_MNIST_SHA256", compress=True)
    splits = load_dataset("fashion_mnist", data_dir=elsewhere)
    assert splits.name == "fashion-mnist" and splits.class_names[9] == "Ankle boot"
    assert len(splits.train) + len(splits.val) == 60


def test_load_dataset_fashion_system_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system = tmp_path / "usr-share"
    install_idx(monkeypatch, system, "FASHION_MNIST_SHA256", compress=True)
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIR", system)
    assert len(load_dataset("fashion-mnist").test) == 20
    assert not (system / verify.STAMP_NAME).exists()  # no stamps outside the data root


def test_load_dataset_checksum_mismatch(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256")
    monkeypatch.setitem(locate.MNIST_SHA256, "t10k-labels-idx1-ubyte", "0" * 64)
    with pytest.raises(CorruptDataError, match="failed its sha256 check") as info:
        load_dataset("mnist")
    assert "t10k-labels-idx1-ubyte" in str(info.value)
    assert "infomorphic data fetch mnist" in str(info.value)


def test_load_dataset_real_checksums_reject_tiny_files(isolated_data: Path) -> None:
    arrays = tiny_idx_set()
    (isolated_data / "mnist").mkdir(parents=True)
    for stem, array in arrays.items():
        write_idx(isolated_data / "mnist" / stem, array)
    with pytest.raises(CorruptDataError, match="sha256"):
        load_dataset("mnist")


def test_load_dataset_inconsistent_counts(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    arrays = tiny_idx_set()
    arrays["train-labels-idx1-ubyte"] = arrays["train-labels-idx1-ubyte"][:-1]
    install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256", arrays=arrays)
    with pytest.raises(CorruptDataError, match="60 images but 59 labels"):
        load_dataset("mnist")


def test_load_dataset_labels_out_of_range(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    arrays = tiny_idx_set()
    arrays["t10k-labels-idx1-ubyte"][3] = 10
    install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256", arrays=arrays)
    with pytest.raises(CorruptDataError, match="outside"):
        load_dataset("mnist")


def test_load_dataset_stamp_skips_hashing(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    install_idx(monkeypatch, isolated_data / "mnist", "MNIST_SHA256")
    for path in (isolated_data / "mnist").iterdir():  # stamps only vouch for files older than 2 s
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    first = load_dataset("mnist")
    assert (isolated_data / "mnist" / verify.STAMP_NAME).is_file()

    def no_hashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("hashed although the stamp is valid")

    with monkeypatch.context() as m:
        m.setattr(verify.hashlib, "new", no_hashing)
        assert torch.equal(load_dataset("mnist").train.x, first.train.x)
    # a changed file is hashed again and fails its check
    path = isolated_data / "mnist" / "train-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[-1] = (data[-1] + 1) % 10
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError, match="train-labels"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "name, needle",
    [
        ("mnist", "infomorphic data fetch mnist"),
        ("fashion-mnist", "apt-get install dataset-fashion-mnist"),
        ("cifar10", "cifar-10-batches-py"),
    ],
)
def test_load_dataset_missing(isolated_data: Path, name: str, needle: str) -> None:
    with pytest.raises(DataNotFoundError, match="not found") as info:
        load_dataset(name)
    assert needle in str(info.value) and str(isolated_data) in str(info.value)


def test_load_dataset_partial_files(isolated_data: Path) -> None:
    (isolated_data / "mnist").mkdir(parents=True)
    write_idx(isolated_data / "mnist" / "train-images-idx3-ubyte", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(DataNotFoundError, match="lacks train-labels-idx1-ubyte, t10k-images"):
        load_dataset("mnist")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_load_dataset_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", **kwargs)  # type: ignore[arg-type]


def test_load_dataset_unknown_name() -> None:
    with pytest.raises(ValueError, match="digits, mnist, fashion-mnist, cifar10"):
        load_dataset("svhn")


# ------------------------------------------------------------------------------ digits
def test_load_dataset_digits() -> None:
    splits = load_dataset("digits")
    assert splits.image_shape == (8, 8) and splits.n_classes == 10
    n_test = len(splits.test)
    assert n_test == 359 and len(splits.train) + len(splits.val) + n_test == 1797
    assert len(splits.val) == round(0.2 * (1797 - n_test))
    counts = torch.bincount(splits.test.y, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified
    assert splits.train.x.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert splits.train.x.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    # the test split never depends on the seed (its standardisation does, through the train split)
    raw = load_dataset("digits", standardize=False)
    other = load_dataset("digits", seed=DIGITS_TEST_SEED + 5, standardize=False)
    assert torch.equal(other.test.x, raw.test.x) and torch.equal(other.test.y, splits.test.y)
    assert not torch.equal(other.val_index, splits.val_index)
    assert float(raw.train.x.max()) == 1.0 and float(raw.train.x.min()) == 0.0


@pytest.mark.slow
def test_load_dataset_digits_matches_sklearn() -> None:
    """The bundled CSV read directly equals ``sklearn.datasets.load_digits`` (imports sklearn: slow)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    ours_x, ours_y = datasets._digits_arrays()
    np.testing.assert_array_equal(ours_x, x)
    np.testing.assert_array_equal(ours_y, y)


def test_load_dataset_digits_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the bundled CSV, ``sklearn.datasets.load_digits`` is used (faked here)."""
    x, y = datasets._digits_arrays()
    fake_spec = types.SimpleNamespace(origin=str(tmp_path / "sklearn" / "__init__.py"))
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: fake_spec)
    fake = types.ModuleType("sklearn.datasets")
    fake.load_digits = lambda return_X_y: (x, y)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    monkeypatch.setitem(sys.modules, "sklearn.datasets", fake)
    assert len(load_dataset("digits").test) == 359


# ------------------------------------------------------------------------------ cifar10
def test_load_dataset_cifar10(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    batches = install_cifar(monkeypatch, isolated_data / "cifar10" / "cifar-10-batches-py")
    splits = load_dataset("cifar10", val_fraction=0.2)
    assert splits.image_shape == (3, 32, 32) and splits.n_features == 3072
    assert len(splits.train) + len(splits.val) == 30 and len(splits.test) == 6
    assert len(splits.val) == 6
    np.testing.assert_array_equal(splits.test.y.numpy(), batches["test_batch"][b"labels"])
    raw_test = batches["test_batch"][b"data"] / 255.0
    np.testing.assert_allclose(splits.test.x.numpy(), (raw_test - splits.mean) / splits.std, atol=1e-5)
    train_labels = np.concatenate([batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)])
    np.testing.assert_array_equal(splits.train.y.numpy(), train_labels[splits.train_index.numpy()])


def test_load_dataset_cifar10_folder_given_directly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "somewhere" / "cifar-10-batches-py"
    install_cifar(monkeypatch, folder)
    assert len(load_dataset("cifar10", data_dir=folder).test) == 6


def test_load_dataset_cifar10_missing_batch(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    folder = isolated_data / "cifar10" / "cifar-10-batches-py"
    install_cifar(monkeypatch, folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataNotFoundError, match="lacks data_batch_3"):
        load_dataset("cifar10")


def test_load_dataset_cifar10_checksum(monkeypatch: pytest.MonkeyPatch, isolated_data: Path) -> None:
    install_cifar(monkeypatch, isolated_data / "cifar10" / "cifar-10-batches-py")
    monkeypatch.setitem(locate.CIFAR10_MD5, "test_batch", "0" * 32)
    with pytest.raises(CorruptDataError, match="md5"):
        load_dataset("cifar10")


def test_read_cifar10_batch_str_keys() -> None:
    batch = cifar_batch(3, seed=0, str_keys=True)
    x, y = read_cifar10_batch(pickle.dumps(batch, protocol=4))
    assert x.shape == (3, 3072) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == batch["labels"]


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.getcwd, ())  # type: ignore[return-value]


@pytest.mark.parametrize(
    "payload, message",
    [
        (pickle.dumps({b"data": _Evil(), b"labels": [1]}), "refusing to load"),
        (b"not a pickle", "not a CIFAR-10 python batch"),
        (pickle.dumps({b"labels": [1]}), "not a CIFAR-10 python batch"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}), r"uint8 \(n, 3072\)"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}), "labels must be 2"),
    ],
)
def test_read_cifar10_batch_rejects(payload: bytes, message: str) -> None:
    with pytest.raises(CorruptDataError, match=message):
        read_cifar10_batch(payload, source="batch")


# ------------------------------------------------------------------------------ containers
def test_split_validates() -> None:
    with pytest.raises(ValueError, match="float32"):
        Split(torch.zeros(3, 2, dtype=torch.float64), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64"):
        Split(torch.zeros(3, 2), torch.zeros(2, dtype=torch.int64))
    assert len(Split(torch.zeros(3, 2), torch.zeros(3, dtype=torch.int64))) == 3
