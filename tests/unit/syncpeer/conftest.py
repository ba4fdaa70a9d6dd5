"""Fixtures for syncpeer's unit tests: seeded randomness and ready-made identities."""

from __future__ import annotations

import random as stdlib_random
from collections.abc import Callable

import pytest

from syncpeer.core.identity import Identity, RandomSource


@pytest.fixture
def rng() -> RandomSource:
    """Deterministic random bytes, so every test run seals the same envelopes."""
    return stdlib_random.Random(1234).randbytes


@pytest.fixture
def make_identity(rng: RandomSource) -> Callable[[str], Identity]:
    def make(name: str) -> Identity:
        return Identity.generate(name, rng)

    return make
