"""One run seed -> independent, named random generators (no global RNG state is touched)."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["child_seed", "generator"]


def child_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from the run seed and a component name (e.g. ``"init"``, ``("shuffle", 3)``)."""
    text = ":".join([str(seed), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def generator(seed: int, *names: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`child_seed`."""
    g = torch.Generator(device=device)
    g.manual_seed(child_seed(seed, *names))
    return g
