"""Run configuration: one frozen dataclass, loaded from TOML with typed overrides.

Every field has a default; a TOML file (``infomorphic train --config run.toml``) and
command-line overrides (``--set hidden_lr=1e-3`` or the dedicated flags) replace them.  Values
are type-checked against the field; nothing is executed.  The resolved configuration is
written to the run directory before training starts and stored in every checkpoint.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

__all__ = ["TrainConfig", "load_config", "parse_override", "check_finite"]

_DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
_BASELINES = ("backprop", "logistic")


def check_finite(config: Any) -> None:
    """``ValueError`` naming the first float field (or float in a tuple field) of the dataclass
    ``config`` that is NaN or infinite; every config class calls it first when it is built."""
    for f in fields(config):
        value = getattr(config, f.name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a supervised training run (defaults: Schneider et al. 2025, Table 1).

    Attributes
    ----------
    network:
        ``single``, ``trivariate``, ``bivariate-context``, ``bivariate-lateral``,
        ``random-hidden`` (the papers' networks), ``custom`` (wired by ``wiring``) or
        ``backprop`` (the baseline alone).
    wiring:
        The ``[network]`` table of a TOML config: any wiring of infomorphic layers
        (:class:`~infomorphic.nn.wiring.NetworkSpec`); implies ``network = "custom"``.
    setup:
        Trivariate setup: 1 dense lateral, 2 sparse lateral, 3 readout feedback as context.
    hidden:
        Hidden neurons.
    hidden_goal, readout_goal:
        Goal preset name, goal expression, or raw vector in the papers' order.  The hidden
        goal defaults to the network's published optimised goal (``trivariate-mnist-tpe``,
        ``bivariate-context-optimised`` or ``bivariate-lateral-optimised``).
    baselines:
        Baselines trained on the same split for comparison: ``backprop``, ``logistic``.
    backprop_variant:
        ``harness`` (stochastic +-1 hidden units, lateral input added to the drive, softmax
        cross-entropy on linear logits) or ``paper`` (the backprop benchmark of Schneider et
        al. 2025 as the authors' code builds it: the trivariate activation with the label as
        context during training and the lateral input as modulators, 0/1 units, cross-entropy
        on the readout's firing probabilities; see
        :class:`~infomorphic.train.baselines.PaperBackpropNetwork`).
    random_activation:
        ``random-hidden`` only: ``feedforward`` (stochastic units, ``theta = sigmoid(f)``, weights
        scaled by ``random_gain``) or ``step`` (deterministic sign of ``f``: the paper's random
        baseline, independent of ``random_gain``).
    hidden_binning:
        Binning of the hidden layer's PID estimate in the papers' kinds: ``fixed`` (equal bins on
        ``hidden_bin_low..hidden_bin_high``) or ``adaptive`` (each neuron's aggregates divided by
        their batch maximum magnitude, bins on [-1, 1]).
    train_eval_size:
        Training accuracy per epoch is measured (context withheld) on this many training
        samples (a fixed random subset: the split is shuffled), or on all when ``None``.
    eval_every:
        Evaluate (training subset, validation and test accuracy, context withheld) after every
        this many epochs and after the last one; the metrics of the other epochs hold ``null``
        accuracies.  Every evaluation draws from its own per-epoch generator, so an evaluated
        epoch's figures, the weights and the final summary do not depend on it; evaluation is
        13-20 % of an epoch on a CPU (``eval_seconds`` in ``metrics.jsonl``).
    atoms_every:
        Record the PID atoms (``atoms.npz``, the ``*_atoms_mean`` metrics) on the first batch of
        every epoch and then on every this many; the other steps compute only the redundancies
        the goals weigh.  The weights, goals and accuracies are the same to the bit (the goal
        means up to float rounding); the recorded atoms are means over fewer batches.  Saves
        most for four-source layers (a depth-3 feedback network's step: see the benchmarks).
    """

    network: str = "trivariate"
    setup: int = 1
    hidden: int = 100
    lateral_partners: int = 100
    dataset: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.2
    epochs: int = 100
    batch_size: int = 1024
    hidden_goal: str | None = None
    readout_goal: str = "readout"
    hidden_lr: float = 0.002
    hidden_weight_decay: float = 0.00035
    readout_lr: float = 0.003
    readout_weight_decay: float = 0.00015
    readout_k1: float = 1.0
    hidden_k1: float = 0.9
    random_gain: float = 8.0
    random_activation: str = "feedforward"
    hidden_binning: str = "fixed"
    n_bins: int = 20
    hidden_bin_low: float = -20.0
    hidden_bin_high: float = 20.0
    backprop_lr: float = 0.001
    backprop_epochs: int | None = None
    backprop_variant: str = "harness"
    logistic_l2: float = 1e-4
    baselines: tuple[str, ...] = ("backprop", "logistic")
    train_eval_size: int | None = 10000
    eval_every: int = 1
    atoms_every: int = 1
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    out_dir: str = "runs"
    name: str | None = None
    wiring: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        from .nn.network import NETWORK_KINDS

        kinds = NETWORK_KINDS + ("custom", "backprop")
        checks = [
            (self.network in kinds, f"network must be one of {', '.join(kinds)}, got {self.network!r}"),
            (self.setup in (1, 2, 3), f"setup must be 1, 2 or 3, got {self.setup}"),
            (self.hidden >= 1, f"hidden must be >= 1, got {self.hidden}"),
            (self.lateral_partners >= 0, f"lateral_partners must be >= 0, got {self.lateral_partners}"),
            (
                self.dataset in _DATASETS,
                f"dataset must be one of {', '.join(_DATASETS)}, got {self.dataset!r}",
            ),
            (0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}"),
            (self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}"),
            (
                self.train_eval_size is None or self.train_eval_size >= 1,
                f"train_eval_size must be >= 1 or None, got {self.train_eval_size}",
            ),
            (self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}"),
            (self.atoms_every >= 1, f"atoms_every must be >= 1, got {self.atoms_every}"),
            (self.batch_size >= 2, f"batch_size must be >= 2, got {self.batch_size}"),
            (self.n_bins >= 2, f"n_bins must be >= 2, got {self.n_bins}"),
            (self.hidden_bin_high > self.hidden_bin_low, "hidden_bin_high must exceed hidden_bin_low"),
            (
                all(b in _BASELINES for b in self.baselines),
                f"baselines must be among {', '.join(_BASELINES)}, got {list(self.baselines)}",
            ),
            (
                self.backprop_variant in ("harness", "paper"),
                f"backprop_variant must be harness or paper, got {self.backprop_variant!r}",
            ),
            (
                self.random_activation in ("feedforward", "step"),
                f"random_activation must be feedforward or step, got {self.random_activation!r}",
            ),
            (
                self.hidden_binning in ("fixed", "adaptive"),
                f"hidden_binning must be fixed or adaptive, got {self.hidden_binning!r}",
            ),
            (
                self.backprop_variant == "harness" or self.network not in ("single", "custom"),
                f"backprop_variant = paper needs the papers' hidden layer; network {self.network} "
                "has none of its kind (use harness)",
            ),
            (
                self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
                f"device must be cpu, cuda[:k] or auto, got {self.device!r}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        check_finite(self)
        for name in ("hidden_lr", "readout_lr", "backprop_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("hidden_weight_decay", "readout_weight_decay", "logistic_l2"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or unset for torch's default), got {self.threads}")
        if self.backprop_epochs is not None and self.backprop_epochs < 0:
            raise ValueError(f"backprop_epochs must be >= 0, got {self.backprop_epochs}")
        if self.name is not None:
            from .runs import check_run_name

            check_run_name(self.name)
        if (self.network == "custom") != (self.wiring is not None):
            raise ValueError(
                "a custom network needs its wiring: give a [network] table (and leave network out "
                "or set it to custom)"
                if self.wiring is None
                else f"a [network] table wires a custom network, but network = {self.network!r}; "
                "leave network out or set it to custom"
            )
        if self.wiring is not None:
            self.network_spec()  # validates every layer before anything runs
            if self.hidden_goal is not None or self.readout_goal != "readout":
                raise ValueError(
                    "a custom network takes its goals from the [network] table: set goal in each "
                    "layer there instead of hidden_goal / readout_goal / --goal"
                )

    def network_spec(self) -> Any:
        """The :class:`~infomorphic.nn.wiring.NetworkSpec` of a custom network (None for the kinds)."""
        if self.wiring is None:
            return None
        from .nn.wiring import NetworkSpec

        return NetworkSpec.from_dict(self.wiring)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready mapping of every field."""
        out = dataclasses.asdict(self)
        out["baselines"] = list(self.baselines)
        return out

    def to_toml(self) -> str:
        """The config as a TOML file that ``infomorphic train --config`` reads back to an equal
        config: the fields in a ``[train]`` table, the wiring as the ``[network]`` table.  TOML
        has no null: a field left at a default of None is left out, one set to None where the
        default is not is written ``"none"``.  A custom network's config leaves out the keys of
        :data:`KIND_ONLY`, which its layers set."""
        import tomli_w

        defaults = {f.name: f.default for f in fields(self)}
        train: dict[str, Any] = {}
        for key, value in self.to_dict().items():
            if key == "wiring" or (self.wiring is not None and key in KIND_ONLY):
                continue
            if value is None:
                if defaults[key] is not None:
                    train[key] = "none"
                continue
            train[key] = value
        doc: dict[str, Any] = {"train": train}
        if self.wiring is not None:
            doc["network"] = _toml_ready(self.wiring)
        return tomli_w.dumps(doc)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> TrainConfig:
        """Build from a mapping, checking names and types; unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - names)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; valid keys: {', '.join(sorted(names))}")
        hints = get_type_hints(cls)
        return cls(**{k: _coerce(k, v, hints[k]) for k, v in mapping.items()})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (type-checked)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


KIND_ONLY = (
    "hidden",
    "setup",
    "lateral_partners",
    "hidden_k1",
    "readout_k1",
    "random_gain",
    "random_activation",
    "hidden_binning",
    "hidden_bin_low",
    "hidden_bin_high",
)
"""Config keys of the papers' network kinds that a custom network (a ``[network]`` table)
does not read: its layers set them."""


def _masks_beside(wiring: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The ``[network]`` table with every relative ``mask`` file path made absolute against
    ``folder`` (the config file's; ``~`` is the home folder): a config and its masks are kept together, and the run's
    ``config.json`` names files that ``--resume`` and ``report`` find from any working folder.
    Anything malformed is left as it is, for the wiring's own checks to report."""
    layers = wiring.get("layers")
    if not isinstance(layers, list):
        return wiring
    fixed = []
    for layer in layers:
        inputs = layer.get("inputs") if isinstance(layer, dict) else None
        if isinstance(inputs, dict):
            inputs = {
                letter: (
                    {**src, "mask": str(folder / Path(src["mask"]).expanduser())}
                    if isinstance(src, dict) and isinstance(src.get("mask"), str) and src["mask"]
                    else src
                )
                for letter, src in inputs.items()
            }
            layer = {**layer, "inputs": inputs}
        fixed.append(layer)
    return {**wiring, "layers": fixed}


def _toml_ready(value: Any) -> Any:
    """``value`` with None entries of tables left out and arrays / tuples as lists (TOML has
    neither null nor tuples)."""
    if isinstance(value, Mapping):
        return {str(k): _toml_ready(v) for k, v in value.items() if v is not None}
    tolist = getattr(value, "tolist", None)
    if tolist is not None and not isinstance(value, (str, bytes)):
        return tolist()
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value]
    return value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a field's type hint, converting where it is lossless."""
    origin, args = get_origin(hint), get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ValueError(f"config key {name!r} cannot be empty")
    if args and type(None) in args:  # Optional[X]
        hint = next(a for a in args if a is not type(None))
        if hint is not str and isinstance(value, str) and value.strip().lower() == "none":
            return None  # TOML has no null: train_eval_size = "none"
        origin, args = get_origin(hint), get_args(hint)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"config key {name!r} must be a table, got {value!r}")
        return dict(value)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"config key {name!r} must be a list, got {value!r}")
        return tuple(_coerce(name, v, args[0]) for v in value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is float and type(value) is float:
        return value
    raise ValueError(f"config key {name!r} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``(key, value)``; the value is a Python literal or a bare string."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    if value is not None and not isinstance(value, str) and _is_text_field(key):
        value = raw  # e.g. hidden_goal=0,0,1,0,0 (a goal vector) or name=2024 stay text
    return key, value


def _is_text_field(key: str) -> bool:
    hint = get_type_hints(TrainConfig).get(key)
    return hint is str or (get_origin(hint) is not tuple and str in get_args(hint))  # str or str | None


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Defaults, then a TOML file (flat keys, or a ``[train]`` table), then overrides.

    A ``mask`` file named by a relative path in the ``[network]`` table is read from the config
    file's folder (and recorded with its absolute path).  Beside a ``[network]`` table, a key of
    :data:`KIND_ONLY` (in the file or the overrides) is an error, as it would be ignored."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            # utf-8-sig: a byte-order mark, which some editors write, is not an error
            raw = tomllib.loads(p.read_bytes().decode("utf-8-sig"))
        except FileNotFoundError:
            raise ValueError(f"config file {p} does not exist") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"config file {p} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ValueError(f"cannot read config file {p}: {exc.strerror or exc}") from None
        raw = dict(raw)
        wiring = raw.pop("network") if isinstance(raw.get("network"), dict) else None
        if isinstance(raw.get("train"), dict):
            others = sorted(k for k in raw if k != "train")
            if others:
                raise ValueError(
                    f"config file {p} mixes top-level keys ({', '.join(others)}) with a [train] table; "
                    "put every key under [train] (and the wiring under [network]), or write them all "
                    "at the top level"
                )
            raw = raw["train"]
        data.update(raw)
        if wiring is not None:
            data["wiring"] = _masks_beside(wiring, p.resolve().parent)
            data.setdefault("network", "custom")
    data.update({k: v for k, v in (overrides or {}).items()})
    config = TrainConfig.from_dict(data)
    if config.wiring is not None:
        ignored = [key for key in KIND_ONLY if key in data]
        if ignored:
            raise ValueError(
                f"a custom network is wired by its [network] table, which sets every layer's neurons, "
                f"inputs, activation and binning; {', '.join(ignored)} would be ignored: set them in "
                "the layers instead (e.g. neurons = 50, partners = 100, activation_params, bin_range)"
            )
    return config
