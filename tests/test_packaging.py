"""Packaging: one version, ranges (not pins) in pyproject, exact versions in constraints.txt,
py.typed shipped, optional extras with one-line errors, and the kernel built at install."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from typer.testing import CliRunner

import infomorphic
from infomorphic._version import __version__
from infomorphic.cli import app

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirements(names: list[str]) -> dict[str, Requirement]:
    return {Requirement(text).name: Requirement(text) for text in names}


def test_the_version_is_written_in_one_place() -> None:
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "infomorphic._version.__version__"
    }
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"infomorphic {__version__}\n"
    Version(__version__)  # a valid version
    assert infomorphic.__version__ == __version__
    assert importlib.metadata.version("infomorphic") == __version__  # the installed metadata (setup.sh)


def test_torch_is_a_range_that_admits_the_tested_version() -> None:
    torch_req = _requirements(PYPROJECT["project"]["dependencies"])["torch"]
    assert str(torch_req.specifier) == "<3,>=2.4"
    pinned = [
        line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch==")
    ]
    assert pinned == ["torch==2.13.0"]
    assert torch_req.specifier.contains(Version(torch.__version__).public)  # the running torch
    for other in ("2.4.0", "2.6.0", "2.10.0", "2.14.1"):
        assert torch_req.specifier.contains(other)
    assert not torch_req.specifier.contains("2.3.1") and not torch_req.specifier.contains("3.0.0")


def test_every_dependency_is_a_range_and_constraints_pin_them() -> None:
    """Core dependencies are lower bounds (torch also capped); constraints.txt pins each exactly."""
    pins = {  # names as pip compares them: tomli-w is pip freeze's tomli_w
        canonicalize_name(Requirement(line).name): Requirement(line)
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    for name, req in _requirements(PYPROJECT["project"]["dependencies"]).items():
        assert not any(spec.operator == "==" for spec in req.specifier), req
        pin = pins[canonicalize_name(name)]
        (version,) = [spec.version for spec in pin.specifier]
        assert req.specifier.contains(version), (req, pin)


def test_extras() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"cmaes", "postgres", "tensorboard", "docs", "notebooks", "test", "dev"} <= set(extras)
    assert "cmaes" not in _requirements(PYPROJECT["project"]["dependencies"])
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "[test,dev,docs,notebooks,tensorboard,postgres]" in setup  # CI runs the PostgreSQL test
    pins = {line.split("==")[0].lower() for line in (ROOT / "constraints.txt").read_text().splitlines()}
    for extra in ("cmaes", "postgres", "tensorboard"):  # every extra's packages are pinned for CI
        for req in _requirements(extras[extra]).values():
            assert req.name.lower() in pins, (extra, req)
    assert "-c constraints.txt --no-build-isolation" in setup
    # the suite exercises these extras' packages, so `pip install .[test]` must bring them
    for extra in ("cmaes", "postgres", "tensorboard", "pandas"):
        assert set(_requirements(extras[extra])) <= set(_requirements(extras["test"])), extra


def test_py_typed_ships_with_the_package() -> None:
    assert (Path(infomorphic.__file__).parent / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["infomorphic"]


def test_the_cmaes_sampler_without_cmaes_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is written: the search stops before its folder and study exist."""
    from infomorphic.goalsearch import search

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == "cmaes" else real(name, *args)
    )
    out = tmp_path / "search"
    result = CliRunner().invoke(
        app,
        [
            "search",
            "--dataset",
            "digits",
            "--hidden",
            "3",
            "--epochs",
            "1",
            "--sampler",
            "cmaes",
            "--fix-hres",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the CMA-ES sampler needs the cmaes package, which is not installed: pip "
        "install 'infomorphic[cmaes]' (or pip install cmaes), or use another sampler (tpe)\n"
    )
    assert not out.exists()
    with pytest.raises(ValueError, match=r"infomorphic\[cmaes\]"):
        search.require_sampler("cmaes")
    search.require_sampler("tpe")


def test_setup_py_without_torch_says_so_in_one_line_and_builds_no_kernel() -> None:
    """Where torch cannot be imported (pip's isolated build environment), the install goes on."""
    code = (
        "import runpy, sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--name', 'build_ext']; "
        "runpy.run_path('setup.py', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["infomorphic"]
    said = [line for line in done.stderr.splitlines() if line.startswith("infomorphic:")]
    assert len(said) == 1, done.stderr
    assert "torch is not importable in the build environment" in said[0]
    assert (
        "compiled at first use" in said[0]
        and "PyTorch path" in said[0]
        and "slower per training epoch" in said[0]
    )


def test_setup_py_with_an_old_setuptools_is_a_one_line_error() -> None:
    """A setuptools that cannot read the SPDX license (< 77, e.g. a venv's bundled one used with
    --no-build-isolation) stops the build with one line naming the fix, not a schema dump."""
    code = (
        "import runpy, sys, setuptools; setuptools.__version__ = '65.5.0'; "
        "sys.argv = ['setup.py', '--name']; runpy.run_path('setup.py', run_name='__main__')"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "INFOMORPHIC_BUILD_KERNEL": "0"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: building infomorphic needs setuptools >= 77, this environment has 65.5.0: "
        "run  pip install -U 'setuptools>=77'  and install again"
    ]
