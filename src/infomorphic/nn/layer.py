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
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..estimate import bin_adaptive, bin_fixed
from ..goals import Goal
from ..pid.kernel import active_kernel
from ..pid.samples import sx_pid_from_binary_samples
from .functional import (
    ACTIVATION_DEFAULTS,
    ACTIVATIONS,
    DEFAULT_ACTIVATION,
    activation_problem,
    aggregate,
    fused_theta,
    partner_mask,
    prefer_sparse,
    resolve_activation,
    sample_binary,
)

__all__ = ["InfomorphicLayer", "LayerOutput"]


class LayerOutput:
    """One forward pass of a layer.

    Attributes
    ----------
    aggregates:
        ``(B, N, K)`` aggregated inputs, one per input class in the layer's source order (a
        view of class-major ``(K, B, N)`` storage: ``aggregates[..., k]`` is contiguous).  An
        output built from ``parts`` alone stacks them on first access (training never needs the
        stacked tensor: the activation and the bins read the parts).
    theta:
        ``(B, N)`` firing probabilities.
    parts:
        The ``K`` per-class ``(B, N)`` aggregates that ``aggregates`` was stacked from (empty
        when the output was built without them).  A later presentation that reuses this output
        takes its unchanged classes from here, so that their gradient flows straight to the
        weights that made them instead of through a zero-filled ``(B, N, K)`` buffer per class.
    """

    __slots__ = ("_aggregates", "theta", "parts")

    def __init__(self, aggregates: Tensor | None, theta: Tensor, parts: tuple[Tensor, ...] = ()) -> None:
        if aggregates is None and not parts:
            raise ValueError("give the aggregates or their per-class parts")
        self._aggregates = aggregates
        self.theta = theta
        self.parts = tuple(parts)

    @property
    def aggregates(self) -> Tensor:
        if self._aggregates is None:
            self._aggregates = _stack(list(self.parts))
        return self._aggregates

    def __repr__(self) -> str:
        return f"LayerOutput(theta={tuple(self.theta.shape)}, classes={len(self.parts) or self.aggregates.shape[-1]})"


NEURON_MAJOR_MIN_NEURONS = 1000
"""Layers of at least this many neurons store their aggregates neuron by neuron on the CPU (see
``InfomorphicLayer._neuron_major``)."""


def _stack(parts: list[Tensor]) -> Tensor:
    # class-major storage: each class's (B, N) block stays contiguous (no interleaving copy)
    return torch.stack(parts).permute(1, 2, 0)


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
            exactly zero.  Stored dense: the weight is ``(N, in)``, the mask a buffer
            ``mask_<letter>``.
        partners: fixed connectivity per input class as partner indices, ``(N, P)`` integers
            (neuron ``j`` sees inputs ``partners[j]``, distinct per row; e.g.
            :func:`~infomorphic.nn.functional.lateral_partners`).  Stored sparsely when
            ``sparse`` says so: the weight is ``(N, P)`` (one value per partner, rows sorted by
            input), the indices a buffer ``index_<letter>``, and the aggregate is a sparse
            product (:func:`~infomorphic.nn.functional.sparse_aggregate`); otherwise stored
            as a mask.
        sparse: store the ``partners`` classes sparsely (True), as masks (False), or by
            :func:`~infomorphic.nn.functional.prefer_sparse` (None: sparse when ``P <= in / 20``).
        fixed_weights: input classes whose weights are fixed (not trained, no bias), e.g. the
            readout's one-to-one label context ``{"C": torch.eye(10)}``.
        bias: give trained input classes a bias.
        generator: random generator for the weight initialisation.

    Shape:
        - inputs: a mapping letter -> ``(B, in)`` (a missing class, e.g. a withheld context, is
          treated as zeros).
        - output: :class:`LayerOutput` with aggregates ``(B, N, K)`` and theta ``(B, N)``.  A
          layer of at least :data:`NEURON_MAJOR_MIN_NEURONS` neurons on the CPU stores them
          neuron by neuron: theta is then the transposed view of an ``(N, B)`` tensor (not
          contiguous: use ``.reshape`` or ``.contiguous()``, not ``.view``), and so are its
          spikes; values as in sample-major storage up to float rounding.

    Attributes:
        weight: ``ParameterDict`` letter -> ``(N, in)`` (``(N, P)`` partner values for a class
            stored sparsely), initialised uniformly in ``+-1/sqrt(in)`` (as ``nn.Linear``),
            masked entries zero; a sparse class gets exactly the values the dense masked
            weight would hold (the same random draw).  :meth:`effective_weight` is always
            the dense ``(N, in)`` matrix.
        bias: ``ParameterDict`` letter -> ``(N,)``, initialised in the same range.
        last_atoms: ``(N, n_atoms)`` PID atoms (bits) of the last goal evaluation, detached;
            empty ``(0,)`` after an evaluation that did not record them (``record_atoms``).
        last_residual_entropy: ``(N,)`` H(Y | sources) of the last goal evaluation (bits), or
            empty like ``last_atoms``.
        record_atoms: ``True`` (default): :meth:`local_goal` computes the whole PID and records
            it.  ``False``: it computes only the redundancies the goal weighs (with the compiled
            kernel; e.g. 67 of 166 for the four-source feedback goal), which gives the same
            gradient to the bit and the same goal value up to float rounding, and records no
            atoms.  A plain attribute, not saved; :class:`~infomorphic.train.Trainer` sets it
            per step from its ``atoms_every``.
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
        partners: Mapping[str, Tensor] | None = None,
        sparse: bool | None = None,
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
        links = dict(partners or {})
        for name in list(masks) + list(fixed) + list(links):
            if name not in sources:
                raise ValueError(
                    f"mask, partners or fixed weight for unknown input class {name!r}; "
                    f"classes: {list(letters)}"
                )
        for name in links:
            if name in masks or name in fixed:
                other = "mask" if name in masks else "fixed weight"
                raise ValueError(f"input class {name!r} has partners and a {other}")
        if activation is None:
            activation = DEFAULT_ACTIVATION[len(letters)]
        self.n_neurons = n_neurons
        self.sources = letters
        self.in_features = dict(sources)
        self.goal = goal
        self.activation_name = (
            activation if isinstance(activation, str) else getattr(activation, "__name__", "custom")
        )
        self._activation = resolve_activation(activation)
        if isinstance(activation, str):
            problem = activation_problem(activation, len(letters), activation_params or {})
            if problem is not None:
                raise ValueError(problem[1])
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
                    raise ValueError(
                        f"fixed weight of {name!r} must have shape {(n_neurons, size)}, got {tuple(w.shape)}"
                    )
                self.register_buffer(f"fixed_{name}", w.clone())
                continue
            if bias:
                self.bias[name] = nn.Parameter(torch.empty(n_neurons))
            if name in links:
                index = _check_partners(links[name], n_neurons, size, name)
                if index.shape[1] >= 1 and (
                    prefer_sparse(index.shape[1], size) if sparse is None else sparse
                ):
                    self.weight[name] = nn.Parameter(torch.empty(n_neurons, index.shape[1]))
                    self.register_buffer(f"index_{name}", index)
                    continue
                masks[name] = partner_mask(index, size)
            self.weight[name] = nn.Parameter(torch.empty(n_neurons, size))
            if name in masks:
                m = torch.as_tensor(masks[name], dtype=torch.get_default_dtype())
                if m.shape != (n_neurons, size):
                    raise ValueError(
                        f"mask of {name!r} must have shape {(n_neurons, size)}, got {tuple(m.shape)}"
                    )
                self.register_buffer(f"mask_{name}", (m != 0).to(m.dtype))
        self.register_buffer("last_atoms", torch.zeros(0), persistent=False)
        self.register_buffer("last_residual_entropy", torch.zeros(0), persistent=False)
        self.record_atoms = True
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Uniform initialisation in ``+-1/sqrt(in)`` per input class; masked weights zero.

        A sparse class draws the full ``(N, in)`` uniform matrix (in blocks of rows: the same
        numbers) and keeps its partners' entries, so it holds exactly the values, and leaves
        the generator in exactly the state, of the dense masked class.
        """
        with torch.no_grad():
            for name, w in self.weight.items():
                size = self.in_features[name]
                bound = 1.0 / math.sqrt(max(1, size))
                index = self.partners(name)
                if index is None:
                    w.copy_(torch.rand(w.shape, generator=generator) * 2 * bound - bound)
                    mask = self._mask_buffer(name)
                    if mask is not None:
                        w.mul_(mask)
                else:
                    rows = max(1, _DRAW_BLOCK // max(1, size))
                    for lo in range(0, self.n_neurons, rows):
                        block = torch.rand(min(rows, self.n_neurons - lo), size, generator=generator)
                        part = (block * 2 * bound - bound).gather(1, index[lo : lo + rows].cpu())
                        w[lo : lo + rows].copy_(part)
                if name in self.bias:
                    b = self.bias[name]
                    b.copy_(torch.rand(b.shape, generator=generator) * 2 * bound - bound)

    def _mask_buffer(self, name: str) -> Tensor | None:
        return self._buffers.get(f"mask_{name}")

    def partners(self, name: str) -> Tensor | None:
        """The ``(N, P)`` partner indices of an input class stored sparsely, or ``None``."""
        return self._buffers.get(f"index_{name}")

    def is_sparse(self, name: str) -> bool:
        """Whether an input class is stored sparsely (``(N, P)`` values and indices)."""
        return f"index_{name}" in self._buffers

    def mask(self, name: str) -> Tensor | None:
        """The fixed connectivity mask of an input class, ``(N, in)`` of 0/1, or ``None`` (dense).

        For a class stored sparsely it is built on demand from its partner indices.
        """
        index = self.partners(name)
        if index is not None:
            return partner_mask(index, self.in_features[name], self.weight[name].dtype)
        return self._mask_buffer(name)

    def effective_weight(self, name: str) -> Tensor:
        """Weights actually used for an input class (masked, sparse or fixed), ``(N, in)``.

        For a class stored sparsely the dense matrix is built on demand (zeros off the
        partners); it is differentiable in the stored values.
        """
        if name in self.weight:
            w = self.weight[name]
            index = self.partners(name)
            if index is not None:
                return w.new_zeros(self.n_neurons, self.in_features[name]).scatter(1, index, w)
            mask = self._mask_buffer(name)
            return w if mask is None else w * mask
        return getattr(self, f"fixed_{name}")

    def set_storage_(self, name: str, sparse: bool) -> None:
        """Store a trained input class with fixed connectivity sparsely (True) or as a mask (False).

        The connections and the effective weights do not change, and the parameter stays the
        same object (its data changes shape), so an optimiser built before keeps updating it;
        but optimiser state already held for it no longer fits: convert before training, or
        load a checkpoint written with this storage.  Converting to sparse needs the same
        number of connections in every row.
        """
        if name not in self.weight:
            raise ValueError(
                f"input class {name!r} has no trained weight; trained classes: {list(self.weight)}"
            )
        if sparse == self.is_sparse(name):
            return
        w = self.weight[name]
        with torch.no_grad():
            if sparse:
                mask = self._mask_buffer(name)
                if mask is None:
                    raise ValueError(f"input class {name!r} is dense (no mask): nothing to store sparsely")
                keep = mask != 0
                counts = keep.sum(1)
                if not bool((counts == counts[0]).all()) or int(counts[0]) == 0:
                    raise ValueError(
                        f"the mask of {name!r} has {int(counts.min())} to {int(counts.max())} connections "
                        "per neuron; sparse storage needs the same number (>= 1) in every row"
                    )
                index = keep.nonzero()[:, 1].view(self.n_neurons, int(counts[0]))
                values = w.gather(1, index)
                del self._buffers[f"mask_{name}"]
                self.register_buffer(f"index_{name}", index)
                w.data = values
            else:
                partners = self.partners(name)
                assert partners is not None
                dense = w.new_zeros(self.n_neurons, self.in_features[name]).scatter_(1, partners, w)
                del self._buffers[f"index_{name}"]
                self.register_buffer(f"mask_{name}", partner_mask(partners, self.in_features[name], w.dtype))
                w.data = dense
        w.grad = None

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Adopt the storage (sparse or masked) that the state dict holds for each class.

        A checkpoint written before sparse storage existed holds a dense ``weight.<L>`` and
        ``mask_<L>`` for setups 2 and 3; loading it switches that class to masked storage
        (same parameter object, see :meth:`set_storage_`), so that the optimiser state saved
        beside it (Adam's moments, dense ``(N, in)``) still fits on ``--resume`` and the
        resumed run continues exactly as the old code would; a sparse state dict likewise
        makes a masked class sparse.  The tensors are then copied by the default loader.
        """
        for name in list(self.weight):
            index = state_dict.get(f"{prefix}index_{name}")
            if index is not None and not self.is_sparse(name):
                w = self.weight[name]
                self._buffers.pop(f"mask_{name}", None)
                self.register_buffer(
                    f"index_{name}",
                    torch.zeros(self.n_neurons, index.shape[-1], dtype=torch.long, device=w.device),
                )
                w.data = w.new_zeros(self.n_neurons, index.shape[-1])
                w.grad = None
            elif f"{prefix}mask_{name}" in state_dict and self.is_sparse(name):
                w = self.weight[name]
                del self._buffers[f"index_{name}"]
                self.register_buffer(f"mask_{name}", w.new_zeros(self.n_neurons, self.in_features[name]))
                w.data = w.new_zeros(self.n_neurons, self.in_features[name])
                w.grad = None
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        for name in list(self.weight):
            index = self.partners(name)
            if index is None or f"{prefix}index_{name}" not in state_dict:
                continue
            try:
                _check_partners(index, self.n_neurons, self.in_features[name], name)
            except ValueError as exc:
                error_msgs.append(str(exc))

    def extra_repr(self) -> str:
        src = ", ".join(
            f"{k}={v}" + (f"[{self.weight[k].shape[1]} partners]" if self.is_sparse(k) else "")
            for k, v in self.in_features.items()
        )
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
        return _stack(self._aggregate_parts(inputs, reuse, None))

    def _aggregate_parts(
        self, inputs: Mapping[str, Tensor], reuse: Tensor | None, reuse_parts: tuple[Tensor, ...] | None
    ) -> list[Tensor]:
        """The ``K`` per-class ``(B, N)`` aggregates of :meth:`aggregate`; an unchanged class is
        taken from ``reuse_parts`` when given (the earlier pass's own tensors), else from
        ``reuse``."""
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
        if reuse is not None and (
            reuse.shape[0] != batch or reuse.shape[1:] != (self.n_neurons, len(self.sources))
        ):
            raise ValueError(
                f"reused aggregates must have shape ({batch}, {self.n_neurons}, {len(self.sources)}), "
                f"got {tuple(reuse.shape)}"
            )
        if reuse_parts and (
            len(reuse_parts) != len(self.sources)
            or any(p.shape != (batch, self.n_neurons) for p in reuse_parts)
        ):
            raise ValueError(
                f"reused aggregates must be {len(self.sources)} tensors of shape ({batch}, {self.n_neurons}), "
                f"got {[tuple(p.shape) for p in reuse_parts]}"
            )
        for name, x in inputs.items():
            if x.shape[0] != batch:
                raise ValueError(
                    f"input {name!r} has {x.shape[0]} samples but input {first_name!r} has {batch}"
                )
        neuron_major = self._neuron_major(first)
        parts = []
        for i, name in enumerate(self.sources):
            w = self.weight[name] if name in self.weight else getattr(self, f"fixed_{name}")
            index = self._buffers.get(f"index_{name}")
            b = self.bias[name] if name in self.bias else None
            given = inputs.get(name)
            if given is None and reuse_parts:
                parts.append(reuse_parts[i])
                continue
            if given is None and reuse is not None:
                parts.append(reuse[..., i])
                continue
            if given is None:
                parts.append((b if b is not None else w.new_zeros(self.n_neurons)).expand(batch, -1))
                continue
            parts.append(aggregate(given.detach(), w, b, self._mask_buffer(name), index, neuron_major))
        return parts

    def _neuron_major(self, x: Tensor) -> bool:
        """Whether this layer's aggregates (and so its firing probabilities, bins and gradients)
        are stored neuron by neuron: on the CPU with the compiled kernel, from
        :data:`NEURON_MAJOR_MIN_NEURONS` neurons on.  The PID kernel reads each neuron's
        samples; stored sample by sample they lie a row of ``N`` values apart, and the kernel's
        call at setup 2's N = 2000 took 72 ms against 41 ms with theta and bins neuron by neuron
        (``benchmarks/README.md``).  The values are the same either way up to the float rounding
        of the matrix products (``W @ x.T`` instead of ``x @ W.T``)."""
        if x.device.type != "cpu" or self.n_neurons < NEURON_MAJOR_MIN_NEURONS:
            return False
        kernel = active_kernel()
        return kernel is not None and bool(getattr(kernel, "neuron_major", False))  # not in older builds

    def forward(self, inputs: Mapping[str, Tensor], reuse: LayerOutput | None = None) -> LayerOutput:
        """Aggregate, activate, and return firing probabilities.

        ``reuse``: an earlier output for the same batch whose aggregates are kept for the input
        classes not given in ``inputs`` (see :meth:`aggregate`).
        """
        reuse_parts = None if reuse is None else reuse.parts
        # an output with parts is never stacked for reuse (its aggregates may not exist yet)
        reuse_aggregates = None if reuse is None or reuse_parts else reuse.aggregates
        parts = self._aggregate_parts(inputs, reuse_aggregates, reuse_parts)
        theta = None
        if self._activation is ACTIVATIONS.get(self.activation_name):  # a built-in: maybe fused
            theta = fused_theta(self.activation_name, self.activation_params, *parts)
        if theta is not None:
            return LayerOutput(None, theta, tuple(parts))  # stacked only if someone asks
        agg = _stack(parts)
        # unbind along the class-major axis: the same views as agg.unbind(-1), but the backward
        # then stacks each class's gradient into a contiguous (B, N) block (no strided copies)
        theta = torch.sigmoid(self._activation(*agg.permute(2, 0, 1).unbind(0), **self.activation_params))
        return LayerOutput(agg, theta, tuple(parts))

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

    def bins_of(self, out: LayerOutput) -> Tensor:
        """:meth:`bins` of ``out.aggregates``, the same integers; on the CPU they come from the
        per-class parts in one pass of the compiled kernel (fixed or adaptive bins), without the
        stack, stored neuron by neuron, and as uint8 when there are at most 256 bins (a quarter of
        int32's memory traffic; the PID kernel reads them as they are)."""
        parts = out.parts
        if parts and parts[0].device.type == "cpu" and parts[0].dtype in (torch.float32, torch.float64):
            kernel = active_kernel()
            if kernel is not None:
                detached = [p.detach() for p in parts]
                small = {"small": True} if getattr(kernel, "small_bins", False) else {}  # older builds: int32
                if self.binning == "fixed":
                    return kernel.bins_fixed(detached, self.n_bins, *self.bin_range, **small).permute(1, 2, 0)
                if hasattr(kernel, "bins_adaptive"):  # not in older builds
                    return kernel.bins_adaptive(detached, self.n_bins, **small).permute(1, 2, 0)
        return self.bins(out.aggregates)

    def local_goal(self, out: LayerOutput) -> Tensor:
        """Each neuron's goal ``(N,)`` in bits, differentiable in its own weights.

        Also stores the atoms in :attr:`last_atoms` and :attr:`last_residual_entropy` (when
        :attr:`record_atoms`; else empties them and computes only what the goal needs).
        """
        if self.goal is None:
            raise ValueError("this layer has no goal; give one to train it")
        record = bool(self.record_atoms)
        res = sx_pid_from_binary_samples(
            self.bins_of(out),
            out.theta,
            self.n_bins,
            validate=False,
            grad_hint=self.goal.redundancy_weights(),
            hinted_only=not record,
        )
        # the same operations either way: the goal's gradient does not depend on the values of
        # the redundancies it does not weigh, so both paths train the same weights
        if record:
            self.last_atoms = res.atoms.detach()
            self.last_residual_entropy = res.residual_entropy.detach()
        else:
            self.last_atoms = res.atoms.new_zeros(0)
            self.last_residual_entropy = res.atoms.new_zeros(0)
        return self.goal.evaluate(res.atoms, res.residual_entropy)


_DRAW_BLOCK = 1 << 22
"""Elements of one block of the dense uniform draw that initialises a sparse class."""


def _check_partners(index: Tensor, n_neurons: int, n_inputs: int, name: str) -> Tensor:
    """Partner indices as ``(N, P)`` int64 with each row sorted; ``ValueError`` names the class."""
    index = torch.as_tensor(index)
    if (
        index.ndim != 2
        or index.shape[0] != n_neurons
        or index.dtype.is_floating_point
        or index.dtype == torch.bool
    ):
        raise ValueError(
            f"partners of {name!r} must be integers of shape ({n_neurons}, P), "
            f"got {tuple(index.shape)} {index.dtype}"
        )
    index = index.long().sort(1).values
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n_inputs):
        raise ValueError(
            f"partners of {name!r} must lie in [0, {n_inputs}), got {int(index.min())} to {int(index.max())}"
        )
    if index.shape[1] > 1 and not bool((index[:, 1:] > index[:, :-1]).all()):
        raise ValueError(f"partners of {name!r} must be distinct in every row")
    return index
