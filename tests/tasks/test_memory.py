"""The infomorphic associative memory: PID in one batched call, locality, training, online learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infomorphic.estimate import bin_fixed
from infomorphic.pid.numpy_sx import sx_pid
from infomorphic.seeding import generator
from infomorphic.tasks.hopfield import hebbian_weights, random_patterns
from infomorphic.tasks.memory import (
    InfomorphicMemory,
    MemoryConfig,
    memory_goal,
    neuron_pid,
    replay_states,
    train_memory,
    train_online,
)


def test_batched_pid_matches_exact_pid_of_each_neuron() -> None:
    cfg = MemoryConfig(n_neurons=6)
    patterns = random_patterns(12, 6, generator(0, "p"))
    net = InfomorphicMemory(6, init_scale=30.0, generator=generator(0, "w"))  # R spans several bins
    t, r, theta = net(patterns, patterns)
    res = neuron_pid(t, r, theta.double(), cfg)
    bt, br = bin_fixed(t, 2, -20, 20), bin_fixed(r, 60, -20, 20)
    lat = res.lattice
    for j in range(6):
        pmf = np.zeros((2, 60, 2))
        for b in range(12):
            th = float(theta[b, j].detach())
            pmf[bt[b, j], br[b, j]] += np.array([1 - th, th]) / 12
        exact = sx_pid(pmf)
        for k, chain in enumerate(lat.antichains):
            assert res.atoms[j, k].item() == pytest.approx(exact.atoms[chain], abs=1e-9)


def test_goal_gradient_is_local_to_each_neuron() -> None:
    cfg = MemoryConfig(n_neurons=5)
    patterns = random_patterns(8, 5, generator(1, "p"))
    net = InfomorphicMemory(5, init_scale=20.0, generator=generator(1, "w"))
    t, r, theta = net(patterns, patterns)
    goal = memory_goal("{T}{R}")
    g = goal.evaluate(neuron_pid(t, r, theta, cfg).atoms)
    (grad,) = torch.autograd.grad(g[2], net.weight)
    assert grad[[0, 1, 3, 4]].abs().max() == 0
    assert grad[2].abs().max() > 0
    assert grad.diagonal().abs().max() == 0  # no self-connection


def test_short_training_at_small_load_recalls_perfectly() -> None:
    cfg = MemoryConfig(n_neurons=40, alpha=0.5, max_epochs=400, check_every=10, seed=3)
    res = train_memory(cfg)
    assert res.score == 1.0
    assert res.stopped == "stop_score" and res.epochs < 400
    assert res.history[-1]["atom {T}{R}"] > res.history[0]["atom {T}{R}"] - 1e-6
    assert res.history[-1]["atom {T}{R}"] > 0.5  # redundancy is what the neurons learnt
    again = train_memory(cfg)
    assert torch.equal(again.net.weight, res.net.weight)  # same seed, same run


def test_memory_config_validates() -> None:
    with pytest.raises(ValueError, match="alpha"):
        MemoryConfig(alpha=0)
    with pytest.raises(ValueError):
        MemoryConfig(goal="{F}{C}")  # sources are T and R
    assert MemoryConfig(n_neurons=100, alpha=1.59).n_patterns == 159


def test_online_training_calls_probe_per_group() -> None:
    cfg = MemoryConfig(n_neurons=20)
    patterns = random_patterns(10, 20, generator(2, "p"))
    seen: list[int] = []
    train_online(cfg, patterns, group_size=4, epochs_per_group=3, probe=lambda w, n: seen.append(n))
    assert seen == [4, 8, 10]
    with pytest.raises(ValueError, match="group_size"):
        train_online(cfg, patterns, group_size=0, epochs_per_group=3)


def test_replay_states_are_distinct_fixed_points_of_the_weights() -> None:
    patterns = random_patterns(5, 60, torch.Generator().manual_seed(2))
    w = hebbian_weights(patterns).float()  # far below capacity: the patterns are attractors
    states = replay_states(w, 300, torch.Generator().manual_seed(3))
    assert len(states) == len(torch.unique(states, dim=0)) and len(states) >= 5
    assert torch.equal(torch.sign(states @ w.T), states)  # every state is a fixed point
    # each stored pattern (or its negative, the mirror attractor) is among the rehearsed states
    found = (states @ patterns.T.float()).abs().eq(60).any(0)
    assert bool(found.all())


def test_online_replay_adds_the_rehearsed_states_to_each_later_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import infomorphic.tasks.memory as memory

    sizes: list[int] = []
    real_step = memory._step
    monkeypatch.setattr(
        memory,
        "_step",
        lambda net, opt, batch, cfg, goal: (sizes.append(len(batch)), real_step(net, opt, batch, cfg, goal))[
            1
        ],
    )
    monkeypatch.setattr(memory, "replay_states", lambda w, n, gen=None: torch.ones(3, w.shape[0]))
    cfg = MemoryConfig(n_neurons=20, seed=1)
    patterns = random_patterns(8, 20, torch.Generator().manual_seed(0))
    stored: list[int] = []
    train_online(
        cfg, patterns, group_size=4, epochs_per_group=2, replay_cues=10, probe=lambda w, n: stored.append(n)
    )
    assert sizes == [4, 4, 7, 7]  # the first group has nothing to rehearse
    assert stored == [4, 8]  # rehearsed states are not counted as stored patterns
    with pytest.raises(ValueError, match="replay_cues"):
        train_online(cfg, patterns, group_size=4, epochs_per_group=2, replay_cues=-1)
