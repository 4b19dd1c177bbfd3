"""experiments/search_compare.py: the best goals of a search trained again, beside the reference
goals; for the papers' networks and for a layer of a wired network (``search --layer NAME``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from experiment_scripts import load_experiment

from infomorphic.config import TrainConfig, load_config
from infomorphic.nn import stacked

compare = load_experiment("search_compare", "search_compare_script")
TINY = dict(dataset="digits", epochs=2, batch_size=128, baselines=(), threads=1, seed=0, train_eval_size=100)


def _search(tmp_path: Path, config: TrainConfig, name: str, *options: str) -> str:
    """A 2-trial random search of ``config`` into ``tmp_path/name``; its storage URL."""
    path = tmp_path / f"{name}.toml"
    path.write_text(config.to_toml())
    cmd = [sys.executable, "-m", "infomorphic", "search", "--config", str(path), "--trials", "2"]
    cmd += ["--sampler", "random", "--no-prune", "--study-name", name, "--out", str(tmp_path / name)]
    cmd += ["--no-progress", *options]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return f"sqlite:///{tmp_path / name / 'study.db'}"


def _compare(monkeypatch: pytest.MonkeyPatch, storage: str, out: Path, *studies: str) -> dict:
    argv = ["search_compare.py", "--storage", storage, "--studies", *studies, "--top", "1", "--seeds", "0"]
    monkeypatch.setattr("sys.argv", [*argv, "--no-importance", "--out", str(out), "--workers", "2"])
    compare.main()
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def searches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Two tiny searches: h2's goal in a wired two-layer network, and setup 1's hidden goal."""
    tmp = tmp_path_factory.mktemp("searches")
    wired = TrainConfig(network="custom", wiring=stacked([6, 5]).to_dict(), **TINY)  # type: ignore[arg-type]
    setup1 = TrainConfig(network="trivariate", setup=1, hidden=4, **TINY)  # type: ignore[arg-type]
    return tmp, _search(tmp, wired, "h2", "--layer", "h2"), _search(tmp, setup1, "s1")


def test_a_wired_layer_search_is_compared_in_its_own_network(
    searches: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search of h2's goal in a two-layer network: its best goal trained again in h2 (the rest
    of the network as searched) reproduces the trial's validation accuracy exactly, and the
    published and naive goals are trained in h2 beside it (the script refused wired networks)."""
    _, storage, _ = searches
    summary = _compare(monkeypatch, storage, tmp_path / "cmp", "h2")
    rows = {row["name"]: row for row in summary["goals"]}
    assert set(rows) == {"h2-top1", "published", "naive"}
    assert rows["h2-top1"]["reproduces_search"] is True
    assert all(row["test"]["n"] == 1 for row in rows.values())
    for name, row in rows.items():
        config = load_config(tmp_path / "cmp" / "configs" / f"{name}-seed0.toml")
        layers = {entry["name"]: entry for entry in config.wiring["layers"]}
        assert layers["h1"]["goal"] == "trivariate-mnist-tpe"  # untouched
        goal = layers["h2"]["goal"]
        expected = {"published": "0.33073*{F}{C}{L}", "naive": "{F}{C}"}.get(name, row["goal"])
        assert goal.startswith(expected) if name != "h2-top1" else goal == expected
        assert (config.seed, config.epochs, config.threads) == (0, 2, 1)
        assert config.train_eval_size == 100  # the search's training config, not the defaults
    assert "| h2-top1 |" in (tmp_path / "cmp" / "table.md").read_text()


def test_a_papers_network_search_reproduces_and_a_different_network_is_refused(
    searches: tuple[Path, str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    _, wired, storage = searches
    summary = _compare(monkeypatch, storage, tmp_path / "cmp", "s1")
    rows = {row["name"]: row for row in summary["goals"]}
    assert rows["s1-top1"]["reproduces_search"] is True
    assert set(rows) == {"s1-top1", "published", "naive"}
    # learning curves: every evaluated epoch of each goal's run, the last one its table entry
    curves = summary["curves"]
    assert set(curves) == set(rows)
    for name, curve in curves.items():
        metrics = [json.loads(line) for line in (tmp_path / "cmp" / f"{name}-seed0" / "metrics.jsonl").open()]
        assert curve["epochs"] == [m["epoch"] for m in metrics] == [1, 2]
        assert curve["test"]["median"] == curve["test"]["min"] == [m["test_acc"] for m in metrics]
        assert curve["val"]["max"] == [m["val_acc"] for m in metrics]
        assert curve["test"]["median"][-1] == rows[name]["test"]["median"]
    assert (tmp_path / "cmp" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = load_config(tmp_path / "cmp" / "configs" / "naive-seed0.toml")
    assert (config.network, config.setup, config.hidden, config.hidden_goal) == ("trivariate", 1, 4, "{F}{C}")
    # the two studies train different networks: not compared together
    db = tmp_path / "both.db"
    for name, url in (("s1", storage), ("h2", wired)):
        optuna.copy_study(from_study_name=name, from_storage=url, to_storage=f"sqlite:///{db}")
    with pytest.raises(SystemExit, match="trains another network than 's1' .*layer"):
        _compare(monkeypatch, f"sqlite:///{db}", tmp_path / "cmp2", "s1", "h2")


def test_a_trial_of_several_seeds_is_reproduced_by_its_first_seed() -> None:
    from types import SimpleNamespace

    one = SimpleNamespace(seeds=(), config=SimpleNamespace(seed=4))
    several = SimpleNamespace(seeds=(2, 5), config=SimpleNamespace(seed=0))
    row = {"search_val_acc": 0.91, "search_val_per_seed": None}
    assert compare.reproduction_target(row, one) == (4, 0.91)
    row = {"search_val_acc": 0.91, "search_val_per_seed": {"2": 0.90, "5": 0.92}}  # value = the mean
    assert compare.reproduction_target(row, several) == (2, 0.90)


@pytest.mark.parametrize("script", ["search_compare", "memory_goal_compare"])
def test_a_missing_database_or_study_is_one_line_and_writes_nothing(
    searches: tuple[Path, str, str], tmp_path: Path, script: str
) -> None:
    """Before: a traceback, an empty SQLite file created at the mistyped path, and (search_compare)
    an empty output folder."""
    _, _, s1 = searches
    missing = tmp_path / "typo.db"
    study_flag = "--studies" if script == "search_compare" else "--study"
    cases = [(f"sqlite:///{missing}", "s1", f"no study database {missing}"), (s1, "nope", "no study 'nope'")]
    for storage, name, says in cases:
        out = tmp_path / f"out-{name}"
        cmd = [sys.executable, str(Path(compare.__file__).with_name(f"{script}.py")), "--storage", storage]
        done = subprocess.run(
            [*cmd, study_flag, name, "--out", str(out)], capture_output=True, text=True, timeout=120
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        assert says in lines[0]
        assert not out.exists()
    assert not missing.exists()


def test_importance_of_a_missing_database_does_not_create_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infomorphic.cli import app

    missing = tmp_path / "typo.db"
    (tmp_path / "search").mkdir()
    result = CliRunner().invoke(
        app,
        [
            "ablate",
            "--study",
            str(tmp_path / "search"),
            "--storage",
            f"sqlite:///{missing}",
            "--study-name",
            "x",
        ],
    )
    assert result.exit_code == 2 and f"no study database {missing}" in result.stderr, result.stderr
    assert not missing.exists()
