"""Envelopes: sealing, verification, decryption, and every kind of tampering."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable

import pytest

from syncpeer.core import envelope
from syncpeer.core.errors import InvalidEnvelope, InvalidName, NotARecipient
from syncpeer.core.identity import Identity, RandomSource

SECRET = b"the quarterly numbers are fine" * 10


def seal_for(
    author: Identity, recipients: list[Identity] | None, rng: RandomSource, **overrides: object
) -> bytes:
    arguments: dict[str, object] = {
        "name": "report.txt",
        "version": 3,
        "timestamp": 1700000000.25,
        "plaintext": SECRET,
        "recipients": None if recipients is None else [r.card for r in recipients],
        "random": rng,
        "trace_id": "trace-1",
    }
    arguments.update(overrides)
    return envelope.seal(author, **arguments)  # type: ignore[arg-type]


def split(data: bytes) -> tuple[bytes, bytes, bytes]:
    (header_length,) = struct.unpack_from(">I", data, 4)
    header = data[8 : 8 + header_length]
    return header, data[8 + header_length + 8 : -64], data[-64:]


def frame(header: bytes, body: bytes, signature: bytes) -> bytes:
    return b"".join(
        (
            b"SPE1",
            struct.pack(">I", len(header)),
            header,
            struct.pack(">Q", len(body)),
            body,
            signature,
        )
    )


def test_round_trip_for_recipient_and_author(make_identity: Callable, rng: RandomSource) -> None:
    alice, bob = make_identity("alice"), make_identity("bob")
    data = seal_for(alice, [bob], rng)
    verified = envelope.verify(data)
    assert verified.header.name == "report.txt" and verified.header.version == 3
    assert verified.header.trace_id == "trace-1"
    assert set(verified.recipient_fingerprints()) == {alice.fingerprint, bob.fingerprint}
    assert envelope.decrypt(verified, bob) == SECRET
    assert envelope.decrypt(verified, alice) == SECRET  # the author is always a recipient
    assert SECRET[:30] not in data


def test_framing_is_magic_lengths_header_body_signature(
    make_identity: Callable, rng: RandomSource
) -> None:
    data = seal_for(make_identity("alice"), [], rng)
    header, body, _ = split(data)
    assert data[:4] == b"SPE1"
    assert json.loads(header)["size"] == len(SECRET)
    assert len(body) == len(SECRET) + 16  # AES-GCM tag


def test_non_recipient_cannot_decrypt(make_identity: Callable, rng: RandomSource) -> None:
    alice, bob, eve = make_identity("alice"), make_identity("bob"), make_identity("eve")
    verified = envelope.verify(seal_for(alice, [bob], rng))
    with pytest.raises(NotARecipient, match=eve.fingerprint):
        envelope.decrypt(verified, eve)


def test_public_file_is_signed_not_encrypted(make_identity: Callable, rng: RandomSource) -> None:
    alice, eve = make_identity("alice"), make_identity("eve")
    data = seal_for(alice, None, rng)
    verified = envelope.verify(data)
    assert verified.header.public and verified.header.recipients == ()
    assert SECRET in data
    assert envelope.decrypt(verified, eve) == SECRET


@pytest.mark.parametrize("public", [False, True])
def test_tampered_body_is_rejected(
    make_identity: Callable, rng: RandomSource, public: bool
) -> None:
    alice = make_identity("alice")
    data = bytearray(seal_for(alice, None if public else [], rng))
    header, _, _ = split(bytes(data))
    data[8 + len(header) + 8 + 5] ^= 0x01
    with pytest.raises(InvalidEnvelope, match="signature"):
        envelope.verify(bytes(data))


def test_tampered_header_is_rejected(make_identity: Callable, rng: RandomSource) -> None:
    alice = make_identity("alice")
    data = seal_for(alice, [], rng)
    header, body, signature = split(data)
    forged = header.replace(b'"version":3', b'"version":9')
    assert forged != header
    rebuilt = frame(forged, body, signature)
    with pytest.raises(InvalidEnvelope, match="signature"):
        envelope.verify(rebuilt)


def test_tampered_signature_is_rejected(make_identity: Callable, rng: RandomSource) -> None:
    data = bytearray(seal_for(make_identity("alice"), [], rng))
    data[-1] ^= 0x80
    with pytest.raises(InvalidEnvelope, match="signature"):
        envelope.verify(bytes(data))


def test_envelope_signed_by_someone_else_is_rejected(
    make_identity: Callable, rng: RandomSource
) -> None:
    alice, mallory = make_identity("alice"), make_identity("mallory")
    data = seal_for(mallory, [], rng)
    header, body, signature = split(data)
    # Mallory claims Alice wrote it but keeps her own card: fingerprints disagree.
    claimed = json.loads(header)
    claimed["author"] = alice.fingerprint
    forged = json.dumps(claimed, sort_keys=True, separators=(",", ":")).encode()
    forged_sig = mallory.sign(forged + hashlib.sha256(body).digest())
    rebuilt = frame(forged, body, forged_sig)
    with pytest.raises(InvalidEnvelope, match="author card fingerprint"):
        envelope.verify(rebuilt)
    # With Alice's card instead, Mallory's signature no longer verifies.
    claimed["author_card"] = alice.card.to_json()
    forged = json.dumps(claimed, sort_keys=True, separators=(",", ":")).encode()
    rebuilt = frame(forged, body, signature)
    with pytest.raises(InvalidEnvelope, match="signature"):
        envelope.verify(rebuilt)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda data: b"XXXX" + data[4:], "magic"),
        (lambda data: data[:-1], "lengths say"),
        (lambda data: data + b"\x00", "lengths say"),
        (lambda data: data[:6], "truncated"),
    ],
)
def test_malformed_framing_is_rejected(
    make_identity: Callable, rng: RandomSource, mangle: Callable[[bytes], bytes], message: str
) -> None:
    data = seal_for(make_identity("alice"), [], rng)
    with pytest.raises(InvalidEnvelope, match=message):
        envelope.verify(mangle(data))


def test_sealing_with_a_traversal_name_is_refused(
    make_identity: Callable, rng: RandomSource
) -> None:
    with pytest.raises(InvalidName):
        seal_for(make_identity("alice"), [], rng, name="../etc/passwd")
