"""The tiny digits config of the goal-search tests (4 hidden neurons, 2 epochs, 1 thread), as a
:class:`TrainConfig` and as ``infomorphic search`` options."""

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


def tiny_search_args(epochs: int = 2) -> list[str]:
    """``infomorphic search`` options training the tiny config on 300 digits (the search's own
    options, e.g. sampler and trials, are the caller's)."""
    return [
        "--network",
        "trivariate",
        "--setup",
        "1",
        "--dataset",
        "digits",
        "--hidden",
        "4",
        "--epochs",
        str(epochs),
        "--batch-size",
        "128",
        "--train-subset",
        "300",
        "--threads",
        "1",
        "--set",
        "train_eval_size=100",
    ]
