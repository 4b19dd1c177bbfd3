"""Streams of patterns: which memories an online rule keeps, and for how long (issue 14, part 2).

**Protocol** (:func:`run_stream`).  ``L`` random patterns (default ``L = 5 N``) arrive one at a
time or in groups of ``arrival`` patterns; each arrival is presented once to the rule (the
infomorphic memory takes ``steps`` optimiser steps on it) and then discarded: no rule keeps
the data.  After every ``probe_every`` (10) arrived patterns the rule is probed: every pattern
seen so far is cued, once with the clean pattern and once with ``noise`` (10 %) of its bits
flipped, and recalled by :func:`~.hopfield.recall`; it counts as *recalled* (per cue) when the
overlap of the final state with the pattern is ``>= threshold`` (0.95).  Flags are listed by
*age* ``a`` (0 = the most recent pattern, ``t - 1`` = the first of the stream at probe time
``t``).

**Measures** (:func:`stream_summary`, per cue kind ``clean`` / ``noisy``):

- ``recent_all(t)``: the largest ``k`` such that the ``k`` most recent patterns (ages
  ``0 .. k - 1``) are all recalled, the *palimpsest capacity* at ``t``;
- ``recalled(t)``: the number of recalled patterns among all seen;
- steady state: the means of both over the probes of the second half of the stream
  (``t > L / 2``); ``recall_by_age``: the fraction recalled at each age, over the same probes;
- ``oldest(t)``: the fraction of the first ``n_oldest`` (10) patterns of the stream recalled;
- *blackout*: the first probe time from which on, to the end of the stream, at most
  ``blackout_count`` (1) seen patterns are recalled (``None``: no blackout).  A palimpsest
  that keeps two or more recent patterns is therefore not in blackout, however long the stream.

**Rules** (:data:`STREAM_METHODS`), all with zero diagonal, recalled by ``h = W x``:

- ``hebbian``: ``W <- W + xi xi^T / N``, accumulated (Hopfield 1982; blackout above ~0.14 N);
- ``storkey``: Storkey's (1997) incremental rule, :func:`storkey_update`, pattern by pattern;
- ``hebbian-bounded``: learning within bounds (Parisi 1986),
  ``W <- clip(W + xi xi^T / N, -A / N, A / N)`` with ``A = a sqrt(N)`` increments, ``a`` =
  :data:`BOUND` (:func:`bounded_hebbian_bound`; ``A = 3`` at ``N = 100``);
- ``hebbian-decay``: the exponentially forgetting ("marginalist") Hebbian rule of Mézard,
  Nadal & Toulouse (1986), ``W <- lambda W + xi xi^T / N`` with ``lambda = 1 - c / N``, ``c`` =
  :data:`DECAY` (:func:`hebbian_decay_factor`; 0.9 at ``N = 100``);
- ``infomorphic-adam``: the infomorphic memory (:mod:`.memory`) trained as
  :func:`~.memory.train_online` does (one Adam optimiser over the whole stream, ``steps``
  full-batch steps per arrival; :class:`OnlineOptions` with its defaults);
- ``infomorphic``: the same memory with the online configuration :func:`online_options`
  (plain gradient ascent, mirrored batches, weight decay per pattern; see
  :class:`OnlineOptions`).

Sign dynamics are invariant to the scale of ``W``, so the Hebbian increment's size is
immaterial; only ``A`` and ``lambda`` (memory time) matter.  Their constants were the best of a
scan at ``N = 100`` on seed 100 (README); ``A ~ sqrt(N)`` and ``1 - lambda ~ 1 / N`` keep the
memory time proportional to ``N``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from ..config import check_finite
from ..seeding import generator
from .hopfield import Field, flip_bits, linear_field, overlaps, random_patterns, recall
from .memory import InfomorphicMemory, MemoryConfig, _step, memory_goal, replay_states

__all__ = [
    "STREAM_METHODS",
    "BOUND",
    "DECAY",
    "bounded_hebbian_bound",
    "hebbian_decay_factor",
    "online_options",
    "OnlineOptions",
    "StreamConfig",
    "storkey_update",
    "hebbian_update",
    "bounded_hebbian_update",
    "decay_hebbian_update",
    "OuterProductRule",
    "InfomorphicStream",
    "make_rule",
    "probe_flags",
    "run_stream",
    "stream_patterns",
    "recent_all",
    "stream_summary",
    "stream_storage",
    "stream_figures",
]

STREAM_METHODS = ("infomorphic", "infomorphic-adam", "hebbian", "storkey", "hebbian-bounded", "hebbian-decay")
"""Online rules compared by :func:`stream_storage`."""

BOUND = 0.3
"""``a`` of ``hebbian-bounded``: the bound is ``A = a sqrt(N)`` increments ``1/N`` (``A = 3`` at ``N = 100``)."""

DECAY = 10.0
"""``c`` of ``hebbian-decay``: ``lambda = 1 - c / N`` (0.9 at ``N = 100``)."""


def bounded_hebbian_bound(n_neurons: int, a: float = BOUND) -> float:
    """``A = a sqrt(N)``: a weight forgets by a bounded random walk in about ``A^2`` patterns, so ``A^2 ~ N``."""
    return a * n_neurons**0.5


def hebbian_decay_factor(n_neurons: int, c: float = DECAY) -> float:
    """``lambda = 1 - c / N``: a memory time ``N / c`` patterns, proportional to ``N``."""
    return 1.0 - c / n_neurons


# ----------------------------------------------------------------------------- classical rules


def hebbian_update(w: Tensor, xi: Tensor) -> Tensor:
    """``W + xi xi^T / N`` with zero diagonal (float64)."""
    n = xi.shape[0]
    out = w + torch.outer(xi, xi).to(w.dtype) / n
    out.fill_diagonal_(0.0)
    return out


def bounded_hebbian_update(w: Tensor, xi: Tensor, bound: float) -> Tensor:
    """Learning within bounds (Parisi 1986): ``clip(W + xi xi^T / N, -A / N, A / N)``, ``A = bound``, zero diagonal."""
    n = xi.shape[0]
    return hebbian_update(w, xi).clamp(-bound / n, bound / n)


def decay_hebbian_update(w: Tensor, xi: Tensor, decay: float) -> Tensor:
    """Marginalist Hebbian (Mézard, Nadal & Toulouse 1986): ``decay * W + xi xi^T / N``, zero diagonal."""
    return hebbian_update(decay * w, xi)


def storkey_update(w: Tensor, xi: Tensor) -> Tensor:
    """One step of Storkey's (1997) rule, zero diagonal (float64).

    ``w_ij += (xi_i xi_j - xi_i h_ji - h_ij xi_j) / N`` with ``h_ij = sum_{k != i, j} w_ik xi_k``;
    applied pattern after pattern from ``W = 0`` it gives :func:`~.hopfield.storkey_weights`.
    """
    n = xi.shape[0]
    x = xi.to(w.dtype)
    h = w @ x  # the diagonal is zero, so h_i excludes k = i
    h_ij = h[:, None] - w * x[None, :]  # exclude k = j
    out = w + (torch.outer(x, x) - x[:, None] * h_ij.T - h_ij * x[None, :]) / n
    out.fill_diagonal_(0.0)
    return out


class StreamRule(Protocol):
    """An online memory: learns each arrival once, recalls through ``field()``."""

    def present(self, arrival: Tensor) -> None: ...

    def field(self) -> Field: ...


class OuterProductRule:
    """A one-shot weight rule applied pattern by pattern: ``W <- update(W, xi)`` from ``W = 0`` (float64)."""

    def __init__(self, n_neurons: int, update: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.weight = torch.zeros(n_neurons, n_neurons, dtype=torch.float64)
        self.update = update

    def present(self, arrival: Tensor) -> None:
        for xi in arrival.double():
            self.weight = self.update(self.weight, xi)

    def field(self) -> Field:
        return linear_field(self.weight)


# ----------------------------------------------------------------------------- infomorphic


@dataclass(frozen=True, slots=True)
class OnlineOptions:
    """How the infomorphic memory learns a stream (the defaults reproduce :func:`~.memory.train_online`).

    Attributes:
        steps: full-batch steps per arrival.
        optimizer: ``"adam"`` (one Adam optimiser over the whole stream, learning rate
            ``MemoryConfig.lr``, as in ``train_online``) or ``"sgd"``: plain gradient ascent on
            the goal with step ``lr * len(arrival)`` (``lr`` per pattern: the goal is a mean over
            the batch, so a group of ``B`` patterns gets ``B`` times the step of a lone one).
            Plain gradients keep the goal's own saturation: a pattern that is already stored
            with a margin gives a small gradient and changes the weights little, whereas Adam
            rescales every weight's step to about ``lr``.
        lr: the learning rate (per pattern for ``"sgd"``); ``None``: ``MemoryConfig.lr``.
        mirror: add the sign-flipped copies ``-xi`` to every batch.  Without a bias the recall
            dynamics are symmetric (``-xi`` is a fixed point whenever ``xi`` is), and a lone
            pattern's PID is degenerate (``T`` takes one value, every atom is 0, no gradient);
            with its mirror a lone pattern is a batch of two.
        decay: the factor by which the weights shrink per arrived pattern, spread evenly over
            the arrival's steps (``W <- W decay^(B / steps)`` after each step for an arrival of
            ``B`` patterns); 1 = no decay.  Old memories then fade (their fields shrink
            relative to the new ones) and the weights stay bounded, so that the crosstalk of
            old memories on a new pattern stays below the external drive ``T``.
        replay_cues: pseudo-rehearsal as in :func:`~.memory.train_online`: the attractors
            reached from that many random cues join each later arrival's batch.
    """

    steps: int = 20
    optimizer: str = "adam"
    lr: float | None = None
    mirror: bool = False
    decay: float = 1.0
    replay_cues: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0 or None, got {self.lr}")
        if not 0 < self.decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {self.decay}")
        if self.replay_cues < 0:
            raise ValueError(f"replay_cues must be >= 0, got {self.replay_cues}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def online_options(n_neurons: int, steps: int = 20) -> OnlineOptions:
    """The online-friendly configuration of the stream comparison (chosen at ``N = 100`` on seed 100).

    Plain gradient ascent (``lr = 0.5 / N`` per pattern, so that a pattern's own field grows by
    about the same amount per arrival at every ``N``), the mirror, and ``decay = 1 - 3 / N``
    per pattern (a memory time proportional to ``N``): at ``N = 100``, ``lr = 0.005`` and
    ``decay = 0.97``; ``steps`` steps per arrival.
    """
    return OnlineOptions(
        steps=steps, optimizer="sgd", lr=0.5 / n_neurons, mirror=True, decay=1.0 - 3.0 / n_neurons
    )


class InfomorphicStream:
    """The infomorphic memory learning a stream, ``options.steps`` full-batch steps per arrival.

    With the default :class:`OnlineOptions` it takes exactly the steps of
    :func:`~.memory.train_online` (same initial weights from ``config.seed``, same batches,
    one Adam optimiser for the whole stream).
    """

    def __init__(self, config: MemoryConfig, options: OnlineOptions = OnlineOptions()) -> None:
        self.config, self.options = config, options
        self.goal = memory_goal(config.goal)
        self.net = InfomorphicMemory(
            config.n_neurons, config.external_weight, config.init_scale, generator(config.seed, "init")
        )
        self.lr = config.lr if options.lr is None else options.lr
        self.opt: torch.optim.Optimizer = (
            torch.optim.Adam([self.net.weight], lr=self.lr)
            if options.optimizer == "adam"
            else torch.optim.SGD([self.net.weight], lr=self.lr)
        )
        self.replay_gen = generator(config.seed, "replay")
        self.arrivals = 0

    def present(self, arrival: Tensor) -> None:
        o = self.options
        batch = arrival.float()
        if o.replay_cues > 0 and self.arrivals > 0:
            rehearsed = replay_states(self.net.recurrent_weight().detach(), o.replay_cues, self.replay_gen)
            batch = torch.cat([batch, rehearsed.to(batch.dtype)])
        if o.mirror:
            batch = torch.cat([batch, -batch])
        if o.optimizer == "sgd":
            for group in self.opt.param_groups:
                group["lr"] = self.lr * len(arrival)
        shrink = o.decay ** (len(arrival) / o.steps)
        for _ in range(o.steps):
            _step(self.net, self.opt, batch, self.config, self.goal)
            if o.decay < 1:
                with torch.no_grad():
                    self.net.weight.mul_(shrink)
        self.arrivals += 1

    def field(self) -> Field:
        return linear_field(self.net.recurrent_weight().detach())


def make_rule(
    method: str,
    n_neurons: int,
    memory: MemoryConfig | None = None,
    options: OnlineOptions | None = None,
    bound: float = BOUND,
    decay: float = DECAY,
) -> StreamRule:
    """A fresh online rule by name (:data:`STREAM_METHODS`).

    ``infomorphic`` learns with ``options`` (default :func:`online_options` of ``N``),
    ``infomorphic-adam`` as :func:`~.memory.train_online` does (Adam, no mirror, no decay) for
    ``options.steps`` steps per arrival; both from ``memory`` (default
    ``MemoryConfig(n_neurons)``).  ``bound`` (``a``) and ``decay`` (``c``) set the constants of
    ``hebbian-bounded`` (:func:`bounded_hebbian_bound`) and ``hebbian-decay``
    (:func:`hebbian_decay_factor`).
    """
    opts = options if options is not None else online_options(n_neurons)
    if method in ("infomorphic", "infomorphic-adam"):
        cfg = memory if memory is not None else MemoryConfig(n_neurons=n_neurons)
        if cfg.n_neurons != n_neurons:
            raise ValueError(f"memory.n_neurons = {cfg.n_neurons} but the stream has N = {n_neurons}")
        return InfomorphicStream(cfg, opts if method == "infomorphic" else OnlineOptions(steps=opts.steps))
    updates: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        "hebbian": hebbian_update,
        "storkey": storkey_update,
        "hebbian-bounded": lambda w, x: bounded_hebbian_update(w, x, bounded_hebbian_bound(n_neurons, bound)),
        "hebbian-decay": lambda w, x: decay_hebbian_update(w, x, hebbian_decay_factor(n_neurons, decay)),
    }
    if method not in updates:
        raise ValueError(f"unknown stream method {method!r}; choose from {', '.join(STREAM_METHODS)}")
    return OuterProductRule(n_neurons, updates[method])


# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """The stream protocol: ``length`` patterns (default 5 N), ``arrival`` at a time, probed every ``probe_every``."""

    n_neurons: int = 100
    length: int | None = None
    arrival: int = 1
    probe_every: int = 10
    threshold: float = 0.95
    noise: float = 0.1
    n_oldest: int = 10
    blackout_count: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_finite(self)
        if self.n_neurons < 2:
            raise ValueError(f"n_neurons must be >= 2, got {self.n_neurons}")
        if self.arrival < 1 or self.probe_every < 1 or self.probe_every % self.arrival:
            raise ValueError(
                f"need arrival >= 1 dividing probe_every, got arrival={self.arrival}, probe_every={self.probe_every}"
            )
        if self.n_patterns < self.probe_every:
            raise ValueError(f"the stream ({self.n_patterns}) is shorter than one probe interval")
        if not 0 < self.threshold <= 1 or not 0 <= self.noise <= 1:
            raise ValueError(
                f"need 0 < threshold <= 1 and 0 <= noise <= 1, got {self.threshold}, {self.noise}"
            )
        if self.n_oldest < 1 or self.blackout_count < 0:
            raise ValueError(
                f"need n_oldest >= 1, blackout_count >= 0, got {self.n_oldest}, {self.blackout_count}"
            )

    @property
    def n_patterns(self) -> int:
        """``L``: ``length``, or ``5 N`` by default."""
        return self.length if self.length is not None else 5 * self.n_neurons

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def stream_patterns(config: StreamConfig) -> Tensor:
    """The ``(L, N)`` stream of a seed (the same for every rule)."""
    return random_patterns(
        config.n_patterns, config.n_neurons, generator(config.seed, "stream-patterns", config.n_neurons)
    )


@torch.no_grad()
def probe_flags(
    field: Field, seen: Tensor, threshold: float, noisy_cues: Tensor | None = None
) -> dict[str, list[int]]:
    """Recalled (1) or not (0) per seen pattern, by age (index 0 = the last row of ``seen``).

    ``clean``: from the pattern itself; ``noisy``: from ``noisy_cues`` (same rows), if given.
    """
    out: dict[str, list[int]] = {}
    cues = {"clean": seen} | ({"noisy": noisy_cues} if noisy_cues is not None else {})
    for kind, c in cues.items():
        states, _ = recall(field, c)
        ok = overlaps(states, seen) >= threshold - 1e-12
        out[kind] = ok.flip(0).int().tolist()
    return out


def run_stream(
    rule: StreamRule,
    config: StreamConfig,
    patterns: Tensor | None = None,
    on_probe: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Feed the stream to ``rule`` and probe it every ``probe_every`` patterns.

    Returns one record per probe: ``t`` (patterns seen), and for each cue kind the flags by
    age (``clean``, ``noisy``: lists of 0/1 of length ``t``).  The noisy cues of a probe depend
    only on the seed and ``t``, so every rule is probed with the same cues.
    """
    xs = stream_patterns(config) if patterns is None else patterns
    if xs.shape != (config.n_patterns, config.n_neurons):
        raise ValueError(
            f"patterns must have shape ({config.n_patterns}, {config.n_neurons}), got {tuple(xs.shape)}"
        )
    probes: list[dict[str, Any]] = []
    for lo in range(0, len(xs), config.arrival):
        rule.present(xs[lo : lo + config.arrival])
        t = min(lo + config.arrival, len(xs))
        if t % config.probe_every and t != len(xs):
            continue
        seen = xs[:t]
        noisy = (
            flip_bits(seen, config.noise, generator(config.seed, "stream-noise", t))
            if config.noise > 0
            else None
        )
        record = {"t": t, **probe_flags(rule.field(), seen, config.threshold, noisy)}
        probes.append(record)
        if on_probe is not None:
            on_probe(record)
    return probes


def recent_all(flags: Sequence[int]) -> int:
    """The number of most recent patterns that are all recalled: the length of the leading run of 1s."""
    k = 0
    for f in flags:
        if not f:
            break
        k += 1
    return k


def stream_summary(probes: Sequence[dict[str, Any]], config: StreamConfig) -> dict[str, Any]:
    """The measures of the module docstring from :func:`run_stream`'s probe records, per cue kind."""
    total = config.n_patterns
    out: dict[str, Any] = {"t": [p["t"] for p in probes]}
    for kind in ("clean", "noisy"):
        if not probes or kind not in probes[0]:
            continue
        recent = [recent_all(p[kind]) for p in probes]
        count = [int(sum(p[kind])) for p in probes]
        oldest = [float(np.mean(p[kind][::-1][: config.n_oldest])) for p in probes]
        late = [p for p in probes if p["t"] > total / 2]
        max_age = min(p["t"] for p in late) if late else 0
        by_age = np.mean([p[kind][:max_age] for p in late], axis=0).tolist() if late and max_age else []
        blackout = None
        for p, c in zip(reversed(probes), reversed(count)):
            if c > config.blackout_count:
                break
            blackout = p["t"]
        out[kind] = {
            "recent_all": recent,
            "recalled": count,
            "oldest": oldest,
            "steady_recent_all": float(np.mean([r for p, r in zip(probes, recent) if p["t"] > total / 2]))
            if late
            else None,
            "steady_recalled": float(np.mean([c for p, c in zip(probes, count) if p["t"] > total / 2]))
            if late
            else None,
            "recall_by_age": by_age,
            "blackout_at": blackout,
        }
    return out


def stream_storage(
    memory: MemoryConfig,
    arrivals: Sequence[int] = (1, 5, 10),
    seeds: Sequence[int] = (0,),
    methods: Sequence[str] = STREAM_METHODS,
    options: OnlineOptions | None = None,
    length: int | None = None,
    bound: float = BOUND,
    decay: float = DECAY,
    keep_flags: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every method on the same streams, for each arrival size and seed; summaries and (optionally) flags.

    Returns ``{"runs": [{method, arrival, seed, seconds, summary, probes?}], "table": ...}``
    where the table holds the steady-state ``recent_all`` and ``recalled`` (clean and noisy
    cues) per method and arrival, averaged over the seeds, and the blackout times.
    """
    unknown = [m for m in methods if m not in STREAM_METHODS]
    if unknown:
        raise ValueError(f"unknown stream methods {unknown}; choose from {', '.join(STREAM_METHODS)}")
    n = memory.n_neurons
    runs: list[dict[str, Any]] = []
    for arrival in arrivals:
        for seed in seeds:
            cfg = StreamConfig(n_neurons=n, length=length, arrival=arrival, seed=seed)
            patterns = stream_patterns(cfg)
            for method in methods:
                t0, c0 = time.perf_counter(), time.process_time()
                rule = make_rule(method, n, replace(memory, seed=seed), options, bound, decay)
                probes = run_stream(rule, cfg, patterns)
                run: dict[str, Any] = {
                    "method": method,
                    "arrival": arrival,
                    "seed": seed,
                    "seconds": time.perf_counter() - t0,
                    "cpu_seconds": time.process_time() - c0,
                    "summary": stream_summary(probes, cfg),
                }
                if keep_flags:
                    run["probes"] = probes
                runs.append(run)
                if on_result is not None:
                    on_result(run)
    table: dict[str, dict[str, Any]] = {}
    for method in methods:
        row: dict[str, Any] = {}
        for arrival in arrivals:
            rs = [r["summary"] for r in runs if r["method"] == method and r["arrival"] == arrival]
            row[str(arrival)] = {
                f"{key}_{kind}": float(np.mean([s[kind][key] for s in rs]))
                for kind in ("clean", "noisy")
                for key in ("steady_recent_all", "steady_recalled")
            } | {"blackout_at": [s["clean"]["blackout_at"] for s in rs]}
        table[method] = row
    return {
        "n_neurons": n,
        "length": StreamConfig(n_neurons=n, length=length).n_patterns,
        "n_oldest": StreamConfig(n_neurons=n, length=length).n_oldest,
        "arrivals": list(arrivals),
        "seeds": list(seeds),
        "options": (options if options is not None else online_options(n)).to_dict(),
        "bound": bound,
        "decay": decay,
        "runs": runs,
        "table": table,
    }


# ----------------------------------------------------------------------------- figures


def _mean_curve(runs: Sequence[dict[str, Any]], kind: str, key: str) -> tuple[list[int], list[float]]:
    """Probe times and the mean over ``runs`` (seeds) of ``summary[kind][key]``."""
    t = runs[0]["summary"]["t"]
    vals = np.mean([r["summary"][kind][key] for r in runs], axis=0)
    return t, [float(v) for v in vals]


def stream_figures(out: dict[str, Any], folder: Any, kind: str = "clean", max_age: int = 30) -> list[Any]:
    """Two PNGs of a :func:`stream_storage` result in ``folder`` (means over seeds).

    ``stream_recent.png``: the steady-state number of most recent patterns all recalled, per
    method and arrival size (bars; dots: from cues with 10 % of the bits flipped), and that
    number over the stream for the first arrival size.  ``stream_oldest.png``: the fraction
    of the first ``n_oldest`` patterns recalled over the stream, and the steady-state
    fraction recalled against age.
    """
    from pathlib import Path

    from .plots import _plt

    plt = _plt()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs = out["runs"]
    methods = list(out["table"])
    arrivals = out["arrivals"]
    colors = {m: f"C{i}" for i, m in enumerate(STREAM_METHODS)}
    first = arrivals[0]
    label = "pattern" if first == 1 else f"group of {first}"

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.8 / len(arrivals)
    for j, a in enumerate(arrivals):
        xs = np.arange(len(methods)) + (j - (len(arrivals) - 1) / 2) * width
        clean = [out["table"][m][str(a)]["steady_recent_all_clean"] for m in methods]
        noisy = [out["table"][m][str(a)]["steady_recent_all_noisy"] for m in methods]
        axes[0].bar(xs, clean, width, color=f"C{j}", alpha=0.8, label=f"arrivals of {a}")
        axes[0].plot(xs, noisy, "k.", ms=6, label="10 % flipped cue" if j == 0 else None)
    axes[0].set_xticks(np.arange(len(methods)), methods, rotation=20, fontsize=8)
    axes[0].set_ylabel("most recent patterns all recalled\n(steady state, 2nd half of the stream)")
    axes[0].legend(fontsize=8)
    for m in methods:
        rs = [r for r in runs if r["method"] == m and r["arrival"] == first]
        t, y = _mean_curve(rs, kind, "recent_all")
        axes[1].plot(t, y, color=colors.get(m), label=m)
    axes[1].set_xlabel(f"patterns seen (one {label} per arrival)")
    axes[1].set_ylabel("most recent patterns all recalled")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    p1 = folder / "stream_recent.png"
    fig.savefig(p1, dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    n_old = out.get("n_oldest", 10)
    for m in methods:
        rs = [r for r in runs if r["method"] == m and r["arrival"] == first]
        t, y = _mean_curve(rs, kind, "oldest")
        axes[0].plot(t, y, color=colors.get(m), label=m)
        by_age = np.mean([r["summary"][kind]["recall_by_age"][:max_age] for r in rs], axis=0)
        axes[1].plot(np.arange(len(by_age)), by_age, color=colors.get(m), label=m)
    axes[0].set_xscale("log")
    axes[0].set_xlabel(f"patterns seen (one {label} per arrival; log scale)")
    axes[0].set_ylabel(f"fraction of the first {n_old} patterns recalled")
    axes[1].set_xlabel("age of the pattern (0 = the most recent)")
    axes[1].set_ylabel("fraction recalled (steady state)")
    for ax in axes:
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=8)
    fig.tight_layout()
    p2 = folder / "stream_oldest.png"
    fig.savefig(p2, dpi=100)
    plt.close(fig)
    return [p1, p2]
