"""Envelopes: how one version of one file is encrypted, signed, framed, verified and opened.

Binary framing (all integers big-endian):

    b"SPE1" | u32 header length | header (canonical JSON, UTF-8)
            | u64 body length   | body
            | 64-byte Ed25519 signature over  header bytes || SHA-256(body)

The body is the plaintext for public files, otherwise AES-256-GCM of the plaintext under a
fresh 256-bit content key. For every recipient (the author always among them) the content key
is wrapped with AES-256-GCM under HKDF-SHA256(X25519(ephemeral, recipient box key)), whose
info binds the recipient, the author, the file name and the version. Keys and nonces come from
the injected random source.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from syncpeer.core.encoding import b64decode, b64encode, canonical_json, sha256_hex
from syncpeer.core.errors import InvalidCard, InvalidEnvelope, InvalidName, NotARecipient
from syncpeer.core.identity import Identity, IdentityCard, RandomSource, verify_signature
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.names import validate_name

MAGIC = b"SPE1"
SIGNATURE_BYTES = 64
TAG_BYTES = 16  # AES-GCM authentication tag appended to every ciphertext
MAX_HEADER_BYTES = 1 << 20
_HEADER_LENGTH = struct.Struct(">I")
_BODY_LENGTH = struct.Struct(">Q")


@dataclass(frozen=True)
class Recipient:
    """One recipient's copy of the content key, wrapped for its X25519 key."""

    fingerprint: str
    ephemeral_key: bytes
    nonce: bytes
    wrapped_key: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "ephemeral_key": b64encode(self.ephemeral_key),
            "nonce": b64encode(self.nonce),
            "wrapped_key": b64encode(self.wrapped_key),
        }

    @classmethod
    def from_json(cls, data: object) -> Recipient:
        if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
            raise ValueError("recipient must be an object with a fingerprint")
        return cls(
            data["fingerprint"],
            b64decode(data.get("ephemeral_key"), length=32, field="ephemeral_key"),
            b64decode(data.get("nonce"), length=12, field="recipient nonce"),
            b64decode(data.get("wrapped_key"), length=32 + TAG_BYTES, field="wrapped_key"),
        )


@dataclass(frozen=True)
class Header:
    """The signed metadata of an envelope."""

    author: str
    author_card: IdentityCard
    name: str
    version: int
    timestamp: float
    size: int
    sha256: str
    public: bool
    recipients: tuple[Recipient, ...]
    nonce: bytes | None
    trace_id: str | None
    deleted: bool = False  # a tombstone: the author deleted `name` (see core/tombstone.py)

    def to_json(self) -> dict[str, Any]:
        # `deleted` is written only on tombstones, so every other envelope keeps the exact
        # header bytes (and signature) it had before tombstones existed.
        return ({"deleted": True} if self.deleted else {}) | {
            "author": self.author,
            "author_card": self.author_card.to_json(),
            "name": self.name,
            "version": self.version,
            "timestamp": self.timestamp,
            "size": self.size,
            "sha256": self.sha256,
            "public": self.public,
            "recipients": [recipient.to_json() for recipient in self.recipients],
            "nonce": None if self.nonce is None else b64encode(self.nonce),
            "trace_id": self.trace_id,
        }

    @classmethod
    def from_json(cls, data: object) -> Header:
        """Parse the header's shape and types; raise InvalidEnvelope naming the bad field."""
        if not isinstance(data, dict):
            raise InvalidEnvelope("header is not a JSON object")
        try:
            card = IdentityCard.from_json(data.get("author_card"))
            name = validate_name(data.get("name"))
            recipients = tuple(Recipient.from_json(item) for item in _list(data, "recipients"))
            nonce_text = data.get("nonce")
            nonce = None if nonce_text is None else b64decode(nonce_text, length=12, field="nonce")
        except (InvalidCard, InvalidName, ValueError) as error:
            raise InvalidEnvelope(f"bad header: {error}") from None
        timestamp = data.get("timestamp")
        trace_id = data.get("trace_id")
        if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
            raise InvalidEnvelope("bad header: timestamp must be a number")
        if not (trace_id is None or isinstance(trace_id, str)):
            raise InvalidEnvelope("bad header: trace_id must be a string or null")
        if not isinstance(data.get("deleted", False), bool):
            raise InvalidEnvelope("bad header: deleted must be a boolean")
        return cls(
            author=_typed(data, "author", str),
            author_card=card,
            name=name,
            version=_positive_int(data, "version", minimum=1),
            timestamp=float(timestamp),
            size=_positive_int(data, "size", minimum=0),
            sha256=_typed(data, "sha256", str),
            public=_typed(data, "public", bool),
            recipients=recipients,
            nonce=nonce,
            trace_id=trace_id,
            deleted=data.get("deleted", False),
        )


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope whose signature and structure have been verified."""

    header: Header
    body: bytes

    def recipient_fingerprints(self) -> tuple[str, ...]:
        return tuple(recipient.fingerprint for recipient in self.header.recipients)


def seal(
    author: Identity,
    *,
    name: str,
    version: int,
    timestamp: float,
    plaintext: bytes,
    recipients: Sequence[IdentityCard] | None,
    random: RandomSource,
    trace_id: str | None = None,
    deleted: bool = False,
) -> bytes:
    """Encrypt (unless `recipients` is None, meaning public) and sign one file version."""
    validate_name(name)
    if recipients is None:
        body, nonce, wrapped = plaintext, None, tuple[Recipient, ...]()
    else:
        content_key, nonce = random(32), random(12)
        aad = _content_aad(author.fingerprint, name, version)
        body = AESGCM(content_key).encrypt(nonce, plaintext, aad)
        everyone = {card.fingerprint: card for card in (author.card, *recipients)}
        wrapped = tuple(
            _wrap(content_key, everyone[fingerprint], author.fingerprint, name, version, random)
            for fingerprint in sorted(everyone)
        )
    header = Header(
        author=author.fingerprint,
        author_card=author.card,
        name=name,
        version=version,
        timestamp=timestamp,
        size=len(plaintext),
        sha256=sha256_hex(plaintext),
        public=recipients is None,
        recipients=wrapped,
        nonce=nonce,
        trace_id=trace_id,
        deleted=deleted,
    )
    header_bytes = canonical_json(header.to_json())
    signature = author.sign(header_bytes + hashlib.sha256(body).digest())
    return b"".join(
        (
            MAGIC,
            _HEADER_LENGTH.pack(len(header_bytes)),
            header_bytes,
            _BODY_LENGTH.pack(len(body)),
            body,
            signature,
        )
    )


def verify(data: bytes, mutants: Mutants = NO_MUTANTS) -> Envelope:
    """Parse and check an envelope; raise InvalidEnvelope with the reason when anything is off.

    Checked: framing, header fields, the author card (self-signature and fingerprint), that the
    card's fingerprint is the header's author, the author's signature over header and body
    (unless the `skip-signature` mutant is on), the body length, and for public files the
    plaintext hash.
    """
    header_bytes, body, signature = _split(data)
    try:
        header_json = json.loads(header_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEnvelope(f"header is not valid JSON: {error}") from None
    header = Header.from_json(header_json)
    if header.author_card.fingerprint != header.author:
        raise InvalidEnvelope(
            f"author card fingerprint {header.author_card.fingerprint} is not the header's "
            f"author {header.author}"
        )
    message = header_bytes + hashlib.sha256(body).digest()
    signed = verify_signature(header.author_card.sign_key, signature, message)
    if not signed and "skip-signature" not in mutants:
        raise InvalidEnvelope("signature does not verify (header or body was tampered with)")
    if header.deleted and (not header.public or header.size != 0):
        raise InvalidEnvelope("a tombstone is public and carries no content")
    if header.public:
        if header.recipients or header.nonce is not None:
            raise InvalidEnvelope("a public envelope carries no recipients and no nonce")
        if len(body) != header.size or sha256_hex(body) != header.sha256:
            raise InvalidEnvelope("public body does not match the header's size and sha256")
    else:
        fingerprints = [recipient.fingerprint for recipient in header.recipients]
        if header.nonce is None or len(body) != header.size + TAG_BYTES:
            raise InvalidEnvelope("encrypted body length or nonce does not match the header")
        if header.author not in fingerprints or len(set(fingerprints)) != len(fingerprints):
            raise InvalidEnvelope("recipients must be unique and include the author")
    return Envelope(header, body)


def decrypt(envelope: Envelope, identity: Identity) -> bytes:
    """The plaintext of a verified envelope; NotARecipient if `identity` cannot unwrap it."""
    header = envelope.header
    if header.public:
        return envelope.body
    entry = next((r for r in header.recipients if r.fingerprint == identity.fingerprint), None)
    if entry is None or header.nonce is None:
        raise NotARecipient(
            f"{identity.fingerprint} is not a recipient of {header.name!r} v{header.version}"
        )
    info = _wrap_info(identity.fingerprint, header.author, header.name, header.version)
    try:
        shared = identity.box_private_key().exchange(
            X25519PublicKey.from_public_bytes(entry.ephemeral_key)
        )
        wrap_key = HKDF(SHA256(), 32, salt=None, info=info).derive(shared)
        content_key = AESGCM(wrap_key).decrypt(entry.nonce, entry.wrapped_key, None)
        aad = _content_aad(header.author, header.name, header.version)
        plaintext = AESGCM(content_key).decrypt(header.nonce, envelope.body, aad)
    except (InvalidTag, ValueError):
        raise InvalidEnvelope("content does not decrypt (corrupt key wrap or body)") from None
    if sha256_hex(plaintext) != header.sha256:
        raise InvalidEnvelope("decrypted content does not match the header's sha256")
    return plaintext


def _wrap(
    content_key: bytes,
    card: IdentityCard,
    author: str,
    name: str,
    version: int,
    random: RandomSource,
) -> Recipient:
    ephemeral = X25519PrivateKey.from_private_bytes(random(32))
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(card.box_key))
    info = _wrap_info(card.fingerprint, author, name, version)
    wrap_key = HKDF(SHA256(), 32, salt=None, info=info).derive(shared)
    nonce = random(12)
    return Recipient(
        fingerprint=card.fingerprint,
        ephemeral_key=ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        nonce=nonce,
        wrapped_key=AESGCM(wrap_key).encrypt(nonce, content_key, None),
    )


def _wrap_info(recipient: str, author: str, name: str, version: int) -> bytes:
    return canonical_json(["syncpeer-wrap-v1", recipient, author, name, version])


def _content_aad(author: str, name: str, version: int) -> bytes:
    return canonical_json(["syncpeer-content-v1", author, name, version])


def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
    view = memoryview(data)
    if view[:4] != MAGIC:
        raise InvalidEnvelope("not an envelope (magic is not SPE1)")
    offset = 4
    if len(view) < offset + _HEADER_LENGTH.size:
        raise InvalidEnvelope("truncated before the header length")
    (header_length,) = _HEADER_LENGTH.unpack_from(view, offset)
    offset += _HEADER_LENGTH.size
    if header_length > MAX_HEADER_BYTES:
        raise InvalidEnvelope(f"header length {header_length} exceeds {MAX_HEADER_BYTES}")
    header = bytes(view[offset : offset + header_length])
    offset += header_length
    if len(view) < offset + _BODY_LENGTH.size:
        raise InvalidEnvelope("truncated before the body length")
    (body_length,) = _BODY_LENGTH.unpack_from(view, offset)
    offset += _BODY_LENGTH.size
    if len(view) != offset + body_length + SIGNATURE_BYTES:
        raise InvalidEnvelope(
            f"envelope is {len(view)} bytes but its lengths say {offset + body_length + 64}"
        )
    body = bytes(view[offset : offset + body_length])
    return header, body, bytes(view[offset + body_length :])


def _list(data: dict[str, Any], field: str) -> list[Any]:
    value = data.get(field)
    if not isinstance(value, list):
        raise ValueError(f"{field} must be a list")
    return value


def _typed(data: dict[str, Any], field: str, kind: type) -> Any:
    value = data.get(field)
    if not isinstance(value, kind):
        raise InvalidEnvelope(f"bad header: {field} must be {kind.__name__}")
    return value


def _positive_int(data: dict[str, Any], field: str, *, minimum: int) -> int:
    value = data.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidEnvelope(f"bad header: {field} must be an integer >= {minimum}")
    return value
