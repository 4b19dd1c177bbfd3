"""Load a script of ``experiments/`` as a module (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_experiment(script: str, module_name: str | None = None) -> ModuleType:
    """``experiments/<script>.py`` imported as ``module_name`` (default ``script``)."""
    name = module_name or script
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
