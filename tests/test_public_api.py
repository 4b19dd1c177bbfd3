"""The documented import paths: every ``__all__`` name resolves, and ``import infomorphic`` stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "infomorphic",
    "infomorphic.nn",
    "infomorphic.nn.functional",
    "infomorphic.goals",
    "infomorphic.pid",
    "infomorphic.train",
    "infomorphic.data",
    "infomorphic.tables",
    "infomorphic.goalsearch",
    "infomorphic.tasks",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}.__all__ has duplicates"
    for attr in module.__all__:
        assert getattr(module, attr) is not None, f"{name}.{attr}"
    assert set(module.__all__) <= set(dir(module))


def test_documented_paths() -> None:
    from infomorphic import Goal, InfomorphicLayer, Network, NetworkSpec, Trainer, fit, sx_pid
    from infomorphic.goals import Goal as Goal2
    from infomorphic.nn import InfomorphicLayer as Layer2
    from infomorphic.nn import (
        InfomorphicNetwork,
        InputSpec,
        LayerOutput,
        LayerSpec,
        functional,
        kind_spec,
        stacked,
    )
    from infomorphic.nn.functional import aggregate
    from infomorphic.pid import sx_pid as sx2
    from infomorphic.train import Trainer as Trainer2
    from infomorphic.train import fit as fit2
    from infomorphic.train.loggers import TensorBoardLogger

    assert (
        Goal is Goal2 and InfomorphicLayer is Layer2 and sx_pid is sx2 and fit is fit2 and Trainer is Trainer2
    )
    import infomorphic.train

    assert infomorphic.train.TensorBoardLogger is TensorBoardLogger
    assert functional.aggregate is aggregate
    spec = stacked([8])
    assert isinstance(spec, NetworkSpec)
    net = Network(spec, 6, 3)
    assert isinstance(net.layer("h1"), InfomorphicLayer)
    assert {InputSpec, LayerOutput, LayerSpec, InfomorphicNetwork, kind_spec}


def test_top_level_import_does_not_load_torch() -> None:
    code = (
        "import sys, infomorphic; assert 'torch' not in sys.modules; "
        "infomorphic.Goal; assert 'torch' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
