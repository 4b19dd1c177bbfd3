"""Run directories of the self-organisation tasks (the same files as supervised runs).

``<out_dir>/<name>/``::

    config.json      resolved config, versions, seed (written before training)
    metrics.jsonl    one record per epoch (bars) or per recall check (memory)
    atoms.npz        per-neuron PID atoms (bits) over training: atoms (E, N, 4), hres (E, N), names
    points.jsonl     (capacity sweeps) each finished (load, seed) point, written as it finishes
    summary.json     final figures
    *.png            atoms over training, fields / MI matrix (bars), recall scores (memory)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runs import RunClaim, check_run_name, claim_run_dir, save_npz, versions, write_json, write_jsonl
from ..seeding import generator
from . import plots
from .bars import BarsConfig, success_record, train_bars
from .hopfield import RULES, recall_score, rule_field
from .memory import MemoryConfig, memory_goal, train_memory
from .workers import map_jobs

__all__ = ["run_bars", "run_bars_seed", "bars_success_rate", "run_memory", "new_run_dir"]

Progress = Callable[[dict[str, Any]], None]


def _recorder(run_dir: Path, progress: Progress | None) -> tuple[list[dict[str, Any]], Progress]:
    """The run's metric records and a callback that appends one, rewrites metrics.jsonl and reports it."""
    history: list[dict[str, Any]] = []

    def record(entry: dict[str, Any]) -> None:
        history.append(entry)
        write_jsonl(run_dir / "metrics.jsonl", history)
        if progress is not None:
            progress(entry)

    return history, record


def new_run_dir(out_dir: str | Path, name: str | None, tag: str, resumable: bool = False) -> RunClaim:
    """Claim ``out_dir/name`` (default: ``<tag>-<timestamp>``) for a new run of this process.

    The claim (an exclusive lock, see :func:`infomorphic.runs.claim_run_dir`) is held until its
    ``release()`` or the end of the process.  Refuses a name that is not a plain folder name, a
    directory that already holds a run (pointing to ``--resume`` where the command is
    ``resumable``), and one that another live process is writing.
    """
    if name is not None:
        check_run_name(name)
    run_dir = Path(out_dir) / (name or f"{tag}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    taken = (
        f"pass --resume {run_dir} to continue it, or choose another --name"
        if resumable
        else "choose another --name, or remove that folder"
    )
    return claim_run_dir(run_dir, resume=False, markers=("config.json", "summary.json"), taken=taken)


def run_bars(config: BarsConfig, run_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    """Train one bars network and write its run directory; returns the summary."""
    config = config.resolved()
    write_json(run_dir / "config.json", {"task": "bars", "config": config.to_dict(), "versions": versions()})
    history, on_epoch = _recorder(run_dir, progress)
    t0 = time.perf_counter()
    res = train_bars(config, on_epoch)
    seconds = time.perf_counter() - t0
    layer = res["layer"]
    names = res["atom_names"]
    save_npz(
        run_dir / "atoms.npz",
        {"atoms": res["atoms"], "hres": res["hres"], "names": np.array(names), "mi": res["mi"]},
    )
    wf = layer.effective_weight("F").detach().numpy()
    wc = layer.effective_weight("C").detach().numpy()
    save_npz(
        run_dir / "weights.npz",
        {
            "w_F": wf,
            "w_C": wc,
            "b_F": layer.bias["F"].detach().numpy(),
            "b_C": layer.bias["C"].detach().numpy(),
        },
    )
    plots.atoms_over_training(res["atoms"], res["hres"], names, run_dir / "atoms.png")
    plots.bars_fields(wf, wc, run_dir / "fields.png")
    plots.mi_matrix_figure(res["mi"][-1], run_dir / "mi_matrix.png")
    status = res["status"]
    summary = {
        "run_dir": str(run_dir),
        "task": "bars",
        "variant": config.variant,
        "seed": config.seed,
        "epochs": config.epochs,
        "solved": status["solved"],
        "bars_coded": status["bars_coded"],
        "n_bars": config.n_bars,
        "threshold_bits": status["threshold_bits"],
        "bar_entropy": status["bar_entropy"],
        "best_neuron": status["best_neuron"],
        "best_mi": status["best_mi"],
        "mi_matrix": res["mi"][-1].tolist(),
        "final_atoms_mean": history[-1] if history else {},
        "seconds": seconds,
        "success": success_record(config.seed, status, history),
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def run_bars_seed(config: BarsConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Train one bars network (writing its run directory if ``run_dir`` is given); its success row."""
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_bars(config, run_dir)["success"]
    res = train_bars(config)
    return success_record(config.seed, res["status"], res["history"])


def bars_success_rate(
    config: BarsConfig,
    seeds: Sequence[int],
    workers: int = 1,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    run_dirs: dict[int, Path] | None = None,
) -> dict[str, Any]:
    """Train one bars network per seed (``workers`` processes) and count the solved ones.

    Seeds in ``run_dirs`` also get a full run directory (figures included) there.
    """
    config = config.resolved()
    jobs = [(replace(config, seed=s), (run_dirs or {}).get(s)) for s in seeds]
    rows = sorted(map_jobs(run_bars_seed, jobs, workers, on_result), key=lambda r: r["seed"])
    solved = sum(r["solved"] for r in rows)
    return {
        "success_rate": solved / len(rows),
        "solved": solved,
        "runs": len(rows),
        "bars_coded_mean": float(np.mean([r["bars_coded"] for r in rows])),
        "mean_best_mi": float(np.mean([r["mean_best_mi"] for r in rows])),
        "per_seed": rows,
    }


def run_memory(
    config: MemoryConfig,
    run_dir: Path,
    progress: Progress | None = None,
    noise: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3),
) -> dict[str, Any]:
    """Train one associative memory, compare it with the baselines on the same patterns, write the run."""
    write_json(
        run_dir / "config.json", {"task": "memory", "config": config.to_dict(), "versions": versions()}
    )
    history, on_check = _recorder(run_dir, progress)
    t0 = time.perf_counter()
    res = train_memory(config, callback=on_check)
    seconds = time.perf_counter() - t0
    names = list(memory_goal(config.goal).atom_names)
    if res.atoms:
        atoms = torch.stack(res.atoms).numpy()
        hres = torch.stack(res.hres).numpy()
        save_npz(
            run_dir / "atoms.npz",
            {
                "atoms": atoms,
                "hres": hres,
                "names": np.array(names),
                "epochs": np.array([h["epoch"] for h in history]),
            },
        )
        plots.atoms_over_training(
            atoms, hres, names, run_dir / "atoms.png", xlabel=f"check (every {config.check_every} epochs)"
        )
    torch.save(
        {"weight": res.net.recurrent_weight().detach(), "patterns": res.patterns}, run_dir / "memory.pt"
    )
    fields = {"infomorphic": res.net.field()}
    for method in RULES:
        field = rule_field(method, res.patterns)
        if field is not None:
            fields[method] = field
    scores = {
        m: {
            f"{f:g}": recall_score(fld, res.patterns, f, generator(config.seed, "cue-noise", f"{f:g}"))
            for f in noise
        }
        for m, fld in fields.items()
    }
    summary = {
        "run_dir": str(run_dir),
        "task": "memory",
        "seed": config.seed,
        "n_neurons": config.n_neurons,
        "alpha": config.alpha,
        "n_patterns": len(res.patterns),
        "epochs": res.epochs,
        "stopped": res.stopped,
        **({} if res.basin is None else {"basin": res.basin}),
        "score": res.score,
        "success": res.score >= 0.95,
        "scores_by_noise": scores,
        "seconds": seconds,
        "final_atoms_mean": history[-1] if history else {},
    }
    write_json(run_dir / "summary.json", summary)
    return summary
