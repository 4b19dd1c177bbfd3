"""Training: the local learning loop, baselines, and evaluation."""

from .loop import TrainingDiverged, evaluate_network, fit, train_step

__all__ = ["fit", "train_step", "evaluate_network", "TrainingDiverged"]
