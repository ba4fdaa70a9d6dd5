"""Signatures inside the simulator: a keyed MAC standing in for Ed25519, chosen by the
simulated node (`Identity(..., simulated=True)`), never by a real one.

Ed25519's curve arithmetic is most of a simulated network's processor time (every DHT
datagram is signed, at tens of microseconds each), and none of what the simulator tests
depends on the curve, only on what a signature guarantees: nobody but the holder of a
private key can make a signature that verifies under its public key. A simulated identity
signs with BLAKE2b keyed by a secret derived from its private signing key (64 bytes, the
size of an Ed25519 signature, so nothing on the wire changes shape). Only that identity can
make those MACs; a verifier asks this module, which knows the secret of every simulated
public key of this process, and so a simulated byzantine node can no more forge another
node's signature than a real one can. A key that is not simulated is verified with Ed25519
as before, and so is a signature that is not the MAC of a simulated key (a real Ed25519
signature over that key still verifies).

What this does not test, real Ed25519 signing and verifying, is what the real backends run
(docs/sim.md, honest scope).
"""

from __future__ import annotations

import hashlib
import hmac

MAC_BYTES = 64
_PERSON = b"syncpeer-sim-mac"

# Simulated public key -> its MAC secret, for as long as the process lives: a node that is
# down still has envelopes and records out there that must verify. An entry is a pure
# function of the private key, so runs of one seed find the same entries, in any order.
_SECRETS: dict[bytes, bytes] = {}


def secret_for(sign_key: bytes, sign_private: bytes) -> bytes:
    """The MAC secret of a simulated identity, known from now on to `verified`."""
    secret = hashlib.blake2b(sign_private, digest_size=32, person=_PERSON).digest()
    _SECRETS[sign_key] = secret
    return secret


def mac(secret: bytes, message: bytes) -> bytes:
    return hashlib.blake2b(message, digest_size=MAC_BYTES, key=secret).digest()


def verified(sign_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the MAC of `message` by the simulated identity of `sign_key`
    (False for any other key: those are for Ed25519 to check)."""
    secret = _SECRETS.get(sign_key)
    return secret is not None and hmac.compare_digest(mac(secret, message), signature)
