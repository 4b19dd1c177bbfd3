"""experiments/search_progress.py: how searches progressed, from their exported trials."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from experiment_scripts import ROOT

SCRIPT = ROOT / "experiments" / "search_progress.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def _trial(number: int, value: float | None, state: str = "COMPLETE", **attrs: object) -> str:
    return json.dumps({"number": number, "state": state, "value": value, "params": {}, "user_attrs": attrs})


def test_own_trials_blocks_and_best_are_counted_without_the_warm_start(tmp_path: Path) -> None:
    lines = [
        _trial(0, 0.95, warm_start="a.jsonl:1"),  # warm: sets the start level only
        _trial(1, 0.5, warm_start="a.jsonl:2"),
        _trial(5, 0.90, test_acc=0.91, trust_region={"radius": 0.2}),
        _trial(3, 0.80, trust_region={"radius": 0.2}),  # read in the order of the numbers
        _trial(4, None, state="RUNNING"),
        _trial(6, 0.70, state="PRUNED"),
        _trial(7, 0.92, test_acc=0.9, trust_region={"radius": 0.1}),
        "",
    ]
    file = tmp_path / "s.jsonl"
    file.write_text("\n".join(lines))
    figure = tmp_path / "fig" / "p.png"
    result = _run(
        "--search", f"GP={file}", "--reference", "published=0.94", "--block", "2", "--figure", str(figure)
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    gp = out["searches"]["GP"]
    assert (gp["own_trials"], gp["warm_start_trials"], gp["warm_start_best"]) == (3, 2, 95.0)
    assert gp["best"] == {"number": 7, "val_acc": 92.0, "test_acc": 90.0}
    assert gp["blocks"] == [
        {"trials": "3-5", "best": 90.0, "median": 85.0},
        {"trials": "7-7", "best": 92.0, "median": 92.0},
    ]
    assert out["references"] == {"published": 0.94}
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_one_line_and_nothing_is_written(tmp_path: Path) -> None:
    good = tmp_path / "g.jsonl"
    good.write_text(_trial(0, 0.9) + "\n")
    bad = tmp_path / "b.jsonl"
    bad.write_text(_trial(0, 0.9) + "\n{oops\n")
    figure = tmp_path / "p.png"
    for args, message in [
        (["--search", str(good)], "must be LABEL=VALUE"),
        (["--search", f"x={tmp_path / 'missing.jsonl'}"], "no such file"),
        (["--search", f"x={bad}"], "b.jsonl:2: not a JSON line"),
        (["--search", f"x={good}", "--search", f"x={good}"], "given twice"),
        (["--search", f"x={good}", "--reference", "p=95"], "not a fraction"),
        (["--search", f"x={good}", "--reference", "p=high"], "not a number"),
        (["--search", f"x={good}", "--block", "0"], "--block must be >= 1"),
    ]:
        result = _run(*args, "--figure", str(figure))
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and not figure.exists()
