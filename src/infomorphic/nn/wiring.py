"""How a network is wired: layers, their input classes and where each input comes from.

A network is a list of layers (:class:`LayerSpec`).  Each layer names its neurons, activation,
goal and binning and, for each of its 2 to 4 input classes (one capital letter each, e.g.
F, C, L, B), where that input comes from (:class:`InputSpec`):

``input``
    the data (e.g. the 784 pixels);
``label``
    the one-hot label: a context during training, withheld (absent) at evaluation;
``<layer>``
    the output of another layer in the current presentation (must not form a cycle);
``previous:<layer>``
    the output of any layer in the previous presentation of the same batch: the layer's own
    (lateral input, without self-connections) or a higher one (feedback); absent in the first
    presentation, where the class aggregates to its bias;
``random:<n>``
    a fixed random projection of the data to ``n`` values (not trained);
``zeros:<n>``
    ``n`` zeros (a placeholder class, e.g. for a frozen random layer);
``<a>+<b>+...``
    the values of several sources side by side (``input``, ``<layer>`` or
    ``previous:<layer>`` of another layer), e.g. ``"h1+h2"`` for a readout that reads every
    hidden layer (a skip connection); in TOML also a list, ``F = ["h1", "h2"]``.  A part that is
    absent (a ``previous:`` source in the first presentation) contributes zeros; the class is
    absent only when every part is.

Each class is dense by default, or has a fixed number of random ``partners`` per neuron, or a
user-given 0/1 ``mask`` of shape (neurons, inputs); ``weights = "identity"`` makes a fixed
one-to-one connection (the readout's own label element).  A layer with ``sample = true`` emits
stochastic +-1 spikes, otherwise its firing probabilities.  The readout layer's probabilities
are the network's prediction.

Every batch is presented ``presentations`` times (default: 2 when any input comes from a
previous presentation, else 1); only the last presentation's outputs enter the goals.  Before
the last presentation only the layers that a later presentation reads (and what they need)
are computed.

The same structure is written in Python (the dataclasses below) or as a TOML table::

    [network]
    readout = "readout"

    [[network.layers]]
    name = "hidden"
    neurons = 100
    goal = "trivariate-mnist-tpe"
    inputs = { F = "input", C = "label", L = "previous:hidden" }

    [[network.layers]]
    name = "readout"
    neurons = "classes"
    goal = "readout"
    activation = "bivariate"
    activation_params = { k1 = 1.0 }
    binning = "adaptive"
    sample = false
    inputs = { F = "hidden", C = { from = "label", weights = "identity" } }

:meth:`NetworkSpec.from_dict` checks everything before any weight exists: unknown sources or
keys, cycles within one presentation, a goal whose letters do not match the layer's input
classes, fewer than 2 or more than 4 input classes; each error is one line naming the layer
and the key.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["InputSpec", "LayerSpec", "NetworkSpec", "SOURCE_KINDS", "stacked"]

SOURCE_KINDS = ("input", "label", "layer", "previous", "random", "zeros", "concat")
CONCAT_PARTS = ("input", "layer", "previous")
"""The kinds of source a concatenation (``"h1+h2"``) may join."""
_LETTER = re.compile(r"[A-Z]")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_RESERVED = {
    # source words: a layer so named could not be told from the source
    "input",
    "label",
    "previous",
    "random",
    "zeros",
    # attributes of the network module
    "training",
    "forward",
    "layers",
    "spec",
    "readout_name",
    "inputs",
    "outputs",
    "named",
    "state",
    "parameters",
    "modules",
    "children",
    "buffers",
    "apply",
    "cuda",
    "cpu",
    "to",
    "type",
    "eval",
    "train",
    "float",
    "double",
    "half",
    "zero_grad",
    "extra_repr",
    "local_goals",
    "presentations",
    "network",
}


def _where(layer: str | None, key: str) -> str:
    return f"network layer {layer!r}, key {key!r}" if layer is not None else f"network key {key!r}"


def _err(layer: str | None, key: str, message: str) -> ValueError:
    return ValueError(f"{_where(layer, key)}: {message}")


@dataclass(frozen=True)
class InputSpec:
    """Where one input class of a layer comes from, and how it is connected.

    Attributes
    ----------
    source:
        ``input``, ``label``, ``<layer>``, ``previous:<layer>``, ``random:<n>``, ``zeros:<n>``,
        or several of the first three joined by ``+`` (their values side by side).
    partners:
        A fixed number of random partners per neuron (None: dense).  As many as there are
        inputs, or more, means every input (for a layer's own previous output: every other
        neuron), drawn without randomness: the same network as a dense class.
    mask:
        A user-given 0/1 mask of shape (neurons, inputs) (array-like or the path of a ``.npy``
        file), or None.
    weights:
        ``trained`` (default) or ``identity`` (fixed one-to-one weights of 1, no bias; needs as
        many inputs as neurons).
    """

    source: str
    partners: int | None = None
    mask: Any = None
    weights: str = "trained"

    @property
    def kind(self) -> str:
        """``input``, ``label``, ``layer``, ``previous``, ``random``, ``zeros`` or ``concat``."""
        if "+" in self.source:
            return "concat"
        head = self.source.split(":", 1)[0]
        if self.source in ("input", "label"):
            return self.source
        if head in ("previous", "random", "zeros") and ":" in self.source:
            return head
        return "layer"

    @property
    def layer(self) -> str | None:
        """The layer a ``layer`` / ``previous`` source reads, else None."""
        kind = self.kind
        if kind == "layer":
            return self.source
        if kind == "previous":
            return self.source.split(":", 1)[1]
        return None

    @property
    def parts(self) -> tuple[InputSpec, ...]:
        """The sources a ``concat`` source joins, in order (each a plain :class:`InputSpec`);
        ``(self,)`` for any other source."""
        if self.kind != "concat":
            return (self,)
        return tuple(InputSpec(part) for part in self.source.split("+"))

    @property
    def size(self) -> int | None:
        """``n`` of ``random:<n>`` / ``zeros:<n>``, else None."""
        if self.kind in ("random", "zeros"):
            return int(self.source.split(":", 1)[1])
        return None

    def to_dict(self) -> dict[str, Any] | str:
        """The TOML / JSON form (a plain string when only the source is set)."""
        if self.partners is None and self.mask is None and self.weights == "trained":
            return self.source
        out: dict[str, Any] = {"from": self.source}
        if self.partners is not None:
            out["partners"] = self.partners
        if self.mask is not None:
            out["mask"] = self.mask if isinstance(self.mask, str) else _as_list(self.mask)
        if self.weights != "trained":
            out["weights"] = self.weights
        return out


def _as_list(mask: Any) -> Any:
    tolist = getattr(mask, "tolist", None)
    return tolist() if tolist is not None else mask


@dataclass(frozen=True)
class LayerSpec:
    """One layer of infomorphic neurons and the origin of each of its input classes.

    Attributes
    ----------
    name:
        Lower-case identifier (``hidden``, ``h2``, ``readout``).
    neurons:
        Number of neurons, or ``"classes"`` (one per class: a readout).
    inputs:
        Input class letter -> :class:`InputSpec`, in PID source order (2 to 4 classes).
    goal:
        Preset, expression or vector over the layer's letters (or, in Python, a
        :class:`~infomorphic.goals.Goal` with as many sources); None only for a frozen layer.
    activation, activation_params:
        ``bivariate``, ``trivariate``, ``feedforward`` or any registered name (default by the
        number of classes), and its parameters.
    binning, n_bins, bin_range:
        ``fixed`` (equal bins on ``bin_range``) or ``adaptive``; ``n_bins`` None: the network
        default.
    sample:
        Emit stochastic +-1 spikes (True) or the firing probabilities (False).
    frozen:
        Not trained (a fixed random layer); ``init_gain`` scales its initial weights.
    lr, weight_decay:
        Adam settings of the layer (None: the run's hidden or readout setting).
    """

    name: str
    neurons: int | str
    inputs: Mapping[str, InputSpec]
    goal: Any = None
    activation: str | None = None
    activation_params: Mapping[str, float] = field(default_factory=dict)
    binning: str = "fixed"
    n_bins: int | None = None
    bin_range: tuple[float, float] = (-20.0, 20.0)
    sample: bool = True
    frozen: bool = False
    init_gain: float = 1.0
    lr: float | None = None
    weight_decay: float | None = None

    def sources(self) -> list[InputSpec]:
        """Every source the layer reads: each input class's, a concatenation's parts one by one."""
        return [part for src in self.inputs.values() for part in src.parts]

    def to_dict(self) -> dict[str, Any]:
        """The TOML / JSON form."""
        out: dict[str, Any] = {
            "name": self.name,
            "neurons": self.neurons,
            "inputs": {k: v.to_dict() for k, v in self.inputs.items()},
        }
        defaults = LayerSpec("x", 1, {})
        for f in fields(self):
            if f.name in ("name", "neurons", "inputs"):
                continue
            value = getattr(self, f.name)
            if f.name == "goal" and value is not None and not isinstance(value, str):
                value = value.to_expression()
            if value != getattr(defaults, f.name):
                out[f.name] = (
                    dict(value)
                    if f.name == "activation_params"
                    else (list(value) if f.name == "bin_range" else value)
                )
        return out


@dataclass(frozen=True)
class NetworkSpec:
    """A network: its layers (built, and initialised, in this order), the readout and the
    number of presentations per batch."""

    layers: tuple[LayerSpec, ...]
    readout: str | None = None
    presentations: int | None = None

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ access
    @property
    def readout_name(self) -> str:
        return self.readout if self.readout is not None else self.layers[-1].name

    def layer(self, name: str) -> LayerSpec:
        for spec in self.layers:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def n_presentations(self) -> int:
        """Presentations per batch (default: 2 with any ``previous:`` input, else 1)."""
        if self.presentations is not None:
            return self.presentations
        return 2 if any(s.kind == "previous" for spec in self.layers for s in spec.sources()) else 1

    def order(self) -> list[str]:
        """Layer names in an order where every current-presentation input comes first."""
        return _topological(self)

    def needed_early(self) -> set[str]:
        """Layers computed before the last presentation: those a ``previous:`` input reads,
        and the current-presentation inputs they need."""
        need = {s.layer for spec in self.layers for s in spec.sources() if s.kind == "previous"}
        stack = [n for n in need if n is not None]
        seen: set[str] = set()
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack += [s.layer for s in self.layer(name).sources() if s.kind == "layer" and s.layer]
        return seen

    def neurons(self, name: str, n_classes: int) -> int:
        value = self.layer(name).neurons
        return n_classes if value == "classes" else int(value)

    def input_size(self, spec: InputSpec, n_inputs: int, n_classes: int) -> int:
        """Number of values an input class receives."""
        kind = spec.kind
        if kind == "concat":
            return sum(self.input_size(part, n_inputs, n_classes) for part in spec.parts)
        if kind == "input":
            return n_inputs
        if kind == "label":
            return n_classes
        if kind in ("layer", "previous"):
            assert spec.layer is not None
            return self.neurons(spec.layer, n_classes)
        assert spec.size is not None
        return spec.size

    def part_sizes(self, n_inputs: int, n_classes: int) -> dict[tuple[str, str], list[int]]:
        """(layer, letter) -> the widths of the parts of every joined input class, in order."""
        return {
            (ls.name, letter): [self.input_size(p, n_inputs, n_classes) for p in src.parts]
            for ls in self.layers
            for letter, src in ls.inputs.items()
            if src.kind == "concat"
        }

    def uses_label(self) -> bool:
        return any(s.kind == "label" for spec in self.layers for s in spec.sources())

    # ------------------------------------------------------------------- forms
    def to_dict(self) -> dict[str, Any]:
        """The TOML / JSON form (what :meth:`from_dict` reads)."""
        out: dict[str, Any] = {"layers": [spec.to_dict() for spec in self.layers]}
        if self.readout is not None:
            out["readout"] = self.readout
        if self.presentations is not None:
            out["presentations"] = self.presentations
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NetworkSpec:
        """Read the ``[network]`` table of a TOML config (or the same as a Python mapping)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"the network must be a table with a list of layers, got {type(data).__name__}")
        unknown = sorted(set(data) - {"layers", "readout", "presentations"})
        if unknown:
            raise _err(
                None, unknown[0], "unknown key; the [network] table takes layers, readout, presentations"
            )
        raw_layers = data.get("layers")
        if not isinstance(raw_layers, Sequence) or isinstance(raw_layers, str) or not raw_layers:
            raise _err(None, "layers", "give at least one layer ([[network.layers]] tables)")
        layers = tuple(_layer_from_dict(i, raw) for i, raw in enumerate(raw_layers))
        readout = data.get("readout")
        if readout is not None and not isinstance(readout, str):
            raise _err(None, "readout", f"must be a layer name, got {readout!r}")
        presentations = data.get("presentations")
        if presentations is not None and (
            not isinstance(presentations, int) or isinstance(presentations, bool)
        ):
            raise _err(None, "presentations", f"must be an integer >= 1, got {presentations!r}")
        return cls(layers, readout, presentations)

    def replace_layer(self, name: str, **changes: Any) -> NetworkSpec:
        """A copy with one layer's settings changed."""
        return replace(
            self, layers=tuple(replace(s, **changes) if s.name == name else s for s in self.layers)
        )


# ------------------------------------------------------------------ reading
_LAYER_KEYS = {f.name for f in fields(LayerSpec)}
_INPUT_KEYS = {"from", "partners", "mask", "weights"}


def _layer_from_dict(index: int, raw: Any) -> LayerSpec:
    if not isinstance(raw, Mapping):
        raise _err(None, f"layers[{index}]", f"must be a table, got {raw!r}")
    name = raw.get("name")
    label = name if isinstance(name, str) else f"#{index + 1}"
    unknown = sorted(set(raw) - _LAYER_KEYS)
    if unknown:
        raise _err(label, unknown[0], f"unknown key; layer keys: {', '.join(sorted(_LAYER_KEYS))}")
    for key in ("name", "neurons", "inputs"):
        if key not in raw:
            raise _err(label, key, "missing")
    inputs_raw = raw["inputs"]
    if not isinstance(inputs_raw, Mapping):
        raise _err(label, "inputs", 'must be a table letter -> source, e.g. { F = "input", C = "label" }')
    inputs = {letter: _input_from(label, letter, value) for letter, value in inputs_raw.items()}
    kwargs = {k: v for k, v in raw.items() if k not in ("inputs",)}
    if "bin_range" in kwargs:
        value = kwargs["bin_range"]
        if not (
            isinstance(value, Sequence)
            and not isinstance(value, str)
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        ):
            raise _err(label, "bin_range", f"must be [low, high], got {value!r}")
        kwargs["bin_range"] = (float(value[0]), float(value[1]))
    if "activation_params" in kwargs:
        params = kwargs["activation_params"]
        if not isinstance(params, Mapping) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in params.values()
        ):
            raise _err(label, "activation_params", f"must be a table of numbers, got {params!r}")
        kwargs["activation_params"] = {k: float(v) for k, v in params.items()}
    for key in ("init_gain", "lr", "weight_decay"):
        if isinstance(kwargs.get(key), int) and not isinstance(kwargs.get(key), bool):
            kwargs[key] = float(kwargs[key])
    return LayerSpec(inputs=inputs, **kwargs)


def _input_from(layer: str, letter: str, value: Any) -> InputSpec:
    key = f"inputs.{letter}"
    if isinstance(value, str):
        return InputSpec(value)
    if isinstance(value, Sequence):
        return InputSpec(_joined(layer, key, value))
    if not isinstance(value, Mapping):
        raise _err(
            layer, key, f"must be a source string, a list of sources or a table with 'from', got {value!r}"
        )
    unknown = sorted(set(value) - _INPUT_KEYS)
    if unknown:
        raise _err(layer, f"{key}.{unknown[0]}", f"unknown key; input keys: {', '.join(sorted(_INPUT_KEYS))}")
    if "from" not in value:
        raise _err(layer, f"{key}.from", "missing: where the input comes from")
    source = value["from"]
    if isinstance(source, Sequence) and not isinstance(source, str):
        source = _joined(layer, f"{key}.from", source)
    return InputSpec(source, value.get("partners"), value.get("mask"), value.get("weights", "trained"))


def _joined(layer: str, key: str, parts: Sequence[Any]) -> str:
    """The ``a+b`` form of a list of sources (a concatenation)."""
    if len(parts) < 2 or not all(isinstance(p, str) and p for p in parts):
        raise _err(layer, key, f"a list of sources joins two or more source strings, got {list(parts)!r}")
    return "+".join(parts)


# --------------------------------------------------------------- validation
def _validate(net: NetworkSpec) -> None:
    if not net.layers:
        raise _err(None, "layers", "give at least one layer")
    names: list[str] = []
    for spec in net.layers:
        if (
            not isinstance(spec.name, str)
            or not _NAME.fullmatch(spec.name)
            or keyword.iskeyword(spec.name)
            or spec.name in _RESERVED
        ):
            raise _err(
                str(spec.name),
                "name",
                "must be a lower-case identifier (letters, digits, _), not a reserved word "
                "(input, label, previous, random, zeros and the network's attributes)",
            )
        if spec.name in names:
            raise _err(spec.name, "name", "used by two layers")
        names.append(spec.name)
    for spec in net.layers:
        _validate_layer(spec, names)
    if net.readout is not None and net.readout not in names:
        raise _err(None, "readout", f"no layer named {net.readout!r}; layers: {', '.join(names)}")
    if net.presentations is not None and net.presentations < 1:
        raise _err(None, "presentations", f"must be >= 1, got {net.presentations}")
    readout = net.layer(net.readout_name)
    if readout.sample:
        raise _err(readout.name, "sample", "the readout emits firing probabilities: set sample = false")
    _topological(net)  # raises on a cycle


def _validate_layer(spec: LayerSpec, names: Sequence[str]) -> None:
    name = spec.name
    n = spec.neurons
    if not (n == "classes" or (isinstance(n, int) and not isinstance(n, bool) and n >= 1)):
        raise _err(name, "neurons", f'must be an integer >= 1 or "classes", got {n!r}')
    letters = list(spec.inputs)
    if not 2 <= len(letters) <= 4:
        raise _err(
            name, "inputs", f"a layer needs 2 to 4 input classes, got {len(letters)} ({', '.join(letters)})"
        )
    for letter in letters:
        if not isinstance(letter, str) or not _LETTER.fullmatch(letter):
            raise _err(
                name, "inputs", f"input classes are single capital letters (F, C, L, B, ...), got {letter!r}"
            )
    for letter, src in spec.inputs.items():
        _validate_input(name, letter, src, names)
    if spec.goal is None and not spec.frozen:
        raise _err(name, "goal", "missing: give a goal (preset, expression or vector) or set frozen = true")
    if spec.goal is not None:
        from ..goals import Goal

        if isinstance(spec.goal, Goal):
            if len(spec.goal.sources) != len(letters):
                raise _err(
                    name,
                    "goal",
                    f"the goal has {len(spec.goal.sources)} sources "
                    f"({''.join(spec.goal.sources)}) but the layer has {len(letters)} ({''.join(letters)})",
                )
        elif not isinstance(spec.goal, str):
            raise _err(
                name,
                "goal",
                f"must be a string (preset, expression or comma-separated vector), got {spec.goal!r}",
            )
        else:
            try:
                Goal.resolve(spec.goal, "".join(letters))
            except ValueError as exc:
                text = " ".join(str(exc).split())
                raise _err(
                    name, "goal", f"{text} (the layer's input classes are {''.join(letters)})"
                ) from None
    if spec.binning not in ("fixed", "adaptive"):
        raise _err(name, "binning", f"must be fixed or adaptive, got {spec.binning!r}")
    if spec.n_bins is not None and (not isinstance(spec.n_bins, int) or spec.n_bins < 2):
        raise _err(name, "n_bins", f"must be an integer >= 2, got {spec.n_bins!r}")
    low, high = spec.bin_range
    if not high > low:
        raise _err(name, "bin_range", f"high must exceed low, got [{low}, {high}]")
    if spec.activation is not None:
        from .functional import ACTIVATIONS

        if spec.activation not in ACTIVATIONS:
            raise _err(
                name,
                "activation",
                f"unknown activation {spec.activation!r}; choose one of {', '.join(ACTIVATIONS)}",
            )
    if spec.activation is None or isinstance(spec.activation, str):
        from .functional import DEFAULT_ACTIVATION, activation_problem

        activation = spec.activation or DEFAULT_ACTIVATION[len(letters)]
        problem = activation_problem(activation, len(letters), spec.activation_params)
        if problem is not None:
            raise _err(name, *problem)
    for key in ("sample", "frozen"):
        if not isinstance(getattr(spec, key), bool):
            raise _err(name, key, f"must be true or false, got {getattr(spec, key)!r}")
    for key in ("init_gain", "lr", "weight_decay"):
        value = getattr(spec, key)
        if value is not None and (
            not isinstance(value, float) or value != value or abs(value) == float("inf")
        ):
            raise _err(name, key, f"must be a finite number, got {value!r}")
    if spec.lr is not None and not spec.lr > 0:
        raise _err(name, "lr", f"must be > 0, got {spec.lr}")
    if spec.weight_decay is not None and spec.weight_decay < 0:
        raise _err(name, "weight_decay", f"must be >= 0, got {spec.weight_decay}")


def _validate_input(name: str, letter: str, src: InputSpec, names: Sequence[str]) -> None:
    key = f"inputs.{letter}"
    if not isinstance(src.source, str) or not src.source:
        raise _err(name, key, f"the source must be a string, got {src.source!r}")
    kind = src.kind
    if kind == "concat":
        parts = src.source.split("+")
        for part in parts:
            if not part:
                raise _err(name, key, f'an empty part in {src.source!r}; join sources like "h1+h2"')
            sub = InputSpec(part)
            _validate_input(name, letter, sub, names)
            if sub.kind not in CONCAT_PARTS:
                why = (
                    "the label is withheld at evaluation; give it a class of its own"
                    if sub.kind == "label"
                    else "only input, <layer> and previous:<layer> can be joined"
                )
                raise _err(name, key, f"{part!r} cannot be part of a concatenation: {why}")
            if sub.kind == "previous" and sub.layer == name:
                raise _err(
                    name,
                    key,
                    f"{part!r} cannot be part of a concatenation: a layer's own previous output is "
                    "its lateral input, a class of its own (self-connections are left out there)",
                )
        if len(set(parts)) < len(parts):
            raise _err(name, key, f"a source appears twice in {src.source!r}")
    if kind in ("random", "zeros"):
        size = src.source.split(":", 1)[1]
        if not size.isdigit() or int(size) < 1:
            raise _err(name, key, f"{kind}:<n> needs a positive integer n, got {src.source!r}")
    if kind in ("layer", "previous"):
        target = src.layer
        if target not in names:
            hint = "input, label, <layer>, previous:<layer>, random:<n>, zeros:<n>, <a>+<b>"
            raise _err(
                name, key, f"unknown source {src.source!r}; sources: {hint}; layers: {', '.join(names)}"
            )
        if kind == "layer" and target == name:
            raise _err(
                name,
                key,
                f'a layer cannot read its own current output; use "previous:{name}" for lateral input',
            )
    if src.partners is not None and (
        not isinstance(src.partners, int) or isinstance(src.partners, bool) or src.partners < 1
    ):
        raise _err(name, f"{key}.partners", f"must be an integer >= 1, got {src.partners!r}")
    if src.partners is not None and src.mask is not None:
        raise _err(name, key, "give partners or mask, not both")
    if src.weights not in ("trained", "identity"):
        raise _err(name, f"{key}.weights", f"must be trained or identity, got {src.weights!r}")
    if src.weights == "identity" and (src.partners is not None or src.mask is not None):
        raise _err(name, key, "identity weights are one-to-one: they take no partners or mask")


def _topological(net: NetworkSpec) -> list[str]:
    deps = {spec.name: [s.layer for s in spec.sources() if s.kind == "layer"] for spec in net.layers}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join(path[path.index(name) :] + [name])
            first = path[path.index(name)]
            raise _err(
                first,
                "inputs",
                f"the current-presentation inputs form a cycle ({cycle}); read one of "
                'them from the previous presentation ("previous:<layer>")',
            )
        state[name] = 1
        for dep in deps[name]:
            assert dep is not None
            visit(dep, path + [name])
        state[name] = 2
        order.append(name)

    for spec in net.layers:
        visit(spec.name, [])
    return order


def stacked(
    widths: Sequence[int],
    *,
    lateral_partners: int | None = None,
    feedback: str | None = None,
    label: bool = True,
    goal: Any = "trivariate-mnist-tpe",
    feedback_goal: Any = None,
    readout_goal: Any = "readout",
    bin_range: tuple[float, float] = (-20.0, 20.0),
    skip: bool = False,
    dense: bool = False,
) -> NetworkSpec:
    """Hidden layers ``h1 .. hD`` stacked on the data (F = the layer below) and a readout.

    Every hidden layer has lateral input from its own previous output (L; dense without
    self-connections, or ``lateral_partners`` random partners) and, as context:

    - ``feedback=None``: the label (C), when ``label``;
    - ``feedback="C"``: the previous output of the layer above (the readout's firing
      probabilities for the top layer) as C, instead of the label;
    - ``feedback="B"``: the label as C and the layer above as a fourth class B (four-source
      neurons; goal ``feedback_goal``, default: ``goal`` embedded with the B atoms at 0).

    The readout reads the top hidden layer, or with ``skip`` every hidden layer side by side
    (F = ``"h1+h2+..."``: skip connections from each layer to the readout).  ``dense`` (implies
    ``skip``) connects every layer to all below it as well: layer ``i`` reads the data and every
    hidden layer under it side by side (F = ``"input+h1+...+h{i-1}"``, as in a densely connected
    network), so an upper layer can learn features of the data beside those of the layers below.

    ``widths=[100]`` with ``feedback=None`` is setup 1 (``lateral_partners=100``: setup 2).
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise ValueError(f"widths must be a list of hidden-layer widths, e.g. [100, 100], got {widths!r}")
    if not widths:
        raise ValueError("give the width of at least one hidden layer")
    if feedback not in (None, "C", "B"):
        raise ValueError(f"feedback must be None, 'C' or 'B', got {feedback!r}")
    if not label and feedback != "C":
        raise ValueError(
            "without the label, the context must be feedback (feedback='C'); feedback='B' adds "
            "feedback beside the label"
        )
    names = [f"h{i + 1}" for i in range(len(widths))]
    layers = []
    for i, (name, width) in enumerate(zip(names, widths)):
        above = f"previous:{names[i + 1]}" if i + 1 < len(names) else "previous:readout"
        below = "+".join(["input", *names[:i]]) if dense else ("input" if i == 0 else names[i - 1])
        inputs: dict[str, InputSpec] = {"F": InputSpec(below)}
        if feedback == "C":
            inputs["C"] = InputSpec(above)
        elif label:
            inputs["C"] = InputSpec("label")
        inputs["L"] = InputSpec(f"previous:{name}", partners=lateral_partners)
        layer_goal = goal
        if feedback == "B":
            inputs["B"] = InputSpec(above)
            layer_goal = feedback_goal if feedback_goal is not None else _embedded(goal, "FCLB")
        layers.append(LayerSpec(name, width, inputs, goal=layer_goal, binning="fixed", bin_range=bin_range))
    layers.append(
        LayerSpec(
            "readout",
            "classes",
            {
                "F": InputSpec("+".join(names) if skip or dense else names[-1]),
                "C": InputSpec("label", weights="identity"),
            },
            goal=readout_goal,
            activation="bivariate",
            activation_params={"k1": 1.0},
            binning="adaptive",
            sample=False,
        )
    )
    return NetworkSpec(tuple(layers), readout="readout")


def _embedded(goal: Any, letters: str, written_for: str = "FCL") -> Any:
    """``goal`` (written for ``written_for``) with the sources ``letters``; atoms of new classes at 0."""
    from ..goals import Goal

    base = goal if isinstance(goal, Goal) else Goal.resolve(goal, written_for)
    embed = getattr(base, "embed", None)
    if embed is None:
        raise ValueError("embedding a goal into more sources needs Goal.embed (four-source goals)")
    return embed(letters)
