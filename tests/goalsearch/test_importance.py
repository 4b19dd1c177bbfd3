"""Parameter importance (fANOVA, MDI) of a study whose objective depends on one gamma only."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from infomorphic.goalsearch.importance import param_importances, write_importances
from infomorphic.goalsearch.space import GoalSpace


@pytest.fixture(scope="module")
def study():
    space = GoalSpace.build("FCL", ["{F}{C}", "{F}{L}", "{FCL}"])
    s = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    s.optimize(lambda t: space.suggest(t).weight("{F}{L}") ** 2, n_trials=40)
    return s


@pytest.mark.parametrize("evaluator", ["fanova", "mdi"])
def test_param_importances_find_the_one_that_matters(study, evaluator: str) -> None:
    values = param_importances(study, evaluator, n_trees=16)
    assert set(values) == {"{F}{C}", "{F}{L}", "{FCL}"}
    assert list(values)[0] == "{F}{L}" and values["{F}{L}"] > 0.8
    assert sum(values.values()) == pytest.approx(1.0)


def test_write_importances_json_and_png(study, tmp_path: Path) -> None:
    record = write_importances(study, tmp_path)
    assert record["completed_trials"] == 40
    assert (tmp_path / "importance.json").exists()
    assert (tmp_path / "importance.png").read_bytes()[:4] == b"\x89PNG"


def test_param_importances_need_two_trials() -> None:
    s = optuna.create_study()
    s.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with pytest.raises(ValueError, match="at least 2 completed"):
        param_importances(s)
    with pytest.raises(ValueError, match="evaluator"):
        param_importances(s, "shap")
