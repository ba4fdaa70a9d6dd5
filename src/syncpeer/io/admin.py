"""The admin HTTP API the test harness and operators drive a node with: friends, publishing,
plaintext access, history, counters and recent events.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from syncpeer.core import envelope
from syncpeer.core.admin import BadRequest, describe, publish_request
from syncpeer.core.errors import (
    InvalidCard,
    InvalidEnvelope,
    InvalidName,
    NotARecipient,
    UnknownFriend,
)
from syncpeer.core.keyring import Friend
from syncpeer.core.names import validate_name
from syncpeer.core.store import StoredFile
from syncpeer.io.discovery import DiscoveryError
from syncpeer.io.httperrors import ApiError

if TYPE_CHECKING:
    from syncpeer.io.node import Node


class AdminApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/friends", self.list_friends),
            web.post("/admin/friends", self.add_friend),
            web.delete("/admin/friends/{fingerprint}", self.remove_friend),
            web.get("/admin/files", self.list_files),
            web.post("/admin/files", self.publish),
            web.get("/admin/files/{name}/content", self.content),
            web.get("/admin/files/{name}/versions", self.versions),
            web.post("/admin/open", self.open_envelope),
            web.get("/admin/status", self.status),
            web.get("/admin/events", self.events),
        ]

    async def list_friends(self, request: web.Request) -> web.Response:
        return web.json_response({"friends": [friend.to_json() for friend in self.node.keyring]})

    async def add_friend(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if set(body) == {"fingerprint"}:
            return await self._add_friend_by_fingerprint(body["fingerprint"])
        try:
            friend = Friend.from_json(body)
            added = self.node.add_friend(friend)
        except (InvalidCard, ValueError) as error:
            raise ApiError(400, str(error)) from None
        return web.json_response({"added": added, "friend": friend.to_json()})

    async def _add_friend_by_fingerprint(self, fingerprint: object) -> web.Response:
        """{"fingerprint": F} alone: the DHT finds F's address, F's node serves its card."""
        if fingerprint == self.node.fingerprint:
            raise ApiError(400, "a node cannot add its own card as a friend")
        try:
            friend, lookup = await self.node.discover_friend(fingerprint)
            added = self.node.add_friend(friend)
        except DiscoveryError as error:
            raise ApiError(error.status, str(error)) from None
        return web.json_response(
            {
                "added": added,
                "friend": friend.to_json(),
                "lookup": {
                    "hops": lookup.hops,
                    "rpcs": len(lookup.queried),
                    "duration_ms": round(lookup.seconds * 1000, 3),
                },
            }
        )

    async def remove_friend(self, request: web.Request) -> web.Response:
        fingerprint = request.match_info["fingerprint"]
        try:
            self.node.remove_friend(fingerprint)
        except UnknownFriend as error:
            raise ApiError(404, str(error)) from None
        return web.json_response({"removed": fingerprint})

    async def list_files(self, request: web.Request) -> web.Response:
        files = self.node.files.model.files(request.query.get("author"))
        return web.json_response({"files": [self._describe(file) for file in files]})

    async def publish(self, request: web.Request) -> web.Response:
        try:
            name, content, recipients = publish_request(await _json_body(request))
            file = self.node.publish(name, content, recipients)
        except (BadRequest, InvalidName, UnknownFriend) as error:
            raise ApiError(400, str(error)) from None
        return web.json_response(self._describe(file))

    async def content(self, request: web.Request) -> web.Response:
        name = _name(request)
        if (current := self.node.files.model.current(name)) is not None and current.deleted:
            raise ApiError(404, f"{name!r} was deleted (version {current.version})")
        try:
            plaintext = self.node.plaintext(name)
        except NotARecipient:
            raise ApiError(403, "not a recipient") from None
        except KeyError:
            raise ApiError(404, f"no file named {name!r}") from None
        return web.Response(body=plaintext, content_type="application/octet-stream")

    async def open_envelope(self, request: web.Request) -> web.Response:
        """Verify and decrypt an envelope handed in from outside (e.g. fetched from a stranger):
        what a node could read of a file it was never meant to have."""
        data = await request.read()
        try:
            plaintext = envelope.decrypt(
                envelope.verify(data, self.node.mutants), self.node.identity
            )
        except InvalidEnvelope as error:
            raise ApiError(422, f"rejected envelope: {error}") from None
        except NotARecipient:
            raise ApiError(403, "not a recipient") from None
        self.node.log.info("envelope_opened", component="crypto", size=len(data))
        return web.Response(body=plaintext, content_type="application/octet-stream")

    async def versions(self, request: web.Request) -> web.Response:
        name = _name(request)
        model = self.node.files.model
        current = model.current(name)
        history = model.history(name)
        if current is None and not history:
            raise ApiError(404, f"no file named {name!r}")
        return web.json_response(
            {
                "name": name,
                "current": None if current is None else self._describe(current),
                "versions": [
                    {**self._describe(file), "path": str(self.node.files.history_path(file))}
                    for file in history
                ],
            }
        )

    async def status(self, request: web.Request) -> web.Response:
        node = self.node
        return web.json_response(
            {
                "name": node.identity.name,
                "fingerprint": node.identity.fingerprint,
                "address": node.address,
                "friends": len(node.keyring),
                "files": len(node.files.model.files()),
                "generation": node.files.model.generation,
                "in_flight": node.engine.in_flight,
                "partial_bytes": sum(node.files.partials().values()),
                **node.counters.to_json(),
                "dht": node.dht.status() if node.dht is not None else None,
                "protocol": {
                    "speaks": list(node.versions.speaks),
                    "friends": node.engine.protocols(),
                    "mismatches": node.engine.mismatches(),
                },
            }
        )

    async def events(self, request: web.Request) -> web.Response:
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise ApiError(400, "since must be an integer") from None
        events, next_seq = self.node.events.since(since)
        return web.json_response({"events": events, "next": next_seq}, dumps=_dumps)

    def _describe(self, file: StoredFile) -> dict[str, Any]:
        return describe(file, self.node.identity.fingerprint)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def _name(request: web.Request) -> str:
    try:
        return validate_name(request.match_info["name"])
    except InvalidName as error:
        raise ApiError(400, str(error)) from None


def _dumps(value: Any) -> str:
    # Events may carry values JSON does not know (they were rendered with str in the logs too).
    return json.dumps(value, default=str)
