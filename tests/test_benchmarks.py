"""The benchmark scripts run and print what they promise (tiny sizes: this checks the code, not
the timings), and the GPU check fails cleanly on a machine without CUDA."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _env() -> dict[str, str]:
    # the PyTorch PID path: no first-use kernel build inside a test's time
    return {**os.environ, "INFOMORPHIC_KERNEL": "0", "OMP_NUM_THREADS": "1"}


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_json_line(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 1, res.stdout
    return json.loads(lines[0])


# ------------------------------------------------------------------ gpu_check.sh
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_parses() -> None:
    res = subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA: the check would run")
def test_gpu_check_without_cuda_exits_2_with_one_line(tmp_path: Path) -> None:
    res = subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh")],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0], res.stderr


# ------------------------------------------------------------------ bench_train.py
def test_bench_train_compares_with_the_legacy_network_and_reports_the_floor(tmp_path: Path) -> None:
    """Setup 2 with 2 of 40 lateral partners (stored sparsely), from a config, against the legacy
    network (masked lateral weights, the same initial weights)."""
    config = tmp_path / "run.toml"
    config.write_text('network = "trivariate"\nsetup = 2\nhidden = 40\nlateral_partners = 2\n')
    r = _one_json_line(
        _run(
            "bench_train.py",
            "--config",
            str(config),
            "--random-data",
            "--epochs",
            "2",
            "--batches",
            "2",
            "--batch",
            "128",
            "--threads",
            "1",
            "--gemm-repeat",
            "2",
            "--compare-legacy",
        )
    )
    assert (r["network"], r["setup"], r["hidden"], r["batches_per_epoch"]) == ("trivariate", 2, 40, 2)
    assert r["epochs_timed"] == 2 and len(r["legacy"]["epoch_seconds"]) == 2
    assert r["legacy"]["same_initial_weights"] is True
    legacy = r["legacy"]
    assert r["ratio_builder_to_legacy"] == pytest.approx(r["seconds_per_epoch"] / legacy["seconds_per_epoch"])
    assert r["floor_seconds"] > 0
    # the floor measured before the first and after every timed epoch; each epoch against the
    # mean of the two floors around it
    floors, epochs = r["floor_seconds_measured"], r["epoch_seconds"]
    assert len(floors) == 3 and r["floor_seconds"] == pytest.approx(statistics.median(floors))
    paired = [e / ((a + b) / 2) for e, a, b in zip(epochs, floors, floors[1:])]
    assert r["ratio_epoch_to_floor_per_epoch"] == pytest.approx(paired)
    assert r["ratio_epoch_to_floor"] == pytest.approx(statistics.median(paired))
    assert legacy["ratio_epoch_to_floor"] == pytest.approx(legacy["seconds_per_epoch"] / r["floor_seconds"])
    assert set(r["stage_share"]) == {"forward", "binning", "pid", "backward", "optimiser"}
    rows = {(row["layer"], row["class"]): row for row in r["floor"]}
    # every trained class, not the readout's fixed label weight
    assert set(rows) == {("hidden", "F"), ("hidden", "C"), ("hidden", "L"), ("readout", "F")}
    lateral = rows[("hidden", "L")]
    assert (lateral["stored"], lateral["partners"], lateral["in"], lateral["out"]) == ("sparse", 2, 40, 40)
    assert lateral["madds_per_product"] == 128 * 40 * 2  # B * N * P, not B * N * in
    assert rows[("hidden", "F")]["madds_per_product"] == 128 * 40 * 784
    for row in r["floor"]:
        assert row["forward_products_per_batch"] == 1 and row["weight_grad_products_per_batch"] == 1
    assert floors[0] == pytest.approx(sum(row["floor_seconds"] for row in r["floor"]))  # the first one's rows


def test_bench_train_times_any_wiring_and_refuses_to_compare_it() -> None:
    wiring = str(ROOT / "configs" / "networks" / "deep2.toml")
    r = _one_json_line(
        _run(
            "bench_train.py",
            "--config",
            wiring,
            "--random-data",
            "--epochs",
            "1",
            "--batches",
            "1",
            "--batch",
            "64",
            "--threads",
            "1",
            "--gemm-repeat",
            "1",
        )
    )
    assert r["network"] == "custom" and r["layers"] == {"h1": 100, "h2": 100, "readout": 10}
    assert {row["layer"] for row in r["floor"]} == {"h1", "h2", "readout"}
    res = _run("bench_train.py", "--config", wiring, "--random-data", "--compare-legacy")
    assert res.returncode == 2 and res.stdout == ""
    assert "--compare-legacy needs one of the papers' networks" in res.stderr.splitlines()[-1]


def test_bench_train_refuses_to_compare_options_the_legacy_code_lacks(tmp_path: Path) -> None:
    config = tmp_path / "adaptive.toml"
    config.write_text('[train]\nhidden_binning = "adaptive"\nhidden = 20\n')
    res = _run("bench_train.py", "--config", str(config), "--random-data", "--compare-legacy")
    assert res.returncode == 2 and res.stdout == ""
    assert "the legacy code has no hidden_binning = 'adaptive' (only 'fixed')" in res.stderr.splitlines()[-1]


# ------------------------------------------------------------------ bench_sparse.py
def test_bench_sparse_reports_ratios_and_the_storage_choice() -> None:
    from infomorphic.nn.functional import prefer_sparse

    r = _one_json_line(
        _run(
            "bench_sparse.py",
            "--neurons",
            "30",
            "--inputs",
            "40",
            "--densities",
            "0.1",
            "0.5",
            "--batch",
            "64",
            "--repeat",
            "1",
            "--threads",
            "1",
        )
    )
    assert [(c["partners"], c["prefer_sparse"]) for c in r["cases"]] == [
        (4, prefer_sparse(4, 40)),
        (20, prefer_sparse(20, 40)),
    ]
    for c in r["cases"]:
        assert c["ratio"] == pytest.approx(c["sparse_s"] / c["dense_s"])
        assert c["max_rel_diff"] < 1e-5
        assert c["choice_right"] == (c["prefer_sparse"] == (c["ratio"] < 1))
    assert r["cases_total"] == 2 and r["prefer_sparse_right"] + len(r["prefer_sparse_wrong"]) == 2
