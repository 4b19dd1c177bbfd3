"""Baselines trained in the same harness and on the same split as the infomorphic networks.

- :class:`BackpropNetwork`: the same connectivity (hidden layer with the same lateral mask and
  two presentations, stochastic +-1 hidden outputs with a straight-through gradient), trained
  end to end by backpropagation of the cross-entropy (Adam, lr 0.001; Schneider et al. 2025, Table 1).
- :class:`PaperBackpropNetwork`: the backprop benchmark of Schneider et al. 2025 (Fig. 2.B, 8)
  as the authors' code builds it (``backprop_variant = "paper"``).
- :func:`fit_logistic`: one-vs-all logistic regression (one independent logistic unit per
  class, L2-regularised, full-batch L-BFGS), prediction by arg-max.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..nn.functional import join_parts, sample_binary, trivariate_activation
from ..nn.network import correct_inverted
from ..runs import load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from ..nn.network import Network
    from ..nn.wiring import InputSpec

__all__ = [
    "BackpropNetwork",
    "BackpropTwin",
    "PaperBackpropNetwork",
    "fit_backprop",
    "fit_logistic",
    "accuracy",
]


def accuracy(pred: Tensor, y: Tensor) -> float:
    """Fraction of correct predictions."""
    return float((pred == y).float().mean()) if y.numel() else float("nan")


class BackpropNetwork(nn.Module):
    """Hidden layer of stochastic binary units (+ optional masked lateral input) and a linear readout.

    With ``n_hidden = 0`` it is multinomial logistic regression.  The context (label) input of
    the infomorphic network has no counterpart: backprop receives the label through the loss.
    """

    lateral_mask: Tensor  # buffer, present when ``lateral_mask`` is given

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        n_hidden: int,
        lateral_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_hidden = n_hidden
        self.hidden = nn.Linear(n_inputs, n_hidden) if n_hidden else None
        self.lateral = nn.Linear(n_hidden, n_hidden, bias=False) if lateral_mask is not None else None
        if lateral_mask is not None:
            self.register_buffer("lateral_mask", lateral_mask.clone())
        self.readout = nn.Linear(n_hidden or n_inputs, n_classes)
        with torch.no_grad():
            for p in self.parameters():
                bound = 1.0 / max(1, p.shape[-1]) ** 0.5
                p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.hidden is None:
            return self.readout(x)
        drive = self.hidden(x)
        spikes = None
        for _ in range(2 if self.lateral is not None else 1):
            a = drive
            if self.lateral is not None and spikes is not None:
                a = a + nn.functional.linear(spikes, self.lateral.weight * self.lateral_mask)
            theta = torch.sigmoid(a)
            mean = 2 * theta - 1
            spikes = mean + (sample_binary(theta, generator) - mean).detach()  # straight-through
        return self.readout(spikes)


class PaperBackpropNetwork(nn.Module):
    """The backprop benchmark of Schneider et al. 2025 as the authors' code builds it.

    What the paper says (appendix A.3, Table 1): the same connectivity as setup 1, cross-entropy,
    Adam with lr 0.001.  What their code does (github.com/Priesemann-Group/Infomorphic_Networks,
    ``GlobalBackpropModel`` with the ``global_backprop`` config), written anew here:

    - hidden neuron: aggregates ``f`` (image), ``c`` (one-hot label during training; zeros at
      evaluation, so ``c`` is its bias) and ``l`` (the layer's previous output through
      ``lateral_mask``, zeros in the first of two presentations, so ``l`` is its bias), each
      with weights and a bias; the trivariate activation ``A = f [0.8 + 0.1 sigmoid(2 f c) +
      0.1 sigmoid(2 f l)]``: the label and the lateral input only modulate;
    - output ``y = 1`` with probability ``theta = sigmoid(A)``, else ``0`` (sampled in training
      and evaluation), with the straight-through gradient ``d y / d A = sigmoid'(A)``; the
      gradient flows through both presentations;
    - readout: ``theta_k = sigmoid(w_k . y + b_k)``, clipped to ``[1e-6, 1 - 1e-6]``, and the
      loss is the softmax cross-entropy *of these probabilities* (``bounded_logits``): the
      "logits" lie in (0, 1), so the softmax can never be confident and the loss never
      vanishes;
    - prediction: arg-max over the readout's probabilities after correcting inverted neurons
      (mean ``theta >= 0.5``), as for the infomorphic readout.

    Weights and biases start uniform in ``+-1/sqrt(fan_in)`` (``nn.Linear``'s default), masked
    lateral weights at zero.  ``label_context = False`` drops the label input and
    ``bounded_logits = False`` takes the cross-entropy of the linear readout drive (the usual
    logits), to measure what each of the two choices does.

    Shape: ``forward(x (B, in), generator, labels (B,) | None) -> (B, classes)``: the training
    loss's input (probabilities or logits); in eval mode the inversion-corrected probabilities
    (the logits themselves with ``bounded_logits = False``).
    """

    lateral_mask: Tensor

    def __init__(
        self,
        n_inputs: int,
        n_classes: int,
        n_hidden: int,
        lateral_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        *,
        label_context: bool = True,
        bounded_logits: bool = True,
        alpha: float = 0.1,
        beta: float = 2.0,
    ) -> None:
        super().__init__()
        if n_hidden < 1:
            raise ValueError(f"the paper's backprop network needs hidden neurons, got {n_hidden}")
        self.n_classes = n_classes
        self.n_hidden = n_hidden
        self.label_context = label_context
        self.bounded_logits = bounded_logits
        self.alpha, self.beta = alpha, beta
        self.feedforward = nn.Linear(n_inputs, n_hidden)
        self.context = nn.Linear(n_classes, n_hidden)
        self.lateral = nn.Linear(n_hidden, n_hidden)
        self.readout = nn.Linear(n_hidden, n_classes)
        mask = lateral_mask if lateral_mask is not None else 1.0 - torch.eye(n_hidden)
        self.register_buffer("lateral_mask", mask.clone().float())
        with torch.no_grad():
            for lin in (self.feedforward, self.context, self.lateral, self.readout):
                bound = 1.0 / max(1, lin.in_features) ** 0.5
                for p in (lin.weight, lin.bias):
                    p.copy_(torch.rand(p.shape, generator=generator) * 2 * bound - bound)
            self.lateral.weight.mul_(self.lateral_mask)

    def forward(
        self,
        x: Tensor,
        generator: torch.Generator | None = None,
        labels: Tensor | None = None,
        *,
        corrected: bool = True,
    ) -> Tensor:
        """``corrected = False``: in eval mode the readout's probabilities as they are (for
        another inversion rule, e.g. :func:`~infomorphic.nn.network.class_inversion`)."""
        f = self.feedforward(x)
        given = labels is not None and self.label_context and self.training
        onehot = (
            nn.functional.one_hot(labels, self.n_classes).to(x.dtype)  # type: ignore[arg-type]
            if given
            else x.new_zeros(x.shape[0], self.n_classes)
        )
        c = self.context(onehot)
        y = x.new_zeros(x.shape[0], self.n_hidden)
        for _ in range(2):
            lat = nn.functional.linear(y, self.lateral.weight * self.lateral_mask, self.lateral.bias)
            a = trivariate_activation(
                f, c, lat, alpha1=self.alpha, alpha2=self.alpha, beta1=self.beta, beta2=self.beta
            )
            theta = torch.sigmoid(a)
            fired = (sample_binary(theta, generator) + 1) / 2
            y = theta + (fired - theta).detach()  # 0/1 forward, sigmoid'(A) backward
        drive = self.readout(y)
        if not self.bounded_logits:  # logits: shift-invariant per sample, no inversion to correct
            return drive
        out = torch.sigmoid(drive).clamp(1e-6, 1 - 1e-6)
        if self.training or not corrected:
            return out
        return correct_inverted(out)


class BackpropTwin(nn.Module):
    """A backprop network with the connectivity of any wired infomorphic network.

    Every input class that does not come from the label becomes a linear map with the same
    shape and the same fixed mask (random partners, lateral without self-connections) as in
    the infomorphic network; a layer's drive is the sum of its maps, sampling layers emit
    stochastic +-1 outputs with a straight-through gradient, the readout's drive is the
    logits.  Presentations and the origin of every input (current or previous presentation)
    are the infomorphic network's.  Frozen layers stay frozen (their own random weights,
    scaled by the layer's ``init_gain``).  The label reaches the network only through the
    cross-entropy loss.

    Args:
        net: the infomorphic :class:`~infomorphic.nn.network.Network` to copy the wiring from.
        generator: random generator of the initial weights.
    """

    def __init__(self, net: Network, generator: torch.Generator | None = None) -> None:
        super().__init__()
        spec = net.spec
        self.spec = spec
        self.n_classes = net.n_classes
        self.maps = nn.ModuleDict()
        self._part_sizes = spec.part_sizes(net.n_inputs, net.n_classes)  # widths of the joined classes' parts
        self._order = spec.order()
        self._early = spec.needed_early()
        for ls in spec.layers:
            layer = net.layer(ls.name)
            first = True
            for letter, src in ls.inputs.items():
                if src.kind == "label":
                    continue
                key = f"{ls.name}_{letter}"
                lin = nn.Linear(layer.in_features[letter], layer.n_neurons, bias=first)
                first = False
                with torch.no_grad():
                    for p in lin.parameters():
                        bound = 1.0 / max(1, layer.in_features[letter]) ** 0.5
                        p.copy_((torch.rand(p.shape, generator=generator) * 2 - 1) * bound * ls.init_gain)
                self.maps[key] = lin
                mask = layer.mask(letter)
                if src.weights == "identity":
                    mask = torch.eye(layer.n_neurons)
                    with torch.no_grad():
                        lin.weight.fill_(1.0)
                    lin.weight.requires_grad_(False)
                if mask is not None:
                    self.register_buffer(f"mask_{key}", mask.detach().clone())
                if ls.frozen:
                    lin.requires_grad_(False)
                if src.kind == "random":
                    self.register_buffer(
                        f"projection_{key}", getattr(net, f"projection_{ls.name}_{letter}").clone()
                    )

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        previous: dict[str, Tensor] = {}
        passes = self.spec.n_presentations
        readout = self.spec.readout_name
        logits = x.new_zeros(x.shape[0], self.n_classes)
        for step in range(passes):
            last = step == passes - 1
            current: dict[str, Tensor] = {}
            for name in self._order:
                if not last and name not in self._early:
                    continue
                ls = self.spec.layer(name)
                drive: Tensor | None = None
                for letter, src in ls.inputs.items():
                    key = f"{name}_{letter}"
                    if key not in self.maps:
                        continue
                    value = self._source(name, letter, src, x, current, previous)
                    lin = self.maps[key]
                    assert isinstance(lin, nn.Linear)
                    mask = getattr(self, f"mask_{key}", None)
                    if value is None:  # nothing from the previous presentation yet: the bias only
                        part = lin.bias.expand(x.shape[0], -1) if lin.bias is not None else None
                    else:
                        w = lin.weight if mask is None else lin.weight * mask
                        part = nn.functional.linear(value, w, lin.bias)
                    if part is not None:
                        drive = part if drive is None else drive + part
                assert drive is not None
                if name == readout:
                    logits = drive
                    current[name] = torch.softmax(drive, 1).detach()
                    continue
                theta = torch.sigmoid(drive)
                if ls.sample:
                    mean = 2 * theta - 1
                    current[name] = (
                        mean + (sample_binary(theta, generator) - mean).detach()
                    )  # straight-through
                else:
                    current[name] = theta
            previous = current
        return logits

    def _source(
        self,
        name: str,
        letter: str,
        src: InputSpec,
        x: Tensor,
        current: dict[str, Tensor],
        previous: dict[str, Tensor],
    ) -> Tensor | None:
        """The value of a source; None for a previous output that does not exist yet."""
        kind = src.kind
        if kind == "concat":
            parts = [self._source(name, letter, p, x, current, previous) for p in src.parts]
            return join_parts(parts, self._part_sizes[(name, letter)], x)
        if kind == "input":
            return x
        if kind in ("layer", "previous"):
            assert src.layer is not None  # a layer / previous source names its layer
            return current[src.layer] if kind == "layer" else previous.get(src.layer)
        if kind == "random":
            return x @ getattr(self, f"projection_{name}_{letter}").T
        assert src.size is not None  # zeros:<n>
        return x.new_zeros(x.shape[0], src.size)


def fit_backprop(
    model: nn.Module,
    train: tuple[Tensor, Tensor],
    evaluate: Callable[[Any], dict[str, float]],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed_generator: Callable[..., torch.Generator],
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: Path | None = None,
    generators: Mapping[str, torch.Generator] | None = None,
) -> list[dict[str, float]]:
    """Train with Adam on the cross-entropy; returns per-epoch metrics from ``evaluate``.

    ``checkpoint``: a file that the state after every epoch is saved to (the model, Adam, the
    sampling generator, the ``generators`` that ``evaluate`` draws from, and the metrics so
    far), and that the fit continues from when it exists: a fit interrupted at any point
    resumes after its last finished epoch and ends with the same weights and figures as one
    that ran through.  ``ValueError`` naming the file when it does not fit this model.
    """
    x, y = train
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[dict[str, float]] = []
    sampler = seed_generator("backprop-sampling", device=x.device)
    kept = {"sampling": sampler, **(generators or {})}
    if checkpoint is not None and Path(checkpoint).exists():
        history = _load_fit(Path(checkpoint), model, opt, kept)
    for epoch in range(len(history), epochs):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=seed_generator("backprop-shuffle", epoch)).to(x.device)
        for lo in range(0, len(x), batch_size):
            idx = order[lo : lo + batch_size]
            xb, yb = x.index_select(0, idx), y.index_select(0, idx)  # whole rows: faster than x[idx]
            if isinstance(model, PaperBackpropNetwork):  # the label is also an input there
                out = model(xb, sampler, yb)
            else:
                out = model(xb, sampler)
            loss = nn.functional.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        metrics = {"epoch": epoch + 1, **evaluate(model), "train_seconds": time.perf_counter() - t0}
        history.append(metrics)
        if checkpoint is not None:
            save_checkpoint(
                Path(checkpoint),
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generators": {name: g.get_state() for name, g in kept.items()},
                    "history": history,
                },
            )
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return history


def _load_fit(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, generators: Mapping[str, torch.Generator]
) -> list[dict[str, float]]:
    """Restore a :func:`fit_backprop` checkpoint into ``model``, ``opt`` and ``generators``;
    returns the metrics of the epochs it holds."""
    state = load_checkpoint(path, required=("model", "optimizer", "generators", "history"))
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for name, gen in generators.items():
            gen.set_state(state["generators"][name])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(
            f"{path} is not a checkpoint of this backprop network ({reason}); "
            "delete it to train the baseline from the start"
        ) from None
    return list(state["history"])


def fit_logistic(x: Tensor, y: Tensor, n_classes: int, l2: float = 1e-4, max_iter: int = 200) -> nn.Linear:
    """One-vs-all logistic regression by full-batch L-BFGS (mean binary cross-entropy + L2)."""
    model = nn.Linear(x.shape[1], n_classes).to(x.device, x.dtype)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    targets = nn.functional.one_hot(y, n_classes).to(x.dtype)
    opt = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=max_iter,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        history_size=20,
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), targets, reduction="sum") / len(x)
        loss = loss + 0.5 * l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model
