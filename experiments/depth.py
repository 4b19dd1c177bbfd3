"""Does depth help?  Stacked infomorphic networks against one hidden layer, each with its backprop twin.

    python experiments/depth.py --datasets mnist --widths 100 --depths 1 2 --seeds 0 1 2
    python experiments/depth.py --datasets fashion-mnist --widths 100 --depths 1 2 3 \
        --variants stacked feedback-c feedback-b --epochs 100 --workers 2
    python experiments/depth.py ... --summarise          # only read the finished / running runs
    python experiments/depth.py ... --markdown           # the same rows as a Markdown table
    python experiments/depth.py --atoms-figure depth-atoms.png RUN_DIR [RUN_DIR ...]
    python experiments/depth.py --analyse RUN_DIR [RUN_DIR ...]   # label selectivity per layer, feedback ablated
    python experiments/depth.py --tuning-figure tuning.png RUN_DIR [RUN_DIR ...]

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
  rewarded for redundancy with the label.

Depth 1 ``stacked`` is setup 1 (width 100) or setup 2 (width 500). Every run trains the
backprop network of the same wiring in the same harness. Runs live in
``<out>/<dataset>-w<width>-d<depth>-<variant>-seed<s>`` and are resumed when they exist, so the
script can be stopped and started again; several invocations may share ``--out`` (a run that
another process trains is left to it; a failed run makes the script exit with status 1). One
JSON line per row (median, min and max over seeds of the final test accuracy, infomorphic and
backprop; each layer's mean goal at the end), then one line with all rows; ``--markdown``
prints the rows as a Markdown table instead (only the runs that reached ``--epochs``; a run still
training is named beside its row). Never imported by the package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _train_run import (  # noqa: E402 - the experiments' shared launcher
    at_least,
    check_out,
    infomorphic_exe,
    report_statuses,
    train_run,
)

if TYPE_CHECKING:
    import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("stacked", "feedback-c", "feedback-b", "feedback-b-marginal", "label-first")


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
    )
    network = spec.to_dict()
    if variant == "label-first":  # the label at h1 only; above it C = the previous output of the layer above
        hidden = [layer for layer in network["layers"] if layer["name"] != network["readout"]]
        for below, above in zip(hidden[1:], [*hidden[2:], {"name": network["readout"]}]):
            below["inputs"]["C"] = f"previous:{above['name']}"
    return network


def write_config(path: Path, train: dict, network: dict) -> None:
    import tomli_w

    from infomorphic.runs import atomic_write

    text = tomli_w.dumps({"train": train, "network": network})
    atomic_write(path, lambda fh: fh.write(text))  # a second invocation may write it at the same moment


def run_one(
    out: Path, dataset: str, width: int, depth: int, variant: str, seed: int, epochs: int, threads: int
) -> str:
    """Train (or continue) one run; ``"trained"``, ``"busy"`` (another process, e.g. a second
    invocation on the same ``out``, trains it now) or ``"failed"``."""
    name = f"{dataset}-w{width}-d{depth}-{variant}-seed{seed}"
    run_dir = out / name
    exe = infomorphic_exe()

    def command() -> list[str]:
        if (run_dir / "config.json").exists():
            return [
                exe,
                "train",
                "--resume",
                str(run_dir),
                "--epochs",
                str(epochs),
                "--no-progress",
                "--json",
            ]
        config = out / "configs" / f"{name}.toml"
        write_config(
            config,
            {
                "dataset": dataset,
                "epochs": epochs,
                "seed": seed,
                "threads": threads,
                "baselines": ["backprop"],
            },
            wiring(depth, width, variant),
        )
        return [
            exe,
            "train",
            "--config",
            str(config),
            "--out-dir",
            str(out),
            "--name",
            name,
            "--no-progress",
            "--json",
        ]

    return train_run(run_dir, command)


def summarise_row(runs: list[Path]) -> dict:
    from infomorphic.runs import read_json, read_jsonl

    inf: list[float] = []
    bp: list[float] = []
    goals: dict[str, list[float]] = {}
    epochs: list[int] = []
    atoms: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        metrics = read_jsonl(run / "metrics.jsonl")
        if not metrics:
            continue
        epochs.append(metrics[-1]["epoch"])
        inf.append(metrics[-1]["test_acc"])
        for key, value in metrics[-1].items():
            if key.endswith("_goal"):
                goals.setdefault(key, []).append(value)
            if key.endswith("_atoms_mean"):
                for atom, bits in value.items():
                    atoms.setdefault(key[: -len("_atoms_mean")], {}).setdefault(atom, []).append(bits)
        base = read_json(run / "baselines.json") if (run / "baselines.json").exists() else {}
        if "backprop" in base and base["backprop"].get("test_acc") is not None:
            bp.append(base["backprop"]["test_acc"])

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
        "epochs": epochs,
        "infomorphic_test": stats(inf),
        "backprop_test": stats(bp),
        "final_goals_mean_bits": {k: statistics.fmean(v) for k, v in goals.items()},
        "final_largest_atoms_bits": largest,
    }


DISPLAY_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def markdown_table(out: Path, rows: list[tuple[str, int, int, str]], seeds: list[int], epochs: int) -> str:
    """The rows as a Markdown table: median (min-max) test accuracy in % over the seeds whose
    run reached ``epochs``, for the infomorphic network and its backprop twin (with the number
    of seeds where a twin is still training); rows without any run are left out."""
    from infomorphic.runs import read_jsonl

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
        done, running = [], []
        for s in seeds:
            metrics = read_jsonl(out / f"{d}-w{w}-d{depth}-{v}-seed{s}" / "metrics.jsonl")
            if metrics and metrics[-1]["epoch"] >= epochs:
                done.append(s)
            elif metrics:
                running.append(f"seed {s} at epoch {metrics[-1]['epoch']}")
        if not done and not running:
            continue
        row = summarise_row([out / f"{d}-w{w}-d{depth}-{v}-seed{s}" for s in done])
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
    activation).  Evaluation as in training (context withheld, stochastic hidden units; the same
    sampling seed for both passes).  A ``tuning`` dict given receives each layer's class-mean
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
        "run_dirs",
        nargs="*",
        type=Path,
        help="run directories for --atoms-figure / --analyse / --tuning-figure",
    )
    args = parser.parse_args()
    figures = (
        ("--atoms-figure", args.atoms_figure, atoms_figure),
        ("--tuning-figure", args.tuning_figure, tuning_figure),
    )
    for flag, path, draw in figures:
        if path is not None:
            if not args.run_dirs:
                parser.error(f"{flag} needs run directories")
            draw(args.run_dirs, path)
            print(json.dumps({"figure": str(path), "runs": [str(r) for r in args.run_dirs]}))
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
    if args.markdown:
        print(markdown_table(args.out, rows, args.seeds, args.epochs))
        return
    check_out(parser, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(d, w, depth, v, s) for d, w, depth, v in rows for s in args.seeds]
    failed = 0
    if not args.summarise:
        with ThreadPoolExecutor(args.workers) as pool:
            failed = report_statuses(
                list(
                    pool.map(
                        lambda j: run_one(args.out, j[0], j[1], j[2], j[3], j[4], args.epochs, args.threads),
                        jobs,
                    )
                )
            )
    results = []
    for d, w, depth, v in rows:
        runs = [args.out / f"{d}-w{w}-d{depth}-{v}-seed{s}" for s in args.seeds]
        row = {"dataset": d, "width": w, "depth": depth, "variant": v, **summarise_row(runs)}
        results.append(row)
        print(json.dumps(row))
    print(json.dumps({"experiment": "depth", "rows": results}))
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
