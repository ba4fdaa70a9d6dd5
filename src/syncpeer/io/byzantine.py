"""Lying peers and deliberate bugs, switched on by environment variables for peerlab's chaos
and mutation tests; an honest node (neither variable set) installs nothing.

`SYNCPEER_BYZANTINE=<mode>` makes the node lie to its friends on the public API:

    corrupt        serves every envelope with altered bytes, listed under the altered
                   bytes' size and SHA-256: only the author's signature shows the forgery
    lie-size       lists every envelope 100 bytes longer than it is
    lie-hash       lists every envelope under a SHA-256 that is not its own
    lie-timestamp  lists every envelope an hour later than its signed timestamp
    selective      for each file it publishes, signs a second envelope with other content
                   under the same version and timestamp, and shows it to every other peer
                   (equivocation)
    replay         lists and serves the oldest version it holds of each file as current
    slowloris      lists honestly and answers downloads honestly (Range and If-Match too),
                   sends half of what was asked at once, then a few bytes now and then,
                   forever: the friend that answers and then stalls mid-body

Other liars' envelopes ignore If-Match and Range, as a liar would. `Node.start` calls `install`,
whose middleware answers the public routes it lies on before the honest handlers see them;
it also starts the `rebroadcast` mutant's watcher when the node's mutants (`SYNCPEER_MUTANTS`,
read by `syncpeer.io.config`) include it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from syncpeer.core import envelope
from syncpeer.core.encoding import canonical_json
from syncpeer.core.errors import InvalidEnvelope, NotARecipient, UnknownFriend
from syncpeer.core.store import StoredFile
from syncpeer.io.api import etag_matches, parse_range

if TYPE_CHECKING:
    from syncpeer.io.node import Node

MODES: dict[str, str] = {
    "corrupt": "serves altered envelope bytes under matching listing hashes",
    "lie-size": "lists every envelope with a wrong size",
    "lie-hash": "lists every envelope with a wrong SHA-256",
    "lie-timestamp": "lists every envelope an hour later than it was signed",
    "selective": "shows half of its peers a different signed version of its files",
    "replay": "lists and serves the oldest version it holds as current",
    "slowloris": "answers downloads, then trickles a few bytes now and then, forever",
}
HONEST = "off"
TIMESTAMP_LIE_S = 3600.0
SIZE_LIE_BYTES = 100
TRICKLE_BYTES = 8  # what a slowloris sends ...
TRICKLE_EVERY_S = 1.0  # ... this often, once the first half of the answer went out
_HEADER_LENGTH = struct.Struct(">I")
_BODY_LENGTH = struct.Struct(">Q")

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
    mode = os.environ.get("SYNCPEER_BYZANTINE", "").strip() or HONEST
    if mode == HONEST:
        return []
    if mode not in MODES:
        raise ValueError(
            f"SYNCPEER_BYZANTINE is {mode!r}; use one of {', '.join(MODES)} or {HONEST!r}"
        )
    node.log.warning("byzantine_mode", mode=mode, behaviour=MODES[mode])
    return [Liar(node, mode).middleware()]


class Liar:
    """The public API of a node in byzantine `mode`."""

    def __init__(self, node: Node, mode: str) -> None:
        self.node = node
        self.mode = mode
        self._peers: dict[str, int] = {}  # peer address -> order of first contact
        self._alternates: dict[str, tuple[StoredFile, bytes]] = {}
        self._corrupted: dict[str, bytes] = {}  # envelope sha256 -> altered bytes

    def middleware(self) -> Middleware:
        @web.middleware
        async def lie(request: web.Request, handler: Handler) -> web.StreamResponse:
            return await self.handle(request, handler)

        return lie

    async def handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        name = request.match_info.get("name")
        if self.mode == "slowloris":
            # The file's bytes trickle; its v1.1 chunk list is answered honestly, so the
            # stall comes mid-body, where a download has something to keep.
            resource = request.match_info.route.resource
            if (
                request.method == "GET"
                and name is not None
                and resource is not None
                and resource.canonical == "/files/{name}"
            ):
                return await self._trickle(request, name, handler)
            return await handler(request)
        if request.method == "GET" and request.path == "/files":
            return self._listing(request)
        if request.method == "GET" and name is not None and request.path.startswith("/files/"):
            return self._envelope(request, name)
        response = await handler(request)
        if (
            self.mode == "selective"
            and request.method == "POST"
            and request.path == "/admin/files"
            and response.status == 200
            and isinstance(response, web.Response)
            and isinstance(response.body, bytes)
        ):
            self._equivocate(json.loads(response.body)["name"])
        return response

    # ------------------------------------------------------------------ what each peer sees

    def _second_group(self, request: web.Request) -> bool:
        """Peers alternate between two groups in the order they first asked; requests
        without a trace id (the test harness, not a syncpeer peer) stay in the first."""
        if "X-Trace-Id" not in request.headers or request.remote is None:
            return False
        order = self._peers.setdefault(request.remote, len(self._peers))
        return order % 2 == 1

    def _shown(self, file: StoredFile, request: web.Request) -> tuple[StoredFile, bytes]:
        """The version of `file`'s name this peer is shown, and the bytes it is served."""
        files = self.node.files
        if self.mode == "replay" and (kept := files.model.history(file.name)):
            oldest = kept[-1]
            return oldest, files.history_path(oldest).read_bytes()
        alternate = self._alternates.get(file.name)
        if (
            alternate is not None
            and alternate[0].key[:3] == file.key[:3]
            and self._second_group(request)
        ):
            return alternate
        found = files.read_current(file.name)
        assert found is not None
        return found

    def _listing(self, request: web.Request) -> web.Response:
        entries = []
        for file in self.node.files.model.files():
            shown, data = self._shown(file, request)
            entry: dict[str, Any] = shown.listing_json()
            if self.mode == "corrupt":
                bad = self._corrupt(shown.sha256, data)
                entry["size"], entry["sha256"] = len(bad), hashlib.sha256(bad).hexdigest()
            elif self.mode == "lie-size":
                entry["size"] += SIZE_LIE_BYTES
            elif self.mode == "lie-hash":
                entry["sha256"] = hashlib.sha256(b"lie" + shown.sha256.encode()).hexdigest()
            elif self.mode == "lie-timestamp":
                entry["timestamp"] += TIMESTAMP_LIE_S
            entries.append(entry)
        # No ETag: every poll gets the (lying) listing in full.
        return web.json_response({"files": entries, "generation": self.node.files.model.generation})

    def _envelope(self, request: web.Request, name: str) -> web.Response:
        current = self.node.files.model.current(name)
        if current is None:
            return web.json_response({"error": f"no file named {name!r}"}, status=404)
        shown, data = self._shown(current, request)
        if self.mode == "corrupt":
            data = self._corrupt(shown.sha256, data)
        self._served(request, name, shown.version)
        return web.Response(
            body=data,
            headers={"ETag": f'"{hashlib.sha256(data).hexdigest()}"'},
            content_type="application/octet-stream",
        )

    async def _trickle(
        self, request: web.Request, name: str, handler: Handler
    ) -> web.StreamResponse:
        """The honest answer's status and headers, half its body at once, then
        TRICKLE_BYTES every TRICKLE_EVERY_S seconds until the peer gives up."""
        opened = self.node.files.open_current(name)
        if opened is None:
            return await handler(request)  # the honest 404
        file, handle = opened
        with handle:
            etag = f'"{file.sha256}"'
            if_match = request.headers.get("If-Match")
            if if_match is not None and not etag_matches(if_match, etag):
                return await handler(request)  # the honest 412
            first, status, headers = 0, 200, {"ETag": etag, "Accept-Ranges": "bytes"}
            if "Range" in request.headers:
                try:
                    first = parse_range(request.headers["Range"], file.size)[0]
                except ValueError:
                    return await handler(request)  # the honest 416
                status = 206
                headers["Content-Range"] = f"bytes {first}-{file.size - 1}/{file.size}"
            handle.seek(first)
            body = handle.read()
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        response.content_type = "application/octet-stream"
        await response.prepare(request)
        half = len(body) // 2
        self._served(request, name, file.version, first=first, fast=half)
        try:
            await response.write(body[:half])
            for at in range(half, len(body), TRICKLE_BYTES):
                await asyncio.sleep(TRICKLE_EVERY_S)
                await response.write(body[at : at + TRICKLE_BYTES])
            await response.write_eof()
        except ConnectionError:
            pass  # the peer gave up on us: what a slowloris wants it to take long to do
        return response

    def _served(self, request: web.Request, name: str, version: int, **fields: int) -> None:
        self.node.log.info(
            "byzantine_served",
            component="http",
            name=name,
            version=version,
            mode=self.mode,
            peer=request.remote,
            **fields,
        )

    # ------------------------------------------------------------------ forgeries

    def _corrupt(self, sha256: str, data: bytes) -> bytes:
        """`data` with other content, header fixed to match it, original signature kept."""
        if sha256 not in self._corrupted:
            self._corrupted[sha256] = _forge(data)
        return self._corrupted[sha256]

    def _equivocate(self, name: str) -> None:
        """Sign a second envelope of the version just published, with other content."""
        node = self.node
        current = node.files.model.current(name)
        if current is None or current.author != node.fingerprint or current.deleted:
            return
        try:
            content = node.plaintext(name) + b"\n(what the other half of my peers see)"
            cards = (
                None
                if current.public
                else node.keyring.cards_for(
                    [r for r in current.recipients if r != node.fingerprint]
                )
            )
        except (KeyError, NotARecipient, InvalidEnvelope, UnknownFriend):
            return
        data = envelope.seal(
            node.identity,
            name=name,
            version=current.version,
            timestamp=current.timestamp,
            plaintext=content,
            recipients=cards,
            random=node.random,
            trace_id=current.trace_id,
        )
        file = StoredFile.from_envelope(
            envelope.verify(data), len(data), hashlib.sha256(data).hexdigest()
        )
        self._alternates[name] = (file, data)
        node.log.warning(
            "byzantine_equivocated",
            name=name,
            version=file.version,
            sha256=current.sha256,
            other=file.sha256,
        )


def _forge(data: bytes) -> bytes:
    """Alter an envelope's content and re-frame it under its original signature.

    A public body is replaced and the header's size and SHA-256 follow it, so the only check
    left that can tell is the signature; an encrypted body has one byte flipped (its size
    stays), which the signature catches first and AES-GCM only at decryption.
    """
    (header_length,) = _HEADER_LENGTH.unpack_from(data, 4)
    header_end = 8 + header_length
    header = json.loads(data[8:header_end])
    (body_length,) = _BODY_LENGTH.unpack_from(data, header_end)
    body = data[header_end + 8 : header_end + 8 + body_length]
    signature = data[header_end + 8 + body_length :]
    if header.get("public"):
        body = body[::-1] + b"forged"
        header["size"], header["sha256"] = len(body), hashlib.sha256(body).hexdigest()
    else:
        body = bytes([body[0] ^ 0xFF]) + body[1:]
    header_bytes = canonical_json(header)
    return b"".join(
        (
            data[:4],
            _HEADER_LENGTH.pack(len(header_bytes)),
            header_bytes,
            _BODY_LENGTH.pack(len(body)),
            body,
            signature,
        )
    )


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
