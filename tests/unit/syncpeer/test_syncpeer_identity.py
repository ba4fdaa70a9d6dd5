"""Identity and identity cards: fingerprints, self-signatures, tampering."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from syncpeer.core.dht.puzzle import solve
from syncpeer.core.errors import InvalidCard
from syncpeer.core.identity import Identity, IdentityCard, RandomSource, verify_signature


def test_fingerprint_is_first_40_hex_of_sha256_of_sign_key(make_identity: Callable) -> None:
    card = make_identity("alice").card
    assert card.fingerprint == hashlib.sha256(card.sign_key).hexdigest()[:40]
    assert len(card.sign_key) == 32 and len(card.box_key) == 32


def test_keys_come_from_the_injected_source() -> None:
    """A node draws its keys from os.urandom; a simulator hands in a source seeded from its
    run's seed and gets the same identities, puzzle solutions included, every run."""

    def fingerprint(seed: int, bits: int = 0) -> str:
        source = random.Random(seed).randbytes
        identity = solve("n", source, bits) if bits else Identity.generate("n", source)
        return identity.fingerprint

    assert fingerprint(1) == fingerprint(1) != fingerprint(2)
    assert fingerprint(1, bits=6) == fingerprint(1, bits=6) != fingerprint(2, bits=6)


def test_card_round_trips_through_json(make_identity: Callable) -> None:
    card = make_identity("alice").card
    assert IdentityCard.from_json(card.to_json()) == card


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "mallory", "signature"),
        ("fingerprint", "0" * 40, "does not match"),
        ("signature", base64.b64encode(bytes(64)).decode(), "signature"),
        ("box_key", base64.b64encode(bytes(range(32))).decode(), "signature"),
        ("sign_key", "not base64!", "base64"),
        ("name", "", "name"),
    ],
)
def test_tampered_card_is_rejected(
    make_identity: Callable, field: str, value: str, message: str
) -> None:
    data = make_identity("alice").card.to_json()
    data[field] = value
    with pytest.raises(InvalidCard, match=message):
        IdentityCard.from_json(data)


def test_card_with_another_nodes_key_is_rejected(make_identity: Callable) -> None:
    alice, mallory = make_identity("alice").card.to_json(), make_identity("mallory").card
    alice["sign_key"] = base64.b64encode(mallory.sign_key).decode()
    with pytest.raises(InvalidCard, match="does not match"):
        IdentityCard.from_json(alice)


def test_card_missing_fields_is_rejected() -> None:
    with pytest.raises(InvalidCard, match="missing"):
        IdentityCard.from_json({"name": "alice"})
    with pytest.raises(InvalidCard, match="object"):
        IdentityCard.from_json(["alice"])


def test_identity_private_form_round_trips_and_renames(make_identity: Callable) -> None:
    alice = make_identity("alice")
    restored = Identity.from_json(alice.to_json())
    assert restored.card == alice.card
    renamed = alice.renamed("alice-2")
    assert renamed.fingerprint == alice.fingerprint
    assert IdentityCard.from_json(renamed.card.to_json()).name == "alice-2"


def test_a_simulated_identity_signs_with_a_mac_nobody_else_can_make(rng: RandomSource) -> None:
    """The simulator's identities sign with a keyed MAC instead of Ed25519: it verifies
    under their public key, an altered message or signature does not, and another
    identity, simulated or not, cannot make one for a key it does not hold."""
    keys = rng(32), rng(32)
    alice = Identity("alice", *keys, simulated=True)
    message = b"a message alice signs"
    signature = alice.sign(message)
    key = alice.card.sign_key
    assert len(signature) == 64 and verify_signature(key, signature, message)
    assert not verify_signature(key, signature, message + b"!")
    assert not verify_signature(key, bytes([signature[0] ^ 1]) + signature[1:], message)
    with pytest.raises(InvalidSignature):  # no curve involved: it is not an Ed25519 signature
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)

    mallory = Identity("mallory", rng(32), rng(32), simulated=True)
    assert not verify_signature(key, mallory.sign(message), message)

    real = Identity("alice", *keys)  # the same keys on a real node: Ed25519, still valid
    Ed25519PublicKey.from_public_bytes(key).verify(real.sign(message), message)
    assert verify_signature(key, real.sign(message), message)

    assert IdentityCard.from_json(alice.card.to_json()) == alice.card
    assert alice.renamed("alice-2").simulated
    assert Identity.from_json(alice.to_json(), simulated=True).sign(message) == signature
    assert not Identity.from_json(alice.to_json()).simulated
