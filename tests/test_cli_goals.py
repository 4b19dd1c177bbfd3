"""CLI: infomorphic search / ablate / report on tiny digits runs, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.goals import Goal

runner = CliRunner()
TINY = [
    "--dataset",
    "digits",
    "--hidden",
    "3",
    "--epochs",
    "1",
    "--batch-size",
    "128",
    "--set",
    "train_eval_size=100",
    "--no-progress",
]


def _run(args: list[str]) -> tuple[int, str, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def test_search_then_resume_keeps_trials_and_writes_best_goal(tmp_path: Path) -> None:
    out = tmp_path / "s"
    code, stdout, _ = _run(
        ["search", *TINY, "--sampler", "random", "--trials", "2", "--out", str(out), "--json"]
    )
    assert code == 0, stdout
    first = json.loads(stdout)
    assert first["counts"] == {"COMPLETE": 2}
    code, stdout, _ = _run(
        ["search", "--out", str(out), "--resume", "--trials", "3", "--json", "--no-progress"]
    )
    assert code == 0, stdout
    second = json.loads(stdout)
    assert second["counts"] == {"COMPLETE": 3} and second["best_value"] >= first["best_value"]
    code, stdout, _ = _run(
        ["search", "--out", str(out), "--resume", "--json", "--no-progress"]
    )  # target kept
    assert code == 0 and json.loads(stdout)["counts"] == {"COMPLETE": 3}
    code, stdout, _ = _run(["ablate", "--study", str(out), "--json"])
    assert code == 0, stdout
    importance = json.loads(stdout)
    assert importance["completed_trials"] == 3 and len(importance["fanova"]) == len(importance["mdi"]) == 19
    assert (out / "importance.png").exists()
    text = (out / "best_goal.txt").read_text().strip()
    assert Goal.resolve(text, "FCL").to_vector() == Goal.parse(second["best_goal"]).to_vector()
    code, stdout, _ = _run(
        [
            "train",
            *TINY[:-1],
            "--baselines",
            "none",
            "--goal",
            text,
            "--out-dir",
            str(tmp_path),
            "--name",
            "best",
            "--json",
            "--no-progress",
        ]
    )
    assert code == 0, stdout
    config = json.loads((tmp_path / "best" / "config.json").read_text())["config"]
    assert Goal.parse(config["hidden_goal"]).to_vector() == Goal.parse(text).to_vector()


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "--sampler", "grid", "--out", "X"], "sampler must be one of"),
        (["search", "--atoms", "{F}{Q}", "--out", "X"], "'Q' is not a source"),
        (["search", "--trials", "0"], "--trials and --workers must be >= 1"),
        # was a KeyError traceback after the search folder was created
        (
            ["search", "--epochs", "0", "--out", "X"],
            "every trial trains its network: epochs must be >= 1, got 0",
        ),
        (["search", "--resume"], "--resume needs --out"),
        (["search", "--resume", "--out", "X", "--hidden", "5"], "drop hidden"),
        (["ablate", "--parts", "single,everything", "--out", "X"], "--parts takes"),
        (["ablate", "--goal", "{F}{C}{Z}", "--out", "X"], "unknown atom"),
        (["ablate", "--study", "."], "holds no search.json"),
        (["report", "does-not-exist"], "is not a directory"),
    ],
)
def test_bad_input_is_one_error_line_with_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = _run(args)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not (tmp_path / "X").exists()  # nothing written


def test_report_of_a_non_run_directory_fails_cleanly(tmp_path: Path) -> None:
    code, _, stderr = _run(["report", str(tmp_path)])
    assert code == 2 and "missing config.json" in stderr


ABLATE_TWO_ATOMS = ["ablate", *TINY, "--goal", "{F}{C} - 0.5*{F}{L}", "--parts", "single", "--seeds", "0"]
"""A single-ablation of a two-atom goal, one seed: three tiny runs."""


def test_ablate_single_on_a_two_atom_goal(tmp_path: Path) -> None:
    out = tmp_path / "a"
    code, stdout, _ = _run([*ABLATE_TWO_ATOMS, "--out", str(out), "--json"])
    assert code == 0, stdout
    record = json.loads(stdout)
    assert [r["label"] for r in record["rows"]] == ["{F}{C} = 0", "{F}{L} = 0"]
    assert record["rows"][0]["vector"][:3] == [0.0, 0.0, -0.5]
    assert (out / "ablation.csv").exists() and (out / "ablation_single.png").exists()


def test_ablate_stopped_says_how_to_go_on_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (here raised by the second training) ends ``ablate`` with exit 130 and one line naming
    its folder and how to continue (before: "Aborted!" and exit 1, and a folder named after the
    time, so that running the same command again started afresh); that command trains only the
    runs not yet finished."""
    import infomorphic.train as train

    real_fit, calls = train.fit, []

    def stopped_second(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs["run_dir"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", stopped_second)
    out = tmp_path / "a"
    args = [*ABLATE_TWO_ATOMS, "--out", str(out)]
    code, _, stderr = _run(args)
    assert code == 130 and stderr.strip() == (
        f"stopped; the finished runs are kept in {out}. Continue with the same command and --out {out}"
    )
    code, stdout, _ = _run([*args, "--json"])
    assert code == 0, stdout
    assert len(calls) == 2 + 2 and calls[2] == calls[1]  # the reference run was not trained again
    assert len(json.loads(stdout)["rows"]) == 2


def test_a_second_ablation_of_the_same_folder_is_refused_before_it_trains(tmp_path: Path) -> None:
    """Two ``ablate --out DIR`` at once: the second is refused at once, naming the holder and
    what to do (before: refused only at its first run, telling to "choose another --name", an
    option ablate does not have)."""
    from infomorphic.runs import claim_run_dir

    out = tmp_path / "a"
    with claim_run_dir(out, resume=False, markers=()):
        code, _, stderr = _run([*ABLATE_TWO_ATOMS, "--out", str(out)])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "is in use by another running process (host" in lines[0]
    assert lines[0].endswith("wait for it to finish or give another --out")
    assert not (out / "runs").exists()
