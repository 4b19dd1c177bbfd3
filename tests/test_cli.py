"""Tests for the ``infomorphic`` command line (``infomorphic.cli``)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from infomorphic.cli import app
from infomorphic.pid.distributions import CATALOGUE, get

runner = CliRunner()

AND_CSV = "S1,S2,T\n0,0,0\n0,1,0\n1,0,0\n1,1,1\n"


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def atoms_of(payload: dict[str, object]) -> dict[str, float]:
    return {a["name"]: a["value"] for a in payload["atoms"]}  # type: ignore[index, union-attr]


def pid_json(*args: str) -> object:
    code, out, err = invoke("pid", "--json", *args)
    assert code == 0, err
    return json.loads(out)


# ------------------------------------------------------------------------------ top level
def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0
    assert out.startswith("infomorphic ") and out.strip().split()[-1][0].isdigit()


def test_python_dash_m_runs_the_command_line() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "infomorphic", "--version"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == runner.invoke(app, ["--version"]).stdout.strip()


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "pid" in result.output and "Usage" in result.output


# ------------------------------------------------------------------------------ examples
def test_pid_example_xor_json_atoms() -> None:
    payload = pid_json("--example", "xor")
    assert isinstance(payload, dict)
    assert payload["input"] == "xor" and payload["unit"] == "bits"
    assert payload["sources"] == ["F", "C"] and payload["target"] == "T"
    atoms = atoms_of(payload)
    assert atoms["{F}"] == pytest.approx(0.584963, abs=1e-6)
    assert atoms["{C}"] == pytest.approx(0.584963, abs=1e-6)
    assert atoms["{F}{C}"] == pytest.approx(-0.584963, abs=1e-6)
    assert atoms["{FC}"] == pytest.approx(0.415037, abs=1e-6)
    assert payload["target_entropy"] == pytest.approx(1.0)
    assert payload["residual_entropy"] == pytest.approx(0.0, abs=1e-12)
    assert payload["mutual_information"] == pytest.approx({"F": 0.0, "C": 0.0, "FC": 1.0}, abs=1e-12)


def test_pid_several_examples_json_is_a_list() -> None:
    payload = pid_json("--example", "xor3", "--example", "and")
    assert isinstance(payload, list) and [p["input"] for p in payload] == ["xor3", "and"]
    xor3 = atoms_of(payload[0])
    assert len(xor3) == 18
    assert xor3["{F}{C}{L}"] == pytest.approx(math.log2(8 / 7), abs=1e-9)
    assert xor3["{FC}{FL}{CL}"] == pytest.approx(math.log2(875 / 1024), abs=1e-9)
    assert sum(xor3.values()) == pytest.approx(1.0)
    assert atoms_of(payload[1])["{F}{C}"] == pytest.approx(0.122556, abs=1e-6)


def test_pid_example_names_option() -> None:
    payload = pid_json("-e", "and", "--names", "X1,X2")
    assert set(atoms_of(payload)) == {"{X1}{X2}", "{X1}", "{X2}", "{X1,X2}"}
    assert payload["mutual_information"]["X1,X2"] == pytest.approx(0.811278, abs=1e-6)


def test_pid_human_output_shows_atoms_and_information() -> None:
    code, out, err = invoke("pid", "--example", "xor3", "--example", "and")
    assert code == 0 and err == ""
    for text in (
        "xor3",
        "and",
        "unit: bits",
        "sources F, C, L",
        "informative",
        "misinformative",
        "{F}{C}{L}",
        "{FCL}",
        "0.192645",
        "H(T)",
        "I(T : F,C,L)",
        "H(T | F,C,L)",
        "0.122556",
        "0.311278",
        "I(T : F,C)",
        "H(T | F,C)",
    ):
        assert text in out, text


def test_pid_list_examples() -> None:
    code, out, _ = invoke("pid", "--list-examples")
    assert code == 0
    for name in CATALOGUE:
        assert name in out
    assert "three-bit parity" in out
    listing = pid_json("--list-examples")
    assert [e["name"] for e in listing] == list(CATALOGUE)
    assert {e["name"]: e["n_sources"] for e in listing}["xor4"] == 4


# --------------------------------------------------------------------------------- files
def test_pid_csv_samples_and(tmp_path: Path) -> None:
    path = tmp_path / "and.csv"
    path.write_text(AND_CSV)
    payload = pid_json(str(path))
    assert payload["input"] == str(path) and payload["kind"] == "samples"
    assert payload["sources"] == ["S1", "S2"] and payload["target"] == "T"
    atoms = atoms_of(payload)
    assert atoms["{S1}{S2}"] == pytest.approx(0.122556, abs=1e-6)
    assert atoms["{S1}"] == pytest.approx(0.188722, abs=1e-6)
    assert atoms["{S2}"] == pytest.approx(0.188722, abs=1e-6)
    assert atoms["{S1,S2}"] == pytest.approx(0.311278, abs=1e-6)

    code, out, _ = invoke("pid", str(path))
    assert code == 0 and "{S1}{S2}" in out and "sources S1, S2 -> target T" in out


def test_pid_csv_probability_table_equals_npy(tmp_path: Path) -> None:
    pmf = get("copy")
    np.save(tmp_path / "copy.npy", pmf)
    lines = ["a,b,t,prob"] + [f"{i},{j},{k},{pmf[i, j, k]}" for i, j, k in np.ndindex(*pmf.shape)]
    (tmp_path / "copy.csv").write_text("\n".join(lines) + "\n")
    from_npy = pid_json(str(tmp_path / "copy.npy"), "--names", "a,b")
    from_csv = pid_json(str(tmp_path / "copy.csv"))
    assert from_csv["kind"] == "probabilities"
    assert atoms_of(from_csv) == pytest.approx(atoms_of(from_npy), abs=1e-12)
    assert atoms_of(from_csv)["{a}{b}"] == pytest.approx(0.415037, abs=1e-6)


def test_pid_json_file_agrees_with_csv(tmp_path: Path) -> None:
    (tmp_path / "and.csv").write_text(AND_CSV)
    records = [{"S1": a, "S2": b, "T": a & b} for a in (0, 1) for b in (0, 1)]
    (tmp_path / "and.json").write_text(json.dumps(records))
    assert atoms_of(pid_json(str(tmp_path / "and.json"))) == pytest.approx(
        atoms_of(pid_json(str(tmp_path / "and.csv"))), abs=1e-12
    )


def test_pid_target_sources_and_prob_column_options(tmp_path: Path) -> None:
    lines = ["y,w,x1,x2"] + [f"{a & b},0.25,{a},{b}" for a in (0, 1) for b in (0, 1)]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    payload = pid_json(str(tmp_path / "t.csv"), "--target", "y", "--sources", "x2, x1", "--prob-column", "w")
    assert payload["sources"] == ["x2", "x1"] and payload["target"] == "y"
    assert atoms_of(payload)["{x2}{x1}"] == pytest.approx(0.122556, abs=1e-6)


def test_pid_normalize(tmp_path: Path) -> None:
    np.save(tmp_path / "counts.npy", 8 * get("xor"))
    code, _, err = invoke("pid", str(tmp_path / "counts.npy"))
    assert code == 2 and "--normalize" in err
    payload = pid_json(str(tmp_path / "counts.npy"), "--normalize")
    assert atoms_of(payload)["{FC}"] == pytest.approx(0.415037, abs=1e-6)


# -------------------------------------------------------------------------------- errors
ERROR_CASES: list[tuple[str, str, list[str], str]] = [
    # (id, file content or "" for no file, arguments with {f} for the file, expected message part)
    ("nothing", "", ["pid"], "give a FILE or at least one --example"),
    ("both", AND_CSV, ["pid", "{f}", "--example", "xor"], "not both"),
    ("unknown example", "", ["pid", "-e", "nope"], "unknown example 'nope'"),
    ("example with target", "", ["pid", "-e", "xor", "--target", "T"], "--target only apply to table files"),
    ("list with example", "", ["pid", "--list-examples", "-e", "xor"], "--list-examples takes no"),
    (
        "wrong names count",
        "",
        ["pid", "-e", "xor3", "--names", "A,B"],
        "need 3 source labels|got 2 source labels",
    ),
    ("empty name", "", ["pid", "-e", "xor", "--names", "A,,B"], "--names expects comma-separated names"),
    ("missing file", "", ["pid", "{missing}"], "cannot read .*nope.csv: No such file"),
    ("directory", "", ["pid", "{dir}"], "unsupported file type|cannot read"),
    ("extension", "x", ["pid", "{f}.txt"], "unsupported file type '.txt'"),
    ("empty csv", "", ["pid", "{f}"], "the file is empty"),
    (
        "bad column",
        AND_CSV,
        ["pid", "{f}", "--target", "Q"],
        "target column 'Q' not found; available columns: S1, S2, T",
    ),
    (
        "target is source",
        AND_CSV,
        ["pid", "{f}", "--target", "T", "--sources", "S1,T"],
        "both the target and a source",
    ),
    ("row length", "A,B,T\n0,0\n", ["pid", "{f}"], "line 2: expected 3 values"),
    ("non-numeric p", "A,B,T,p\n0,0,0,x\n", ["pid", "{f}"], "non-numeric value 'x'"),
    ("negative p", "A,B,T,p\n0,0,0,2\n1,1,1,-1\n", ["pid", "{f}"], "negative mass"),
    ("sum p", "A,B,T,p\n0,0,0,0.5\n", ["pid", "{f}"], "sums to 0.5, not 1"),
    ("one source", "A,T\n0,0\n", ["pid", "{f}"], "need between 2 and 4 source columns, got 1"),
    ("five sources", "A,B,C,D,E,T\n0,0,0,0,0,0\n", ["pid", "{f}"], "got 5"),
    ("bad json", "{", ["pid", "{f}.json"], "not valid JSON"),
    ("json form", '{"x": 1}', ["pid", "{f}.json"], "unrecognised JSON object"),
    ("bad npy", "junk", ["pid", "{f}.npy"], "not a valid .npy array file"),
]


@pytest.mark.parametrize(
    ("content", "args", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_pid_malformed_input_exits_2_with_one_line(
    tmp_path: Path, content: str, args: list[str], message: str
) -> None:
    base = tmp_path / "data"
    for suffix in (".csv", ".json", ".npy", ".txt"):
        (tmp_path / f"data{suffix}").write_text(content)
    (tmp_path / "folder.csv").mkdir()
    argv = [
        a.replace("{f}.", f"{base}.")
        .replace("{f}", f"{base}.csv")
        .replace("{missing}", str(tmp_path / "nope.csv"))
        .replace("{dir}", str(tmp_path / "folder.csv"))
        for a in args
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_installed_script_end_to_end(tmp_path: Path) -> None:
    script = shutil.which("infomorphic", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the infomorphic console script is not installed")
    (tmp_path / "bad.csv").write_text("A,B,T,p\n0,0,0,-1\n")
    proc = subprocess.run(
        [script, "pid", str(tmp_path / "bad.csv")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "negative mass" in proc.stderr and "Traceback" not in proc.stderr


_MARKUP_TAG = re.compile(
    r"(?<!\\)\[([a-z#/@][^\[\]]*)\]", re.IGNORECASE
)  # what rich markup takes for a style


def _commands(command: object, path: tuple[str, ...] = ()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def test_train_help_shows_the_train_table() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert result.exit_code == 0
    assert "[train]" in result.output and "[network]" in result.output


def test_no_help_text_loses_square_brackets_to_rich_markup() -> None:
    """Help texts are rendered as rich markup: a bare ``[word]`` would vanish from --help (write ``\\[word]``)."""
    import typer

    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        texts = [getattr(command, "help", None) or ""] + [
            getattr(p, "help", None) or "" for p in getattr(command, "params", [])
        ]
        bare = sorted({m.group(0) for text in texts for m in _MARKUP_TAG.finditer(text)})
        assert not bare, f"infomorphic {' '.join(path)} --help: escape {bare} as \\[...]"
        escaped = sorted({m.group(0)[1:] for text in texts for m in re.finditer(r"\\\[[^\[\]]*\]", text)})
        if escaped:
            output = runner.invoke(
                app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
            ).output
            assert all(tag in output for tag in escaped), (path, escaped)
            checked += 1
    assert checked >= 3  # train, search, ablate
