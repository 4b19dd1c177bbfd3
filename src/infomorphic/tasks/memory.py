"""Infomorphic associative memory (Blümel et al. 2025, arXiv:2511.02584, and the authors' code).

``N`` bivariate infomorphic neurons with outputs ``+-1`` and no biases.  Neuron ``i`` has two
sources: the external input ``T_i = w_T xi_i`` through a frozen weight ``w_T = 2.3`` and the
recurrent input ``R_i = sum_{j != i} W_ij x_j``; it fires with ``theta_i = sigmoid(T_i + R_i)``.
Training presents every stored pattern at once (external input = pattern, recurrent state =
the same clean pattern), estimates each neuron's PID of ``Y_i`` with sources ``(T_i, R_i)``
(``T`` in 2 bins, ``R`` in 60 bins, both fixed on ``[-20, 20]``) in one batched call over all
neurons, and takes one Adam step (lr 0.05) on the summed goals, by default the redundancy
``{T}{R}``.  Recall uses only the recurrent weights (external input 0) through
:func:`infomorphic.tasks.hopfield.recall`.

Early stopping (:class:`MemoryConfig`): the clean-cue recall score is checked every
``check_every`` epochs and training stops once it reaches ``stop_score`` (default 1.0: every
pattern is recalled exactly, so all are fixed points of the dynamics; the authors' capacity
code stops at 0.95).  A run also stops when the score has not changed for ``patience``
consecutive checks after ``min_epochs``: the weights then keep growing along the same
direction (the goal saturates) without changing any sign of the recall dynamics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..config import check_finite
from ..estimate import bin_fixed
from ..goals import Goal
from ..pid.samples import sx_pid_from_binary_samples
from ..seeding import generator
from .hopfield import linear_field, recall, recall_score

__all__ = [
    "MemoryConfig",
    "InfomorphicMemory",
    "memory_goal",
    "train_memory",
    "train_online",
    "replay_states",
    "neuron_pid",
]

SOURCES = "TR"
"""Source letters of a memory neuron: external ``T`` and recurrent ``R``."""


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    """Hyperparameters of one infomorphic memory (defaults: Blümel et al. 2025 and the authors' code)."""

    n_neurons: int = 100
    alpha: float = 0.5
    goal: str = "{T}{R}"
    external_weight: float = 2.3
    init_scale: float = 0.01
    lr: float = 0.05
    max_epochs: int = 5000
    n_bins_t: int = 2
    n_bins_r: int = 60
    bin_range: tuple[float, float] = (-20.0, 20.0)
    check_every: int = 25
    stop_score: float = 1.0
    patience: int = 20
    min_epochs: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.n_neurons < 2:
            raise ValueError(f"n_neurons must be >= 2, got {self.n_neurons}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        if self.max_epochs < 0 or self.check_every < 1:
            raise ValueError(
                f"need max_epochs >= 0 and check_every >= 1, got {self.max_epochs}, {self.check_every}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        memory_goal(self.goal)  # validates

    @property
    def n_patterns(self) -> int:
        """``M = round(alpha * N)``, at least 1."""
        return max(1, int(round(self.alpha * self.n_neurons)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def memory_goal(text: str) -> Goal:
    """A goal over the sources ``T`` (external) and ``R`` (recurrent): a preset, expression or vector."""
    return Goal.resolve(text, SOURCES)


class InfomorphicMemory(nn.Module):
    """``N`` infomorphic memory neurons: frozen external weight, recurrent weights without self-connections.

    Shape:
        external and state ``(B, N)`` in ``{-1, +1}`` -> aggregates ``T, R`` ``(B, N)``.

    Attributes:
        weight: ``(N, N)`` recurrent weights (diagonal kept at zero by a mask).
        external_weight: the frozen ``w_T``.
    """

    mask: Tensor  # buffer: 1 off the diagonal, 0 on it

    def __init__(
        self,
        n_neurons: int,
        external_weight: float = 2.3,
        init_scale: float = 0.01,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_neurons = n_neurons
        self.external_weight = float(external_weight)
        self.init_scale = float(init_scale)
        self.weight = nn.Parameter(torch.empty(n_neurons, n_neurons))
        self.register_buffer("mask", 1.0 - torch.eye(n_neurons))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Normal weights with standard deviation ``init_scale / sqrt(N)``, zero diagonal."""
        with torch.no_grad():
            w = torch.randn(self.n_neurons, self.n_neurons, generator=generator)
            self.weight.copy_(w * self.init_scale / self.n_neurons**0.5 * self.mask)

    def extra_repr(self) -> str:
        return f"n_neurons={self.n_neurons}, external_weight={self.external_weight}, init_scale={self.init_scale}"

    def recurrent_weight(self) -> Tensor:
        """The recurrent weights actually used (zero diagonal), ``(N, N)``."""
        return self.weight * self.mask

    def field(self) -> Callable[[Tensor], Tensor]:
        """The recall field ``h = W x`` of the current weights (no external input)."""
        return linear_field(self.recurrent_weight())

    def forward(self, external: Tensor, state: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Aggregates ``T``, ``R`` and firing probabilities ``theta``, each ``(B, N)``."""
        t = self.external_weight * external
        r = state @ self.recurrent_weight().T
        return t, r, torch.sigmoid(t + r)


def neuron_pid(t: Tensor, r: Tensor, theta: Tensor, config: MemoryConfig, goal: Goal | None = None) -> Any:
    """PID of every neuron's output with sources ``(T, R)`` over the batch: one batched call.

    Returns :class:`~infomorphic.pid.torch_sx.SxPIDTensors` with atoms ``(N, 4)`` in bits
    (canonical order; names from ``goal.atom_names``).
    """
    lo, hi = config.bin_range
    bins = torch.stack([bin_fixed(t, config.n_bins_t, lo, hi), bin_fixed(r, config.n_bins_r, lo, hi)], -1)
    hint = goal.redundancy_weights() if goal is not None else None
    return sx_pid_from_binary_samples(
        bins, theta, (config.n_bins_t, config.n_bins_r), validate=False, grad_hint=hint
    )


@dataclass
class MemoryResult:
    """A trained memory: the network, its patterns, and the history of training."""

    net: InfomorphicMemory
    patterns: Tensor
    epochs: int
    score: float
    history: list[dict[str, Any]] = field(default_factory=list)
    atoms: list[Tensor] = field(default_factory=list)  # (N, 4) per check, bits
    hres: list[Tensor] = field(default_factory=list)  # (N,) per check
    stopped: str = "max_epochs"


def _step(
    net: InfomorphicMemory, opt: torch.optim.Optimizer, patterns: Tensor, config: MemoryConfig, goal: Goal
) -> tuple[Tensor, Any]:
    t, r, theta = net(patterns, patterns)
    res = neuron_pid(t, r, theta, config, goal)
    goals = goal.evaluate(res.atoms, res.residual_entropy)
    opt.zero_grad(set_to_none=True)
    (-goals.sum()).backward()  # every neuron ascends its own goal (block-diagonal gradient)
    opt.step()
    return goals.detach(), res


def train_memory(
    config: MemoryConfig,
    patterns: Tensor | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> MemoryResult:
    """Train a fresh memory on ``patterns`` (default: ``M = alpha N`` random ones from the seed).

    The history holds one record per check (epoch, clean recall score, mean goal and mean atoms).
    """
    goal = memory_goal(config.goal)
    n = config.n_neurons
    if patterns is None:
        from .hopfield import random_patterns

        patterns = random_patterns(config.n_patterns, n, generator(config.seed, "patterns"))
    if patterns.ndim != 2 or patterns.shape[1] != n:
        raise ValueError(f"patterns must have shape (M, {n}), got {tuple(patterns.shape)}")
    net = InfomorphicMemory(n, config.external_weight, config.init_scale, generator(config.seed, "init"))
    opt = torch.optim.Adam([net.weight], lr=config.lr)
    result = MemoryResult(net=net, patterns=patterns, epochs=0, score=_score(net, patterns))
    names = goal.atom_names
    last_scores: list[float] = []
    for epoch in range(1, config.max_epochs + 1):
        goals, res = _step(net, opt, patterns, config, goal)
        if epoch % config.check_every and epoch != config.max_epochs:
            continue
        score = _score(net, patterns)
        record = {
            "epoch": epoch,
            "score": score,
            "goal": float(goals.mean()),
            **{f"atom {k}": float(v) for k, v in zip(names, res.atoms.detach().mean(0))},
            "H_res": float(res.residual_entropy.detach().mean()),
        }
        result.history.append(record)
        result.atoms.append(res.atoms.detach().clone())
        result.hres.append(res.residual_entropy.detach().clone())
        result.epochs, result.score = epoch, score
        if callback is not None:
            callback(record)
        last_scores = (last_scores + [score])[-config.patience :]
        if score >= config.stop_score:
            result.stopped = "stop_score"
            break
        if (
            epoch >= config.min_epochs
            and len(last_scores) == config.patience
            and max(last_scores) - min(last_scores) < 1e-9
        ):
            result.stopped = "stable"
            break
    return result


def _score(
    net: InfomorphicMemory, patterns: Tensor, noise: float = 0.0, gen: torch.Generator | None = None
) -> float:
    return recall_score(net.field(), patterns, noise, gen)


def replay_states(weight: Tensor, n_cues: int, gen: torch.Generator | None = None) -> Tensor:
    """The network's own memories, without the data: the distinct fixed points reached by recall
    from ``n_cues`` random +-1 cues under the recurrent weights ``weight`` ``(N, N)``.

    Returns ``(S, N)`` states with ``sign(W x) = x`` (``S <= n_cues``; spurious attractors included).
    """
    cues = torch.where(torch.rand(n_cues, weight.shape[0], generator=gen) < 0.5, 1.0, -1.0).to(weight.dtype)
    states, _ = recall(linear_field(weight), cues)
    stable = (torch.sign(states @ weight.T) == states).all(1)
    return torch.unique(states[stable], dim=0)


def train_online(
    config: MemoryConfig,
    patterns: Tensor,
    group_size: int,
    epochs_per_group: int,
    probe: Callable[[Tensor, int], None] | None = None,
    replay_cues: int = 0,
) -> InfomorphicMemory:
    """Online learning: groups of ``group_size`` patterns arrive in order; each is trained for
    ``epochs_per_group`` full-batch steps on that group only, never revisiting older groups.

    ``replay_cues > 0`` adds pseudo-rehearsal: before a group is learned, the network's current
    attractors (:func:`replay_states` from that many random cues) join the group's batch as
    if they were patterns, so what is stored is rehearsed from the weights alone (no stored
    data are revisited).  ``probe(recurrent_weight, n_stored)`` is called after each group (e.g.
    to measure the recall of the earliest patterns).  One optimiser persists over the whole stream.
    """
    if group_size < 1 or epochs_per_group < 1:
        raise ValueError(
            f"need group_size >= 1 and epochs_per_group >= 1, got {group_size}, {epochs_per_group}"
        )
    if replay_cues < 0:
        raise ValueError(f"replay_cues must be >= 0, got {replay_cues}")
    goal = memory_goal(config.goal)
    net = InfomorphicMemory(
        config.n_neurons, config.external_weight, config.init_scale, generator(config.seed, "init")
    )
    opt = torch.optim.Adam([net.weight], lr=config.lr)
    replay_gen = generator(config.seed, "replay")
    for lo in range(0, len(patterns), group_size):
        group = patterns[lo : lo + group_size]
        batch = group
        if replay_cues > 0 and lo > 0:
            rehearsed = replay_states(net.recurrent_weight().detach(), replay_cues, replay_gen)
            batch = torch.cat([group, rehearsed.to(group.dtype)])
        for _ in range(epochs_per_group):
            _step(net, opt, batch, config, goal)
        if probe is not None:
            probe(net.recurrent_weight().detach(), lo + len(group))
    return net
