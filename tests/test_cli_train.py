"""`infomorphic train`: a tiny run end to end, resume, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from infomorphic.cli import app

runner = CliRunner()
TINY = [
    "--dataset",
    "digits",
    "--hidden",
    "8",
    "--batch-size",
    "128",
    "--threads",
    "1",
    "--baselines",
    "logistic",
]


def test_train_cli_writes_run_and_resumes(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["train", *TINY, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "r", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    run = tmp_path / "r"
    assert summary["epochs"] == 1 and 0 <= summary["test_acc"] <= 1
    assert summary["baselines"]["logistic"]["test_acc"] > 0.8
    res = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2", "--json"])
    assert res.exit_code == 0, res.output
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    # a config beside --resume was silently ignored: now refused, the run untouched
    (tmp_path / "other.toml").write_text("[train]\ndataset = 'digits'\nhidden = 16\nepochs = 3\n")
    res = runner.invoke(app, ["train", "--resume", str(run), "--config", str(tmp_path / "other.toml")])
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith(
        f"error: --resume continues the run as configured in {run / 'config.json'}; leave out --config"
    )
    assert (run / "metrics.jsonl").read_text().splitlines() == lines


def test_train_cli_human_output_names_the_baselines(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", *TINY, "--epochs", "1", "--out-dir", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "infomorphic" in res.stdout and "logistic regression" in res.stdout


def test_train_cli_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    cases = [
        ["train", "--network", "nonsense", "--out-dir", str(tmp_path)],
        ["train", "--set", "hidden_lr=-1", "--out-dir", str(tmp_path)],
        ["train", "--set", "no_such_key=1", "--out-dir", str(tmp_path)],
        ["train", "--goal", "2*{F}{X}", *TINY, "--epochs", "1", "--out-dir", str(tmp_path)],
        ["train", "--config", str(tmp_path / "missing.toml")],
        ["train", "--resume", str(tmp_path / "nowhere")],
    ]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.startswith("error: "), (args, res.stderr)
        assert "Traceback" not in res.output


def test_train_cli_every_network_runs_with_its_default_goal(tmp_path: Path) -> None:
    for network in ("single", "bivariate-context", "bivariate-lateral", "random-hidden", "backprop"):
        res = runner.invoke(
            app,
            [
                "train",
                *TINY,
                "--network",
                network,
                "--epochs",
                "1",
                "--baselines",
                "none",
                "--out-dir",
                str(tmp_path),
                "--name",
                network,
                "--json",
            ],
        )
        assert res.exit_code == 0, (network, res.output)


def test_train_cli_bad_goal_writes_nothing(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "train",
            *TINY,
            "--network",
            "bivariate-context",
            "--goal",
            "trivariate-naive",
            "--epochs",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "bad",
        ],
    )
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert not (tmp_path / "bad").exists()
