"""The published goals (Makkeh et al. 2025; Schneider et al. 2025) by name: :data:`PRESETS`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

from .goal import Goal


@dataclass(frozen=True, slots=True)
class Preset:
    """A published goal with a one-line description and where it comes from."""

    name: str
    goal: Goal
    description: str
    source: str


def _unknown_preset(name: object) -> str:
    close = difflib.get_close_matches(str(name), list(PRESETS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown goal preset {name!r}{hint}; presets: {', '.join(PRESETS)}"


def _build_presets() -> dict[str, Preset]:
    trivariate_order = "order {F}{C}{L}, {F}{C}, ..., {FCL}, H_res"
    table: list[tuple[str, str, list[float], str, str]] = [
        (
            "readout", "FC", [-0.2, 0.1, 1.0, 0.1, 0.0],
            "bivariate output/readout layer (F = hidden outputs, C = own label element): "
            "mainly redundancy, some synergy and unique context, less unique feedforward",
            "Schneider et al. 2025 (arXiv:2412.02482), Table 1",
        ),
        (
            "bivariate-context-naive", "FC", [0.0, 0.0, 1.0, 0.0, 0.0],
            "bivariate hidden layer with context only: maximise the redundancy {F}{C} of "
            "feedforward and context",
            "Schneider et al. 2025 (arXiv:2412.02482), Fig. 8 (bivariate baseline)",
        ),
        (
            "bivariate-context-optimised", "FC", [-0.0990, 0.3916, 0.5118, 0.5942, 0.0885],
            "bivariate hidden layer with context only, optimised goal (CMA-ES)",
            "Schneider et al. 2025 (arXiv:2412.02482), Fig. 8 (bivariate baseline)",
        ),
        (
            "bivariate-lateral-naive", "FC", [1.0, 0.0, 0.0, 0.0, 0.0],
            "bivariate hidden layer with lateral input only (C is the lateral input here): "
            "maximise unique feedforward information",
            "Schneider et al. 2025 (arXiv:2412.02482), Fig. 8 (bivariate baseline)",
        ),
        (
            "bivariate-lateral-optimised", "FC", [0.8281, -0.2038, 0.9030, 0.5267, 0.1350],
            "bivariate hidden layer with lateral input only (C is the lateral input here), "
            "optimised goal (CMA-ES)",
            "Schneider et al. 2025 (arXiv:2412.02482), Fig. 8 (bivariate baseline)",
        ),
        (
            "bars-unique", "FC", [1.0, 0.0, 0.0, 0.0, 0.0],
            "unsupervised bars (C = outputs of the other neurons): maximise unique feedforward "
            "information so that each neuron codes a different bar",
            "Makkeh et al. 2025 (arXiv:2306.02149), Fig. 5",
        ),
        (
            "trivariate-naive", "FCL", [0.0, 1.0] + [0.0] * 17,
            "trivariate hidden layer, intuitive goal: maximise the redundancy {F}{C} of "
            "feedforward and context",
            "Schneider et al. 2025 (arXiv:2412.02482), Fig. 1D",
        ),
        (
            "trivariate-mnist-tpe", "FCL",
            [
                0.33073, 0.97808, -0.99350, 0.40173, 0.24278, 0.62554, 0.47128, 0.02121, 0.06054,
                -0.94698, -0.01985, -0.96766, -0.69245, 0.42701, 0.97364, 0.73696, -0.12183,
                -0.21512, 0.03500,
            ],
            "trivariate hidden layer, optimised on MNIST with TPE (setup 1, N = 100); the goal "
            "of all main results",
            f"Schneider et al. 2025 (arXiv:2412.02482), Fig. 5A and appendix A.10; {trivariate_order}",
        ),
        (
            "trivariate-mnist-cmaes", "FCL",
            [
                0.21016, 0.98604, -0.44868, 0.46835, -0.62376, 0.43270, 0.84127, 0.00973, -0.41209,
                -0.48135, -0.14115, -0.70579, -0.53288, 0.14942, 0.70986, 0.33916, 0.78664,
                0.05719, 0.0,
            ],
            "trivariate hidden layer, optimised on MNIST with CMA-ES (setup 1, N = 100, H_res fixed at 0)",
            f"Schneider et al. 2025 (arXiv:2412.02482), Fig. 6; {trivariate_order}",
        ),
        (
            "trivariate-cifar-cmaes", "FCL",
            [
                0.98378, 0.60485, -0.21335, 0.24266, 0.33963, -0.57904, 0.05000, 0.03362, 0.59739,
                -0.07824, 0.47624, -0.84754, -0.39919, 0.55634, 0.27147, -0.46228, -0.06276,
                -0.26290, 0.0,
            ],
            "trivariate hidden layer, optimised on CIFAR-10 with CMA-ES (setup 1, N = 100, H_res fixed at 0)",
            f"Schneider et al. 2025 (arXiv:2412.02482), Fig. 5D; {trivariate_order}",
        ),
    ]  # fmt: skip
    return {
        name: Preset(name, Goal.from_vector(vector, sources), description, source)
        for name, sources, vector, description, source in table
    }


PRESETS: Mapping[str, Preset] = _build_presets()
"""Published goals by name (each with its ``source`` in the papers).  A plain dict, never mutated."""
