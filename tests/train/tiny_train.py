"""The small digits training config of the training tests (setup 1, 8 hidden neurons, 2 epochs, 1 thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infomorphic.config import TrainConfig


def digits_config(tmp_path: Path, **changes: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        network="trivariate",
        setup=1,
        hidden=8,
        epochs=2,
        batch_size=128,
        baselines=(),
        threads=1,
        seed=0,
        dataset="digits",
        out_dir=str(tmp_path),
    )
    return TrainConfig(**{**base, **changes})
