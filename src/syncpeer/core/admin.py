"""The admin API's words, sans-IO: how a file is described to the harness, and what a
publish request must hold. Every driver of the admin API (`syncpeer.io.admin` over aiohttp,
or a simulator) answers with these, so they say the same everywhere.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from syncpeer.core.store import StoredFile


class BadRequest(ValueError):
    """A request the admin API refuses with 400 and this message."""


def describe(file: StoredFile, me: str) -> dict[str, Any]:
    """A file as `GET /admin/files` lists it to the node `me` (plaintext facts only when
    `me` can decrypt it)."""
    readable = file.readable_by(me)
    return {
        "name": file.name,
        "author": file.author,
        "version": file.version,
        "timestamp": file.timestamp,
        "size": file.size,
        "sha256": file.sha256,
        "plain_size": file.plain_size if readable else None,
        "sha256_plain": file.plain_sha256 if readable else None,
        "decryptable": readable,
        "public": file.public,
        "recipients": list(file.recipients),
        "trace_id": file.trace_id,
        "deleted": file.deleted,
    }


def publish_request(body: dict[str, Any]) -> tuple[object, bytes, list[str] | None]:
    """The name (checked by the publish), content and recipients (None: public) of a
    `POST /admin/files` body; BadRequest naming what is wrong."""
    recipients = body.get("recipients", [])
    if recipients != "public" and not (
        isinstance(recipients, list) and all(isinstance(item, str) for item in recipients)
    ):
        raise BadRequest('recipients must be a list of fingerprints or "public"')
    content_b64 = body.get("content_b64")
    if not isinstance(content_b64, str):
        raise BadRequest("content_b64 must be a base64 string")
    try:
        content = base64.b64decode(content_b64, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("content_b64 is not valid base64") from None
    return body.get("name"), content, None if recipients == "public" else recipients
