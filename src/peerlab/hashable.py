"""Decoded data as a dict key or a set member, for the readers of formats whose maps and sets
may hold any value (EDN, RESP3): lists become tuples, maps tuples of their pairs."""

from __future__ import annotations

from typing import Any


def hashable(value: Any) -> Any:
    """`value` with every list and dict inside it made hashable; other values as they are."""
    if isinstance(value, list):
        return tuple(hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple((key, hashable(item)) for key, item in value.items())
    return value
