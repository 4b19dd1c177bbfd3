"""`infomorphic train`: a tiny run end to end, resume, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def test_the_summary_names_a_misread_readout(tmp_path: Path, monkeypatch: Any) -> None:
    """When the readout's inversion from the training labels gives another test accuracy than the
    papers' rule (by a point or more), the summary says so in one line per model; else nothing."""
    import infomorphic.train as train

    summary = {
        "run_dir": str(tmp_path / "r"),
        "test_acc": 0.012,
        "val_acc": 0.011,
        "test_acc_class_inversion": 0.205,
        "baselines": {"backprop": {"test_acc": 0.2, "val_acc": 0.2, "test_acc_class_inversion": 0.2}},
    }
    monkeypatch.setattr(train, "fit", lambda *args, **kwargs: summary)
    result = runner.invoke(app, ["train", *TINY, "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    told = [line for line in result.stdout.splitlines() if "found from the training labels" in line]
    assert len(told) == 1 and told[0].startswith("infomorphic: test 20.50% with the readout's inverted")
