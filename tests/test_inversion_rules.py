"""``experiments/inversion_rules.py``: the three readings of a trained run's readout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from experiment_scripts import load_experiment

from infomorphic.config import TrainConfig
from infomorphic.train import fit


def test_inversion_rules_of_a_run_whose_readout_is_negated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trained digits run, then the same run with every readout neuron negated (weights and
    bias times -1: theta -> 1 - theta exactly, a readout that fires for every class but its own).
    ``class`` reads both alike (it asks the labels); ``none`` collapses on the negated one."""
    script = load_experiment("inversion_rules")
    config = TrainConfig(
        dataset="digits",
        network="single",
        epochs=5,
        batch_size=128,
        readout_lr=0.015,
        baselines=(),
        threads=1,
    )
    fit(config, run_dir=tmp_path / "run", progress=False)
    first = script.evaluate(tmp_path / "run")
    ckpt_path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    negated = [k for k in ckpt["model"] if k.startswith("readout.") and ckpt["model"][k].is_floating_point()]
    assert negated
    for key in negated:
        ckpt["model"][key] = -ckpt["model"][key]
    torch.save(ckpt, ckpt_path)
    second = script.evaluate(tmp_path / "run")
    assert first["class"] > 0.5 and second["class"] == pytest.approx(first["class"], abs=0.03)
    assert second["none"] < 0.2
    assert [1 - k for k in first["class_inverts"]] == second["class_inverts"]
    assert script.main([str(tmp_path / "run"), str(tmp_path / "missing")]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run"] for r in out] == ["run"]
