"""Build hook: compile the PID kernel when the package is installed, if it can be.

Everything else about the package is in ``pyproject.toml``.  This file only decides whether the
C++ extension ``infomorphic.pid._sx_kernel_prebuilt`` (from ``src/infomorphic/pid/_sx_kernel.cpp``)
is built, the usual way for PyTorch C++ extensions (``torch.utils.cpp_extension``):

* only when ``import torch`` works in the build environment, which is the environment the
  package is installed into when pip runs with ``--no-build-isolation`` (``scripts/setup.sh``
  does); torch is deliberately not a build requirement, so that pip never downloads a second
  (multi-GB) torch just to build;
* and only when a C++ compiler (``$CXX``, else ``c++``) is found.

Otherwise, or when the compilation fails, it prints one line saying why and the package
installs without it: :mod:`infomorphic.pid.kernel` then compiles the kernel at first use, or
uses the pure PyTorch path.  Next to the compiled module it writes
``_sx_kernel_prebuilt.json`` (the torch version and flags it was built with), which the loader
checks before importing it.  ``INFOMORPHIC_BUILD_KERNEL=0`` skips the build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import setuptools
from setuptools import setup

# pyproject.toml declares its license as an SPDX expression, which setuptools reads from 77 on;
# an older one (e.g. a venv's bundled setuptools, used as is with --no-build-isolation) would
# fail with a long schema dump instead of this line.
_MIN_SETUPTOOLS = 77
if int(setuptools.__version__.split(".")[0]) < _MIN_SETUPTOOLS:
    sys.exit(
        f"error: building infomorphic needs setuptools >= {_MIN_SETUPTOOLS}, this environment has "
        f"{setuptools.__version__}: run  pip install -U 'setuptools>={_MIN_SETUPTOOLS}'  and install again"
    )

ROOT = Path(__file__).resolve().parent
PID = Path("src") / "infomorphic" / "pid"
SOURCE = PID / "_sx_kernel.cpp"
PACKAGE = "infomorphic.pid"
# benchmarks/README.md (2-core x86_64 CPU, torch 2.13.0); kept in step with kernel.py's messages
FALLBACK = (
    "it will be compiled at first use (about 40 s, needs a C++ compiler and "
    "ninja), or else the pure PyTorch path is used ({cost})"
)


# setup.py commands that build the package (pip also runs it to read metadata: no message then)
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}


def _say(message: str) -> None:
    """One line on stderr when building (pip shows it with ``pip install -v``)."""
    if BUILDS.intersection(sys.argv[1:]):
        print(f"infomorphic: {message}", file=sys.stderr, flush=True)


def _kernel_module() -> ModuleType:
    """``src/infomorphic/pid/kernel.py`` loaded by path (it imports only the standard library)."""
    spec = importlib.util.spec_from_file_location("_infomorphic_kernel_for_setup", ROOT / PID / "kernel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compiler() -> str | None:
    """The C++ compiler torch's build would call, if it is on ``PATH`` (or an existing path)."""
    name = os.environ.get("CXX", "c++")
    return shutil.which(name) or (name if os.path.isfile(name) and os.access(name, os.X_OK) else None)


def _kernel_build() -> tuple[list[Any], dict[str, Any]]:
    """``(ext_modules, cmdclass)`` for ``setup()``: the kernel, or nothing (with one line why)."""
    kernel = _kernel_module()
    cost = kernel.TORCH_PATH_COST
    if os.environ.get("INFOMORPHIC_BUILD_KERNEL", "1") == "0":
        _say(
            "INFOMORPHIC_BUILD_KERNEL=0: not compiling the PID kernel at install: "
            + FALLBACK.format(cost=cost)
        )
        return [], {}
    try:
        import torch
        from torch.utils.cpp_extension import BuildExtension, CppExtension, is_ninja_available
    except Exception as exc:  # noqa: BLE001 - any import failure means: no kernel at install
        _say(
            f"torch is not importable in the build environment ({type(exc).__name__}; pip builds in an "
            "isolated one unless --no-build-isolation), so the PID kernel is not compiled at install: "
            + FALLBACK.format(cost=cost)
        )
        return [], {}
    if _compiler() is None:
        _say(
            f"no C++ compiler found ({os.environ.get('CXX', 'c++')}; set CXX), so the PID kernel is not "
            "compiled at install: " + FALLBACK.format(cost=cost)
        )
        return [], {}
    record = kernel.prebuilt_record(torch.__version__, ROOT / SOURCE)

    class BuildKernel(BuildExtension):
        """torch's ``BuildExtension`` that records what it built with and never fails the install."""

        def initialize_options(self) -> None:
            super().initialize_options()
            self._failed: set[str] = set()

        def run(self) -> None:
            super().run()
            self.extensions = [e for e in self.extensions if e.name not in self._failed]

        def build_extensions(self) -> None:
            """torch's preparation (compiler checks, flags), then each extension; failures are said."""
            try:
                super().build_extensions()
            except Exception as exc:  # noqa: BLE001 - e.g. torch's compiler check: install without it
                self._fail([e.name for e in self.extensions if e.name not in self._failed], exc)

        def build_extension(self, ext: Any) -> None:
            try:
                super().build_extension(ext)
            except Exception as exc:  # noqa: BLE001 - a failed kernel build must not fail the install
                self._fail([ext.name], exc)
                return
            built = Path(self.get_ext_fullpath(ext.name))
            (built.parent / kernel.PREBUILT_RECORD).write_text(json.dumps(record, indent=1) + "\n")
            _say(f"compiled the PID kernel for torch {torch.__version__} ({built.name})")

        def _fail(self, names: list[str], exc: BaseException) -> None:
            """Leave ``names`` out of the install, with one line saying why."""
            if not names:
                return
            self._failed.update(names)
            _say(
                f"compiling the PID kernel failed ({' '.join(str(exc).split())[:200]}); installing "
                "without it: " + FALLBACK.format(cost=cost)
            )

        def copy_extensions_to_source(self) -> None:
            """``--inplace`` and editable installs: copy what was built, and its record, into src/."""
            every: list[Any] = self.extensions
            self.extensions = [e for e in every if e.name not in self._failed]
            try:
                super().copy_extensions_to_source()
                if self.extensions:
                    (ROOT / PID / kernel.PREBUILT_RECORD).write_text(json.dumps(record, indent=1) + "\n")
            finally:
                self.extensions = every

        def get_outputs(self) -> list[str]:
            outputs: list[str] = super().get_outputs()
            if self.extensions:  # run() drops a kernel that failed to compile
                folder = ROOT / PID if self.inplace else Path(self.build_lib, *PACKAGE.split("."))
                outputs.append(str(folder / kernel.PREBUILT_RECORD))
            return outputs

    extension = CppExtension(
        f"{PACKAGE}.{kernel.PREBUILT_NAME}",
        [str(SOURCE)],
        # -g0: Python's own CFLAGS add debug information (11 MB instead of 0.3 MB, as the first-use build)
        extra_compile_args=[*record["cflags"], "-g0"],
        extra_link_args=record["ldflags"],
    )
    # without ninja, torch compiles with setuptools' compiler (one source file: as fast)
    return [extension], {"build_ext": BuildKernel.with_options(use_ninja=is_ninja_available())}


ext_modules, cmdclass = _kernel_build()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
