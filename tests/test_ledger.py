"""The experiments' ledger (experiments/_train_run.py, ``--ledger`` of size_sweep.py and depth.py):
finished runs' figures outlive their run directories, so a sweep spread over machines that are
handed back keeps what it measured; two sweeps may record at once without losing a record."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import pytest
from experiment_scripts import ROOT, load_experiment

sys.path.insert(0, str(ROOT / "experiments"))
import _train_run  # noqa: E402 - the experiments' shared launcher

sweep = load_experiment("size_sweep", "size_sweep_ledger")
depth = load_experiment("depth", "depth_ledger")


def test_record_runs_merges_replaces_and_stamps(tmp_path: Path) -> None:
    ledger = tmp_path / "results" / "runs.jsonl"
    assert _train_run.read_ledger(ledger) == {} and _train_run.read_ledger(None) == {}
    assert (
        _train_run.record_runs(ledger, {"a": {"epochs": 2, "acc": 0.5}, "b": {"epochs": 2, "acc": (1, 2)}})
        == 2
    )
    assert (
        _train_run.record_runs(ledger, {"a": {"epochs": 2, "acc": 0.5}, "b": {"epochs": 2, "acc": [1, 2]}})
        == 0
    )
    assert _train_run.record_runs(ledger, {"a": {"epochs": 3, "acc": 0.6}}) == 1  # trained on: replaced
    kept = _train_run.read_ledger(ledger)
    assert sorted(kept) == ["a", "b"]
    assert kept["a"]["epochs"] == 3 and kept["a"]["acc"] == 0.6 and kept["b"]["acc"] == [1, 2]
    for record in kept.values():
        assert record["recorded"].count("-") == 2 and "cores" in record["machine"]
    assert [p.name for p in ledger.parent.iterdir()] == ["runs.jsonl"]  # no temporary or lock file left


def _record_many(ledger: str, worker: int, count: int) -> None:
    for i in range(count):
        _train_run.record_runs(Path(ledger), {f"w{worker}-r{i}": {"epochs": 1, "value": i}})


def test_sweeps_recording_at_once_lose_no_record(tmp_path: Path) -> None:
    """Read-merge-write without the lock loses records when two sweeps record at the same moment
    (here 4 processes x 25 records; measured without the flock: 53-66 of 100 lost)."""
    ledger = tmp_path / "runs.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_many, args=(str(ledger), w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    assert len(_train_run.read_ledger(ledger)) == 100


def test_a_file_that_is_not_a_ledger_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.jsonl"
    path.write_text(json.dumps({"dataset": "mnist", "width": 100}) + "\n")
    with pytest.raises(ValueError, match="is not a ledger of runs: record 1 lacks a run name"):
        _train_run.read_ledger(path)


# ---------------------------------------------------------------- size_sweep.py --ledger

ARGS = ["--dataset", "digits", "--models", "random", "readout", "--sizes", "3", "--seeds", "0", "1"]
ARGS += ["--epochs", "1", "--set", "batch_size=256"]


def test_size_sweep_rows_come_back_from_the_ledger_without_the_run_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out, ledger = tmp_path / "runs", tmp_path / "results" / "size-sweep-runs.jsonl"
    calls: list[list[str]] = []

    def record(path: Path, records: dict) -> int:
        calls.append(sorted(records))
        return _train_run.record_runs(path, records)

    monkeypatch.setattr(sweep, "record_runs", record)
    rows = sweep.main([*ARGS, "--out", str(out), "--ledger", str(ledger)])
    # each run recorded as soon as it was trained (a sweep killed later keeps it), then all again
    assert sorted(c[0] for c in calls[:4]) == sorted(calls[4]) and all(len(c) == 1 for c in calls[:4])
    kept = _train_run.read_ledger(ledger)
    names = [
        "digits-random-n3-seed0",
        "digits-random-n3-seed1",
        "digits-readout-seed0",
        "digits-readout-seed1",
    ]
    assert sorted(kept) == names
    assert all(kept[n]["finished"] and kept[n]["epochs"] == 1 for n in names)
    assert all(0 <= kept[n]["test_acc_class_inversion"] <= 1 for n in names)
    # a run of code from before the class-inversion accuracy existed: its record keeps its form,
    # so re-recording it changes nothing (no new key with null, no new date)
    old = tmp_path / "old" / names[0]
    shutil.copytree(out / names[0], old)
    summary = json.loads((old / "summary.json").read_text())
    for key in ("test_acc_class_inversion", "val_acc_class_inversion"):
        del summary[key]
    (old / "summary.json").write_text(json.dumps(summary))
    record = sweep.ledger_record(old)
    assert record is not None and "test_acc_class_inversion" not in record
    old_ledger = tmp_path / "old" / "runs.jsonl"
    assert _train_run.record_runs(old_ledger, {old.name: record}) == 1
    assert _train_run.record_runs(old_ledger, {old.name: sweep.ledger_record(old)}) == 0
    shutil.rmtree(out)
    # nothing trained again: every run is in the ledger
    again = sweep.main([*ARGS, "--out", str(out), "--ledger", str(ledger)])
    assert not [p for p in out.iterdir() if p.is_dir()]
    assert again == rows
    assert sweep.main([*ARGS, "--out", str(out), "--ledger", str(ledger), "--summarise"]) == rows
    # without the ledger the same folder holds nothing
    assert all(r["runs"] == 0 for r in sweep.main([*ARGS, "--out", str(out), "--summarise"]))
    # a record with fewer epochs than asked does not count as done
    assert not sweep.is_done(out / names[0], 2, kept) and sweep.is_done(out / names[0], 1, kept)


def test_size_sweep_convergence_curve_from_the_ledger(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    name = "mnist-setup1-n5-seed0"
    ledger = {name: {"run": name, "epochs": 3, "weight_change_curve": [0.1, 0.01, None]}}
    png = tmp_path / "conv.png"
    drawn = sweep.convergence_figure(out, "mnist", ["setup1"], [5], [0], png, ledger)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ((key, curve),) = drawn.items()  # the missing last change is a gap in the curve
    assert key == ("setup1", 5) and curve[:2] == [0.1, 0.01] and curve[2] != curve[2]


def test_convergence_figure_of_finished_runs_leaves_out_a_run_still_training(tmp_path: Path) -> None:
    """A run still training (its directory with one epoch of three) cuts every seed's median curve
    to its length; with ``finished_only`` it is left out and the finished run's curve is drawn
    whole.  Seven models take two rows of at most four panels."""
    out = tmp_path / "runs"
    done, training = "mnist-setup1-n5-seed0", "mnist-setup1-n5-seed1"
    ledger = {
        done: {
            "run": done,
            "epochs": 3,
            "finished": True,
            "test_acc": 0.5,
            "weight_change_curve": [0.1, 0.01, 0.001],
        }
    }
    (out / training).mkdir(parents=True)
    (out / training / "metrics.jsonl").write_text(
        json.dumps(
            {"epoch": 1, "test_acc": 0.3, "train_acc": 0.3, "val_acc": 0.3, "hidden_weight_change": 0.5}
        )
        + "\n"
    )
    png = tmp_path / "conv.png"
    cut = sweep.convergence_figure(out, "mnist", ["setup1"], [5], [0, 1], png, ledger)
    assert cut == {("setup1", 5): [statistics.median([0.1, 0.5])]}
    whole = sweep.convergence_figure(out, "mnist", ["setup1"], [5], [0, 1], png, ledger, 3, True)
    assert whole == {("setup1", 5): [0.1, 0.01, 0.001]}
    models = [m for m in sweep.DEFAULT_MODELS if m.startswith(("setup", "context", "lateral"))]  # seven
    sweep.convergence_figure(out, "mnist", models, [5], [0], png, ledger)
    header = png.read_bytes()[16:24]  # the IHDR chunk: width, then height
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
    assert width < 3 * height  # 4 x 2 panels (2.5 : 1), not 7 in a row (8.75 : 1)


# ---------------------------------------------------------------- depth.py --ledger


def _depth_run(out: Path, name: str, accs: list[float], backprop: float | None, finished: bool) -> None:
    folder = out / name
    folder.mkdir(parents=True)
    lines = [
        {"epoch": e + 1, "test_acc": a, "h1_goal": 0.2 + a, "h1_atoms_mean": {"{F}{C}": a, "{F}": 0.1}}
        for e, a in enumerate(accs)
    ]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    if backprop is not None:
        (folder / "baselines.json").write_text(json.dumps({"backprop": {"test_acc": backprop}}))
    if finished:
        (folder / "summary.json").write_text(json.dumps({"epochs": len(accs)}))


def _depth_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    monkeypatch.setattr(
        "sys.argv",
        ["depth.py", "--datasets", "mnist", "--widths", "100", "--depths", "2"]
        + ["--seeds", "0", "1", "2", "--epochs", "2", *args],
    )
    depth.main()
    return capsys.readouterr().out


def test_depth_rows_come_back_from_the_ledger_without_the_run_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out, ledger = tmp_path / "runs", tmp_path / "depth-runs.jsonl"
    _depth_run(out, "mnist-w100-d2-stacked-seed0", [0.5, 0.95], 0.97, True)
    _depth_run(out, "mnist-w100-d2-stacked-seed1", [0.5, 0.94], 0.96, True)
    _depth_run(out, "mnist-w100-d2-stacked-seed2", [0.5, 0.96], None, False)  # its twin still training
    before = _depth_main(monkeypatch, capsys, "--out", str(out), "--summarise", "--ledger", str(ledger))
    table = _depth_main(monkeypatch, capsys, "--out", str(out), "--markdown", "--ledger", str(ledger))
    assert json.loads(before.splitlines()[0]) == {"ledger": str(ledger), "runs_recorded": 2}
    row = json.loads(before.splitlines()[1])
    assert row["infomorphic_test"] == {"median": 0.95, "min": 0.94, "max": 0.96, "n": 3}
    assert sorted(_train_run.read_ledger(ledger)) == [
        "mnist-w100-d2-stacked-seed0",
        "mnist-w100-d2-stacked-seed1",
    ]
    shutil.rmtree(out / "mnist-w100-d2-stacked-seed0")
    shutil.rmtree(out / "mnist-w100-d2-stacked-seed1")
    after = _depth_main(monkeypatch, capsys, "--out", str(out), "--summarise", "--ledger", str(ledger))
    assert json.loads(after.splitlines()[0])["runs_recorded"] == 0
    assert after.splitlines()[1] == before.splitlines()[1]
    assert _depth_main(monkeypatch, capsys, "--out", str(out), "--markdown", "--ledger", str(ledger)) == table
    assert "95.00% (94.00-96.00) | 96.50% (96.00-97.00) (2 of 3 seeds)" in table
    # a training sweep leaves the recorded seeds alone: only seed 2 is a job (held here: busy)
    from infomorphic.runs import claim_run_dir

    (out / "mnist-w100-d2-stacked-seed2" / "config.json").write_text("{}")
    with claim_run_dir(out / "mnist-w100-d2-stacked-seed2", resume=True):
        _depth_main(monkeypatch, capsys, "--out", str(out), "--ledger", str(ledger))
    assert not (out / "mnist-w100-d2-stacked-seed0").exists()
    assert not (out / "configs").exists()
