"""Goal search: best goal written and replayable, resume without loss or repetition, stale trials
retried, pruning, two worker processes on one SQLite study."""

from __future__ import annotations

import json
import time
from pathlib import Path

import optuna
import pytest
from tiny_configs import tiny_config

from infomorphic.goals import Goal
from infomorphic.goalsearch import search as gs
from infomorphic.goalsearch.search import SearchSettings, best_goal, counts, make_objective, run_search
from infomorphic.goalsearch.space import GoalSpace


def _settings(**changes: object) -> SearchSettings:
    base = dict(
        config=tiny_config(),
        space=GoalSpace.build("FCL"),
        sampler="tpe",
        seed=0,
        startup_trials=2,
        train_subset=300,
    )
    return SearchSettings(**{**base, **changes})  # type: ignore[arg-type]


def test_search_writes_best_goal_that_parses_and_replays(tmp_path: Path, digits_small) -> None:
    settings = _settings()
    study, stored, _ = run_search(settings, tmp_path, n_trials=3, data=digits_small)
    assert stored == settings
    assert counts(study) == {"COMPLETE": 3}
    goal, trial = best_goal(study, settings)
    assert trial.value == study.best_value
    text = (tmp_path / "best_goal.txt").read_text().strip()
    assert (
        Goal.parse(text).to_vector() == settings.space.goal(study.best_params).to_vector() == goal.to_vector()
    )
    assert Goal.resolve(text, "FCL") == goal  # what `infomorphic train --goal` does with it
    record = json.loads((tmp_path / "best.json").read_text())
    assert record["value"] == study.best_value and record["trial"] == trial.number
    # the same objective replays the best trial exactly (training is deterministic given the seed)
    objective = make_objective(settings, tmp_path / "replay", digits_small)
    assert objective(optuna.trial.FixedTrial(study.best_params)) == pytest.approx(study.best_value, abs=0)


def test_search_resume_keeps_finished_trials(tmp_path: Path, digits_small) -> None:
    settings = _settings(sampler="random")
    study, _, _ = run_search(settings, tmp_path, n_trials=2, data=digits_small)
    before = [(t.number, t.params, t.value) for t in study.trials]
    with pytest.raises(ValueError, match="already exists"):
        run_search(settings, tmp_path, n_trials=2, data=digits_small)
    study, stored, _ = run_search(None, tmp_path, n_trials=4, resume=True, data=digits_small)
    assert stored == settings
    after = [(t.number, t.params, t.value) for t in study.trials]
    assert after[:2] == before and len(after) == 4
    assert all(t.state.name == "COMPLETE" for t in study.trials)
    params = [tuple(p.values()) for _, p, _ in after]
    assert len(set(params)) == 4  # the resumed sampler does not repeat the first proposals
    assert json.loads((tmp_path / "search.json").read_text())["study_name"] == "goal-search"


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_search_retries_a_trial_whose_process_died(
    tmp_path: Path, digits_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gs, "HEARTBEAT_S", 1)
    monkeypatch.setattr(gs, "GRACE_S", 1)
    settings = _settings(sampler="random")
    run_search(settings, tmp_path, n_trials=1, data=digits_small)
    study = gs.create_study(None, f"sqlite:///{tmp_path / 'study.db'}", "goal-search", resume=True)
    dead = study.ask()  # a trial that started, beat once and whose process was then killed
    settings.space.suggest(dead)
    study._storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)
    study, _, _ = run_search(None, tmp_path, n_trials=3, resume=True, data=digits_small)
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 3
    failed = next(t for t in study.trials if t.state.name == "FAIL")
    retried = [t for t in study.trials if t.state.name == "COMPLETE" and t.params == failed.params]
    assert len(retried) == 1 and retried[0].number > failed.number


class _PruneNow(optuna.trial.FixedTrial):
    def should_prune(self) -> bool:
        return True


def test_objective_reports_each_epoch_and_stops_when_pruned(tmp_path: Path, digits_small) -> None:
    settings = _settings(config=tiny_config(epochs=3))
    objective = make_objective(settings, tmp_path, digits_small)
    trial = _PruneNow({n: 0.1 for n in settings.space.params})
    with pytest.raises(optuna.TrialPruned):
        objective(trial)
    run_dir = tmp_path / "trial-00000"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1  # stopped after epoch 1
    assert trial.user_attrs["pruned_at_epoch"] == 1
    assert Goal.parse(trial.user_attrs["goal"]).to_vector()[:18] == [0.1] * 18


def test_two_processes_share_one_sqlite_study(tmp_path: Path, digits_small) -> None:
    import subprocess
    import sys

    settings = _settings(sampler="random", prune=False)
    run_search(settings, tmp_path, n_trials=1, data=digits_small)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infomorphic.goalsearch.search",
            url,
            "goal-search",
            "1",
            str(tmp_path / "trials"),
            "4",
        ]
    )
    try:
        study = gs.load_search(url, "goal-search")[0]
        deadline = time.time() + 120
        while not any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False)):
            assert time.time() < deadline and worker.poll() is None, (
                "the worker process never started a trial"
            )
            time.sleep(0.2)
        study, _, _ = run_search(
            None, tmp_path, n_trials=4, resume=True, data=digits_small
        )  # joins the study
        assert worker.wait(timeout=120) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    done = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert 4 <= len(done) <= 5  # each process checks the count after its own trial
    assert len({t.user_attrs["pid"] for t in done}) == 2
    assert len({tuple(t.params.values()) for t in done}) == len(done)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"sampler": "grid"}, "sampler must be"),
        ({"config": tiny_config(network="single")}, "no hidden goal"),
        ({"train_subset": 1}, "train_subset"),
        ({"cma_sigma0": 0.5}, "for the cmaes sampler only"),  # the sampler is tpe
        ({"sampler": "cmaes", "cma_sigma0": 0.0}, "in \\(0, 2\\]"),
        ({"cma_x0": "{F}{C}"}, "cma_x0 is for the cmaes sampler only"),
        ({"sampler": "cmaes", "cma_x0": "{F}{X}"}, "cma_x0 is not a goal over FCL"),
        ({"seeds": (0, 1)}, "need --no-prune"),
        ({"seeds": (0, 0), "prune": False}, "seeds must differ"),
        ({"seeds": (-1,), "prune": False}, "integers >= 0"),
        ({"config": tiny_config(eval_every=2)}, "eval_every must be 1 in a search that prunes"),
    ],
)
def test_settings_reject_bad_values(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _settings(**changes)


def test_settings_roundtrip_through_json() -> None:
    settings = _settings(sampler="cmaes", space=GoalSpace.build("FCL", fix_hres=True))
    assert SearchSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_settings_with_seeds_roundtrip_and_older_studies_have_none() -> None:
    settings = _settings(seeds=[0, 2], prune=False)  # a JSON list becomes a tuple
    assert settings.seeds == (0, 2)
    stored = settings.to_dict()
    assert SearchSettings.from_dict(json.loads(json.dumps(stored))) == settings
    del stored["seeds"]
    assert SearchSettings.from_dict(stored).seeds == ()


def test_several_seeds_per_trial_average_their_runs(tmp_path: Path, digits_small) -> None:
    """``seeds=(0, 1)``: every trial trains its goal once per seed (each its own run directory and
    split), and its value is the mean of their final validation accuracies."""
    settings = _settings(seeds=(0, 1), prune=False, sampler="random")
    study, _, _ = run_search(settings, tmp_path, n_trials=1, data=digits_small)
    (trial,) = study.trials
    runs = {0: tmp_path / "trials" / "trial-00000", 1: tmp_path / "trials" / "trial-00000-seed1"}
    last = {s: json.loads((d / "metrics.jsonl").read_text().splitlines()[-1]) for s, d in runs.items()}
    assert {s: json.loads((d / "config.json").read_text())["config"]["seed"] for s, d in runs.items()} == {
        0: 0,
        1: 1,
    }
    assert trial.user_attrs["val_acc_per_seed"] == {str(s): m["val_acc"] for s, m in last.items()}
    assert trial.value == pytest.approx((last[0]["val_acc"] + last[1]["val_acc"]) / 2, abs=1e-12)
    assert trial.user_attrs["test_acc"] == pytest.approx((last[0]["test_acc"] + last[1]["test_acc"]) / 2)
    assert last[0]["val_acc"] != last[1]["val_acc"]  # two different runs
    assert sorted(trial.intermediate_values) == [1, 2]  # the first seed's epochs


def test_a_search_without_pruning_may_evaluate_only_the_last_epoch(tmp_path: Path, digits_small) -> None:
    """``eval_every`` equal to the epochs (allowed with ``prune=False``): each trial evaluates
    once, after its last epoch, and reports only that; the trials' goals and values are those of
    the same search evaluating every epoch (evaluation draws from its own generator)."""
    values = {}
    for every in (1, 3):
        settings = _settings(config=tiny_config(epochs=3, eval_every=every), prune=False, sampler="random")
        study, _, _ = run_search(settings, tmp_path / f"every{every}", n_trials=2, data=digits_small)
        values[every] = [(t.params, t.value) for t in study.trials]
        for t in study.trials:
            metrics = tmp_path / f"every{every}" / "trials" / f"trial-{t.number:05d}" / "metrics.jsonl"
            evaluated = [
                m["epoch"] for m in map(json.loads, metrics.read_text().splitlines()) if m["val_acc"]
            ]
            assert evaluated == ([1, 2, 3] if every == 1 else [3])
            assert sorted(t.intermediate_values) == evaluated
    assert values[3] == values[1]
    assert all(v is not None and v > 0.1 for _, v in values[1])


def test_settings_of_a_study_made_before_cma_sigma0_load() -> None:
    stored = _settings(sampler="cmaes", space=GoalSpace.build("FCL", fix_hres=True), cma_sigma0=0.6).to_dict()
    assert SearchSettings.from_dict(json.loads(json.dumps(stored))).cma_sigma0 == 0.6
    del stored["cma_sigma0"]
    assert SearchSettings.from_dict(stored).cma_sigma0 is None


def test_cma_sigma0_sets_how_far_cma_es_explores_around_its_start() -> None:
    """CMA-ES's first proposals spread around the all-zero goal by about sigma0 per gamma (optuna's
    own sigma0 is in units of the range scaled to [0, 1]: passed unconverted, a step of 0.05 gammas
    spread by 0.1, 0.6 by 1.2)."""
    import numpy as np

    def spread(sigma0: float | None) -> float:
        settings = _settings(
            sampler="cmaes", space=GoalSpace.build("FCL", fix_hres=True), startup_trials=1, cma_sigma0=sigma0
        )
        study = optuna.create_study(direction="maximize", sampler=gs.make_sampler(settings, 3))
        study.optimize(lambda t: -sum(v * v for v in settings.space.suggest(t).to_vector()), n_trials=9)
        return float(np.array([list(t.params.values()) for t in study.trials[1:]]).std(axis=0).mean())

    narrow, default, wide = spread(0.05), spread(None), spread(0.6)
    # sample standard deviations of 8 proposals, averaged over 18 gammas; 0.6 is clipped at +-1
    assert 0.035 < narrow < 0.065 and 0.22 < default < 0.42 and 0.4 < wide < 0.65, (narrow, default, wide)


def test_cma_x0_starts_cma_es_at_a_given_goal() -> None:
    """CMA-ES's proposals after its start centre on the searched gammas of ``cma_x0`` (clipped to
    the range), e.g. an earlier search's best goal to refine; stored with the study."""
    import numpy as np

    space = GoalSpace.build("FCL", fix_hres=True)
    settings = _settings(
        sampler="cmaes",
        space=space,
        startup_trials=1,
        cma_sigma0=0.05,
        cma_x0="1.7{F}{C} - 0.5{F}{L} + 0.3{F}",
    )
    start = settings.start_point()
    assert start is not None and start["{F}{C}"] == 1.0 and start["{F}{L}"] == -0.5 and start["{F}"] == 0.3
    assert sum(abs(v) for v in start.values()) == pytest.approx(1.8)  # every other searched gamma at 0
    study = optuna.create_study(direction="maximize", sampler=gs.make_sampler(settings, 3))
    study.optimize(lambda t: -sum(v * v for v in settings.space.suggest(t).to_vector()), n_trials=9)
    proposed = np.array([[t.params[n] for n in space.params] for t in study.trials[1:]])
    assert np.abs(proposed.mean(axis=0) - np.array([start[n] for n in space.params])).max() < 0.1
    stored = json.loads(json.dumps(settings.to_dict()))
    assert SearchSettings.from_dict(stored) == settings
    del stored["cma_x0"]  # a study made before the option
    assert SearchSettings.from_dict(stored).cma_x0 is None


def test_cmaes_sampler_is_seeded() -> None:
    settings = _settings(sampler="cmaes", space=GoalSpace.build("FCL", fix_hres=True), startup_trials=1)
    vectors = []
    for _ in range(2):
        study = optuna.create_study(direction="maximize", sampler=gs.make_sampler(settings, 5))
        study.optimize(lambda t: -sum(v * v for v in settings.space.suggest(t).to_vector()), n_trials=4)
        vectors.append([t.params for t in study.trials])
    assert vectors[0] == vectors[1]


def test_successive_halving_stops_trials_at_its_rungs_counted_in_epochs(tmp_path: Path, digits_small) -> None:
    """``pruner="halving"``: a trial is stopped only after min_epochs * eta**k epochs, exactly
    when its validation accuracy is below the best 1/eta of the trials that reached that epoch
    before it (asynchronous successive halving, re-derived here from the stored reports), and
    every trial records its epochs and CPU seconds."""
    settings = _settings(
        config=tiny_config(epochs=3), sampler="random", pruner="halving", min_epochs=1, reduction_factor=2
    )
    study, _, _ = run_search(settings, tmp_path, n_trials=8, data=digits_small)
    trials = sorted(study.trials, key=lambda t: t.number)
    rungs = (1, 2)  # min_epochs * eta**k below the 3 epochs of a trial
    pruned = 0
    for i, trial in enumerate(trials):
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))  # one report per epoch, step = epochs trained
        assert trial.user_attrs["epochs"] == steps[-1] and trial.user_attrs["cpu_seconds"] > 0
        for rung in rungs:
            if rung > steps[-1]:
                break
            mine = trial.intermediate_values[rung]
            others = [t.intermediate_values[rung] for t in trials[:i] if rung in t.intermediate_values]
            ranked = sorted([*others, mine], reverse=True)
            keep = ranked[max(0, len(ranked) // 2 - 1)]
            if mine < keep:
                assert trial.state.name == "PRUNED" and trial.user_attrs["pruned_at_epoch"] == rung
                pruned += 1
                break
        else:
            assert trial.state.name == "COMPLETE" and steps[-1] == 3
    assert 0 < pruned < len(trials)
    status = gs.search_status(f"sqlite:///{tmp_path / 'study.db'}", "goal-search")
    assert status["pruner"] == "halving"
    assert status["epochs_trained"] == sum(len(t.intermediate_values) for t in trials)
    assert status["cpu_hours"] == pytest.approx(sum(t.user_attrs["cpu_seconds"] for t in trials) / 3600)


def test_pruner_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="pruner must be one of median, halving, hyperband"):
        _settings(pruner="asha")
    with pytest.raises(ValueError, match=r"min_epochs \(2\) must be below the epochs of a trial \(2\)"):
        _settings(pruner="hyperband", min_epochs=2)
    with pytest.raises(ValueError, match="reduction_factor >= 2"):
        _settings(pruner="halving", reduction_factor=1)
    hb = gs._pruner(_settings(config=tiny_config(epochs=9), pruner="hyperband", min_epochs=1))
    assert isinstance(hb, optuna.pruners.HyperbandPruner)
    assert isinstance(gs._pruner(_settings(pruner="halving", prune=False)), optuna.pruners.NopPruner)


def test_the_target_is_stored_in_the_study_and_joining_processes_keep_it(
    tmp_path: Path, digits_small
) -> None:
    """A process joining from another directory without --trials takes the study's target (not
    a default of 100); a given target replaces it for every later process."""
    from typer.testing import CliRunner

    from infomorphic.cli import app

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study, _, _ = run_search(
        _settings(sampler="random"), tmp_path / "a", n_trials=2, storage=url, data=digits_small
    )
    assert gs.study_target(study) == 2
    study, _, _ = run_search(None, tmp_path / "b", n_trials=None, storage=url, resume=True, data=digits_small)
    assert sum(counts(study).values()) == 2
    run_search(None, tmp_path / "b", n_trials=3, storage=url, resume=True, data=digits_small)
    joined = CliRunner().invoke(
        app,
        ["search", "--resume", "--storage", url, "--study-name", "goal-search", "--out", str(tmp_path / "c")],
    )
    assert joined.exit_code == 0, joined.stderr
    study, _ = gs.load_search(url, "goal-search")
    assert sum(counts(study).values()) == 3 and gs.study_target(study) == 3
    assert gs.search_status(url, "goal-search")["target"] == 3


def test_a_database_error_during_trials_becomes_one_resumable_line() -> None:
    """What a search says when its server goes down mid-trial (the real server:
    test_postgres.py).  optuna wraps the driver's error in ``StorageInternalError``, and its own
    clean-up can then fail with an unrelated error raised while handling it (an
    ``UnboundLocalError`` in optuna's ``_run_trial``): the database error is found in the chain."""
    import sqlalchemy.exc as sa_exc
    from optuna.exceptions import StorageInternalError

    url = "postgresql+psycopg://me:secret@db.example:5432/studies"
    driver = sa_exc.OperationalError(
        "SELECT 1", {}, RuntimeError("server closed the connection unexpectedly")
    )

    def failing_trial() -> None:
        try:
            try:
                raise StorageInternalError("An exception is raised during the commit.") from driver
            finally:
                raise UnboundLocalError("cannot access local variable 'updated_state'")
        except UnboundLocalError:
            raise

    with pytest.raises(gs.StorageLost) as lost, gs._storage_errors(url, "--resume --out runs/s"):
        failing_trial()
    message = str(lost.value)
    assert "\n" not in message and "secret" not in message
    assert message.startswith("lost the study's storage postgresql+psycopg://me:***@db.example:5432/studies")
    assert "(server closed the connection unexpectedly)" in message
    assert message.endswith(
        "go on with infomorphic search --resume --out runs/s (the interrupted trial is run again)"
    )
    # opening a study (no trials running): the storage advice, no resume hint
    with pytest.raises(ValueError, match="check the URL, that the database server is reachable") as opened:
        with gs._storage_errors(url):
            failing_trial()
    assert not isinstance(opened.value, gs.StorageLost)
    # errors that are not the database's pass unchanged
    with pytest.raises(KeyError), gs._storage_errors(url, "--resume --out runs/s"):
        raise KeyError("x")
