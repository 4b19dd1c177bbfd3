"""The compiled kernel's build never hangs a run: stale locks, killed builds, timeouts, races.

Every test loads in fresh subprocesses, with a hard timeout, and its own ``TORCH_EXTENSIONS_DIR``.
Most load a copy of ``kernel.py`` next to a tiny C++ extension named ``_sx_kernel.cpp`` (compiled
in about a second) instead of the real kernel: the copy's ``load_kernel`` is the real code path.
A source that includes a FIFO makes the compiler block until the test writes to it, so a build
is "in the middle" (or never finishes) by construction, not by timing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import infomorphic.pid.kernel as kernel

TINY_CPP = r"""
#include <Python.h>
%(include)s
#define IM_CAT_(a, b) a##b
#define IM_CAT(a, b) IM_CAT_(a, b)
#define IM_STR_(a) #a
#define IM_STR(a) IM_STR_(a)
static PyObject* add(PyObject*, PyObject* args) {
  long a, b;
  if (!PyArg_ParseTuple(args, "ll", &a, &b)) return nullptr;
  return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {nullptr, nullptr, 0, nullptr}};
static PyModuleDef module_def = {PyModuleDef_HEAD_INIT, IM_STR(TORCH_EXTENSION_NAME), nullptr, -1, methods};
PyMODINIT_FUNC IM_CAT(PyInit_, TORCH_EXTENSION_NAME)(void) { return PyModule_Create(&module_def); }
"""

# load a kernel.py (a copy, or the package's own with "-") as the CLI shows its log: INFO, one line each
RUNNER = r"""
import importlib.util, logging, sys
logging.basicConfig(level=logging.WARNING, format="%(message)s")
logging.getLogger("infomorphic").setLevel(logging.INFO)
if sys.argv[1] == "-":
    import infomorphic.pid.kernel as mod
else:
    spec = importlib.util.spec_from_file_location("infomorphic.pid.kernel_copy", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
module = mod.load_kernel()
print("RESULT", None if module is None else module.add(2, 3), flush=True)
"""

HARD_TIMEOUT = 90  # seconds: a load that takes longer counts as hung


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """A temporary folder; processes still using it at the end (orphaned compilers) are killed."""
    (tmp_path / "runner.py").write_text(RUNNER)
    yield tmp_path
    for pid in _processes_using(tmp_path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _kernel_copy(work: Path, cpp: str, blocked: bool = False) -> Path:
    """A copy of kernel.py whose ``_sx_kernel.cpp`` is ``cpp``; ``blocked``: it includes a FIFO."""
    folder = work / "copy"
    folder.mkdir()
    shutil.copy(kernel.__file__, folder / "kernel.py")
    (folder / "_sx_kernel.cpp").write_text(cpp % {"include": '#include "blocker.h"' if blocked else ""})
    if blocked:
        os.mkfifo(folder / "blocker.h")
    return folder / "kernel.py"


def _env(work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFOMORPHIC_", "TORCH_EXTENSIONS_DIR"))}
    env["TORCH_EXTENSIONS_DIR"] = str(work / "extensions")
    env.update(extra)
    return env


def _load(work: Path, module: Path | str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the loader to the end, failing the test if it hangs."""
    try:
        return subprocess.run(
            [sys.executable, str(work / "runner.py"), str(module)],
            env=env,
            text=True,
            capture_output=True,
            timeout=HARD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the kernel load hung for {HARD_TIMEOUT} s; stderr: {exc.stderr!r}")


def _start(work: Path, module: Path, env: dict[str, str], tag: str) -> subprocess.Popen[str]:
    """Start the loader in the background; its output goes to ``tag.out`` and ``tag.err``."""
    with open(work / f"{tag}.out", "w") as out, open(work / f"{tag}.err", "w") as err:
        return subprocess.Popen(
            [sys.executable, str(work / "runner.py"), str(module)], env=env, text=True, stdout=out, stderr=err
        )


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def _processes_using(path: Path) -> list[int]:
    """Live processes (not this one) whose command line or working folder mentions ``path``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if str(path) in cmdline or cwd.startswith(str(path)):
            found.append(int(entry))
    return found


def _torch_batons(work: Path) -> list[Path]:
    """torch's ``lock`` files (FileBaton) in the build folders."""
    return list((work / "extensions").glob("*/lock"))


def _unblock(fifo: Path) -> None:
    """Let the compiler blocked on ``fifo`` read an empty header, and leave a plain file there."""
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # succeeds once the compiler opens it
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("the compiler never opened the blocking header")
            time.sleep(0.05)
    plain = fifo.with_suffix(".tmp")
    plain.write_text("")
    os.replace(plain, fifo)
    os.close(fd)


def _lines(text: str, count: int) -> list[str]:
    """The ``count`` lines of a loader's stderr (each message is one line)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == count, text
    return lines


def test_stale_torch_lock_no_longer_hangs_the_real_kernel(work: Path) -> None:
    """What a killed build leaves (torch's ``lock``) is removed; over the timeout: PyTorch path."""
    source = Path(kernel.__file__).with_name("_sx_kernel.cpp")
    digest = hashlib.sha256(source.read_bytes() + str(source.resolve()).encode()).hexdigest()[:16]
    build_dir = work / "extensions" / f"infomorphic_sx_kernel_{digest}"  # where today's kernel builds
    build_dir.mkdir(parents=True)
    (build_dir / "lock").write_text("")
    # the kernel built at install (if any) is skipped: this is about the first-use build
    done = _load(work, "-", _env(work, INFOMORPHIC_KERNEL_BUILD_TIMEOUT="2", INFOMORPHIC_KERNEL_PREBUILT="0"))
    assert done.returncode == 0, done.stderr
    assert "RESULT None" in done.stdout  # the real build takes far longer than 2 s
    compiling, fallback = _lines(done.stderr, 2)
    assert compiling.startswith("compiling the I^sx kernel") and str(build_dir) in compiling
    assert "removed the stale lock file a killed build left there" in compiling
    assert fallback.startswith("the compiled I^sx kernel is unavailable (it did not finish within 2 s;")
    assert "INFOMORPHIC_KERNEL_BUILD_TIMEOUT" in fallback and "using the PyTorch path" in fallback
    assert not (build_dir / "lock").exists()
    assert _processes_using(work) == []  # the compiler was stopped with the build


def test_kill_9_during_a_build_then_the_next_load_builds(work: Path) -> None:
    """``kill -9`` of a run in the middle of its build stops the compiler; the next run builds."""
    module = _kernel_copy(work, TINY_CPP, blocked=True)
    env = _env(work)
    first = _start(work, module, env, "first")
    _wait_for(lambda: bool(_torch_batons(work)), 60, "the first build to start")
    first.kill()
    first.wait()
    _wait_for(lambda: not _processes_using(work), 20, "the killed run's compiler to stop")
    blocker = module.with_name("blocker.h")
    blocker.unlink()
    blocker.write_text("")  # same source text, same build folder, now compilable
    second = _load(work, module, env)
    assert second.returncode == 0, second.stderr
    assert "RESULT 5" in second.stdout
    compiling, built = _lines(second.stderr, 2)
    assert compiling.startswith("compiling the I^sx kernel")
    assert built.startswith("built the compiled I^sx kernel in")
    third = _load(work, module, env)  # cached: no compiler, no message
    assert (third.returncode, third.stdout.split(), third.stderr) == (0, ["RESULT", "5"], "")


def test_a_build_over_the_timeout_falls_back_and_stops_the_compiler(work: Path) -> None:
    """A build that never finishes: one line after the timeout, PyTorch path, nothing left running."""
    module = _kernel_copy(work, TINY_CPP, blocked=True)  # the FIFO is never written
    done = _load(work, module, _env(work, INFOMORPHIC_KERNEL_BUILD_TIMEOUT="2"))
    assert done.returncode == 0, done.stderr
    assert "RESULT None" in done.stdout
    compiling, fallback = _lines(done.stderr, 2)
    assert compiling.startswith("compiling the I^sx kernel")
    assert fallback.startswith(
        "the compiled I^sx kernel is unavailable (it did not finish within 2 s; "
        "INFOMORPHIC_KERNEL_BUILD_TIMEOUT sets the limit"
    )
    assert "rerun to retry" in fallback
    assert _processes_using(work) == []
    assert _torch_batons(work) == []


@pytest.mark.parametrize(
    ("cpp", "extra", "why"),
    [
        ("int x = ;\n%(include)s", {}, "error: expected primary-expression"),
        (TINY_CPP, {"CXX": "/nonexistent/c++"}, "/nonexistent/c++: not found"),
    ],
    ids=["compiler-error", "no-compiler"],
)
def test_a_failed_build_falls_back_with_one_line(
    work: Path, cpp: str, extra: dict[str, str], why: str
) -> None:
    """The compiler's first error (not ninja's whole output) in one line, and where the log is."""
    module = _kernel_copy(work, cpp)
    done = _load(work, module, _env(work, **extra))
    assert done.returncode == 0, done.stderr
    assert "RESULT None" in done.stdout
    compiling, fallback = _lines(done.stderr, 2)
    assert compiling.startswith("compiling the I^sx kernel")
    assert fallback.startswith("the compiled I^sx kernel is unavailable (")
    assert why in fallback and "infomorphic-build.log" in fallback and "rerun to retry" in fallback
    log_path = Path(fallback.split("build log: ")[1].split(")")[0])
    assert why in log_path.read_text()  # the whole compiler output is kept there


def test_two_loads_at_once_one_compiles_both_work(work: Path) -> None:
    """The second load says it waits for the first one's build, then uses it without compiling."""
    module = _kernel_copy(work, TINY_CPP, blocked=True)
    env = _env(work)
    first = _start(work, module, env, "first")
    _wait_for(lambda: bool(_torch_batons(work)), 60, "the first build to start")
    second = _start(work, module, env, "second")
    waiting = f"waiting for process {first.pid}, which is compiling the I^sx kernel"
    _wait_for(
        lambda: waiting in (work / "second.err").read_text(),
        30,
        "the second load to say it waits for the first",
    )
    assert second.poll() is None  # it waits while the compiler is blocked
    _unblock(module.with_name("blocker.h"))
    assert first.wait(HARD_TIMEOUT) == 0 and second.wait(HARD_TIMEOUT) == 0
    for tag in ("first", "second"):
        assert (work / f"{tag}.out").read_text().split() == ["RESULT", "5"]
    first_err = _lines((work / "first.err").read_text(), 2)
    second_err = _lines((work / "second.err").read_text(), 1)
    assert [line.split()[0] for line in first_err] == ["compiling", "built"]
    assert second_err[0].startswith("waiting for process")


def test_build_timeout_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``INFOMORPHIC_KERNEL_BUILD_TIMEOUT``: seconds, 600 by default; a bad value warns in one line."""
    monkeypatch.delenv("INFOMORPHIC_KERNEL_BUILD_TIMEOUT", raising=False)
    assert kernel.build_timeout() == 600
    monkeypatch.setenv("INFOMORPHIC_KERNEL_BUILD_TIMEOUT", "45.5")
    assert kernel.build_timeout() == 45.5
    for bad in ("ten", "0", "-3", "nan"):
        caplog.clear()
        monkeypatch.setenv("INFOMORPHIC_KERNEL_BUILD_TIMEOUT", bad)
        assert kernel.build_timeout() == 600
        assert [r.getMessage() for r in caplog.records] == [
            f"INFOMORPHIC_KERNEL_BUILD_TIMEOUT={bad!r} is not a positive number of seconds; using 600 "
            "(set e.g. INFOMORPHIC_KERNEL_BUILD_TIMEOUT=900)"
        ]
