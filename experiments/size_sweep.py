"""Accuracy against hidden-layer size: the main figure of Schneider et al. 2025 (Fig. 2.B, Fig. 8).

    python experiments/size_sweep.py --models setup1 setup2 random backprop readout \\
        --sizes 1 2 5 10 20 50 100 --seeds 0 1 2 --epochs 100 --workers 2
    python experiments/size_sweep.py ... --summarise            # only read the runs that exist
    python experiments/size_sweep.py ... --summarise --figure size-sweep.png
    python experiments/size_sweep.py ... --summarise --convergence-figure convergence.png
    python experiments/size_sweep.py ... --summarise --claims   # the text's claims, on finished runs
    python experiments/size_sweep.py ... --summarise --finished-only --figure size-sweep.png  # final runs only
    python experiments/size_sweep.py ... --markdown             # the rows as Markdown tables
    python experiments/size_sweep.py ... --ledger runs.jsonl   # finished runs kept beyond their directories

Every (model, N, seed) is one ``infomorphic train`` run directory
``<out>/<dataset>-<model>-n<N>-seed<s>`` (``<dataset>-<model>-seed<s>`` for a model without a
hidden layer), trained in a worker process with one torch thread (``--threads``).  A finished
run (``summary.json`` with the asked epochs) is reused; an unfinished one, or one with fewer
epochs, is continued with ``--resume``; so the script can be stopped and started again, and a
run of the same name from another sweep is reused as it is (give another ``--out`` when the
settings change, e.g. with ``--set``).  Several sweeps may work on one ``--out`` at once (two
invocations, or machines sharing the folder): a run that another process is training is left
to it (a ``{"run", "skipped"}`` line on stderr) and the rows show what it held when this sweep
ended (rows include runs still training, at their last epoch, unless ``--finished-only``;
``--claims`` always decides on finished runs only).  A failed run prints ``{"run", "error"}``
on stderr, and the sweep exits with status 1 after its output.

Models (``MODELS``; the hidden goals are the presets of ``infomorphic.goals``):

- ``setup1`` / ``setup2`` / ``setup3``: trivariate hidden layer with the TPE-optimised goal
  (``trivariate-mnist-tpe``); dense lateral / at most 100 random lateral partners / as 2 with
  feedback from the readout as context instead of the label (setup 2 with N <= 101 is setup 1
  bit for bit and reuses its runs);
- ``context-heuristic`` / ``context-optimised``: bivariate hidden layer with F and the label
  (goals ``bivariate-context-naive``, i.e. maximise {F}{C}, and ``bivariate-context-optimised``);
- ``lateral-heuristic`` / ``lateral-optimised``: bivariate hidden layer with F and the dense
  lateral input (``bivariate-lateral-naive``, i.e. maximise {F} unique with respect to L, and
  ``bivariate-lateral-optimised``); the bivariate hidden layers are binned adaptively, as in
  the authors' code;
- ``random``: the hidden layer frozen at its initialisation, firing by the sign of its drive
  (the paper's random baseline: a step function, so no weight scale matters);
  ``random-sigmoid``: frozen at initialisation but firing stochastically with sigmoid(drive)
  (degenerate: the drive is too small, the units are mostly noise); ``random-sigmoid-x8``:
  the same with the weights scaled x8 (the repository's earlier default);
- ``backprop``: the paper's backprop benchmark (``backprop_variant = "paper"``: setup-1
  connectivity, the trivariate activation with label context in training, 0/1 stochastic units
  with a straight-through gradient, cross-entropy of the readout's probabilities);
  ``backprop-harness``: ``--network backprop`` of this repository (stochastic +-1 units, no
  lateral input, cross-entropy of linear logits);
- ``readout``: the readout alone on the image (``--network single``, no hidden layer; one run
  per seed, drawn as a horizontal band).

Output: one JSON line per (model, N) row with the median, min and max over the seeds of the
final test, train and validation accuracy (and the median self-cosine distance of the
hidden layer's feedforward weights in the last epoch, appendix Fig. 4), then one line with
all rows; the rows also go to ``<out>/size_sweep.csv`` (``--csv``).  ``--ledger FILE`` records
each finished run's figures (with the date and the CPU); a run recorded there with at least
``--epochs`` counts as done when its directory is gone.  Never imported by the package.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_run import (  # noqa: E402 - the experiments' shared launcher
    add_ledger_option,
    at_least,
    check_out,
    infomorphic_exe,
    open_ledger,
    read_ledger,
    record_runs,
    recorded,
    report_statuses,
    run_figures,
    train_run,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)

# name: (label, config overrides, has a hidden layer of size N)
MODELS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "setup1": ("setup 1 (dense lateral)", {"network": "trivariate", "setup": 1}, True),
    "setup2": (
        "setup 2 (100 lateral partners)",
        {"network": "trivariate", "setup": 2, "lateral_partners": 100},
        True,
    ),
    "setup3": (
        "setup 3 (readout feedback as context)",
        {"network": "trivariate", "setup": 3, "lateral_partners": 100},
        True,
    ),
    "context-heuristic": (
        "bivariate, context only, heuristic",
        {
            "network": "bivariate-context",
            "hidden_goal": "bivariate-context-naive",
            "hidden_binning": "adaptive",
        },
        True,
    ),
    "context-optimised": (
        "bivariate, context only, optimised",
        {
            "network": "bivariate-context",
            "hidden_goal": "bivariate-context-optimised",
            "hidden_binning": "adaptive",
        },
        True,
    ),
    "lateral-heuristic": (
        "bivariate, lateral only, heuristic",
        {
            "network": "bivariate-lateral",
            "hidden_goal": "bivariate-lateral-naive",
            "hidden_binning": "adaptive",
        },
        True,
    ),
    "lateral-optimised": (
        "bivariate, lateral only, optimised",
        {
            "network": "bivariate-lateral",
            "hidden_goal": "bivariate-lateral-optimised",
            "hidden_binning": "adaptive",
        },
        True,
    ),
    "random": (
        "random hidden layer (step)",
        {"network": "random-hidden", "random_activation": "step", "random_gain": 1.0},
        True,
    ),
    "random-sigmoid": (
        "random hidden layer (sigmoid, at init)",
        {"network": "random-hidden", "random_activation": "feedforward", "random_gain": 1.0},
        True,
    ),
    "random-sigmoid-x8": (
        "random hidden layer (sigmoid, weights x8)",
        {"network": "random-hidden", "random_activation": "feedforward", "random_gain": 8.0},
        True,
    ),
    "backprop": ("backprop (paper's benchmark)", {"network": "backprop", "backprop_variant": "paper"}, True),
    "backprop-harness": (
        "backprop (harness MLP, no lateral)",
        {"network": "backprop", "backprop_variant": "harness"},
        True,
    ),
    "readout": ("readout alone", {"network": "single"}, False),
}
DEFAULT_MODELS = (
    "setup1",
    "setup2",
    "setup3",
    "context-heuristic",
    "context-optimised",
    "lateral-heuristic",
    "lateral-optimised",
    "random",
    "backprop",
    "readout",
)
CSV_FIELDS = (
    "model",
    "label",
    "N",
    "runs",
    "finished",
    "epochs_min",
    "epochs_max",
    "test_median",
    "test_min",
    "test_max",
    "train_median",
    "train_min",
    "train_max",
    "val_median",
    "val_min",
    "val_max",
    "test_class_inversion_median",
    "test_class_inversion_min",
    "test_class_inversion_max",
    "weight_change_median",
    "seconds_per_epoch_median",
)


SETUP2_PARTNERS = 100
"""Lateral partners of setup 2 (and 3); with N <= partners + 1 every other neuron is a partner."""


def canonical(model: str, n: int | None) -> str:
    """The model whose run stands for ``model`` at size ``n``: setup 1 for setup 2 with N <= 101."""
    if model == "setup2" and n is not None and n <= SETUP2_PARTNERS + 1:
        return "setup1"
    return model


def run_name(dataset: str, model: str, n: int | None, seed: int) -> str:
    """``<dataset>-<model>-n<N>-seed<s>``; without the size for a model without a hidden layer.

    Setup 2 with ``N <= 101`` is setup 1 (every other neuron is one of its at most 100 lateral
    partners: the same weights, wiring and training, bit for bit), so it names setup 1's run.
    """
    model = canonical(model, n)
    size = "" if n is None or not MODELS[model][2] else f"-n{n}"
    return f"{dataset}-{model}{size}-seed{seed}"


def sizes_of(model: str, sizes: Sequence[int]) -> list[int | None]:
    """The sizes a model is run at: all of them, or one run (``None``) without a hidden layer."""
    return list(sizes) if MODELS[model][2] else [None]


def run_result(run_dir: Path) -> dict[str, Any] | None:
    """Final accuracies of one run directory, or None when it holds no finished epoch.

    Infomorphic runs: ``summary.json`` when the run finished, else the last line of
    ``metrics.jsonl``.  ``--network backprop`` runs: the ``backprop`` entry of ``baselines.json``.
    """
    from infomorphic.runs import read_json, read_jsonl

    config_path = run_dir / "config.json"
    if not config_path.exists():
        return None
    config = read_json(config_path)["config"]
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else None
    if config["network"] == "backprop":
        base = read_json(run_dir / "baselines.json") if (run_dir / "baselines.json").exists() else {}
        bp = base.get("backprop")
        if not bp:
            return None
        hist = bp.get("history") or []
        return {
            "epochs": bp.get("epochs"),
            "finished": summary is not None,
            "test_acc": bp.get("test_acc"),
            "train_acc": bp.get("train_acc"),
            "val_acc": bp.get("val_acc"),
            "weight_change": None,
            "seconds_per_epoch": statistics.median(m["train_seconds"] for m in hist) if hist else None,
            **_class_inversion(bp),
        }
    metrics = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    if not metrics:
        return None
    last = metrics[-1]
    finished = summary is not None and summary.get("epochs") == last["epoch"]
    source = summary if finished else last
    assert source is not None
    return {
        "epochs": last["epoch"],
        "finished": finished,
        "test_acc": source["test_acc"],
        "train_acc": source["train_acc"],
        "val_acc": source["val_acc"],
        "weight_change": last.get("hidden_weight_change"),
        "seconds_per_epoch": statistics.median(m["train_seconds"] for m in metrics),
        **_class_inversion(source),
    }


def _class_inversion(source: dict[str, Any]) -> dict[str, Any]:
    """``test_acc_class_inversion`` of a summary when it has one: runs of code from before
    2026-12-03 do not, and their ledger records stay as they were (unchanged, not re-stamped)."""
    value = source.get("test_acc_class_inversion")
    return {} if value is None else {"test_acc_class_inversion": value}


def command(
    out: Path,
    dataset: str,
    model: str,
    n: int | None,
    seed: int,
    epochs: int,
    threads: int,
    sets: Sequence[str] = (),
) -> list[str]:
    """The ``infomorphic train`` command line of one run: a fresh run, or ``--resume`` when its
    directory holds one already."""
    exe = infomorphic_exe()
    name = run_name(dataset, model, n, seed)
    run_dir = out / name
    tail = ["--epochs", str(epochs), "--threads", str(threads), "--no-progress", "--json"]
    if (run_dir / "config.json").exists():
        return [exe, "train", "--resume", str(run_dir), *tail]
    cmd = [exe, "train", "--dataset", dataset, "--seed", str(seed), "--baselines", "none"]
    if n is not None and MODELS[model][2]:
        cmd += ["--hidden", str(n)]
    for key, value in MODELS[canonical(model, n)][1].items():
        cmd += ["--set", f"{key}={value}"]
    for item in sets:
        cmd += ["--set", item]
    return [*cmd, "--out-dir", str(out), "--name", name, *tail]


def finished(result: dict[str, Any] | None, epochs: int) -> bool:
    """Whether a run's figures (:func:`run_result`, or its ledger record) are those of a run that
    finished at least ``epochs`` epochs."""
    return bool(result and result["finished"] and (result["epochs"] or 0) >= epochs)


def is_done(run_dir: Path, epochs: int, ledger: dict[str, dict] | None = None) -> bool:
    """Whether a run directory holds a finished run of at least ``epochs`` epochs, or the
    ``ledger`` records one under its name."""
    if finished(run_result(run_dir), epochs):
        return True
    return recorded(ledger or {}, run_dir.name, epochs)


def seed_result(run_dir: Path, epochs: int, ledger: dict[str, dict]) -> dict[str, Any] | None:
    """The figures of one run: its directory when that run finished ``epochs``, else the
    ledger's record when it has them (the directory may be gone), else whatever the directory
    holds (a run still training), else None."""
    return run_figures(run_result(run_dir), ledger, run_dir.name, epochs)


def ledger_record(run_dir: Path) -> dict[str, Any] | None:
    """The ledger record of a finished run directory (None otherwise): its final figures and the
    per-epoch self-cosine distance of the hidden weights (``weight_change_curve``)."""
    from infomorphic.runs import read_jsonl

    result = run_result(run_dir)
    if result is None or not result["finished"]:
        return None
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    curve = [m.get("hidden_weight_change") for m in metrics]
    return {**result, "weight_change_curve": curve if any(c is not None for c in curve) else []}


def run_one(
    out: Path,
    dataset: str,
    model: str,
    n: int | None,
    seed: int,
    epochs: int,
    threads: int,
    sets: Sequence[str] = (),
    ledger: dict[str, dict] | None = None,
) -> str:
    """Train (or continue) one run unless it is finished (in its directory or in the
    ``ledger``); ``"reused"``, ``"trained"``, ``"busy"`` (another process, e.g. a second sweep
    on the same ``out``, trains it now) or ``"failed"``."""
    run_dir = out / run_name(dataset, model, n, seed)
    if is_done(run_dir, epochs, ledger):
        return "reused"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    return train_run(run_dir, lambda: command(out, dataset, model, n, seed, epochs, threads, sets), env)


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise_row(
    out: Path,
    dataset: str,
    model: str,
    n: int | None,
    seeds: Sequence[int],
    epochs: int = 0,
    ledger: dict[str, dict] | None = None,
    finished_only: bool = False,
) -> dict:
    """Median, min and max over the seeds' runs that hold at least one epoch (a run recorded in
    the ``ledger`` with at least ``epochs`` stands in for a directory without them); with
    ``finished_only``, over the runs that finished at least ``epochs`` epochs (a run still
    training, or stopped early, is left out)."""
    results = [seed_result(out / run_name(dataset, model, n, s), epochs, ledger or {}) for s in seeds]
    if finished_only:
        results = [r if finished(r, epochs) else None for r in results]
    found = [r for r in results if r is not None]

    def values(key: str) -> list[float]:
        return [float(r[key]) for r in found if r.get(key) is not None]

    seconds = values("seconds_per_epoch")
    changes = values("weight_change")
    return {
        "model": model,
        "label": MODELS[model][0],
        "N": n,
        "seeds": [s for s, r in zip(seeds, results) if r is not None],
        "runs": len(found),
        "finished": sum(bool(r["finished"]) for r in found),
        "epochs": [r["epochs"] for r in found],
        "test": _stats(values("test_acc")),
        # the readout's inversion decided from the training labels, not from mean firing (runs of
        # code from before 2026-12-03 do not have it)
        "test_class_inversion": _stats(values("test_acc_class_inversion")),
        "train": _stats(values("train_acc")),
        "val": _stats(values("val_acc")),
        "weight_change_median": statistics.median(changes) if changes else None,
        "seconds_per_epoch_median": statistics.median(seconds) if seconds else None,
    }


def csv_row(row: dict) -> dict[str, Any]:
    """The flat CSV record of a summary row."""
    flat: dict[str, Any] = {k: row[k] for k in ("model", "label", "N", "runs", "finished")}
    flat["epochs_min"] = min(row["epochs"]) if row["epochs"] else None
    flat["epochs_max"] = max(row["epochs"]) if row["epochs"] else None
    for part in ("test", "train", "val", "test_class_inversion"):
        for stat in ("median", "min", "max"):
            flat[f"{part}_{stat}"] = row[part][stat] if row.get(part) else None
    flat["weight_change_median"] = row["weight_change_median"]
    flat["seconds_per_epoch_median"] = row["seconds_per_epoch_median"]
    return flat


def write_csv(path: Path, rows: list[dict]) -> None:
    """The rows as CSV, written to a temporary file and renamed (a second sweep writing the same
    file at the same moment leaves one whole table, never a mix)."""
    from infomorphic.runs import atomic_write

    def write(fh: Any) -> None:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_row(row))

    atomic_write(path, write)


SHORT_LABELS = {
    "setup1": "setup 1",
    "setup2": "setup 2",
    "setup3": "setup 3",
    "context-heuristic": "context heur.",
    "context-optimised": "context opt.",
    "lateral-heuristic": "lateral heur.",
    "lateral-optimised": "lateral opt.",
    "random": "random",
    "random-sigmoid": "random sigmoid",
    "random-sigmoid-x8": "random sigmoid x8",
    "backprop": "backprop",
    "backprop-harness": "backprop harness",
    "readout": "readout alone",
}
"""Column heads of the Markdown tables."""


def markdown_table(rows: list[dict], part: str = "test", seeds: int = 0) -> str:
    """The rows as a Markdown table of ``part`` (test, train, val, test_class_inversion) accuracy
    in %: one line per N, one column per model with a hidden layer, each cell the median over the
    seeds and its min-max range; a cell from fewer runs than ``seeds`` says how many (``[2]``),
    one without runs is empty.  Models without a hidden layer (the readout alone) follow as one
    line below the table.  Sizes and models without any run are left out."""

    def cell(row: dict | None) -> str:
        if row is None or not row.get(part):
            return ""
        stats = row[part]
        text = f"{100 * stats['median']:.1f}"
        if row["runs"] > 1:
            text += f" ({100 * stats['min']:.1f}-{100 * stats['max']:.1f})"
        return text + (f" [{row['runs']}]" if seeds and row["runs"] != seeds else "")

    have = [r for r in rows if r.get(part)]
    layered = list(dict.fromkeys(r["model"] for r in have if r["N"] is not None))
    sizes = sorted({r["N"] for r in have if r["N"] is not None})
    table = {(r["model"], r["N"]): r for r in have}
    lines = [
        "| N | " + " | ".join(SHORT_LABELS.get(m, m) for m in layered) + " |",
        "|---|" + "---|" * len(layered),
    ]
    lines += [f"| {n} | " + " | ".join(cell(table.get((m, n))) for m in layered) + " |" for n in sizes]
    if not layered:
        lines = []
    for r in have:
        if r["N"] is None:
            lines.append(f"\n{MODELS[r['model']][0]} (no hidden layer): {cell(r)}")
    return "\n".join(lines).strip("\n")


INVERSION_RULES = {
    "paper": "the papers' inversion rule",
    "class": "readout inversion from the training labels",
}
"""How the readout's inverted neurons are read, as the figure names it."""


ZOOM_FROM = 100
"""The figure's third panel shows the test accuracy from this N on, on its own accuracy axis
(there the best models lie within a few points of one another, and of 100 %)."""
ZOOM_WINDOW = 0.12
"""The third panel's accuracy axis spans at most this much (a fraction) below the highest value
drawn there; curves further down leave the panel."""


def figure(rows: list[dict], path: Path, title: str = "", inversion: str = "paper") -> None:
    """Test and train accuracy against N (log axis): median line, min-max band, one curve per
    model; a model without a hidden layer is a horizontal line over the whole axis.  A third
    panel below repeats the test accuracy from N = :data:`ZOOM_FROM` on, its accuracy axis
    fitted to what is drawn there (at most :data:`ZOOM_WINDOW` below the top), when the rows
    hold at least two sizes there; the legend is beside it.

    ``inversion = "class"``: the test panels show the accuracy with the readout's inversion
    decided from the training labels (``test_class_inversion``; runs without it are left out)
    instead of the papers' rule; the train panel keeps the papers' rule."""
    if inversion not in INVERSION_RULES:
        raise ValueError(f"inversion must be 'paper' or 'class', got {inversion!r}")
    test_key = "test" if inversion == "paper" else "test_class_inversion"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sized = [r for r in rows if r["N"] is not None and r["test"]]
    rows = [{**r, "test": r.get(test_key)} for r in rows]
    ns = sorted({r["N"] for r in sized}) or [1, 10]
    zoomed = [n for n in ns if n >= ZOOM_FROM]
    panels: list[tuple[str, list[int]]] = [("test", ns), ("train", ns)]
    if len(zoomed) >= 2:
        panels.append(("test", zoomed))
    if len(panels) == 3:
        fig, grid = plt.subplots(2, 2, figsize=(14, 9.2))
        axes, legend_axis = [grid[0][0], grid[0][1], grid[1][0]], grid[1][1]
        legend_axis.axis("off")
    else:
        fig, grid = plt.subplots(1, 2, figsize=(14, 4.8))
        axes, legend_axis = list(grid), None
    models = list(dict.fromkeys(r["model"] for r in rows if r["test"]))
    colours = plt.get_cmap("tab10")
    styles = ("-", "-.", ":")
    for panel, (part, sizes) in zip(axes, panels):
        lo, hi = min(sizes), max(sizes)
        drawn: list[float] = []
        for i, model in enumerate(models):
            mine = sorted(
                (r for r in rows if r["model"] == model and r[part] and (r["N"] is None or r["N"] >= lo)),
                key=lambda r: r["N"] or 0,
            )
            if not mine:
                continue
            colour = colours(i % 10)
            if mine[0]["N"] is None:
                x = [lo, hi]
                med = [mine[0][part]["median"]] * 2
                low = [mine[0][part]["min"]] * 2
                high = [mine[0][part]["max"]] * 2
                style = "--"
            else:
                x = [r["N"] for r in mine]
                med = [r[part]["median"] for r in mine]
                low = [r[part]["min"] for r in mine]
                high = [r[part]["max"] for r in mine]
                style = styles[(i // 10) % len(styles)]
            drawn += low + high
            panel.plot(
                x,
                [100 * v for v in med],
                style,
                marker=None if style == "--" else "o",
                ms=3,
                color=colour,
                label=MODELS[model][0],
            )
            panel.fill_between(x, [100 * v for v in low], [100 * v for v in high], color=colour, alpha=0.2)
        panel.set_xscale("log")
        panel.set_xticks(sizes, [str(n) for n in sizes])
        panel.minorticks_off()
        panel.set_xlabel("hidden neurons N")
        rule = INVERSION_RULES[inversion if part == "test" else "paper"]
        if sizes is ns:
            panel.set_title(f"{part} accuracy ({rule})")
            panel.set_ylim(-3, 103)
        else:
            panel.set_title(f"{part} accuracy from N = {lo} on ({rule})")
            top = 100 * max(drawn)
            bottom = max(100 * min(drawn), top - 100 * ZOOM_WINDOW)
            margin = 0.5 + 0.03 * (top - bottom)
            panel.set_ylim(bottom - margin, min(100.5, top + margin))
        panel.grid(True, which="both", alpha=0.3)
    for panel in axes[::2]:
        panel.set_ylabel("accuracy (%), median and min-max over seeds")
    if legend_axis is not None:
        legend_axis.legend(*axes[0].get_legend_handles_labels(), fontsize=9, loc="center left")
    else:
        axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


CLAIM_TOLERANCE = 0.01
"""Accuracy difference (a fraction: 0.01 = one point) within which two curves "match"."""
CLAIM_MIN_N = 10
"""The smallest N the comparisons between models look at: below it a few hidden bits decide and
the readout's inversion rule scatters every model by many points (README)."""
TRIVARIATE = ("setup1", "setup2", "setup3")
BASELINES = ("random", "context-heuristic", "context-optimised", "lateral-heuristic", "lateral-optimised")


def claims(
    rows: Sequence[dict], tolerance: float = CLAIM_TOLERANCE, min_n: int = CLAIM_MIN_N
) -> list[dict[str, Any]]:
    """The text's claims about the figure (Schneider et al. 2025, beside Fig. 2.B and Fig. 4), each
    checked on the rows' median test accuracies (fractions) and, for the convergence claim, the
    median self-cosine distance of the hidden weights in the last epoch.

    One dict per claim: ``claim`` (a short id), ``text``, ``holds`` (True / False, or None while
    a size it needs is not in the rows: then ``missing`` lists the ``model@N`` it waits for; a
    claim that the rows there already contradict, which no further row can mend, is False at
    once, e.g. a gap to backprop of more than the tolerance at one N),
    ``evidence`` (the medians it was decided on, per N) and ``detail`` (one line).  Sizes are
    those of the paper (``PAPER_SIZES``)."""
    test = {(r["model"], r["N"]): r["test"]["median"] for r in rows if r.get("test") and r["N"]}
    change = {
        (r["model"], r["N"]): r["weight_change_median"]
        for r in rows
        if r["N"] and r.get("weight_change_median") is not None
    }

    def need(table: dict, models: Sequence[str], sizes: Sequence[int]) -> list[str]:
        return [f"{m}@{n}" for n in sizes for m in models if (m, n) not in table]

    def curve(table: dict, model: str, sizes: Sequence[int]) -> dict[int, float]:
        return {n: table[model, n] for n in sizes if (model, n) in table}

    def gaps(model: str, other: str, sizes: Sequence[int]) -> dict[int, dict[str, float]]:
        """``model`` minus ``other`` at every size both have, with both medians."""
        both = [n for n in sizes if (model, n) in test and (other, n) in test]
        return {
            n: {model: test[model, n], other: test[other, n], "difference": test[model, n] - test[other, n]}
            for n in both
        }

    def claim(
        name: str,
        text: str,
        missing: list[str],
        holds: bool,
        evidence: Any,
        detail: str,
        refuted: bool = False,
    ) -> dict:
        return {
            "claim": name,
            "text": text,
            "holds": False if refuted else None if missing else holds,
            "missing": missing,
            "evidence": evidence,
            "detail": detail,
        }

    out = []
    small = [n for n in PAPER_SIZES if min_n <= n <= 100]
    matched = gaps("setup1", "backprop", small)
    diffs = {n: g["difference"] for n, g in matched.items()}
    apart = any(abs(d) > tolerance for d in diffs.values())
    worst = max(diffs, key=lambda n: abs(diffs[n]), default=None)
    out.append(
        claim(
            "setup1-matches-backprop",
            f"setup 1 matches backprop up to N = 100 (N >= {min_n})",
            need(test, ("setup1", "backprop"), small),
            not apart,
            matched,
            ""
            if worst is None
            else f"largest |setup 1 - backprop| {100 * abs(diffs[worst]):.2f} points at N = {worst} "
            f"(tolerance {100 * tolerance:g})",
            refuted=apart,
        )
    )
    large = [n for n in PAPER_SIZES if n >= 100]
    s1 = curve(test, "setup1", large)
    peak = max(s1, key=lambda n: s1[n], default=None)
    beyond = [n for n in (1000, 2000) if n in s1]
    out.append(
        claim(
            "setup1-peaks-at-500",
            "setup 1 peaks at N = 500 and declines beyond",
            need(test, ("setup1",), large),
            peak == 500 and all(s1[n] < s1[500] for n in beyond),
            s1,
            "" if peak is None else f"peak at N = {peak} ({100 * s1[peak]:.2f} %)",
            refuted=500 in s1 and any(s1[n] >= s1[500] for n in s1 if n != 500),
        )
    )
    s2 = curve(test, "setup2", large)
    steps = list(zip(sorted(s2), sorted(s2)[1:]))
    falls = [(a, b) for a, b in steps if s2[b] < s2[a] - tolerance]
    top = max(s2, key=lambda n: s2[n], default=None)
    out.append(
        claim(
            "setup2-rises-to-2000",
            "setup 2 keeps rising up to N = 2000 (97.5 %)",
            need(test, ("setup2",), large),
            not falls and top == max(s2, default=None),
            s2,
            ""
            if top is None
            else f"highest at N = {top} ({100 * s2[top]:.2f} %)"
            + "".join(f"; falls {100 * (s2[a] - s2[b]):.2f} points from N = {a} to {b}" for a, b in falls),
            refuted=bool(falls),
        )
    )
    big = [n for n in PAPER_SIZES if n >= 500]
    close = gaps("setup3", "setup2", big)
    d3 = {n: g["difference"] for n, g in close.items()}
    far = any(abs(d) > tolerance for d in d3.values())
    out.append(
        claim(
            "setup3-close-to-setup2",
            "setup 3 is close to setup 2 for large N (N >= 500)",
            need(test, ("setup2", "setup3"), big),
            not far,
            close,
            "; ".join(f"N = {n}: {100 * d:+.2f} points" for n, d in d3.items()),
            refuted=far,
        )
    )
    sizes = [n for n in PAPER_SIZES if n >= min_n]
    margins: dict[int, dict[str, Any]] = {}
    for n in sizes:
        rivals = {m: test[m, n] for m in BASELINES if (m, n) in test}
        mine = {m: test[m, n] for m in TRIVARIATE if (m, n) in test}
        if rivals and mine:
            best = max(rivals, key=lambda m: rivals[m])
            weakest = min(mine, key=lambda m: mine[m])
            margins[n] = {"weakest": weakest, "best_baseline": best, "margin": mine[weakest] - rivals[best]}
    lost = [n for n, m in margins.items() if m["margin"] <= 0]
    out.append(
        claim(
            "trivariate-beats-baselines",
            f"every trivariate setup beats the random baseline and the bivariate networks (N >= {min_n})",
            need(test, TRIVARIATE + BASELINES, sizes),
            not lost,
            margins,
            "; ".join(
                f"N = {n}: {m['best_baseline']} {100 * -m['margin']:.2f} points above {m['weakest']}"
                for n, m in margins.items()
                if n in lost
            )
            or (
                f"smallest margin {100 * min(m['margin'] for m in margins.values()):.2f} points"
                if margins
                else ""
            ),
            refuted=bool(lost),
        )
    )
    c1 = curve(change, "setup1", large)
    later = [n for n in (1000, 2000) if n in c1]
    out.append(
        claim(
            "setup1-converges-less-beyond-500",
            "setup 1's weights still change more in the last epoch beyond N = 500 (lack of convergence)",
            need(change, ("setup1",), [500, 1000, 2000]),
            500 in c1 and all(c1[n] > c1[500] for n in later),
            c1,
            "; ".join(f"N = {n}: {v:.2e}" for n, v in c1.items()),
            refuted=500 in c1 and any(c1[n] <= c1[500] for n in later),
        )
    )
    return out


def convergence_figure(
    out: Path,
    dataset: str,
    models: Sequence[str],
    sizes: Sequence[int],
    seeds: Sequence[int],
    path: Path,
    ledger: dict[str, dict] | None = None,
    epochs: int = 0,
    finished_only: bool = False,
) -> dict[tuple[str, int], list[float]]:
    """Appendix Fig. 4: the median self-cosine distance of the hidden neurons' feedforward weights
    between consecutive epochs (``hidden_weight_change`` of ``metrics.jsonl``, or the ledger's
    ``weight_change_curve`` of a run without its directory) over training, one panel per model
    (at most four in a row), one line per N (median over the seeds, as far as the shortest run
    goes; with ``finished_only`` only the runs that finished ``epochs``).  Returns the curves
    drawn, ``(model, N) -> median per epoch``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infomorphic.runs import read_jsonl

    models = [
        m for m in models if MODELS[m][2] and MODELS[m][1]["network"] not in ("backprop", "random-hidden")
    ]
    cols = min(4, max(1, len(models)))
    rows = max(1, -(-len(models) // cols))
    fig, grid = plt.subplots(rows, cols, figsize=(5 * cols, 4 * rows), squeeze=False)
    panels = [ax for row in grid for ax in row]
    for ax in panels[len(models) :]:
        ax.axis("off")
    cmap = plt.get_cmap("viridis")
    drawn: dict[tuple[str, int], list[float]] = {}
    for ax, model in zip(panels, models):
        for i, n in enumerate(sizes):
            curves = []
            for s in seeds:
                name = run_name(dataset, model, n, s)
                if finished_only and not finished(seed_result(out / name, epochs, ledger or {}), epochs):
                    continue
                kept = (ledger or {}).get(name, {}).get("weight_change_curve")
                metrics_path = out / name / "metrics.jsonl"
                if metrics_path.exists():
                    changes = [m.get("hidden_weight_change") for m in read_jsonl(metrics_path)]
                elif kept:
                    changes = kept
                else:
                    continue
                curves.append([float("nan") if c is None else float(c) for c in changes])
            if not curves:
                continue
            length = min(len(c) for c in curves)
            med = [statistics.median(c[e] for c in curves) for e in range(length)]
            drawn[model, n] = med
            ax.plot(range(1, length + 1), med, color=cmap(i / max(1, len(sizes) - 1)), label=f"N = {n}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("median self-cosine distance")
        ax.set_title(MODELS[model][0], fontsize=9)
        if ax.get_lines():
            ax.legend(fontsize=7)
        else:  # every run of this model still training (--finished-only)
            ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(DEFAULT_MODELS))
    from infomorphic.data.locate import DATASET_NAMES

    parser.add_argument("--sizes", nargs="+", type=at_least(1), default=list(PAPER_SIZES))
    parser.add_argument("--seeds", nargs="+", type=at_least(0), default=[0, 1, 2])
    parser.add_argument("--dataset", choices=DATASET_NAMES, default="mnist")
    parser.add_argument("--epochs", type=at_least(1), default=100)
    parser.add_argument("--threads", type=at_least(1), default=1, help="torch threads per run")
    parser.add_argument("--workers", type=at_least(1), default=1, help="runs at once")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every new run (repeatable; use a fresh --out)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "size-sweep")
    parser.add_argument("--csv", type=Path, help="CSV of the rows (default <out>/size_sweep.csv)")
    add_ledger_option(parser)
    parser.add_argument("--summarise", action="store_true", help="only summarise the runs that exist")
    parser.add_argument("--figure", type=Path, metavar="PNG", help="draw test and train accuracy against N")
    parser.add_argument(
        "--figure-inversion",
        choices=("paper", "class"),
        default="paper",
        help="test accuracy in --figure: the papers' inversion rule (default) or the readout's "
        "inversion decided from the training labels (class)",
    )
    parser.add_argument(
        "--convergence-figure", type=Path, metavar="PNG", help="draw the self-cosine distance per epoch"
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="only print the rows that exist as Markdown tables (test, then train accuracy)",
    )
    parser.add_argument(
        "--claims",
        action="store_true",
        help="check the paper's claims about the figure on the rows of finished runs (one JSON line each)",
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="rows, CSV, figure and tables from the runs that finished --epochs only (not those still training)",
    )
    args = parser.parse_args(argv)
    check_out(parser, args.out)
    ledger = open_ledger(parser, args.ledger)
    grid = [(m, n) for m in args.models for n in sizes_of(m, sorted(set(args.sizes)))]

    def summarise(ledger: dict[str, dict], finished_only: bool = args.finished_only) -> list[dict]:
        return [
            summarise_row(args.out, args.dataset, m, n, args.seeds, args.epochs, ledger, finished_only)
            for m, n in grid
        ]

    if args.markdown:
        rows = summarise(ledger)
        if not any(r["runs"] for r in rows):
            where = f"{args.out}" + (f" or in the ledger {args.ledger}" if args.ledger else "")
            print(
                f"no runs of these models, sizes and seeds in {where}: nothing to tabulate", file=sys.stderr
            )
            return rows
        for part, name in (("test", "Test"), ("train", "Train")):
            print(f"{name} accuracy (%), median (min-max) over seeds {' '.join(map(str, args.seeds))}:\n")
            print(markdown_table(rows, part, len(args.seeds)) + "\n")
        return rows
    failed = 0
    if not args.summarise:
        args.out.mkdir(parents=True, exist_ok=True)
        # small layers first: the cheap part of the figure is there early
        unique = {run_name(args.dataset, m, n, s): (m, n, s) for m, n in grid for s in args.seeds}
        jobs = sorted(unique.values(), key=lambda j: (j[1] or 0, j[0], j[2]))

        def job(j: tuple[str, int | None, int]) -> str:
            kw = {"epochs": args.epochs, "threads": args.threads, "sets": args.sets, "ledger": ledger}
            status = run_one(args.out, args.dataset, *j, **kw)
            name = run_name(args.dataset, *j)
            record = ledger_record(args.out / name) if status == "trained" and args.ledger else None
            if record is not None:  # at once: a sweep killed later loses nothing it finished
                record_runs(args.ledger, {name: record})
            return status

        with ThreadPoolExecutor(args.workers) as pool:
            statuses = list(pool.map(job, jobs))
        failed = report_statuses(statuses)
    if args.ledger is not None:
        names = {run_name(args.dataset, m, n, s) for m, n in grid for s in args.seeds}
        records = {name: ledger_record(args.out / name) for name in sorted(names)}
        found = {name: record for name, record in records.items() if record is not None}
        written = record_runs(args.ledger, found)
        print(json.dumps({"ledger": str(args.ledger), "runs_recorded": written}), flush=True)
        ledger = read_ledger(args.ledger)
    rows = summarise(ledger)
    for row in rows:
        print(json.dumps(row), flush=True)
    csv_path = args.csv or args.out / "size_sweep.csv"
    write_csv(csv_path, rows)
    drawable = any(r["test"] for r in rows)
    if (args.figure is not None or args.convergence_figure is not None) and not drawable:
        where = f"{args.out}" + (f" or in the ledger {args.ledger}" if args.ledger else "")
        finished = " finished" if args.finished_only else ""
        print(
            f"no{finished} runs of these models, sizes and seeds in {where}: no figure drawn", file=sys.stderr
        )
    elif args.figure is not None:
        figure(
            rows,
            args.figure,
            f"{args.dataset}, {args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}",
            args.figure_inversion,
        )
    if args.convergence_figure is not None and drawable:
        convergence_figure(
            args.out,
            args.dataset,
            args.models,
            sorted(set(args.sizes)),
            args.seeds,
            args.convergence_figure,
            ledger,
            args.epochs,
            args.finished_only,
        )
    # a claim is decided on final accuracies only: a run still training is not yet evidence
    checked = claims(rows if args.finished_only else summarise(ledger, True)) if args.claims else []
    for item in checked:
        print(json.dumps(item), flush=True)
    final = {"experiment": "size_sweep", "csv": str(csv_path), "rows": rows}
    print(json.dumps({**final, "claims": checked} if args.claims else final), flush=True)
    if failed:
        raise SystemExit(1)
    return rows


if __name__ == "__main__":
    main()
