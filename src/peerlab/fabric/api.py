"""A Toxiproxy-compatible HTTP API (`peerlab proxy serve`), so Toxiproxy's clients work as-is.

Same routes, JSON fields, status codes and error shape as Toxiproxy 2: 201 for a new proxy
or a populate, 200 for a new toxic (as Toxiproxy answers), 204 for a delete or a reset,
400 for a bad body, 404 for an unknown proxy or toxic, 409 for a name taken, and errors as
`{"error": "proxy not found", "status": 404}` (plus a `hint` where peerlab has one).
Every request has a deadline, so the control plane answers even when the data plane is busy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from peerlab import __version__
from peerlab.errors import PeerlabError, UsageError
from peerlab.fabric.collection import ProxyCollection
from peerlab.fabric.errors import Conflict, NotFound

DEADLINE = 25.0  # seconds, as Toxiproxy's timeout middleware
COLLECTION = web.AppKey("collection", ProxyCollection)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(message: str, status: int, hint: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "status": status}
    if hint:
        body["hint"] = hint
    return web.json_response(body, status=status)


def _status(exc: PeerlabError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 400 if isinstance(exc, UsageError) else 500


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        # As Toxiproxy: a web page must not drive the proxies through the browser.
        return web.Response(status=403, text="User agent not allowed")
    try:
        async with asyncio.timeout(DEADLINE):
            return await handler(request)
    except PeerlabError as exc:
        return _error(exc.message, _status(exc), exc.hint)
    except TimeoutError:
        return _error(f"{request.method} {request.path} took over {DEADLINE:g}s", 503)
    except web.HTTPException as exc:  # aiohttp's own answers (no route, wrong method)
        return _error(exc.reason, exc.status)


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return json.loads(raw.decode("utf-8")) if raw else None
    except UnicodeDecodeError:
        raise UsageError("bad request body: not UTF-8 text", field="body") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"bad request body: {exc}", field="body") from None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _collection(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


async def version(request: web.Request) -> web.Response:
    return _json({"version": f"{__version__}-peerlab"})


async def proxy_index(request: web.Request) -> web.Response:
    proxies = _collection(request).proxies
    return _json({name: ProxyCollection.to_dict(p) for name, p in proxies.items()})


async def proxy_create(request: web.Request) -> web.Response:
    proxy = await _collection(request).create(await _body(request))
    return _json(ProxyCollection.to_dict(proxy), 201)


async def populate(request: web.Request) -> web.Response:
    proxies, failure = await _collection(request).populate(await _body(request))
    body: dict[str, Any] = {"proxies": [ProxyCollection.to_dict(p) for p in proxies]}
    if failure is None:
        return _json(body, 201)
    status = _status(failure) if isinstance(failure, PeerlabError) else 500
    message = failure.message if isinstance(failure, PeerlabError) else str(failure)
    return _json({"error": message, "status": status, **body}, status)


async def proxy_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(ProxyCollection.to_dict(proxy))


async def proxy_update(request: web.Request) -> web.Response:
    proxy = await _collection(request).update(request.match_info["proxy"], await _body(request))
    return _json(ProxyCollection.to_dict(proxy))


async def proxy_delete(request: web.Request) -> web.Response:
    await _collection(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def toxic_index(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json([item.spec.to_dict() for item in proxy.links.toxics])


async def toxic_create(request: web.Request) -> web.Response:
    spec = _collection(request).add_toxic(request.match_info["proxy"], await _body(request))
    return _json(spec.to_dict())


async def toxic_show(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    return _json(proxy.links.toxics.get(request.match_info["toxic"]).spec.to_dict())


async def toxic_update(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    item = proxy.links.toxics.update(request.match_info["toxic"], await _body(request))
    return _json(item.spec.to_dict())


async def toxic_delete(request: web.Request) -> web.Response:
    proxy = _collection(request).get(request.match_info["proxy"])
    proxy.links.toxics.remove(request.match_info["toxic"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    await _collection(request).reset()
    return web.Response(status=204)


def create_app(collection: ProxyCollection) -> web.Application:
    app = web.Application(middlewares=[_guard])
    app[COLLECTION] = collection
    routes = [
        ("GET", "/version", version),
        ("POST", "/reset", reset),
        ("GET", "/proxies", proxy_index),
        ("POST", "/proxies", proxy_create),
        ("POST", "/populate", populate),
        ("GET", "/proxies/{proxy}", proxy_show),
        ("POST", "/proxies/{proxy}", proxy_update),
        ("PATCH", "/proxies/{proxy}", proxy_update),
        ("DELETE", "/proxies/{proxy}", proxy_delete),
        ("GET", "/proxies/{proxy}/toxics", toxic_index),
        ("POST", "/proxies/{proxy}/toxics", toxic_create),
        ("GET", "/proxies/{proxy}/toxics/{toxic}", toxic_show),
        ("POST", "/proxies/{proxy}/toxics/{toxic}", toxic_update),
        ("PATCH", "/proxies/{proxy}/toxics/{toxic}", toxic_update),
        ("DELETE", "/proxies/{proxy}/toxics/{toxic}", toxic_delete),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)

    async def close_proxies(app: web.Application) -> None:
        await app[COLLECTION].close()

    app.on_cleanup.append(close_proxies)
    return app


async def start(host: str, port: int, seed: int) -> tuple[web.AppRunner, str]:
    """Serve the API on the running loop; the runner (to clean up) and the URL."""
    runner = web.AppRunner(create_app(ProxyCollection(seed)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise PeerlabError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="is a toxiproxy or another `peerlab proxy serve` running? pick another --port",
        ) from None
    bound = runner.addresses[0]
    return runner, f"http://{bound[0]}:{bound[1]}"
