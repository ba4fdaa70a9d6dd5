"""Address records: "fingerprint F is reachable at this address", signed by F's key.

    {"fingerprint", "sign_key" (base64), "address" (HTTP host:port), "dht_address"
     (UDP host:port), "timestamp" (the publisher's clock when it signed), "ttl" (seconds a
     holder keeps it), "signature" (base64 Ed25519 by sign_key over the canonical JSON of
     the other fields)}

A record is stored under its fingerprint (a 160-bit DHT key, the publisher's node id). A
holder refuses a record whose signature fails, whose fingerprint is not its key's, or that
is older than the one it holds; it drops a record `ttl` seconds (at most MAX_TTL) after
storing it, by its own monotonic clock (the `now` of `put`), so publishers store their
record again before then. A record's `timestamp` is the publisher's wall clock: it only
orders records of one publisher, and is never compared with the holder's clock.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncpeer.core.dht.ids import parse_id
from syncpeer.core.encoding import b64decode, b64encode, canonical_json
from syncpeer.core.errors import SyncpeerError
from syncpeer.core.identity import Identity, fingerprint_of, verify_signature
from syncpeer.core.keyring import parse_address

MAX_TTL = 24 * 3600.0


class InvalidRecord(SyncpeerError):
    """A record is malformed, or its signature or fingerprint does not match its key."""


@dataclass(frozen=True)
class AddressRecord:
    fingerprint: str
    sign_key: bytes
    address: str
    dht_address: str
    timestamp: float
    ttl: float
    signature: bytes

    @property
    def key(self) -> int:
        return int(self.fingerprint, 16)

    def payload(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "sign_key": b64encode(self.sign_key),
            "address": self.address,
            "dht_address": self.dht_address,
            "timestamp": self.timestamp,
            "ttl": self.ttl,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.payload(), "signature": b64encode(self.signature)}

    @classmethod
    def from_json(cls, data: object) -> AddressRecord:
        """Parse and verify a record; InvalidRecord names the first problem."""
        if not isinstance(data, Mapping):
            raise InvalidRecord("record must be an object")
        fields = tuple(data.get(name) for name in _FIELDS)
        if len(data) == len(_FIELDS) and all(type(value) in _PLAIN for value in fields):
            # A record travels in many messages (every request of its owner's lookups,
            # every answer naming it): the same fields are parsed and verified once.
            return _parsed(tuple(map(type, fields)), fields)
        return cls._parse(data)

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> AddressRecord:
        try:
            fingerprint = data["fingerprint"]
            parse_id(fingerprint, "record fingerprint")
            sign_key = b64decode(data["sign_key"], length=32, field="sign_key")
            signature = b64decode(data["signature"], length=64, field="signature")
            address, dht_address = data["address"], data["dht_address"]
            parse_address(address)
            parse_address(dht_address)
            timestamp, ttl = data["timestamp"], data["ttl"]
        except KeyError as error:
            raise InvalidRecord(f"record is missing {error}") from None
        except ValueError as error:
            raise InvalidRecord(f"record: {error}") from None
        for name, value in (("timestamp", timestamp), ("ttl", ttl)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRecord(f"record {name} must be a number")
            if not math.isfinite(value) or value < 0:
                raise InvalidRecord(f"record {name} must be a finite number ≥ 0")
        if fingerprint_of(sign_key) != fingerprint:
            raise InvalidRecord("record fingerprint is not the fingerprint of its sign_key")
        record = cls(fingerprint, sign_key, address, dht_address, timestamp, ttl, signature)
        if not verify_signature(sign_key, signature, canonical_json(record.payload())):
            raise InvalidRecord(f"record signature for {fingerprint} does not verify")
        return record


_FIELDS = ("fingerprint", "sign_key", "address", "dht_address", "timestamp", "ttl", "signature")
_PLAIN = (str, int, float)


@functools.lru_cache(maxsize=16384)
def _parsed(types: tuple[type, ...], fields: tuple[Any, ...]) -> AddressRecord:
    # `types` keeps 1 and 1.0 apart: they are equal keys, but not the same signed bytes.
    del types
    return AddressRecord._parse(dict(zip(_FIELDS, fields, strict=True)))


def sign_record(
    identity: Identity, address: str, dht_address: str, timestamp: float, ttl: float
) -> AddressRecord:
    unsigned = AddressRecord(
        identity.fingerprint, identity.card.sign_key, address, dht_address, timestamp, ttl, b""
    )
    signature = identity.sign(canonical_json(unsigned.payload()))
    return dataclasses.replace(unsigned, signature=signature)


@dataclass
class _Held:
    record: AddressRecord
    expires: float


class RecordStore:
    """The records this node holds for others, newest per key, until they expire."""

    def __init__(self, max_records: int = 10_000) -> None:
        self.max_records = max_records
        self._held: dict[int, _Held] = {}
        self._expiries: list[tuple[float, int]] = []  # (expires, key), stale entries skipped

    def put(self, record: AddressRecord, now: float) -> str | None:
        """Hold `record`; None when stored, else why not (older, conflict, full)."""
        held = self.get(record.key, now)
        if held is not None:
            if record.timestamp < held.timestamp:
                return "older"
            if record.timestamp == held.timestamp and record != held:
                return "conflict"  # two different records signed for the same instant
        elif len(self._held) >= self.max_records:
            self.expire(now)
            if len(self._held) >= self.max_records:
                return "full"
        expires = now + min(record.ttl, MAX_TTL)
        self._held[record.key] = _Held(record, expires)
        heapq.heappush(self._expiries, (expires, record.key))
        return None

    def get(self, key: int, now: float) -> AddressRecord | None:
        held = self._held.get(key)
        if held is None:
            return None
        if held.expires <= now:
            del self._held[key]
            return None
        return held.record

    def expire(self, now: float) -> int:
        expired = 0
        while (expires := self.next_expiry()) is not None and expires <= now:
            _, key = heapq.heappop(self._expiries)
            del self._held[key]
            expired += 1
        return expired

    def next_expiry(self) -> float | None:
        # Asked after every datagram: a heap, whose entries for replaced records are dropped
        # when they come to the top.
        while self._expiries:
            expires, key = self._expiries[0]
            held = self._held.get(key)
            if held is not None and held.expires == expires:
                return expires
            heapq.heappop(self._expiries)
        return None

    def __len__(self) -> int:
        return len(self._held)
