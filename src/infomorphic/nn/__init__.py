"""Infomorphic neurons, layers and networks (PyTorch modules).

The public names of this package:

- :class:`InfomorphicLayer`: a layer of neurons with 2 to 4 input classes (F, C, L, ...), an
  activation that combines their aggregates, and a local goal (:class:`~infomorphic.goals.Goal`,
  in bits) that :meth:`InfomorphicLayer.local_goal` computes per neuron from a batch;
  :class:`LayerOutput` is what it returns (aggregates, firing probabilities ``theta``).
- :class:`Network`: layers wired by a :class:`NetworkSpec` (a list of :class:`LayerSpec`, each
  input class read from an :class:`InputSpec`: the data, the label, another layer, the
  previous presentation, a random projection or zeros); :class:`NetworkOutput` is its output.
  :func:`stacked` writes the spec of a stack of hidden layers and a readout,
  :func:`kind_spec` the spec of one of the papers' networks (:data:`NETWORK_KINDS`), and
  :class:`InfomorphicNetwork` builds such a network from its kind.
- :func:`predict` turns readout firing probabilities into class predictions (after
  :func:`correct_inverted`, the papers' rule, or :func:`class_inversion`, the sign of each
  readout neuron decided from labelled training samples).
- :mod:`infomorphic.nn.functional`: the stateless pieces (aggregation, activations, sampling,
  partner masks).

Training (turning the goals into one backward pass) lives in :mod:`infomorphic.train`.
"""

from __future__ import annotations

from . import functional
from .layer import InfomorphicLayer, LayerOutput
from .network import (
    NETWORK_KINDS,
    InfomorphicNetwork,
    Network,
    NetworkOutput,
    class_inversion,
    correct_inverted,
    kind_spec,
    predict,
)
from .wiring import SOURCE_KINDS, InputSpec, LayerSpec, NetworkSpec, stacked

__all__ = [
    "NETWORK_KINDS",
    "SOURCE_KINDS",
    "InfomorphicLayer",
    "InfomorphicNetwork",
    "InputSpec",
    "LayerOutput",
    "LayerSpec",
    "Network",
    "NetworkOutput",
    "NetworkSpec",
    "class_inversion",
    "correct_inverted",
    "functional",
    "kind_spec",
    "predict",
    "stacked",
]
