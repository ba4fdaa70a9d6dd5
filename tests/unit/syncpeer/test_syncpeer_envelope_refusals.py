"""Every way an envelope can be wrong while still carrying its author's valid signature is
refused with its own reason: a forger who holds the key cannot slip a malformed header or a
body that contradicts it past `verify`, nor make `decrypt` return the wrong bytes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from syncpeer.core import envelope
from syncpeer.core.encoding import b64encode, canonical_json
from syncpeer.core.errors import InvalidEnvelope
from syncpeer.core.identity import Identity, RandomSource


def split(data: bytes) -> tuple[dict[str, Any], bytes]:
    header, body, _ = envelope._split(data)
    return json.loads(header), body


def forge(author: Identity, header: Any, body: bytes, raw: bytes | None = None) -> bytes:
    """An envelope of `header` (or the raw header bytes) and `body`, signed by `author`."""
    header_bytes = raw if raw is not None else canonical_json(header)
    signature = author.sign(header_bytes + hashlib.sha256(body).digest())
    return b"".join(
        (
            envelope.MAGIC,
            envelope._HEADER_LENGTH.pack(len(header_bytes)),
            header_bytes,
            envelope._BODY_LENGTH.pack(len(body)),
            body,
            signature,
        )
    )


@pytest.fixture
def made(
    make_identity: Callable[[str], Identity], rng: RandomSource
) -> tuple[Identity, Identity, bytes, bytes]:
    author, friend = make_identity("author"), make_identity("friend")
    public = envelope.seal(
        author,
        name="p.txt",
        version=1,
        timestamp=1.0,
        plaintext=b"open",
        recipients=None,
        random=rng,
    )
    sealed = envelope.seal(
        author,
        name="s.txt",
        version=1,
        timestamp=1.0,
        plaintext=b"secret",
        recipients=[friend.card],
        random=rng,
    )
    return author, friend, public, sealed


HEADER_CHANGES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("a list", lambda h: [h], "header is not a JSON object"),
    ("recipients", lambda h: {**h, "recipients": "x"}, "recipients must be a list"),
    ("recipient", lambda h: {**h, "recipients": [5]}, "recipient must be an object"),
    ("timestamp", lambda h: {**h, "timestamp": "noon"}, "timestamp must be a number"),
    ("trace_id", lambda h: {**h, "trace_id": 5}, "trace_id must be a string or null"),
    ("deleted", lambda h: {**h, "deleted": "yes"}, "deleted must be a boolean"),
    ("version", lambda h: {**h, "version": 0}, "version must be an integer >= 1"),
    ("author", lambda h: {**h, "author": 5}, "author must be str"),
    ("tombstone", lambda h: {**h, "deleted": True}, "a tombstone is public and carries no"),
    ("nonce", lambda h: {**h, "nonce": b64encode(bytes(12))}, "carries no recipients and no"),
    ("size", lambda h: {**h, "size": 5}, "public body does not match"),
]


@pytest.mark.parametrize(
    ("what", "change", "reason"), HEADER_CHANGES, ids=[what for what, _, _ in HEADER_CHANGES]
)
def test_a_signed_but_malformed_public_header_is_refused(
    made: tuple[Identity, Identity, bytes, bytes],
    what: str,
    change: Callable[[dict[str, Any]], Any],
    reason: str,
) -> None:
    author, _, public, _ = made
    header, body = split(public)
    with pytest.raises(InvalidEnvelope, match=reason):
        envelope.verify(forge(author, change(header), body))


def test_signed_but_wrong_encrypted_envelopes_are_refused(
    made: tuple[Identity, Identity, bytes, bytes],
) -> None:
    author, friend, _, sealed = made
    header, body = split(sealed)
    with pytest.raises(InvalidEnvelope, match="encrypted body length or nonce"):
        envelope.verify(forge(author, {**header, "size": header["size"] + 1}, body))
    others = [r for r in header["recipients"] if r["fingerprint"] != author.fingerprint]
    with pytest.raises(InvalidEnvelope, match="unique and include the author"):
        envelope.verify(forge(author, {**header, "recipients": others}, body))
    with pytest.raises(InvalidEnvelope, match="header is not valid JSON"):
        envelope.verify(forge(author, None, body, raw=b"{not json"))
    # Decryption: a wrapped key that does not open, and content that is not what was signed.
    broken = [{**r, "wrapped_key": b64encode(bytes(48))} for r in header["recipients"]]
    unwrappable = envelope.verify(forge(author, {**header, "recipients": broken}, body))
    with pytest.raises(InvalidEnvelope, match="does not decrypt"):
        envelope.decrypt(unwrappable, friend)
    lying = envelope.verify(forge(author, {**header, "sha256": "0" * 64}, body))
    with pytest.raises(InvalidEnvelope, match="does not match the header's sha256"):
        envelope.decrypt(lying, friend)
    assert envelope.decrypt(envelope.verify(sealed), friend) == b"secret"


def test_framing_that_lies_about_lengths_is_refused(
    made: tuple[Identity, Identity, bytes, bytes],
) -> None:
    _, _, public, _ = made
    too_long = envelope.MAGIC + envelope._HEADER_LENGTH.pack(envelope.MAX_HEADER_BYTES + 1)
    with pytest.raises(InvalidEnvelope, match="exceeds"):
        envelope.verify(too_long + b"x" * 16)
    header_length = envelope._HEADER_LENGTH.unpack_from(public, 4)[0]
    with pytest.raises(InvalidEnvelope, match="truncated before the body length"):
        envelope.verify(public[: 8 + header_length + 3])
