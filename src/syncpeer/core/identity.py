"""A node's identity: an Ed25519 signing key, an X25519 encryption key, and the signed card.

The fingerprint is the first 40 hex characters of SHA-256 over the raw Ed25519 public key.
A card is what a node hands to friends; it is self-signed, and `IdentityCard.from_json`
refuses any card whose fingerprint or signature does not match its keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from syncpeer.core import simsign
from syncpeer.core.encoding import b64decode, b64encode, canonical_json, sha256_hex
from syncpeer.core.errors import InvalidCard

RandomSource = Callable[[int], bytes]
"""Returns n random bytes; injected so the core never draws randomness of its own."""

FINGERPRINT_CHARS = 40
MAX_CARD_NAME = 128


def fingerprint_of(sign_key: bytes) -> str:
    return sha256_hex(sign_key)[:FINGERPRINT_CHARS]


def _card_payload(name: str, fingerprint: str, sign_key: bytes, box_key: bytes) -> bytes:
    return canonical_json(
        {
            "name": name,
            "fingerprint": fingerprint,
            "sign_key": b64encode(sign_key),
            "box_key": b64encode(box_key),
        }
    )


def verify_signature(sign_key: bytes, signature: bytes, message: bytes) -> bool:
    if simsign.verified(sign_key, signature, message):
        return True
    try:
        Ed25519PublicKey.from_public_bytes(sign_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class IdentityCard:
    """The public half of an identity, as exchanged between friends."""

    name: str
    fingerprint: str
    sign_key: bytes
    box_key: bytes
    signature: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "sign_key": b64encode(self.sign_key),
            "box_key": b64encode(self.box_key),
            "signature": b64encode(self.signature),
        }

    @classmethod
    def from_json(cls, data: object) -> IdentityCard:
        """Parse and verify a card; raise InvalidCard naming the first problem found."""
        if not isinstance(data, dict):
            raise InvalidCard("identity card must be a JSON object")
        missing = [
            key
            for key in ("name", "fingerprint", "sign_key", "box_key", "signature")
            if key not in data
        ]
        if missing:
            raise InvalidCard(f"identity card is missing {', '.join(missing)}")
        name, fingerprint = data["name"], data["fingerprint"]
        if not isinstance(name, str) or not 0 < len(name) <= MAX_CARD_NAME:
            raise InvalidCard(f"card name must be a string of 1..{MAX_CARD_NAME} characters")
        if not isinstance(fingerprint, str):
            raise InvalidCard("card fingerprint must be a string")
        try:
            sign_key = b64decode(data["sign_key"], length=32, field="sign_key")
            box_key = b64decode(data["box_key"], length=32, field="box_key")
            signature = b64decode(data["signature"], length=64, field="signature")
        except ValueError as error:
            raise InvalidCard(f"identity card: {error}") from None
        if fingerprint != fingerprint_of(sign_key):
            raise InvalidCard(
                f"card fingerprint {fingerprint!r} does not match its sign_key "
                f"(expected {fingerprint_of(sign_key)!r})"
            )
        payload = _card_payload(name, fingerprint, sign_key, box_key)
        if not verify_signature(sign_key, signature, payload):
            raise InvalidCard(f"card signature for {fingerprint} does not verify (tampered card?)")
        return cls(name, fingerprint, sign_key, box_key, signature)


class Identity:
    """The private keys of this node and the card derived from them.

    A `simulated` identity (the simulator's nodes, and only they) signs with the keyed MAC
    of `syncpeer.core.simsign` instead of Ed25519: same keys, same card fields, same sizes.
    """

    def __init__(
        self, name: str, sign_private: bytes, box_private: bytes, *, simulated: bool = False
    ) -> None:
        self.name = name
        self.simulated = simulated
        self._sign = Ed25519PrivateKey.from_private_bytes(sign_private)
        self._box = X25519PrivateKey.from_private_bytes(box_private)
        sign_key = self._sign.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        box_key = self._box.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._mac_secret = simsign.secret_for(sign_key, sign_private) if simulated else None
        fingerprint = fingerprint_of(sign_key)
        payload = _card_payload(name, fingerprint, sign_key, box_key)
        self.card = IdentityCard(name, fingerprint, sign_key, box_key, self.sign(payload))

    @classmethod
    def generate(cls, name: str, random: RandomSource) -> Identity:
        return cls(name, random(32), random(32))

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint

    def renamed(self, name: str) -> Identity:
        """The same keys under another display name (the card is re-signed)."""
        return Identity(
            name,
            self._private_bytes(self._sign),
            self._private_bytes(self._box),
            simulated=self.simulated,
        )

    def sign(self, message: bytes) -> bytes:
        if self._mac_secret is not None:
            return simsign.mac(self._mac_secret, message)
        return self._sign.sign(message)

    def box_private_key(self) -> X25519PrivateKey:
        return self._box

    def to_json(self) -> dict[str, Any]:
        """The private form written to identity.json (mode 0600) — never logged or served."""
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "sign_private": b64encode(self._private_bytes(self._sign)),
            "box_private": b64encode(self._private_bytes(self._box)),
        }

    @classmethod
    def from_json(cls, data: object, *, simulated: bool = False) -> Identity:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ValueError("identity file must be an object with a name")
        sign_private = b64decode(data.get("sign_private"), length=32, field="sign_private")
        box_private = b64decode(data.get("box_private"), length=32, field="box_private")
        return cls(data["name"], sign_private, box_private, simulated=simulated)

    @staticmethod
    def _private_bytes(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
        return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
