"""The GP sampler, ``search export`` and ``search --warm-start``: trials exported from one study
inform a new one, checked against its settings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from tiny_configs import tiny_config, tiny_search_args

from infomorphic.goalsearch import search as gs
from infomorphic.goalsearch.search import SearchSettings, run_search, search_status
from infomorphic.goalsearch.space import GoalSpace
from infomorphic.goalsearch.warmstart import WARM_START_KEY, export_trials, read_warm_start

TWO = GoalSpace.build("FCL", ["{F}{C}", "{F}{L}"])
TINY = [*tiny_search_args(epochs=1), "--atoms", "{F}{C},{F}{L}", "--no-progress"]
"""``infomorphic search`` options of a one-epoch search over TWO's gammas."""


def _settings(**changes: object) -> SearchSettings:
    base = dict(config=tiny_config(), space=TWO, sampler="gp", seed=0, startup_trials=2, train_subset=300)
    return SearchSettings(**{**base, **changes})  # type: ignore[arg-type]


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _record(fc: float, fl: float, value: float = 0.5, **attrs: object) -> dict:
    return {
        "number": 0,
        "state": "COMPLETE",
        "value": value,
        "params": {"{F}{C}": fc, "{F}{L}": fl},
        "user_attrs": attrs,
    }


def test_exported_trials_warm_start_a_gp_search(tmp_path: Path, digits_small) -> None:
    """A search's trials, exported as JSON lines, become the first trials of a new GP search:
    same gammas, values, test accuracies and goals; its own compute leaves them out."""
    first, _, _ = run_search(_settings(sampler="random"), tmp_path / "a", n_trials=3, data=digits_small)
    records = export_trials(f"sqlite:///{tmp_path / 'a' / 'study.db'}", "goal-search")
    assert [r["number"] for r in records] == [0, 1, 2] and all(r["state"] == "COMPLETE" for r in records)
    assert [r["value"] for r in records] == [t.value for t in first.trials]
    file = _write(tmp_path / "a.jsonl", records)

    settings = _settings()
    added = read_warm_start([file], settings)
    study, _, _ = run_search(settings, tmp_path / "b", n_trials=4, data=digits_small, warm_start=added)
    trials = study.trials
    assert len(trials) == 4
    for old, new in zip(first.trials, trials[:3]):
        assert new.params == old.params and new.value == old.value
        assert new.user_attrs["test_acc"] == old.user_attrs["test_acc"]
        assert new.user_attrs["goal"] == old.user_attrs["goal"]
        assert new.user_attrs[WARM_START_KEY] == f"{file}:{old.number + 1}"
        assert new.user_attrs["warm_start_cpu_seconds"] == old.user_attrs["cpu_seconds"]
        assert "cpu_seconds" not in new.user_attrs
    assert WARM_START_KEY not in trials[3].user_attrs and trials[3].params not in [
        t.params for t in trials[:3]
    ]
    status = search_status(f"sqlite:///{tmp_path / 'b' / 'study.db'}", "goal-search")
    assert status["warm_start_trials"] == 3 and status["complete"] == 4
    assert status["cpu_hours"] == pytest.approx(trials[3].user_attrs["cpu_seconds"] / 3600)
    assert status["epochs_trained"] == trials[3].user_attrs["epochs"]


def test_gp_sampler_proposes_near_the_optimum_of_its_warm_start_trials(tmp_path: Path) -> None:
    """With 40 warm-start trials of a smooth objective (peak at {F}{C} = 0.6, {F}{L} = -0.4), the
    GP's next proposals lie near the peak (a random proposal: about 0.75 away on average), and
    with the same seed it proposes the same goals."""
    settings = _settings(startup_trials=10)
    peak = np.array([0.6, -0.4])
    points = np.random.default_rng(0).uniform(-1, 1, size=(40, 2))
    records = [_record(float(a), float(b), float(-np.sum((np.array([a, b]) - peak) ** 2))) for a, b in points]
    file = _write(tmp_path / "w.jsonl", records)

    def objective(trial: optuna.Trial) -> float:
        return -sum((trial.suggest_float(n, -1, 1) - p) ** 2 for n, p in zip(TWO.params, peak))

    def proposals() -> list[dict[str, float]]:
        study = optuna.create_study(direction="maximize", sampler=gs.TrialSeededSampler(settings))
        study.add_trials(read_warm_start([file], settings))
        study.optimize(objective, n_trials=3)
        return [t.params for t in study.trials[40:]]

    first = proposals()
    assert first == proposals()
    distances = [math.dist([p[n] for n in TWO.params], peak) for p in first]
    assert max(distances) < 0.15, distances


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (["{not json"], r"x\.jsonl:1: not a JSON object"),
        (["[1, 2]"], r"x\.jsonl:1: expected a JSON object"),
        ([json.dumps(_record(0.1, 0.2)), json.dumps({"value": 0.5})], r"x\.jsonl:2: no 'params'"),
        ([json.dumps({**_record(0.1, 0.2), "value": None})], "'value' must be a finite number"),
        ([json.dumps({**_record(0.1, 0.2), "value": "NaN"})], "'value' must be a finite number"),
        ([json.dumps({**_record(0.1, 0.2), "params": {"{F}{C}": 0.1}})], r"missing \{F\}\{L\}"),
        (
            [json.dumps({**_record(0.1, 0.2), "params": {"{F}{C}": 0.1, "{F}{L}": 0, "{F}": 1}})],
            "not searched here",
        ),
        ([json.dumps(_record(1.5, 0.2))], r"\{F\}\{C\} = 1.5 is not a number in \[-1, 1\]"),
        ([json.dumps(_record(0.1, 0.2, epochs=50))], "trained for 50 epochs, this search trains 2"),
        (
            [json.dumps(_record(0.1, 0.2, goal="0.1{F}{C} + 0.2{F}{L} + 0.3{F}"))],
            "other fixed gammas|differs",
        ),
        (
            [json.dumps(_record(0.1, 0.2, val_acc_per_seed={"0": 0.5, "1": 0.6}))],
            "mean over seeds 0, 1, this",
        ),
        ([json.dumps({**_record(0.1, 0.2), "state": "PRUNED"})], "holds no complete trial"),
        ([""], "holds no complete trial"),
    ],
)
def test_warm_start_files_are_checked_line_by_line(tmp_path: Path, lines: list[str], match: str) -> None:
    file = tmp_path / "x.jsonl"
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        read_warm_start([file], _settings())


def test_a_matching_goal_and_the_same_epochs_are_accepted(tmp_path: Path) -> None:
    record = _record(0.1, -0.2, 0.7, epochs=2, goal="0.1{F}{C} - 0.2{F}{L}", cpu_seconds=3.5, test_acc=0.6)
    pruned = {**_record(0.3, 0.3), "state": "PRUNED"}
    (trial,) = read_warm_start([_write(tmp_path / "ok.jsonl", [pruned, record])], _settings())
    assert trial.params == {"{F}{C}": 0.1, "{F}{L}": -0.2} and trial.value == 0.7
    assert trial.user_attrs == {
        "epochs": 2,
        "test_acc": 0.6,
        "warm_start_cpu_seconds": 3.5,
        "goal": _settings().space.goal(trial.params).to_expression(),
        WARM_START_KEY: f"{tmp_path / 'ok.jsonl'}:2",
    }


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the warm-start file"):
        read_warm_start([tmp_path / "nope.jsonl"], _settings())


@pytest.mark.parametrize(
    ("sampler", "resume", "n_trials", "match"),
    [
        ("cmaes", False, 5, "does not learn from added trials.*--cma-x0"),
        ("random", False, 5, "the random sampler does not learn"),
        ("gp", True, 5, "new study only"),
        ("tpe", False, 1, "alone reach the target of 1"),
    ],
)
def test_warm_start_is_refused_where_it_cannot_work(
    tmp_path: Path, sampler: str, resume: bool, n_trials: int, match: str
) -> None:
    settings = _settings(sampler=sampler)
    added = read_warm_start([_write(tmp_path / "w.jsonl", [_record(0.1, 0.2)])], _settings())
    with pytest.raises(ValueError, match=match):
        run_search(
            None if resume else settings, tmp_path / "s", n_trials=n_trials, resume=resume, warm_start=added
        )
    assert not (tmp_path / "s").exists()  # nothing written


def test_export_of_a_missing_study_names_the_ones_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    optuna.create_study(storage=url, study_name="other")
    with pytest.raises(ValueError, match="no study 'goal-search'.*studies there: other"):
        export_trials(url, "goal-search")
    with pytest.raises(ValueError, match="no study database"):
        export_trials(f"sqlite:///{tmp_path / 'none.db'}", "goal-search")


def test_cli_exports_a_search_and_warm_starts_a_gp_search_from_it(tmp_path: Path) -> None:
    """``search export`` prints one JSON line per trial; ``search --sampler gp --warm-start``
    starts from them, and ``search status`` says how many came from the file; bad uses are one
    line with exit code 2 and write nothing."""
    from typer.testing import CliRunner

    from infomorphic.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["search", *TINY, "--sampler", "random", "--trials", "2", "--out", str(tmp_path / "a")]
    )
    assert result.exit_code == 0, result.output
    exported = runner.invoke(app, ["search", "export", "--out", str(tmp_path / "a")])
    assert exported.exit_code == 0, exported.output
    lines = exported.stdout.splitlines()
    assert [json.loads(line)["number"] for line in lines] == [0, 1]
    file = _write(tmp_path / "a.jsonl", [json.loads(line) for line in lines])

    args = ["search", *TINY, "--sampler", "gp", "--warm-start", str(file), "--out", str(tmp_path / "b")]
    result = runner.invoke(app, [*args, "--trials", "3", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["counts"] == {"COMPLETE": 3}
    status = runner.invoke(app, ["search", "status", "--out", str(tmp_path / "b")])
    assert "(3 in all, 2 of them from --warm-start)" in status.stdout

    for bad, message in [
        ([*args[:-1], str(tmp_path / "c"), "--trials", "2"], "alone reach the target of 2"),
        ([*args[:-1], str(tmp_path / "c"), "--epochs", "2", "--trials", "5"], "trained for 1 epochs"),
        (
            ["search", "export", "--out", str(tmp_path / "a"), "--json"],
            "export only reads the study; drop --json",
        ),
        (["search", "exprot", "--out", str(tmp_path / "a")], "no argument but status or export"),
        (["search", "--out", str(tmp_path / "b"), "--resume", "--warm-start", str(file)], "new study only"),
    ]:
        result = runner.invoke(app, bad)
        assert result.exit_code == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, (
            bad,
            result.output,
        )
    assert not (tmp_path / "c").exists()


def test_a_search_killed_while_it_receives_its_warm_start_trials_starts_again(tmp_path: Path) -> None:
    """The trials go in one by one: the same command run meanwhile is refused (the first one is
    alive); after a ``kill -9`` it starts the study again from nothing, with every warm-start
    trial once, and ``--resume`` says to run it without."""
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(1)
    records = [
        _record(*map(float, rng.uniform(-1, 1, 2)), value=float(v), epochs=1) for v in rng.uniform(0, 1, 1500)
    ]
    file = _write(tmp_path / "many.jsonl", records)
    out = tmp_path / "s"
    args = [sys.executable, "-m", "infomorphic", "search", *TINY]
    args += ["--sampler", "tpe", "--warm-start", str(file), "--out", str(out)]
    proc = subprocess.Popen([*args, "--trials", "1501"], stderr=subprocess.PIPE)

    def added() -> int:
        try:
            with sqlite3.connect(out / "study.db", timeout=30) as db:
                return int(db.execute("select count(*) from trials").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0

    deadline = time.monotonic() + 300
    while added() < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    # the same command again while the first one still adds its trials: refused, nothing deleted
    second = subprocess.run([*args, "--trials", "1501"], capture_output=True, text=True)
    assert second.returncode == 2 and "still receiving its warm-start trials" in second.stderr, second.stderr
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 20 <= added() < 1500  # stopped part-way

    resumed = subprocess.run(
        [sys.executable, "-m", "infomorphic", "search", "--out", str(out), "--resume"],
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 2 and "without --resume to start it again" in resumed.stderr, resumed.stderr
    again = subprocess.run([*args, "--trials", "1501"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "starting it again" in again.stderr
    status = search_status(f"sqlite:///{out / 'study.db'}", "goal-search")
    assert status["warm_start_trials"] == 1500 and status["complete"] == 1501
