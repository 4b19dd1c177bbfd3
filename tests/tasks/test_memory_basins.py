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


# --- basin-shaping recipes: mixed batches and the fixed-points-then-basins curriculum ---


def test_recipe_options_validate() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"noisy_copies": 0}, "noisy_copies must be an integer >= 1"),
        ({"noisy_copies": True}, "noisy_copies must be an integer >= 1"),
        ({"noisy_copies": 1.5}, "noisy_copies must be an integer >= 1"),
        ({"stop_cues": 0}, "stop_cues must be an integer >= 1"),
        ({"basin_patience": 0}, "basin_patience must be an integer >= 1"),
        ({"clean_states": 1}, "clean_states must be true or false"),
        ({"basin_epochs": -1, "train_noise": 0.1}, "basin_epochs must be an integer >= 0"),
        ({"basin_epochs": True, "train_noise": 0.1}, "basin_epochs must be an integer >= 0"),
        ({"basin_epochs": 10}, "basin_epochs > 0 needs train_noise > 0"),
        ({"basin_epochs": 10, "train_noise": 0.1, "basin_lr": 0.0}, "basin_lr must be > 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(")) as err:
            MemoryConfig(**kwargs)
        assert "\n" not in str(err.value)
    cfg = MemoryConfig()
    assert (cfg.noisy_copies, cfg.clean_states, cfg.stop_cues, cfg.basin_epochs) == (1, False, 1, 0)
    assert not cfg.curriculum and MemoryConfig(train_noise=0.1, basin_epochs=1).curriculum


@pytest.mark.parametrize("copies,clean", [(1, True), (3, False), (2, True)])
def test_training_batch_holds_the_clean_states_and_k_noisy_copies(copies: int, clean: bool) -> None:
    n, m, f = 40, 7, 0.1
    patterns = random_patterns(m, n, generator(3, "p"))
    cfg = MemoryConfig(n_neurons=n, train_noise=f, noisy_copies=copies, clean_states=clean)
    external, state = memory.training_batch(
        torch.zeros(n, n), patterns, cfg, torch.Generator().manual_seed(0)
    )
    blocks = copies + int(clean)
    assert external.shape == state.shape == (blocks * m, n)
    assert torch.equal(external, patterns.repeat(blocks, 1))  # the target is always the clean pattern
    if clean:
        assert torch.equal(state[:m], patterns)
    noisy = state[m * int(clean) :].reshape(copies, m, n)
    for block in noisy:
        assert (block != patterns).sum(1).tolist() == [round(f * n)] * m
    for i in range(copies):
        for j in range(i):
            assert not torch.equal(noisy[i], noisy[j])  # each copy has its own flips


def test_training_batch_defaults_are_one_noisy_copy_as_before() -> None:
    n = 30
    patterns = random_patterns(5, n, generator(4, "p"))
    w = torch.randn(n, n, generator=torch.Generator().manual_seed(1))
    cfg = MemoryConfig(n_neurons=n, train_noise=0.2, unroll=2)
    external, state = memory.training_batch(w, patterns, cfg, torch.Generator().manual_seed(9))
    assert external is patterns
    assert torch.equal(state, training_state(w, patterns, 0.2, 2, torch.Generator().manual_seed(9)))


def test_noise_training_with_default_recipe_fields_is_unchanged() -> None:
    """train_noise alone trains exactly as before the recipe fields (one noisy copy per epoch)."""
    cfg = MemoryConfig(n_neurons=20, alpha=1.2, max_epochs=30, check_every=1000, seed=2, train_noise=0.1)
    patterns = random_patterns(cfg.n_patterns, 20, generator(2, "patterns"))
    net = InfomorphicMemory(20, cfg.external_weight, cfg.init_scale, generator(2, "init"))
    opt = torch.optim.Adam([net.weight], lr=cfg.lr)
    goal, gen = memory_goal(cfg.goal), generator(2, "train-noise")
    for _ in range(30):
        state = training_state(net.weight * net.mask, patterns, 0.1, 1, gen)
        t, r, theta = net(patterns, state)
        res = neuron_pid(t, r, theta, cfg, goal)
        opt.zero_grad(set_to_none=True)
        (-goal.evaluate(res.atoms, res.residual_entropy).sum()).backward()
        opt.step()
    assert torch.equal(train_memory(cfg, patterns).net.weight.detach(), net.weight.detach())


def test_curriculum_trains_fixed_points_first_then_basins(monkeypatch: pytest.MonkeyPatch) -> None:
    states: list[torch.Tensor | None] = []
    real_step = memory._step

    def spy(net: Any, opt: Any, patterns: Any, config: Any, goal: Any, state: Any = None) -> Any:
        states.append(None if state is None else state.clone())
        return real_step(net, opt, patterns, config, goal, state)

    monkeypatch.setattr(memory, "_step", spy)
    cfg = MemoryConfig(n_neurons=40, alpha=0.5, max_epochs=400, seed=0, check_every=5)
    cur = replace(cfg, train_noise=0.1, basin_epochs=60, clean_states=True, basin_patience=3, stop_cues=2)
    res = train_memory(cur)
    plain = [h for h in res.history if "phase" not in h]
    basin = [h for h in res.history if h.get("phase") == "basin"]
    assert plain[-1]["score"] == 1.0 and all(h["score"] < 1.0 for h in plain[:-1])
    assert all("noisy_score" not in h for h in plain)  # phase 1 is the plain fixed-point training
    switch = plain[-1]["epoch"]
    assert res.basin is not None and len(states) == switch + res.basin["epochs"] == res.epochs
    assert states[:switch] == [None] * switch  # clean R until every pattern is stored
    m = len(res.patterns)
    for s in states[switch:]:  # then the clean states plus one noisy copy per pattern
        assert s is not None and s.shape == (2 * m, 40)
        assert torch.equal(s[:m], res.patterns)
        assert (s[m:] != res.patterns).sum(1).tolist() == [4] * m
    # keep-best: the final weights are those of the best noisy score among checks that still
    # recall every pattern exactly (or the stored weights when no check is better)
    valid = [h for h in basin if h["score"] >= 1.0]
    kept = max([res.basin["start"]] + [h["noisy_score"] for h in valid])
    assert res.basin["kept"] == kept > res.basin["start"]
    assert res.basin["kept_epoch"] + switch in [h["epoch"] for h in valid]
    targets, cues = memory._stop_cues(res.patterns, cur)
    assert len(cues) == 2 * m
    assert memory._cue_score(res.net, targets, cues) == pytest.approx(kept, abs=1e-12)
    assert res.score == 1.0
    if res.basin["stopped"] == "patience":
        assert len(basin) - [h["epoch"] for h in basin].index(res.basin["kept_epoch"] + switch) - 1 == 3


def test_curriculum_returns_the_stored_weights_when_the_basin_phase_breaks_recall() -> None:
    base = MemoryConfig(n_neurons=40, alpha=1.0, max_epochs=400, seed=0)
    plain = train_memory(base)
    cur = train_memory(replace(base, train_noise=0.1, basin_epochs=300, basin_lr=0.05))
    assert plain.score == 1.0 and cur.basin is not None
    assert cur.basin["stopped"] == "clean_score" and cur.basin["kept_epoch"] == 0
    assert cur.history[-1]["score"] < 1.0  # the basin phase lost a pattern at its first check ...
    assert torch.equal(cur.net.weight, plain.net.weight) and cur.score == 1.0  # ... so none is kept
    # a load the fixed-point training does not store has no basin phase: the default run exactly
    high = replace(base, alpha=1.2)
    plain_high = train_memory(high)
    cur_high = train_memory(replace(high, train_noise=0.1, basin_epochs=300))
    assert plain_high.score < 1.0 and cur_high.basin is None
    assert torch.equal(cur_high.net.weight, plain_high.net.weight)


def test_curriculum_keeps_exact_recall_where_noise_training_loses_it() -> None:
    base = MemoryConfig(n_neurons=40, alpha=1.0, max_epochs=400, seed=0)
    plain = train_memory(base)
    noisy = train_memory(replace(base, train_noise=0.1, lr=0.01))
    cur = train_memory(replace(base, train_noise=0.1, basin_epochs=300, clean_states=True, stop_cues=4))

    def from_noisy_cues(res: memory.MemoryResult) -> float:
        return recall_score(res.net.field(), res.patterns, 0.05, generator(1, "cue", 0.05))

    assert noisy.score < 0.9  # noise from the start: some patterns are no longer fixed points
    assert plain.score == cur.score == 1.0  # the curriculum keeps every pattern exactly
    assert cur.basin is not None and cur.basin["kept"] > cur.basin["start"] + 0.05
    assert from_noisy_cues(cur) > from_noisy_cues(plain)


def test_recipe_options_reach_the_capacity_command(tmp_path: Path) -> None:
    args = ["capacity", "--neurons", "30", "--seeds", "0", "--grid", "0.3:0.3:0.1", "--workers", "1"]
    args += ["--methods", "infomorphic", "--cue-noise", "0,0.1", "--train-noise", "0.1"]
    args += ["--set", "basin_epochs=50", "--set", "clean_states=True", "--set", "stop_cues=2"]
    args += ["--max-epochs", "200", "--out-dir", str(tmp_path), "--name", "c", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "c" / "config.json").read_text())["config"]["memory"]
    assert (config["basin_epochs"], config["clean_states"], config["stop_cues"]) == (50, True, 2)
    bad = runner.invoke(app, ["capacity", "--set", "basin_epochs=5", "--out-dir", str(tmp_path)])
    assert bad.exit_code == 2 and bad.output.startswith("error: basin_epochs > 0 needs train_noise > 0")
    assert len(bad.output.strip().splitlines()) == 1
