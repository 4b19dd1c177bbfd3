"""Experiment sweeps that share an output folder: who holds a run directory
(``infomorphic.runs.run_holder``), the experiments' launcher (``experiments/_train_run.py``) and
two size sweeps run at once on one ``--out``."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from experiment_scripts import load_experiment

from infomorphic.runs import claim_run_dir, read_json, read_jsonl, run_holder

ROOT = Path(__file__).resolve().parents[1]


launcher = load_experiment("_train_run")
sweep = load_experiment("size_sweep")


def test_run_holder_names_the_live_holder_and_forgets_a_killed_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_holder(run) is None  # no directory
    run.mkdir()
    assert run_holder(run) is None  # no lock file
    with claim_run_dir(run, resume=False):
        holder = run_holder(run)
        assert holder is not None and f"pid {os.getpid()}" in holder and holder.startswith("host ")
    assert run_holder(run) is None  # released

    # another process holds it, then is killed with SIGKILL: free again at once
    code = (
        "import sys, time; from infomorphic.runs import claim_run_dir;"
        f"c = claim_run_dir({str(run)!r}, resume=False); print('held', flush=True); time.sleep(600)"
    )
    holder_process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder_process.stdout is not None and holder_process.stdout.readline().strip() == "held"
        holder = run_holder(run)
        assert holder is not None and f"pid {holder_process.pid}" in holder
    finally:
        holder_process.send_signal(signal.SIGKILL)
        holder_process.wait()
    assert run_holder(run) is None
    # looking took no lock: the directory can be claimed right after
    with claim_run_dir(run, resume=False):
        pass


def test_a_run_that_another_process_holds_is_left_to_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "digits-random-n3-seed0"
    with claim_run_dir(run, resume=False):  # e.g. a second sweep training it
        status = sweep.run_one(tmp_path, "digits", "random", 3, 0, epochs=1, threads=1)
    assert status == "busy"
    (line,) = capsys.readouterr().err.strip().splitlines()
    record = json.loads(line)
    assert record["run"] == run.name and record["skipped"].startswith("another process trains it (host ")
    assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing was started in it


def _python(tmp_path: Path, code: str) -> list[str]:
    script = tmp_path / f"cmd{len(list(tmp_path.glob('cmd*.py')))}.py"
    script.write_text(code)
    return [sys.executable, str(script)]


def test_a_start_that_loses_the_race_for_a_new_run_continues_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    calls: list[str] = []
    # the first start finds the run created by someone else meanwhile and is refused (exit 2);
    # the launcher looks again and continues it (the second command)
    refused = _python(
        tmp_path, f"import sys; open({str(run / 'config.json')!r}, 'w').write('{{}}'); sys.exit(2)"
    )
    resumed = _python(tmp_path, "pass")

    def command() -> list[str]:
        calls.append("resume" if (run / "config.json").exists() else "new")
        return resumed if calls[-1] == "resume" else refused

    assert launcher.train_run(run, command) == "trained"
    assert calls == ["new", "resume"]
    assert capsys.readouterr().err == ""


def test_a_failing_run_is_reported_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    failing = _python(tmp_path, "import sys; print('error: the data are gone', file=sys.stderr); sys.exit(2)")
    calls: list[int] = []

    def command() -> list[str]:
        calls.append(1)
        return failing

    assert launcher.train_run(run, command) == "failed"
    assert len(calls) == 1  # nothing raced: not tried again
    record = json.loads(capsys.readouterr().err)
    assert record == {"run": "run", "error": ["error: the data are gone"]}
    assert launcher.report_statuses(["trained", "failed", "busy", "reused"]) == 1
    err = capsys.readouterr().err
    assert "1 run(s) were being trained by another process" in err and "1 run(s) failed" in err


SWEEP = "--dataset digits --models setup1 --sizes 3 --seeds 0 1 --epochs 2 --workers 2 --set batch_size=256".split()


def test_two_sweeps_on_one_folder_train_every_run_once_without_errors(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "experiments" / "size_sweep.py"), *SWEEP, "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = [p.communicate(timeout=600) for p in (first, second)]
    for process, (stdout, stderr) in zip((first, second), results):
        assert process.returncode == 0, stderr
        for line in stderr.strip().splitlines():  # only runs left to the other sweep, no errors
            if line.startswith("{"):
                assert set(json.loads(line)) == {"run", "skipped"}, line
            else:
                assert "run(s) were being trained by another process" in line, line
        assert json.loads(stdout.strip().splitlines()[-1])["experiment"] == "size_sweep"
    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in runs] == sorted(f"digits-setup1-n3-seed{s}" for s in (0, 1))
    for run in runs:  # each trained once, to the end: one record per epoch, a final summary
        assert [r["epoch"] for r in read_jsonl(run / "metrics.jsonl")] == [1, 2]
        assert read_json(run / "summary.json")["epochs"] == 2
    with (out / "size_sweep.csv").open() as fh:
        (row,) = csv.DictReader(fh)  # one whole table, whichever sweep wrote last
    assert row["model"] == "setup1" and row["finished"] == "2"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "kill"])
def test_a_sweep_that_ends_stops_the_training_it_started(tmp_path: Path, how: signal.Signals) -> None:
    # the training: notes its pid, then waits to be stopped (as infomorphic train stops on SIGTERM)
    child = _python(
        tmp_path,
        "import os, signal, sys, time\n"
        f"open({str(tmp_path / 'child.pid')!r}, 'w').write(str(os.getpid()))\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (open({str(tmp_path / 'stopped')!r}, 'w').close(), sys.exit(130)))\n"
        "time.sleep(120)\n",
    )
    # the sweep: the experiments' launcher trains one run with it in a worker thread
    sweep_code = (
        "import sys; from concurrent.futures import ThreadPoolExecutor; from pathlib import Path\n"
        f"sys.path.insert(0, {str(ROOT / 'experiments')!r})\n"
        "from _train_run import train_run\n"
        "with ThreadPoolExecutor(1) as pool:\n"
        f"    pool.submit(train_run, Path({str(tmp_path / 'run')!r}), lambda: {child!r}).result()\n"
    )
    sweep_process = subprocess.Popen(_python(tmp_path, sweep_code))
    pid_file = tmp_path / "child.pid"
    try:
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # its SIGTERM handler is installed
        sweep_process.send_signal(how)
        sweep_process.wait(timeout=30)
        deadline = time.monotonic() + 20
        while not (tmp_path / "stopped").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "stopped").exists(), "the training went on after its sweep ended"
    finally:
        if sweep_process.poll() is None:
            sweep_process.kill()
        if pid_file.exists() and pid_file.read_text() and not (tmp_path / "stopped").exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
