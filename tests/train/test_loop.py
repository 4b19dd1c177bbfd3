"""Tests for infomorphic.train.loop: run directory, determinism, resume, baselines, learning.

All runs use the ``digits`` dataset (no download), small layers, batch 128 and one thread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_train import digits_config

from infomorphic.config import TrainConfig
from infomorphic.data import load_dataset
from infomorphic.goals import Goal
from infomorphic.train.loop import build_network, evaluate_network, fit, train_step

TIMING_KEYS = ("train_seconds", "eval_seconds")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_fraction=0.2, seed=0)


def _config(tmp_path: Path, **changes: Any) -> TrainConfig:
    return digits_config(tmp_path, **changes)


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [
        {k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines if line.strip()
    ]


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return {k: npz[k] for k in npz.files}


# ------------------------------------------------------------------ run directory
def test_smoke_fit_writes_run_directory(tmp_path: Path) -> None:
    config = _config(tmp_path, hidden=16, epochs=2, baselines=("logistic",))
    summary = fit(config, progress=False)  # loads digits itself and names the run directory
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == tmp_path
    assert run_dir.name.startswith("trivariate-s1-n16-digits-seed0-")
    for name in (
        "config.json",
        "metrics.jsonl",
        "atoms.npz",
        "checkpoint.pt",
        "summary.json",
        "baselines.json",
    ):
        assert (run_dir / name).is_file(), name
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes leave no temporary files

    record = json.loads((run_dir / "config.json").read_text())
    assert TrainConfig.from_dict(record["config"]) == config
    assert record["data"]["inputs"] == 64 and record["data"]["classes"] == 10
    assert record["data"]["train"] + record["data"]["val"] + record["data"]["test"] == 1797

    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    for m in metrics:
        for key in ("train_acc", "val_acc", "test_acc"):
            assert 0.0 <= m[key] <= 1.0
        for key in (
            "hidden_goal",
            "readout_goal",
            "train_seconds",
            "eval_seconds",
            "hidden_weight_change",
            "readout_weight_change",
        ):
            assert math.isfinite(m[key]), key
        assert len(m["hidden_atoms_mean"]) == 18 and len(m["readout_atoms_mean"]) == 4

    atoms = _npz(run_dir / "atoms.npz")
    assert atoms["hidden_atoms"].shape == (2, 16, 18)
    assert atoms["hidden_hres"].shape == (2, 16)
    assert atoms["hidden_names"].shape == (18,)
    assert list(atoms["hidden_names"]) == list(Goal.preset("trivariate-mnist-tpe").atom_names)
    assert atoms["readout_atoms"].shape == (2, 10, 4)
    assert atoms["readout_hres"].shape == (2, 10)
    assert atoms["readout_names"].shape == (4,)
    assert atoms["hidden_wdist"].shape == (2,)
    assert np.all(np.isfinite(atoms["hidden_atoms"]))
    # per neuron, the atoms and the residual entropy add up to H(Y) <= 1 bit
    total = atoms["hidden_atoms"].sum(-1) + atoms["hidden_hres"]
    assert np.all(total <= 1 + 1e-4) and np.all(total >= -1e-4)

    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 2
    assert set(ckpt["optimizers"]) == {"hidden", "readout"}
    assert ckpt["config"] == config.to_dict()

    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["epochs"] == 2
    assert saved["test_acc"] == metrics[-1]["test_acc"] == summary["test_acc"]
    assert saved["baselines"]["logistic"]["test_acc"] > 0.8  # logistic regression on digits: ~95 %
    assert set(saved["baselines"]) == {"logistic"}
    assert np.array(saved["confusion_test"]).shape == (10, 10)
    assert np.array(saved["confusion_test"]).sum() == record["data"]["test"]


def test_report_is_called_each_epoch_and_may_stop(tmp_path: Path, digits) -> None:
    seen: list[tuple[int, float]] = []
    fit(
        _config(tmp_path, epochs=2),
        run_dir=tmp_path / "a",
        progress=False,
        data=digits,
        report=lambda e, m: seen.append((e, m["val_acc"])),
    )
    assert [e for e, _ in seen] == [0, 1]

    class Prune(Exception):
        pass

    def stop(epoch: int, metrics: dict[str, Any]) -> None:
        raise Prune

    with pytest.raises(Prune):
        fit(_config(tmp_path, epochs=3), run_dir=tmp_path / "b", progress=False, data=digits, report=stop)
    assert len(_metrics(tmp_path / "b")) == 1


# ------------------------------------------------------------ determinism / resume
def test_seeded_runs_are_identical(tmp_path: Path, digits) -> None:
    config = _config(tmp_path, epochs=2)
    fit(config, run_dir=tmp_path / "a", progress=False, data=digits)
    fit(config, run_dir=tmp_path / "b", progress=False, data=digits)
    ma, mb = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert len(ma) == 2
    assert ma == mb  # accuracies, goals, mean atoms and weight changes, exactly
    na, nb = _npz(tmp_path / "a" / "atoms.npz"), _npz(tmp_path / "b" / "atoms.npz")
    assert na.keys() == nb.keys()
    for key in na:
        np.testing.assert_array_equal(na[key], nb[key])
    sa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    sb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # another seed gives another run
    fit(config.replace(seed=1), run_dir=tmp_path / "c", progress=False, data=digits)
    mc = _metrics(tmp_path / "c")
    assert [m["hidden_goal"] for m in mc] != [m["hidden_goal"] for m in ma]


def test_resume_equals_uninterrupted_run(tmp_path: Path, digits) -> None:
    three = _config(tmp_path, epochs=3)
    fit(three, run_dir=tmp_path / "full", progress=False, data=digits)
    two = three.replace(epochs=2)
    fit(two, run_dir=tmp_path / "resumed", progress=False, data=digits)
    assert len(_metrics(tmp_path / "resumed")) == 2
    summary = fit(three, run_dir=tmp_path / "resumed", resume=True, progress=False, data=digits)
    full, resumed = _metrics(tmp_path / "full"), _metrics(tmp_path / "resumed")
    assert [m["epoch"] for m in resumed] == [1, 2, 3]
    for a, b in zip(full, resumed):
        assert a == b, f"epoch {a['epoch']} differs after resuming"
    assert summary["epochs"] == 3 and summary["test_acc"] == full[-1]["test_acc"]
    na, nb = _npz(tmp_path / "full" / "atoms.npz"), _npz(tmp_path / "resumed" / "atoms.npz")
    assert na.keys() == nb.keys()
    assert na["hidden_atoms"].shape[0] == 3
    for key in na:
        np.testing.assert_array_equal(na[key], nb[key])
    sa = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    sb = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert sa["epoch"] == sb["epoch"] == 3
    assert all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])
    # the original config.json is kept
    record = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert record["config"]["epochs"] == 2


def test_eval_every_skips_evaluations_and_changes_nothing_else(tmp_path: Path, digits) -> None:
    """``eval_every = 3`` over 5 epochs evaluates epochs 3 and 5 (the last); the weights, atoms,
    goals and every evaluated epoch's accuracies are those of a run that evaluates every epoch,
    also when the run is stopped after a skipped evaluation and resumed."""
    every = _config(tmp_path, epochs=5, hidden=12)
    fit(every, run_dir=tmp_path / "every", progress=False, data=digits)

    class Stop(Exception):
        pass

    def stop_after_first(epoch: int, metrics: dict[str, Any]) -> None:
        if epoch == 0:
            raise Stop

    sparse = every.replace(eval_every=3)
    with pytest.raises(Stop):
        fit(sparse, run_dir=tmp_path / "sparse", progress=False, data=digits, report=stop_after_first)
    assert "confusion_test" not in torch.load(tmp_path / "sparse" / "checkpoint.pt", weights_only=True)
    summary = fit(sparse, run_dir=tmp_path / "sparse", resume=True, progress=False, data=digits)
    full, skipped = _metrics(tmp_path / "every"), _metrics(tmp_path / "sparse")
    accuracies = ("train_acc", "val_acc", "test_acc", "val_acc_class_inversion", "test_acc_class_inversion")
    for a, b in zip(full, skipped, strict=True):
        if a["epoch"] in (3, 5):
            assert a == b
        else:
            assert all(b[k] is None for k in accuracies)
            assert {k: v for k, v in a.items() if k not in accuracies} == {
                k: v for k, v in b.items() if k not in accuracies
            }
    na, nb = _npz(tmp_path / "every" / "atoms.npz"), _npz(tmp_path / "sparse" / "atoms.npz")
    for key in na:
        np.testing.assert_array_equal(na[key], nb[key])
    reference = json.loads((tmp_path / "every" / "summary.json").read_text())
    for key in ("test_acc", "val_acc", "train_acc", "confusion_test", "test_acc_class_inversion"):
        assert summary[key] == reference[key]
    assert (
        0.0 <= summary["test_acc_class_inversion"] <= 1.0 and 0.0 <= summary["val_acc_class_inversion"] <= 1.0
    )
    best = max((m for m in full if m["epoch"] in (3, 5)), key=lambda m: m["val_acc"])
    assert summary["best_val_epoch"] == best["epoch"]
    with pytest.raises(ValueError, match="eval_every must be >= 1"):
        every.replace(eval_every=0)


def test_atoms_every_changes_only_the_recorded_atoms(tmp_path: Path, digits) -> None:
    """``atoms_every = 4``: the same weights and accuracies as recording atoms every batch, goals
    up to float rounding; the atoms of the epoch are means over batches 0, 4, 8 only."""
    every = _config(tmp_path, epochs=2, hidden=12)
    fit(every, run_dir=tmp_path / "every", progress=False, data=digits)
    fit(every.replace(atoms_every=4), run_dir=tmp_path / "fourth", progress=False, data=digits)
    full, fourth = _metrics(tmp_path / "every"), _metrics(tmp_path / "fourth")
    for a, b in zip(full, fourth, strict=True):
        for key in ("train_acc", "val_acc", "test_acc"):
            assert a[key] == b[key]
        for layer in ("hidden", "readout"):
            assert a[f"{layer}_goal"] == pytest.approx(b[f"{layer}_goal"], abs=1e-5)
        assert a["hidden_atoms_mean"] != b["hidden_atoms_mean"]
    sa = torch.load(tmp_path / "every" / "checkpoint.pt", weights_only=False)["model"]
    sb = torch.load(tmp_path / "fourth" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    with pytest.raises(ValueError, match="atoms_every must be >= 1"):
        every.replace(atoms_every=0)


def test_run_directory_guards(tmp_path: Path, digits) -> None:
    config = _config(tmp_path, epochs=1)
    fit(config, run_dir=tmp_path / "run", progress=False, data=digits)
    with pytest.raises(ValueError, match="already holds a run"):
        fit(config, run_dir=tmp_path / "run", progress=False, data=digits)
    with pytest.raises(ValueError, match="cannot resume"):
        fit(config, run_dir=tmp_path / "empty", resume=True, progress=False, data=digits)
    assert not (tmp_path / "empty").exists()
    with pytest.raises(ValueError, match="run directory"):
        fit(config, resume=True, progress=False, data=digits)


# ------------------------------------------------------------------- baselines
def test_backprop_only_config(tmp_path: Path, digits) -> None:
    config = _config(tmp_path, network="backprop", hidden=16, epochs=2)
    summary = fit(config, run_dir=tmp_path / "bp", progress=False, data=digits)
    run_dir = tmp_path / "bp"
    assert (run_dir / "baselines.json").is_file()
    assert not (run_dir / "checkpoint.pt").exists() and not (run_dir / "metrics.jsonl").exists()
    saved = json.loads((run_dir / "baselines.json").read_text())
    assert set(saved) == {"backprop"}
    bp = saved["backprop"]
    assert bp["epochs"] == 2 and len(bp["history"]) == 2
    assert 0.0 <= bp["test_acc"] <= 1.0 and 0.0 <= bp["val_acc"] <= 1.0
    assert summary["baselines"]["backprop"]["test_acc"] == bp["test_acc"]
    assert "test_acc" not in summary  # no infomorphic network was trained
    assert json.loads((run_dir / "summary.json").read_text())["baselines"]["backprop"]["epochs"] == 2


def test_the_papers_backprop_reports_both_inversion_rules(tmp_path: Path, digits) -> None:
    """The paper's backprop network (bounded readout probabilities, read with the papers'
    inversion rule) also reports accuracies with the inversion decided from the training labels."""
    config = _config(tmp_path, network="backprop", hidden=1, epochs=2, backprop_variant="paper")
    fit(config, run_dir=tmp_path / "bp", progress=False, data=digits)
    bp = json.loads((tmp_path / "bp" / "baselines.json").read_text())["backprop"]
    for record in (bp, *bp["history"]):
        assert 0.0 <= record["val_acc_class_inversion"] <= 1.0
        assert 0.0 <= record["test_acc_class_inversion"] <= 1.0


# ---------------------------------------------------------------- train_step
def test_train_step_updates_every_trainable_weight(digits) -> None:
    net = build_network(TrainConfig(hidden=8, seed=0), 64, 10)
    optimizers = {name: torch.optim.Adam(layer.parameters(), lr=0.01) for name, layer in net.layers().items()}
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    x, y = digits.train.x[:128], digits.train.y[:128]
    goals = train_step(net, optimizers, x, y, torch.Generator().manual_seed(0))
    assert set(goals) == {"hidden", "readout"}
    assert goals["hidden"].shape == (8,) and goals["readout"].shape == (10,)
    assert all(not g.requires_grad and torch.all(torch.isfinite(g)) for g in goals.values())
    for name, p in net.named_parameters():
        if name.startswith("hidden.weight.L"):
            changed = p.detach()[net.hidden.mask("L") == 1] != before[name][net.hidden.mask("L") == 1]
            assert torch.all(net.hidden.mask("L").diagonal() == 0)
            assert torch.all(p.detach().diagonal() == 0)
            assert changed.any(), name
        else:
            assert not torch.equal(p.detach(), before[name]), f"{name} did not change"
    assert torch.equal(net.readout.effective_weight("C"), torch.eye(10))


def test_train_step_ascends_the_goal(digits) -> None:
    # the single-layer network has no sampling: repeated steps on one batch must raise every goal
    net = build_network(TrainConfig(network="single", seed=0), 64, 10)
    optimizers = {name: torch.optim.Adam(layer.parameters(), lr=0.01) for name, layer in net.layers().items()}
    x, y = digits.train.x[:256], digits.train.y[:256]
    first = train_step(net, optimizers, x, y)["readout"]
    for _ in range(30):
        last = train_step(net, optimizers, x, y)["readout"]
    assert torch.all(last > first), (first, last)


# ------------------------------------------------------------------- learning
def _negated(goal: Goal) -> str:
    return Goal(goal.sources, {k: -v for k, v in goal.gamma.items()}).to_expression()


def test_training_learns_digits(tmp_path: Path, digits) -> None:
    config = _config(tmp_path, hidden=32, epochs=10, hidden_lr=0.01, readout_lr=0.015)
    untrained, _ = evaluate_network(
        build_network(config, 64, 10), digits.test.x, digits.test.y, 128, torch.Generator().manual_seed(0)
    )
    assert untrained < 0.25  # chance is 0.1
    summary = fit(config, run_dir=tmp_path / "learn", progress=False, data=digits)
    metrics = _metrics(tmp_path / "learn")
    assert summary["test_acc"] > 0.6, summary["test_acc"]  # ~0.85 with these settings
    assert summary["train_acc"] > 0.6
    assert summary["test_acc"] > untrained + 0.4
    assert metrics[-1]["test_acc"] > metrics[0]["test_acc"]
    assert metrics[-1]["hidden_goal"] > metrics[0]["hidden_goal"]

    # control: the same run ascending the negated hidden goal does not learn
    flipped = config.replace(hidden_goal=_negated(Goal.preset("trivariate-mnist-tpe")))
    control = fit(flipped, run_dir=tmp_path / "flipped", progress=False, data=digits)
    assert control["test_acc"] < 0.3, control["test_acc"]  # ~0.1


def test_single_layer_learns_digits(tmp_path: Path, digits) -> None:
    config = _config(tmp_path, network="single", epochs=5, readout_lr=0.015)
    summary = fit(config, run_dir=tmp_path / "single", progress=False, data=digits)
    assert summary["test_acc"] > 0.8, summary["test_acc"]  # ~0.9


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from infomorphic.train.loop import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available; use --device cpu"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
