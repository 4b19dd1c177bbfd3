"""``infomorphic train --task bars|memory`` and ``infomorphic capacity``: run directories, JSON, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infomorphic.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--task", "foo"], "unknown --task"),
        (["train", "--task", "bars", "--dataset", "mnist"], "does not use --dataset"),
        (["train", "--task", "bars", "--alpha", "0.5"], "--alpha belong"),
        (["train", "--task", "memory", "--alpha", "-1"], "alpha must be > 0"),
        (["train", "--task", "memory", "--variant", "hv"], "--variant belongs"),
        (["train", "--task", "bars", "--set", "lr=abc"], "expects float"),
        (["train", "--task", "bars", "--set", "nokey=1"], "unknown key"),
        (["train", "--task", "bars", "--variant", "diagonal"], "unknown bars variant"),
        (["train", "--alpha", "0.5"], "--task memory"),
        (["capacity", "--grid", "0.1:0.2"], "start:stop:step"),
        (["capacity", "--methods", "foo"], "unknown methods"),
        (["capacity", "--seeds", "a,b"], "integers"),
    ],
)
def test_bad_options_exit_2_with_one_error_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args + ["--out-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.startswith("error:")


def test_train_memory_writes_run_directory(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--task",
            "memory",
            "--neurons",
            "30",
            "--alpha",
            "0.5",
            "--epochs",
            "300",
            "--out-dir",
            str(tmp_path),
            "--name",
            "m",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["score"] == 1.0 and summary["n_patterns"] == 15
    assert summary["scores_by_noise"]["pseudo-inverse"]["0"] == 1.0
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "metrics.jsonl", "atoms.npz", "summary.json", "atoms.png", "memory.pt"} <= files
    again = runner.invoke(app, ["train", "--task", "memory", "--out-dir", str(tmp_path), "--name", "m"])
    assert again.exit_code == 2 and "already holds a run" in again.output
    assert "--resume" not in again.output  # train --task memory has none to offer


def test_train_bars_writes_run_directory(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--task",
            "bars",
            "--epochs",
            "1",
            "--set",
            "batches_per_epoch=2",
            "--set",
            "batch_size=64",
            "--out-dir",
            str(tmp_path),
            "--name",
            "b",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["n_bars"] == 8 and len(summary["mi_matrix"]) == 8 and summary["threshold_bits"] == 0.9
    files = {p.name for p in (tmp_path / "b").iterdir()}
    assert {
        "config.json",
        "metrics.jsonl",
        "atoms.npz",
        "summary.json",
        "fields.png",
        "mi_matrix.png",
    } <= files


def test_capacity_command_reports_alpha_c(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "capacity",
            "--neurons",
            "30",
            "--seeds",
            "0",
            "--grid",
            "0.1:0.4:0.3",
            "--methods",
            "hebbian,pseudo-inverse",
            "--workers",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "c",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["capacity"]["pseudo-inverse"]["alpha_c_mean"] == 0.4
    assert out["capacity"]["hebbian"]["alpha_c_mean"] == 0.1
    assert (tmp_path / "c" / "capacity.png").exists() and (tmp_path / "c" / "summary.json").exists()
