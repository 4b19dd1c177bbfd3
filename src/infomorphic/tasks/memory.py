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
``check_every`` epochs (with ``train_noise > 0``: the score of recall from one fixed set of
cues with that fraction of bits flipped, drawn once from ``(seed, "stop-cues")``; the clean
score is still the run's ``score``) and training stops once it reaches ``stop_score`` (default 1.0: every
pattern is recalled exactly, so all are fixed points of the dynamics; the authors' capacity
code stops at 0.95).  A run also stops when the score has not changed for ``patience``
consecutive checks after ``min_epochs``: the weights then keep growing along the same
direction (the goal saturates) without changing any sign of the recall dynamics.

Basins of attraction (issue 14): the defaults train fixed points only (the recurrent input of
every training sample is computed from the clean pattern).  ``train_noise = f > 0`` computes
the recurrent input from a copy of each pattern with exactly ``round(f N)`` bits flipped (fresh
flips every epoch, from the generator ``(seed, "train-noise")``), while the external input and
the target (the clean pattern, through ``T``) stay clean; ``unroll = k > 1`` first runs
``k - 1`` synchronous sign steps of the network's own recall dynamics from that noisy state
(without gradient) and trains the field of the ``k``-th step.  With a noisy ``R`` the goal's
atoms change meaning: the redundancy ``{T}{R}`` is the information about the output that ``R``
carries *in agreement with the clean pattern*, so maximising it asks the field from a corrupted
state to point back to the clean pattern (a basin), and the unique ``{T}`` is what the clean
pattern says about the output that ``R`` fails to carry (see :func:`training_state`).

Basin-shaping recipes (issue 14, all off by default): ``noisy_copies = k`` puts ``k`` noisy
copies of every pattern in each epoch's batch (fresh flips each) and ``clean_states`` adds every
pattern once more with its clean recurrent state (:func:`training_batch`); ``stop_cues = c``
scores the noisy early stop on ``c`` fixed noisy cues per pattern.  ``basin_epochs > 0`` is a
curriculum: the fixed points are trained first exactly as by the defaults (clean ``R``, ``lr``,
the early stop on the clean score); once every pattern is stored (clean score ``>= stop_score``)
and the noisy-cue score is not yet ``>= stop_score``, training goes on for at most
``basin_epochs`` epochs on :func:`training_batch` with a fresh Adam at ``basin_lr``.  This basin
phase checks every ``check_every`` epochs and ends at the first check whose clean score is
below ``stop_score``, when the noisy-cue score reaches ``stop_score``, or when it has not
improved for ``basin_patience`` checks; the run keeps the checked weights with the best
noisy-cue score among those whose clean score is still ``>= stop_score`` (the stored weights
themselves when none is better).  A load whose patterns are all stored therefore stays stored:
the clean capacity is that of the defaults.
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
from .hopfield import flip_bits, linear_field, overlaps, recall, recall_score

__all__ = [
    "MemoryConfig",
    "InfomorphicMemory",
    "memory_goal",
    "train_memory",
    "training_state",
    "training_batch",
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
    train_noise: float = 0.0
    unroll: int = 1
    noisy_copies: int = 1  # noisy copies of every pattern per basin-shaping batch
    clean_states: bool = False  # also every pattern with its clean state in that batch
    stop_cues: int = 1  # fixed noisy cues per pattern of the noisy score
    basin_epochs: int = 0  # > 0: curriculum, fixed points first, then at most this many noisy epochs
    basin_lr: float = 0.01  # Adam lr of the curriculum's basin phase
    basin_patience: int = 8  # basin-phase checks without a better noisy score before it stops

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
        if not 0.0 <= self.train_noise < 0.5:
            raise ValueError(f"train_noise must be a fraction in [0, 0.5), got {self.train_noise}")
        if isinstance(self.unroll, bool) or not isinstance(self.unroll, int) or self.unroll < 1:
            raise ValueError(f"unroll must be an integer >= 1, got {self.unroll!r}")
        for name in ("noisy_copies", "stop_cues", "basin_patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.clean_states, bool):
            raise ValueError(f"clean_states must be true or false, got {self.clean_states!r}")
        be = self.basin_epochs
        if isinstance(be, bool) or not isinstance(be, int) or be < 0:
            raise ValueError(f"basin_epochs must be an integer >= 0, got {be!r}")
        if be > 0 and not self.train_noise > 0:
            raise ValueError(
                "basin_epochs > 0 needs train_noise > 0 (the basin phase trains from noisy states)"
            )
        if not self.basin_lr > 0:
            raise ValueError(f"basin_lr must be > 0, got {self.basin_lr}")
        memory_goal(self.goal)  # validates

    @property
    def shapes_basins(self) -> bool:
        """Whether training departs from the clean fixed-point training (``train_noise > 0`` or ``unroll > 1``)."""
        return self.train_noise > 0 or self.unroll > 1

    @property
    def curriculum(self) -> bool:
        """Whether the fixed points are trained first and the basins after (``basin_epochs > 0``)."""
        return self.basin_epochs > 0

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
    basin: dict[str, Any] | None = None  # the curriculum's basin phase (None: no such phase)


@torch.no_grad()
def training_state(
    weight: Tensor,
    patterns: Tensor,
    train_noise: float,
    unroll: int,
    gen: torch.Generator | None = None,
) -> Tensor:
    """The recurrent state from which the trained field ``R = W x`` is computed, ``(M, N)``.

    ``x_0`` = the patterns with exactly ``round(train_noise N)`` bits flipped per row
    (:func:`~infomorphic.tasks.hopfield.flip_bits`); then ``unroll - 1`` synchronous steps
    ``x <- sign(W x)`` of the recall dynamics (a zero field keeps the entry), without gradient.
    ``train_noise = 0, unroll = 1`` gives the clean patterns (a copy).  ``weight`` is the
    ``(N, N)`` recurrent weight (zero diagonal).
    """
    x = flip_bits(patterns, train_noise, gen) if train_noise > 0 else patterns.clone()
    w = weight.detach().to(x.dtype)
    for _ in range(unroll - 1):
        h = x @ w.T
        x = torch.where(h > 0, 1.0, torch.where(h < 0, -1.0, x)).to(x.dtype)
    return x


def training_batch(
    weight: Tensor, patterns: Tensor, config: MemoryConfig, gen: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """External input and recurrent state of one basin-shaping epoch, each ``(B, N)``.

    The state holds ``config.noisy_copies`` blocks of :func:`training_state` (each with its own
    fresh flips, in that order), preceded by the clean patterns when ``config.clean_states``;
    the external input (hence the target) is the clean pattern of every row.  With the defaults
    (one noisy copy, no clean states) this is ``(patterns, training_state(...))``.
    """
    states = [
        training_state(weight, patterns, config.train_noise, config.unroll, gen)
        for _ in range(config.noisy_copies)
    ]
    if config.clean_states:
        states.insert(0, patterns.clone())
    if len(states) == 1:
        return patterns, states[0]
    return patterns.repeat(len(states), 1), torch.cat(states)


def _stop_cues(patterns: Tensor, config: MemoryConfig) -> tuple[Tensor, Tensor]:
    """The fixed noisy cues of the noisy score (``stop_cues`` per pattern) and their patterns."""
    targets = patterns.repeat(config.stop_cues, 1) if config.stop_cues > 1 else patterns
    return targets, flip_bits(targets, config.train_noise, generator(config.seed, "stop-cues"))


def _step(
    net: InfomorphicMemory,
    opt: torch.optim.Optimizer,
    patterns: Tensor,
    config: MemoryConfig,
    goal: Goal,
    state: Tensor | None = None,
) -> tuple[Tensor, Any]:
    """One Adam step on the summed goals; ``state`` (default: the patterns) drives ``R``."""
    t, r, theta = net(patterns, patterns if state is None else state)
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
    With ``config.train_noise > 0`` or ``config.unroll > 1`` each epoch's batch comes from
    :func:`training_batch` (new flips every epoch); the defaults train on the clean patterns.
    With ``config.basin_epochs > 0`` the clean training comes first and the noisy one follows
    as a separate basin phase (records marked ``"phase": "basin"``; ``result.basin`` sums it up).
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
    last_scores: list[float] = []
    noise_gen = generator(config.seed, "train-noise")
    noisy_from_start = config.shapes_basins and not config.curriculum
    stop_cues = _stop_cues(patterns, config) if config.train_noise > 0 else None
    for epoch in range(1, config.max_epochs + 1):
        if noisy_from_start:
            external, state = training_batch(net.weight * net.mask, patterns, config, noise_gen)
            goals, res = _step(net, opt, external, config, goal, state)
        else:
            goals, res = _step(net, opt, patterns, config, goal)
        if epoch % config.check_every and epoch != config.max_epochs:
            continue
        score = _score(net, patterns)
        stop_by = score if stop_cues is None or config.curriculum else _cue_score(net, *stop_cues)
        record = {
            "epoch": epoch,
            "score": score,
            **({} if stop_cues is None or config.curriculum else {"noisy_score": stop_by}),
            **_goal_record(goals, res, goal),
        }
        _keep(result, record, res, callback)
        result.epochs, result.score = epoch, score
        last_scores = (last_scores + [stop_by])[-config.patience :]
        if stop_by >= config.stop_score:
            result.stopped = "stop_score"
            break
        if (
            epoch >= config.min_epochs
            and len(last_scores) == config.patience
            and max(last_scores) - min(last_scores) < 1e-9
        ):
            result.stopped = "stable"
            break
    if config.curriculum and stop_cues is not None and result.score >= config.stop_score:
        _basin_phase(result, config, goal, stop_cues, noise_gen, callback)
    return result


def _goal_record(goals: Tensor, res: Any, goal: Goal) -> dict[str, float]:
    return {
        "goal": float(goals.mean()),
        **{f"atom {k}": float(v) for k, v in zip(goal.atom_names, res.atoms.detach().mean(0))},
        "H_res": float(res.residual_entropy.detach().mean()),
    }


def _keep(
    result: MemoryResult,
    record: dict[str, Any],
    res: Any,
    callback: Callable[[dict[str, Any]], None] | None,
) -> None:
    result.history.append(record)
    result.atoms.append(res.atoms.detach().clone())
    result.hres.append(res.residual_entropy.detach().clone())
    if callback is not None:
        callback(record)


def _basin_phase(
    result: MemoryResult,
    config: MemoryConfig,
    goal: Goal,
    stop_cues: tuple[Tensor, Tensor],
    noise_gen: torch.Generator,
    callback: Callable[[dict[str, Any]], None] | None,
) -> None:
    """The curriculum's second phase on a memory that stores every pattern (see the module doc).

    Trains on :func:`training_batch` with a fresh Adam at ``basin_lr``; keeps the checked weights
    with the best noisy-cue score whose clean score is ``>= stop_score`` (else the stored ones).
    Sets ``result.basin``: ``epochs`` run, ``kept_epoch`` (0: the stored weights), the noisy
    score ``start`` and ``kept``, and why it ``stopped``.
    """
    net, patterns = result.net, result.patterns
    start_epoch = result.epochs
    best = _cue_score(net, *stop_cues)
    summary: dict[str, Any] = {"epochs": 0, "kept_epoch": 0, "start": best, "kept": best}
    if best >= config.stop_score:
        result.basin = summary | {"stopped": "noisy_score"}
        return
    best_weight = net.weight.detach().clone()
    opt = torch.optim.Adam([net.weight], lr=config.basin_lr)
    since, stopped = 0, "basin_epochs"
    for epoch in range(1, config.basin_epochs + 1):
        external, state = training_batch(net.weight * net.mask, patterns, config, noise_gen)
        goals, res = _step(net, opt, external, config, goal, state)
        summary["epochs"] = epoch
        if epoch % config.check_every and epoch != config.basin_epochs:
            continue
        score = _score(net, patterns)
        noisy = _cue_score(net, *stop_cues)
        record = {"epoch": start_epoch + epoch, "phase": "basin", "score": score, "noisy_score": noisy}
        _keep(result, record | _goal_record(goals, res, goal), res, callback)
        if score < config.stop_score:
            stopped = "clean_score"
            break
        if noisy > best:
            best, since = noisy, 0
            best_weight = net.weight.detach().clone()
            summary["kept_epoch"], summary["kept"] = epoch, noisy
        else:
            since += 1
        if noisy >= config.stop_score:
            stopped = "noisy_score"
            break
        if since >= config.basin_patience:
            stopped = "patience"
            break
    with torch.no_grad():
        net.weight.copy_(best_weight)
    result.epochs = start_epoch + summary["epochs"]
    result.score = _score(net, patterns)
    result.basin = summary | {"stopped": stopped}


def _score(
    net: InfomorphicMemory, patterns: Tensor, noise: float = 0.0, gen: torch.Generator | None = None
) -> float:
    return recall_score(net.field(), patterns, noise, gen)


def _cue_score(net: InfomorphicMemory, patterns: Tensor, cues: Tensor) -> float:
    states, _ = recall(net.field(), cues)
    return float(overlaps(states, patterns).mean())


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
    ``config.train_noise``, ``unroll``, ``noisy_copies`` and ``clean_states`` apply to every batch
    as in :func:`train_memory` (:func:`training_batch`); ``basin_epochs`` (a curriculum) does not.
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
    noise_gen = generator(config.seed, "train-noise")
    for lo in range(0, len(patterns), group_size):
        group = patterns[lo : lo + group_size]
        batch = group
        if replay_cues > 0 and lo > 0:
            rehearsed = replay_states(net.recurrent_weight().detach(), replay_cues, replay_gen)
            batch = torch.cat([group, rehearsed.to(group.dtype)])
        for _ in range(epochs_per_group):
            if config.shapes_basins:
                external, state = training_batch(net.weight * net.mask, batch, config, noise_gen)
                _step(net, opt, external, config, goal, state)
            else:
                _step(net, opt, batch, config, goal)
        if probe is not None:
            probe(net.recurrent_weight().detach(), lo + len(group))
    return net
