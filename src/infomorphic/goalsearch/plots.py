"""Figures of ablations and parameter importance (matplotlib, Agg backend, PNG).

Functions take plain records (the JSON written by :mod:`.ablate`, :mod:`.importance`) and
return a ``Figure``; :func:`save` writes it and closes it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "save",
    "png_bytes",
    "ablation_figures",
    "ablation_bar_figure",
    "cumulative_figure",
    "modulation_figure",
    "importance_figure",
    "figure",
]


def figure(
    width: float, height: float, layout: Literal["constrained", "compressed", "tight"] | None = "constrained"
) -> Any:
    """A new figure on the Agg backend (no display needed); ``layout=None`` for big grids
    (constrained layout costs seconds there; the caller places the axes)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def png_bytes(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save(fig: Any, path: Path) -> bytes:
    """Write ``fig`` as PNG to ``path`` and return the bytes."""
    data = png_bytes(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def _errbars(rows: Sequence[dict[str, Any]], metric: str) -> tuple[np.ndarray, np.ndarray]:
    mean = np.array([r[f"{metric}_mean"] for r in rows]) * 100
    lo = mean - np.array([r[f"{metric}_min"] for r in rows]) * 100
    hi = np.array([r[f"{metric}_max"] for r in rows]) * 100 - mean
    return mean, np.vstack([lo, hi])


def ablation_bar_figure(
    rows: Sequence[dict[str, Any]],
    reference: dict[str, Any],
    metric: str = "val",
    title: str = "single-gamma ablation",
) -> Any:
    """Mean accuracy (bars) with min/max over seeds of each variant; the reference as a line."""
    fig = figure(max(6.0, 0.45 * len(rows) + 2), 4.2)
    ax = fig.add_subplot()
    mean, err = _errbars(rows, metric)
    x = np.arange(len(rows))
    ax.bar(x, mean, yerr=err, capsize=3, color="tab:blue", alpha=0.8)
    ref = reference[f"{metric}_mean"] * 100
    ax.axhline(ref, color="black", ls="--", lw=1, label=f"reference {ref:.2f}%")
    ax.axhspan(reference[f"{metric}_min"] * 100, reference[f"{metric}_max"] * 100, color="grey", alpha=0.2)
    ax.set_xticks(x, [r["label"] for r in rows], rotation=70, ha="right", fontsize=8)
    low = min(float((mean - err[0]).min()), reference[f"{metric}_min"] * 100)
    ax.set_ylim(max(0.0, low - 2), min(100.0, max(float((mean + err[1]).max()), ref) + 1))
    ax.set_ylabel(f"{'validation' if metric == 'val' else 'test'} accuracy (%)")
    ax.set_title(f"{title}: mean and min/max over {len(reference['seeds'])} seeds")
    ax.legend(loc="lower right")
    return fig


def cumulative_figure(rows: Sequence[dict[str, Any]], reference: dict[str, Any], metric: str = "val") -> Any:
    """Accuracy as more gammas are zeroed (smallest individual effect first)."""
    fig = figure(max(6.0, 0.4 * len(rows) + 2), 4.2)
    ax = fig.add_subplot()
    mean, err = _errbars([reference, *rows], metric)
    x = np.arange(len(rows) + 1)
    ax.plot(x, mean, "o-", color="tab:red")
    ax.fill_between(x, mean - err[0], mean + err[1], color="tab:red", alpha=0.2, label="min/max over seeds")
    ax.set_xticks(x, ["none"] + [r["atoms"][-1] for r in rows], rotation=70, ha="right", fontsize=8)
    ax.set_xlabel("last gamma set to 0 (all to its left are 0 too)")
    ax.set_ylabel(f"{'validation' if metric == 'val' else 'test'} accuracy (%)")
    ax.set_title("cumulative ablation, in order of smallest individual effect")
    ax.legend(loc="lower left")
    return fig


def modulation_figure(rows: Sequence[dict[str, Any]], reference: dict[str, Any], metric: str = "val") -> Any:
    """Change of mean accuracy (percentage points) for each gamma's +- modulations, min/max as bars."""
    atoms = list(dict.fromkeys(r["atoms"][0] for r in rows))
    labels = list(dict.fromkeys(r["label"].split(" ", 1)[1] for r in rows))
    fig = figure(max(7.0, 0.55 * len(atoms) + 2), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(labels))
    ref = reference[f"{metric}_mean"] * 100
    for j, lab in enumerate(labels):
        sel = [
            next((r for r in rows if r["atoms"][0] == a and r["label"].endswith(lab)), None) for a in atoms
        ]
        xs = [i + (j - (len(labels) - 1) / 2) * width for i, r in enumerate(sel) if r is not None]
        present = [r for r in sel if r is not None]
        mean, err = _errbars(present, metric)
        ax.bar(xs, mean - ref, width, yerr=err, capsize=2, label=lab)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(atoms)), atoms, rotation=70, ha="right", fontsize=8)
    ax.set_ylabel("change of mean accuracy (points)")
    ax.set_title(f"modulation of each gamma (reference {ref:.2f}%)")
    ax.legend(fontsize=8, ncol=min(4, len(labels)))
    return fig


def ablation_figures(record: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """All figures of an ablation record, as ``ablation_<part>.png`` files in ``out_dir``."""
    out: dict[str, Path] = {}
    ref = record["reference"]
    parts = {
        "single": [r for r in record["rows"] if r["kind"] == "zero"],
        "cumulative": [r for r in record["rows"] if r["kind"] == "cumulative"],
        "modulation": [r for r in record["rows"] if r["kind"] in ("relative", "absolute")],
    }
    makers = {"single": ablation_bar_figure, "cumulative": cumulative_figure, "modulation": modulation_figure}
    for name, rows in parts.items():
        if rows:
            path = Path(out_dir) / f"ablation_{name}.png"
            save(makers[name](rows, ref), path)
            out[name] = path
    return out


def importance_figure(record: dict[str, Any]) -> Any:
    """Horizontal bars of fANOVA and MDI importances, parameters sorted by fANOVA."""
    names = list(record["fanova"])[::-1]
    fig = figure(7.0, 0.3 * len(names) + 1.5)
    ax = fig.add_subplot()
    y = np.arange(len(names))
    ax.barh(y + 0.2, [record["fanova"][n] for n in names], 0.4, label="fANOVA")
    ax.barh(y - 0.2, [record["mdi"].get(n, 0.0) for n in names], 0.4, label="mean decrease in impurity")
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(f"parameter importance, {record['completed_trials']} completed trials")
    ax.legend(loc="lower right")
    return fig
