"""The DHT's admin API: the routing table, and lookups on demand.

    GET  /admin/dht/table                 buckets and contacts, counters, config
    POST /admin/dht/lookup {"key": FPR, "value": true}   the lookup's path, hops and time

A lookup that finds nothing still answers 200 with "found": false and the reason; 404 means
this node runs no DHT.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from syncpeer.core.dht.lookup import lookup_answer, lookup_request
from syncpeer.io.dht_transport import DhtService
from syncpeer.io.httperrors import ApiError

if TYPE_CHECKING:
    from syncpeer.io.node import Node


class DhtAdminApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/dht/table", self.table),
            web.post("/admin/dht/lookup", self.lookup),
        ]

    def _dht(self) -> DhtService:
        if self.node.dht is None:
            raise ApiError(404, "this node runs no DHT (start it with --udp-port)")
        return self.node.dht

    async def table(self, request: web.Request) -> web.Response:
        return web.json_response(self._dht().table())

    async def lookup(self, request: web.Request) -> web.Response:
        dht = self._dht()
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        try:
            target, want_value = lookup_request(body)
        except ValueError as error:
            raise ApiError(400, str(error)) from None
        began = time.perf_counter()
        result = await dht.lookup(target, want_value=want_value)
        answer, event = lookup_answer(result, (time.perf_counter() - began) * 1000)
        dht.log.info(event.event, **event.fields)
        return web.json_response(answer)
