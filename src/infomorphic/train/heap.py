"""Keep freed memory in the process for reuse: a training step allocates the same large tensors
every time, and memory handed back to the operating system costs a page fault per 4 KiB page on
its next use.

PyTorch's CPU tensors come from the C library's ``malloc``.  With glibc's defaults a freed
block of several MiB is returned to the system (``munmap``, or trimming the heap's top once more
than 128 KiB-32 MiB is free there), so every step touches fresh pages again: a training step of
setup 2 with 2000 hidden neurons took 4000-10000 page faults, at about 1.3 us each on our 2-core
test machine (5-13 ms of a 150-200 ms step; ``benchmarks/README.md``).
:func:`keep_freed_memory` sets glibc's two thresholds so that blocks up to 32 MiB come from the
heap and the heap is not trimmed: the process then keeps its peak heap size (what it needed
anyway) instead of giving it back and faulting it in again.  It changes no number a run
computes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Bytes: blocks up to this size come from the heap, not from their own mapping (glibc's maximum)."""

TRIM_THRESHOLD = 2**31 - 1
"""Bytes of free memory at the heap's top before glibc gives it back (the largest value a C
``int`` holds, 2 GiB: more than a training process of these networks frees at once)."""

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# settings a user made through glibc's own environment variables win
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def keep_freed_memory() -> bool:
    """Ask glibc's ``malloc`` to keep freed memory for reuse (see the module docstring).

    Called by :func:`~infomorphic.train.fit` (every ``infomorphic train`` run, search trial and
    experiment); call it once yourself when you train with :class:`~infomorphic.train.Trainer`
    in your own process.  It affects the whole process and lasts for its lifetime.

    Returns:
        ``True`` when the thresholds were set; ``False`` (and nothing changed) when the C library
        is not glibc (macOS, musl), or when the environment already sets one of glibc's
        ``MALLOC_*_`` variables (the user's choice is kept).
    """
    if not sys.platform.startswith("linux") or any(name in os.environ for name in _USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
