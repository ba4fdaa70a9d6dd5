"""The public HTTP API peers use: health, readiness, identity card, file listing, envelopes.

`/health` answers as soon as the node serves; `/ready` only once it can do its job: with a
DHT joined through bootstrap nodes, when it has joined and knows at least one contact.

Envelopes are served to anyone: they are ciphertext unless public, and signed either way.
The listing answers 304 to a matching If-None-Match (the generation ETag the sync loop sends)
or to an If-Modified-Since not older than the last change; downloads honour Range and If-Match.
"""

from __future__ import annotations

import email.utils
import re
from typing import TYPE_CHECKING

from aiohttp import web

from syncpeer.core import protocol
from syncpeer.core.chunks import ChunkList
from syncpeer.core.errors import InvalidName
from syncpeer.core.names import validate_name
from syncpeer.core.protocol import Mismatch
from syncpeer.io.client import CHUNK_BYTES
from syncpeer.io.httperrors import ApiError, json_error

if TYPE_CHECKING:
    from syncpeer.io.node import Node

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str, size: int) -> tuple[int, int]:
    """Inclusive (first, last) byte positions of a single range; ValueError when unservable."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise ValueError(f"unsupported Range {header!r}; use bytes=N- or bytes=N-M")
    if match.group(1) == "":
        suffix = int(match.group(2))
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size - 1
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError(f"range {header!r} is outside 0..{size - 1}")
    return first, min(last, size - 1)


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match / If-Match header names `etag` (weak or strong) or is "*"."""
    tokens = [token.strip().removeprefix("W/") for token in header.split(",")]
    return "*" in tokens or etag in tokens


class PublicApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.log = node.log.bind(component="http")
        self._refused: dict[str | None, str] = {}  # peer -> the mismatch logged for it
        self._chunk_lists: dict[str, ChunkList] = {}  # envelope sha256 -> its chunks

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.get("/health", self.health),
            web.get("/ready", self.ready),
            web.get("/identity", self.identity),
            web.get("/files", self.listing),
            web.get("/files/{name}", self.envelope, allow_head=False),
        ]
        if protocol.V1_1 in self.node.versions.speaks:
            routes.append(web.get("/files/{name}/chunks", self.chunks, allow_head=False))
        return routes

    async def health(self, request: web.Request) -> web.Response:
        node = self.node
        return web.json_response(
            {
                "status": "ok",
                "name": node.identity.name,
                "fingerprint": node.identity.fingerprint,
                "address": node.address,
                "protocols": list(node.versions.speaks),
            }
        )

    async def ready(self, request: web.Request) -> web.Response:
        dht = self.node.dht
        protocol = dht.protocol if dht is not None else None
        if dht is None and self.node.config.udp_port is None:
            return web.json_response({"status": "ready"})  # no DHT to join
        if protocol is not None and protocol.ready:
            return web.json_response({"status": "ready"})
        joined = protocol is not None and protocol.joined
        contacts = len(protocol.table) if protocol is not None else 0
        return web.json_response(
            {"status": "joining", "joined": joined, "contacts": contacts}, status=503
        )

    async def identity(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.identity.card.to_json())

    async def listing(self, request: web.Request) -> web.Response:
        offered = protocol.parse_header(request.headers.get(protocol.HEADER))
        agreed = protocol.answer(self.node.versions, offered)
        if isinstance(agreed, Mismatch):
            return self._refuse(request, agreed)
        self._refused.pop(request.remote, None)
        store = self.node.files.model
        generation = 0 if "stale-etag" in self.node.mutants else store.generation
        etag = f'"{self.node.instance}-{generation}"'
        headers = {
            "ETag": etag,
            "Last-Modified": email.utils.formatdate(store.last_modified, usegmt=True),
            "Cache-Control": "no-cache",
            protocol.HEADER: agreed.version,
        }
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            if etag_matches(if_none_match, etag):
                return web.Response(status=304, headers=headers)
        elif (since := request.if_modified_since) is not None and (
            int(store.last_modified) <= since.timestamp()
        ):
            return web.Response(status=304, headers=headers)
        author = request.query.get("author")
        hide_deletes = "forget-tombstone" in self.node.mutants
        files = [f.listing_json() for f in store.files(author) if not (f.deleted and hide_deletes)]
        return web.json_response({"files": files, "generation": store.generation}, headers=headers)

    def _refuse(self, request: web.Request, mismatch: Mismatch) -> web.Response:
        """426 with the versions this node speaks; logged once per peer, not every poll."""
        peer = request.remote
        if self._refused.get(peer) != mismatch.message:
            self._refused[peer] = mismatch.message
            self.log.error(
                "protocol_mismatch",
                trace_id=request.headers.get("X-Trace-Id"),
                peer=peer,
                error=mismatch.message,
            )
        return web.json_response(
            {
                "error": mismatch.message,
                "code": protocol.MISMATCH_CODE,
                "protocols": list(mismatch.ours),
            },
            status=protocol.MISMATCH_STATUS,
            headers={protocol.HEADER: self.node.versions.header()},
        )

    async def chunks(self, request: web.Request) -> web.Response:
        """v1.1: the current envelope's chunk hashes (If-Match pins which envelope)."""
        try:
            name = validate_name(request.match_info["name"])
        except InvalidName as error:
            raise ApiError(400, str(error)) from None
        opened = self.node.files.open_current(name)
        if opened is None:
            raise ApiError(404, f"no file named {name!r}")
        file, handle = opened
        with handle:
            etag = f'"{file.sha256}"'
            if_match = request.headers.get("If-Match")
            if if_match is not None and not etag_matches(if_match, etag):
                return json_error(412, f"current envelope of {name!r} is {etag}, not {if_match}")
            chunks = self._chunk_lists.get(file.sha256)
            if chunks is None:
                chunks = ChunkList.of(handle.read())
                if len(self._chunk_lists) >= 256:
                    self._chunk_lists.pop(next(iter(self._chunk_lists)))
                self._chunk_lists[file.sha256] = chunks
        return web.json_response(chunks.to_json(), headers={"ETag": etag})

    async def envelope(self, request: web.Request) -> web.StreamResponse:
        try:
            name = validate_name(request.match_info["name"])
        except InvalidName as error:
            raise ApiError(400, str(error)) from None
        # Looking up and opening happen with no await between them, so the handle and the
        # metadata belong to the same envelope even if a new version lands meanwhile.
        opened = self.node.files.open_current(name)
        if opened is None:
            raise ApiError(404, f"no file named {name!r}")
        file, handle = opened
        with handle:
            etag = f'"{file.sha256}"'
            if_match = request.headers.get("If-Match")
            if if_match is not None and not etag_matches(if_match, etag):
                return json_error(412, f"current envelope of {name!r} is {etag}, not {if_match}")
            headers = {
                "ETag": etag,
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            if file.trace_id:
                headers["X-Trace-Id"] = file.trace_id
            first, last, status = 0, file.size - 1, 200
            if "Range" in request.headers:
                try:
                    first, last = parse_range(request.headers["Range"], file.size)
                except ValueError as error:
                    return json_error(416, str(error), {"Content-Range": f"bytes */{file.size}"})
                status = 206
                headers["Content-Range"] = f"bytes {first}-{last}/{file.size}"
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = last - first + 1
            await response.prepare(request)
            handle.seek(first)
            remaining = last - first + 1
            try:
                while remaining:
                    chunk = handle.read(min(CHUNK_BYTES, remaining))
                    if not chunk:
                        raise ConnectionError("envelope file is shorter than its size")
                    await response.write(chunk)
                    remaining -= len(chunk)
                    self.node.counters.bytes_served += len(chunk)
                await response.write_eof()
            except ConnectionError as error:
                # The downloader went away; it resumes with a Range request later.
                outcome = f"aborted: {type(error).__name__}"
            else:
                outcome = "complete"
        self.log.info(
            "file_served",
            trace_id=request.headers.get("X-Trace-Id") or file.trace_id,
            name=name,
            version=file.version,
            author=file.author,
            first=first,
            last=last,
            outcome=outcome,
            peer=request.remote,
        )
        return response
