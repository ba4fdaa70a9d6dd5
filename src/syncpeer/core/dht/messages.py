"""DHT messages: one signed JSON object per UDP datagram.

    datagram = signature (64 bytes) || body (a JSON object, UTF-8)
    body = {"v": 1, "t": TYPE, "rpc": 16 hex digits, "id": sender id (40 hex), "key":
            sender's Ed25519 public key (base64), "addr": sender's public DHT address
            "host:port", ...fields of TYPE...}
    signature = Ed25519 by `key` over b"syncpeer-dht-v1\x00" || body

The signature covers the body's bytes as sent, so the receiver checks it before parsing
anything and never re-serializes; the prefix keeps a DHT signature from ever being valid
as a card's, an envelope's or a record's (the same key signs those).

| TYPE | answer to | fields |
|---|---|---|
| ping | | |
| pong | ping | |
| find_node | | target (and record, when a node looks up its own id to join) |
| nodes | find_node, find_value | nodes: [[id, addr], ...] (at most MAX_CONTACTS) |
| find_value | | target |
| value | find_value | record (see records.py) |
| store | | record |
| stored | store | ok, reason |

A message is only accepted when `id` is the fingerprint of `key` and the signature verifies, so a
sender cannot claim an id it has no key for. `addr` is what the receiver writes in its
routing table: behind the fabric's proxies (or a NAT) the address a datagram seems to come
from is not the one to dial back later.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from syncpeer.core import simsign
from syncpeer.core.dht.ids import id_hex, node_id_of, parse_id
from syncpeer.core.encoding import b64decode, b64encode
from syncpeer.core.errors import SyncpeerError
from syncpeer.core.keyring import parse_address

VERSION = 1
DOMAIN = b"syncpeer-dht-v1\x00"
SIGNATURE_BYTES = 64
MAX_DATAGRAM = 60 * 1024
MAX_CONTACTS = 32
REQUESTS = ("ping", "find_node", "find_value", "store")
RESPONSES = ("pong", "nodes", "value", "stored")
ANSWERS = {
    "ping": ("pong",),
    "find_node": ("nodes",),
    "find_value": ("value", "nodes"),
    "store": ("stored",),
}
_RPC_ID = re.compile(r"[0-9a-f]{16}")
_HEX_ID = re.compile(r"[0-9a-f]{40}")
_ADDRESS = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})")


class InvalidMessage(SyncpeerError):
    """A datagram is not a well-formed, correctly signed DHT message."""


@dataclass(frozen=True)
class Contact:
    """A node as others know it: its id and its public DHT address."""

    id: int
    address: str

    @property
    def hex(self) -> str:
        return _id_hex(self.id)

    def to_json(self) -> list[str]:
        return [self.hex, self.address]

    @functools.cached_property
    def json(self) -> str:
        """`to_json()` serialized: made once, as a contact is named in many answers."""
        return _json(self.to_json())


@dataclass(frozen=True)
class Signer:
    """What signs this node's messages: its public key and its signing function."""

    sign_key: bytes
    sign: Callable[[bytes], bytes]

    @property
    def id(self) -> int:
        return node_id_of(self.sign_key)

    @functools.cached_property
    def key_text(self) -> str:
        """The key as every message carries it (base64)."""
        return b64encode(self.sign_key)


@dataclass(frozen=True)
class Message:
    """A verified message (or one about to be sent)."""

    type: str
    rpc: str
    sender: Contact
    target: int | None = None
    nodes: tuple[Contact, ...] = ()
    record: Mapping[str, Any] | None = None
    ok: bool | None = None
    reason: str | None = None

    @property
    def is_request(self) -> bool:
        return self.type in REQUESTS


def encode(message: Message, signer: Signer) -> bytes:
    """Sign and serialize `message` (its sender must be the signer's id).

    The body is made from pieces serialized once: the sender's fields are the same in every
    message a node sends, and each contact is named in many answers. The bytes are what
    `_json` makes of the whole body, its fields in this order."""
    text = (
        _head(message.type)
        + _string(message.rpc)
        + _sender_fields(message.sender.hex, signer.key_text, message.sender.address)
    )
    if message.target is not None:
        text += ',"target":' + _string(_id_hex(message.target))
    if message.type == "nodes":
        listed = ",".join([contact.json for contact in message.nodes[:MAX_CONTACTS]])
        text += f',"nodes":[{listed}]'
    if message.record is not None:
        text += ',"record":' + _json(dict(message.record))
    if message.type == "stored":
        text += f',"ok":{_json(bool(message.ok))},"reason":{_json(message.reason)}'
    payload = (text + "}").encode()
    return signer.sign(DOMAIN + payload) + payload


_string = json.encoder.encode_basestring
"""A string as `_json` writes it (no ASCII escaping): what `json.dumps` calls for one."""


@functools.lru_cache(maxsize=16)
def _head(kind: str) -> str:
    return f'{{"v":{_json(VERSION)},"t":{_string(kind)},"rpc":'


# A node sends with one sender; a simulation's nodes share this cache, so it holds a swarm.
@functools.lru_cache(maxsize=65536)
def _sender_fields(node_hex: str, key: str, address: str) -> str:
    return "," + _json({"id": node_hex, "key": key, "addr": address})[1:-1]


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=4096)
def _public_key(sign_key: bytes) -> Ed25519PublicKey:
    # Parsing a key costs about as much as hashing a message: a node hears the same few
    # hundred keys over and over.
    return Ed25519PublicKey.from_public_bytes(sign_key)


@functools.lru_cache(maxsize=65536)
def _id_hex(node_id: int) -> str:
    return id_hex(node_id)


@functools.lru_cache(maxsize=4096)
def _node_id(sign_key: bytes) -> int:
    return node_id_of(sign_key)


def _verify(sign_key: bytes, signature: bytes, payload: bytes) -> bool:
    if simsign.verified(sign_key, signature, payload):
        return True
    try:
        _public_key(sign_key).verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def _contacts(raw_nodes: list[Any]) -> tuple[Contact, ...]:
    """The contacts of a nodes answer; raises naming the first malformed one."""
    if set(map(type, raw_nodes)) <= {list}:
        # Every one a list: the common case, parsed without a Python call per contact.
        # Anything odd in them (not two strings, a wrong id or address) fails here and is
        # named by the contact-by-contact parse below.
        with contextlib.suppress(TypeError, ValueError):
            return tuple(itertools.starmap(_parsed_contact, raw_nodes))
    return tuple(_contact(raw) for raw in raw_nodes)


def _contact(raw: object) -> Contact:
    if not isinstance(raw, list) or len(raw) != 2:
        raise ValueError("a contact must be [id, address]")
    node_id, address = raw
    if not isinstance(node_id, str) or not isinstance(address, str):
        raise ValueError(f"a contact is two strings, got {raw!r}")
    return _parsed_contact(node_id, address)


# A nodes answer carries up to 32 contacts, and the same contacts come back in many answers:
# parsing one is pure, so parsed ones are kept (as the parsed keys above are).
@functools.lru_cache(maxsize=65536)
def _parsed_contact(node_id: str, address: str) -> Contact:
    if not isinstance(node_id, str) or not isinstance(address, str):
        raise TypeError("a contact is two strings")
    if not _HEX_ID.fullmatch(node_id):
        raise ValueError(f"contact id must be 40 lowercase hex digits, got {node_id!r}")
    match = _ADDRESS.fullmatch(address)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise ValueError(f"contact address must be host:port, got {address!r}")
    return Contact(int(node_id, 16), address)


def decode(data: bytes) -> tuple[Message, bytes]:
    """Parse and verify a datagram; returns the message and the sender's public key.

    Raises InvalidMessage naming the first problem found.
    """
    if len(data) > MAX_DATAGRAM:
        raise InvalidMessage(f"datagram of {len(data)} bytes is over {MAX_DATAGRAM}")
    signature, payload = data[:SIGNATURE_BYTES], data[SIGNATURE_BYTES:]
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidMessage("datagram is not a signature and a JSON body") from None
    if not isinstance(body, dict):
        raise InvalidMessage("message must be a JSON object")
    try:
        return _verified(body, signature, payload)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidMessage(f"malformed message: {error}") from None


def _verified(body: dict[str, Any], signature: bytes, payload: bytes) -> tuple[Message, bytes]:
    if body.get("v") != VERSION:
        raise InvalidMessage(f"unsupported message version {body.get('v')!r}")
    kind = body["t"]
    if kind not in REQUESTS + RESPONSES:
        raise InvalidMessage(f"unknown message type {kind!r}")
    rpc = body["rpc"]
    if not isinstance(rpc, str) or not _RPC_ID.fullmatch(rpc):
        raise InvalidMessage("rpc must be 16 hex digits")
    fields = body["id"], body["key"], body["addr"]
    # A node hears the same few hundred senders over and over: strings are parsed once.
    known = type(fields[0]) is str and type(fields[1]) is str and type(fields[2]) is str
    sender, sign_key = (_known_sender if known else _sender)(*fields)
    if not _verify(sign_key, signature, DOMAIN + payload):
        raise InvalidMessage("signature does not verify")
    target = parse_id(body["target"], "target") if kind in ("find_node", "find_value") else None
    nodes: tuple[Contact, ...] = ()
    if kind == "nodes":
        raw_nodes = body["nodes"]
        if not isinstance(raw_nodes, list) or len(raw_nodes) > MAX_CONTACTS:
            raise InvalidMessage(f"nodes must be a list of at most {MAX_CONTACTS} contacts")
        nodes = _contacts(raw_nodes)
    record = body["record"] if kind in ("value", "store") else body.get("record")
    if record is not None and not isinstance(record, dict):
        raise InvalidMessage("record must be an object")
    ok = reason = None
    if kind == "stored":
        ok, reason = body["ok"], body.get("reason")
        if not isinstance(ok, bool) or not (reason is None or isinstance(reason, str)):
            raise InvalidMessage("stored needs ok (boolean) and reason (string or null)")
    message = Message(kind, rpc, sender, target, nodes, record, ok, reason)
    return message, sign_key


def _sender(node_id: object, key: object, address: object) -> tuple[Contact, bytes]:
    """The sender a message names, and its key; raises naming the first problem."""
    sender_id = parse_id(node_id, "sender id")
    sign_key = b64decode(key, length=32, field="key")
    if _node_id(sign_key) != sender_id:
        raise InvalidMessage("sender id is not the fingerprint of its key")
    parse_address(address)
    return Contact(sender_id, str(address)), sign_key


_known_sender = functools.lru_cache(maxsize=65536)(_sender)
