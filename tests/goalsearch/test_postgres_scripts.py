"""scripts/postgres_start.sh and postgres_stop.sh: argument errors are one line with exit 2, and a
folder that is not a cluster is refused, before anything is installed or started (no server
needed; the server itself: tests/goalsearch/test_postgres.py, slow)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give the cluster folder DIR"),
        (["a", "b"], "one DIR only"),
        (["d", "--port", "http"], "--port must be a number from 1 to 65535, got 'http'"),
        (["d", "--port", "70000"], "--port must be a number"),
        (["d", "--db", "x;drop"], "--db must be letters, digits and _"),
        (["d", "--verbose"], "unknown option --verbose"),
    ],
)
def test_start_argument_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run("postgres_start.sh", *[str(tmp_path / a) if a in ("a", "b", "d") else a for a in args])
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line
    assert not (tmp_path / "d").exists()


def test_stop_refuses_what_is_not_a_cluster(tmp_path: Path) -> None:
    for args, code, message in (
        ([], 2, "give the cluster folder DIR"),
        ([str(tmp_path / "missing")], 1, "does not exist"),
        ([str(tmp_path)], 1, f"{tmp_path} is not a cluster made by scripts/postgres_start.sh"),
    ):
        result = _run("postgres_stop.sh", *args)
        assert result.returncode == code
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: ") and message in line
