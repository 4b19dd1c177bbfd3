"""What the hidden layer of a run learned: atoms over training, the code it emits, its receptive fields.

    python experiments/hidden_code.py RUN_DIR [RUN_DIR ...] [--fields fields.png] [--atoms atoms.png]

Written for the bivariate lateral-only network and the random baselines (issue 15); works for
any run whose hidden layer is called ``hidden``.  One JSON line per run:

- ``atoms``: the hidden neurons' mean PID atoms and H_res (bits) and the mean goal at epochs
  1, 2, 5, 10, 20, ... and the last (from ``metrics.jsonl`` / ``atoms.npz``; none for a frozen
  hidden layer);
- ``code`` (the final checkpoint on ``--samples`` test images, label withheld, second
  presentation): mean firing probability, determinism ``E[max(theta, 1 - theta)]``, the mean
  absolute correlation between the outputs of two hidden neurons, ``duplicates``: the share of
  neurons whose output correlates above 0.9 in magnitude with an earlier neuron's;
- ``aggregates``: the median over neurons of each input class's standard deviation over the
  samples, and the median number of the layer's 20 fixed bins on (-20, 20) that the class's
  values occupy (what a fixed-range estimate can see of it).

``--fields``: the feedforward weights of the first 16 hidden neurons as images, one row per run.
``--atoms``: the mean atoms over the epochs, one panel per run.  Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def _load(run_dir: Path) -> tuple[Any, Any, Any]:
    import torch

    from infomorphic.config import TrainConfig
    from infomorphic.data import load_dataset
    from infomorphic.runs import load_checkpoint, read_json
    from infomorphic.train.loop import build_network

    config = TrainConfig.from_dict(read_json(run_dir / "config.json")["config"])
    splits = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed)
    net = build_network(config, splits.train.x.shape[1], splits.n_classes)
    net.load_state_dict(load_checkpoint(run_dir / "checkpoint.pt")["model"])
    net.eval()
    torch.set_grad_enabled(False)
    return config, splits, net


def atoms_over_training(run_dir: Path) -> dict[str, Any]:
    from infomorphic.runs import load_npz, read_jsonl

    metrics = read_jsonl(run_dir / "metrics.jsonl")
    if not metrics or "hidden_atoms_mean" not in metrics[-1]:
        return {}
    stored = load_npz(run_dir / "atoms.npz")
    epochs = sorted({e for e in (1, 2, 5, 10, 20, 50, 100) if e <= len(metrics)} | {len(metrics)})
    out = {}
    for e in epochs:
        m = metrics[e - 1]
        row = {k: round(v, 4) for k, v in m["hidden_atoms_mean"].items()}
        row["H_res"] = round(float(stored["hidden_hres"][e - 1].mean()), 4)
        row["goal"] = round(m["hidden_goal"], 4)
        row["test_acc"] = None if m["test_acc"] is None else round(m["test_acc"], 4)  # eval_every
        out[str(e)] = row
    return out


def code_statistics(run_dir: Path, samples: int) -> dict[str, Any]:
    import torch

    config, splits, net = _load(run_dir)
    x = splits.test.x[:samples]
    out = net(x, None, generator=torch.Generator().manual_seed(0))
    hidden = out.hidden
    assert hidden is not None, "the run has no layer called hidden"
    theta = hidden.theta
    spikes = out.hidden_spikes
    assert spikes is not None
    s = spikes - spikes.mean(0)
    std = s.std(0)
    alive = std > 0
    corr = (s[:, alive].T @ s[:, alive]) / (len(s) - 1) / (std[alive][:, None] * std[alive][None, :])
    n = int(alive.sum())
    off = corr[~torch.eye(n, dtype=torch.bool)].abs()
    dup = 0
    for j in range(1, n):
        if bool((corr[j, :j].abs() > 0.9).any()):
            dup += 1
    layer = net.layer("hidden")
    aggs = hidden.aggregates
    agg_stats = {}
    for k, letter in enumerate(layer.sources):
        values = aggs[..., k]
        edges = torch.linspace(-20, 20, 21)
        bins = torch.bucketize(values.clamp(-20 + 1e-4, 20), edges) - 1
        occupied = torch.tensor([len(bins[:, j].unique()) for j in range(bins.shape[1])]).float()
        agg_stats[letter] = {
            "std_median": round(float(values.std(0).median()), 4),
            "fixed_bins_occupied_median": float(occupied.median()),
        }
    return {
        "activation": layer.activation_name,
        "binning": layer.binning,
        "goal": layer.goal.to_expression() if layer.goal is not None else None,
        "code": {
            "firing_rate": round(float(theta.mean()), 4),
            "determinism": round(float(torch.maximum(theta, 1 - theta).mean()), 4),
            "silent_or_constant_neurons": int((~alive).sum()),
            "mean_abs_correlation": round(float(off.mean()), 4) if n > 1 else None,
            "duplicates": round(dup / max(1, n), 4),
        },
        "aggregates": agg_stats,
    }


def _title(run: Path) -> str:
    """The run's name, goal preset and hidden binning."""
    from infomorphic.runs import read_json

    config = read_json(run / "config.json")["config"]
    return f"{run.name}: {config.get('hidden_goal')}, {config.get('hidden_binning', 'fixed')} bins"


def fields_figure(runs: list[Path], path: Path, count: int = 16) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), count, figsize=(count * 0.9, len(runs) * 1.1), squeeze=False)
    for row, run in enumerate(runs):
        _, splits, net = _load(run)
        w = net.layer("hidden").effective_weight("F").numpy()
        side = int(round(w.shape[1] ** 0.5))
        for j in range(count):
            ax = axes[row][j]
            ax.axis("off")
            if j < w.shape[0]:
                img = w[j].reshape(side, side)
                lim = float(np.abs(img).max()) or 1.0
                ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[row][0].set_title(_title(run), fontsize=7, loc="left")
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.02, hspace=0.45, wspace=0.05)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def atoms_figure(runs: list[Path], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infomorphic.runs import load_npz, read_jsonl

    fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 3.2), squeeze=False, sharey=True)
    for ax, run in zip(axes[0], runs):
        metrics = read_jsonl(run / "metrics.jsonl")
        hres = load_npz(run / "atoms.npz")["hidden_hres"].mean(1)
        epochs = [m["epoch"] for m in metrics]
        for atom in metrics[-1]["hidden_atoms_mean"]:
            ax.plot(epochs, [m["hidden_atoms_mean"][atom] for m in metrics], label=atom)
        ax.plot(epochs, hres, "k--", label="H_res")
        ax.set_title(_title(run).split(": ", 1)[1], fontsize=8)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean over hidden neurons (bits)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=10000, help="test images for the code statistics")
    parser.add_argument("--fields", type=Path, metavar="PNG")
    parser.add_argument("--atoms", type=Path, metavar="PNG")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    for run in args.runs:
        row = {"run": str(run), **code_statistics(run, args.samples), "atoms": atoms_over_training(run)}
        print(json.dumps(row), flush=True)
    if args.fields is not None:
        fields_figure(args.runs, args.fields)
    if args.atoms is not None:
        atoms_figure(args.runs, args.atoms)


if __name__ == "__main__":
    main()
