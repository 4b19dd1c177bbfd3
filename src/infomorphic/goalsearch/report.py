"""A static HTML report of one trained run, with PNG figures: what did each neuron learn?

Reads a run directory written by :func:`infomorphic.train.fit` (``config.json``,
``metrics.jsonl``, ``atoms.npz``, ``checkpoint.pt``, ``summary.json``, ``baselines.json``),
rebuilds the network from its checkpoint, and writes ``<run>/report/report.html`` plus
``<run>/report/figures/*.png``.  The HTML embeds every image as base64 PNG, so it opens in any
browser without a server.  Sections (``id`` of each ``<section>``):

``goal``            the goals written out, every atom with its gamma and plain-language meaning
``learning``        train / validation / test accuracy and mean local goals per epoch
``atoms-<layer>``   every neuron's PID atoms (all atoms + H_res) per epoch
``fields``          feedforward weights of every neuron as images
``readout-fields``  readout fields in image space vs one-vs-all logistic regression (cosine)
``confusion``       test confusion matrix of the checkpoint's epoch (stored by training, so it
                    agrees with the header's test accuracy)
``firing``          firing probability of each neuron per class
``dynamics``        median self-cosine distance of feedforward weights over training
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..goals import H_RES, Goal, atom_meaning, paper_order
from ..runs import atomic_write, load_checkpoint, load_npz, read_json, read_jsonl
from . import report_plots as rp
from .plots import save

__all__ = ["SECTIONS", "build_report", "RunData", "load_run"]

SECTIONS = ("goal", "learning", "atoms", "fields", "readout-fields", "confusion", "firing", "dynamics")
"""Section ids (``atoms`` stands for one ``atoms-<layer>`` section per trained layer)."""


@dataclass
class RunData:
    """Everything read from a run directory (and its dataset) that the report shows."""

    run_dir: Path
    config: Any
    record: dict[str, Any]
    history: list[dict[str, Any]]
    atoms: dict[str, np.ndarray]
    summary: dict[str, Any]
    baselines: dict[str, Any]
    net: Any
    data: Any = None
    confusion: np.ndarray | None = None
    """The test confusion matrix stored with the checkpoint (or in ``summary.json``); None if neither has one."""
    epoch: int | None = None
    """The checkpoint's epoch (None for a checkpoint without one)."""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_run(run_dir: Path, with_data: bool = True) -> RunData:
    """Read a finished (or partly finished) run; ``ValueError`` naming what is missing or damaged."""
    from ..config import TrainConfig
    from ..train.loop import build_network

    run_dir = Path(run_dir)
    needed = ["config.json", "metrics.jsonl", "atoms.npz", "checkpoint.pt"]
    missing = [n for n in needed if not (run_dir / n).exists()]
    if missing:
        raise ValueError(f"{run_dir} is not a finished infomorphic run: missing {', '.join(missing)}")
    config_path = run_dir / "config.json"
    record = read_json(config_path, "a run's config.json")
    try:
        config = TrainConfig.from_dict(record["config"])
        n_inputs, n_classes = int(record["data"]["inputs"]), int(record["data"]["classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{config_path} is not a run's config.json ({_reason(exc)}); was it written by infomorphic train?"
        ) from None
    if config.network == "backprop":
        raise ValueError(f"{run_dir} holds a backprop run; the report needs an infomorphic network")
    atoms = load_npz(run_dir / "atoms.npz")
    summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").exists() else {}
    baselines = read_json(run_dir / "baselines.json") if (run_dir / "baselines.json").exists() else {}
    net = build_network(config, n_inputs, n_classes)
    ckpt = load_checkpoint(run_dir / "checkpoint.pt", required=("model",))
    try:
        net.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{run_dir / 'checkpoint.pt'} does not fit the network of {config_path} ({_reason(exc)})"
        ) from None
    net.eval()
    confusion = _stored_confusion(
        ckpt.get("confusion_test"), summary.get("confusion_test"), n_classes=n_classes
    )
    try:
        epoch: int | None = int(ckpt["epoch"])
    except (KeyError, TypeError, ValueError, RuntimeError):
        epoch = None
    data = None
    if with_data:
        from ..data import load_dataset

        data = load_dataset(
            config.dataset, data_dir=config.data_dir, val_fraction=config.val_fraction, seed=config.seed
        )
    return RunData(
        run_dir,
        config,
        record,
        read_jsonl(run_dir / "metrics.jsonl"),
        atoms,
        summary,
        baselines,
        net,
        data,
        confusion,
        epoch,
    )


def _stored_confusion(*candidates: Any, n_classes: int) -> np.ndarray | None:
    """The first candidate that is an ``(n_classes, n_classes)`` matrix of counts, as an array."""
    for value in candidates:
        if value is None:
            continue
        try:
            matrix = np.asarray(value.tolist() if hasattr(value, "tolist") else value, dtype=np.int64)
        except (TypeError, ValueError):
            continue
        if matrix.shape == (n_classes, n_classes) and (matrix >= 0).all():
            return matrix
    return None


def _shown_epoch(run: RunData) -> dict[str, Any] | None:
    """The metrics of the checkpoint's epoch (the state the report shows), else of the last epoch."""
    if run.epoch is not None and 1 <= run.epoch <= len(run.history):
        return run.history[run.epoch - 1]
    return run.history[-1] if run.history else None


def _image_shape(run: RunData) -> tuple[int, ...]:
    if run.data is not None:
        return tuple(run.data.image_shape)
    d = run.record["data"]["inputs"]
    side = int(round(math.sqrt(d)))
    return (side, side) if side * side == d else (1, d)


def _class_names(run: RunData) -> list[str]:
    if run.data is not None and run.data.class_names:
        return [str(c) for c in run.data.class_names]
    return [str(i) for i in range(run.record["data"]["classes"])]


# ------------------------------------------------------------------------- analyses
def _firing_and_confusion(run: RunData) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Mean theta per class and layer on the test set (context withheld), and the confusion matrix.

    The confusion matrix is the one training stored for the checkpoint's epoch (its accuracy is the
    test accuracy of that epoch in ``metrics.jsonl``); only a run that stored none (written by an
    older version) gets one from this pass, which samples the hidden layers anew.
    """
    import torch

    from ..nn.network import predict
    from ..seeding import generator
    from ..train.loop import _confusion

    if run.data is None:
        return {}, run.confusion
    x, y = run.data.test.x, run.data.test.y
    n_classes = run.record["data"]["classes"]
    gen = generator(run.config.seed, "report")
    sums: dict[str, torch.Tensor] = {}
    thetas = []
    with torch.no_grad():
        for lo in range(0, len(x), run.config.batch_size):
            out = run.net(x[lo : lo + run.config.batch_size], None, gen)
            onehot = torch.nn.functional.one_hot(y[lo : lo + run.config.batch_size], n_classes).float()
            parts = {name: o.theta for name, o in out.outputs.items()}
            for name, theta in parts.items():
                sums[name] = sums.get(name, 0) + onehot.T @ theta
            thetas.append(out.readout.theta)
    counts = torch.bincount(y, minlength=n_classes).clamp(min=1).float()[:, None]
    firing = {k: (v / counts).numpy() for k, v in sums.items()}
    if run.confusion is not None:
        return firing, run.confusion
    return firing, np.array(_confusion(predict(torch.cat(thetas)), y, n_classes))


def _logistic_weight(run: RunData) -> Any:
    """The logistic baseline's weights that training kept in the run directory, or None."""
    import torch

    from ..runs import load_npz
    from ..train.loop import LOGISTIC_WEIGHTS

    path = run.run_dir / LOGISTIC_WEIGHTS
    if not path.exists():
        return None
    try:
        return torch.as_tensor(load_npz(path)["weight"], dtype=torch.float32)
    except (ValueError, KeyError):  # damaged: refit
        return None


def _readout_fields(
    run: RunData, firing: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Readout fields in input space, logistic-regression fields and their cosine similarity.

    A ``single`` network's readout sees the image directly.  With hidden layers the field is
    the linear approximation ``W_readout @ W_hidden ...`` along the feedforward path (hidden
    outputs are +-1 samples; see :func:`input_field`).  A readout
    neuron read as inverted (mean theta >= 0.5 on the test set, from ``firing``, the mean theta
    per class and layer of :func:`_firing_and_confusion`) has its field negated.
    """
    import torch

    from ..train.baselines import fit_logistic

    if run.data is None:
        return None
    readout_name = run.net.spec.readout_name
    w = input_field(run.net, readout_name)
    if w is None:
        return None
    readout = firing.get(readout_name)
    if readout is not None:
        inverted = torch.as_tensor(readout.mean(0) >= 0.5)
        w = torch.where(inverted[:, None], -w, w)
    lw = _logistic_weight(run)
    if lw is None or lw.shape != w.shape:  # a run trained without the baseline, or before it was kept
        model = fit_logistic(
            run.data.train.x, run.data.train.y, run.record["data"]["classes"], l2=run.config.logistic_l2
        )
        lw = model.weight.detach()
    cos = torch.nn.functional.cosine_similarity(w, lw, dim=1)
    return w.numpy(), lw.numpy(), cos.numpy()


def input_field(net: Any, name: str) -> Any:
    """Layer ``name``'s feedforward weights mapped to the input space, ``(N, n_inputs)``.

    The first input class of each layer is its feedforward (driving) class; following it from
    ``name`` down to the data multiplies the weight matrices (a linear approximation for layers
    above the first).  A concatenation (``"input+h1"``) adds the mapped weights of its parts
    that lead to the data (its ``previous:`` parts do not: they are not a path of the current
    presentation).  None when no path reaches the data (e.g. a random projection).
    """
    spec = net.spec
    fields: dict[str, Any] = {}  # each layer's field once, however many paths reach it

    def field(layer: str) -> Any:
        if layer not in fields:
            letter, src = next(iter(spec.layer(layer).inputs.items()))
            weight = net.layer(layer).effective_weight(letter).detach()
            total, start = None, 0
            for part in src.parts:
                size = spec.input_size(part, net.n_inputs, net.n_classes)
                block = weight[:, start : start + size]
                start += size
                below = field(part.layer) if part.kind == "layer" else None
                mapped = block if part.kind == "input" else (None if below is None else block @ below)
                if mapped is not None:
                    total = mapped if total is None else total + mapped
            fields[layer] = total
        return fields[layer]

    return field(name)


# ----------------------------------------------------------------------------- html
def _goal_table(goal: Goal, title: str) -> str:
    names = (*paper_order(goal.sources), H_RES)
    rows = []
    for name in names:
        g = goal.gamma.get(name, 0.0)
        cls = ' class="zero"' if g == 0.0 else ""
        rows.append(
            f"<tr{cls}><td><code>{html.escape(name)}</code></td><td class=num>{g:+.5f}</td>"
            f"<td>{html.escape(atom_meaning(name, goal.sources))}</td></tr>"
        )
    return (
        f"<h3>{html.escape(title)}</h3><p><code>{html.escape(goal.to_expression())}</code></p>"
        "<table><tr><th>atom</th><th>gamma</th><th>information about Y that is ...</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
section{margin-bottom:2.5em;border-top:1px solid #ccc;padding-top:.5em}img{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.num{text-align:right;font-family:monospace}tr.zero{color:#999}code{font-size:.95em}"""


def build_report(run_dir: Path, out_dir: Path | None = None, *, with_data: bool = True) -> Path:
    """Write the report of ``run_dir``; returns the path of ``report.html``.

    ``with_data=False`` skips what needs the dataset (firing probabilities, logistic-regression
    comparison) and takes the confusion matrix from ``summary.json``.
    """
    run = load_run(run_dir, with_data)
    out_dir = Path(out_dir) if out_dir is not None else Path(run_dir) / "report"
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    sections: list[tuple[str, str, str]] = []  # (id, title, body)

    def figure_html(fig: Any, name: str, alt: str) -> str:
        return _img(save(fig, fig_dir / f"{name}.png"), alt)

    cfg = run.config
    goals = []
    for name, layer in run.net.layers().items():
        if layer.goal is not None:
            goals.append(
                _goal_table(layer.goal, f"{name} layer goal (sources {', '.join(layer.goal.sources)})")
            )
    sections.append(("goal", "Goals and what their atoms mean", "".join(goals)))
    sections.append(
        (
            "learning",
            "Learning curves",
            figure_html(rp.learning_figure(run.history, run.baselines), "learning", "learning curves"),
        )
    )
    for layer in run.net.layers():
        if f"{layer}_atoms" in run.atoms:
            fig = rp.atoms_figure(
                run.atoms[f"{layer}_atoms"],
                run.atoms[f"{layer}_hres"],
                [str(n) for n in run.atoms[f"{layer}_names"]],
                layer,
            )
            sections.append(
                (
                    f"atoms-{layer}",
                    f"PID atoms of the {layer} neurons over training",
                    figure_html(fig, f"atoms_{layer}", f"{layer} atoms"),
                )
            )
    shape = _image_shape(run)
    readout_name = run.net.spec.readout_name
    fields = []
    for ls in run.net.spec.layers:
        w = input_field(run.net, ls.name)
        if ls.name == readout_name or w is None:
            continue
        first_layer = next(iter(ls.inputs.values())).kind == "input"
        how = (
            "feedforward weights"
            if first_layer
            else "feedforward weights x the layers below (linear approximation)"
        )
        name = "fields" if ls.name == "hidden" else f"fields_{ls.name}"
        value = "feedforward weight" if first_layer else "product of weights (linear approximation)"
        fields.append(
            figure_html(
                rp.fields_figure(
                    w.numpy(), shape, f"{ls.name} layer: {how} of all {len(w)} neurons", value=value
                ),
                name,
                f"receptive fields of {ls.name}",
            )
        )
    if not fields:  # a single readout layer: its weights on the image
        w = run.net.readout_layer.effective_weight("F").detach().numpy()
        fields.append(
            figure_html(
                rp.fields_figure(
                    w, shape, f"{readout_name} layer: feedforward weights of all {len(w)} neurons"
                ),
                "fields",
                "receptive fields",
            )
        )
    sections.append(
        (
            "fields",
            "Receptive fields (feedforward weights)",
            "<p>One colour scale per figure, symmetric around 0 (red positive, blue negative).</p>"
            + "".join(fields),
        )
    )
    firing, confusion = _firing_and_confusion(run)
    sim = _readout_fields(run, firing)
    names = _class_names(run)
    if sim is not None:
        rf, lw, cos = sim
        below = next(iter(run.net.spec.layer(readout_name).inputs.values())).kind != "input"
        how = (
            "readout weights x the receptive fields below (linear approximation)"
            if below
            else "readout weights on the image"
        )
        value = "readout weight x fields below" if below else "readout weight"
        body = (
            f"<p>Readout field of each class: {how}. Cosine similarity to the matching one-vs-all "
            f"logistic-regression field: mean {cos.mean():.3f}, per class "
            + ", ".join(f"{n} {c:.3f}" for n, c in zip(names, cos))
            + ".</p>"
            + figure_html(
                rp.similarity_figure(rf, lw, shape, cos, names, value=value),
                "readout_fields",
                "readout fields",
            )
        )
    else:
        body = "<p>Skipped: the report was built without the dataset (--no-data).</p>"
    sections.append(("readout-fields", "Readout fields vs logistic regression", body))
    if confusion is None:
        body = (
            "<p>Not available (the run stored no test confusion matrix and the dataset was not loaded).</p>"
        )
    else:
        body = figure_html(rp.confusion_figure(confusion, names), "confusion", "confusion matrix")
        if run.confusion is None:
            body = (
                "<p>This run stored no test confusion matrix (it was written by an older version); this one "
                "comes from a new pass that samples the hidden layers anew, so its accuracy can differ "
                "slightly from the header's.</p>" + body
            )
    sections.append(("confusion", "Confusion matrix (test set)", body))
    body = (
        "<p>Skipped: the report was built without the dataset (--no-data).</p>"
        if not firing
        else figure_html(rp.firing_figure(firing, names), "firing", "firing probabilities")
    )
    sections.append(("firing", "Firing probability of each neuron per class", body))
    wdist = {k[: -len("_wdist")]: np.asarray(v) for k, v in run.atoms.items() if k.endswith("_wdist")}
    sections.append(
        (
            "dynamics",
            "Median self-cosine distance of feedforward weights",
            figure_html(rp.dynamics_figure(wdist), "dynamics", "weight dynamics"),
        )
    )

    shown = _shown_epoch(run)
    if cfg.wiring is not None:
        described = ", ".join(
            f"{ls.name} {run.net.layer(ls.name).n_neurons} ({''.join(ls.inputs)})"
            for ls in run.net.spec.layers
        )
        what = f"network <b>custom</b> (layers: {html.escape(described)})"
    else:
        what = (
            f"network <b>{cfg.network}</b>"
            + (f", setup {cfg.setup}" if cfg.network == "trivariate" else "")
            + f", {cfg.hidden} hidden neurons"
        )
    head = (
        f"<p>Run <code>{html.escape(str(run.run_dir))}</code>: {what}"
        + f", dataset <b>{cfg.dataset}</b>, {len(run.history)} epochs, seed {cfg.seed}."
        + (
            f" Test accuracy {100 * shown['test_acc']:.2f}%, validation {100 * shown['val_acc']:.2f}% "
            f"(epoch {shown['epoch']})."
            if shown is not None and shown.get("test_acc") is not None
            else ""
        )
        + "</p>"
    )
    nav = " · ".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    body_html = "".join(
        f'<section id="{sid}"><h2>{html.escape(title)}</h2>{content}</section>'
        for sid, title, content in sections
    )
    page = (
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>infomorphic report: "
        f"{html.escape(run.run_dir.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>infomorphic report</h1>{head}<nav>{nav}</nav>{body_html}</body></html>"
    )
    path = out_dir / "report.html"
    atomic_write(path, lambda fh: fh.write(page))
    return path
