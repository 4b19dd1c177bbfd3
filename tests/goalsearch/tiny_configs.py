"""The tiny digits config of the goal-search tests (4 hidden neurons, 2 epochs, 1 thread)."""

from __future__ import annotations

from infomorphic.config import TrainConfig


def tiny_config(**changes: object) -> TrainConfig:
    base = dict(
        network="trivariate",
        setup=1,
        hidden=4,
        epochs=2,
        batch_size=128,
        baselines=(),
        threads=1,
        seed=0,
        dataset="digits",
        train_eval_size=100,
    )
    return TrainConfig(**{**base, **changes})  # type: ignore[arg-type]
