"""Figures of the self-organisation tasks (matplotlib, Agg backend, PNG files).

Every function takes plain results (dicts / arrays, as written to the run directories) and a
folder, writes its PNG files there and returns their paths.  Information is in bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atoms_over_training", "bars_fields", "mi_matrix_figure", "capacity_figure", "memory_figures"]

_COLORS = {
    "{F}{C}": "tab:blue",
    "{T}{R}": "tab:blue",
    "{F}": "tab:orange",
    "{T}": "tab:orange",
    "{C}": "tab:green",
    "{R}": "tab:green",
    "{FC}": "tab:red",
    "{TR}": "tab:red",
    "H_res": "tab:gray",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def atoms_over_training(
    atoms: np.ndarray,
    hres: np.ndarray,
    names: Sequence[str],
    path: Path,
    xlabel: str = "epoch",
    max_neurons: int = 16,
) -> Path:
    """One panel per neuron: each PID atom and H_res (bits) over training. atoms ``(E, N, A)``, hres ``(E, N)``."""
    plt = _plt()
    n = min(atoms.shape[1], max_neurons)
    cols = 4 if n > 4 else n
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3 * cols, 2.2 * rows), sharex=True, sharey=True, squeeze=False
    )
    x = np.arange(1, atoms.shape[0] + 1)
    for j in range(rows * cols):
        ax = axes[j // cols][j % cols]
        if j >= n:
            ax.axis("off")
            continue
        for a, name in enumerate(names):
            ax.plot(x, atoms[:, j, a], label=name, color=_COLORS.get(name))
        ax.plot(x, hres[:, j], label="H_res", color="gray", ls="--")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"neuron {j}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    for row in axes:
        row[0].set_ylabel("bits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bars_fields(weight_f: np.ndarray, weight_c: np.ndarray, path: Path) -> Path:
    """Receptive fields (8x8 images of w_F) and contextual fields (w_C rows) of every neuron, one colour scale."""
    plt = _plt()
    n = weight_f.shape[0]
    vmax = float(max(np.abs(weight_f).max(), np.abs(weight_c).max(), 1e-9))
    fig, axes = plt.subplots(2, n, figsize=(1.4 * n, 3.2), squeeze=False)
    for j in range(n):
        axes[0][j].imshow(weight_f[j].reshape(8, 8), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        axes[0][j].set_title(f"n{j}", fontsize=8)
        im = axes[1][j].imshow(weight_c[j][None, :], cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        for ax in (axes[0][j], axes[1][j]):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0][0].set_ylabel("w_F", fontsize=8)
    axes[1][0].set_ylabel("w_C", fontsize=8)
    fig.colorbar(im, ax=axes, orientation="horizontal", fraction=0.05)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def mi_matrix_figure(mi: np.ndarray, path: Path, title: str = "I(Y_j ; bar_k) (bits)") -> Path:
    """Neurons x bars mutual-information matrix as a heat map."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(0.4 * mi.shape[1] + 2, 0.4 * mi.shape[0] + 1.5))
    im = ax.imshow(mi, cmap="viridis", vmin=0, vmax=max(1.0, float(mi.max())))
    ax.set_xlabel("bar")
    ax.set_ylabel("neuron")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def capacity_figure(
    points: Sequence[dict[str, Any]], capacity: dict[str, Any], path: Path, threshold: float = 0.95
) -> Path:
    """Score against load per method: thin lines per seed, thick line the mean; alpha_c in the legend."""
    plt = _plt()
    methods = [m for m in capacity if m != "alphas"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, method in enumerate(methods):
        color = f"C{i}"
        for s in sorted({p["seed"] for p in points}):
            pts = sorted((p["alpha"], p["scores"].get(method)) for p in points if p["seed"] == s)
            pts = [(a, v) for a, v in pts if v is not None]
            if pts:
                ax.plot(*zip(*pts), color=color, lw=0.6, alpha=0.4)
        curve = [(a, v) for a, v in zip(capacity["alphas"], capacity[method]["mean_curve"]) if v is not None]
        if curve:
            ac = capacity[method]["alpha_c_mean"]
            ax.plot(*zip(*curve), color=color, lw=2, label=f"{method} (alpha_c = {ac:.2f})")
    ax.axhline(threshold, color="k", ls=":", lw=1)
    ax.set_xlabel("load alpha = M / N")
    ax.set_ylabel("mean overlap after recall")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _atoms_vs_alpha(out: dict[str, Any], path: Path) -> Path | None:
    plt = _plt()
    rows = out.get("hebbian_pid", {}).get("rows", [])
    points = out.get("points", [])
    if not rows and not points:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    names = ["{T}{R}", "{T}", "{R}", "{TR}", "H_res"]
    if rows:
        a = [r["alpha"] for r in rows]
        for name in names:
            axes[0].plot(a, [r[name] for r in rows], label=name, color=_COLORS.get(name))
        axes[0].set_title("Hebbian memory neurons (mean over neurons)")
    if points:
        alphas = sorted({p["alpha"] for p in points if "atoms" in p})
        for name in names:
            ys = [
                np.mean([p["atoms"][name] for p in points if p["alpha"] == al and "atoms" in p])
                for al in alphas
            ]
            axes[1].plot(alphas, ys, label=name, color=_COLORS.get(name))
        axes[1].set_title("infomorphic memory after training (mean over neurons, seeds)")
    for ax in axes:
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("load alpha = M / N")
    axes[0].set_ylabel("bits")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _online_figure(online: dict[str, Any], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (method, curve) in enumerate(online["curves"].items()):
        a = [c["alpha"] for c in curve]
        ax.plot(
            a,
            [c["early"] for c in curve],
            color=f"C{i}",
            label=f"{method}: first {online['n_early']} patterns",
        )
        ax.plot(a, [c["all"] for c in curve], color=f"C{i}", ls="--", label=f"{method}: all stored")
    ax.axhline(0.95, color="k", ls=":", lw=1)
    ax.set_xlabel("patterns stored so far / N")
    ax.set_ylabel("mean overlap after recall")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def memory_figures(out: dict[str, Any], folder: Path) -> list[Path]:
    """All figures of an ``experiments/memory_capacity.py`` result (whichever parts it has)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    if "capacity" in out:
        paths.append(capacity_figure(out["points"], out["capacity"], folder / "capacity.png"))
    p = _atoms_vs_alpha(out, folder / "atoms_vs_alpha.png")
    if p is not None:
        paths.append(p)
    if "online" in out:
        paths.append(_online_figure(out["online"], folder / "online.png"))
    return paths
