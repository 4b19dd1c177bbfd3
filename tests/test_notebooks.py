"""The tutorial notebooks (notebooks/*.ipynb) run from top to bottom without an error.

Each notebook is executed in a fresh Jupyter kernel of this interpreter (nbclient + ipykernel),
on small data (toy pmfs, scikit-learn's digits), and asserts on the values it computes, so a
change of the API or of the numbers that breaks a tutorial fails here.  The notebooks are stored
without outputs; executing them here writes nothing back.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds; each notebook takes well under a minute on 2 cores
KERNEL = "infomorphic-tests"


def test_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(names) >= 5, names
    assert [n[:3] for n in names] == [f"{i:02d}_" for i in range(1, len(names) + 1)], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_stored_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has stored outputs (clear them)"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"


def _client_modules() -> tuple[Any, Any]:
    try:
        import ipykernel  # noqa: F401  (the kernel nbclient starts)
        import nbclient
        import nbformat
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.fail(
            f"the notebook tests need nbclient, nbformat and ipykernel ({exc}); "
            "install them with: bash scripts/setup.sh test  (or pip install -e '.[notebooks]')"
        )
    return nbclient, nbformat


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbclient, nbformat = _client_modules()
    # the kernel inherits this environment: one torch thread per kernel (the suite runs two
    # workers on two cores), a non-interactive matplotlib, nothing written into the repository
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    # a kernel spec of this very interpreter, found first (JUPYTER_PATH comes before the user's
    # and the environment's kernel folders), so no other "python3" kernel can be picked up
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "infomorphic tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    nb = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL,
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
    seconds = time.perf_counter() - start
    sys.stderr.write(f"{path.name}: {seconds:.1f} s\n")
    executed = [c for c in nb.cells if c.cell_type == "code"]
    assert executed and all(c.execution_count is not None for c in executed)
