"""The GP sampler's trust region (``search --sampler gp --trust-region R``): its rules, replayed
from the stored trials, and the box its proposals stay in."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import optuna
import pytest
from test_warmstart import TINY, TWO, _record, _settings, _write
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.goalsearch import search as gs
from infomorphic.goalsearch.trust import RESTART_FACTOR, SUCCESS_STREAK, TrialPoint, trust_region
from infomorphic.goalsearch.warmstart import read_warm_start


def _own(values: list[float], start: int = 0) -> list[TrialPoint]:
    return [TrialPoint(start + i, v, {"g": float(start + i)}) for i, v in enumerate(values)]


def test_no_complete_trial_no_region() -> None:
    assert trust_region([], 0.2, width=2, failure_streak=4) is None


def test_the_centre_is_the_best_trial_and_warm_trials_only_set_the_bar() -> None:
    """Warm-start trials are replayed first whatever their numbers: the first own trial that
    beats the best of them is a success (one, not a streak of the warm ones)."""
    warm = [TrialPoint(n, v, {"g": -float(n)}, warm=True) for n, v in [(5, 0.7), (6, 0.9), (7, 0.8)]]
    region = trust_region(warm, 0.2, width=2, failure_streak=4)
    assert region is not None and (region.center_trial, region.center, region.radius) == (6, {"g": -6.0}, 0.2)
    assert (region.successes, region.failures) == (0, 0)
    region = trust_region([*_own([0.85, 0.95]), *warm], 0.2, width=2, failure_streak=4)
    assert region is not None and region.center_trial == 1 and region.center == {"g": 1.0}
    assert (region.successes, region.failures) == (1, 0)  # the success ended the failure streak


def test_successes_double_the_radius_up_to_the_range() -> None:
    rising = [0.1 * i for i in range(1 + SUCCESS_STREAK)]  # the first is the bar, then 3 successes
    region = trust_region(_own(rising), 0.3, width=2, failure_streak=4)
    assert region is not None and region.radius == pytest.approx(0.6) and region.successes == 0
    region = trust_region(
        _own([0.01 * i for i in range(1 + 4 * SUCCESS_STREAK)]), 0.3, width=2, failure_streak=4
    )
    assert region is not None and region.radius == 2  # 0.3 -> 0.6 -> 1.2 -> 2 (the cap) -> 2
    # a tie is a failure: the best stays the earlier trial
    region = trust_region(_own([0.5, 0.5, 0.5]), 0.3, width=2, failure_streak=4)
    assert region is not None and region.center_trial == 0 and region.failures == 2


def test_failures_halve_the_radius_and_it_restarts_when_too_small() -> None:
    streak = 5
    region = trust_region(_own([0.9] + [0.5] * streak), 0.4, width=2, failure_streak=streak)
    assert region is not None and region.radius == pytest.approx(0.2) and region.failures == 0
    halvings = int(np.log2(RESTART_FACTOR))  # 0.4 -> 0.2 -> 0.1 -> 0.05 = 0.4 / 8: still kept
    region = trust_region(_own([0.9] + [0.5] * (streak * halvings)), 0.4, width=2, failure_streak=streak)
    assert region is not None and region.radius == pytest.approx(0.4 / RESTART_FACTOR)
    region = trust_region(
        _own([0.9] + [0.5] * (streak * (halvings + 1))), 0.4, width=2, failure_streak=streak
    )
    assert region is not None and region.radius == pytest.approx(0.4)  # below 0.4 / 8: start again
    # a success in between resets the failure streak
    mixed = [0.9] + [0.5] * (streak - 1) + [0.95] + [0.5] * (streak - 1)
    region = trust_region(_own(mixed), 0.4, width=2, failure_streak=streak)
    assert region is not None and region.radius == pytest.approx(0.4) and region.failures == streak - 1


def test_the_region_depends_on_the_trials_not_on_their_order() -> None:
    """Every worker, and a resumed search, sees the stored trials in its own order."""
    rng = random.Random(0)
    trials = [TrialPoint(i, rng.random(), {"g": float(i)}, warm=i < 10) for i in range(60)]
    expected = trust_region(trials, 0.25, width=2, failure_streak=3)
    for _ in range(5):
        rng.shuffle(trials)
        assert trust_region(trials, 0.25, width=2, failure_streak=3) == expected


def test_bounds_are_cut_to_the_range() -> None:
    region = trust_region([TrialPoint(0, 0.5, {"a": 0.95, "b": -0.1})], 0.2, width=2, failure_streak=1)
    assert region is not None
    assert region.bounds("a", -1, 1) == (pytest.approx(0.75), 1)
    assert region.bounds("b", -1, 1) == (pytest.approx(-0.3), pytest.approx(0.1))


def test_gp_proposals_stay_in_the_box_around_the_best_warm_trial(tmp_path: Path) -> None:
    """40 warm-start trials of a smooth objective peaking at ({F}{C}, {F}{L}) = (0.6, -0.4), all
    of them at least 0.5 away from the peak in {F}{C}: without a trust region the GP jumps to the
    peak (test_warmstart), with one of 0.1 every proposal lies within 0.1 per gamma of the best
    trial before it, and moves toward the peak; each trial records its box."""
    settings = _settings(startup_trials=10, trust_region=0.1)
    peak = np.array([0.6, -0.4])
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(-1, 0.1, 40), rng.uniform(-1, 1, 40)])
    values = [float(-np.sum((p - peak) ** 2)) for p in points]
    file = _write(tmp_path / "w.jsonl", [_record(float(a), float(b), v) for (a, b), v in zip(points, values)])

    def objective(trial: optuna.Trial) -> float:
        return -sum((trial.suggest_float(n, -1, 1) - p) ** 2 for n, p in zip(TWO.params, peak))

    def proposals() -> list[optuna.trial.FrozenTrial]:
        study = optuna.create_study(direction="maximize", sampler=gs.TrialSeededSampler(settings))
        study.add_trials(read_warm_start([file], settings))
        study.optimize(objective, n_trials=6)
        return study.trials

    trials = proposals()
    assert [t.params for t in trials] == [t.params for t in proposals()]  # same seed, same goals
    radii = []
    for i in range(40, len(trials)):
        before = trials[:i]
        best = max(before, key=lambda t: (t.value, -t.number))
        box = trials[i].user_attrs["trust_region"]
        assert box["center_trial"] == best.number
        radii.append(box["radius"])
        for name in TWO.params:
            assert abs(trials[i].params[name] - best.params[name]) <= box["radius"] + 1e-9
    # each of the first three proposals beats the best before it: the box doubles after them
    assert [t.value > max(s.value for s in trials[:i]) for i, t in enumerate(trials[40:43], 40)] == [True] * 3
    assert radii[:4] == pytest.approx([0.1, 0.1, 0.1, 0.2])
    start = max(values)
    assert max(t.value for t in trials[40:]) > start  # it climbs within its box
    assert max(t.params["{F}{C}"] for t in trials[40:]) > max(points[:, 0])


def test_settings_refuse_a_trust_region_outside_gp_or_out_of_range() -> None:
    with pytest.raises(ValueError, match="trust_region .* for the gp sampler only.*tpe"):
        _settings(sampler="tpe", trust_region=0.2)
    for bad in (0.0, -0.1, 2.5):
        with pytest.raises(ValueError, match=r"half-width in \(0, 2\]"):
            _settings(trust_region=bad)
    stored = _settings(trust_region=0.2)
    assert gs.SearchSettings.from_dict(json.loads(json.dumps(stored.to_dict()))) == stored


def test_cli_trust_region_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["search", *TINY, "--trust-region", "0.2", "--out", str(tmp_path / "a")])
    assert result.exit_code != 0 and "gp sampler only" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "a").exists()
    result = runner.invoke(app, ["search", "--resume", "--out", str(tmp_path / "a"), "--trust-region", "0.2"])
    assert result.exit_code != 0 and "drop --trust-region" in result.output


def test_cli_gp_search_with_a_trust_region_records_each_box(tmp_path: Path) -> None:
    out = tmp_path / "s"
    args = ["search", *TINY, "--sampler", "gp", "--startup-trials", "2", "--trials", "4"]
    result = CliRunner().invoke(app, [*args, "--trust-region", "0.3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="goal-search", storage=f"sqlite:///{out / 'study.db'}")
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert all("trust_region" not in t.user_attrs for t in trials[:2])  # random start-up trials
    for i in (2, 3):
        best = max(trials[:i], key=lambda t: (t.value, -t.number))
        assert trials[i].user_attrs["trust_region"]["center_trial"] == best.number
        for name in TWO.params:
            assert abs(trials[i].params[name] - best.params[name]) <= 0.3 + 1e-9
    result = CliRunner().invoke(app, ["search", "status", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    region = json.loads(result.output)["trust_region"]
    best = max(trials, key=lambda t: (t.value, -t.number))
    assert region["center_trial"] == best.number and region["radius"] in (0.3, 0.15)
    result = CliRunner().invoke(app, ["search", "status", "--out", str(out)])
    assert (
        f"trust region of the next goal: +-{region['radius']:g} per gamma around trial {best.number}"
        in result.output
    )
