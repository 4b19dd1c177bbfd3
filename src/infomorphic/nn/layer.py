"""A layer of infomorphic neurons as a ``torch.nn.Module``.

Each of the layer's ``N`` neurons aggregates every input class (e.g. F, C, L) with its own
weights, combines the aggregates with an activation function, and fires with probability
``theta = sigmoid(A)``.  Its local goal is a weighted sum of the PID atoms of its output with
the aggregated input classes as sources (bits), estimated from the batch: each aggregate is
binned (no gradient) and each sample contributes ``(1 - theta, theta)`` to its cell.

Locality.  Neuron ``j``'s aggregates depend only on row ``j`` of each weight matrix, its
``theta`` only on those aggregates, and its goal only on its own ``theta`` and bins (the PID
engine computes every neuron's pmf from its own column; inputs from other layers or from the
layer's own previous output are detached).  So the gradient of the summed goal with respect to
neuron ``j``'s weights is exactly the gradient of neuron ``j``'s own goal: the Jacobian of the
goals with respect to the weights is block-diagonal, and summing before ``backward`` is only a
way to do all neurons' local updates in one pass.  ``tests/nn/test_layer.py`` checks this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from ..estimate import bin_adaptive, bin_fixed
from ..goals import Goal
from ..pid.samples import sx_pid_from_binary_samples
from .functional import ACTIVATION_DEFAULTS, aggregate, resolve_activation, sample_binary

__all__ = ["InfomorphicLayer", "LayerOutput"]


@dataclass(frozen=True)
class LayerOutput:
    """One forward pass of a layer.

    Attributes
    ----------
    aggregates:
        ``(B, N, K)`` aggregated inputs, one per input class in the layer's source order (a
        view of class-major ``(K, B, N)`` storage: ``aggregates[..., k]`` is contiguous).
    theta:
        ``(B, N)`` firing probabilities.
    """

    aggregates: Tensor
    theta: Tensor


class InfomorphicLayer(nn.Module):
    """``N`` infomorphic neurons with ``K`` (2 to 4) input classes.

    Args:
        n_neurons: number of neurons ``N``.
        sources: input class letter -> number of input features, in PID source order, e.g.
            ``{"F": 784, "C": 10, "L": 100}`` or, with feedback from the layer above,
            ``{"F": 784, "C": 10, "L": 100, "B": 50}``; the letters name the atoms of the goal
            (for four sources e.g. ``Goal.resolve("trivariate-mnist-tpe", "FCLB")``, the
            trivariate goal embedded with every atom involving B at 0).
        goal: the local goal (its sources must be the same letters), or ``None`` for a layer
            that is only run forward (e.g. a fixed random layer).
        activation: ``"bivariate"``, ``"trivariate"``, ``"quadrivariate"``, ``"feedforward"``
            or any callable ``(f, *modulators, **params) -> A`` taking the aggregates in source
            order; default by ``K`` (2: bivariate, 3: trivariate, 4: quadrivariate).
        activation_params: keyword arguments of the activation (defaults in
            :data:`~infomorphic.nn.functional.ACTIVATION_DEFAULTS`).
        n_bins: bins per source for the PID estimate.
        binning: ``"fixed"`` (equal bins on ``bin_range``, values clamped into it) or
            ``"adaptive"`` (each neuron's values divided by their batch maximum magnitude,
            bins on ``[-1, 1]``).
        bin_range: range of fixed bins.
        masks: fixed connectivity per input class, ``(N, in)`` of 0/1; masked weights stay
            exactly zero.
        fixed_weights: input classes whose weights are fixed (not trained, no bias), e.g. the
            readout's one-to-one label context ``{"C": torch.eye(10)}``.
        bias: give trained input classes a bias.
        generator: random generator for the weight initialisation.

    Shape:
        - inputs: a mapping letter -> ``(B, in)`` (a missing class, e.g. a withheld context, is
          treated as zeros).
        - output: :class:`LayerOutput` with aggregates ``(B, N, K)`` and theta ``(B, N)``.

    Attributes:
        weight: ``ParameterDict`` letter -> ``(N, in)``, initialised uniformly in
            ``+-1/sqrt(in)`` (as ``nn.Linear``), masked entries zero.
        bias: ``ParameterDict`` letter -> ``(N,)``, initialised in the same range.
        last_atoms: ``(N, n_atoms)`` PID atoms (bits) of the last goal evaluation, detached.
        last_residual_entropy: ``(N,)`` H(Y | sources) of the last goal evaluation (bits).
    """

    def __init__(
        self,
        n_neurons: int,
        sources: Mapping[str, int],
        goal: Goal | None = None,
        *,
        activation: str | Any | None = None,
        activation_params: Mapping[str, float] | None = None,
        n_bins: int = 20,
        binning: str = "fixed",
        bin_range: tuple[float, float] = (-20.0, 20.0),
        masks: Mapping[str, Tensor] | None = None,
        fixed_weights: Mapping[str, Tensor] | None = None,
        bias: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        letters = tuple(sources)
        if not 2 <= len(letters) <= 4:
            raise ValueError(f"a layer needs 2 to 4 input classes, got {list(letters)}")
        if n_neurons < 1:
            raise ValueError(f"n_neurons must be >= 1, got {n_neurons}")
        if goal is not None and tuple(goal.sources) != letters:
            raise ValueError(
                f"the goal is written for sources {list(goal.sources)} but the layer has {list(letters)}"
            )
        if binning not in ("fixed", "adaptive"):
            raise ValueError(f"binning must be 'fixed' or 'adaptive', got {binning!r}")
        if n_bins < 2:
            raise ValueError(f"n_bins must be >= 2, got {n_bins}")
        masks = dict(masks or {})
        fixed = dict(fixed_weights or {})
        for name in list(masks) + list(fixed):
            if name not in sources:
                raise ValueError(f"mask or fixed weight for unknown input class {name!r}; classes: {list(letters)}")
        if activation is None:
            activation = {2: "bivariate", 3: "trivariate", 4: "quadrivariate"}[len(letters)]
        self.n_neurons = n_neurons
        self.sources = letters
        self.in_features = dict(sources)
        self.goal = goal
        self.activation_name = activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
        self._activation = resolve_activation(activation)
        defaults = ACTIVATION_DEFAULTS.get(activation, {}) if isinstance(activation, str) else {}
        self.activation_params = {**defaults, **dict(activation_params or {})}
        self.n_bins = n_bins
        self.binning = binning
        self.bin_range = (float(bin_range[0]), float(bin_range[1]))
        self.weight = nn.ParameterDict()
        self.bias = nn.ParameterDict()
        for name, size in sources.items():
            if name in fixed:
                w = torch.as_tensor(fixed[name], dtype=torch.get_default_dtype())
                if w.shape != (n_neurons, size):
                    raise ValueError(f"fixed weight of {name!r} must have shape {(n_neurons, size)}, got {tuple(w.shape)}")
                self.register_buffer(f"fixed_{name}", w.clone())
                continue
            self.weight[name] = nn.Parameter(torch.empty(n_neurons, size))
            if bias:
                self.bias[name] = nn.Parameter(torch.empty(n_neurons))
            if name in masks:
                m = torch.as_tensor(masks[name], dtype=torch.get_default_dtype())
                if m.shape != (n_neurons, size):
                    raise ValueError(f"mask of {name!r} must have shape {(n_neurons, size)}, got {tuple(m.shape)}")
                self.register_buffer(f"mask_{name}", (m != 0).to(m.dtype))
        self.register_buffer("last_atoms", torch.zeros(0), persistent=False)
        self.register_buffer("last_residual_entropy", torch.zeros(0), persistent=False)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform initialisation in ``+-1/sqrt(in)`` per input class; masked weights zero."""
        with torch.no_grad():
            for name, w in self.weight.items():
                bound = 1.0 / math.sqrt(max(1, self.in_features[name]))
                w.copy_(torch.rand(w.shape, generator=generator) * 2 * bound - bound)
                mask = self.mask(name)
                if mask is not None:
                    w.mul_(mask)
                if name in self.bias:
                    b = self.bias[name]
                    b.copy_(torch.rand(b.shape, generator=generator) * 2 * bound - bound)

    def mask(self, name: str) -> Tensor | None:
        """The fixed connectivity mask of an input class, or ``None``."""
        return getattr(self, f"mask_{name}", None)

    def effective_weight(self, name: str) -> Tensor:
        """Weights actually used for an input class (masked, or fixed), ``(N, in)``."""
        if name in self.weight:
            mask = self.mask(name)
            w = self.weight[name]
            return w if mask is None else w * mask
        return getattr(self, f"fixed_{name}")

    def extra_repr(self) -> str:
        src = ", ".join(f"{k}={v}" for k, v in self.in_features.items())
        goal = self.goal.to_expression() if self.goal is not None else None
        return (
            f"n_neurons={self.n_neurons}, sources=({src}), activation={self.activation_name}"
            f"{self.activation_params}, n_bins={self.n_bins}, binning={self.binning}"
            + (f", bin_range={self.bin_range}" if self.binning == "fixed" else "")
            + f", goal={goal!r}"
        )

    # ------------------------------------------------------------------ forward
    def aggregate(self, inputs: Mapping[str, Tensor], reuse: Tensor | None = None) -> Tensor:
        """Aggregated inputs ``(B, N, K)``.

        A missing input class aggregates to its bias, or, when ``reuse`` (earlier aggregates
        ``(B, N, K)`` of the same batch) is given, keeps its earlier aggregate: a second
        presentation of a batch only recomputes the inputs that changed (e.g. lateral).
        """
        unknown = set(inputs) - set(self.sources)
        if unknown:
            raise ValueError(f"unknown input classes {sorted(unknown)}; this layer has {list(self.sources)}")
        if not inputs:
            raise ValueError("no inputs given")
        for name, x in inputs.items():
            if x.ndim != 2 or x.shape[1] != self.in_features[name]:
                raise ValueError(
                    f"input {name!r} must have shape (B, {self.in_features[name]}), got {tuple(x.shape)}"
                )
        first_name, first = next(iter(inputs.items()))
        batch = first.shape[0]
        if reuse is not None and (reuse.shape[0] != batch or reuse.shape[1:] != (self.n_neurons, len(self.sources))):
            raise ValueError(
                f"reused aggregates must have shape ({batch}, {self.n_neurons}, {len(self.sources)}), "
                f"got {tuple(reuse.shape)}"
            )
        for name, x in inputs.items():
            if x.shape[0] != batch:
                raise ValueError(f"input {name!r} has {x.shape[0]} samples but input {first_name!r} has {batch}")
        parts = []
        for i, name in enumerate(self.sources):
            w = self.weight[name] if name in self.weight else getattr(self, f"fixed_{name}")
            b = self.bias[name] if name in self.bias else None
            x = inputs.get(name)
            if x is None and reuse is not None:
                parts.append(reuse[..., i])
                continue
            if x is None:
                parts.append((b if b is not None else w.new_zeros(self.n_neurons)).expand(batch, -1))
                continue
            parts.append(aggregate(x.detach(), w, b, self.mask(name)))
        # class-major storage: each class's (B, N) block stays contiguous (no interleaving copy)
        return torch.stack(parts).permute(1, 2, 0)

    def forward(self, inputs: Mapping[str, Tensor], reuse: LayerOutput | None = None) -> LayerOutput:
        """Aggregate, activate, and return firing probabilities.

        ``reuse``: an earlier output for the same batch whose aggregates are kept for the input
        classes not given in ``inputs`` (see :meth:`aggregate`).
        """
        agg = self.aggregate(inputs, None if reuse is None else reuse.aggregates)
        # unbind along the class-major axis: the same views as agg.unbind(-1), but the backward
        # then stacks each class's gradient into a contiguous (B, N) block (no strided copies)
        act = self._activation(*agg.permute(2, 0, 1).unbind(0), **self.activation_params)
        return LayerOutput(agg, torch.sigmoid(act))

    def sample(self, theta: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Stochastic +-1 outputs with ``P(+1) = theta`` (no gradient)."""
        return sample_binary(theta, generator)

    # --------------------------------------------------------------------- goal
    def bins(self, aggregates: Tensor) -> Tensor:
        """Bin indices ``(B, N, K)`` of the aggregates (no gradient)."""
        # int32 (half the memory traffic of int64): the PID engine takes either
        if self.binning == "fixed":
            return bin_fixed(aggregates, self.n_bins, *self.bin_range, dtype=torch.int32)
        return bin_adaptive(aggregates, self.n_bins, dim=0, dtype=torch.int32)

    def local_goal(self, out: LayerOutput) -> Tensor:
        """Each neuron's goal ``(N,)`` in bits, differentiable in its own weights.

        Also stores the atoms in :attr:`last_atoms` and :attr:`last_residual_entropy`.
        """
        if self.goal is None:
            raise ValueError("this layer has no goal; give one to train it")
        res = sx_pid_from_binary_samples(
            self.bins(out.aggregates), out.theta, self.n_bins, validate=False,
            grad_hint=self.goal.redundancy_weights(),
        )
        self.last_atoms = res.atoms.detach()
        self.last_residual_entropy = res.residual_entropy.detach()
        return self.goal.evaluate(res.atoms, res.residual_entropy)
