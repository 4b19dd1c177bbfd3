"""Tests for what is verified when (:mod:`infomorphic.data.verify`, ``verify_dataset``).

The scenario a tester found: a data file with one flipped byte whose modification time was put
back with ``os.utime`` (what bit rot or a careless copy tool looks like).  Loading must catch it
(the stamp records the ctime, which ``utime`` changes); a corruption that keeps even the ctime
(bit rot below the file system, simulated by a stamp forged for the corrupted file's status) is
trusted by loading, but caught by :func:`~infomorphic.data.fetch.verify_dataset` and by a fetch.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from infomorphic.data import fetch, load_dataset, locate, verify
from infomorphic.data.errors import CorruptDataError
from infomorphic.data.verify import verify_file

IMAGES = "train-images-idx3-ubyte"


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_mnist() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    return {
        IMAGES: idx_bytes(rng.integers(0, 256, (30, 3, 3))),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(30) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (10, 3, 3))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(10) % 10),
    }


def age(path: Path, seconds: float = 3600.0) -> None:
    """Move the mtime of ``path`` into the past (stamps only vouch for files older than their check)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def flip_byte_keep_mtime(path: Path) -> os.stat_result:
    """Flip the lowest bit of the last byte of ``path`` in place and restore atime and mtime.

    Returns the status before the flip.  The ctime cannot be restored; the utime is repeated
    (for at most two seconds) until the ctime is past the old value, since file-system clocks tick
    coarsely and bit rot does not happen within milliseconds of a check.
    """
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)[0]
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    for _ in range(400):
        if path.stat().st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.005)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino, after.st_dev) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
        before.st_dev,
    )
    assert after.st_ctime_ns != before.st_ctime_ns
    return before


def forge_stamp(path: Path, digest: str, algorithm: str = "sha256", **override: int) -> None:
    """Write a stamp entry vouching that ``path``, as it is *now*, has ``digest``.

    Simulates a corruption that leaves every status field alone (bit rot below the file system).
    ``override`` replaces recorded status fields (e.g. ``ino=...``).
    """
    st = path.stat()
    entry: dict[str, object] = {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
        "dev": st.st_dev,
        "algorithm": algorithm,
        "digest": digest,
        "verified_at_ns": time.time_ns(),
    }
    entry.update(override)
    stamp = path.parent / verify.STAMP_NAME
    stamps = json.loads(stamp.read_text()) if stamp.is_file() else {}
    stamps[path.name] = entry
    stamp.write_text(json.dumps(stamps))


@pytest.fixture()
def mnist(monkeypatch: pytest.MonkeyPatch, isolated_data_root: Path) -> dict[str, bytes]:
    """Tiny MNIST files in ``<root>/mnist`` (aged), whose SHA-256s replace the published ones."""
    files = tiny_mnist()
    monkeypatch.setattr(locate, "MNIST_SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    directory = isolated_data_root / "mnist"
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
        age(directory / name)
    return files


class HashCounter:
    """Wraps :func:`verify.content_digest`, counting the files hashed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real = verify.content_digest

        def counting(path: Path, algorithm: str = "sha256") -> str:
            self.paths.append(Path(path).name)
            return real(path, algorithm)

        monkeypatch.setattr(verify, "content_digest", counting)


# ------------------------------------------------------------------------------ loading
def test_load_catches_flipped_byte_with_restored_mtime(
    mnist: dict[str, bytes], isolated_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = isolated_data_root / "mnist" / IMAGES
    first = load_dataset("mnist")
    entry = json.loads((path.parent / verify.STAMP_NAME).read_text())[IMAGES]
    assert entry["ctime_ns"] == path.stat().st_ctime_ns and entry["ino"] == path.stat().st_ino
    with monkeypatch.context() as m:  # the stamp really vouches for the unchanged file
        m.setattr(verify.hashlib, "new", lambda *a, **k: pytest.fail("hashed despite a valid stamp"))
        assert load_dataset("mnist").train.x.shape == first.train.x.shape
    flip_byte_keep_mtime(path)
    with pytest.raises(CorruptDataError) as info:
        load_dataset("mnist")
    message = str(info.value)
    good = locate.MNIST_SHA256[IMAGES]
    bad = hashlib.sha256(path.read_bytes()).hexdigest()
    assert message.startswith(f"{path} failed its sha256 check (expected {good}, got {bad})")
    assert "infomorphic data fetch mnist" in message and "\n" not in message


@pytest.mark.parametrize("field", ["ctime_ns", "ino", "dev", "size", "mtime_ns"])
def test_stamp_with_other_status_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = root / "f"
    path.write_bytes(b"hello")
    age(path)
    good = hashlib.sha256(b"hello").hexdigest()
    recorded = {
        "ctime_ns": path.stat().st_ctime_ns,
        "ino": path.stat().st_ino,
        "dev": path.stat().st_dev,
        "size": 5,
        "mtime_ns": path.stat().st_mtime_ns,
    }
    forge_stamp(path, good, **{field: recorded[field] + 1})
    counter = HashCounter(monkeypatch)
    verify_file(path, good, stamp_root=root)
    assert counter.paths == ["f"]
    # re-stamped with the true status: the next check trusts it
    entry = json.loads((root / verify.STAMP_NAME).read_text())["f"]
    assert entry[field] == recorded[field]
    verify_file(path, good, stamp_root=root)
    assert counter.paths == ["f"]


def test_old_stamp_without_ctime_inode_is_rehashed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = root / "f"
    path.write_bytes(b"hello")
    age(path)
    good = hashlib.sha256(b"hello").hexdigest()
    st = path.stat()
    old = {
        "f": {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "algorithm": "sha256",
            "digest": good,
            "verified_at_ns": time.time_ns(),
        }
    }
    (root / verify.STAMP_NAME).write_text(json.dumps(old))
    counter = HashCounter(monkeypatch)
    verify_file(path, good, stamp_root=root)
    assert counter.paths == ["f"]
    entry = json.loads((root / verify.STAMP_NAME).read_text())["f"]
    assert (entry["ctime_ns"], entry["ino"], entry["dev"]) == (st.st_ctime_ns, st.st_ino, st.st_dev)
    verify_file(path, good, stamp_root=root)
    assert counter.paths == ["f"]


def test_no_stamp_when_file_changes_while_hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = root / "f"
    path.write_bytes(b"hello")
    age(path)
    real = verify.content_digest

    def digest_then_touch(p: Path, algorithm: str = "sha256") -> str:
        got = real(p, algorithm)
        age(Path(p), 7200.0)  # status changes after the bytes were read
        return got

    monkeypatch.setattr(verify, "content_digest", digest_then_touch)
    verify_file(path, hashlib.sha256(b"hello").hexdigest(), stamp_root=root)
    assert not (root / verify.STAMP_NAME).exists()


# ------------------------------------------------------------------------------ forced hashing
def test_trust_stamp_false_hashes_and_forgets_a_lying_stamp(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    path = root / "f"
    path.write_bytes(b"hellp")  # corrupted; the stamp says it is "hello"
    age(path)
    good = hashlib.sha256(b"hello").hexdigest()
    forge_stamp(path, good)
    verify_file(path, good, stamp_root=root)  # loading trusts a stamp whose status matches: documented
    bad = hashlib.sha256(b"hellp").hexdigest()
    with pytest.raises(CorruptDataError, match=f"expected {good}, got {bad}"):
        verify_file(path, good, stamp_root=root, trust_stamp=False)
    assert json.loads((root / verify.STAMP_NAME).read_text()) == {}  # stamp forgotten
    with pytest.raises(CorruptDataError):
        verify_file(path, good, stamp_root=root)


def test_rehash_file_reports_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    good, bad = hashlib.md5(b"hello").hexdigest(), "0" * 32
    ok = verify.rehash_file(path, good, algorithm="md5")
    assert ok.ok and ok.actual == good and ok.error is None
    failed = verify.rehash_file(path, bad, algorithm="md5", hint="copy it again")
    assert not failed.ok and failed.actual == good and failed.expected == bad
    assert failed.error == (
        f"{path} failed its md5 check (expected {bad}, got {good}); delete it and copy it again"
    )
    (tmp_path / "g.gz").write_bytes(b"\x1f\x8b not gzip")
    broken = verify.rehash_file(tmp_path / "g.gz", good, algorithm="md5")
    assert broken.actual is None and "is not a valid gzip file" in (broken.error or "")
    missing = verify.rehash_file(tmp_path / "absent", good, algorithm="md5")
    assert missing.actual is None and (missing.error or "").startswith(f"cannot read {tmp_path / 'absent'}")


# ------------------------------------------------------------------------------ verify_dataset
def test_verify_dataset_good(
    mnist: dict[str, bytes], isolated_data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_dataset("mnist")  # stamps every file
    counter = HashCounter(monkeypatch)
    steps: list[tuple[int, int]] = []
    result = fetch.verify_dataset("mnist", progress=lambda m, d, t: steps.append((d, t)))
    assert counter.paths == list(locate.IDX_FILES)  # hashed despite valid stamps
    assert result.state == "verified" and result.verified and result.detail == "ok"
    assert result.location == str(isolated_data_root / "mnist")
    assert [c.actual for c in result.files] == [locate.MNIST_SHA256[s] for s in locate.IDX_FILES]
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_verify_dataset_catches_corruption_that_keeps_ctime(
    mnist: dict[str, bytes],
    isolated_data_root: Path,
) -> None:
    path = isolated_data_root / "mnist" / IMAGES
    load_dataset("mnist")
    good = locate.MNIST_SHA256[IMAGES]
    flip_byte_keep_mtime(path)
    forge_stamp(path, good)  # even the ctime is as recorded
    load_dataset("mnist")  # a load cannot tell: what `data verify` is for
    result = fetch.verify_dataset("mnist")
    assert result.state == "failed" and not result.verified
    assert result.detail == f"1 of 4 file(s) failed: {IMAGES}"
    bad = [c for c in result.files if not c.ok]
    assert [c.path for c in bad] == [path]
    assert bad[0].expected == good and bad[0].actual == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "infomorphic data fetch mnist" in (bad[0].error or "")
    with pytest.raises(CorruptDataError, match=IMAGES):  # the lying stamp is gone
        load_dataset("mnist")


def test_verify_dataset_missing_and_digits(isolated_data_root: Path) -> None:
    missing = fetch.verify_dataset("mnist")
    assert missing.state == "missing" and missing.files == () and not missing.verified
    assert missing.detail == f"mnist not found in {isolated_data_root / 'mnist'}"
    assert "infomorphic data fetch mnist" in missing.hint
    digits = fetch.verify_dataset("digits")
    assert digits.state == "bundled" and digits.verified
    with pytest.raises(ValueError, match="unknown dataset"):
        fetch.verify_dataset("svhn")


def test_dataset_status_rehash(mnist: dict[str, bytes], isolated_data_root: Path) -> None:
    path = isolated_data_root / "mnist" / IMAGES
    flip_byte_keep_mtime(path)
    forge_stamp(path, locate.MNIST_SHA256[IMAGES])
    assert fetch.dataset_status("mnist").verified  # trusts the stamp
    status = fetch.dataset_status("mnist", rehash=True)
    assert status.available and not status.verified
    assert status.detail.startswith(f"{path} failed its sha256 check")
