"""Memory-goal search (issue 13, part 3): the capacity proxy and its search on a tiny memory.

- The proxy of a goal (bisection of the grid) equals the capacity harness's alpha_c
  (``sweep`` + ``capacity_from_points``) on the same grid and seed, probe for probe; a goal that
  stores nothing gets 0.0 after one training.
- The objective replays through ``FixedTrial`` and stores what it tried.
- ``infomorphic search --task memory``: the study remembers its task (stored settings, so
  ``--resume`` and ``search status`` need nothing else); resume keeps the finished trials;
  status shows the task and the best capacity proxy; bad options are one-line errors.
- Pruning: a pruned trial is certainly below the median of the completed trials that reached
  its step (a synthetic capacity, no training).

The kill -9 and resume of a memory-goal search: test_memory_search_crash.py; on PostgreSQL:
test_postgres.py (slow).
"""

from __future__ import annotations

import gc
import json
import statistics
from pathlib import Path
from typing import Any

import optuna
import pytest
from tiny_memory import LOADS, tiny_memory, tiny_memory_args
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.goals import Goal
from infomorphic.goalsearch import search as gs
from infomorphic.goalsearch.memory_search import (
    MemorySearchSettings,
    capacity_proxy,
    make_memory_objective,
    memory_space,
)
from infomorphic.tasks import capacity
from infomorphic.tasks.capacity import CapacityConfig, capacity_from_points, sweep
from infomorphic.tasks.memory import memory_goal

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize"),
]


# ------------------------------------------------------------------------ the proxy
@pytest.mark.parametrize("goal, expected", [("{T}{R}", 1.2), ("0.5*{T}{R} + 0.5*{T}", 1.3)])
def test_the_proxy_is_the_capacity_harness_result_on_the_same_grid_and_seed(
    goal: str, expected: float
) -> None:
    memory = tiny_memory(goal=goal)
    points = sweep(
        CapacityConfig(memory=memory, alphas=LOADS, seeds=(0,), methods=("infomorphic",), workers=1)
    )
    harness = capacity_from_points(points, ("infomorphic",))["infomorphic"]["alpha_c_per_seed"][0]
    proxy = capacity_proxy(memory, LOADS, (0,))
    assert harness == proxy["value"] == expected
    assert proxy["capacity_per_seed"] == {"0": expected} and proxy["finished"]
    # the bisection: the lowest load, then the middle of the undecided loads, 5 of the 13 trainings
    assert [p["alpha"] for p in proxy["probes"]] == [0.3, 0.9, 1.2, 1.4, 1.3]
    by_alpha = {p["alpha"]: p for p in points}
    for probe in proxy["probes"]:  # each probe is the harness's grid point, bit for bit
        point = by_alpha[probe["alpha"]]
        assert (probe["score"], probe["epochs"], probe["n_patterns"]) == (
            point["scores"]["infomorphic"],
            point["epochs"],
            point["n_patterns"],
        )
        assert probe["recalled"] == (probe["alpha"] <= expected)
    assert proxy["epochs"] == sum(p["epochs"] for p in proxy["probes"])


def test_a_goal_that_stores_nothing_gets_zero_after_one_training() -> None:
    proxy = capacity_proxy(tiny_memory(goal="-{T}{R}"), LOADS, (0,))
    assert proxy["value"] == 0.0 and proxy["capacity_per_seed"] == {"0": 0.0}
    ((probe),) = proxy["probes"]
    assert probe["alpha"] == 0.3 and not probe["recalled"] and probe["score"] < 0.95


def test_two_seeds_bisect_each_and_the_value_is_their_mean() -> None:
    proxy = capacity_proxy(tiny_memory(goal="{T}{R}"), LOADS, (0, 1))
    per_seed = proxy["capacity_per_seed"]
    assert per_seed["0"] == 1.2 and proxy["value"] == pytest.approx((1.2 + per_seed["1"]) / 2)
    assert [p["seed"] for p in proxy["probes"][:2]] == [0, 1]  # step by step, seed after seed


# -------------------------------------------------------------------- the objective
def _settings(**changes: Any) -> MemorySearchSettings:
    base: dict[str, Any] = dict(
        memory=tiny_memory(), space=memory_space(), loads=LOADS, sampler="random", seed=0, startup_trials=2
    )
    return MemorySearchSettings(**{**base, **changes})


def test_the_objective_replays_a_goal_and_records_what_it_tried() -> None:
    settings = _settings()
    redundancy = memory_goal("{T}{R}")
    trial = optuna.trial.FixedTrial({name: redundancy.gamma.get(name, 0.0) for name in settings.space.params})
    assert make_memory_objective(settings)(trial) == 1.2
    attrs = trial.user_attrs
    assert Goal.resolve(attrs["goal"], "TR") == redundancy
    assert [p["alpha"] for p in attrs["probes"]] == [0.3, 0.9, 1.2, 1.4, 1.3]
    assert attrs["capacity_per_seed"] == {"0": 1.2} and attrs["epochs"] == sum(
        p["epochs"] for p in attrs["probes"]
    )
    assert attrs["cpu_seconds"] > 0
    assert gs.make_objective(settings, Path("unused"))(trial) == 1.2  # the search's entry point dispatches


def test_settings_round_trip_and_refuse_what_cannot_work() -> None:
    settings = _settings(seeds=(0, 3), threshold=0.9, prune=False, threads=2)
    data = json.loads(json.dumps(settings.to_dict()))
    assert data["task"] == "memory" and gs.settings_from_dict(data) == settings
    assert settings.memory_for(memory_goal("{T}")).goal == "{T}"
    for bad, match in [
        ({"loads": (1.0, 0.5)}, "increase"),
        ({"seeds": ()}, "seeds"),
        ({"threshold": 0.0}, "threshold"),
        ({"sampler": "grid"}, "sampler"),
        ({"space": gs.GoalSpace.build("FC")}, "sources T and R"),
    ]:
        with pytest.raises(ValueError, match=match):
            _settings(**bad)


# ---------------------------------------------------------------- the CLI, resume, status
def _invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_memory_search_cli_resume_and_status(tmp_path: Path) -> None:
    search = ["search", *tiny_memory_args(), "--sampler", "random", "--seed", "1", "--no-progress"]
    first = json.loads(_invoke(*search, "--trials", "3", "--out", str(tmp_path), "--json").stdout)
    assert first["task"] == "memory" and first["counts"] == {"COMPLETE": 3}
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study, stored = gs.load_search(url, "goal-search")
    assert isinstance(stored, MemorySearchSettings)
    assert stored.memory == tiny_memory()
    assert stored.loads == LOADS and stored.seeds == (0,) and stored.seed == 1
    assert json.loads(study.user_attrs[gs.SETTINGS_KEY])["task"] == "memory"
    before = [(t.number, t.params, t.value, t.user_attrs["probes"]) for t in study.get_trials()]
    for t in study.get_trials():
        assert (
            t.value
            == t.user_attrs["capacity_per_seed"]["0"]
            == t.intermediate_values[max(t.intermediate_values)]
        )

    again = json.loads(
        _invoke("search", "--resume", "--out", str(tmp_path), "--trials", "5", "--json").stdout
    )
    assert again["counts"] == {"COMPLETE": 5} and again["task"] == "memory"
    study, _ = gs.load_search(url, "goal-search")
    trials = study.get_trials()
    assert [(t.number, t.params, t.value, t.user_attrs["probes"]) for t in trials[:3]] == before
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 5

    status = json.loads(_invoke("search", "status", "--out", str(tmp_path), "--json").stdout)
    best = max(trials, key=lambda t: (t.value, -t.number))
    assert (status["task"], status["layer"], status["sampler"], status["pruner"]) == (
        "memory",
        "memory",
        "random",
        "median",
    )
    assert (status["complete"], status["best_value"], status["best_trial"]) == (5, best.value, best.number)
    assert status["best_goal"] == best.user_attrs["goal"]
    assert status["best_capacity_per_seed"] == {"0": best.value}
    assert status["epochs_trained"] == sum(t.user_attrs["epochs"] for t in trials)
    text = _invoke("search", "status", "--out", str(tmp_path)).stdout
    assert "(random sampler, median pruner, the memory's goal)" in text
    assert f"best capacity proxy alpha {best.value:g} (trial {best.number}; largest load recalled" in text
    record = json.loads((tmp_path / "best.json").read_text())
    assert (record["task"], record["value"], record["sources"]) == ("memory", best.value, "TR")
    assert (tmp_path / "best_goal.txt").read_text().strip() == best.user_attrs["goal"]


def _one_line_error(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args, what",
    [
        (["--task", "memory", "--epochs", "3"], "--task memory does not use --epochs"),
        (["--task", "memory", "--dataset", "digits", "--train-subset", "10"], "--dataset, --train-subset"),
        (["--task", "memory", "--set", "goal={T}"], "--set goal is not for a memory-goal search"),
        (["--task", "memory", "--set", "lr=fast"], "--set lr expects float"),
        (["--task", "memory", "--loads", "1.0,0.5"], "loads must increase"),
        (["--task", "memory", "--loads", "a:b"], "--loads expects start:stop:step"),
        (["--task", "memory", "--seeds", "x"], "--seeds expects comma-separated integers"),
        (["--task", "memory", "--atoms", "{F}{C}"], "{F}{C}"),
        (["--task", "nope"], "--task takes supervised or memory"),
        (["--loads", "0.5"], "--loads belong to --task memory"),
    ],
)
def test_bad_memory_search_options_are_one_line(tmp_path: Path, args: list[str], what: str) -> None:
    line = _one_line_error("search", *args, "--out", str(tmp_path / "s"), "--no-progress")
    assert what in line
    assert not (tmp_path / "s").exists()


def test_resume_and_status_take_the_task_from_the_study(tmp_path: Path) -> None:
    line = _one_line_error("search", "--resume", "--task", "memory", "--out", str(tmp_path))
    assert "stored settings (its task included); drop --task" in line
    line = _one_line_error("search", "status", "--task", "memory", "--out", str(tmp_path))
    assert "drop --task" in line


# ------------------------------------------------------------------------- pruning
def _synthetic_point(
    memory: Any, alpha: float, seed: int, methods: Any = (), cue_noise: Any = ()
) -> dict[str, Any]:
    """``run_point`` without training: the goal's ``{T}{R}`` gamma g recalls every load up to
    0.3 + 1.2 (g + 1) / 2 (monotone in the load, as the bisection assumes)."""
    gamma = memory_goal(memory.goal).gamma.get("{T}{R}", 0.0)
    return {
        "scores": {"infomorphic": 1.0 if alpha <= 0.3 + 0.6 * (gamma + 1) else 0.0},
        "n_patterns": round(alpha * memory.n_neurons),
        "epochs": 1,
        "stopped": "synthetic",
        "cpu_seconds": 0.0,
    }


def test_a_pruned_trial_is_below_the_median_of_the_completed_trials_at_its_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capacity, "run_point", _synthetic_point)
    monkeypatch.setattr(gc, "collect", lambda *args: 0)  # optuna's gc after every trial: 0.15 s here
    settings = _settings(space=memory_space(["{T}{R}"]), sampler="random", seed=4)
    study, _, _ = gs.run_search(settings, tmp_path, n_trials=20)
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert len(complete) + len(pruned) == 20 and len(pruned) >= 3
    for t in complete:  # the bisection finds the synthetic capacity on the grid
        truth = max((a for a in LOADS if a <= 0.3 + 0.6 * (t.params["{T}{R}"] + 1)), default=0.0)
        assert t.value == truth
    for t in pruned:
        step = t.user_attrs["pruned_at_step"]
        lower = t.intermediate_values[step]
        earlier = [c for c in complete if c.number < t.number and step in c.intermediate_values]
        assert len([c for c in complete if c.number < t.number]) >= 5  # MedianPruner's startup trials
        assert lower < statistics.median(c.intermediate_values[step] for c in earlier)
        # certainly worse than at least half of them: below every trial with a higher lower bound
        above = [c for c in earlier if c.intermediate_values[step] > lower]
        assert 2 * len(above) >= len(earlier)
        truth = max((a for a in LOADS if a <= 0.3 + 0.6 * (t.params["{T}{R}"] + 1)), default=0.0)
        assert all(truth < c.value for c in above)
