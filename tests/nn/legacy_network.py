# Frozen copy of src/infomorphic/nn/network.py as it was before the network builder (commit 87414f8):
# the reference that the builder's configurations of the old kinds must reproduce exactly.
"""The supervised networks of the papers, wired from infomorphic layers.

Schneider et al. (2024), "What should a neuron aim for?", appendix A.3; Makkeh et al. (2025).

Kinds (``network`` in the config):

``single``
    One bivariate readout layer: F = image, C = the neuron's own label element through a
    fixed weight 1 (Makkeh et al. 2025).
``trivariate``
    Hidden layer of ``N`` trivariate neurons (F = image, C = one-hot label, L = the other
    hidden neurons' previous outputs) and a bivariate readout (F = hidden outputs, C = own label
    element).  Each batch is presented twice; the first pass starts from zero lateral input,
    the second (the one that learns) sees the first pass's sampled outputs.
    ``setup=1``: dense lateral; ``setup=2``: at most ``lateral_partners`` random lateral partners;
    ``setup=3``: as 2, but C is feedback from the readout's previous output instead of the label.
``bivariate-context``
    Bivariate hidden layer with F and C (label) only, one pass.
``bivariate-lateral``
    Bivariate hidden layer with F and L (lateral, as in setup 1/2) only, two passes.
``random-hidden``
    A fixed random hidden layer (not trained) with a trained infomorphic readout.

At evaluation the label context is withheld (zeros); the prediction is the arg-max over the
readout neurons' firing probabilities after correcting inverted neurons.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from infomorphic.goals import Goal
from infomorphic.nn.functional import lateral_mask
from infomorphic.nn.layer import InfomorphicLayer, LayerOutput

__all__ = ["InfomorphicNetwork", "NetworkOutput", "NETWORK_KINDS", "correct_inverted", "predict"]

NETWORK_KINDS = ("single", "trivariate", "bivariate-context", "bivariate-lateral", "random-hidden")


@dataclass(frozen=True)
class NetworkOutput:
    """Outputs of the learning pass: hidden layer (or ``None``), its sampled +-1 output, readout."""

    hidden: LayerOutput | None
    hidden_spikes: Tensor | None
    readout: LayerOutput


class InfomorphicNetwork(nn.Module):
    """A hidden infomorphic layer (optional) and a bivariate readout layer.

    Args:
        n_inputs: input features (e.g. 784).
        n_classes: classes = readout neurons.
        kind: one of :data:`NETWORK_KINDS`.
        n_hidden: hidden neurons ``N``.
        setup: 1, 2 or 3 for ``trivariate`` (see the module docstring).
        lateral_partners: lateral partners per neuron for setups 2 and 3.
        hidden_goal, readout_goal: local goals (sources are relabelled to the layer's).
        n_bins: bins per source for the PID estimates.
        hidden_bin_range: fixed bin range of the hidden layer (readout bins are adaptive).
        readout_k1: ``k1`` of the readout's bivariate activation (1 = no context modulation).
        hidden_k1: ``k1`` of a bivariate hidden layer.
        random_gain: ``random-hidden`` only: factor on the default initialisation of the fixed
            random weights.  With the default scale the pre-activations on standardised
            inputs have a standard deviation below 1, the units fire nearly at chance and the
            readout reaches ~20% on MNIST; x8 gives informative random features.
        generator: random generator for initialisation and lateral masks.
    """

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        kind: str = "trivariate",
        *,
        n_hidden: int = 100,
        setup: int = 1,
        lateral_partners: int = 100,
        hidden_goal: Goal | None = None,
        readout_goal: Goal | None = None,
        n_bins: int = 20,
        hidden_bin_range: tuple[float, float] = (-20.0, 20.0),
        readout_k1: float = 1.0,
        hidden_k1: float = 0.9,
        random_gain: float = 8.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if kind not in NETWORK_KINDS:
            raise ValueError(f"unknown network {kind!r}; choose one of {', '.join(NETWORK_KINDS)}")
        if setup not in (1, 2, 3):
            raise ValueError(f"setup must be 1, 2 or 3, got {setup}")
        self.kind = kind
        self.setup = setup
        self.n_classes = n_classes
        self.hidden: InfomorphicLayer | None = None
        feature_in = n_inputs
        if kind != "single":
            self.hidden = self._hidden_layer(
                kind,
                n_inputs,
                n_classes,
                n_hidden,
                setup,
                lateral_partners,
                hidden_goal,
                n_bins,
                hidden_bin_range,
                hidden_k1,
                generator,
            )
            if kind == "random-hidden":
                with torch.no_grad():
                    for p in self.hidden.parameters():
                        p.mul_(random_gain)
            feature_in = n_hidden
        readout_goal = (readout_goal or Goal.preset("readout")).with_sources("FC")
        self.readout = InfomorphicLayer(
            n_classes,
            {"F": feature_in, "C": n_classes},
            readout_goal,
            activation="bivariate",
            activation_params={"k1": readout_k1},
            n_bins=n_bins,
            binning="adaptive",
            fixed_weights={"C": torch.eye(n_classes)},
            generator=generator,
        )

    @staticmethod
    def _hidden_layer(
        kind: str,
        n_inputs: int,
        n_classes: int,
        n_hidden: int,
        setup: int,
        partners: int,
        goal: Goal | None,
        n_bins: int,
        bin_range: tuple[float, float],
        hidden_k1: float,
        generator: torch.Generator | None,
    ) -> InfomorphicLayer:
        lateral = lateral_mask(n_hidden, None if setup == 1 else partners, generator)
        common = {"n_bins": n_bins, "binning": "fixed", "bin_range": bin_range, "generator": generator}
        if kind == "trivariate":
            goal = (goal or Goal.preset("trivariate-mnist-tpe")).with_sources("FCL")
            return InfomorphicLayer(
                n_hidden,
                {"F": n_inputs, "C": n_classes, "L": n_hidden},
                goal,
                activation="trivariate",
                masks={"L": lateral},
                **common,
            )
        if kind == "bivariate-context":
            goal = (goal or Goal.preset("bivariate-context-optimised")).with_sources("FC")
            return InfomorphicLayer(
                n_hidden,
                {"F": n_inputs, "C": n_classes},
                goal,
                activation="bivariate",
                activation_params={"k1": hidden_k1},
                **common,
            )
        if kind == "bivariate-lateral":
            goal = (goal or Goal.preset("bivariate-lateral-optimised")).with_sources("FL")
            return InfomorphicLayer(
                n_hidden,
                {"F": n_inputs, "L": n_hidden},
                goal,
                activation="bivariate",
                activation_params={"k1": hidden_k1},
                masks={"L": lateral},
                **common,
            )
        # random-hidden: a fixed random feedforward layer; the C slot only satisfies the layer's shape
        layer = InfomorphicLayer(n_hidden, {"F": n_inputs, "C": 1}, None, activation="feedforward", **common)
        layer.requires_grad_(False)
        return layer

    @property
    def lateral(self) -> bool:
        return self.hidden is not None and "L" in self.hidden.sources

    def extra_repr(self) -> str:
        return f"kind={self.kind}, setup={self.setup}"

    def forward(
        self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> NetworkOutput:
        """Run the network on a batch.

        Args:
            x: ``(B, n_inputs)`` inputs.
            labels: ``(B,)`` integer labels for training (the context), or ``None`` to withhold
                the context (evaluation).
            generator: random generator of the stochastic hidden outputs.
        """
        context = None
        if labels is not None:
            context = torch.nn.functional.one_hot(labels, self.n_classes).to(x.dtype)
        if self.hidden is None:
            inputs = {"F": x} if context is None else {"F": x, "C": context}
            return NetworkOutput(None, None, self.readout(inputs))
        hidden = self.hidden
        feedback = self.kind == "trivariate" and self.setup == 3
        first: dict[str, Tensor] = {"F": x}
        if "C" in hidden.sources and hidden.in_features["C"] == self.n_classes:
            if not feedback and context is not None:
                first["C"] = context
            elif feedback:
                first["C"] = torch.zeros(x.shape[0], self.n_classes, dtype=x.dtype, device=x.device)
        passes = 2 if (self.lateral or feedback) else 1
        out: LayerOutput | None = None
        spikes: Tensor | None = None
        inputs = dict(first)
        for step in range(passes):
            if self.lateral and spikes is not None:
                inputs["L"] = spikes  # the first pass has no lateral input: its aggregate is the bias
            # the second presentation recomputes only what changed (lateral input, feedback)
            out = hidden(inputs, reuse=out)
            spikes = hidden.sample(out.theta, generator)
            inputs = {}
            if feedback and step + 1 < passes:
                read = self.readout({"F": spikes})
                inputs["C"] = read.theta.detach()
        assert out is not None and spikes is not None
        read_inputs = {"F": spikes} if context is None else {"F": spikes, "C": context}
        return NetworkOutput(out, spikes, self.readout(read_inputs))

    def layers(self) -> dict[str, InfomorphicLayer]:
        """The trainable infomorphic layers by name (``hidden`` and/or ``readout``)."""
        out = {"readout": self.readout}
        if self.hidden is not None and self.hidden.goal is not None:
            out = {"hidden": self.hidden, **out}
        return out

    def local_goals(self, out: NetworkOutput) -> dict[str, Tensor]:
        """Each trainable layer's per-neuron goals ``(N,)`` in bits."""
        goals = {"readout": self.readout.local_goal(out.readout)}
        if out.hidden is not None and self.hidden is not None and self.hidden.goal is not None:
            goals = {"hidden": self.hidden.local_goal(out.hidden), **goals}
        return goals


def correct_inverted(theta: Tensor) -> Tensor:
    """Read neurons whose mean firing probability is >= 0.5 as their negation, ``1 - theta``.

    PID cannot tell a neuron from its negation, so a readout neuron may learn to be silent
    for its class.  Shape: ``(B, C) -> (B, C)``; the mean is over the given samples.
    """
    flip = theta.mean(0, keepdim=True) >= 0.5
    return torch.where(flip, 1 - theta, theta)


def predict(theta: Tensor) -> Tensor:
    """Winner-take-all class predictions ``(B,)`` from readout probabilities ``(B, C)``."""
    return correct_inverted(theta).argmax(1)
