"""The compiled CPU kernel of the training path, built on first use.

``_sx_kernel.cpp`` fuses, per neuron, the table building, the per-sample inclusion-exclusion,
the logarithms and the sums of :func:`infomorphic.pid.samples.sx_pid_from_samples`, and its
backward pass; neurons run in parallel on torch's thread pool.  It is compiled with
``torch.utils.cpp_extension`` (a C++ compiler and ``ninja`` are needed; the build is cached in
``$TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``).  Where it cannot be
built, or when ``INFOMORPHIC_KERNEL=0``, the pure PyTorch path is used; both give the same
values (tests compare them).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from functools import lru_cache
from pathlib import Path
from types import ModuleType

__all__ = ["load_kernel", "kernel_enabled"]

log = logging.getLogger(__name__)


def kernel_enabled() -> bool:
    """False when the environment variable ``INFOMORPHIC_KERNEL`` is ``0``."""
    return os.environ.get("INFOMORPHIC_KERNEL", "1") != "0"


@lru_cache(maxsize=1)
def load_kernel() -> ModuleType | None:
    """The compiled kernel module, or ``None`` (with one warning) if it cannot be built."""
    try:
        from torch.utils.cpp_extension import load

        source = Path(__file__).with_name("_sx_kernel.cpp")
        # one build folder per source text and location: checkouts and versions never share one
        # (a shared folder would be rebuilt each time another checkout loads its kernel)
        digest = hashlib.sha256(source.read_bytes() + str(source.resolve()).encode()).hexdigest()[:16]
        start = time.perf_counter()
        module = load(
            name=f"infomorphic_sx_kernel_{digest}",
            sources=[str(source)],
            extra_cflags=["-O3", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            verbose=False,
        )
        seconds = time.perf_counter() - start
        if seconds > 5:  # a build, not a cached load
            log.info("built the compiled I^sx kernel in %.0f s (cached for later runs)", seconds)
        return module
    except Exception as exc:  # noqa: BLE001 - any build failure falls back to PyTorch
        log.warning("the compiled I^sx kernel is unavailable (%s); using the PyTorch path", exc)
        return None
