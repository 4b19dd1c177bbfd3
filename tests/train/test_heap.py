"""Tests for infomorphic.train.heap: freed memory kept for reuse (fewer page faults per step).

Each check runs in a fresh interpreter: the allocator's settings are the whole process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infomorphic.train import loop

glibc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="mallopt's thresholds are glibc's",
)

# Allocate 96 MiB as 12 blocks of 8 MiB, touch them, free them all, then do it again: the page
# faults of the second round are what a training step pays each time for its large tensors.
_ROUNDS = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    from infomorphic.train.heap import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None

    def round_():
        blocks = [torch.ones(2 * 1024 * 1024) for _ in range(12)]  # 8 MiB each
        del blocks

    round_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    round_()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(json.dumps({"kept": kept, "faults": faults, "pages": 96 * 1024 * 1024 // 4096}))
    """
)


def _rounds(mode: str, env: dict[str, str] | None = None) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environ.update(env or {})
    out = subprocess.run(
        [sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True, env=environ, check=True
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@glibc
def test_kept_memory_is_reused_without_page_faults() -> None:
    default = _rounds("default")
    kept = _rounds("keep")
    assert kept["kept"] is True
    pages = int(str(kept["pages"]))
    # glibc's defaults hand the freed blocks back, so the second round faults most pages in again
    # (the test would not tell anything if they did not)
    assert int(str(default["faults"])) > 0.5 * pages, default
    assert int(str(kept["faults"])) < 0.25 * pages, kept


@glibc
def test_the_users_own_malloc_settings_are_kept() -> None:
    result = _rounds("keep", {"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert result["kept"] is False
    assert int(str(result["faults"])) > 0.5 * int(str(result["pages"]))


def test_fit_keeps_freed_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tiny_train import digits_config

    calls: list[bool] = []
    monkeypatch.setattr(loop, "keep_freed_memory", lambda: calls.append(True) or True)
    loop.fit(digits_config(tmp_path, hidden=4, epochs=1), progress=False)
    assert calls == [True]
