"""Lying peers and deliberate bugs in front of the aiohttp API, switched on by environment
variables for peerlab's chaos and mutation tests; an honest node (neither variable set)
installs nothing.

`SYNCPEER_BYZANTINE=<mode>` makes the node lie to its friends on the public API; what each
mode lists and serves is `syncpeer.core.byzantine` (a slowloris sends the honest answer,
slowly: `Liar.pace`, and its chunk lists honestly at once). `Node.start` calls `install`,
whose middleware answers the public routes it lies on before the honest handlers see
them; it also starts the `rebroadcast` mutant's watcher when the node's mutants
(`SYNCPEER_MUTANTS`, read by `syncpeer.io.config`) include it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from syncpeer.core import serve
from syncpeer.core.byzantine import MODES, VARIABLE, Liar, mode_of
from syncpeer.core.errors import InvalidEnvelope, NotARecipient, UnknownFriend
from syncpeer.core.store import StoredFile
from syncpeer.io.api import respond

if TYPE_CHECKING:
    from syncpeer.io.node import Node

__all__ = ["MODES", "install"]

# The rebroadcast watcher runs for the life of the process; asyncio keeps only weak
# references to tasks, so this set keeps it alive.
_WATCHERS: set[asyncio.Task[None]] = set()


def install(node: Node) -> list[Middleware]:
    """Read the byzantine mode from the environment; the middlewares a lying node needs (none
    for an honest one). ValueError names an unknown mode."""
    if node.mutants:
        node.log.warning("mutants_enabled", mutants=list(node.mutants))
    if "rebroadcast" in node.mutants:
        watcher = asyncio.get_running_loop().create_task(_rebroadcast(node))
        _WATCHERS.add(watcher)
        watcher.add_done_callback(_WATCHERS.discard)
    mode = mode_of(os.environ.get(VARIABLE))
    if mode is None:
        return []
    node.log.warning("byzantine_mode", mode=mode, behaviour=MODES[mode])
    return [_middleware(node, Liar(mode, node.files.model, lambda file: _read(node, file)))]


def _read(node: Node, file: StoredFile) -> bytes:
    files = node.files
    current = files.model.current(file.name)
    path = files.current_path(file.name) if current == file else files.history_path(file)
    return path.read_bytes()


def _requester(request: web.Request) -> str | None:
    """Requests without a trace id (the test harness, not a syncpeer peer) name no peer."""
    return request.remote if "X-Trace-Id" in request.headers else None


def _middleware(node: Node, liar: Liar) -> Middleware:
    @web.middleware
    async def lie(request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.get("name")
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        if request.method == "GET" and name is not None and route == "/files/{name}/chunks":
            lie = liar.chunk_list(name)
            return await handler(request) if lie is None else respond(lie)
        if liar.trickles:
            if request.method == "GET" and name is not None and route == "/files/{name}":
                return await _trickle(node, liar, request, name)
            return await handler(request)
        if request.method == "GET" and request.path == "/files":
            # No ETag and no protocol version: every poll gets the (lying) listing in full,
            # in v1.0.
            return web.json_response(liar.listing(_requester(request)))
        if request.method == "GET" and name is not None and route == "/files/{name}":
            served = liar.envelope(name, _requester(request))
            if served is None:
                return web.json_response({"error": f"no file named {name!r}"}, status=404)
            event = liar.served_event(name, served[0], request.remote)
            node.log.info(event.event, **event.fields)
            data = served[1]
            return web.Response(
                body=data,
                headers={"ETag": f'"{hashlib.sha256(data).hexdigest()}"'},
                content_type="application/octet-stream",
            )
        response = await handler(request)
        if (
            request.method == "POST"
            and request.path == "/admin/files"
            and response.status == 200
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
        ):
            _equivocate(node, liar, json.loads(response.body)["name"])
        return response

    return lie


async def _trickle(node: Node, liar: Liar, request: web.Request, name: str) -> web.StreamResponse:
    """The honest answer's head (`syncpeer.core.serve`: If-Match, Range, errors alike), then
    its body as `Liar.pace` says, until the peer gives up."""
    answer, part = serve.envelope(
        node.files.model,
        name,
        if_match=request.headers.get("If-Match"),
        range_header=request.headers.get("Range"),
    )
    opened = node.files.open_current(part.file.name) if part is not None else None
    if part is None or opened is None:
        return respond(answer)
    with opened[1] as handle:
        handle.seek(part.first)
        body = handle.read(part.length)
    headers = {k: v for k, v in answer.headers.items() if k != "Content-Length"}
    response = web.StreamResponse(status=answer.status, headers=headers)
    response.content_length = len(body)
    await response.prepare(request)
    fast, piece, every = liar.pace(len(body))
    event = liar.served_event(name, part.file, request.remote, first=part.first, fast=fast)
    node.log.info(event.event, **event.fields)
    try:
        await response.write(body[:fast])
        for at in range(fast, len(body), piece):
            await asyncio.sleep(every)
            await response.write(body[at : at + piece])
        await response.write_eof()
    except ConnectionError:
        pass  # the peer gave up on us: what a slowloris wants it to take long to do
    return response


def _equivocate(node: Node, liar: Liar, name: str) -> None:
    event = liar.equivocate(node.identity, node.keyring, name, node.plaintext, node.random)
    if event is not None:
        getattr(node.log, event.level)(event.event, **event.fields)


async def _rebroadcast(node: Node) -> None:
    """The `rebroadcast` mutant: a folder watcher that takes the syncer's own writes for
    local edits and publishes every file received as this node's next version."""
    seq = 0
    while True:
        await asyncio.sleep(0.1)
        events, seq = node.events.since(seq)
        for event in events:
            if event.get("event") != "file_download_completed" or event.get("deleted"):
                continue
            current = node.files.model.current(str(event.get("name")))
            if current is None or current.author == node.fingerprint:
                continue
            try:
                content = node.plaintext(current.name)
                recipients = (
                    None
                    if current.public
                    else [r for r in current.recipients if node.keyring.get(r) is not None]
                )
                node.publish(current.name, content, recipients)
            except (KeyError, NotARecipient, InvalidEnvelope, UnknownFriend):
                continue
