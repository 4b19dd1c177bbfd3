"""Nothing hangs, nothing is lost: bad input, damaged run files, crashes and concurrent runs.

One table drives every bad-input class through the command line: each case must exit 2 with
exactly one ``error:`` line on stderr naming what is wrong, raise nothing (no traceback) and
write nothing.  The crash tests kill real ``infomorphic train`` processes with SIGKILL at
random points and check that ``--resume`` ends with the same files as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.runs import claim_run_dir, load_checkpoint, remove_stale_temporaries, write_json, write_jsonl

runner = CliRunner()
TINY = [
    "--dataset",
    "digits",
    "--hidden",
    "8",
    "--batch-size",
    "256",
    "--threads",
    "1",
    "--baselines",
    "none",
    "--no-progress",
]
CLI = [str(Path(sys.executable).with_name("infomorphic"))]  # the installed console script


# ------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch run; cases damage copies of it."""
    out = tmp_path_factory.mktemp("finished")
    res = runner.invoke(app, ["train", *TINY, "--epochs", "2", "--out-dir", str(out), "--name", "run"])
    assert res.exit_code == 0, res.output
    return out / "run"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` (but lock files) with its size and modification time."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _strict_json_lines(path: Path) -> list[dict]:
    def no_constants(name: str) -> None:
        raise AssertionError(f"{path} holds the non-JSON constant {name}")

    return [json.loads(line, parse_constant=no_constants) for line in path.read_text().splitlines()]


@dataclass(frozen=True)
class Case:
    """A bad input: ``make(tmp, run)`` prepares files and returns the CLI arguments; the one
    error line must contain ``expect``."""

    name: str
    make: Callable[[Path, Path], list[str]]
    expect: str


def _copy(run: Path, tmp: Path) -> Path:
    dst = tmp / "copy"
    shutil.copytree(run, dst)
    return dst


def _damaged(
    file: str, damage: Callable[[Path], None], command: str = "train"
) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        dst = _copy(run, tmp)
        damage(dst / file)
        return ["train", "--resume", str(dst)] if command == "train" else ["report", str(dst), "--no-data"]

    return make


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(0).randbytes(4096))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(text)


class _Evil:
    """Pickles to a call that would create a marker file when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _evil_checkpoint(path: Path) -> None:
    state = torch.load(path, weights_only=True)
    state["model"] = _Evil(path.parent.parent / "PWNED")
    torch.save(state, path)


def _args(*args: str) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        return [a.replace("{tmp}", str(tmp)) for a in args]

    return make


def _capacity_sweep(tmp: Path, point: dict | str) -> Path:
    """A capacity sweep's run directory (as a killed ``infomorphic capacity`` leaves it) with
    ``point`` as its one finished point."""
    from infomorphic.tasks.capacity import CapacityConfig

    run = tmp / "sweep"
    run.mkdir()
    config = CapacityConfig(alphas=(0.2, 0.4), seeds=(0,), methods=("hebbian",))
    write_json(run / "config.json", {"task": "capacity", "config": config.to_dict()})
    (run / "points.jsonl").write_text((point if isinstance(point, str) else json.dumps(point)) + "\n")
    return run


def _toml(text: str) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        (tmp / "run.toml").write_text(text)
        return ["train", "--config", str(tmp / "run.toml"), "--out-dir", str(tmp / "o")]

    return make


def _toml_bytes(data: bytes) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        (tmp / "run.toml").write_bytes(data)
        return ["train", "--config", str(tmp / "run.toml"), "--out-dir", str(tmp / "o")]

    return make


def _search_dir(damage: Callable[[Path], None]) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        folder = tmp / "search"
        folder.mkdir()
        (folder / "search.json").write_text(
            json.dumps(
                {"storage": f"sqlite:///{folder / 'study.db'}", "study_name": "goal-search", "n_trials": 2}
            )
        )
        (folder / "study.db").write_bytes(b"")
        damage(folder)
        return ["search", "--out", str(folder), "--resume", "--no-progress"]

    return make


def _huge_pmf(tmp: Path, run: Path) -> list[str]:
    p = np.full((6, 6, 6, 6, 2), 1 / (6**4 * 2))
    np.save(tmp / "p.npy", p)
    return ["pid", str(tmp / "p.npy")]


def _in_use(tmp: Path, run: Path) -> list[str]:
    return ["train", "--resume", str(_copy(run, tmp))]


CASES = [
    Case(
        "threads-negative", _args("train", "--threads", "-3", "--out-dir", "{tmp}/o"), "threads must be >= 1"
    ),
    Case(
        "name-is-a-path",
        _args("train", *TINY, "--name", "../../x", "--out-dir", "{tmp}/o"),
        "not a plain folder name",
    ),
    Case(
        "name-absolute",
        _args("train", *TINY, "--name", "/tmp/x", "--out-dir", "{tmp}/o"),
        "not a plain folder name",
    ),
    Case("toml-inf", _toml("[train]\nhidden_lr = inf\n"), "hidden_lr must be a finite number"),
    Case("toml-nan", _toml("[train]\nhidden_k1 = nan\n"), "hidden_k1 must be a finite number"),
    Case("toml-mixed", _toml("epochs = 3\n[train]\nhidden = 4\n"), "mixes top-level keys"),
    Case("toml-unterminated", _toml("[train]\nname = 'a\n"), "not valid TOML"),
    Case("toml-binary", _toml_bytes(b"\xff\xfe\x00garbage"), "not valid TOML"),
    Case(
        "set-overflow",
        _args("train", "--set", "readout_lr=1e999", "--out-dir", "{tmp}/o"),
        "readout_lr must be a finite",
    ),
    Case(
        "goal-overflow",
        _args("train", *TINY, "--goal", "1e308*{F} + 1e308*{C}", "--out-dir", "{tmp}/o"),
        "overflow single-precision",
    ),
    Case("resume-config-empty-object", _damaged("config.json", _text("{}")), "no 'config' object"),
    Case("resume-config-list", _damaged("config.json", _text("[1, 2]")), "expected a JSON object"),
    Case("resume-config-not-json", _damaged("config.json", _text('{"config": ')), "config.json is not"),
    Case(
        "resume-config-bad-key",
        _damaged("config.json", _text('{"config": {"hiden": 3}}')),
        "unknown config keys",
    ),
    Case("resume-checkpoint-truncated", _damaged("checkpoint.pt", _truncate), "checkpoint.pt is not"),
    Case("resume-checkpoint-garbage", _damaged("checkpoint.pt", _garbage), "checkpoint.pt is not"),
    Case("resume-checkpoint-empty", _damaged("checkpoint.pt", _empty), "the file is empty"),
    Case(
        "resume-checkpoint-missing",  # deleted, or not copied: starting over would replace 2 epochs
        _damaged("checkpoint.pt", lambda path: path.unlink()),
        "checkpoint.pt is missing, but metrics.jsonl holds 2 epochs that the run would start over",
    ),
    Case("resume-checkpoint-code", _damaged("checkpoint.pt", _evil_checkpoint), "plain tensors"),
    Case("resume-atoms-truncated", _damaged("atoms.npz", _truncate), "atoms.npz is not"),
    Case(
        "resume-metrics-garbage",
        _damaged("metrics.jsonl", _text('{"epoch": 1}\n{"epo')),
        "metrics.jsonl is not",
    ),
    Case("resume-summary-garbage", _damaged("summary.json", _text("nonsense")), "summary.json is not"),
    Case("report-atoms-truncated", _damaged("atoms.npz", _truncate, "report"), "atoms.npz is not"),
    Case("report-checkpoint-garbage", _damaged("checkpoint.pt", _garbage, "report"), "checkpoint.pt is not"),
    Case("report-checkpoint-empty", _damaged("checkpoint.pt", _empty, "report"), "the file is empty"),
    Case("report-checkpoint-code", _damaged("checkpoint.pt", _evil_checkpoint, "report"), "plain tensors"),
    Case("report-config-empty-object", _damaged("config.json", _text("{}"), "report"), "config.json is not"),
    Case("report-summary-list", _damaged("summary.json", _text("[]"), "report"), "summary.json is not"),
    Case("pid-needs-too-much-memory", _huge_pmf, "needs about"),
    Case(
        "search-storage-unknown",
        _args("search", "--storage", "foo://", "--trials", "1", "--out", "{tmp}/s"),
        "foo://",
    ),
    Case("search-db-garbage", _search_dir(lambda d: _garbage(d / "study.db")), "study.db"),
    Case("search-json-broken", _search_dir(lambda d: (d / "search.json").write_text("{")), "search.json"),
    Case(
        "memory-alpha-inf",
        _args("train", "--task", "memory", "--alpha", "inf", "--out-dir", "{tmp}/o"),
        "alpha must be a finite number",
    ),
    Case(
        "memory-set-overflow",
        _args("train", "--task", "memory", "--set", "lr=1e999", "--out-dir", "{tmp}/o"),
        "lr must be a finite number",
    ),
    Case(
        "bars-name-is-a-path",
        _args("train", "--task", "bars", "--name", "../x", "--out-dir", "{tmp}/o"),
        "not a plain folder name",
    ),
    Case(
        "capacity-name-is-a-path",
        _args("capacity", "--neurons", "10", "--name", "a/../../x", "--out-dir", "{tmp}/o"),
        "not a plain folder name",
    ),
    Case(
        "ablate-modulation-inf",
        _args(
            "ablate",
            "--relative",
            "inf",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--out",
            "{tmp}/o",
            "--no-progress",
        ),
        "must be a finite number",
    ),
    Case("resume-run-in-use", _in_use, "in use by another running process"),
    Case(
        "capacity-resume-with-options",
        _args("capacity", "--resume", "{tmp}/x", "--neurons", "10", "--workers", "1"),
        "only --workers, --progress and --json may be given, got --neurons",
    ),
    Case(
        "search-eval-every",
        _args("search", "--dataset", "digits", "--epochs", "1", "--set", "eval_every=2", "--out", "{tmp}/o"),
        "eval_every must be 1 in a search that prunes",
    ),
    Case("capacity-resume-nothing", _args("capacity", "--resume", "{tmp}/none"), "holds no capacity sweep"),
    Case(
        "capacity-resume-a-training-run",
        lambda tmp, run: ["capacity", "--resume", str(_copy(run, tmp))],
        "is not a capacity sweep (its config.json is for another command)",
    ),
    Case(
        "capacity-resume-foreign-points",
        lambda tmp, run: ["capacity", "--resume", str(_capacity_sweep(tmp, {"alpha": 9.0, "seed": 0}))],
        "points.jsonl: point 1 (9.0, seed 0) is not one of this sweep's loads, seeds and methods",
    ),
    Case(
        "capacity-resume-points-not-json",
        lambda tmp, run: ["capacity", "--resume", str(_capacity_sweep(tmp, "{"))],
        "points.jsonl is not a valid JSON-lines file",
    ),
    Case(
        "tensorboard-backprop",
        _args("train", "--network", "backprop", "--tensorboard", "--out-dir", "{tmp}/o"),
        "--network backprop has none",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    case: Case, tmp_path: Path, finished_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = case.make(tmp_path, finished_run)
    if case.name == "pid-needs-too-much-memory":
        monkeypatch.setattr("infomorphic.pid.numpy_sx.available_memory", lambda: 2**20)  # 1 MiB "available"
    holder = claim_run_dir(tmp_path / "copy", resume=True) if case.name == "resume-run-in-use" else None
    before = _snapshot(tmp_path)
    try:
        res = runner.invoke(app, args)
    finally:
        if holder is not None:
            holder.release()
    assert res.exit_code == 2, (args, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert _snapshot(tmp_path) == before, "a failed command wrote files"
    assert not (tmp_path / "PWNED").exists(), "loading a checkpoint executed code"
    assert not (tmp_path.parent / "x").exists()


# ----------------------------------------------------------------- data integrity
def test_training_that_diverges_stops_naming_epoch_and_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NaN goal in epoch 2 stops the run (exit 1) and keeps epoch 1's checkpoint and valid JSON files."""
    import infomorphic.train.loop as loop

    real_step, calls = loop.train_step, {"n": 0}

    def step(net, optimizers, x, y, sampler=None):  # noqa: ANN001, ANN202
        goals = real_step(net, optimizers, x, y, sampler)
        calls["n"] += 1
        if calls["n"] > 5:  # digits: 5 batches of 256 per epoch -> epoch 2
            goals["readout"] = goals["readout"] * float("nan")
        return goals

    monkeypatch.setattr(loop, "train_step", step)
    res = runner.invoke(app, ["train", *TINY, "--epochs", "3", "--out-dir", str(tmp_path), "--name", "r"])
    assert res.exit_code == 1, res.output
    (line,) = res.stderr.strip().splitlines()
    assert (
        "diverged in epoch 2" in line and "readout layer" in line and "checkpoint of epoch 1 is kept" in line
    )
    run = tmp_path / "r"
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == 1
    assert [m["epoch"] for m in _strict_json_lines(run / "metrics.jsonl")] == [1]


def test_nan_weights_stop_the_run_at_the_end_of_their_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import infomorphic.train.loop as loop

    real_step = loop.train_step

    def step(net, optimizers, x, y, sampler=None):  # noqa: ANN001, ANN202
        goals = real_step(net, optimizers, x, y, sampler)
        if len(x) < 256:  # the last, shorter batch of the epoch: no goal is computed after it
            with torch.no_grad():
                next(net.layers()["hidden"].parameters()).view(-1)[0] = float("inf")
        return goals

    monkeypatch.setattr(loop, "train_step", step)
    res = runner.invoke(app, ["train", *TINY, "--epochs", "2", "--out-dir", str(tmp_path), "--name", "r"])
    assert res.exit_code == 1, res.output
    assert "diverged in epoch 1: the hidden layer's weights" in res.stderr
    assert "no epoch finished" in res.stderr
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_json_files_never_hold_nan(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"x": float("nan"), "y": [np.float32(np.inf), 1.5], "z": np.arange(2)})
    write_jsonl(tmp_path / "b.jsonl", [{"x": -float("inf")}, {"x": 2.0}])
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=pytest.fail) == {
        "x": None,
        "y": [None, 1.5],
        "z": [0, 1],
    }
    assert _strict_json_lines(tmp_path / "b.jsonl") == [{"x": None}, {"x": 2.0}]


def test_a_backprop_baseline_without_epochs_writes_valid_json(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "train",
            *TINY[:-3],
            "--baselines",
            "backprop",
            "--set",
            "backprop_epochs=0",
            "--epochs",
            "1",
            "--out-dir",
            str(tmp_path),
            "--name",
            "r",
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "r" / "baselines.json").read_text(), parse_constant=pytest.fail)
    assert saved["backprop"]["test_acc"] is None


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_run_files_get_the_users_usual_permissions(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        res = runner.invoke(app, ["train", *TINY, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "r"])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r").iterdir()}
    assert {"config.json", "metrics.jsonl", "atoms.npz", "checkpoint.pt", "summary.json"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_resuming_a_finished_run_keeps_everything_it_had(tmp_path: Path, finished_run: Path) -> None:
    run = _copy(finished_run, tmp_path)
    before = json.loads((run / "summary.json").read_text())
    assert np.asarray(before["confusion_test"]).sum() > 0
    res = runner.invoke(app, ["train", "--resume", str(run), "--no-progress"])
    assert res.exit_code == 0, res.output
    after = json.loads((run / "summary.json").read_text())
    assert set(before) <= set(after)
    assert after["confusion_test"] == before["confusion_test"]
    for key in ("test_acc", "val_acc", "epochs", "best_val_epoch"):
        assert after[key] == before[key]


def test_stale_temporaries_are_removed_when_the_run_is_next_opened(
    tmp_path: Path, finished_run: Path
) -> None:
    run = _copy(finished_run, tmp_path)
    stale = [run / ".checkpoint.pt.k3j4h5.tmp", run / ".metrics.jsonl.vm-2147483647.0badc0de.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    res = runner.invoke(app, ["train", "--resume", str(run), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in stale)
    assert not list(run.glob(".*.tmp"))


def test_only_temporaries_of_dead_writers_are_removed_from_shared_folders(tmp_path: Path) -> None:
    import socket

    from infomorphic.runs import _HOST

    live = tmp_path / f".best.json.{_HOST}-{os.getpid()}.0123abcd.tmp"
    dead = tmp_path / f".best.json.{_HOST}-2147483647.0123abcd.tmp"
    other_host = tmp_path / ".best.json.elsewhere-1.0123abcd.tmp"
    for p in (live, dead, other_host):
        p.write_text("x")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert live.exists() and other_host.exists() and socket.gethostname()


def test_a_run_killed_before_its_first_checkpoint_can_be_resumed(tmp_path: Path, finished_run: Path) -> None:
    run = tmp_path / "early"
    run.mkdir()
    shutil.copy(finished_run / "config.json", run / "config.json")
    res = runner.invoke(app, ["train", "--resume", str(run), "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    assert [m["epoch"] for m in _strict_json_lines(run / "metrics.jsonl")] == [1, 2]
    # and a new run of that name is refused instead of overwriting it
    res = runner.invoke(app, ["train", *TINY, "--epochs", "1", "--out-dir", str(tmp_path), "--name", "early"])
    assert res.exit_code == 2 and "already holds a run" in res.stderr


# ------------------------------------------------------------- real processes
def _train_cmd(out: Path, name: str, epochs: int, *extra: str) -> list[str]:
    return [
        *CLI,
        "train",
        "--dataset",
        "digits",
        "--hidden",
        "32",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--baselines",
        "none",
        "--no-progress",
        "--epochs",
        str(epochs),
        "--out-dir",
        str(out),
        "--name",
        name,
        *extra,
    ]


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "INFOMORPHIC_DATA_DIR": str(tmp / "data"), "PYTHONUNBUFFERED": "1"}


EPOCHS = 20


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """An uninterrupted run (in a process, as the killed ones) and its seconds of training."""
    out = tmp_path_factory.mktemp("reference")
    done = subprocess.run(
        _train_cmd(out, "ref", EPOCHS), env=_env(out), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    metrics = _strict_json_lines(out / "ref" / "metrics.jsonl")
    return out / "ref", sum(m["train_seconds"] + m["eval_seconds"] for m in metrics)


def _epochs_done(run: Path) -> int:
    try:
        return len((run / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


def _same_run(a: Path, b: Path) -> None:
    timing = {"train_seconds", "eval_seconds"}
    ma = [{k: v for k, v in m.items() if k not in timing} for m in _strict_json_lines(a / "metrics.jsonl")]
    mb = [{k: v for k, v in m.items() if k not in timing} for m in _strict_json_lines(b / "metrics.jsonl")]
    assert ma == mb
    with np.load(a / "atoms.npz") as na, np.load(b / "atoms.npz") as nb:
        assert sorted(na.files) == sorted(nb.files)
        for key in na.files:
            np.testing.assert_array_equal(na[key], nb[key])
    ca, cb = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert ca["epoch"] == cb["epoch"] == EPOCHS
    assert all(torch.equal(ca["model"][k], cb["model"][k]) for k in ca["model"])
    sa, sb = json.loads((a / "summary.json").read_text()), json.loads((b / "summary.json").read_text())
    assert sa["confusion_test"] == sb["confusion_test"] and sa["test_acc"] == sb["test_acc"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_train_killed_at_random_points_resumes_to_identical_results(
    tmp_path: Path, reference: tuple[Path, float], seed: int
) -> None:
    """SIGKILL once or twice at random moments (also while files are written), then resume."""
    ref, seconds = reference
    rng = random.Random(seed)
    run = tmp_path / "killed"
    cmd = _train_cmd(tmp_path, "killed", EPOCHS)
    kills = 0
    for attempt in range(1 + seed % 2 + 1):  # seeds 0, 2: one kill; seed 1: two kills
        proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # kill at a random moment of a random epoch that leaves at least two epochs to run, found by
        # watching the run's progress (not by wall time: the machine's speed varies)
        epoch = rng.randrange(0, EPOCHS - 2)
        deadline = time.monotonic() + 120
        while (
            proc.poll() is None
            and time.monotonic() < deadline
            and not ((run / "config.json").exists() and _epochs_done(run) >= epoch)
        ):
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, seconds / EPOCHS))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        cmd = [*CLI, "train", "--resume", str(run), "--no-progress", "--threads", "1"]
        if attempt == seed % 2:
            break
    done = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert kills >= 1, "the run finished before it could be killed; lengthen it"
    assert not list(run.glob(".*.tmp"))
    _same_run(ref, run)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_train_stopped_by_ctrl_c_or_sigterm_says_how_to_resume(
    tmp_path: Path, reference: tuple[Path, float], how: str
) -> None:
    """Ctrl-C (SIGINT to the process group) or ``kill PID`` / a scheduler's limit (SIGTERM): exit
    130 and one line naming the run and the command that continues it, no traceback (before:
    Ctrl-C exited 130 saying nothing, SIGTERM died saying nothing); that command then finishes
    the run with the uninterrupted run's results."""
    ref, seconds = reference
    run = tmp_path / "stopped"
    proc = subprocess.Popen(
        _train_cmd(tmp_path, "stopped", EPOCHS),
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and _epochs_done(run) < 3:
        time.sleep(0.01)
    time.sleep(random.Random(how).uniform(0.0, seconds / EPOCHS))
    assert proc.poll() is None, "the run finished before it could be stopped; lengthen it"
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith(f"stopped; the epochs finished so far are saved in {run}.")
    resume = lines[-1].split("Continue with: ")[1].split()
    assert resume == ["infomorphic", "train", "--resume", str(run)]
    done = subprocess.run(
        [*CLI, *resume[1:], "--no-progress"], env=_env(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert not list(run.glob(".*.tmp"))
    _same_run(ref, run)


def test_a_stop_that_breaks_a_librarys_clean_up_is_still_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C landing inside ``torch.save`` unwinds through its zip writer, whose clean-up fails
    on its own ("unexpected pos 64 vs 0") and replaces the ``KeyboardInterrupt``: still exit 130
    and the one line, not that error's traceback."""
    import infomorphic.train as train

    def stopped_in_a_save(*args: Any, **kwargs: Any) -> Any:
        (kwargs["run_dir"]).mkdir(parents=True)
        (kwargs["run_dir"] / "config.json").write_text("{}")
        try:
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(train, "fit", stopped_in_a_save)
    res = CliRunner().invoke(app, ["train", *TINY, "--out-dir", str(tmp_path), "--name", "r"])
    assert res.exit_code == 130, (res.stderr, res.exception)
    assert res.stderr.strip() == (
        f"stopped; the epochs finished so far are saved in {tmp_path / 'r'}. "
        f"Continue with: infomorphic train --resume {tmp_path / 'r'}"
    )


def test_a_stop_before_the_run_started_says_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the data load (before the run directory exists): no resume command that
    would fail ("cannot resume: ... does not exist"), and no directory left behind."""
    import infomorphic.train as train

    def stopped_while_loading(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "fit", stopped_while_loading)
    res = CliRunner().invoke(app, ["train", *TINY, "--out-dir", str(tmp_path), "--name", "r"])
    assert res.exit_code == 130, (res.stderr, res.exception)
    assert res.stderr.strip() == "stopped before the run started; nothing was written"
    assert not (tmp_path / "r").exists()


def test_two_runs_with_the_same_name_one_is_refused(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            _train_cmd(tmp_path, "same", 3),
            env=_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip().splitlines()
    assert len(refused) == 1 and (
        "in use by another running process" in refused[0] or "already holds a run" in refused[0]
    ), refused
    assert [m["epoch"] for m in _strict_json_lines(tmp_path / "same" / "metrics.jsonl")] == [1, 2, 3]


def test_a_second_process_is_refused_while_the_first_trains(tmp_path: Path) -> None:
    first = subprocess.Popen(
        _train_cmd(tmp_path, "busy", 200),
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "busy" / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(
            [*CLI, "train", "--resume", str(tmp_path / "busy"), "--no-progress"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2
        (line,) = second.stderr.strip().splitlines()
        assert "in use by another running process" in line and f"pid {first.pid}" in line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the dead holder blocks nothing: the run resumes (here: for one more epoch than it has)
    epochs = load_checkpoint(tmp_path / "busy" / "checkpoint.pt")["epoch"] + 1
    again = subprocess.run(
        [*CLI, "train", "--resume", str(tmp_path / "busy"), "--epochs", str(epochs), "--no-progress"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr


def _backprop_history(run: Path) -> list[dict]:
    history = json.loads((run / "baselines.json").read_text())["backprop"]["history"]
    return [{k: v for k, v in m.items() if k != "train_seconds"} for m in history]


def test_a_run_killed_while_its_backprop_baseline_trains_continues_the_baseline(tmp_path: Path) -> None:
    """The backprop baseline (up to half of a deep run's time) was trained again from its first
    epoch after a crash; now ``--resume`` continues it after its last finished epoch and ends
    with the same figures as an uninterrupted run."""

    def cmd(name: str) -> list[str]:
        command = _train_cmd(tmp_path, name, 1, "--set", "backprop_epochs=40")
        at = command.index("--baselines")
        return [*command[:at], "--baselines", "backprop", *command[at + 2 :]]

    ref = subprocess.run(cmd("ref"), env=_env(tmp_path), capture_output=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    run, state = tmp_path / "killed", tmp_path / "killed" / "backprop-checkpoint.pt"
    proc = subprocess.Popen(cmd("killed"), env=_env(tmp_path), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if len(load_checkpoint(state)["history"]) >= 3:
                break
        except ValueError:  # not written yet
            pass
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed; lengthen its baseline"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    kept = load_checkpoint(state)["history"]
    assert 3 <= len(kept) < 40 and not (run / "baselines.json").exists()
    done = subprocess.run(
        [*CLI, "train", "--resume", str(run), "--no-progress", "--threads", "1"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert _backprop_history(run) == _backprop_history(tmp_path / "ref")
    # the epochs done before the kill were not trained again: their timings are the killed process's
    resumed = json.loads((run / "baselines.json").read_text())["backprop"]["history"]
    assert [m["train_seconds"] for m in resumed[: len(kept)]] == [m["train_seconds"] for m in kept]
    assert not state.exists() and not (tmp_path / "ref" / "backprop-checkpoint.pt").exists()


def test_a_backprop_checkpoint_of_another_network_is_refused(tmp_path: Path) -> None:
    from infomorphic.train.baselines import BackpropNetwork, fit_backprop

    x, y = torch.randn(64, 6), torch.randint(0, 3, (64,))

    def fit(hidden: int, epochs: int) -> list[dict[str, float]]:
        return fit_backprop(
            BackpropNetwork(6, 3, hidden, None, torch.Generator().manual_seed(0)),
            (x, y),
            lambda m: {},
            epochs=epochs,
            batch_size=16,
            lr=1e-3,
            seed_generator=lambda *n, device="cpu": torch.Generator().manual_seed(len(n)),
            checkpoint=tmp_path / "bp.pt",
        )

    assert len(fit(4, 2)) == 2
    assert len(fit(4, 3)) == 3  # continued: one more epoch
    with pytest.raises(ValueError, match=r"bp.pt is not a checkpoint of this backprop network .*delete it"):
        fit(5, 4)


def _capacity_points(run: Path) -> list[dict]:
    points = json.loads((run / "summary.json").read_text())["points"]
    return [{k: v for k, v in p.items() if k not in ("seconds", "cpu_seconds")} for p in points]


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_a_killed_capacity_sweep_resumes_to_the_same_points(tmp_path: Path, how: str) -> None:
    """A capacity sweep (hours at N = 100) kept its points only in memory: killed, it lost them
    all, and its run directory could only be abandoned (the error pointed to a --resume that the
    command did not have).  Now each finished point is in points.jsonl at once and ``capacity
    --resume`` computes only the rest, with the same points and capacities as a sweep that ran
    through (here resumed with another number of workers).  SIGTERM (``kill``, a scheduler's
    limit) to a sweep with two workers: exit 130 and one line saying how many points are kept and
    how to go on (before: "Aborted!" only after the workers had run every queued point)."""
    sweep = ["capacity", "--neurons", "40", "--seeds", "0,1", "--grid", "0.2:1.4:0.2", "--max-epochs", "400"]
    sweep = [*CLI, *sweep, "--methods", "infomorphic,hebbian", "--no-progress", "--json"]
    sweep += ["--out-dir", str(tmp_path), "--name"]
    ref = subprocess.run(
        [*sweep, "ref", "--workers", "1"], env=_env(tmp_path), capture_output=True, timeout=300
    )
    assert ref.returncode == 0, ref.stderr
    run, points = tmp_path / "killed", tmp_path / "killed" / "points.jsonl"
    workers = "1" if how == "sigkill" else "2"
    proc = subprocess.Popen(
        [*sweep, "killed", "--workers", workers],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and _lines(points) < 2:
        time.sleep(0.01)
    assert proc.poll() is None, "the sweep finished before it could be killed; lengthen it"
    proc.send_signal(signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    kept = [json.loads(line) for line in points.read_text().splitlines()]
    assert 2 <= len(kept) < 14 and not (run / "summary.json").exists()
    if how == "sigterm":
        assert proc.returncode == 130 and stderr.strip() == (
            f"stopped; {len(kept)} of 14 points are saved in {run}. Continue with: infomorphic capacity --resume {run}"
        ), stderr
    again = subprocess.run(
        [*sweep, "killed", "--workers", "1"], env=_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and f"pass --resume {run} to continue it" in again.stderr
    done = subprocess.run(
        [*CLI, "capacity", "--resume", str(run), "--workers", "2", "--no-progress", "--json"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["resumed_points"] == len(kept)
    assert _capacity_points(run) == _capacity_points(tmp_path / "ref")
    summary, reference = (json.loads((r / "summary.json").read_text()) for r in (run, tmp_path / "ref"))
    assert summary["capacity"] == reference["capacity"]
    # the points finished before the kill were not computed again: their timings are the killed process's
    by_point = {(p["alpha"], p["seed"]): p["seconds"] for p in summary["points"]}
    assert all(by_point[(p["alpha"], p["seed"])] == p["seconds"] for p in kept)


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0
