"""The public HTTP API peers use, over aiohttp: health, readiness, identity card, file
listing, envelopes and (protocol v1.1) their chunk lists.

`/health` answers as soon as the node serves; `/ready` only once it can do its job: with a
DHT joined through bootstrap nodes, when it has joined and knows at least one contact.

What each answer says is decided by `syncpeer.core.serve` (the protocol version, ETags and
304s, If-Match, Range, chunk lists, the serving side's mutants); this module reads the
request's headers into it and streams the envelope's bytes from disk. Envelopes are served
to anyone: they are ciphertext unless public, and signed either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from syncpeer.core import protocol, serve
from syncpeer.core.fetch import FROM_HEADER
from syncpeer.core.store import StoredFile
from syncpeer.core.sync_events import FriendHeard
from syncpeer.io.client import CHUNK_BYTES

if TYPE_CHECKING:
    from syncpeer.io.node import Node


def respond(answer: serve.Answer) -> web.Response:
    """An aiohttp response for a core answer with a JSON body (or none)."""
    if answer.body is None:
        return web.Response(status=answer.status, headers=answer.headers)
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


class PublicApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.log = node.log.bind(component="http")
        self.negotiator = serve.Negotiator(node.versions)
        self.chunk_lists = serve.ChunkLists()

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
        wants_dht = self.node.config.udp_port is not None
        return respond(serve.ready(wants_dht, dht.protocol if dht is not None else None))

    async def identity(self, request: web.Request) -> web.Response:
        return web.json_response(self.node.identity.card.to_json())

    async def listing(self, request: web.Request) -> web.Response:
        trace_id = request.headers.get("X-Trace-Id")
        version = self.negotiator.poll(
            request.headers.get(protocol.HEADER), request.remote, trace_id
        )
        if isinstance(version, serve.Refused):
            if version.log is not None:
                self.log.error(version.log.event, **version.log.fields)
            return respond(version.answer)
        poller = request.headers.get(FROM_HEADER)
        if poller and self.node.syncer.engine.gave_up_on(poller):
            self.node.syncer.feed(FriendHeard(poller))
        since = request.if_modified_since
        return respond(
            serve.listing(
                self.node.files.model,
                self.node.instance,
                self.node.mutants,
                version,
                if_none_match=request.headers.get("If-None-Match"),
                if_modified_since=since.timestamp() if since is not None else None,
                author=request.query.get("author"),
            )
        )

    async def chunks(self, request: web.Request) -> web.Response:
        return respond(
            serve.chunk_list(
                self.node.files.model,
                request.match_info["name"],
                self.chunk_lists,
                self._read,
                if_match=request.headers.get("If-Match"),
            )
        )

    def _read(self, file: StoredFile) -> bytes:
        return self.node.files.current_path(file.name).read_bytes()

    async def envelope(self, request: web.Request) -> web.StreamResponse:
        # Deciding and opening happen with no await between them, so the handle and the
        # metadata belong to the same envelope even if a new version lands meanwhile.
        answer, part = serve.envelope(
            self.node.files.model,
            request.match_info["name"],
            if_match=request.headers.get("If-Match"),
            range_header=request.headers.get("Range"),
        )
        if part is None:
            return respond(answer)
        opened = self.node.files.open_current(part.file.name)
        assert opened is not None  # decided from the same store, with no await since
        handle = opened[1]
        with handle:
            headers = {k: v for k, v in answer.headers.items() if k != "Content-Length"}
            response = web.StreamResponse(status=answer.status, headers=headers)
            response.content_length = part.length
            await response.prepare(request)
            handle.seek(part.first)
            remaining = part.length
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
        trace_id = request.headers.get("X-Trace-Id")
        event = serve.served_event(part, trace_id, outcome, request.remote)
        self.log.info(event.event, **event.fields)
        return response
