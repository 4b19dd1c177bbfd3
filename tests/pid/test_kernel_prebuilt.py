"""The kernel compiled at install: loaded when it matches the running torch, else the first-use build.

Most tests load a copy of ``kernel.py`` in a temporary folder, next to a tiny extension module
(a plain CPython module, compiled in well under a second) installed there under the prebuilt
kernel's name with the record ``setup.py`` would write; the copy's ``load_kernel`` is the real
code path.  The prebuilt module adds 100 to its sum, so a test can tell it from a first-use
build of the same source.  The last test checks the package's own prebuilt kernel, when the
installation built one (``scripts/setup.sh`` does).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest
import torch

import infomorphic.pid.kernel as kernel

TINY_CPP = r"""
#include <Python.h>
#ifndef IM_OFFSET
#define IM_OFFSET 0
#endif
#define IM_CAT_(a, b) a##b
#define IM_CAT(a, b) IM_CAT_(a, b)
#define IM_STR_(a) #a
#define IM_STR(a) IM_STR_(a)
static PyObject* add(PyObject*, PyObject* args) {
  long a, b;
  if (!PyArg_ParseTuple(args, "ll", &a, &b)) return nullptr;
  return PyLong_FromLong(a + b + IM_OFFSET);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {nullptr, nullptr, 0, nullptr}};
static PyModuleDef module_def = {PyModuleDef_HEAD_INIT, IM_STR(TORCH_EXTENSION_NAME), nullptr, -1, methods};
PyMODINIT_FUNC IM_CAT(PyInit_, TORCH_EXTENSION_NAME)(void) { return PyModule_Create(&module_def); }
"""

NOT_CALLED = "the first-use build was called"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny module compiled once under the prebuilt kernel's name (its sum is off by 100)."""
    compiler = shutil.which(os.environ.get("CXX", "c++"))
    if compiler is None:
        pytest.skip("no C++ compiler")
    folder = tmp_path_factory.mktemp("prebuilt")
    source = folder / "tiny.cpp"
    source.write_text(TINY_CPP)
    target = folder / (kernel.PREBUILT_NAME + sysconfig.get_config_var("EXT_SUFFIX"))
    subprocess.run(
        [
            compiler,
            "-shared",
            "-fPIC",
            "-O0",
            f"-I{sysconfig.get_paths()['include']}",
            f"-DTORCH_EXTENSION_NAME={kernel.PREBUILT_NAME}",
            "-DIM_OFFSET=100",
            str(source),
            "-o",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return target


def _install(tmp_path: Path, compiled: Path, record: dict[str, object] | None = None) -> ModuleType:
    """A copy of kernel.py with the tiny source, the prebuilt module and its record; imported."""
    folder = tmp_path / "pid"
    folder.mkdir()
    shutil.copy(kernel.__file__, folder / "kernel.py")
    (folder / "_sx_kernel.cpp").write_text(TINY_CPP)
    shutil.copy(compiled, folder / compiled.name)
    spec = importlib.util.spec_from_file_location(
        "infomorphic.pid.kernel_prebuilt_copy", folder / "kernel.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if record is None:
        record = module.prebuilt_record(torch.__version__, folder / "_sx_kernel.cpp")
    (folder / module.PREBUILT_RECORD).write_text(json.dumps(record))
    return module


def _no_build(monkeypatch: pytest.MonkeyPatch, copy: ModuleType) -> None:
    def fail(name: str, source: Path) -> None:
        raise AssertionError(NOT_CALLED)

    monkeypatch.setattr(copy, "_load_or_build", fail)


def _first_use_build(monkeypatch: pytest.MonkeyPatch, copy: ModuleType) -> list[str]:
    """Replace the first-use build by a stub that records its calls and returns ``None``."""
    calls: list[str] = []

    def build(name: str, source: Path) -> None:
        calls.append(name)

    monkeypatch.setattr(copy, "_load_or_build", build)
    return calls


@pytest.fixture(autouse=True)
def _prebuilt_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kernel.PREBUILT_VARIABLE, raising=False)


def test_a_matching_prebuilt_kernel_is_loaded_without_building(
    tmp_path: Path, compiled: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copy = _install(tmp_path, compiled)
    _no_build(monkeypatch, copy)
    caplog.set_level("INFO")
    module = copy.load_kernel()
    assert module is not None and module.add(2, 3) == 105  # the prebuilt one, not a build of the source
    assert Path(module.__file__) == tmp_path / "pid" / compiled.name
    assert caplog.records == []  # quiet, like a cached build


def test_a_prebuilt_kernel_for_another_torch_is_ignored(
    tmp_path: Path, compiled: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Built at install for this torch, then torch was upgraded: the first-use build takes over."""
    copy = _install(tmp_path, compiled)
    built_for = torch.__version__
    monkeypatch.setattr(torch, "__version__", "2.99.0")
    calls = _first_use_build(monkeypatch, copy)
    caplog.set_level("INFO")
    assert copy.load_kernel() is None  # what the (stubbed) first-use build returned
    assert len(calls) == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"ignoring the I^sx kernel built at install (it was built for torch {built_for}, this is torch "
        "2.99.0); compiling it for this installation instead"
    ]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"python": "cpython-399"}, "it was built for cpython-399, this is"),
        ({"source_sha256": "0" * 64}, "its source _sx_kernel.cpp has changed since it was built"),
        ({"cflags": ["-O0"]}, "it was built with other compiler flags"),
    ],
    ids=["python", "source", "flags"],
)
def test_a_prebuilt_kernel_with_another_record_is_ignored(
    tmp_path: Path,
    compiled: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, object],
    why: str,
) -> None:
    copy = _install(tmp_path, compiled)
    record_file = tmp_path / "pid" / copy.PREBUILT_RECORD
    record_file.write_text(json.dumps({**json.loads(record_file.read_text()), **change}))
    calls = _first_use_build(monkeypatch, copy)
    caplog.set_level("INFO")
    assert copy.load_kernel() is None and len(calls) == 1
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("ignoring the I^sx kernel built at install (") and why in message


def test_no_record_or_a_broken_module_falls_back(
    tmp_path: Path, compiled: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copy = _install(tmp_path, compiled)
    folder = tmp_path / "pid"
    calls = _first_use_build(monkeypatch, copy)
    caplog.set_level("INFO")
    (folder / copy.PREBUILT_RECORD).unlink()
    assert copy.load_kernel() is None and len(calls) == 1
    assert "ignoring the I^sx kernel built at install" in caplog.text
    caplog.clear()
    copy.load_kernel.cache_clear()
    (folder / copy.PREBUILT_RECORD).write_text(
        json.dumps(copy.prebuilt_record(torch.__version__, folder / "_sx_kernel.cpp"))
    )
    (folder / compiled.name).write_bytes(b"not a shared object")
    assert copy.load_kernel() is None and len(calls) == 2
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("the I^sx kernel built at install does not load (")


def test_no_prebuilt_kernel_is_silent_and_the_variable_skips_it(
    tmp_path: Path, compiled: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    copy = _install(tmp_path, compiled)
    calls = _first_use_build(monkeypatch, copy)
    caplog.set_level("INFO")
    monkeypatch.setenv(kernel.PREBUILT_VARIABLE, "0")
    assert copy.load_kernel() is None and len(calls) == 1
    monkeypatch.delenv(kernel.PREBUILT_VARIABLE)
    copy.load_kernel.cache_clear()
    (tmp_path / "pid" / compiled.name).unlink()  # not built at install (no torch or no compiler there)
    assert copy.load_kernel() is None and len(calls) == 2
    assert caplog.records == []


def test_the_installed_prebuilt_kernel_is_what_loads(tmp_path: Path) -> None:
    """The package's own kernel built at install (scripts/setup.sh builds it): no first-use build."""
    folder = Path(kernel.__file__).parent
    if kernel._prebuilt_module_file(folder) is None:
        pytest.skip(
            "this installation has no kernel built at install (pip install --no-build-isolation builds it)"
        )
    record = json.loads((folder / kernel.PREBUILT_RECORD).read_text())
    if record != kernel.prebuilt_record(torch.__version__, folder / "_sx_kernel.cpp"):
        pytest.skip(f"the kernel built at install is for torch {record.get('torch')}, not this one")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFOMORPHIC_", "TORCH_EXTENSIONS_DIR"))}
    env["TORCH_EXTENSIONS_DIR"] = str(tmp_path / "extensions")
    code = (
        "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s'); "
        "from infomorphic.pid.kernel import load_kernel; m = load_kernel(); print(m.__file__)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == kernel._prebuilt_module_file(folder)
    assert "compiling" not in done.stderr and "ignoring" not in done.stderr, done.stderr
    assert not (tmp_path / "extensions").exists()  # nothing was compiled at first use
