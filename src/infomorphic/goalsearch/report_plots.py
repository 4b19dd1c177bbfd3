"""Figures of one trained run (matplotlib, Agg): atoms over training, receptive fields, confusion
matrix, firing probabilities, learning curves and weight dynamics.  Inputs are arrays; see
:mod:`.report` for where they come from.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from .plots import figure

__all__ = [
    "atoms_figure",
    "fields_figure",
    "similarity_figure",
    "confusion_figure",
    "firing_figure",
    "learning_figure",
    "dynamics_figure",
]


ATOM_PANELS = 14
"""Atoms drawn as panels when a layer has more than 20 (four sources: 166): the largest ones."""


def atoms_figure(atoms: np.ndarray, hres: np.ndarray, names: Sequence[str], layer: str) -> Any:
    """One panel per atom (and ``H_res``): every neuron's value per epoch (thin) and the mean (black).

    A layer with more than 20 atoms (four sources: 166) gets panels for the :data:`ATOM_PANELS`
    atoms whose mean over neurons is largest in magnitude in the last epoch, and below them a
    heatmap of every atom's mean per epoch, in the lattice's order.

    Shape: ``atoms (E, N, A)``, ``hres (E, N)``.
    """
    labels = [*names, "H_res"]
    values = np.concatenate([atoms, hres[..., None]], axis=2)
    shown = list(range(len(labels)))
    many = len(names) > 20
    if many:
        final = np.abs(atoms[-1].mean(0))
        shown = sorted(np.argsort(-final, kind="stable")[:ATOM_PANELS].tolist()) + [len(names)]
    n = len(shown)
    cols = 5 if n > 6 else n
    rows = math.ceil(n / cols)
    heat = 0.09 * len(names) + 1.2 if many else 0.0
    top = 1.2 if many else 0.6  # inches above the panels: the title (two lines when many)
    height = 2.1 * rows + top + heat
    fig = figure(2.6 * cols, height, layout=None)
    fig.subplots_adjust(
        left=0.05,
        right=0.98,
        bottom=(0.35 + heat) / height,
        top=1 - top / height,
        wspace=0.35,
        hspace=0.45,
    )
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    epochs = np.arange(1, values.shape[0] + 1)
    for k in range(rows * cols):
        ax = axes.flat[k]
        if k >= n:
            ax.axis("off")
            continue
        series = values[:, :, shown[k]]
        ax.plot(epochs, series, color="tab:blue", lw=0.5, alpha=max(0.05, min(0.5, 8 / series.shape[1])))
        ax.plot(epochs, series.mean(1), color="black", lw=1.5)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(labels[shown[k]], fontsize=9)
        ax.tick_params(labelsize=7)
    which = f"the {ATOM_PANELS} of {len(names)} atoms largest at the end, and H_res" if many else "every atom"
    fig.suptitle(
        f"{layer} layer: PID atoms of every neuron per epoch ({which};\nbits; black = mean over "
        f"{values.shape[1]} neurons)"
        if many
        else f"{layer} layer: PID atoms of every neuron per epoch ({which}; bits; black = mean over "
        f"{values.shape[1]} neurons)",
        fontsize=10,
    )
    if many:
        ax = fig.add_axes((0.16, 0.35 / height, 0.74, (heat - 0.9) / height))
        from matplotlib.colors import SymLogNorm

        means = atoms.mean(1).T  # (A, E)
        limit = max(float(np.abs(means).max()), 0.01)
        image = ax.imshow(
            means,
            aspect="auto",
            cmap="RdBu_r",
            # logarithmic above 0.005 bits: the small atoms stay visible beside the large ones
            norm=SymLogNorm(linthresh=0.005, vmin=-limit, vmax=limit, base=10),
            interpolation="nearest",
            extent=(0.5, len(epochs) + 0.5, len(names) - 0.5, -0.5),
        )
        ax.set_yticks(range(len(names)), list(names), fontsize=4.5)
        ax.set_xlabel("epoch", fontsize=9)
        ax.set_title(
            f"every atom's mean over the {values.shape[1]} neurons (bits; colour logarithmic beyond 0.005)",
            fontsize=9,
        )
        ax.tick_params(axis="x", labelsize=7)
        _colorbar(fig, image, (0.92, 0.35 / height, 0.015, (heat - 0.9) / height), "bits")
    else:
        fig.supxlabel("epoch", fontsize=9)
    return fig


def _image(w: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    if len(shape) == 3:  # channels first -> mean over channels
        return w.reshape(shape).mean(0)
    return w.reshape(shape)


def _symmetric_limit(images: Sequence[np.ndarray]) -> float:
    """The largest absolute value over ``images`` (1.0 when all are zero or there are none)."""
    finite = [float(np.nanmax(np.abs(img))) for img in images if img.size and np.isfinite(img).any()]
    return max(finite, default=0.0) or 1.0


def _colorbar(fig: Any, image: Any, rect: Sequence[float], label: str, orientation: str = "vertical") -> Any:
    """A colour bar for ``image`` in the figure rectangle ``rect`` (left, bottom, width, height)."""
    bar = fig.colorbar(image, cax=fig.add_axes(tuple(rect)), orientation=orientation)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return bar


def fields_figure(
    weights: np.ndarray,
    shape: Sequence[int],
    title: str,
    labels: Sequence[str] | None = None,
    max_cols: int = 20,
    value: str = "feedforward weight",
) -> Any:
    """Each row of ``weights (N, d)`` as an image of ``shape``.

    One colour scale for the whole figure, symmetric around 0 (red positive, blue negative, white
    0), with a colour bar labelled ``value`` (what a pixel shows); images with channels show the mean
    over channels.
    """
    n = weights.shape[0]
    cols = min(max_cols, n)
    rows = math.ceil(n / cols)
    images = [_image(weights[k], shape) for k in range(n)]
    lim = _symmetric_limit(images)
    width, height = max(0.75 * cols + 0.4, 3.5), 0.8 * rows + 1.35  # 0.75 in below the tiles: the colour bar
    fig = figure(width, height, layout=None)
    tiles = 0.75 * cols / width
    fig.subplots_adjust(
        left=(1 - tiles) / 2,
        right=(1 + tiles) / 2,
        bottom=0.75 / height,
        top=1 - 0.5 / height,
        wspace=0.08,
        hspace=0.25 if labels is not None else 0.08,
    )
    axes = fig.subplots(rows, cols, squeeze=False)
    shown = None
    for k in range(rows * cols):
        ax = axes.flat[k]
        ax.axis("off")
        if k < n:
            shown = ax.imshow(images[k], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            if labels is not None:
                ax.set_title(labels[k], fontsize=7)
    if shown is not None:
        bar_width = min(3.0, width - 0.5) / width
        _colorbar(
            fig,
            shown,
            ((1 - bar_width) / 2, 0.42 / height, bar_width, 0.12 / height),
            value + (" (mean over channels)" if len(shape) == 3 else ""),
            orientation="horizontal",
        )
    fig.suptitle(title, fontsize=10)
    return fig


def similarity_figure(
    readout: np.ndarray,
    logistic: np.ndarray,
    shape: Sequence[int],
    cosine: np.ndarray,
    class_names: Sequence[str],
    value: str = "readout weight",
) -> Any:
    """Readout fields (top), logistic-regression fields (middle) and their cosine similarity (bottom).

    Each image row has one colour scale, symmetric around 0, with its own labelled colour bar (the
    readout weights, labelled ``value``, and the logistic-regression weights are in different
    units; the cosine compares their directions).
    """
    n = readout.shape[0]
    width = 1.1 * n + 2.2
    right = 1 - 1.3 / width
    fig = figure(width, 4.6, layout=None)
    grid = fig.add_gridspec(
        3, n, height_ratios=[1, 1, 1.3], left=0.06, right=right, bottom=0.08, top=0.95, hspace=0.35
    )
    for row, (w, name, label) in enumerate(
        ((readout, "readout", value), (logistic, "logistic", "logistic-regression weight"))
    ):
        images = [_image(w[k], shape) for k in range(n)]
        lim = _symmetric_limit(images)
        shown = None
        for k in range(n):
            ax = fig.add_subplot(grid[row, k])
            shown = ax.imshow(images[k], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.axis("off")
            if k == 0:
                ax.set_title(name, fontsize=8, loc="left")
        if shown is not None:
            box = grid[row, n - 1].get_position(fig)
            _colorbar(
                fig, shown, (right + 0.15 / width, box.y0, 0.1 / width, box.height), textwrap.fill(label, 20)
            )
    ax = fig.add_subplot(grid[2, :])
    ax.bar(np.arange(n), cosine, color="tab:green")
    ax.set_xticks(np.arange(n), class_names, fontsize=8)
    ax.set_ylim(min(0.0, float(cosine.min()) - 0.05), 1.0)
    ax.set_ylabel("cosine similarity")
    ax.set_title(f"readout vs one-vs-all logistic regression fields (mean {cosine.mean():.3f})", fontsize=9)
    return fig


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str]) -> Any:
    """Test confusion matrix (rows: true class, columns: predicted), counts annotated."""
    n = confusion.shape[0]
    fig = figure(0.5 * n + 2.5, 0.5 * n + 2)
    ax = fig.add_subplot()
    norm = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(int(confusion[i, j])),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(n), class_names, fontsize=8, rotation=45)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f"test confusion matrix (accuracy {100 * acc:.2f}%)", fontsize=10)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    return fig


def firing_figure(firing: dict[str, np.ndarray], class_names: Sequence[str]) -> Any:
    """Mean firing probability of each neuron (columns) per class (rows), one panel per layer."""
    fig = figure(12.0, 2.2 * len(firing) + 0.8)
    axes = fig.subplots(len(firing), 1, squeeze=False)
    for ax, (layer, p) in zip(axes[:, 0], firing.items()):
        im = ax.imshow(p, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
        ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
        ax.set_xlabel(f"{layer} neuron", fontsize=8)
        ax.set_title(f"{layer} layer: P(Y = +1) per class (test set, context withheld)", fontsize=9)
        fig.colorbar(im, ax=ax, pad=0.01)
    return fig


def learning_figure(history: Sequence[dict[str, Any]], baselines: dict[str, Any]) -> Any:
    """Accuracy per epoch (train / validation / test, baselines dashed) and each layer's mean goal."""
    fig = figure(11.0, 3.8)
    ax, bx = fig.subplots(1, 2)
    epochs = [m["epoch"] for m in history]
    for key in ("train_acc", "val_acc", "test_acc"):
        shown = [m for m in history if m.get(key) is not None]  # evaluated epochs (eval_every)
        ax.plot(
            [m["epoch"] for m in shown],
            [100 * m[key] for m in shown],
            "o-",
            ms=3,
            label=key.replace("_acc", ""),
        )
    for name, res in baselines.items():
        if "test_acc" in res:
            ax.axhline(100 * res["test_acc"], ls="--", lw=1, color="grey")
            ax.text(
                epochs[0] if epochs else 0, 100 * res["test_acc"], f" {name} test", fontsize=7, va="bottom"
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%), context withheld")
    ax.set_title("learning curves")
    ax.legend()
    for key in sorted({k for m in history for k in m if k.endswith("_goal")}):
        bx.plot(epochs, [m[key] for m in history], "o-", ms=3, label=key.replace("_goal", ""))
    bx.set_xlabel("epoch")
    bx.set_ylabel("mean goal per neuron (bits)")
    bx.set_title("local goals")
    bx.legend()
    return fig


def dynamics_figure(wdist: dict[str, np.ndarray]) -> Any:
    """Median over neurons of the self-cosine distance 1 - cos(w_F(t-1), w_F(t)) per epoch (log scale)."""
    fig = figure(7.0, 3.6)
    ax = fig.add_subplot()
    for layer, d in wdist.items():
        ax.plot(np.arange(1, len(d) + 1), np.maximum(d, 1e-12), "o-", ms=3, label=layer)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("median self-cosine distance")
    ax.set_title("feedforward weight dynamics (Schneider et al. 2025, appendix A.9)")
    ax.legend()
    return fig
