"""Networks of infomorphic layers, wired by a :class:`~infomorphic.nn.wiring.NetworkSpec`.

:class:`Network` builds the layers a spec describes (in its order, so initialisation is
reproducible from one generator) and runs them: every batch is presented
``spec.n_presentations`` times; in each presentation the layers run in dependency order, each
reading its input classes from the data, the label (training only), the current outputs of
other layers, or the previous presentation's outputs (lateral input, feedback).  Hidden
layers emit stochastic +-1 spikes, the readout its firing probabilities.

The papers' networks are configurations of it (:func:`kind_spec`, and the TOML files in
``configs/networks/``); ``network`` in the run config names one (Schneider et al. 2024,
"What should a neuron aim for?", appendix A.3; Makkeh et al. 2025):

``single``
    One bivariate readout layer: F = image, C = the neuron's own label element through a
    fixed weight 1.
``trivariate``
    Hidden layer of ``N`` trivariate neurons (F = image, C = one-hot label, L = the other
    hidden neurons' previous outputs) and a bivariate readout (F = hidden outputs, C = own label
    element).  Each batch is presented twice; the first presentation has no lateral input
    (the class aggregates to its bias), the second (the one that learns) sees the first one's
    sampled outputs.  ``setup=1``: dense lateral; ``setup=2``: at most ``lateral_partners``
    random lateral partners; ``setup=3``: as 2, but C is feedback from the readout's previous
    output instead of the label.
``bivariate-context``
    Bivariate hidden layer with F and C (label) only, one presentation.
``bivariate-lateral``
    Bivariate hidden layer with F and L (lateral, as in setup 1/2) only, two presentations.
``random-hidden``
    A fixed random hidden layer (not trained) with a trained infomorphic readout.  Its neurons
    fire stochastically with ``theta = sigmoid(f)`` (``random_activation = "feedforward"``, weights
    scaled by ``random_gain``) or deterministically by the sign of ``f`` (``"step"``: the random
    baseline of Schneider et al. 2025, appendix A.3, which no weight scale changes).

At evaluation the label is withheld (absent); the prediction is the arg-max over the
readout neurons' firing probabilities after correcting inverted neurons.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..goals import Goal
from .functional import join_parts, lateral_mask, lateral_partners
from .layer import InfomorphicLayer, LayerOutput
from .wiring import InputSpec, LayerSpec, NetworkSpec

__all__ = [
    "Network",
    "InfomorphicNetwork",
    "NetworkOutput",
    "NETWORK_KINDS",
    "kind_spec",
    "class_inversion",
    "correct_inverted",
    "predict",
]

NETWORK_KINDS = ("single", "trivariate", "bivariate-context", "bivariate-lateral", "random-hidden")


@dataclass(frozen=True)
class NetworkOutput:
    """The last presentation of a batch: every layer's output and what it emitted.

    Attributes
    ----------
    outputs:
        Layer name -> :class:`~infomorphic.nn.layer.LayerOutput` (aggregates, theta).
    emitted:
        Layer name -> ``(B, N)`` +-1 spikes (sampling layers) or firing probabilities.
    readout:
        The readout layer's output (its theta is the prediction).
    """

    outputs: dict[str, LayerOutput]
    emitted: dict[str, Tensor]
    readout: LayerOutput

    @property
    def hidden(self) -> LayerOutput | None:
        """The output of the layer named ``hidden`` (the papers' networks), or None."""
        return self.outputs.get("hidden")

    @property
    def hidden_spikes(self) -> Tensor | None:
        return self.emitted.get("hidden")


class Network(nn.Module):
    """Infomorphic layers wired as ``spec`` says; each layer is a submodule under its name.

    Args:
        spec: the wiring (layers, readout, presentations): a :class:`NetworkSpec` or its dict
            form (the ``[network]`` table of a TOML config).
        n_inputs: features of the data (e.g. 784), >= 1.
        n_classes: classes (one-hot label size; ``neurons = "classes"``), >= 2.
        n_bins: bins per source of layers that do not set their own.
        generator: random generator of the initial weights, random partners and projections.

    Shape:
        - x: ``(B, n_inputs)``; labels: ``(B,)`` integers or None (evaluation: withheld).
        - output: :class:`NetworkOutput`.
    """

    def __init__(
        self,
        spec: NetworkSpec | Mapping[str, Any],
        n_inputs: int,
        n_classes: int,
        *,
        n_bins: int = 20,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if isinstance(spec, Mapping):
            spec = NetworkSpec.from_dict(spec)  # the TOML / JSON form
        if not isinstance(spec, NetworkSpec):
            raise TypeError(f"spec must be a NetworkSpec or its dict form, got {type(spec).__name__}")
        n_inputs, n_classes = _whole("n_inputs", n_inputs, 1), _whole("n_classes", n_classes, 2)
        self.spec = spec
        self.n_inputs = n_inputs
        self.n_classes = n_classes
        self._order = spec.order()
        self._early = spec.needed_early()
        self._part_sizes = spec.part_sizes(n_inputs, n_classes)  # widths of the joined classes' parts
        self._names: list[str] = []
        self._check_memory()
        for layer_spec in spec.layers:
            layer = self._build_layer(layer_spec, n_bins, generator)
            self.add_module(layer_spec.name, layer)
            self._names.append(layer_spec.name)

    # -------------------------------------------------------------- building
    def _check_memory(self) -> None:
        """Refuse, before allocating anything, a network whose weights alone (float32 values,
        partner indices, random projections) would not fit in this machine's memory: a one-line
        error naming the largest layer and its largest input class instead of an allocator
        failure or a swap storm.  Training needs several times this (gradients, optimiser
        state, the backprop twin); only what can never fit is refused."""
        total = _physical_memory_bytes()
        if total is None:
            return
        need: dict[tuple[str, str], int] = {}
        for ls in self.spec.layers:
            n = self.spec.neurons(ls.name, self.n_classes)
            for letter, src in ls.inputs.items():
                size = self.spec.input_size(src, self.n_inputs, self.n_classes)
                per_neuron = size if src.partners is None else 3 * min(src.partners, size)
                projection = size * self.n_inputs if src.kind == "random" else 0
                need[(ls.name, letter)] = 4 * (n * per_neuron + projection)
        if sum(need.values()) <= total:
            return
        layers = {name: sum(v for (layer, _), v in need.items() if layer == name) for name, _ in need}
        name = max(layers, key=layers.__getitem__)
        letter = max((k for k in need if k[0] == name), key=need.__getitem__)[1]
        gib = 2**30
        raise ValueError(
            f"network layer {name!r}, key 'inputs.{letter}': the network's weights alone need "
            f"{sum(need.values()) / gib:.1f} GiB (layer {name}: {layers[name] / gib:.1f} GiB, of it class "
            f"{letter}: {need[(name, letter)] / gib:.1f} GiB), more than this machine's {total / gib:.1f} GiB "
            "of memory; use fewer neurons, partners instead of a dense input, or a smaller random projection"
        )

    def _build_layer(self, ls: LayerSpec, n_bins: int, generator: torch.Generator | None) -> InfomorphicLayer:
        spec = self.spec
        n = spec.neurons(ls.name, self.n_classes)
        sizes: dict[str, int] = {}
        masks: dict[str, Tensor] = {}
        partners: dict[str, Tensor] = {}
        fixed: dict[str, Tensor] = {}
        for letter, src in ls.inputs.items():
            size = spec.input_size(src, self.n_inputs, self.n_classes)
            sizes[letter] = size
            where = f"network layer {ls.name!r}, key 'inputs.{letter}'"
            if src.kind == "random":
                proj = torch.randn(size, self.n_inputs, generator=generator) / self.n_inputs**0.5
                self.register_buffer(f"projection_{ls.name}_{letter}", proj)
            if src.weights == "identity":
                if size != n:
                    raise ValueError(
                        f"{where}: identity weights need as many inputs as neurons ({size} != {n})"
                    )
                fixed[letter] = torch.eye(n)
                continue
            own = src.kind == "previous" and src.layer == ls.name
            if src.partners is not None:
                # partner indices; the layer stores them sparsely or as a mask (prefer_sparse)
                partners[letter] = (
                    lateral_partners(n, src.partners, generator)
                    if own
                    else _random_partners(n, size, src.partners, generator)
                )
            elif src.mask is not None:
                masks[letter] = _load_mask(src.mask, (n, size), where)
            elif own:
                masks[letter] = lateral_mask(n, None, generator)  # no self-connections
        goal = None
        if ls.goal is not None:
            goal = ls.goal if isinstance(ls.goal, Goal) else Goal.resolve(ls.goal, "".join(ls.inputs))
            goal = goal.with_sources("".join(ls.inputs))
        layer = InfomorphicLayer(
            n,
            sizes,
            goal,
            activation=ls.activation,
            activation_params=ls.activation_params,
            n_bins=ls.n_bins or n_bins,
            binning=ls.binning,
            bin_range=ls.bin_range,
            masks=masks,
            fixed_weights=fixed,
            generator=generator,
            partners=partners,
        )
        if ls.init_gain != 1.0:
            with torch.no_grad():
                for p in layer.parameters():
                    p.mul_(ls.init_gain)
        if ls.frozen:
            layer.requires_grad_(False)
        return layer

    # --------------------------------------------------------------- running
    def layer(self, name: str) -> InfomorphicLayer:
        """The layer called ``name``."""
        module = self._modules.get(name)
        if not isinstance(module, InfomorphicLayer):
            raise KeyError(f"no layer {name!r}; layers: {', '.join(self._names)}")
        return module

    @property
    def readout_layer(self) -> InfomorphicLayer:
        return self.layer(self.spec.readout_name)

    def forward(
        self, x: Tensor, labels: Tensor | None = None, generator: torch.Generator | None = None
    ) -> NetworkOutput:
        """Present the batch ``spec.n_presentations`` times and return the last presentation.

        Args:
            x: ``(B, n_inputs)`` inputs.
            labels: ``(B,)`` integer labels for training (the ``label`` source), or None to
                withhold them (evaluation).
            generator: random generator of the stochastic outputs.
        """
        context = None if labels is None else self._one_hot(labels, x)
        constants: dict[tuple[str, str], Tensor] = {}  # random projections and zeros: one tensor per batch
        previous: dict[str, Tensor] = {}
        outputs: dict[str, LayerOutput] = {}
        given: dict[str, dict[str, Tensor]] = {}
        emitted: dict[str, Tensor] = {}
        passes = self.spec.n_presentations
        for step in range(passes):
            last = step == passes - 1
            current: dict[str, Tensor] = {}
            for name in self._order:
                if not last and name not in self._early:
                    continue
                ls = self.spec.layer(name)
                inputs: dict[str, Tensor] = {}
                for letter, src in ls.inputs.items():
                    value = self._resolve(name, letter, src, x, context, current, previous, constants)
                    if value is not None:
                        inputs[letter] = value
                layer = self.layer(name)
                before = given.get(name)
                if before is None:
                    out = layer(inputs) if inputs else layer({ls_first(ls): self._zeros(x, ls, layer)})
                else:
                    # a later presentation recomputes only the input classes that changed
                    changed = {k: v for k, v in inputs.items() if before.get(k) is not v}
                    out = layer(changed, reuse=outputs[name]) if changed else outputs[name]
                given[name] = inputs
                outputs[name] = out
                current[name] = layer.sample(out.theta, generator) if ls.sample else out.theta.detach()
            previous = current
            emitted = current
        return NetworkOutput(outputs, emitted, outputs[self.spec.readout_name])

    def _one_hot(self, labels: Tensor, x: Tensor) -> Tensor:
        """The label source: one-hot ``(B, n_classes)`` in ``x``'s dtype; clear errors for labels
        that are not class indices."""
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
        if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
            raise ValueError(
                f"labels must have shape ({x.shape[0]},) for a batch of {x.shape[0]}, got {tuple(labels.shape)}"
            )
        # on the CPU only: on a GPU the check would wait for the device every batch, and
        # one_hot's own device-side check reports a bad label there
        unchecked = labels.device.type != "cpu" or not labels.numel()
        if not unchecked and not bool(((labels >= 0) & (labels < self.n_classes)).all()):
            raise ValueError(
                f"labels must lie in [0, {self.n_classes}) for n_classes = {self.n_classes}, "
                f"got min {int(labels.min())} and max {int(labels.max())}"
            )
        return torch.nn.functional.one_hot(labels.long(), self.n_classes).to(x.dtype)

    def _resolve(
        self,
        name: str,
        letter: str,
        src: InputSpec,
        x: Tensor,
        context: Tensor | None,
        current: dict[str, Tensor],
        previous: dict[str, Tensor],
        constants: dict[tuple[str, str], Tensor],
    ) -> Tensor | None:
        kind = src.kind
        if kind == "concat":
            parts = [self._resolve(name, letter, p, x, context, current, previous, {}) for p in src.parts]
            return join_parts(parts, self._part_sizes[(name, letter)], x)
        if kind == "input":
            return x
        if kind == "label":
            return context
        if kind == "layer":
            return current[src.layer]  # type: ignore[index]
        if kind == "previous":
            return previous.get(src.layer)  # type: ignore[arg-type]
        key = (name, letter)
        if key not in constants:
            if kind == "random":
                constants[key] = x @ getattr(self, f"projection_{name}_{letter}").T
            else:
                constants[key] = x.new_zeros(x.shape[0], src.size)  # type: ignore[arg-type]
        return constants[key]

    @staticmethod
    def _zeros(x: Tensor, ls: LayerSpec, layer: InfomorphicLayer) -> Tensor:
        first = ls_first(ls)
        return x.new_zeros(x.shape[0], layer.in_features[first])

    # ------------------------------------------------------------- training
    def layers(self) -> dict[str, InfomorphicLayer]:
        """The trainable layers (with a goal, not frozen) by name, in the spec's order."""
        out = {}
        for ls in self.spec.layers:
            layer = self.layer(ls.name)
            if layer.goal is not None and not ls.frozen:
                out[ls.name] = layer
        return out

    def local_goals(self, out: NetworkOutput) -> dict[str, Tensor]:
        """Each trainable layer's per-neuron goals ``(N,)`` in bits."""
        return {name: layer.local_goal(out.outputs[name]) for name, layer in self.layers().items()}

    def optimizer_settings(
        self, hidden: tuple[float, float], readout: tuple[float, float]
    ) -> dict[str, tuple[float, float]]:
        """``(lr, weight_decay)`` per trainable layer: its own, else ``readout`` for the readout
        layer and ``hidden`` for the others."""
        out = {}
        for name in self.layers():
            ls = self.spec.layer(name)
            default = readout if name == self.spec.readout_name else hidden
            out[name] = (
                ls.lr if ls.lr is not None else default[0],
                ls.weight_decay if ls.weight_decay is not None else default[1],
            )
        return out

    def extra_repr(self) -> str:
        return f"presentations={self.spec.n_presentations}, readout={self.spec.readout_name!r}"


def ls_first(ls: LayerSpec) -> str:
    return next(iter(ls.inputs))


def _whole(name: str, value: Any, least: int) -> int:
    """``value`` as an int (int, numpy integers, 0-d integer tensors; not bool), at least ``least``."""
    try:
        whole = None if isinstance(value, bool) else operator.index(value)
    except TypeError:
        whole = None
    if whole is None or whole < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    return whole


def _physical_memory_bytes() -> int | None:
    """This machine's physical memory in bytes, or None where the platform does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def _random_partners(
    n_neurons: int, n_inputs: int, partners: int, generator: torch.Generator | None
) -> Tensor:
    """``(N, P)`` sorted indices of ``P = min(partners, in)`` random inputs per neuron (all when
    partners >= in, without drawing)."""
    if partners >= n_inputs:
        return torch.arange(n_inputs).expand(n_neurons, -1).clone()
    scores = torch.rand(n_neurons, n_inputs, generator=generator)
    return scores.topk(partners, dim=1).indices.sort(1).values


def _load_mask(mask: Any, shape: tuple[int, int], where: str) -> Tensor:
    """The 0/1 mask of shape ``shape`` given as an array-like or a ``.npy`` file; ``ValueError``
    starting with ``where`` (the layer and key) for anything else."""
    if isinstance(mask, (str, Path)):
        try:
            loaded = np.load(mask, allow_pickle=False)
        except OSError as exc:
            raise ValueError(f"{where}: cannot read the mask {mask} ({exc.strerror or exc})") from None
        except ValueError:  # numpy's advice to unpickle is no answer here
            raise ValueError(
                f"{where}: the mask {mask} is not a .npy file of numbers; write one with numpy.save"
            ) from None
        if not isinstance(loaded, np.ndarray):
            loaded.close()
            raise ValueError(
                f"{where}: the mask {mask} is a .npz archive; give one array as a .npy file (numpy.save)"
            )
        mask = loaded
    try:
        values = np.asarray(mask, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: the mask must be a (neurons, inputs) array of 0 and 1 with rows of equal length, "
            f"got {str(mask)[:60]}"
        ) from None
    m = torch.as_tensor(values)
    if tuple(m.shape) != shape:
        raise ValueError(f"{where}: the mask must have shape {shape} (neurons, inputs), got {tuple(m.shape)}")
    if not bool(((m == 0) | (m == 1)).all()):
        raise ValueError(f"{where}: the mask must hold only 0 and 1")
    return m


# ------------------------------------------------------------------------ the papers' kinds
def kind_spec(
    kind: str,
    *,
    n_hidden: int = 100,
    setup: int = 1,
    lateral_partners: int = 100,
    hidden_goal: Goal | str | None = None,
    readout_goal: Goal | str | None = None,
    hidden_bin_range: tuple[float, float] = (-20.0, 20.0),
    readout_k1: float = 1.0,
    hidden_k1: float = 0.9,
    random_gain: float = 8.0,
    random_activation: str = "feedforward",
    hidden_binning: str = "fixed",
) -> NetworkSpec:
    """The spec of one of the papers' networks (:data:`NETWORK_KINDS`; see the module docstring).

    ``hidden_binning``: ``fixed`` (equal bins on ``hidden_bin_range``) or ``adaptive`` (each
    neuron's aggregates divided by their batch maximum magnitude; the authors' code bins the
    bivariate hidden layers so) for the hidden layer's PID estimate.
    """
    if kind not in NETWORK_KINDS:
        raise ValueError(f"unknown network {kind!r}; choose one of {', '.join(NETWORK_KINDS)}")
    if setup not in (1, 2, 3):
        raise ValueError(f"setup must be 1, 2 or 3, got {setup}")
    if random_activation not in ("feedforward", "step"):
        raise ValueError(f"random_activation must be feedforward or step, got {random_activation!r}")
    if hidden_binning not in ("fixed", "adaptive"):
        raise ValueError(f"hidden_binning must be fixed or adaptive, got {hidden_binning!r}")
    partners = None if setup == 1 else lateral_partners
    lateral = InputSpec("previous:hidden", partners=partners)
    hidden_common: dict[str, Any] = {"binning": hidden_binning, "bin_range": tuple(hidden_bin_range)}
    layers: list[LayerSpec] = []
    if kind == "trivariate":
        context = InputSpec("previous:readout" if setup == 3 else "label")
        layers.append(
            LayerSpec(
                "hidden",
                n_hidden,
                {"F": InputSpec("input"), "C": context, "L": lateral},
                goal=hidden_goal or "trivariate-mnist-tpe",
                activation="trivariate",
                **hidden_common,
            )
        )
    elif kind == "bivariate-context":
        layers.append(
            LayerSpec(
                "hidden",
                n_hidden,
                {"F": InputSpec("input"), "C": InputSpec("label")},
                goal=hidden_goal or "bivariate-context-optimised",
                activation="bivariate",
                activation_params={"k1": hidden_k1},
                **hidden_common,
            )
        )
    elif kind == "bivariate-lateral":
        layers.append(
            LayerSpec(
                "hidden",
                n_hidden,
                {"F": InputSpec("input"), "L": lateral},
                goal=hidden_goal or "bivariate-lateral-optimised",
                activation="bivariate",
                activation_params={"k1": hidden_k1},
                **hidden_common,
            )
        )
    elif kind == "random-hidden":
        layers.append(
            LayerSpec(
                "hidden",
                n_hidden,
                {"F": InputSpec("input"), "C": InputSpec("zeros:1")},
                activation=random_activation,
                frozen=True,
                init_gain=random_gain,
                **hidden_common,
            )
        )
    features = InputSpec("input") if kind == "single" else InputSpec("hidden")
    layers.append(
        LayerSpec(
            "readout",
            "classes",
            {"F": features, "C": InputSpec("label", weights="identity")},
            goal=readout_goal or "readout",
            activation="bivariate",
            activation_params={"k1": readout_k1},
            binning="adaptive",
            sample=False,
        )
    )
    return NetworkSpec(tuple(layers), readout="readout")


class InfomorphicNetwork(Network):
    """One of the papers' networks by kind (:func:`kind_spec`); the readout and, unless
    ``single``, a layer named ``hidden``.

    Args:
        n_inputs: input features (e.g. 784).
        n_classes: classes = readout neurons.
        kind: one of :data:`NETWORK_KINDS`.
        n_hidden: hidden neurons ``N``.
        setup: 1, 2 or 3 for ``trivariate`` (see the module docstring).
        lateral_partners: lateral partners per neuron for setups 2 and 3.
        hidden_goal: local goal of the hidden layer (sources are relabelled to the layer's).
        readout_goal: local goal of the readout (likewise relabelled).
        n_bins: bins per source for the PID estimates.
        hidden_bin_range: fixed bin range of the hidden layer (readout bins are adaptive).
        readout_k1: ``k1`` of the readout's bivariate activation (1 = no context modulation).
        hidden_k1: ``k1`` of a bivariate hidden layer.
        random_gain: ``random-hidden`` only: factor on the default initialisation of the fixed
            random weights.  With the default scale the pre-activations on standardised
            inputs have a standard deviation below 1, the units fire nearly at chance and the
            readout reaches ~20% on MNIST; x8 gives informative random features.
        random_activation: ``random-hidden`` only: ``feedforward`` (stochastic, ``theta =
            sigmoid(f)``) or ``step`` (deterministic sign of ``f``; the paper's random baseline).
        hidden_binning: ``fixed`` or ``adaptive`` binning of the hidden layer's PID estimate.
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
        random_activation: str = "feedforward",
        hidden_binning: str = "fixed",
        generator: torch.Generator | None = None,
    ) -> None:
        spec = kind_spec(
            kind,
            n_hidden=n_hidden,
            setup=setup,
            lateral_partners=lateral_partners,
            hidden_goal=hidden_goal,
            readout_goal=readout_goal,
            hidden_bin_range=hidden_bin_range,
            readout_k1=readout_k1,
            hidden_k1=hidden_k1,
            random_gain=random_gain,
            random_activation=random_activation,
            hidden_binning=hidden_binning,
        )
        super().__init__(spec, n_inputs, n_classes, n_bins=n_bins, generator=generator)
        self.kind = kind
        self.setup = setup
        if kind == "single":
            self.hidden = None

    @property
    def lateral(self) -> bool:
        return self.hidden is not None and "L" in self.hidden.sources

    def extra_repr(self) -> str:
        return f"kind={self.kind}, setup={self.setup}"


def correct_inverted(theta: Tensor) -> Tensor:
    """Read neurons whose mean firing probability is >= 0.5 as their negation, ``1 - theta``.

    PID cannot tell a neuron from its negation, so a readout neuron may learn to be silent
    for its class.  Shape: ``(B, C) -> (B, C)``; the mean is over the given samples.
    """
    return torch.where(mean_inversion(theta), 1 - theta, theta)


def mean_inversion(theta: Tensor) -> Tensor:
    """The papers' rule for which readout neurons are inverted: mean firing probability over the
    given samples >= 0.5.  Shape: ``(B, C) -> (C,)`` bool."""
    return theta.mean(0) >= 0.5


def class_inversion(theta: Tensor, labels: Tensor) -> Tensor:
    """Which readout neurons to read as their negation, decided from labelled samples: neuron
    ``k`` is inverted when its mean firing probability over the samples of class ``k`` is below
    its mean over the other samples.  Shape: ``(B, C), (B,) -> (C,)`` bool.

    The papers' rule (:func:`correct_inverted`, mean probability >= 0.5) assumes a neuron coding
    its class fires for about 1 / C of the samples; a readout that cannot be selective (one or
    two hidden neurons) fires for about half of them and the rule guesses its sign at random,
    down to systematically wrong predictions (accuracy far below chance).  This rule asks the
    labels instead (of training samples: the evaluation's own labels stay unseen).  A class
    without samples, or a neuron firing alike for both, is not inverted.
    """
    onehot = torch.nn.functional.one_hot(labels.long(), theta.shape[1]).to(theta.dtype)
    n_in = onehot.sum(0)
    n_out = len(labels) - n_in
    mean_in = (onehot * theta).sum(0) / n_in.clamp(min=1)
    mean_out = ((1 - onehot) * theta).sum(0) / n_out.clamp(min=1)
    return (mean_in < mean_out) & (n_in > 0) & (n_out > 0)


def predict(theta: Tensor, inverted: Tensor | None = None) -> Tensor:
    """Winner-take-all class predictions ``(B,)`` from readout probabilities ``(B, C)``.

    ``inverted`` ``(C,)``: the neurons to read as ``1 - theta`` (e.g. from
    :func:`class_inversion`); default the papers' rule, :func:`correct_inverted`.
    """
    if len(theta) == 0:
        return torch.zeros(0, dtype=torch.long, device=theta.device)
    if inverted is None:
        return correct_inverted(theta).argmax(1)
    return torch.where(inverted.to(theta.device), 1 - theta, theta).argmax(1)
