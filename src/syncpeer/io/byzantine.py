"""Lying peers and deliberate bugs in front of the aiohttp API, switched on by environment
variables for peerlab's chaos and mutation tests; an honest node (neither variable set)
installs nothing.

`SYNCPEER_BYZANTINE=<mode>` makes the node lie to its friends on the public API; what each
mode lists and serves is `syncpeer.core.byzantine`. `Node.start` calls `install`, whose
middleware answers the public routes it lies on before the honest handlers see them; it also
starts the `rebroadcast` mutant's watcher when the node's mutants (`SYNCPEER_MUTANTS`, read
by `syncpeer.io.config`) include it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from syncpeer.core.byzantine import MODES, VARIABLE, Liar, mode_of
from syncpeer.core.errors import InvalidEnvelope, NotARecipient, UnknownFriend
from syncpeer.core.store import StoredFile

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
        if request.method == "GET" and request.path == "/files":
            # No ETag: every poll gets the (lying) listing in full.
            return web.json_response(liar.listing(_requester(request)))
        name = request.match_info.get("name")
        if request.method == "GET" and name is not None and request.path.startswith("/files/"):
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
