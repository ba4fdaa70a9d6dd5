"""S/Kademlia's static puzzle: a node id is only accepted when SHA-256 of the id starts with
`bits` zero bits.

Because the id is itself a hash of the public key, the only way to get an id that passes is
to make keys until one does: 2**bits key generations on average (about 45 µs each here).
Anyone can check an id from the id alone, so ids that fail are dropped wherever they appear,
in a sender field or in a list of contacts. What this buys and what it does not is in
docs/dht.md ("Sybil resistance").
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from syncpeer.core.dht.ids import ID_BYTES, node_id_of
from syncpeer.core.identity import Identity, RandomSource

MAX_BITS = 32


def leading_zero_bits(node_id: int) -> int:
    digest = int.from_bytes(hashlib.sha256(node_id.to_bytes(ID_BYTES, "big")).digest(), "big")
    return 256 - digest.bit_length()


def satisfies(node_id: int, bits: int) -> bool:
    """Whether `node_id` solves the puzzle at `bits` (0: every id does)."""
    return bits <= 0 or leading_zero_bits(node_id) >= bits


def sign_key_of(sign_private: bytes) -> bytes:
    private = Ed25519PrivateKey.from_private_bytes(sign_private)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def solve(
    name: str,
    random: RandomSource,
    bits: int,
    max_attempts: int | None = None,
    *,
    simulated: bool = False,
) -> Identity:
    """A new identity whose id satisfies the puzzle at `bits`.

    Only the signing key is remade per attempt; the box key and the card are made once, for
    the key that passes. Raises RuntimeError after `max_attempts` failed keys.
    """
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"puzzle bits must be between 0 and {MAX_BITS}, got {bits}")
    attempts = 0
    while True:
        sign_private = random(32)
        if satisfies(node_id_of(sign_key_of(sign_private)), bits):
            return Identity(name, sign_private, random(32), simulated=simulated)
        attempts += 1
        if max_attempts is not None and attempts >= max_attempts:
            raise RuntimeError(f"no key passed a {bits}-bit puzzle in {attempts} attempts")
