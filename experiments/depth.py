"""Does depth help?  Stacked infomorphic networks against one hidden layer, each with its backprop twin.

    python experiments/depth.py --datasets mnist --widths 100 --depths 1 2 --seeds 0 1 2
    python experiments/depth.py --datasets fashion-mnist --widths 100 --depths 1 2 3 \
        --variants stacked feedback-c feedback-b --epochs 100 --workers 2
    python experiments/depth.py ... --summarise          # only read the finished / running runs
    python experiments/depth.py ... --markdown           # the same rows as a Markdown table
    python experiments/depth.py --atoms-figure depth-atoms.png RUN_DIR [RUN_DIR ...]
    python experiments/depth.py --analyse RUN_DIR [RUN_DIR ...]   # label selectivity per layer, feedback ablated
    python experiments/depth.py --tuning-figure tuning.png RUN_DIR [RUN_DIR ...]
    python experiments/depth.py --fields-figure fields.png RUN_DIR [RUN_DIR ...]  # fields per layer
    python experiments/depth.py ... --summarise --save-rows rows.jsonl   # keep the finished rows
    python experiments/depth.py --save-rows rows.jsonl --rows-figure depth.png  # accuracy vs depth
    python experiments/depth.py ... --ledger runs.jsonl    # finished runs kept beyond their directories

Rows (``infomorphic.nn.wiring.stacked``): ``depth`` hidden layers of ``width`` trivariate
neurons, F = the layer below, L = the layer's own previous output (dense for width 100,
100 random partners above), and the context

- ``stacked``: the label at every layer;
- ``feedback-c``: C = the previous output of the layer above (the readout's for the top
  layer), no label;
- ``feedback-b``: C = the label and a fourth class B = the layer above (four-source neurons
  with the published goal embedded, B atoms at 0);
- ``feedback-b-marginal``: the same wiring, the published goal embedded with
  ``Goal.embed(..., mode="marginal")``: the trivariate goal of (F, C, L) whatever B carries;
- ``label-first``: the label as C of h1 only; every layer above it takes as C the previous
  output of the layer above it (the readout's for the top layer), so that no upper layer is
  rewarded for redundancy with the label;
- ``skip``: as ``stacked``, and the readout reads every hidden layer side by side
  (F = ``h1+h2+...``, a skip connection), so it has h1's features as well as the label copies
  of the layers above;
- ``dense``: as ``skip``, and every hidden layer reads the data and all hidden layers below it
  side by side (F = ``input+h1+...``), so an upper layer is not limited to the spikes of the
  layer under it.

Depth 1 ``stacked`` is setup 1 (width 100) or setup 2 (width 500). Every run trains the
backprop network of the same wiring in the same harness. Runs live in
``<out>/<dataset>-w<width>-d<depth>-<variant>-seed<s>`` and are resumed when they exist, so the
script can be stopped and started again; several invocations may share ``--out`` (a run that
another process trains is left to it; a failed run makes the script exit with status 1). One
JSON line per row (median, min and max over seeds of the final test accuracy, infomorphic and
backprop; each layer's mean goal at the end), then one line with all rows; ``--markdown``
prints the rows as a Markdown table instead (only the runs that reached ``--epochs``; a run still
training is named beside its row).  New runs evaluate every ``--eval-every`` (10) epochs and
the last: the rows read only the last, which is the same whatever ``eval_every``.  ``--ledger
FILE`` records each finished run's final figures (with the date and the CPU) as soon as it
finishes, and counts a run recorded there as done when its directory is gone.
Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_run import (  # noqa: E402 - the experiments' shared launcher
    add_ledger_option,
    at_least,
    check_out,
    open_ledger,
    read_ledger,
    record_runs,
    recorded,
    report_statuses,
    run_figures,
    train_from_config,
)

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("stacked", "feedback-c", "feedback-b", "feedback-b-marginal", "label-first", "skip", "dense")


def wiring(depth: int, width: int, variant: str) -> dict:
    from infomorphic.goals import Goal
    from infomorphic.nn.wiring import stacked

    partners = None if width <= 100 else 100
    feedback = {
        "stacked": None,
        "feedback-c": "C",
        "feedback-b": "B",
        "feedback-b-marginal": "B",
        "label-first": None,
        "skip": None,
        "dense": None,
    }[variant]
    feedback_goal = None
    if variant == "feedback-b-marginal":
        feedback_goal = Goal.resolve("trivariate-mnist-tpe", "FCL").embed("FCLB", mode="marginal")
    spec = stacked(
        [width] * depth,
        lateral_partners=partners,
        feedback=feedback,
        label=variant != "feedback-c",
        feedback_goal=feedback_goal,
        skip=variant == "skip",
        dense=variant == "dense",
    )
    network = spec.to_dict()
    if variant == "label-first":  # the label at h1 only; above it C = the previous output of the layer above
        hidden = [layer for layer in network["layers"] if layer["name"] != network["readout"]]
        for below, above in zip(hidden[1:], [*hidden[2:], {"name": network["readout"]}]):
            below["inputs"]["C"] = f"previous:{above['name']}"
    return network


def config_text(train: dict, network: dict) -> str:
    """The TOML config of a row: its ``[train]`` settings and its ``[network]`` wiring."""
    import tomli_w

    return tomli_w.dumps({"train": train, "network": network})


def write_config(path: Path, train: dict, network: dict) -> None:
    from infomorphic.runs import atomic_write

    text = config_text(train, network)
    atomic_write(path, lambda fh: fh.write(text))  # a second invocation may write it at the same moment


def run_one(
    out: Path,
    dataset: str,
    width: int,
    depth: int,
    variant: str,
    seed: int,
    epochs: int,
    threads: int,
    eval_every: int = 1,
    atoms_every: int = 1,
) -> str:
    """Train (or continue) one run (a new one evaluating every ``eval_every`` epochs and the
    last, recording atoms on every ``atoms_every``-th batch; the final figures do not depend on
    either); ``"trained"``, ``"busy"`` (another process, e.g. a second invocation on the same
    ``out``, trains it now) or ``"failed"``."""
    name = run_name(dataset, width, depth, variant, seed)
    run_dir = out / name
    train = {
        "dataset": dataset,
        "epochs": epochs,
        "seed": seed,
        "threads": threads,
        "eval_every": eval_every,
        "atoms_every": atoms_every,
        "baselines": ["backprop"],
    }
    text = config_text(train, wiring(depth, width, variant))
    return train_from_config(run_dir, lambda: text, resume=("--epochs", str(epochs)))


def run_result(run_dir: Path) -> dict | None:
    """The final figures of one run directory, or None when it holds no finished epoch:
    ``epochs``, ``finished`` (its ``summary.json`` is there: training and the backprop twin
    done), ``test_acc``, ``backprop_test_acc`` (None while the twin trains), each layer's final
    mean goal (``goals``) and mean atoms (``atoms_mean``, bits)."""
    from infomorphic.runs import read_json, read_jsonl

    metrics = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").exists() else []
    if not metrics:
        return None
    last = metrics[-1]
    evaluated = [m for m in metrics if m.get("test_acc") is not None] or [last]  # eval_every
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else None
    base = read_json(run_dir / "baselines.json") if (run_dir / "baselines.json").exists() else {}
    return {
        "epochs": last["epoch"],
        "finished": summary is not None and summary.get("epochs") == last["epoch"],
        "test_acc": evaluated[-1]["test_acc"],
        "backprop_test_acc": base.get("backprop", {}).get("test_acc"),
        "goals": {k: v for k, v in last.items() if k.endswith("_goal")},
        "atoms_mean": {k[: -len("_atoms_mean")]: v for k, v in last.items() if k.endswith("_atoms_mean")},
    }


def run_name(dataset: str, width: int, depth: int, variant: str, seed: int) -> str:
    return f"{dataset}-w{width}-d{depth}-{variant}-seed{seed}"


def seed_results(
    out: Path, row: tuple[str, int, int, str], seeds: list[int], epochs: int, ledger: dict[str, dict]
) -> list[dict | None]:
    """Every seed's figures: its run directory when that run finished ``epochs``, else the
    ledger's record when it has them (the directory may be gone), else whatever the directory
    holds (a run still training), else None."""
    names = [run_name(*row, s) for s in seeds]
    return [run_figures(run_result(out / name), ledger, name, epochs) for name in names]


def summarise_row(results: Sequence[dict | None]) -> dict:
    """Median, min and max over the seeds' final test accuracies (infomorphic and backprop
    twin), each layer's mean goal and its five largest mean atoms (bits)."""
    found = [r for r in results if r is not None]
    inf = [r["test_acc"] for r in found if r["test_acc"] is not None]
    bp = [r["backprop_test_acc"] for r in found if r.get("backprop_test_acc") is not None]
    goals: dict[str, list[float]] = {}
    atoms: dict[str, dict[str, list[float]]] = {}
    for r in found:
        for key, value in r["goals"].items():
            goals.setdefault(key, []).append(value)
        for layer, per in r["atoms_mean"].items():
            for atom, bits in per.items():
                atoms.setdefault(layer, {}).setdefault(atom, []).append(bits)

    def stats(values: list[float]) -> dict | None:
        if not values:
            return None
        return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}

    largest = {
        layer: dict(
            sorted(((a, statistics.fmean(v)) for a, v in per.items()), key=lambda item: -abs(item[1]))[:5]
        )
        for layer, per in atoms.items()
    }
    return {
        "epochs": [r["epochs"] for r in found],
        "infomorphic_test": stats(inf),
        "backprop_test": stats(bp),
        "final_goals_mean_bits": {k: statistics.fmean(v) for k, v in goals.items()},
        "final_largest_atoms_bits": largest,
    }


def ledger_records(out: Path, rows: list[tuple[str, int, int, str]], seeds: list[int]) -> dict[str, dict]:
    """The ledger records of every finished run directory of these rows."""
    records = {}
    for row in rows:
        for s in seeds:
            result = run_result(out / run_name(*row, s))
            if result is not None and result["finished"]:
                records[run_name(*row, s)] = {**dict(zip(ROW_KEYS, row)), "seed": s, **result}
    return records


DISPLAY_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
ROW_KEYS = ("dataset", "width", "depth", "variant")


def save_rows(path: Path, rows: list[dict], seeds: list[int], epochs: int) -> int:
    """Merge the finished rows (every seed trained to ``epochs``) into the JSON-lines file
    ``path``, one record per (dataset, width, depth, variant), replacing an earlier record of the
    same row: the rows outlive the run directories.  Returns how many rows were written."""
    from infomorphic.runs import atomic_write, read_jsonl

    records = {tuple(r[k] for k in ROW_KEYS): r for r in (read_jsonl(path) if path.exists() else [])}
    saved = 0
    for row in rows:
        if len(row["epochs"]) != len(seeds) or any(e < epochs for e in row["epochs"]):
            continue
        key = tuple(row[k] for k in ROW_KEYS)
        records[key] = {
            **{k: row[k] for k in ROW_KEYS},
            "seeds": list(seeds),
            "epochs": epochs,
            "infomorphic_test": row["infomorphic_test"],
            "backprop_test": row["backprop_test"],
        }
        saved += 1
    text = "".join(json.dumps(records[k]) + "\n" for k in sorted(records, key=str))
    atomic_write(path, lambda fh: fh.write(text))
    return saved


VARIANT_STYLE = {
    "stacked": ("tab:blue", "o"),
    "feedback-b": ("tab:orange", "s"),
    "feedback-b-marginal": ("tab:green", "D"),
    "feedback-c": ("tab:red", "v"),
    "label-first": ("tab:purple", "^"),
    "skip": ("tab:brown", "P"),
    "dense": ("tab:olive", "X"),
}


def rows_figure(records: list[dict], path: Path, min_seeds: int = 3) -> None:
    """Test accuracy against depth, one panel per (dataset, width): the median over seeds with a
    min-max bar for every variant (depth 1 is the one-layer network, shared by all), the
    backprop twin of the stacked rows dashed.  Rows with fewer than ``min_seeds`` seeds are left
    out; a value far below the panel's range (no label: feedback-c) is marked at its bottom edge
    with its median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in records if len(r["seeds"]) >= min_seeds and r["infomorphic_test"]]
    panels = sorted(
        {(r["dataset"], r["width"]) for r in records}, key=lambda p: (p[0] != "mnist", p[0], p[1])
    )
    if not panels:
        raise ValueError(f"no row with {min_seeds} seeds to draw")
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (dataset, width) in zip(axes[0], panels):
        mine = [r for r in records if r["dataset"] == dataset and r["width"] == width]
        one = next((r for r in mine if r["depth"] == 1 and r["variant"] == "stacked"), None)
        stacked = sorted((r for r in mine if r["variant"] == "stacked"), key=lambda r: r["depth"])
        twin = [(r["depth"], 100 * r["backprop_test"]["median"]) for r in stacked if r["backprop_test"]]
        close = [100 * r["infomorphic_test"]["min"] for r in mine if r["variant"] != "feedback-c"]
        low = min(close) - 1.0 if close else None
        high = max([100 * r["infomorphic_test"]["max"] for r in mine] + [v for _, v in twin]) + 0.3
        for k, (v, (color, marker)) in enumerate(VARIANT_STYLE.items()):
            if v == "stacked":
                rows = stacked
            else:
                rows = sorted(
                    (r for r in mine if r["variant"] == v and r["depth"] > 1), key=lambda r: r["depth"]
                )
            if not rows:
                continue
            x = [r["depth"] + (0 if r["depth"] == 1 else 0.04 * k) for r in rows]
            med = [100 * r["infomorphic_test"]["median"] for r in rows]
            lo = [100 * r["infomorphic_test"]["min"] for r in rows]
            hi = [100 * r["infomorphic_test"]["max"] for r in rows]
            off = [low is not None and m < low for m in med]  # far below: marked at the edge
            shown = [(low or 0.0) + 0.15 if o else m for o, m in zip(off, med)]
            below = [0.0 if o else m - max(a, low if low is not None else a) for o, m, a in zip(off, med, lo)]
            above = [0.0 if o else b - m for o, m, b in zip(off, med, hi)]
            start = v != "stacked" and one is not None  # the line starts at the one-layer network
            line_x = [1, *x] if start else x
            line_y = [100 * one["infomorphic_test"]["median"], *shown] if start and one else shown
            ax.plot(line_x, line_y, color=color, lw=1, alpha=0.7)
            ax.errorbar(x, shown, yerr=[below, above], fmt=marker, color=color, ms=5, capsize=2, label=v)
            for xi, m, s, o in zip(x, med, shown, off):
                if o:
                    ax.annotate(
                        f"{m:.1f}%",
                        (xi, s),
                        textcoords="offset points",
                        xytext=(4, 2),
                        fontsize=7,
                        color=color,
                    )
        if twin:
            ax.plot(*zip(*twin), ls="--", color="grey", lw=1, label="backprop twin (stacked)")
        if low is not None:
            ax.set_ylim(low, high)
        ax.set_xticks([1, 2, 3])
        ax.set_xlabel("hidden layers")
        ax.set_title(f"{DISPLAY_NAMES.get(dataset, dataset)}, width {width}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    labelled: dict[str, Any] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labelled.setdefault(label, handle)
    fig.legend(labelled.values(), labelled.keys(), loc="lower center", ncol=len(labelled), fontsize=8)
    fig.suptitle(
        f"Does depth help? Test accuracy, median and min-max over the seeds (at least {min_seeds}), "
        "100 epochs; depth 1 = one hidden layer",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def markdown_table(
    out: Path,
    rows: list[tuple[str, int, int, str]],
    seeds: list[int],
    epochs: int,
    ledger: dict[str, dict] | None = None,
) -> str:
    """The rows as a Markdown table: median (min-max) test accuracy in % over the seeds whose
    run reached ``epochs`` (in its directory or in the ``ledger``), for the infomorphic network
    and its backprop twin (with the number of seeds where a twin is still training); rows
    without any run are left out."""

    def cell(stats: dict | None, n: int) -> str:
        if stats is None:
            return ""
        text = f"{100 * stats['median']:.2f}%"
        if stats["n"] > 1:
            text += f" ({100 * stats['min']:.2f}-{100 * stats['max']:.2f})"
        return text + (f" ({stats['n']} of {n} seeds)" if stats["n"] != n else "")

    lines = [
        "| dataset | network | seeds | infomorphic test, median (min-max) | backprop twin, median (min-max) |",
        "|---|---|---|---|---|",
    ]
    for d, w, depth, v in rows:
        done, running, finished = [], [], []
        for s, result in zip(seeds, seed_results(out, (d, w, depth, v), seeds, epochs, ledger or {})):
            if result is not None and result["epochs"] >= epochs:
                done.append(s)
                finished.append(result)
            elif result is not None:
                running.append(f"seed {s} at epoch {result['epochs']}")
        if not done and not running:
            continue
        row = summarise_row(finished)
        seed_text = " ".join(
            filter(None, [", ".join(map(str, done)), f"({'; '.join(running)})" if running else ""])
        )
        name = f"width {w}, depth {depth}, {v}"
        lines.append(
            f"| {DISPLAY_NAMES.get(d, d)} | {name} | {seed_text} | {cell(row['infomorphic_test'], len(done))} "
            f"| {cell(row['backprop_test'], len(done))} |"
        )
    return "\n".join(lines)


def feedback_classes(net: object) -> list[tuple[str, str]]:
    """``(layer, letter)`` of every input class that comes from a higher layer's previous output
    (feedback; a layer's own previous output is lateral, not feedback)."""
    spec = net.spec  # type: ignore[attr-defined]
    order = spec.order()
    return [
        (layer.name, letter)
        for layer in spec.layers
        for letter, src in layer.inputs.items()
        if src.kind == "previous" and order.index(src.layer) > order.index(layer.name)
    ]


def class_means(theta: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean of ``theta`` ``(B, N)`` over the samples of each class: ``(n_classes, N)`` in float64
    (0 for a class without samples)."""
    import torch

    t = theta.double()
    counts = torch.bincount(y, minlength=n_classes).double()
    sums = torch.zeros(n_classes, t.shape[1], dtype=torch.float64).index_add_(0, y, t)
    return sums / counts.clamp_min(1)[:, None]


def class_selectivity(theta: torch.Tensor, y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per neuron, the share of the variance of ``theta`` ``(B, N)`` over the samples that the
    class ``y`` ``(B,)`` explains (eta squared: between-class over total sum of squares, in
    [0, 1]; 0 for a neuron that does not vary)."""
    import torch

    t = theta.double()
    counts = torch.bincount(y, minlength=n_classes).double()
    means = class_means(t, y, n_classes)
    between = (counts[:, None] * (means - t.mean(0)) ** 2).sum(0)
    total = ((t - t.mean(0)) ** 2).sum(0)
    varies = total > 1e-20  # theta lies in [0, 1]: below this a neuron is constant up to rounding
    return torch.where(varies, (between / total.clamp_min(1e-20)).clamp(0.0, 1.0), torch.zeros_like(total))


def analyse_run(run_dir: Path, batch: int = 1024, seed: int = 0, tuning: dict | None = None) -> dict:
    """What each layer of a trained row codes, and what its feedback contributes, on the test set.

    ``selectivity``: per layer, the median over neurons of the share of the variance of the
    neuron's firing probability that the class explains (eta squared, between 0 and 1: 1 = the
    neuron's firing depends only on the class, a label detector).  ``test_acc_without_feedback``:
    the test accuracy with every feedback class (``feedback_classes``) silenced (its weights and
    bias at 0, so its aggregate is 0: a four-source neuron then computes its trivariate
    activation).  ``joined``: for each joined input class (``--variants skip``: the readout's
    ``h1+h2``), each part's share of the absolute weight and the test accuracy without it
    (:func:`joined_parts`).  Evaluation as in training (context withheld, stochastic hidden
    units; the same sampling seed for every pass).  A ``tuning`` dict given receives each layer's class-mean
    firing probability ``(classes, N)``."""
    import torch

    from infomorphic.goalsearch.report import load_run
    from infomorphic.nn.network import predict

    run = load_run(run_dir)  # the trained network in evaluation mode and its data set
    net, splits = run.net, run.data
    x, y = splits.test.x, splits.test.y

    @torch.no_grad()
    def evaluate() -> tuple[float, dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(seed)
        thetas: dict[str, list[torch.Tensor]] = {}
        for lo in range(0, len(x), batch):
            out = net(x[lo : lo + batch], None, gen)
            for name, layer_out in out.outputs.items():
                thetas.setdefault(name, []).append(layer_out.theta)
        theta = {name: torch.cat(parts).double() for name, parts in thetas.items()}
        readout = net.spec.readout_name
        return float((predict(theta[readout]) == y).double().mean()), theta

    acc, theta = evaluate()
    if tuning is not None:  # each layer's class-mean firing probability (classes, N)
        tuning.update({name: class_means(t, y, splits.n_classes) for name, t in theta.items()})
    selectivity = {
        name: float(class_selectivity(t, y, splits.n_classes).median()) for name, t in theta.items()
    }
    result = {"run": str(run_dir), "test_acc": acc, "selectivity": selectivity}
    joined = joined_parts(net, evaluate)
    if joined:
        result["joined"] = joined
    feedback = feedback_classes(net)
    if feedback:
        layers = net.layers()
        with torch.no_grad():
            for name, letter in feedback:
                layers[name].weight[letter].zero_()
                if letter in layers[name].bias:
                    layers[name].bias[letter].zero_()
        result["feedback"] = [f"{name}.{letter}" for name, letter in feedback]
        result["test_acc_without_feedback"] = evaluate()[0]
    return result


def joined_parts(net: object, evaluate: object) -> dict[str, dict[str, dict[str, float]]]:
    """For every joined input class (``"h1+h2"``), what each part contributes: its share of the
    class's absolute weight, and the test accuracy with that part silenced (its weight columns
    at 0; restored after).  ``evaluate()`` returns ``(test accuracy, thetas)``."""
    import torch

    spec = net.spec  # type: ignore[attr-defined]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for ls in spec.layers:
        layer = net.layer(ls.name)  # type: ignore[attr-defined]
        for letter, src in ls.inputs.items():
            if src.kind != "concat" or letter not in layer.weight or layer.partners(letter) is not None:
                continue  # (a class stored as sparse partners has no weight columns to silence)
            weight = layer.weight[letter]
            magnitude = layer.effective_weight(letter).detach().abs()
            total = float(magnitude.sum())
            parts: dict[str, dict[str, float]] = {}
            start = 0
            for part in src.parts:
                size = spec.input_size(part, net.n_inputs, net.n_classes)  # type: ignore[attr-defined]
                block = slice(start, start + size)
                start += size
                share = float(magnitude[:, block].sum()) / total
                saved = weight.detach().clone()
                with torch.no_grad():
                    weight[:, block] = 0.0
                acc = evaluate()[0]  # type: ignore[operator]
                with torch.no_grad():
                    weight.copy_(saved)
                parts[part.source] = {"weight_share": share, "test_acc_without": acc}
            out[f"{ls.name}.{letter}"] = parts
    return out


def atoms_figure(runs: list[Path], path: Path, top: int = 6) -> None:
    """Each layer's mean atoms (bits) over the epochs of each run: one row of panels per run,
    one panel per layer, the ``top`` atoms largest in magnitude at the end of training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infomorphic.runs import read_jsonl

    series = []
    for run in runs:
        metrics = read_jsonl(run / "metrics.jsonl")
        if not metrics:
            raise SystemExit(f"error: {run} has no epochs in metrics.jsonl")
        layers = [k[: -len("_atoms_mean")] for k in metrics[-1] if k.endswith("_atoms_mean")]
        series.append((run.name, metrics, layers))
    cols = max(len(layers) for _, _, layers in series)
    fig, axes = plt.subplots(len(series), cols, figsize=(4.2 * cols, 3.0 * len(series)), squeeze=False)
    for row, (name, metrics, layers) in enumerate(series):
        epochs = [m["epoch"] for m in metrics]
        for col, layer in enumerate(layers):
            ax = axes[row][col]
            final = metrics[-1][f"{layer}_atoms_mean"]
            for atom in sorted(final, key=lambda a: -abs(final[a]))[:top]:
                ax.plot(
                    epochs, [m[f"{layer}_atoms_mean"].get(atom, float("nan")) for m in metrics], label=atom
                )
            ax.set_title(f"{name}: {layer}", fontsize=8)
            ax.set_xlabel("epoch")
            ax.set_ylabel("mean atom (bits)")
            ax.legend(fontsize=6)
        for col in range(len(layers), cols):
            axes[row][col].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tuning_figure(runs: list[Path], path: Path, count: int = 24) -> None:
    """Class-mean firing probability of ``count`` neurons per layer (rows: runs, panels: layers;
    neurons sorted by their preferred class), with each layer's label selectivity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for run in runs:
        tuning: dict = {}
        result = analyse_run(run, tuning=tuning)
        panels.append((run.name, tuning, result["selectivity"]))
    cols = max(len(t) for _, t, _ in panels)
    fig, axes = plt.subplots(
        len(panels), cols, figsize=(3.2 * cols + 1.0, 2.7 * len(panels)), squeeze=False, layout="constrained"
    )
    image = None
    for row, (name, tuning, selectivity) in enumerate(panels):
        for col, (layer, means) in enumerate(tuning.items()):
            m = means[:, :count]
            order = m.argmax(0).argsort(stable=True)
            ax = axes[row][col]
            image = ax.imshow(m[:, order].numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
            ax.set_title(f"{name}\n{layer}: label selectivity {selectivity[layer]:.2f}", fontsize=7)
            ax.set_xlabel("neuron (sorted by preferred class)", fontsize=7)
            ax.set_ylabel("class", fontsize=7)
            ax.set_yticks(range(m.shape[0]))
            ax.tick_params(labelsize=6)
        for col in range(len(tuning), cols):
            axes[row][col].axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="mean firing probability")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fields_figure(runs: list[Path], path: Path, count: int = 12) -> None:
    """Receptive fields of ``count`` neurons of every hidden layer (rows: runs x layers): a
    layer's feedforward weights mapped to the image through the layers below (the product of
    the weight matrices, a linear approximation above h1), each neuron titled with the class it
    fires for most; one symmetric colour scale per row (deeper products have other units)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infomorphic.goalsearch.report import _image_shape, input_field, load_run

    rows = []
    for run_dir in runs:
        tuning: dict = {}
        analyse_run(run_dir, tuning=tuning)
        run = load_run(run_dir)
        shape = _image_shape(run)
        for layer in tuning:
            if layer == run.net.spec.readout_name:
                continue
            field = input_field(run.net, layer)
            if field is not None:
                preferred = tuning[layer][:, :count].argmax(0).tolist()
                rows.append((f"{run_dir.name}\n{layer}", field[:count].numpy(), shape, preferred))
    if not rows:
        raise ValueError("no hidden layer whose feedforward path reaches the image")
    fig, axes = plt.subplots(len(rows), count, figsize=(0.9 * count + 1.2, 1.15 * len(rows)), squeeze=False)
    for r, (name, field, shape, preferred) in enumerate(rows):
        images = [f.reshape(shape[-2:]) if len(shape) == 2 else f.reshape(shape).mean(0) for f in field]
        lim = max(float(abs(im).max()) for im in images) or 1.0
        for k, ax in enumerate(axes[r]):
            ax.axis("off")
            if k < len(images):
                ax.imshow(images[k], cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
                ax.set_title(f"class {preferred[k]}", fontsize=6)
        axes[r][0].text(-0.15, 0.5, name, transform=axes[r][0].transAxes, ha="right", va="center", fontsize=6)
    fig.subplots_adjust(left=0.18, right=0.99, top=0.95, bottom=0.02, wspace=0.05, hspace=0.45)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    from infomorphic.data.locate import DATASET_NAMES

    parser.add_argument("--datasets", nargs="+", choices=DATASET_NAMES, default=["mnist"])
    parser.add_argument("--widths", nargs="+", type=at_least(1), default=[100])
    parser.add_argument("--depths", nargs="+", type=at_least(1), default=[1, 2])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["stacked"])
    parser.add_argument("--seeds", nargs="+", type=at_least(0), default=[0, 1, 2])
    parser.add_argument("--epochs", type=at_least(1), default=100)
    parser.add_argument("--threads", type=at_least(1), default=1, help="torch threads per run")
    parser.add_argument("--workers", type=at_least(1), default=1, help="runs at once")
    parser.add_argument(
        "--eval-every",
        type=at_least(1),
        default=10,
        help="new runs evaluate every this many epochs and the last (the rows read only the last)",
    )
    parser.add_argument(
        "--atoms-every",
        type=at_least(1),
        default=1,
        help="new runs record the PID atoms on every this many batches (the same weights and "
        "accuracies; the steps between are faster for four-source layers)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "depth")
    parser.add_argument("--summarise", action="store_true", help="only summarise the runs that exist")
    parser.add_argument(
        "--markdown", action="store_true", help="only print the rows that exist as a Markdown table"
    )
    parser.add_argument(
        "--atoms-figure",
        type=Path,
        metavar="PNG",
        help="only draw each layer's mean atoms over training for the run directories given",
    )
    parser.add_argument(
        "--analyse",
        action="store_true",
        help="only analyse the run directories given: each layer's label selectivity on the test set, "
        "and the test accuracy with the feedback classes silenced",
    )
    parser.add_argument(
        "--tuning-figure",
        type=Path,
        metavar="PNG",
        help="only draw each layer's class-mean firing (neurons x classes) for the run directories given",
    )
    parser.add_argument(
        "--fields-figure",
        type=Path,
        metavar="PNG",
        help="only draw receptive fields of every hidden layer (mapped to the image) for the run directories given",
    )
    parser.add_argument(
        "--save-rows",
        type=Path,
        metavar="JSONL",
        help="merge the rows whose every seed reached --epochs into this file (one record per row)",
    )
    add_ledger_option(parser)
    parser.add_argument(
        "--rows-figure",
        type=Path,
        metavar="PNG",
        help="only draw test accuracy against depth from the rows of --save-rows FILE",
    )
    parser.add_argument(
        "run_dirs",
        nargs="*",
        type=Path,
        help="run directories for --atoms-figure / --analyse / --tuning-figure",
    )
    args = parser.parse_args()
    figures = (
        ("--atoms-figure", args.atoms_figure, atoms_figure),
        ("--tuning-figure", args.tuning_figure, tuning_figure),
        ("--fields-figure", args.fields_figure, fields_figure),
    )
    for flag, path, draw in figures:
        if path is not None:
            if not args.run_dirs:
                parser.error(f"{flag} needs run directories")
            draw(args.run_dirs, path)
            print(json.dumps({"figure": str(path), "runs": [str(r) for r in args.run_dirs]}))
            return
    if args.rows_figure is not None:
        from infomorphic.runs import read_jsonl

        if args.save_rows is None or not args.save_rows.exists():
            parser.error("--rows-figure needs the rows file: --save-rows FILE (an existing one)")
        try:
            rows_figure(read_jsonl(args.save_rows), args.rows_figure)
        except ValueError as exc:
            parser.exit(2, f"error: {exc}\n")
        print(json.dumps({"figure": str(args.rows_figure), "rows": str(args.save_rows)}))
        return
    if args.analyse:
        if not args.run_dirs:
            parser.error("--analyse needs run directories")
        for run in args.run_dirs:
            try:
                print(json.dumps(analyse_run(run)))
            except ValueError as exc:  # not a finished run, or not one that depth.py wires
                parser.exit(2, f"error: {exc}\n")
        return
    rows = [
        (d, w, depth, v)
        for d in args.datasets
        for w in args.widths
        for depth in args.depths
        for v in args.variants
    ]
    ledger = open_ledger(parser, args.ledger)
    if args.markdown:
        print(markdown_table(args.out, rows, args.seeds, args.epochs, ledger))
        return
    check_out(parser, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (d, w, depth, v, s)
        for d, w, depth, v in rows
        for s in args.seeds
        if not recorded(ledger, run_name(d, w, depth, v, s), args.epochs)
    ]
    failed = 0
    if not args.summarise:
        with ThreadPoolExecutor(args.workers) as pool:

            def job(j: tuple[str, int, int, str, int]) -> str:
                status = run_one(args.out, *j, args.epochs, args.threads, args.eval_every, args.atoms_every)
                if status == "trained" and args.ledger is not None:  # at once: a later kill loses nothing
                    record_runs(args.ledger, ledger_records(args.out, [j[:4]], [j[4]]))
                return status

            failed = report_statuses(list(pool.map(job, jobs)))
    if args.ledger is not None:
        written = record_runs(args.ledger, ledger_records(args.out, rows, args.seeds))
        print(json.dumps({"ledger": str(args.ledger), "runs_recorded": written}))
        ledger = read_ledger(args.ledger)
    results = []
    for d, w, depth, v in rows:
        found = seed_results(args.out, (d, w, depth, v), args.seeds, args.epochs, ledger)
        row = {"dataset": d, "width": w, "depth": depth, "variant": v, **summarise_row(found)}
        results.append(row)
        print(json.dumps(row))
    print(json.dumps({"experiment": "depth", "rows": results}))
    if args.save_rows is not None:
        saved = save_rows(args.save_rows, results, args.seeds, args.epochs)
        print(json.dumps({"rows_file": str(args.save_rows), "rows_saved": saved}))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
