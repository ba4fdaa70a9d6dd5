"""`DELETE /admin/files/{name}`: seal a tombstone as the next version of the name and store
it like a publish, so it propagates to friends and wins over every older version
(`syncpeer.core.tombstone`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from syncpeer.core.errors import InvalidName
from syncpeer.core.names import validate_name
from syncpeer.core.store import StoredFile
from syncpeer.io.admin import AdminApi
from syncpeer.io.httperrors import ApiError

if TYPE_CHECKING:
    from syncpeer.io.node import Node


class DeleteApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def routes(self) -> list[web.RouteDef]:
        return [web.delete("/admin/files/{name}", self.delete)]

    async def delete(self, request: web.Request) -> web.Response:
        """404 when the name is not held or already deleted; else the tombstone's metadata."""
        try:
            name = validate_name(request.match_info["name"])
        except InvalidName as error:
            raise ApiError(400, str(error)) from None
        current = self.node.files.model.current(name)
        if current is None or current.deleted:
            raise ApiError(404, f"no file named {name!r}")
        return web.json_response(AdminApi(self.node)._describe(delete(self.node, name)))


def delete(node: Node, name: str) -> StoredFile:
    """Seal and store the tombstone of `name` (which the caller checked is held)."""
    return node.seal(name, None, None)
