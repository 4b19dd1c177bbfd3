"""Streams of patterns (tasks/online.py): the online rules, the protocol's bookkeeping, palimpsest and blackout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from storkey_reference import storkey_step

from infomorphic.seeding import generator
from infomorphic.tasks.hopfield import Field, modern_field, random_patterns, storkey_weights
from infomorphic.tasks.memory import MemoryConfig, train_online
from infomorphic.tasks.online import (
    InfomorphicStream,
    OnlineOptions,
    OuterProductRule,
    StreamConfig,
    bounded_hebbian_bound,
    bounded_hebbian_update,
    make_rule,
    online_options,
    recent_all,
    run_stream,
    storkey_update,
    stream_figures,
    stream_storage,
    stream_summary,
)


def test_incremental_storkey_equals_the_batch_function_and_the_explicit_formula() -> None:
    patterns = random_patterns(12, 20, generator(0, "storkey"))
    rule = OuterProductRule(20, storkey_update)
    rule.present(patterns[:5])
    for xi in patterns[5:]:  # one at a time or in groups: the same rule
        rule.present(xi[None])
    assert torch.allclose(rule.weight, storkey_weights(patterns), atol=1e-12)

    # one step from a non-trivial W (zero diagonal), against the published formula with loops
    n = 6
    w = torch.randn(n, n, dtype=torch.float64, generator=generator(1, "w"))
    w.fill_diagonal_(0.0)
    xi = random_patterns(1, n, generator(2, "xi"))[0].double()
    want = torch.from_numpy(storkey_step(w.numpy(), xi.numpy()))
    assert torch.allclose(storkey_update(w, xi), want, atol=1e-12)


def test_bounded_hebbian_stays_within_its_bounds_and_is_a_palimpsest() -> None:
    n = 50
    cfg = StreamConfig(n_neurons=n, length=250, seed=0)
    rule = make_rule("hebbian-bounded", n)
    assert isinstance(rule, OuterProductRule)
    bound = bounded_hebbian_bound(n)
    probes = run_stream(rule, cfg)
    assert rule.weight.abs().max() <= bound / n + 1e-12
    assert rule.weight.abs().max() == pytest.approx(bound / n)  # the bound is reached
    assert rule.weight.diagonal().abs().max() == 0
    summary = stream_summary(probes, cfg)["clean"]
    assert summary["blackout_at"] is None
    assert summary["steady_recent_all"] >= 2  # the most recent patterns are recalled ...
    for p in probes[len(probes) // 2 :]:
        assert sum(p["clean"][:3]) >= 2
        assert sum(p["clean"][20:]) == 0  # ... and the old ones are gone
    # the update itself clips: many equal increments saturate at exactly A / N
    xi = torch.ones(4, dtype=torch.float64)
    w = torch.zeros(4, 4, dtype=torch.float64)
    for _ in range(10):
        w = bounded_hebbian_update(w, xi, 2.5)
    assert w[0, 1] == pytest.approx(2.5 / 4) and w[0, 0] == 0


def test_hebbian_blacks_out_past_its_capacity() -> None:
    n = 50
    cfg = StreamConfig(n_neurons=n, length=250, seed=0)
    summary = stream_summary(run_stream(make_rule("hebbian", n), cfg), cfg)["clean"]
    assert summary["blackout_at"] is not None and summary["blackout_at"] <= 50  # 0.14 N = 7 patterns
    assert summary["recalled"][-1] == 0 and summary["steady_recalled"] == 0
    decay = stream_summary(run_stream(make_rule("hebbian-decay", n), cfg), cfg)["clean"]
    assert decay["blackout_at"] is None and decay["steady_recent_all"] >= 2


def test_recent_all_is_the_leading_run_of_recalled_patterns() -> None:
    assert recent_all([1, 1, 1, 0, 1, 1]) == 3
    assert recent_all([0, 1, 1]) == 0
    assert recent_all([1, 1]) == 2
    assert recent_all([]) == 0


class LastK:
    """A hand-made memory that recalls exactly the last ``k`` patterns presented (nearest-pattern retrieval)."""

    def __init__(self, k: int, forget_after: int | None = None) -> None:
        self.k, self.forget_after = k, forget_after
        self.seen: list[torch.Tensor] = []

    def present(self, arrival: torch.Tensor) -> None:
        self.seen.extend(arrival)

    def field(self) -> Field:
        if self.forget_after is not None and len(self.seen) >= self.forget_after:
            return modern_field(random_patterns(3, self.seen[0].shape[0], generator(9, "other")))
        return modern_field(torch.stack(self.seen[-self.k :]), beta=1.0)


def test_stream_bookkeeping_on_a_hand_made_memory() -> None:
    cfg = StreamConfig(n_neurons=50, length=45, arrival=5, probe_every=10, seed=0)
    probes = run_stream(LastK(7), cfg)
    assert [p["t"] for p in probes] == [10, 20, 30, 40, 45]  # every 10 patterns, and at the end
    for p in probes:
        assert len(p["clean"]) == len(p["noisy"]) == p["t"]  # one flag per seen pattern, by age
        assert p["clean"] == [1] * 7 + [0] * (p["t"] - 7)  # ages 0..6 are the last 7 presented
        assert p["noisy"] == p["clean"]
    s = stream_summary(probes, cfg)
    c = s["clean"]
    assert c["recent_all"] == [7] * 5 and c["recalled"] == [7] * 5
    assert c["steady_recent_all"] == 7.0  # probes with t > 45 / 2: 30, 40, 45
    assert c["oldest"] == [pytest.approx(0.7), 0.0, 0.0, 0.0, 0.0]  # at t = 10 patterns 3..9 of the first 10
    assert c["recall_by_age"] == [1.0] * 7 + [0.0] * 23  # ages below the earliest late probe's t = 30
    assert c["blackout_at"] is None

    # a memory that loses everything after 30 patterns blacks out at the first probe from then on
    s = stream_summary(run_stream(LastK(7, forget_after=30), cfg), cfg)
    assert s["clean"]["recalled"] == [7, 7, 0, 0, 0]
    assert s["clean"]["blackout_at"] == 30
    assert s["clean"]["steady_recent_all"] == 0.0


def test_summary_of_hand_written_probe_records() -> None:
    cfg = StreamConfig(n_neurons=10, length=40, probe_every=10, blackout_count=1)
    probes = [
        {"t": 10, "clean": [1, 1, 0, 1, 0, 0, 0, 0, 0, 1]},
        {"t": 20, "clean": [1, 0] + [0] * 18},
        {"t": 30, "clean": [0, 1] + [0] * 28},  # one recalled: at most blackout_count
        {"t": 40, "clean": [0] * 40},
    ]
    s = stream_summary(probes, cfg)["clean"]
    assert s["recent_all"] == [2, 1, 0, 0]
    assert s["recalled"] == [4, 1, 1, 0]
    assert s["oldest"] == [pytest.approx(0.4), 0.0, 0.0, 0.0]  # the first 10 of the stream, by index
    assert s["steady_recent_all"] == 0.0 and s["steady_recalled"] == 0.5  # t = 30, 40
    assert s["blackout_at"] == 20  # from t = 20 on, never more than one recalled
    assert "noisy" not in stream_summary(probes, cfg)


def test_stream_config_checks() -> None:
    assert StreamConfig(n_neurons=20).n_patterns == 100
    with pytest.raises(ValueError, match="dividing"):
        StreamConfig(n_neurons=20, arrival=3, probe_every=10)
    with pytest.raises(ValueError, match="shorter"):
        StreamConfig(n_neurons=20, length=5)
    with pytest.raises(ValueError, match="decay"):
        OnlineOptions(decay=0.0)
    with pytest.raises(ValueError, match="optimizer"):
        OnlineOptions(optimizer="rmsprop")
    with pytest.raises(ValueError, match="unknown stream method"):
        make_rule("pseudo-inverse", 20)


def test_infomorphic_stream_defaults_reproduce_train_online() -> None:
    cfg = MemoryConfig(n_neurons=12, seed=4)
    patterns = random_patterns(12, 12, generator(4, "p"))
    rule = InfomorphicStream(cfg, OnlineOptions(steps=3))
    for lo in range(0, 12, 4):
        rule.present(patterns[lo : lo + 4])
    net = train_online(cfg, patterns, group_size=4, epochs_per_group=3)
    assert torch.equal(rule.net.weight, net.weight)


def test_a_lone_pattern_needs_its_mirror() -> None:
    n = 30
    cfg = MemoryConfig(n_neurons=n, seed=1)
    xi = random_patterns(1, n, generator(1, "xi"))
    plain = InfomorphicStream(cfg, OnlineOptions(steps=20, optimizer="sgd", lr=0.5 / n))
    w0 = plain.net.weight.detach().clone()
    plain.present(xi)
    assert (plain.net.weight - w0).abs().max() < 1e-6  # T takes one value: every atom is 0, no gradient
    mirrored = InfomorphicStream(cfg, OnlineOptions(steps=20, optimizer="sgd", lr=0.5 / n, mirror=True))
    mirrored.present(xi)
    w = mirrored.net.recurrent_weight().detach()
    assert (torch.sign(xi @ w.T) == xi).all()  # stored: a fixed point
    assert torch.corrcoef(torch.stack([w.flatten(), torch.outer(xi[0], xi[0]).flatten()]))[0, 1] > 0.9


def test_decay_shrinks_the_weights_by_its_factor_per_pattern() -> None:
    n = 10
    opts = OnlineOptions(steps=4, optimizer="sgd", lr=1e-30, mirror=True, decay=0.9)
    rule = InfomorphicStream(MemoryConfig(n_neurons=n, init_scale=1.0), opts)
    w0 = rule.net.weight.detach().clone()
    rule.present(random_patterns(3, n, generator(0, "x")))  # an arrival of 3 patterns
    assert torch.allclose(rule.net.weight, w0 * 0.9**3, rtol=1e-5)


def test_online_infomorphic_keeps_recent_patterns_without_blackout() -> None:
    """The online configuration at N = 30: a palimpsest (no blackout), unlike Adam without decay."""
    n = 30
    cfg = StreamConfig(n_neurons=n, length=90, seed=0)
    s = stream_summary(run_stream(make_rule("infomorphic", n), cfg), cfg)["clean"]
    assert s["blackout_at"] is None
    assert s["steady_recent_all"] >= 2 and min(s["recalled"]) >= 2
    assert max(s["oldest"][3:]) == 0.0  # old patterns fade
    opts = online_options(n)
    assert opts.lr == pytest.approx(0.5 / n) and opts.decay == pytest.approx(1 - 3 / n)
    short = StreamConfig(n_neurons=n, length=30, seed=0)
    adam = stream_summary(run_stream(make_rule("infomorphic-adam", n), short), short)["clean"]
    assert adam["blackout_at"] == 10  # a lone pattern gives Adam no gradient: nothing is ever stored


def test_stream_storage_table_and_figures(tmp_path: Path) -> None:
    out = stream_storage(
        MemoryConfig(n_neurons=20),
        arrivals=(1, 10),
        methods=("infomorphic", "hebbian", "hebbian-decay"),
        options=online_options(20, steps=5),
        length=40,
    )
    assert [(r["method"], r["arrival"]) for r in out["runs"]] == [
        (m, a) for a in (1, 10) for m in ("infomorphic", "hebbian", "hebbian-decay")
    ]
    row = out["table"]["hebbian-decay"]["1"]
    assert set(row) == {
        "steady_recent_all_clean",
        "steady_recalled_clean",
        "steady_recent_all_noisy",
        "steady_recalled_noisy",
        "blackout_at",
    }
    assert all(math.isfinite(v) for k, v in row.items() if k != "blackout_at")
    # Hebbian and its decaying form are one-shot rules: the arrival size does not matter
    assert out["table"]["hebbian"]["1"] == out["table"]["hebbian"]["10"]
    paths = stream_figures(out, tmp_path)
    assert [p.name for p in paths] == ["stream_recent.png", "stream_oldest.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_capacity_stream_command_writes_table_figures_and_flags(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from infomorphic.cli import app

    runner = CliRunner()
    args = ["capacity", "--stream", "1,5", "--neurons", "20", "--stream-length", "40", "--seeds", "0"]
    args += ["--stream-methods", "hebbian,hebbian-decay", "--out-dir", str(tmp_path), "--name", "s", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["arrivals"] == [1, 5] and set(out["table"]) == {"hebbian", "hebbian-decay"}
    assert out["table"]["hebbian"]["1"]["blackout_at"] == [30]
    run = tmp_path / "s"
    assert (run / "stream_recent.png").exists() and (run / "stream_oldest.png").exists()
    summary = json.loads((run / "summary.json").read_text())
    flags = summary["runs"][0]["probes"][-1]["clean"]
    assert isinstance(flags, str) and len(flags) == 40 and set(flags) <= {"0", "1"}  # by age
    for bad, message in (
        (["--stream", "1,3"], "dividing"),
        (["--stream", "1", "--stream-methods", "mpf"], "unknown stream methods"),
        (["--stream", "1", "--train-noise", "0.1"], "not used by --stream"),
    ):
        result = runner.invoke(app, ["capacity", *bad, "--out-dir", str(tmp_path)])
        assert result.exit_code == 2 and result.output.startswith("error:") and message in result.output
