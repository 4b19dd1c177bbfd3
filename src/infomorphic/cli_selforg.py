"""Subcommands of ``infomorphic`` for self-organisation tasks (bars, associative memory, capacity).

``infomorphic train --task bars|memory`` dispatches to :func:`train_task`; ``infomorphic
capacity`` is added by :func:`register`.  Bad options exit with code 2 and one ``error:`` line.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register", "train_task", "parse_sets", "TASKS"]

TASKS = ("supervised", "bars", "memory")
POINTS_FILE = "points.jsonl"
"""A capacity sweep's finished points, one JSON line each, written as they finish."""


def _fail(message: str) -> Any:
    from .cli import _fail as fail

    fail(message)


def parse_sets(items: list[str] | None, config_cls: type) -> dict[str, Any]:
    """``KEY=VALUE`` overrides of a task dataclass; values parsed by ``ast.literal_eval`` (else kept as text)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        if key not in fields:
            raise ValueError(f"unknown key {key!r} for --set; keys: {', '.join(fields)}")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        default = getattr(config_cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if default is not None and not isinstance(value, type(default)):
            raise ValueError(f"--set {key} expects {type(default).__name__}, got {value!r}")
        out[key] = value
    return out


def _live(enabled: bool, total: int, label: str) -> tuple[Any, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
        disable=not enabled,
    )
    task = bar.add_task(label, total=total, info="")
    return bar, task


def train_task(
    task: str,
    *,
    seed: int | None,
    epochs: int | None,
    variant: str | None,
    neurons: int | None,
    alpha: float | None,
    goal: str | None,
    out_dir: str | None,
    name: str | None,
    sets: list[str] | None,
    progress: bool,
    as_json: bool,
    unused: dict[str, Any],
) -> None:
    """``infomorphic train --task bars|memory``: train one network and write a run directory."""
    from .tasks.bars import BarsConfig
    from .tasks.memory import MemoryConfig
    from .tasks.runner import new_run_dir, run_bars, run_memory

    if task not in TASKS:
        _fail(f"unknown --task {task!r}; choose from {', '.join(TASKS)}")
    if task == "supervised":
        _fail("--variant belongs to --task bars, --neurons and --alpha to --task memory")
    given = sorted(k for k, v in unused.items() if v is not None)
    if given:
        _fail(f"--task {task} does not use {', '.join('--' + k.replace('_', '-') for k in given)}")
    try:
        if task == "bars":
            if neurons is not None or alpha is not None:
                _fail("--task bars has one neuron per bar; --neurons and --alpha belong to --task memory")
            kw: dict[str, Any] = parse_sets(sets, BarsConfig)
            kw.update(
                {
                    k: v
                    for k, v in {"seed": seed, "epochs": epochs, "variant": variant, "goal": goal}.items()
                    if v is not None
                }
            )
            cfg: Any = BarsConfig(**kw).resolved()
            total = cfg.epochs
        else:
            if variant is not None:
                _fail("--variant belongs to --task bars")
            kw = parse_sets(sets, MemoryConfig)
            kw.update(
                {
                    k: v
                    for k, v in {
                        "seed": seed,
                        "max_epochs": epochs,
                        "n_neurons": neurons,
                        "alpha": alpha,
                        "goal": goal,
                    }.items()
                    if v is not None
                }
            )
            cfg = MemoryConfig(**kw)
            total = cfg.max_epochs
        claim = new_run_dir(out_dir or "runs", name, f"{task}-seed{cfg.seed}")
        run_dir = claim.path
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    bar, handle = _live(progress and not as_json, total, task)
    with claim, bar:
        if task == "bars":

            def report(r: dict[str, Any]) -> None:
                bar.update(handle, completed=r["epoch"], info=f"bars coded {r['bars_coded']}/{cfg.n_bars}")

            summary = run_bars(cfg, run_dir, report)
        else:

            def report(r: dict[str, Any]) -> None:
                bar.update(handle, completed=r["epoch"], info=f"score {r['score']:.3f}")

            summary = run_memory(cfg, run_dir, report)
    if as_json:
        typer.echo(json.dumps(summary, default=float))
        return
    console = Console()
    console.print(f"run directory: {summary['run_dir']}")
    if task == "bars":
        console.print(
            f"bars coded {summary['bars_coded']}/{summary['n_bars']} (best neuron >= "
            f"{summary['threshold_bits']:.3f} bit, distinct); solved: {summary['solved']}"
        )
    else:
        table = Table(
            title=f"mean overlap after recall, N = {summary['n_neurons']}, M = {summary['n_patterns']}"
        )
        table.add_column("memory")
        noise = list(next(iter(summary["scores_by_noise"].values())))
        for f in noise:
            table.add_column(f"flip {f}", justify="right")
        for method, row in summary["scores_by_noise"].items():
            table.add_row(method, *(f"{row[f]:.3f}" for f in noise))
        console.print(table)
        console.print(f"{summary['epochs']} epochs ({summary['stopped']}), {summary['seconds']:.1f} s")


def register(app: typer.Typer) -> None:
    """Add this module's subcommands to the ``infomorphic`` app."""

    @app.command("capacity")
    def capacity_command(
        ctx: typer.Context,
        neurons: Annotated[int, typer.Option(help="Neurons N.")] = 100,
        seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
        grid: Annotated[str, typer.Option(help="Loads alpha = M/N as start:stop:step.")] = "0.01:2.01:0.05",
        methods: Annotated[
            str,
            typer.Option(
                help="Comma-separated: infomorphic, hebbian, storkey, pseudo-inverse, descent-l2, mpf, modern."
            ),
        ] = "infomorphic,hebbian,storkey,pseudo-inverse,descent-l2,mpf,modern",
        workers: Annotated[int, typer.Option(help="Worker processes (one torch thread each).")] = 2,
        max_epochs: Annotated[
            int, typer.Option("--max-epochs", help="Training epochs at most (early stop at perfect recall).")
        ] = 5000,
        goal: Annotated[str, typer.Option(help="Goal over sources T (external), R (recurrent).")] = "{T}{R}",
        train_noise: Annotated[
            float,
            typer.Option(
                "--train-noise",
                help="Infomorphic training: fraction of bits flipped in the state that drives R (0: clean).",
            ),
        ] = 0.0,
        unroll: Annotated[
            int, typer.Option(help="Infomorphic training: recurrent steps from the noisy state (1: none).")
        ] = 1,
        cue_noise: Annotated[
            str,
            typer.Option(
                "--cue-noise",
                help="Comma-separated fractions of flipped cue bits: capacity at each (e.g. 0,0.05,0.1,0.2).",
            ),
        ] = "0",
        sets: Annotated[
            list[str] | None,
            typer.Option("--set", help="Any other memory config key: --set lr=0.01 (repeatable)."),
        ] = None,
        stream: Annotated[
            str | None,
            typer.Option(
                help="Instead of the sweep: a stream of patterns arriving this many at a time, comma-separated "
                "(e.g. 1,5,10); palimpsest capacity and blackout per online rule (tasks/online.py)."
            ),
        ] = None,
        stream_length: Annotated[
            int | None, typer.Option("--stream-length", help="Patterns in the stream (default 5 N).")
        ] = None,
        stream_methods: Annotated[
            str,
            typer.Option(
                "--stream-methods",
                help="Comma-separated: infomorphic, infomorphic-adam, hebbian, storkey, hebbian-bounded, "
                "hebbian-decay.",
            ),
        ] = "infomorphic,infomorphic-adam,hebbian,storkey,hebbian-bounded,hebbian-decay",
        steps: Annotated[int, typer.Option(help="--stream: infomorphic steps per arrival.")] = 20,
        threshold: Annotated[float, typer.Option(help="Success: score >= threshold.")] = 0.95,
        out_dir: Annotated[
            str, typer.Option("--out-dir", help="Parent folder of the run directory.")
        ] = "runs",
        name: Annotated[str | None, typer.Option(help="Run directory name (default: generated).")] = None,
        progress: Annotated[
            bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
        ] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
        resume: Annotated[
            Path | None,
            typer.Option(
                "--resume",
                help="Continue the sweep in this run directory with its stored settings (only --workers, "
                "--progress and --json may be given): the points it finished are kept.",
            ),
        ] = None,
    ) -> None:
        """Sweep the load alpha = M/N, train a fresh memory per point, report the capacity alpha_c per method.

        Every finished point is written to points.jsonl in the run directory at once, so a sweep
        that is killed (kill -9, Ctrl-C, a machine handed back) continues with --resume RUN_DIR
        and ends with the same points and capacities as one that ran through.
        """
        import time

        from .runs import write_json, write_jsonl
        from .tasks import plots
        from .tasks.capacity import capacity_from_points, noise_capacity_table, sweep

        if stream is not None:
            _stream_command(
                neurons=neurons,
                seeds=seeds,
                arrivals=stream,
                length=stream_length,
                methods=stream_methods,
                steps=steps,
                goal=goal,
                sets=sets,
                basins=train_noise != 0 or unroll != 1,
                out_dir=out_dir,
                name=name,
                progress=progress,
                as_json=as_json,
            )
            return
        done: list[dict[str, Any]] = []
        if resume is not None:
            cfg, claim, done = _resumed_capacity_sweep(ctx, resume, workers)
            run_dir = claim.path
        else:
            cfg, claim = _new_capacity_sweep(
                neurons,
                seeds,
                grid,
                methods,
                workers,
                max_epochs,
                goal,
                train_noise,
                unroll,
                cue_noise,
                sets,
                threshold,
                out_dir,
                name,
            )
            run_dir = claim.path
        neurons, seed_list, threshold = cfg.memory.n_neurons, cfg.seeds, cfg.threshold
        with claim:
            if resume is None:
                write_json(run_dir / "config.json", {"task": "capacity", "config": cfg.to_dict()})
            bar, handle = _live(progress and not as_json, len(cfg.alphas) * len(cfg.seeds), "capacity")
            bar.advance(handle, len(done))
            finished = list(done)

            def on_point(point: dict[str, Any]) -> None:
                finished.append(point)
                write_jsonl(run_dir / POINTS_FILE, finished)  # atomic: a kill never loses a finished point
                bar.advance(handle)

            from .cli import stops_say

            t0 = time.perf_counter()
            total = len(cfg.alphas) * len(cfg.seeds)
            with (
                bar,
                stops_say(
                    lambda: (
                        f"stopped; {len(finished)} of {total} points are saved in {run_dir}. "
                        f"Continue with: infomorphic capacity --resume {run_dir}"
                    )
                ),
            ):
                points = sweep(cfg, on_point, done)
            seconds = time.perf_counter() - t0
            cap = capacity_from_points(points, cfg.methods, cfg.threshold)
            noisy = cfg.cue_noise != (0.0,)
            result: dict[str, Any] = {
                "run_dir": str(run_dir),
                "neurons": neurons,
                "seeds": list(seed_list),
                "seconds": seconds,
                "resumed_points": len(done),
                "workers": workers,
                "capacity": cap,
                **(
                    {"noise_capacity": noise_capacity_table(points, cfg.methods, cfg.cue_noise, threshold)}
                    if noisy
                    else {}
                ),
                "points": points,
            }
            write_json(run_dir / "summary.json", result)
            plots.capacity_figure(points, cap, run_dir / "capacity.png", threshold)
        _print_capacity(result, cfg, as_json)


def _resumed_capacity_sweep(
    ctx: typer.Context, resume: Path, workers: int
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """The stored config of the capacity sweep in ``resume`` (with ``workers``), the claim on
    its run directory and the points it finished; exits with one ``error:`` line when options
    other than --workers, --progress and --json were given, or the folder holds no such sweep."""
    from .runs import claim_run_dir, read_json, read_jsonl
    from .tasks.capacity import CapacityConfig, sweep_points

    given = [
        f"--{name.replace('_', '-')}"
        for name in ctx.params
        if name not in ("workers", "progress", "as_json", "resume")
        and getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
    ]
    if given:
        _fail(
            f"--resume continues the sweep as configured in {resume / 'config.json'}; only --workers, "
            f"--progress and --json may be given, got {', '.join(given)}"
        )
    try:
        if not (resume / "config.json").is_file():
            raise ValueError(f"cannot resume: {resume} holds no capacity sweep (no config.json)")
        record = read_json(resume / "config.json", "a capacity sweep's config.json")
        if record.get("task") != "capacity" or not isinstance(record.get("config"), dict):
            raise ValueError(
                f"cannot resume: {resume} is not a capacity sweep (its config.json is for "
                f"{record.get('task') or 'another command'}); continue it with the command that wrote it"
            )
        cfg = CapacityConfig.from_dict({**record["config"], "workers": workers})
        claim = claim_run_dir(resume, resume=True, markers=("config.json",))
        try:
            done = sweep_points(cfg, read_jsonl(claim.path / POINTS_FILE))
        except ValueError as exc:
            claim.release()
            raise ValueError(f"cannot resume {claim.path}: {POINTS_FILE}: {exc}") from None
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    return cfg, claim, done


def _new_capacity_sweep(
    neurons: int,
    seeds: str,
    grid: str,
    methods: str,
    workers: int,
    max_epochs: int,
    goal: str,
    train_noise: float,
    unroll: int,
    cue_noise: str,
    sets: list[str] | None,
    threshold: float,
    out_dir: str,
    name: str | None,
) -> tuple[Any, Any]:
    """The config of a new capacity sweep from the command's options, and the claim on its new
    run directory; exits with one ``error:`` line on bad options."""
    from .tasks.capacity import CapacityConfig, default_grid
    from .tasks.memory import MemoryConfig
    from .tasks.runner import new_run_dir

    try:
        kw = parse_sets(sets, MemoryConfig)
        own = sorted(set(kw) & {"n_neurons", "max_epochs", "goal", "train_noise", "unroll", "alpha", "seed"})
        if own:
            raise ValueError(
                f"--set {own[0]} is not for capacity: the load and seed come from --grid and --seeds; "
                "use --neurons, --max-epochs, --goal, --train-noise, --unroll"
            )
        try:
            noise_list = tuple(float(f) for f in cue_noise.split(","))
        except ValueError:
            raise ValueError(f"--cue-noise expects comma-separated fractions, got {cue_noise!r}") from None
        parts = grid.split(":")
        if len(parts) != 3:
            raise ValueError(f"--grid expects start:stop:step, got {grid!r}")
        try:
            start, stop, step = (float(p) for p in parts)
            seed_list = tuple(int(s) for s in seeds.split(","))
        except ValueError:
            raise ValueError(
                f"--grid needs three numbers and --seeds integers, got {grid!r} and {seeds!r}"
            ) from None
        cfg = CapacityConfig(
            memory=MemoryConfig(
                n_neurons=neurons,
                max_epochs=max_epochs,
                goal=goal,
                train_noise=train_noise,
                unroll=unroll,
                **kw,
            ),
            alphas=tuple(default_grid(start, stop, step)),
            seeds=seed_list,
            methods=tuple(m.strip() for m in methods.split(",")),
            threshold=threshold,
            workers=workers,
            cue_noise=noise_list,
        )
        claim = new_run_dir(out_dir, name, f"capacity-n{neurons}", resumable=True)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    return cfg, claim


def _print_capacity(result: dict[str, Any], cfg: Any, as_json: bool) -> None:
    """The result of a capacity sweep as one JSON line, or as tables."""
    neurons, threshold, seed_list = cfg.memory.n_neurons, cfg.threshold, cfg.seeds
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k != "points"}, default=float))
        return
    cap, noisy = result["capacity"], "noise_capacity" in result
    console = Console()
    console.print(
        f"run directory: {result['run_dir']}  ({result['seconds']:.0f} s, {result['workers']} workers)"
    )
    table = Table(title=f"capacity alpha_c (largest alpha with score >= {threshold}), N = {neurons}")
    table.add_column("memory")
    table.add_column("mean +- std", justify="right")
    table.add_column("per seed", justify="right")
    for m in cfg.methods:
        c = cap[m]
        table.add_row(
            m,
            f"{c['alpha_c_mean']:.2f} +- {c['alpha_c_std']:.2f}",
            ", ".join(f"{v:g}" for v in c["alpha_c_per_seed"].values()),
        )
    console.print(table)
    if noisy:
        console.print(_noise_capacity_rich(result["noise_capacity"], neurons, len(seed_list)))


def _noise_capacity_rich(nc: dict[str, Any], neurons: int, n_seeds: int) -> Table:
    """The table of :func:`~infomorphic.tasks.capacity.noise_capacity_table`: method x cue noise."""
    table = Table(
        title=f"capacity at cue noise (largest alpha with score >= {nc['threshold']}), N = {neurons}, "
        f"median (min-max) over {n_seeds} seeds"
    )
    table.add_column("memory")
    keys = [f"{f:g}" for f in nc["cue_noise"]]
    for k in keys:
        table.add_column(f"flip {k}", justify="right")
    for method, row in nc["table"].items():
        table.add_row(method, *(f"{row[k]['median']:g} ({row[k]['min']:g}-{row[k]['max']:g})" for k in keys))
    return table


def _stream_command(
    *,
    neurons: int,
    seeds: str,
    arrivals: str,
    length: int | None,
    methods: str,
    steps: int,
    goal: str,
    sets: list[str] | None,
    basins: bool,
    out_dir: str,
    name: str | None,
    progress: bool,
    as_json: bool,
) -> None:
    """``infomorphic capacity --stream 1,5,10``: :func:`~infomorphic.tasks.online.stream_storage`, run directory, table."""
    import time

    from .runs import write_json
    from .tasks.memory import MemoryConfig
    from .tasks.online import STREAM_METHODS, StreamConfig, online_options, stream_figures, stream_storage
    from .tasks.runner import new_run_dir

    try:
        if basins:
            raise ValueError("--train-noise and --unroll are not used by --stream")
        try:
            arrival_list = [int(a) for a in arrivals.split(",")]
            seed_list = [int(s) for s in seeds.split(",")]
        except ValueError:
            raise ValueError(
                f"--stream and --seeds expect integers, got {arrivals!r} and {seeds!r}"
            ) from None
        method_list = [m.strip() for m in methods.split(",")]
        unknown = [m for m in method_list if m not in STREAM_METHODS]
        if unknown:
            raise ValueError(f"unknown stream methods {unknown}; choose from {', '.join(STREAM_METHODS)}")
        kw = parse_sets(sets, MemoryConfig)
        if "n_neurons" in kw or "seed" in kw:
            raise ValueError("--set n_neurons / seed: use --neurons and --seeds")
        memory = MemoryConfig(n_neurons=neurons, goal=goal, **kw)
        for a in arrival_list:
            StreamConfig(n_neurons=neurons, length=length, arrival=a)  # validates
        options = online_options(neurons, steps)
        claim = new_run_dir(out_dir, name, f"stream-n{neurons}")
        run_dir = claim.path
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    with claim:
        config = {
            "task": "stream",
            "memory": memory.to_dict(),
            "options": options.to_dict(),
            "arrivals": arrival_list,
            "seeds": seed_list,
            "methods": method_list,
            "length": length,
        }
        write_json(run_dir / "config.json", config)
        total = len(arrival_list) * len(seed_list) * len(method_list)
        bar, handle = _live(progress and not as_json, total, "stream")
        t0 = time.perf_counter()
        with bar:
            out = stream_storage(
                memory,
                arrivals=arrival_list,
                seeds=seed_list,
                methods=method_list,
                options=options,
                length=length,
                on_result=lambda r: bar.update(handle, advance=1, info=f"{r['method']} x{r['arrival']}"),
            )
        seconds = time.perf_counter() - t0
        figures = stream_figures(out, run_dir)
        for run in out["runs"]:  # flags by age as strings of 0/1
            for p in run["probes"]:
                for kind in ("clean", "noisy"):
                    if kind in p:
                        p[kind] = "".join(map(str, p[kind]))
        result = {"run_dir": str(run_dir), "seconds": seconds, "figures": [str(f) for f in figures], **out}
        write_json(run_dir / "summary.json", result)
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k != "runs"}, default=float))
        return
    console = Console()
    console.print(f"run directory: {run_dir}  ({seconds:.0f} s)")
    table = Table(
        title=f"stream of {out['length']} patterns, N = {neurons}: most recent patterns all recalled / "
        f"recalled (steady state), clean | 10 % flipped cue; mean over {len(seed_list)} seed(s)"
    )
    table.add_column("memory")
    for a in arrival_list:
        table.add_column(f"arrivals of {a}", justify="right")
    for m in method_list:
        cells = []
        for a in arrival_list:
            c = out["table"][m][str(a)]
            blackout = [b for b in c["blackout_at"] if b is not None]
            cells.append(
                f"{c['steady_recent_all_clean']:.1f} / {c['steady_recalled_clean']:.1f} | "
                f"{c['steady_recent_all_noisy']:.1f} / {c['steady_recalled_noisy']:.1f}"
                + (f" (blackout at {', '.join(map(str, blackout))})" if blackout else "")
            )
        table.add_row(m, *cells)
    console.print(table)
