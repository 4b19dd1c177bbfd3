"""Shared test settings.

The suite runs under pytest-xdist with two workers on two cores: one torch thread per worker
avoids OpenMP threads of different processes waiting on each other (which slows CPU code by
an order of magnitude).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)
