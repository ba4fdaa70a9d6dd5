"""The supervisor's control API: HTTP/JSON over its unix socket (and loopback TCP if asked),
described by an OpenAPI 3.1 document generated from the `@rpc` methods themselves.

Every `@rpc` method of a live Environment's namespaces (`peerlab.services`) is
`POST /v1/{namespace}/{verb}` with its keyword arguments as a JSON object, checked against
the method's signature by a pydantic model built from it; the answer is `{"result": ...}`
(200) or an error, always of one shape, `{"error", "hint", "usage", "status"}`:

    400  the call does not fit: a missing or unknown argument, a value of the wrong type,
         a bad value the operation refused (a usage error; the CLI exits 2)
    401  no bearer token, or a wrong one (TCP only)
    404  no such operation
    409  the operation failed in the state the network is in (the CLI exits 1)
    500  a bug in peerlab

`GET /openapi.json` serves the document; `POST /v1/shutdown` stops the supervisor. The same
signatures give the request schemas, the return annotations the result schemas and the
docstrings the summaries, so the document cannot drift from the code;
docs/api/openapi.json is the reference copy (`peerlab api openapi` prints it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import inspect
import json
import traceback
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from peerlab import __version__
from peerlab.errors import NotFound, PeerlabError, UsageError
from peerlab.rpc import is_rpc

PREFIX = "/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "usage", "status"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, in one line"},
        "hint": {"type": ["string", "null"], "description": "how to fix it"},
        "usage": {"type": "boolean", "description": "the caller's mistake (exit 2)"},
        "status": {"type": "integer", "description": "the HTTP status, repeated"},
    },
}
ERRORS = {
    "400": "the call does not fit the operation, or the operation refused a value",
    "401": "a bearer token is needed (TCP), or it is wrong",
    "404": "no such operation",
    "409": "the operation failed in the state the network is in",
}


@dataclass(frozen=True)
class Operation:
    """One `@rpc` method as the API offers it."""

    namespace: str
    verb: str
    function: Callable[..., Any]
    arguments: type[BaseModel]
    result: Any

    @property
    def path(self) -> str:
        return f"{PREFIX}/{self.namespace}/{self.verb}"


def operations(namespaces: Mapping[str, type]) -> Iterator[Operation]:
    """The `@rpc` methods of each namespace's class, in name order."""
    for namespace, cls in namespaces.items():
        for verb, function in sorted(inspect.getmembers(cls, inspect.isfunction)):
            if is_rpc(function) and not verb.startswith("_"):
                hints = _hints(function)
                model = _arguments(f"{namespace}.{verb}", function, hints)
                yield Operation(namespace, verb, function, model, hints.get("return", Any))


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError):  # an annotation only a type checker resolves
        return {}


def _usable(annotation: Any) -> Any:
    """The annotation if pydantic can check and describe it as JSON, else Any."""
    try:
        TypeAdapter(annotation).json_schema()
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError):
        return Any
    return annotation


def _arguments(name: str, function: Callable[..., Any], hints: dict[str, Any]) -> type[BaseModel]:
    """A strict model of the method's keyword arguments: the request body's schema."""
    fields: dict[str, Any] = {}
    for parameter in list(inspect.signature(function).parameters.values())[1:]:  # not self
        annotation = _usable(hints.get(parameter.name, Any))
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (annotation, default)
    config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
    model_name = "".join(part.capitalize() for part in name.replace("_", ".").split("."))
    return create_model(model_name, __config__=config, **fields)


# ---------------------------------------------------------------------------- the document


def document(namespaces: Mapping[str, type], title: str = "peerlab control API") -> dict[str, Any]:
    """The OpenAPI 3.1 document of these namespaces' operations."""
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    ref = "#/components/schemas/{model}"
    for op in operations(namespaces):
        request = op.arguments.model_json_schema(ref_template=ref)
        schemas.update(request.pop("$defs", {}))
        schemas[op.arguments.__name__] = request
        result = TypeAdapter(_usable(op.result)).json_schema(ref_template=ref)
        schemas.update(result.pop("$defs", {}))
        doc = inspect.getdoc(op.function) or op.verb
        answers: dict[str, Any] = {
            "200": {
                "description": "done",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["result"],
                            "properties": {"result": result},
                        }
                    }
                },
            }
        }
        for status, why in ERRORS.items():
            answers[status] = {"$ref": f"#/components/responses/E{status}", "description": why}
        paths[op.path] = {
            "post": {
                "operationId": f"{op.namespace}.{op.verb}",
                "tags": [op.namespace],
                "summary": doc.splitlines()[0],
                "description": doc,
                # No body is no arguments: required only where an argument is.
                "requestBody": {
                    "required": bool(request.get("required")),
                    "content": {
                        "application/json": {
                            "schema": {"$ref": ref.format(model=op.arguments.__name__)}
                        }
                    },
                },
                "responses": answers,
            }
        }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": __version__,
            "description": (__doc__ or "").strip(),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                f"E{s}": {"description": why, "content": error} for s, why in ERRORS.items()
            },
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"token": []}],
    }


# ---------------------------------------------------------------------------- serving


def error(message: str, status: int, hint: str | None = None) -> dict[str, Any]:
    return {"error": message, "hint": hint, "usage": status in (400, 404), "status": status}


def _validation_line(path: str, exc: ValidationError, model: type[BaseModel]) -> UsageError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    message = first["msg"] if first["type"] != "extra_forbidden" else "is not an argument"
    known = ", ".join(model.model_fields) or "(none)"
    return UsageError(
        f"{path}: argument '{where}' {message[0].lower()}{message[1:]}",
        field=where,
        hint=f"{path} takes: {known}",
    )


_MODELS: dict[Callable[..., Any], type[BaseModel]] = {}


def _model_of(path: str, method: Callable[..., Any]) -> type[BaseModel]:
    function = getattr(method, "__func__", method)
    if function not in _MODELS:
        _MODELS[function] = _arguments(path, function, _hints(function))
    return _MODELS[function]


async def call(
    resolve: Callable[[str], Any],
    path: str,
    body: Any,
    lock: AbstractContextManager[Any] | None = None,
) -> dict[str, Any]:
    """One call's answer: `{"result": ...}` or an error with its status. A call that does
    not fit the operation is a usage error; anything raised inside it is not. With `lock`,
    the operation runs holding it (a simulated world's time stands still meanwhile)."""
    try:
        method = resolve(path)
        if not isinstance(body, dict):
            raise UsageError(f"{path}: the body must be a JSON object of arguments", field="body")
        model = _model_of(path, method)
        try:
            checked = model.model_validate(body)
        except ValidationError as exc:
            raise _validation_line(path, exc, model) from None
        kwargs = {name: getattr(checked, name) for name in model.model_fields}
        loop = asyncio.get_running_loop()

        def run() -> Any:
            with lock if lock is not None else contextlib.nullcontext():
                return method(**kwargs)

        return {"result": await loop.run_in_executor(None, run)}
    except NotFound as exc:
        return error(exc.message, 404, exc.hint)
    except UsageError as exc:
        return error(exc.message, 400, exc.hint)
    except PeerlabError as exc:
        return error(exc.message, 409, exc.hint)
    except Exception as exc:  # a bug inside the operation, never a usage error
        traceback.print_exc()
        return error(f"{path} failed: {exc!r}", 500)


def app(
    resolve: Callable[[str], Any],
    spec: Callable[[], dict[str, Any]],
    shutdown: Callable[[], None],
    token: str | None = None,
    lock: AbstractContextManager[Any] | None = None,
) -> web.Application:
    """The API as an aiohttp application; with `token`, every request must carry it; with
    `lock`, every operation runs holding it."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                hint = "send Authorization: Bearer <the token in the env's api-token file>"
                return _json(error("a bearer token is needed", 401, hint))
        try:
            return await handler(request)
        except web.HTTPException as exc:  # aiohttp's own: no route, wrong method
            status = exc.status if 400 <= exc.status < 500 else 400
            return _json(error(f"{request.method} {request.path}: {exc.reason}", status))

    async def operation(request: web.Request) -> web.Response:
        path = f"{request.match_info['namespace']}.{request.match_info['verb']}"
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _json(error(f"the body is not JSON: {exc}", 400, "send a JSON object"))
        return _json(await call(resolve, path, body, lock))

    async def stop(request: web.Request) -> web.Response:
        # The body is read first: one left unread would keep the connection lingering (10 s
        # in aiohttp) while the server shuts down, and the supervisor with it.
        await request.read()
        shutdown()
        return _json({"result": "stopping"})

    async def openapi(request: web.Request) -> web.Response:
        return _json(spec())

    application = web.Application(middlewares=[guard])
    application.router.add_get("/openapi.json", openapi)
    application.router.add_post(f"{PREFIX}/shutdown", stop)
    application.router.add_post(PREFIX + "/{namespace}/{verb}", operation)
    return application


def _json(body: dict[str, Any]) -> web.Response:
    status = int(body["status"]) if "error" in body else 200
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, default=str))
