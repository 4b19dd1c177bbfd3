"""Subcommands of ``infomorphic`` for goal functions: ``search``, ``ablate`` and ``report``.

``search``  optimise the gammas of a layer's goal with optuna (TPE, CMA-ES), resumable, in
            parallel processes on one storage (:mod:`infomorphic.goalsearch.search`);
``ablate``  single / cumulative ablation and modulation of each gamma over several seeds, or
            (``--study``) the parameter importance of a finished search;
``report``  a static HTML report with PNG figures of one trained run.

Malformed input is reported as one line ``error: <message>`` on stderr with exit code 2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table


def _fail(message: str, failed: bool = False) -> NoReturn:
    """``error: message`` on stderr; exit 2 (bad input), or 1 with ``failed`` (a run that started)."""
    from .cli import EXIT_FAILED, EXIT_USAGE
    from .cli import _fail as fail  # imported here: cli imports this module

    fail(message, EXIT_FAILED if failed else EXIT_USAGE)


def _search_record(folder: Path) -> dict[str, Any]:
    """The ``search.json`` that ``infomorphic search`` wrote into ``folder`` ({} when there is none).

    Raises
    ------
    ValueError
        When it is not a JSON object with a string ``storage`` and ``study_name`` and a positive
        integer ``n_trials`` (each may be missing).
    """
    path = folder / "search.json"
    if not path.exists():
        return {}
    fix = (
        f"restore it, or delete it and pass --storage sqlite:///{(folder / 'study.db').resolve()} and "
        "--study-name (default goal-search)"
    )
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); {fix}") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{path} is not a JSON object but {type(record).__name__}; {fix}")
    for key in ("storage", "study_name"):
        if record.get(key) is not None and not isinstance(record[key], str):
            raise ValueError(f"{path}: {key} must be a string, got {record[key]!r}; {fix}")
    n_trials = record.get("n_trials")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ValueError(f"{path}: n_trials must be a positive integer, got {n_trials!r}; {fix}")
    return record


# ------------------------------------------------------------------ shared options
_Config = Annotated[Path | None, typer.Option("--config", help="TOML training config (as for train).")]
_Set = Annotated[
    list[str] | None, typer.Option("--set", help="Override a config key: --set hidden_lr=1e-3 (repeatable).")
]
_Network = Annotated[str | None, typer.Option(help="Network kind (as for train).")]
_Hidden = Annotated[int | None, typer.Option(help="Hidden neurons.")]
_Dataset = Annotated[str | None, typer.Option(help="digits | mnist | fashion-mnist | cifar10")]
_DataDir = Annotated[str | None, typer.Option("--data-dir", help="Data root.")]
_Epochs = Annotated[int | None, typer.Option(help="Training epochs of every run.")]
_Batch = Annotated[int | None, typer.Option("--batch-size", help="Batch size.")]
_Threads = Annotated[int | None, typer.Option(help="torch threads per process (default 1).")]
_Device = Annotated[str | None, typer.Option(help="cpu | cuda | auto")]
_Layer = Annotated[
    str,
    typer.Option(
        help="Whose goal: hidden | readout, or a layer's name in a wired network (--config with \\[network])."
    ),
]
_Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
_Subset = Annotated[
    int | None,
    typer.Option("--train-subset", help="Train every run on this many training examples (seeded subset)."),
]


def _train_config(config: Path | None, set_: list[str] | None, **flags: Any) -> Any:
    from .config import load_config, parse_override

    overrides = {k: v for k, v in flags.items() if v is not None}
    overrides.setdefault("threads", 1)
    for item in set_ or []:
        key, value = parse_override(item)
        overrides[key] = value
    return load_config(config, overrides)


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not items:
        raise ValueError(f"expected atom names such as {{F}}{{C}},{{F}}{{L}}, got {text!r}")
    return items


def _short(expression: str, n: int = 4) -> str:
    terms = re.split(r" (?=[+-] )", expression)
    return " ".join(terms[:n]) + (" ..." if len(terms) > n else "")


def _seed_list(seeds: str) -> tuple[int, ...]:
    """``--seeds 0,1,2`` as integers (a ``ValueError`` naming the option otherwise)."""
    try:
        return tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"--seeds expects comma-separated integers, got {seeds!r}") from None


def _memory_settings(
    set_: list[str] | None,
    *,
    neurons: int | None,
    loads: str | None,
    seeds: str | None,
    threshold: float | None,
    atoms: str | None,
    fix_hres: bool,
    base_goal: str | None,
    sampler: str,
    seed: int | None,
    startup_trials: int,
    prune: bool,
    threads: int | None,
) -> Any:
    """The :class:`~.goalsearch.memory_search.MemorySearchSettings` of ``search --task memory``:
    ``--set`` keys of :class:`~.tasks.memory.MemoryConfig` (not the goal, load or seed, which
    every trial and probe sets; ``--neurons`` for ``n_neurons``)."""
    from .cli_selforg import parse_sets
    from .goals import Goal
    from .goalsearch.memory_search import (
        DEFAULT_LOADS,
        MEMORY_SOURCES,
        MemorySearchSettings,
        memory_space,
        parse_loads,
    )
    from .tasks.memory import MemoryConfig

    kw = parse_sets(set_, MemoryConfig)
    own = sorted(set(kw) & {"goal", "alpha", "seed", "n_neurons"})
    if own:
        raise ValueError(
            f"--set {own[0]} is not for a memory-goal search: every trial sets the goal, every probe the load "
            "and seed (--loads, --seeds); the neurons are --neurons"
        )
    seed_list = (0,) if seeds is None else _seed_list(seeds)
    base = Goal.resolve(base_goal, MEMORY_SOURCES) if base_goal else None
    return MemorySearchSettings(
        MemoryConfig(n_neurons=100 if neurons is None else neurons, **kw),
        memory_space(_names(atoms), fix_hres=fix_hres, base=base),
        loads=DEFAULT_LOADS if loads is None else parse_loads(loads),
        seeds=seed_list,
        threshold=0.95 if threshold is None else threshold,
        sampler=sampler,
        seed=0 if seed is None else seed,
        startup_trials=startup_trials,
        prune=prune,
        threads=1 if threads is None else threads,
    )


# -------------------------------------------------------------------------- search
def search_command(
    action: Annotated[
        str | None,
        typer.Argument(
            metavar="[status|export]",
            help="status: print the study's trial counts and best goal instead of searching; export: "
            "print every trial as one JSON line (the form --warm-start reads). Both read only "
            "(--storage URL and --study-name, or --out DIR; status --json).",
            show_default=False,
        ),
    ] = None,
    config: _Config = None,
    set_: _Set = None,
    network: _Network = None,
    setup: Annotated[int | None, typer.Option(help="Trivariate setup 1, 2 or 3.")] = None,
    hidden: _Hidden = None,
    dataset: _Dataset = None,
    data_dir: _DataDir = None,
    epochs: _Epochs = None,
    batch_size: _Batch = None,
    threads: _Threads = None,
    device: _Device = None,
    seed: Annotated[
        int | None, typer.Option(help="Run seed of every trial (data split, init); also the sampler seed.")
    ] = None,
    sampler: Annotated[
        str,
        typer.Option(help="tpe | cmaes | gp (Gaussian-process Bayesian optimisation) | random"),
    ] = "tpe",
    trials: Annotated[
        int | None,
        typer.Option(
            help="Finished (complete or pruned) trials the study should hold (default 100; the target is stored in the study: resuming or joining without --trials keeps it, a given one replaces it)."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes on the same study.")] = 1,
    atoms: Annotated[
        str | None, typer.Option(help="Search only these gammas, e.g. '{F}{C},{F}{L},H_res' (default all).")
    ] = None,
    fix_hres: Annotated[
        bool, typer.Option("--fix-hres", help="Keep H_res at its base value (0) and out of the search.")
    ] = False,
    base_goal: Annotated[
        str | None,
        typer.Option(
            "--base-goal", help="Values of the gammas not searched (preset, expression or vector; default 0)."
        ),
    ] = None,
    layer: _Layer = "hidden",
    startup_trials: Annotated[
        int,
        typer.Option(
            "--startup-trials",
            help="Random trials before TPE / CMA-ES / GP take over (--warm-start trials count).",
        ),
    ] = 10,
    prune: Annotated[
        bool, typer.Option("--prune/--no-prune", help="Prune unpromising trials (rule: --pruner).")
    ] = True,
    pruner: Annotated[
        str,
        typer.Option(
            help="median (below the median of earlier trials at an epoch) | halving (successive halving "
            "over epochs: at --min-epochs x eta^k epochs only the best 1/eta go on) | hyperband."
        ),
    ] = "median",
    min_epochs: Annotated[
        int, typer.Option("--min-epochs", help="Epochs before halving / hyperband may stop a trial.")
    ] = 1,
    reduction_factor: Annotated[
        int, typer.Option("--reduction-factor", help="eta of halving / hyperband (keep the best 1/eta).")
    ] = 3,
    cma_sigma0: Annotated[
        float | None,
        typer.Option(
            "--cma-sigma0",
            help="--sampler cmaes: the initial step size of CMA-ES in gamma units (default: optuna's, "
            "a sixth of the [-1, 1] range = 1/3).",
        ),
    ] = None,
    cma_x0: Annotated[
        str | None,
        typer.Option(
            "--cma-x0",
            help="--sampler cmaes: start at this goal's weights of the searched atoms (an expression or "
            "preset, e.g. an earlier search's best_goal.txt) instead of the all-zero goal.",
        ),
    ] = None,
    trust_region: Annotated[
        float | None,
        typer.Option(
            "--trust-region",
            help="--sampler gp: propose goals only within this many gamma units of the best trial so far "
            "(per gamma; the box doubles after 3 improvements in a row, halves after as many failures in "
            "a row as there are searched gammas), e.g. 0.2 to refine a warm-started search.",
        ),
    ] = None,
    train_subset: _Subset = None,
    task: Annotated[
        str | None,
        typer.Option(
            help="supervised (default: a network layer's goal, validation accuracy) | memory (the "
            "associative memory's goal over T, R: capacity proxy; --neurons, --loads, --seeds, --threshold, "
            "--set for its keys)."
        ),
    ] = None,
    neurons: Annotated[int | None, typer.Option(help="--task memory: neurons N (default 100).")] = None,
    loads: Annotated[
        str | None,
        typer.Option(
            help="--task memory: the loads alpha = M/N bisected, start:stop:step or comma-separated "
            "(default 0.51:2.01:0.05)."
        ),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated seeds of every trial; value: their mean (--task memory: default 0; "
            "a network's goal: default the config's seed, several need --no-prune).",
        ),
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="--task memory: a load is recalled at score >= this (default 0.95).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Search directory (study.db, trials/, best_goal.txt).")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="optuna storage URL (default: sqlite in --out), e.g. postgresql://...")
    ] = None,
    study_name: Annotated[
        str | None, typer.Option("--study-name", help="Study name (default goal-search).")
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue (or join) the study in --out / --storage with its stored settings."
        ),
    ] = False,
    warm_start: Annotated[
        list[Path] | None,
        typer.Option(
            "--warm-start",
            help="A new tpe / gp search first receives the complete trials of this file (JSON lines of "
            "search export; repeatable): same gammas, goal and epochs, checked; they count toward --trials.",
        ),
    ] = None,
    progress: _Progress = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the best result as JSON.")] = False,
) -> None:
    """Search the gammas of a layer's goal to maximise validation accuracy (optuna TPE, CMA-ES, GP).

    Examples: infomorphic search --dataset mnist --epochs 3 --sampler cmaes --fix-hres --trials 200
    --out runs/cma; infomorphic search --out runs/cma --resume --workers 2; infomorphic search
    status --out runs/cma (or --storage URL --study-name NAME); infomorphic search export --out
    runs/cma > cma.jsonl; infomorphic search --sampler gp --warm-start cma.jsonl --trials 400 ...

    Crashes: --resume (or joining) first fails the trials of processes that are gone (at once for
    a dead process of this host, else after 20 s without heartbeat) and queues their goals again.
    With one worker, a seeded search that is killed at any point (kill -9, Ctrl-C) and resumed on
    the same machine evaluates the same goals in the same order with the same validation
    accuracies as an uninterrupted one (the killed trial is re-run from its start; training is
    deterministic for a given seed on the same machine and --threads). With several
    workers the order depends on timing and is not reproducible; no finished trial is lost or
    repeated.
    """
    from .goals import Goal
    from .goalsearch.search import SearchSettings, StorageLost, counts, layer_letters, run_search
    from .goalsearch.space import GoalSpace

    if action is not None and action not in ("status", "export"):
        _fail(
            "search takes no argument but status or export (infomorphic search status --storage URL), "
            f"got {action!r}"
        )
    if (trials is not None and trials < 1) or workers < 1:
        _fail(f"--trials and --workers must be >= 1, got {trials} and {workers}")
    config_flags = {
        "network": network,
        "setup": setup,
        "hidden": hidden,
        "dataset": dataset,
        "data_dir": data_dir,
        "epochs": epochs,
        "batch_size": batch_size,
        "threads": threads,
        "device": device,
        "seed": seed,
    }
    tuning_flags = {  # how the supervised search prunes and samples: given or not
        "--pruner": pruner != "median",
        "--min-epochs": min_epochs != 1,
        "--reduction-factor": reduction_factor != 3,
        "--cma-sigma0": cma_sigma0 is not None,
        "--cma-x0": cma_x0 is not None,
        "--trust-region": trust_region is not None,
    }
    memory_flags = {
        "--task": task,
        "--neurons": neurons,
        "--loads": loads,
        "--seeds": seeds,
        "--threshold": threshold,
    }
    if action is not None:
        search_flags = {
            "--trials": trials is not None,
            "--workers": workers != 1,
            "--resume": resume,
            "--sampler": sampler != "tpe",
            "--layer": layer != "hidden",
            "--fix-hres": fix_hres,
            "--warm-start": bool(warm_start),
            "--json": as_json and action == "export",
            **tuning_flags,
        }
        given = [f"--{k.replace('_', '-')}" for k, v in config_flags.items() if v is not None]
        given += [
            k
            for k, v in {
                "--config": config,
                "--set": set_,
                "--atoms": atoms,
                "--base-goal": base_goal,
            }.items()
            if v
        ]
        given += [k for k, v in search_flags.items() if v]
        given += [k for k, v in memory_flags.items() if v is not None]
        if given:
            _fail(f"search {action} only reads the study; drop {', '.join(given)}")
        if action == "export":
            return _export(out, storage, study_name)
        return _status(out, storage, study_name, as_json)
    try:
        if resume:
            given = (
                [k for k, v in config_flags.items() if v is not None]
                + (["--config"] if config else [])
                + (["--set"] if set_ else [])
                + (["--atoms"] if atoms else [])
                + (["--base-goal"] if base_goal else [])
                + [k for k, v in tuning_flags.items() if v]
                + [k for k, v in memory_flags.items() if v is not None]
            )
            if given:
                _fail(
                    f"--resume continues a search with its stored settings (its task included); drop {', '.join(given)}"
                )
            if out is None:
                _fail("--resume needs --out (the search directory)")
            record = _search_record(out)
            storage = storage or record.get("storage")
            study_name = study_name or record.get("study_name")
            # trials None: the study's stored target (then search.json's) is kept
            if storage is None and not (out / "study.db").exists():
                _fail(f"cannot resume: {out} holds no search (no search.json or study.db); give --storage")
            settings = None
        elif task not in (None, "supervised", "memory"):
            _fail(f"--task takes supervised or memory, got {task!r}")
        elif task == "memory":
            unused = {k: v for k, v in config_flags.items() if k not in ("threads", "seed")}
            given = [f"--{k.replace('_', '-')}" for k, v in unused.items() if v is not None]
            given += [
                k
                for k, v in {
                    "--config": config,
                    "--layer": layer != "hidden",
                    "--train-subset": train_subset is not None,
                    **tuning_flags,
                }.items()
                if v
            ]
            if given:
                _fail(f"--task memory does not use {', '.join(given)} (memory keys: --set KEY=VALUE)")
            settings = _memory_settings(
                set_,
                neurons=neurons,
                loads=loads,
                seeds=seeds,
                threshold=threshold,
                atoms=atoms,
                fix_hres=fix_hres,
                base_goal=base_goal,
                sampler=sampler,
                seed=seed,
                startup_trials=startup_trials,
                prune=prune,
                threads=threads,
            )
            if out is None:
                out = _stamped(Path("runs"), f"search-{sampler}-memory-n{settings.memory.n_neurons}")
        else:
            memory_only = [
                k for k, v in memory_flags.items() if v is not None and k not in ("--task", "--seeds")
            ]
            if memory_only:
                _fail(f"{', '.join(memory_only)} belong to --task memory")
            cfg = _train_config(config, set_, **config_flags)
            letters = layer_letters(cfg, layer)
            base = Goal.resolve(base_goal, letters) if base_goal else None
            space = GoalSpace.build(letters, _names(atoms), fix_hres=fix_hres, base=base)
            settings = SearchSettings(
                cfg,
                space,
                layer=layer,
                sampler=sampler,
                seed=cfg.seed,
                startup_trials=startup_trials,
                prune=prune,
                train_subset=train_subset,
                pruner=pruner,
                min_epochs=min_epochs,
                reduction_factor=reduction_factor,
                cma_sigma0=cma_sigma0,
                cma_x0=cma_x0,
                trust_region=trust_region,
                seeds=() if seeds is None else _seed_list(seeds),
            )
            if out is None:
                out = _stamped(Path(cfg.out_dir), f"search-{sampler}-{cfg.network}-{cfg.dataset}")
        added: list[Any] = []
        if warm_start:
            from .goalsearch.search import check_warm_start
            from .goalsearch.warmstart import read_warm_start

            check_warm_start(settings, resume)
            added = read_warm_start(warm_start, settings)
        bar = _SearchBar(progress and not as_json, trials)
        try:
            study, stored, best = run_search(
                settings,
                out,
                n_trials=trials,
                storage=storage,
                workers=workers,
                study_name=study_name or "goal-search",
                resume=resume,
                on_trial=bar.update,
                on_start=bar.start,
                warm_start=added,
            )
        finally:
            bar.close()
    except StorageLost as exc:
        _fail(str(exc), failed=True)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the interrupted trials are queued again
        typer.echo(
            f"search stopped; its finished trials are kept: go on with infomorphic search --resume --out {out}",
            err=True,
        )
        raise typer.Exit(130) from None
    found = best or {}
    result = {
        "out": str(out),
        "study": study.study_name,
        "counts": best["counts"] if best else counts(study),
        "best_value": found.get("value"),
        "best_trial": found.get("trial"),
        "best_goal": found.get("goal"),
        "best_test_acc": found.get("test_acc"),
        "task": stored.task,
    }
    if stored.task == "memory":
        result["best_capacity_per_seed"] = found.get("capacity_per_seed")
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"search directory: {out}  (study {study.study_name}, trials {result['counts']})")
    if best and stored.task == "memory":
        typer.echo(
            f"best capacity proxy alpha {best['value']:g} (trial {best['trial']}; largest load recalled, "
            f"per seed {best['capacity_per_seed']})"
        )
        typer.echo(
            f'best goal (in {out / "best_goal.txt"}; check it: infomorphic capacity --goal "$(cat {out / "best_goal.txt"})"):'
        )
        typer.echo(f"  {best['goal']}")
    elif best:
        typer.echo(f"best validation accuracy {100 * best['value']:.2f}% (trial {best['trial']})")
        typer.echo(
            f"best goal (in {out / 'best_goal.txt'}; train it: infomorphic train --config {out / 'best_config.toml'}):"
        )
        typer.echo(f"  {best['goal']}")


def _stamped(parent: Path, name: str) -> Path:
    """``parent/name-YYYYmmdd-HHMMSS``: a new search directory's default."""
    from datetime import datetime

    return parent / f"{name}-{datetime.now():%Y%m%d-%H%M%S}"


def _study_of(action: str, out: Path | None, storage: str | None, study_name: str | None) -> tuple[str, str]:
    """The storage URL and study name that ``search status`` / ``search export`` read: given, or
    those of the search in ``out`` (ValueError / OSError for a broken search.json)."""
    record = _search_record(out) if out is not None else {}
    storage = storage or record.get("storage")
    if storage is None and out is not None and (out / "study.db").is_file():
        storage = f"sqlite:///{(out / 'study.db').resolve()}"
    if storage is None:
        if out is not None:
            _fail(f"{out} holds no search (no search.json); give --storage URL and --study-name")
        _fail(f"search {action} needs --storage URL (and --study-name), or --out DIR of a search")
    return storage, study_name or record.get("study_name") or "goal-search"


def _export(out: Path | None, storage: str | None, study_name: str | None) -> None:
    """``infomorphic search export``: every trial of the study as one JSON line on stdout."""
    from .goalsearch.warmstart import export_trials

    try:
        records = export_trials(*_study_of("export", out, storage, study_name))
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    for r in records:
        typer.echo(json.dumps(r))


def _status(out: Path | None, storage: str | None, study_name: str | None, as_json: bool) -> None:
    """``infomorphic search status``: the study's trial counts, running trials and best goal."""
    from .goalsearch.search import search_status

    try:
        status = search_status(*_study_of("status", out, storage, study_name))
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(status))
        return
    memory = status.get("task") == "memory"
    whose = "the memory's goal" if memory else f"layer {status['layer']}"
    pruning = "no pruning" if status["pruner"] == "none" else f"{status['pruner']} pruner"
    how = f" ({status['sampler']} sampler, {pruning}, {whose})" if status["sampler"] else ""
    typer.echo(f"study {status['study']} in {status['storage']}{how}")
    typer.echo(
        f"trials: {status['complete']} complete, {status['pruned']} pruned, {status['running']} running, "
        f"{status['failed']} failed, {status['waiting']} waiting ({status['total']} in all"
        + (
            f", {status['warm_start_trials']} of them from --warm-start"
            if status["warm_start_trials"]
            else ""
        )
        + "); "
        f"target {status['target'] if status['target'] is not None else 'not stored'}"
    )
    compute = f"compute: {status['epochs_trained']} epochs, {status['cpu_hours']:.2f} CPU hours"
    if status["cpu_hours_to_target"] is not None:
        compute += (
            f"; about {status['cpu_hours_to_target']:.2f} CPU hours more to the target "
            f"({status['cpu_seconds_per_trial']:.0f} CPU s per finished trial so far)"
        )
    typer.echo(compute)
    if status["running_trials"]:
        gone = ": its process is gone; --resume runs it again"
        where = [
            f"{t['number']} (host {t['host']}, pid {t['pid']}{gone if t.get('process_gone') else ''})"
            if t["host"]
            else str(t["number"])
            for t in status["running_trials"]
        ]
        typer.echo(f"running trials: {', '.join(where)}")
    if status["best_trial"] is None:
        typer.echo("best: none yet (no trial has completed)")
        return
    if memory:
        typer.echo(
            f"best capacity proxy alpha {status['best_value']:g} (trial {status['best_trial']}; largest load "
            f"recalled, per seed {status['best_capacity_per_seed']}), goal:"
        )
    else:
        typer.echo(
            f"best validation accuracy {100 * status['best_value']:.2f}% (trial {status['best_trial']}), goal:"
        )
    typer.echo(f"  {status['best_goal']}")
    region = status.get("trust_region")
    if region is not None:
        typer.echo(
            f"trust region of the next goal: +-{region['radius']:g} per gamma around trial {region['center_trial']} "
            f"({region['successes']} improvements / {region['failures']} failures in a row)"
        )


class _SearchBar:
    """Trials done / total, best value so far and the current best goal."""

    def __init__(self, enabled: bool, total: int | None) -> None:
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("[bold]trials"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self.task = self.bar.add_task("search", total=total, info="")
        self.started = False

    def start(self, study: Any = None) -> None:
        """Show the bar (once the study is open: a storage error prints nothing but its line),
        its total the study's target."""
        if self.enabled and not self.started:
            from .goalsearch.search import study_target

            if study is not None:
                self.bar.update(self.task, total=study_target(study))
            self.bar.start()
            self.started = True

    def update(self, study: Any, settings: Any, best: dict[str, Any] | None) -> None:
        """``on_trial`` of :func:`~.goalsearch.search.run_search`: ``best`` is the record it just wrote."""
        if not self.enabled:
            return
        if best is None:  # no completed trial yet: count the pruned ones
            from .goalsearch.search import counts

            c = counts(study)
        else:
            c = best["counts"]
        if best is None:
            info = ""
        elif settings.task == "memory":  # the value is a load alpha
            info = f"best alpha {best['value']:g} · {_short(best['goal'])}"
        else:
            info = f"best {100 * best['value']:.2f}% · {_short(best['goal'])}"
        self.bar.update(self.task, completed=c.get("COMPLETE", 0) + c.get("PRUNED", 0), info=info)

    def close(self) -> None:
        if self.enabled and self.started:
            self.bar.stop()


# -------------------------------------------------------------------------- ablate
def ablate_command(
    goal: Annotated[
        str | None,
        typer.Option(
            "--goal", help="Goal to analyse (default: the config's hidden goal, else trivariate-mnist-tpe)."
        ),
    ] = None,
    config: _Config = None,
    set_: _Set = None,
    network: _Network = None,
    hidden: _Hidden = None,
    dataset: _Dataset = None,
    data_dir: _DataDir = None,
    epochs: _Epochs = None,
    batch_size: _Batch = None,
    threads: _Threads = None,
    device: _Device = None,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds of every variant.")] = "0,1,2",
    parts: Annotated[
        str, typer.Option(help="Comma-separated parts: single, cumulative, relative, absolute.")
    ] = "single,cumulative,relative,absolute",
    relative: Annotated[float, typer.Option(help="Relative modulation (0.1 = +-10%).")] = 0.1,
    absolute: Annotated[float, typer.Option(help="Absolute modulation (+- this value).")] = 0.1,
    layer: _Layer = "hidden",
    train_subset: _Subset = None,
    study: Annotated[
        Path | None,
        typer.Option(
            "--study", help="Instead: parameter importance (fANOVA, MDI) of the search in this directory."
        ),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="With --study: storage URL (default from its search.json).")
    ] = None,
    study_name: Annotated[str | None, typer.Option("--study-name", help="With --study: study name.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output directory (ablation.json/.csv, PNGs).")
    ] = None,
    progress: _Progress = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sensitivity analysis of a goal (ablate each gamma, cumulatively, modulate), or --study importance."""
    if study is not None:
        return _importance(study, storage, study_name, out, as_json)
    from .goals import Goal
    from .goalsearch.ablate import KINDS, modulations, run_ablation
    from .goalsearch.search import layer_goal, layer_letters, load_search_data

    try:
        seed_list = [int(s) for s in seeds.replace(" ", "").split(",") if s]
        part_list = [p for p in parts.replace(" ", "").split(",") if p]
        bad = [p for p in part_list if p not in KINDS]
        if bad or not part_list:
            _fail(f"--parts takes {', '.join(KINDS)}, got {parts!r}")
        cfg = _train_config(
            config,
            set_,
            network=network,
            hidden=hidden,
            dataset=dataset,
            data_dir=data_dir,
            epochs=epochs,
            batch_size=batch_size,
            threads=threads,
            device=device,
        )
        letters = layer_letters(cfg, layer)
        current = layer_goal(cfg, layer)
        if isinstance(current, Goal):
            current = current.to_expression()
        the_goal = Goal.resolve(goal or current or "trivariate-mnist-tpe", letters)
        modulations(the_goal, relative, absolute, part_list)  # validates every modulated goal up front
        if out is None:
            from datetime import datetime

            out = Path(cfg.out_dir) / f"ablate-{cfg.network}-{cfg.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
        data = load_search_data(cfg, train_subset)
        n = len(the_goal.gamma)
        per_kind = {"single": n, "cumulative": n, "relative": 2 * n, "absolute": 2 * n}
        total = (
            1
            + sum(per_kind[p] for p in part_list)
            + (n if "cumulative" in part_list and "single" not in part_list else 0)
        ) * len(seed_list)
        from .cli import stops_say
        from .runs import claim_run_dir

        # one ablation per folder at a time: a second one is refused before it trains anything
        claim = claim_run_dir(
            out, resume=False, markers=(), busy="wait for it to finish or give another --out"
        )
        bar = _RunBar(progress and not as_json, total)
        try:
            with (
                claim,
                stops_say(
                    lambda: (
                        f"stopped; the finished runs are kept in {out}. Continue with the same command and --out {out}"
                    )
                ),
            ):
                record = run_ablation(
                    cfg,
                    the_goal,
                    out,
                    seeds=seed_list,
                    kinds=part_list,
                    layer=layer,
                    relative=relative,
                    absolute=absolute,
                    data=data,
                    on_run=bar.update,
                )
        finally:
            bar.close()
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(record))
        return
    _print_ablation(record, out)


class _RunBar:
    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self.task = self.bar.add_task("ablate", total=total, info="")
            self.bar.start()

    def update(self, variant: Any, seed: int, summary: dict[str, Any]) -> None:
        if self.enabled:
            self.bar.update(
                self.task, advance=1, info=f"{variant.label} seed {seed}: val {100 * summary['val_acc']:.2f}%"
            )

    def close(self) -> None:
        if self.enabled:
            self.bar.stop()


def _print_ablation(record: dict[str, Any], out: Path) -> None:
    console = Console()
    ref = record["reference"]
    table = Table(
        title=f"ablation of {_short(record['goal'])} ({len(record['seeds'])} seeds; accuracy %, mean [min, max])"
    )
    for col in ("kind", "variant", "validation", "test", "Δ val"):
        table.add_column(col, justify="left" if col in ("kind", "variant") else "right")
    for r in [ref, *record["rows"]]:
        table.add_row(
            r["kind"],
            r["label"],
            f"{100 * r['val_mean']:.2f} [{100 * r['val_min']:.2f}, {100 * r['val_max']:.2f}]",
            f"{100 * r['test_mean']:.2f} [{100 * r['test_min']:.2f}, {100 * r['test_max']:.2f}]",
            f"{100 * (r['val_mean'] - ref['val_mean']):+.2f}",
        )
    console.print(table)
    console.print(f"written: {out / 'ablation.json'}, {out / 'ablation.csv'}, {out}/ablation_*.png")


def _importance(
    study_dir: Path, storage: str | None, study_name: str | None, out: Path | None, as_json: bool
) -> None:
    from .goalsearch.importance import write_importances
    from .goalsearch.search import load_search

    try:
        record = _search_record(study_dir)
        storage = storage or record.get("storage")
        if storage is None:
            _fail(f"{study_dir} holds no search.json; give --storage and --study-name")
        study, _ = load_search(storage, study_name or record.get("study_name", "goal-search"))
        result = write_importances(study, out or study_dir)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"parameter importance ({result['completed_trials']} completed trials)")
    for col in ("parameter", "fANOVA", "MDI"):
        table.add_column(col, justify="left" if col == "parameter" else "right")
    for name, value in result["fanova"].items():
        table.add_row(name, f"{value:.3f}", f"{result['mdi'].get(name, 0.0):.3f}")
    Console().print(table)
    typer.echo(f"written: {(out or study_dir) / 'importance.json'}, {(out or study_dir) / 'importance.png'}")


# -------------------------------------------------------------------------- report
def report_command(
    run_dir: Annotated[
        Path, typer.Argument(metavar="RUN_DIR", help="A run directory written by infomorphic train.")
    ],
    out: Annotated[Path | None, typer.Option("--out", help="Report folder (default RUN_DIR/report).")] = None,
    data: Annotated[
        bool,
        typer.Option(
            "--data/--no-data",
            help="Load the dataset for firing probabilities and the logistic-regression comparison.",
        ),
    ] = True,
) -> None:
    """Static HTML report (images embedded) and PNG figures of a trained run."""
    from .goalsearch.report import build_report

    if not run_dir.is_dir():
        _fail(f"{run_dir} is not a directory")
    try:
        path = build_report(run_dir, out, with_data=data)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    typer.echo(f"report: {path}")
    typer.echo(f"figures: {path.parent / 'figures'}")


def register(app: typer.Typer) -> None:
    """Add this module's subcommands to the ``infomorphic`` app."""
    app.command("search")(search_command)
    app.command("ablate")(ablate_command)
    app.command("report")(report_command)
