"""experiments/goal_path.py: goals on the line between two goals, each trained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from experiment_scripts import ROOT, load_experiment

from infomorphic.config import TrainConfig
from infomorphic.goals import Goal

goal_path = load_experiment("goal_path", "goal_path_script")
SCRIPT = ROOT / "experiments" / "goal_path.py"
TINY = dict(
    network="trivariate", setup=1, hidden=4, dataset="digits", epochs=2, batch_size=128, seed=0,
    train_eval_size=100,
)  # fmt: skip


def test_the_path_runs_from_start_to_end_in_even_steps() -> None:
    start, end = Goal.preset("trivariate-naive"), Goal.preset("trivariate-mnist-cmaes")
    goals = goal_path.path_goals(start, end, 5)
    assert [alpha for alpha, _ in goals] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert goals[0][1].to_vector() == start.to_vector()
    assert goals[-1][1].to_vector() == end.to_vector()
    middle = goals[2][1].to_vector()
    assert middle == pytest.approx(
        [(a + b) / 2 for a, b in zip(start.to_vector(), end.to_vector())], abs=1e-12
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_each_point_trains_its_goal_and_the_ends_are_the_goals_themselves(tmp_path: Path) -> None:
    """The two ends on a tiny network: the run at alpha 0 is the start goal trained by
    ``infomorphic train`` with the same config (the same validation accuracy to the bit), every
    point reports its final and per-epoch figures, and a second call reuses the runs."""
    config = tmp_path / "tiny.toml"
    config.write_text(TrainConfig(**TINY).to_toml())  # type: ignore[arg-type]
    out = tmp_path / "path"
    args = ["--start", "trivariate-naive", "--end", "trivariate-mnist-cmaes", "--points", "2"]
    args += ["--epochs", "2"]
    args += ["--eval-every", "1", "--config", str(config), "--out", str(out), "--workers", "2"]
    done = _run(*args, "--figure", str(tmp_path / "path.png"))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    rows, whole = lines[:2], lines[2]
    assert [r["alpha"] for r in rows] == [0.0, 1.0]
    assert rows[0]["goal"] == "{F}{C}" and whole["start"] == "{F}{C}"
    assert all(set(r["val_curve"]) == {"1", "2"} and r["val"] == r["val_curve"]["2"] for r in rows)
    assert (tmp_path / "path.png").stat().st_size > 0

    direct = tmp_path / "direct"
    cmd = [sys.executable, "-m", "infomorphic", "train", "--config", str(config), "--goal"]
    cmd += ["trivariate-naive", "--baselines", "none", "--out-dir", str(direct), "--name", "naive"]
    cmd += ["--set", "eval_every=1", "--no-progress", "--json"]
    trained = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads((direct / "naive" / "summary.json").read_text())
    assert rows[0]["val"] == summary["val_acc"] and rows[0]["test"] == summary["test_acc"]

    again = _run(*args, "--summarise")
    assert again.returncode == 0, again.stderr
    assert [json.loads(line) for line in again.stdout.splitlines()][:2] == rows


def test_a_goal_that_does_not_parse_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "path"
    done = _run("--start", "{F}{Q}", "--end", "trivariate-naive", "--out", str(out), "--epochs", "1")
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown atom '{F}{Q}'") and "Traceback" not in done.stderr
    assert not out.exists()
