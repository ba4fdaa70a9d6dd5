"""JSON errors for the HTTP API: every error answer is {"error": "message"}."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from syncpeer.io.logs import Logger

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Raised by a handler to answer `status` with {"error": message}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def error_middleware(logger: Logger) -> Middleware:
    """Turn ApiError, HTTP errors and unexpected exceptions into JSON error answers."""
    log = logger.bind(component="http")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return json_error(error.status, error.message)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            headers = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
            return json_error(error.status, error.reason, headers)
        except Exception as error:
            log.exception(
                "http_handler_failed",
                trace_id=request.headers.get("X-Trace-Id"),
                method=request.method,
                path=request.path,
            )
            return json_error(500, f"internal error: {type(error).__name__}")

    return middleware
