"""Shared test settings.

The suite runs under pytest-xdist with two workers on two cores: one torch thread per worker
avoids OpenMP threads of different processes waiting on each other (which slows CPU code by
an order of magnitude).
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def isolated_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the data root (environment) and the Debian Fashion-MNIST folder into ``tmp_path``,
    so data tests never see or touch the machine's real datasets."""
    from infomorphic.data import locate

    root = tmp_path / "root"
    monkeypatch.setenv(locate.DATA_DIR_ENV, str(root))
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-dir")
    return root
