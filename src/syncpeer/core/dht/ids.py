"""Node ids and the XOR metric.

A node id is the 160-bit number whose hex form is the node's fingerprint: the first 160 bits
of SHA-256 over its Ed25519 public key. So an id cannot be chosen, only ground for by making
keys, and the key a node signs its messages with proves the id it claims. A record's key is
the fingerprint of the node it describes, which is also that node's id.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from syncpeer.core.identity import RandomSource, fingerprint_of
from syncpeer.core.mutants import NO_MUTANTS, Mutants

ID_BITS = 160
ID_BYTES = ID_BITS // 8
_HEX_ID = re.compile(r"[0-9a-f]{40}")


def node_id_of(sign_key: bytes) -> int:
    return int(fingerprint_of(sign_key), 16)


def id_hex(node_id: int) -> str:
    return f"{node_id:040x}"


def parse_id(text: object, field: str = "id") -> int:
    """A 40-hex-digit fingerprint as an id; ValueError naming `field` otherwise."""
    if not isinstance(text, str) or not _HEX_ID.fullmatch(text):
        raise ValueError(f"{field} must be 40 lowercase hex digits (a fingerprint), got {text!r}")
    return int(text, 16)


Metric = Callable[[int, int], int]


def distance(a: int, b: int) -> int:
    return a ^ b


def _difference(a: int, b: int) -> int:
    return abs(a - b)


def metric(mutants: Mutants = NO_MUTANTS) -> Metric:
    """The distance routing and lookups order contacts by: XOR, unless the
    `wrong-distance` mutant swaps in the numeric difference (close, yet wrong)."""
    return _difference if "wrong-distance" in mutants else distance


def bucket_index(own: int, other: int) -> int:
    """Which k-bucket `other` belongs in: bucket i holds distances in [2**i, 2**(i+1))."""
    if own == other:
        raise ValueError("a node has no bucket for its own id")
    return (own ^ other).bit_length() - 1


def random_id_in_bucket(own: int, index: int, random: RandomSource) -> int:
    """A random id at a distance from `own` that falls in bucket `index` (to refresh it)."""
    low_bits = int.from_bytes(random(ID_BYTES), "big") & ((1 << index) - 1)
    return own ^ ((1 << index) | low_bits)
