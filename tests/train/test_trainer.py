"""infomorphic.train.Trainer: user loops (DataLoader, own optimiser, callbacks) and the same
numbers as ``fit``; TensorBoard logging of ``infomorphic train``."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_train import digits_config
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

from infomorphic.config import TrainConfig
from infomorphic.data import load_dataset
from infomorphic.nn import Network, kind_spec, stacked
from infomorphic.seeding import generator
from infomorphic.train import (
    EpochEvent,
    StepEvent,
    Trainer,
    TrainingDiverged,
    build_network,
    default_optimizers,
    fit,
)
from infomorphic.train.loggers import scalars


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", val_fraction=0.2, seed=0)


def test_user_loop_with_dataloader_and_sgd(digits) -> None:
    net = Network(kind_spec("single"), digits.n_features, digits.n_classes, generator=generator(0, "init"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loader = DataLoader(
        TensorDataset(digits.train.x, digits.train.y),
        batch_size=128,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    val = DataLoader(TensorDataset(digits.val.x, digits.val.y), batch_size=256)
    steps: list[StepEvent] = []
    epochs: list[EpochEvent] = []
    made: list[torch.optim.Optimizer] = []

    def sgd(params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        made.append(torch.optim.SGD(params, lr=1.0))
        return made[-1]

    trainer = Trainer(net, sgd, on_step=[steps.append], on_epoch=[epochs.append])
    assert set(trainer.optimizers) == {"readout"} and len(made) == 1
    assert all(isinstance(o, torch.optim.SGD) for o in trainer.optimizers.values())
    history = trainer.fit(loader, epochs=2, val=val)

    per_epoch = -(-len(digits.train) // 128)
    assert len(steps) == 2 * per_epoch
    assert [s.epoch for s in steps] == [0] * per_epoch + [1] * per_epoch
    assert [s.step for s in steps[:per_epoch]] == list(range(per_epoch))
    first = steps[0]
    assert first.trainer is trainer and first.batch_size == 128
    assert first.goals["readout"].shape == (10,)
    assert first.mean_goals["readout"] == pytest.approx(float(first.goals["readout"].mean()))
    assert [e.epoch for e in epochs] == [1, 2] and trainer.epoch == 2
    assert [e.metrics for e in epochs] == history
    for metrics in history:
        assert 0 <= metrics["val_acc"] <= 1
        assert math.isfinite(metrics["readout_goal"])
        assert set(metrics["readout_atoms_mean"]) == {"{F}{C}", "{F}", "{C}", "{FC}"}
    # it learned: weights moved, the goal rose and the readout beats chance (0.1) by far (~0.83)
    assert not torch.equal(net.state_dict()["readout.weight.F"], before["readout.weight.F"])
    assert history[-1]["readout_goal"] > history[0]["readout_goal"] > 0
    assert history[-1]["val_acc"] > 0.6
    acc, pred = trainer.evaluate(val)
    assert pred.shape == (len(digits.val),) and 0 <= acc <= 1


def test_per_layer_factories_and_errors(digits) -> None:
    net = Network(stacked([6]), digits.n_features, digits.n_classes, generator=generator(0, "init"))
    trainer = Trainer(
        net, {"h1": lambda p: torch.optim.SGD(p, lr=0.1), "readout": lambda p: torch.optim.Adam(p)}
    )
    assert isinstance(trainer.optimizers["h1"], torch.optim.SGD)
    assert isinstance(trainer.optimizers["readout"], torch.optim.Adam)
    with pytest.raises(ValueError, match="no optimizer factory for the layer"):
        Trainer(net, {"h1": lambda p: torch.optim.SGD(p, lr=0.1)})
    with pytest.raises(TypeError, match="layers"):
        Trainer(torch.nn.Linear(2, 2))
    # divergence stops training with the layer's name
    exploding = Trainer(net, lambda p: torch.optim.SGD(p, lr=math.inf))
    batches = [(digits.train.x[:128], digits.train.y[:128])] * 5
    with pytest.raises(TrainingDiverged, match="diverged in epoch 1: the (h1|readout) layer"):
        exploding.train_epoch(batches)


def _whole_tensor_batches(config: TrainConfig, x: torch.Tensor, y: torch.Tensor, epoch: int):
    order = torch.randperm(len(x), generator=generator(config.seed, "shuffle", epoch))
    for lo in range(0, len(x), config.batch_size):
        idx = order[lo : lo + config.batch_size]
        yield x[idx], y[idx]


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int):
    return [(x[lo : lo + size], y[lo : lo + size]) for lo in range(0, len(x), size)]


def test_trainer_with_default_optimizers_matches_fit(tmp_path: Path, digits) -> None:
    config = digits_config(tmp_path, train_eval_size=None)
    fit(config, run_dir=tmp_path / "run", progress=False, data=digits)
    expected = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]

    net = build_network(config, digits.n_features, digits.n_classes)
    trainer = Trainer(net, sampler=generator(config.seed, "sampling"))  # default optimiser = fit's Adam
    assert all(isinstance(o, torch.optim.Adam) for o in trainer.optimizers.values())
    assert default_optimizers(net)["hidden"].keywords == {
        "lr": config.hidden_lr,
        "weight_decay": config.hidden_weight_decay,
    }
    x, y = digits.train.x, digits.train.y
    for epoch in range(config.epochs):
        result = trainer.train_epoch(_whole_tensor_batches(config, x, y, epoch))
        eval_gen = generator(config.seed, "eval", epoch)
        accs = [
            trainer.evaluate(_chunks(*split, config.batch_size), eval_gen)[0]
            for split in ((x, y), (digits.val.x, digits.val.y), (digits.test.x, digits.test.y))
        ]
        got = result.metrics()
        want = expected[epoch]
        assert result.epoch == want["epoch"]
        assert accs == [want["train_acc"], want["val_acc"], want["test_acc"]]
        for layer in ("hidden", "readout"):
            assert got[f"{layer}_goal"] == want[f"{layer}_goal"]
            assert got[f"{layer}_atoms_mean"] == want[f"{layer}_atoms_mean"]


def test_fit_passes_callbacks_and_loggers(tmp_path: Path, digits) -> None:
    config = digits_config(tmp_path, network="single", setup=TrainConfig.setup, hidden=TrainConfig.hidden)
    steps: list[int] = []
    seen: list[dict[str, Any]] = []

    class Recorder:
        closed = False

        def log_epoch(self, event: EpochEvent) -> None:
            seen.append(dict(event.metrics))

        def close(self) -> None:
            Recorder.closed = True

    fit(
        config,
        run_dir=tmp_path / "run",
        progress=False,
        data=digits,
        loggers=[Recorder()],
        on_step=[lambda e: steps.append(e.epoch)],
    )
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert seen == lines and Recorder.closed
    assert steps.count(0) == steps.count(1) == -(-len(digits.train) // 128)


# ------------------------------------------------------------------------------ TensorBoard
def _read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected_scalars(run: Path, layers: list[str]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        metrics = json.loads(line)
        for tag, value in scalars(metrics, layers).items():
            out.setdefault(tag, []).append((metrics["epoch"], value))
    return out


def test_train_tensorboard_mirrors_metrics_and_resume_appends(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from infomorphic.cli import app

    runner = CliRunner()
    tiny = [
        "--dataset",
        "digits",
        "--hidden",
        "6",
        "--batch-size",
        "256",
        "--threads",
        "1",
        "--baselines",
        "none",
        "--no-progress",
        "--json",
    ]
    res = runner.invoke(
        app, ["train", *tiny, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "r", "--tensorboard"]
    )
    assert res.exit_code == 0, res.output
    run = tmp_path / "r"
    events = _read_events(run / "tensorboard")
    first = _expected_scalars(run, ["hidden", "readout"])
    assert {
        "hidden/goal",
        "readout/goal",
        "accuracy/train",
        "accuracy/val",
        "accuracy/test",
        "readout/atoms/{F}{C}",
        "hidden/atoms/{F}{C}{L}",
    } <= set(events)
    assert set(events) == set(first)
    for tag, points in first.items():
        assert [s for s, _ in events[tag]] == [s for s, _ in points] == [1]
        assert [v for _, v in events[tag]] == pytest.approx([v for _, v in points], rel=1e-6, abs=1e-7)

    res = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "2", "--tensorboard", "--json"])
    assert res.exit_code == 0, res.output
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2  # appended, not replaced
    events = _read_events(run / "tensorboard")
    both = _expected_scalars(run, ["hidden", "readout"])
    assert events["readout/goal"][0] == pytest.approx(first["readout/goal"][0], rel=1e-6)
    for tag, points in both.items():
        assert [s for s, _ in events[tag]] == [1, 2], tag
        assert [v for _, v in events[tag]] == pytest.approx([v for _, v in points], rel=1e-6, abs=1e-7)

    custom = tmp_path / "tb-elsewhere"
    res = runner.invoke(
        app,
        [
            "train",
            *tiny,
            "--network",
            "single",
            "--epochs",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "s",
            "--tensorboard",
            str(custom),
        ],
    )
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "s" / "tensorboard").exists()
    assert _read_events(custom)["readout/goal"][0][0] == 1


def test_train_tensorboard_missing_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infomorphic.cli import app

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    res = CliRunner().invoke(
        app,
        [
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "x",
            "--tensorboard",
        ],
    )
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "infomorphic[tensorboard]" in lines[0]
    assert not (tmp_path / "x").exists()


def test_atoms_every_records_fewer_batches_and_trains_the_same_weights(digits) -> None:
    """``atoms_every=3``: atoms on batches 0, 3, 6, ... of every epoch (their means are the
    epoch's atoms); the other steps compute only the redundancies the goals weigh, which gives
    the same weights to the bit as recording every batch (a four-source network, whose goal
    leaves 99 of 166 redundancies out, and its three-source readout)."""
    batches = _chunks(digits.train.x, digits.train.y, 128)[:8]

    def train(every: int) -> tuple[Network, list, list[dict[str, torch.Tensor]]]:
        net = Network(
            stacked([12, 10], feedback="B"),
            digits.n_features,
            digits.n_classes,
            generator=generator(3, "init"),
        )
        seen: list[dict[str, torch.Tensor]] = []

        def keep(event: StepEvent) -> None:
            seen.append({k: layer.last_atoms.clone() for k, layer in event.trainer.layers().items()})

        trainer = Trainer(net, sampler=generator(3, "sampling"), on_step=[keep], atoms_every=every)
        results = [trainer.train_epoch(batches) for _ in range(2)]
        assert all(layer.record_atoms for layer in net.layers().values())  # restored after the epoch
        return net, results, seen

    net1, res1, seen1 = train(1)
    net3, res3, seen3 = train(3)
    state1, state3 = net1.state_dict(), net3.state_dict()
    assert state1.keys() == state3.keys()
    assert all(torch.equal(state1[k], state3[k]) for k in state1)
    init = Network(
        stacked([12, 10], feedback="B"), digits.n_features, digits.n_classes, generator=generator(3, "init")
    ).state_dict()
    assert not torch.equal(state1["h1.weight.F"], init["h1.weight.F"])  # it trained
    for name in ("h1", "h2", "readout"):
        recorded = [i % 8 for i, s in enumerate(seen3) if s[name].numel() > 0]
        assert recorded == [0, 3, 6, 0, 3, 6]
        for epoch in range(2):
            want = torch.stack([seen1[epoch * 8 + i][name] for i in (0, 3, 6)]).mean(0)
            assert torch.allclose(res3[epoch].atoms(name), want, atol=1e-6)
            assert not torch.allclose(res1[epoch].atoms(name), want, atol=1e-6)
            assert res3[epoch].goals[name] == pytest.approx(res1[epoch].goals[name], abs=1e-5)
    assert res1[0].atoms("h1").shape == (12, 166)


def test_atoms_every_must_be_a_positive_integer(digits) -> None:
    net = Network(stacked([6]), digits.n_features, digits.n_classes, generator=generator(0, "init"))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="atoms_every must be an integer >= 1"):
            Trainer(net, atoms_every=bad)  # type: ignore[arg-type]
