"""Shared helpers of the goal-search tests: tiny digits runs (a few neurons, 1-2 epochs, 1 thread)."""

from __future__ import annotations

import pytest
from tiny_configs import tiny_config


@pytest.fixture(scope="session")
def tiny():
    """``tiny(**changes)``: a small trivariate digits config (4 hidden neurons, 2 epochs)."""
    return tiny_config


@pytest.fixture(scope="session")
def digits_small():
    """digits with a 300-example training subset (validation and test complete)."""
    from infomorphic.data import load_dataset
    from infomorphic.goalsearch.search import subset_train

    return subset_train(load_dataset("digits", val_fraction=0.2, seed=0), 300, 0)
