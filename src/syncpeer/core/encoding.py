"""Byte encodings shared by cards and envelopes: canonical JSON, strict base64, SHA-256 hex."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that signatures are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, *, length: int | None = None, field: str = "value") -> bytes:
    """Decode standard base64, refusing anything sloppy so one value has one encoding."""
    if not isinstance(text, str):
        raise ValueError(f"{field} must be a base64 string")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"{field} is not valid base64: {error}") from None
    if length is not None and len(data) != length:
        raise ValueError(f"{field} must decode to {length} bytes, got {len(data)}")
    return data


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
