"""One seed rules a run: every random choice draws from a generator derived from it."""

from __future__ import annotations

import hashlib
import random
import secrets


def new_seed() -> int:
    """A fresh seed for a run that was not given one (printed so it can be replayed)."""
    return secrets.randbits(32)


def derive_seed(seed: int, *labels: object) -> int:
    """A stable 64-bit sub-seed for `labels` (a link, a node, a nemesis) under `seed`."""
    text = "\x1f".join([str(seed), *(str(label) for label in labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def derive_rng(seed: int, *labels: object) -> random.Random:
    """An independent generator for `labels`: same seed and labels, same choices."""
    return random.Random(derive_seed(seed, *labels))
