"""Ablation: the exact variant goals, the cumulative order, the table and figures; one real run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from infomorphic.goals import H_RES, Goal
from infomorphic.goalsearch.ablate import (
    Variant,
    ablation_order,
    cumulative_ablations,
    evaluate_variants,
    modulations,
    run_ablation,
    single_ablations,
)

PUBLISHED = Goal.preset("trivariate-mnist-tpe")


def test_single_ablations_zero_exactly_one_gamma_each() -> None:
    variants = single_ablations(PUBLISHED)
    original = PUBLISHED.to_vector()
    assert len(variants) == 19  # all 18 atoms and H_res are non-zero in the published goal
    for k, v in enumerate(variants):
        expected = list(original)
        expected[k] = 0.0
        assert v.goal.to_vector() == expected
        assert v.kind == "zero" and len(v.atoms) == 1
    assert variants[1].atoms == ("{F}{C}",) and variants[-1].atoms == (H_RES,)


def test_cumulative_ablations_zero_a_growing_prefix() -> None:
    order = ["{FCL}", "{C}{FL}", "{F}{C}"]
    variants = cumulative_ablations(PUBLISHED, order)
    assert [v.atoms for v in variants] == [("{FCL}",), ("{FCL}", "{C}{FL}"), ("{FCL}", "{C}{FL}", "{F}{C}")]
    last = variants[-1].goal
    assert last.weight("{FCL}") == last.weight("{C}{FL}") == last.weight("{F}{C}") == 0.0
    assert last.weight("{F}{L}") == PUBLISHED.weight("{F}{L}")


def test_modulations_are_relative_and_absolute() -> None:
    goal = Goal.parse("0.5*{F}{C} - 0.2*{F}{L}")
    rows = {(v.kind, v.label): v.goal for v in modulations(goal, relative=0.1, absolute=0.1)}
    assert len(rows) == 8
    assert rows[("relative", "{F}{C} x1.1")].weight("{F}{C}") == pytest.approx(0.55)
    assert rows[("relative", "{F}{L} x0.9")].weight("{F}{L}") == pytest.approx(-0.18)
    assert rows[("absolute", "{F}{L} +0.1")].weight("{F}{L}") == pytest.approx(-0.1)
    assert rows[("absolute", "{F}{C} -0.1")].weight("{F}{C}") == pytest.approx(0.4)
    assert rows[("absolute", "{F}{C} -0.1")].weight("{F}{L}") == -0.2


def test_run_ablation_orders_by_smallest_effect_and_writes_outputs(tmp_path: Path, tiny) -> None:
    goal = Goal.parse("{F}{C} - {F}{L} + 0.5*{FC}{FL}")
    importance = {"{F}{C}": 0.3, "{F}{L}": 0.01, "{FC}{FL}": 0.1}

    def fit_fn(config: Any, run_dir: Path, progress: bool, data: Any, resume: bool = False) -> dict[str, Any]:
        g = Goal.resolve(config.hidden_goal, "FCL")
        acc = (
            0.9
            - sum(w * abs(goal.weight(n) - g.weight(n)) for n, w in importance.items())
            + 0.001 * config.seed
        )
        run_dir.mkdir(parents=True)
        (run_dir / "summary.json").write_text(json.dumps({"val_acc": acc, "test_acc": acc}))
        return {"val_acc": acc, "test_acc": acc}

    record = run_ablation(tiny(), goal, tmp_path, seeds=(0, 2), fit_fn=fit_fn)
    assert record["order"] == ["{F}{L}", "{FC}{FL}", "{F}{C}"]
    ref = record["reference"]
    assert ref["val"] == [0.9, 0.902] and ref["val_min"] == 0.9 and ref["val_max"] == 0.902
    zero = {r["atoms"][0]: r for r in record["rows"] if r["kind"] == "zero"}
    assert zero["{F}{C}"]["val_mean"] == pytest.approx(0.901 - 0.3)
    cumulative = [r for r in record["rows"] if r["kind"] == "cumulative"]
    assert cumulative[-1]["vector"] == [0.0] * 19
    assert cumulative[1]["val_mean"] == pytest.approx(0.901 - 0.01 - 0.05)
    assert len([r for r in record["rows"] if r["kind"] in ("relative", "absolute")]) == 12
    with (tmp_path / "ablation.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 + 3 + 3 + 12 and rows[0]["kind"] == "reference"
    for name in ("single", "cumulative", "modulation"):
        assert (tmp_path / f"ablation_{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a second call reuses the finished runs (summary.json) instead of training again
    again = run_ablation(
        tiny(), goal, tmp_path, seeds=(0, 2), fit_fn=lambda *a, **k: pytest.fail("retrained")
    )
    assert again["rows"] == record["rows"]


def test_ablation_order_uses_drop_from_reference() -> None:
    ref = {"val_mean": 0.9}
    rows = [
        {"kind": "zero", "atoms": ["a"], "val_mean": 0.5},
        {"kind": "zero", "atoms": ["b"], "val_mean": 0.95},
        {"kind": "zero", "atoms": ["c"], "val_mean": 0.8},
    ]
    assert ablation_order(rows, ref) == ["b", "c", "a"]


def test_evaluate_variants_trains_for_real(tmp_path: Path, tiny, digits_small) -> None:
    variant = Variant("zero", "{F}{L} = 0", ("{F}{L}",), PUBLISHED.with_gamma({"{F}{L}": 0.0}))
    rows = evaluate_variants(tiny(epochs=1), [variant], [0, 1], tmp_path, data=digits_small)
    assert len(rows) == 1 and rows[0]["seeds"] == [0, 1]
    run = next((tmp_path / "runs").glob("*seed1"))
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["seed"] == 1 and Goal.parse(config["hidden_goal"]).weight("{F}{L}") == 0.0
    assert 0.0 <= rows[0]["val_min"] <= rows[0]["val_mean"] <= rows[0]["val_max"] <= 1.0


def test_run_ablation_rejects_unknown_parts(tmp_path: Path, tiny) -> None:
    with pytest.raises(ValueError, match="unknown ablation parts"):
        run_ablation(tiny(), PUBLISHED, tmp_path, kinds=["single", "leave-one-in"])
