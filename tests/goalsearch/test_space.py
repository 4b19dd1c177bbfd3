"""GoalSpace: parameter names and order, fixed H_res, replay of parameters by FixedTrial."""

from __future__ import annotations

import optuna
import pytest

from infomorphic.goals import H_RES, Goal, paper_order
from infomorphic.goalsearch.space import GoalSpace


def test_build_all_trivariate_params_in_paper_order() -> None:
    space = GoalSpace.build("FCL")
    assert space.params == (*paper_order("FCL"), H_RES)
    assert len(space.params) == 19


def test_build_fix_hres_leaves_18_and_zero_hres() -> None:
    space = GoalSpace.build("FCL", fix_hres=True)
    assert len(space.params) == 18 and H_RES not in space.params
    goal = space.goal({n: 0.5 for n in space.params})
    assert goal.gamma_res == 0.0 and goal.to_vector()[:18] == [0.5] * 18


def test_build_subset_canonicalises_and_keeps_base() -> None:
    base = Goal.preset("trivariate-mnist-tpe")
    space = GoalSpace.build("FCL", ["{C}{F}", "{FL}{FC}"], base=base)
    assert space.params == ("{F}{C}", "{FC}{FL}")
    goal = space.goal({"{F}{C}": -0.25, "{FC}{FL}": 0.75})
    expected = base.to_vector()
    expected[1], expected[11] = -0.25, 0.75
    assert goal.to_vector() == expected


@pytest.mark.parametrize("atoms, match", [(["{F}{X}"], "not a source"), (["H_res"], "empty")])
def test_build_rejects_bad_spaces(atoms: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        GoalSpace.build("FCL", atoms, fix_hres=True)


def test_suggest_fixed_trial_replays_the_goal() -> None:
    space = GoalSpace.build("FCL")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    goal = space.suggest(trial)
    study.tell(trial, 0.0)
    replay = space.suggest(optuna.trial.FixedTrial(study.trials[0].params))
    assert replay.to_vector() == goal.to_vector()
    assert all(-1.0 <= v <= 1.0 for v in goal.to_vector())
    assert Goal.parse(goal.to_expression()).to_vector() == goal.to_vector()


def test_to_dict_roundtrip_bivariate() -> None:
    space = GoalSpace.build("FC", ["{F}{C}", "{FC}"], base=Goal.preset("readout"), low=-0.5, high=0.5)
    again = GoalSpace.from_dict(space.to_dict())
    assert again == space
    assert again.goal({"{F}{C}": 0.1, "{FC}": 0.2}).to_vector() == [-0.2, 0.1, 0.1, 0.2, 0.0]
