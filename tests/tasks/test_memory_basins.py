"""Basins of attraction (issue 14): noise-trained infomorphic memories and capacity at cue noise."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import infomorphic.tasks.memory as memory
from infomorphic.cli import app
from infomorphic.seeding import generator
from infomorphic.tasks.capacity import CapacityConfig, noise_capacity, noise_capacity_table, run_point
from infomorphic.tasks.hopfield import hebbian_weights, random_patterns, recall_score
from infomorphic.tasks.memory import (
    InfomorphicMemory,
    MemoryConfig,
    memory_goal,
    neuron_pid,
    train_memory,
    training_state,
)

runner = CliRunner()


def test_basin_options_validate() -> None:
    for bad in (-0.1, 0.5, 0.7):
        with pytest.raises(ValueError, match="train_noise"):
            MemoryConfig(train_noise=bad)
    for bad_unroll in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="unroll"):
            MemoryConfig(unroll=bad_unroll)  # type: ignore[arg-type]
    assert MemoryConfig(train_noise=0.49, unroll=3).shapes_basins
    assert not MemoryConfig().shapes_basins
    with pytest.raises(ValueError, match="cue_noise"):
        CapacityConfig(cue_noise=(0.0, 0.5))
    with pytest.raises(ValueError, match="cue_noise"):
        CapacityConfig(cue_noise=())


def _old_training(cfg: MemoryConfig, patterns: torch.Tensor, epochs: int) -> torch.Tensor:
    """The fixed-point training as it was before the basin options: R from the clean patterns."""
    net = InfomorphicMemory(cfg.n_neurons, cfg.external_weight, cfg.init_scale, generator(cfg.seed, "init"))
    opt = torch.optim.Adam([net.weight], lr=cfg.lr)
    goal = memory_goal(cfg.goal)
    for _ in range(epochs):
        t, r, theta = net(patterns, patterns)
        res = neuron_pid(t, r, theta, cfg, goal)
        goals = goal.evaluate(res.atoms, res.residual_entropy)
        opt.zero_grad(set_to_none=True)
        (-goals.sum()).backward()
        opt.step()
    return net.weight.detach()


def test_defaults_reproduce_the_fixed_point_training_exactly() -> None:
    # alpha 1.2 at N = 20 is not recalled within 40 epochs, so no check stops the run early
    cfg = MemoryConfig(n_neurons=20, alpha=1.2, max_epochs=40, check_every=1000, seed=5)
    patterns = random_patterns(cfg.n_patterns, 20, generator(5, "patterns"))
    old = _old_training(cfg, patterns, 40)
    explicit = train_memory(replace(cfg, train_noise=0.0, unroll=1), patterns)
    assert explicit.epochs == 40
    assert torch.equal(explicit.net.weight.detach(), old)
    assert torch.equal(train_memory(cfg, patterns).net.weight.detach(), old)
    noisy = train_memory(replace(cfg, train_noise=0.1), patterns)
    assert not torch.equal(noisy.net.weight.detach(), old)  # the option does reach the training


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.13, 0.25])
def test_training_state_flips_exactly_round_fraction_n_bits(fraction: float) -> None:
    n = 40
    patterns = random_patterns(12, n, generator(0, "p"))
    gen = torch.Generator().manual_seed(1)
    first = training_state(torch.zeros(n, n), patterns, fraction, 1, gen)
    second = training_state(torch.zeros(n, n), patterns, fraction, 1, gen)
    k = int(round(fraction * n))
    assert (first != patterns).sum(1).tolist() == [k] * 12
    assert (second != patterns).sum(1).tolist() == [k] * 12
    assert not torch.equal(first, second)  # resampled on every call
    clean = training_state(torch.zeros(n, n), patterns, 0.0, 1)
    assert torch.equal(clean, patterns) and clean is not patterns


def test_unroll_runs_the_sign_dynamics_from_the_noisy_state() -> None:
    n = 60
    patterns = random_patterns(3, n, generator(2, "p"))
    w = hebbian_weights(patterns).float()  # far below capacity: one step corrects 10% flips
    noisy = training_state(w, patterns, 0.1, 1, torch.Generator().manual_seed(3))
    unrolled = training_state(w, patterns, 0.1, 2, torch.Generator().manual_seed(3))
    assert (noisy != patterns).sum(1).tolist() == [6, 6, 6]
    assert torch.equal(unrolled, torch.sign(noisy @ w.T))
    assert torch.equal(unrolled, patterns)


def test_training_feeds_freshly_flipped_states_to_the_recurrent_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    states: list[torch.Tensor | None] = []
    real_step = memory._step

    def spy(net: Any, opt: Any, patterns: Any, config: Any, goal: Any, state: Any = None) -> Any:
        states.append(None if state is None else state.clone())
        return real_step(net, opt, patterns, config, goal, state)

    monkeypatch.setattr(memory, "_step", spy)
    cfg = MemoryConfig(n_neurons=30, alpha=0.5, max_epochs=4, check_every=100, seed=1)
    patterns = random_patterns(cfg.n_patterns, 30, generator(1, "patterns"))
    train_memory(cfg, patterns)
    assert states == [None] * 4  # defaults: R from the clean patterns, as before
    states.clear()
    train_memory(replace(cfg, train_noise=0.1), patterns)
    flipped = [s for s in states if s is not None]
    assert len(flipped) == 4
    for s in flipped:
        assert (s != patterns).sum(1).tolist() == [3] * len(patterns)
    assert not torch.equal(flipped[0], flipped[1])  # new flips every epoch


def test_noise_training_gives_a_basin_where_the_default_has_none() -> None:
    base = MemoryConfig(n_neurons=40, alpha=1.0, max_epochs=400, seed=0)
    plain = train_memory(base)
    noisy = train_memory(replace(base, train_noise=0.1, lr=0.01))
    assert torch.equal(plain.patterns, noisy.patterns)

    def from_noisy_cues(res: memory.MemoryResult) -> float:
        return recall_score(res.net.field(), res.patterns, 0.05, generator(1, "cue", 0.05))

    assert plain.score == 1.0  # every pattern is a fixed point ...
    assert from_noisy_cues(plain) < 0.3  # ... without a basin: 2 flipped bits of 40 lose it
    assert from_noisy_cues(noisy) > from_noisy_cues(plain) + 0.25
    assert "noisy_score" in noisy.history[-1] and "noisy_score" not in plain.history[-1]


def test_run_point_scores_every_method_from_the_same_noisy_cues() -> None:
    mem = MemoryConfig(n_neurons=24, max_epochs=30, check_every=10)
    point = run_point(mem, 1.5, 0, ("infomorphic", "hebbian", "pseudo-inverse"), (0.0, 0.1))
    cue = point["cue_scores"]
    assert cue["infomorphic"]["0"] == point["scores"]["infomorphic"]
    assert cue["hebbian"]["0"] == point["scores"]["hebbian"]
    assert cue["pseudo-inverse"] == {"0": None, "0.1": None}  # M >= N: nothing stored
    again = run_point(mem, 1.5, 0, ("hebbian",), (0.0, 0.1))
    assert again["cue_scores"]["hebbian"] == cue["hebbian"]  # cues seeded by the point, not the method list


def test_noise_capacity_table_at_n100() -> None:
    cfg = CapacityConfig(
        memory=MemoryConfig(n_neurons=100),
        alphas=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
        seeds=(0, 1),
        methods=("hebbian", "modern"),
        cue_noise=(0.0, 0.1),
        workers=1,
    )
    out = noise_capacity(cfg)
    assert out["cue_noise"] == [0.0, 0.1] and out["threshold"] == 0.95
    assert set(out["table"]) == {"hebbian", "modern"}
    for row in out["table"].values():
        assert set(row) == {"0", "0.1"}
        for cell in row.values():
            assert set(cell) == {"median", "min", "max", "per_seed"}
            assert set(cell["per_seed"]) == {0, 1}
            assert cell["min"] <= cell["median"] <= cell["max"]
    hebb = out["table"]["hebbian"]
    assert 0.08 <= hebb["0"]["median"] <= 0.2  # Hebbian capacity 0.138 (Amit et al. 1985)
    assert hebb["0.1"]["max"] <= hebb["0"]["max"]
    assert out["table"]["modern"]["0.1"]["min"] == 0.3  # the whole grid, also from noisy cues
    # the table is a pure function of the points: recomputed from them it is the same
    again = noise_capacity_table(out["points"], cfg.methods, cfg.cue_noise, cfg.threshold)
    assert again["table"] == out["table"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["capacity", "--train-noise", "0.5"], "train_noise must be a fraction in [0, 0.5)"),
        (["capacity", "--unroll", "0"], "unroll must be an integer >= 1"),
        (["capacity", "--cue-noise", "0,0.6"], "cue_noise must be fractions"),
        (["capacity", "--cue-noise", "0,x"], "--cue-noise expects"),
        (["capacity", "--set", "alpha=0.3"], "--set alpha is not for capacity"),
        (["train", "--task", "memory", "--set", "train_noise=-0.1"], "train_noise must be"),
        (["train", "--task", "memory", "--set", "unroll=0"], "unroll must be"),
    ],
)
def test_cli_rejects_bad_basin_options(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, args + ["--out-dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.startswith("error:")
    assert len(result.output.strip().splitlines()) == 1


def test_capacity_command_prints_the_noise_capacity_table(tmp_path: Path) -> None:
    args = ["capacity", "--neurons", "30", "--seeds", "0", "--grid", "0.1:0.4:0.3", "--workers", "1"]
    args += ["--methods", "hebbian,infomorphic", "--cue-noise", "0,0.1", "--train-noise", "0.1"]
    args += ["--set", "lr=0.01", "--max-epochs", "50", "--out-dir", str(tmp_path), "--name", "c"]
    result = runner.invoke(app, args + ["--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out["noise_capacity"]["table"]) == {"hebbian", "infomorphic"}
    assert set(out["noise_capacity"]["table"]["hebbian"]) == {"0", "0.1"}
    config = json.loads((tmp_path / "c" / "config.json").read_text())["config"]
    assert config["memory"]["train_noise"] == 0.1 and config["memory"]["lr"] == 0.01
    assert config["cue_noise"] == [0.0, 0.1]
    table = runner.invoke(app, args[:-2] + ["--name", "d"])
    assert table.exit_code == 0 and "flip 0.1" in table.output
