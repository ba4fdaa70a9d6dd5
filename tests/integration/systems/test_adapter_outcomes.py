"""Each adapter's client against a scripted server on loopback: what it records for every
way a call can end (an answer, an error answer, a refused connection, a connection cut
after the request, no answer in time)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from peerlab.aio import LoopThread
from peerlab.errors import PeerlabError
from peerlab.history import History, operations
from peerlab.systems.etcd import EtcdClient, TaskQueue, b64
from peerlab.systems.redis_sentinel import RedisClient
from peerlab.systems.resp import RespParser
from peerlab.systems.syncpeer import SyncpeerClient
from peerlab.transport import HttpTransport

HANG = object()  # a scripted answer: say nothing until the client gives up


class LoopEnv:
    """What the clients use of an Environment: a history, a loop, an HTTP session, the
    transport over it."""

    def __init__(self) -> None:
        self.history = History()
        self.loop = LoopThread("outcomes-test")
        self._http: aiohttp.ClientSession | None = None
        self.transport = HttpTransport(self.run, self.http_session)

    def run(self, coro: Awaitable[Any], timeout: float = 10.0, what: str = "") -> Any:
        return self.loop.run(coro, timeout, what=what)

    def http_session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    def last(self) -> tuple[str, Any, str | None]:
        (op,) = operations(self.history.entries())[-1:]
        assert op.completion is not None
        return op.type, op.completion.value, op.completion.error

    def close(self) -> None:
        if self._http is not None:
            self.loop.run(self._http.close(), 5)
        self.loop.close()


@pytest.fixture
def env() -> Iterator[LoopEnv]:
    loop_env = LoopEnv()
    yield loop_env
    loop_env.close()


def closed_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def node(port: int, *, alive: bool = True) -> SimpleNamespace:
    return SimpleNamespace(
        name="A",
        role="master",
        bind_address="127.0.0.1",
        ports={"redis": port},
        alive=alive,
        state="running" if alive else "stopped",
        direct_url=lambda _port=None, path="": f"http://127.0.0.1:{port}{path}",
    )


# ------------------------------------------------------------------- Redis

Script = dict[bytes, Any]  # command name -> reply bytes, HANG, or None (close the connection)


async def resp_server(script: Script) -> tuple[asyncio.Server, int]:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RespParser()
        while data := await reader.read(4096):
            parser.feed(data)
            for command in parser.values():
                reply = script.get(command[0].upper(), b"+OK\r\n")
                if reply is HANG:
                    await asyncio.sleep(30)
                if reply is None:
                    writer.close()
                    return
                writer.write(reply)
        writer.close()

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


UNBLOCKED = b"-UNBLOCKED force unblock from blocking operation, instance state changed\r\n"


@pytest.mark.parametrize(
    ("script", "replicas", "recorded"),
    [
        ({b"SET": b"-READONLY You can't write against a read only replica.\r\n"}, 0, "fail"),
        ({b"SET": None}, 0, "info"),  # received, then the connection was cut: unknown
        ({b"SET": HANG}, 0, "info"),
        ({b"WAIT": b":1\r\n"}, 1, "ok"),
        ({b"WAIT": b":0\r\n"}, 1, "info"),  # applied on the master, no replica has it
        ({b"WAIT": UNBLOCKED}, 1, "info"),  # the master was demoted after the SET
        ({b"WAIT": None}, 1, "info"),
    ],
    ids=["refused", "cut", "no-answer", "confirmed", "unconfirmed", "wait-error", "wait-cut"],
)
def test_redis_write(env: LoopEnv, script: Script, replicas: int, recorded: str) -> None:
    server, port = env.run(resp_server(script))
    client = RedisClient(env, node(port), None, process="p", timeout=0.3)
    try:
        env.run(client.write("k", "v", replicas=replicas, wait_ms=10))
    except PeerlabError as exc:
        assert recorded != "ok", exc
    finally:
        server.close()
        env.run(client.close())
    assert env.last()[0] == recorded, env.last()
    if recorded == "ok":
        assert env.last()[1] == {"key": "k", "value": "v", "replicas": 1}


def test_redis_write_that_never_left_is_a_fail(env: LoopEnv) -> None:
    client = RedisClient(env, node(closed_port()), None, process="p")
    with pytest.raises(PeerlabError, match="SET"):
        env.run(client.write("k", "v", replicas=1))
    assert env.last()[0] == "fail"


def test_redis_read(env: LoopEnv) -> None:
    server, port = env.run(resp_server({b"GET": b"$1\r\nv\r\n"}))
    client = RedisClient(env, node(port), None, process="p")
    assert env.run(client.read("k")) == "v"
    assert env.last() == ("ok", {"key": "k", "value": "v"}, None)
    server.close()
    env.run(client.close())


# ------------------------------------------------------------------- HTTP systems

Routes = dict[str, Any]  # path -> (status, JSON answer) or HANG


async def http_server(routes: Routes) -> tuple[web.AppRunner, int]:
    async def handle(request: web.Request) -> web.Response:
        answer = routes[request.path]
        if answer is HANG:
            await asyncio.sleep(30)
        status, body = answer
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


def serving(env: LoopEnv, routes: Routes) -> tuple[int, Callable[[], None]]:
    """Serve `routes` on loopback: the port, and how to stop."""
    runner, port = env.run(http_server(routes))
    return port, lambda: env.run(runner.cleanup())


TIMED_OUT = (500, {"error": "etcdserver: request timed out", "code": 14})


@pytest.mark.parametrize(
    ("f", "routes", "recorded"),
    [
        ("write", {"/v3/kv/put": (200, {"header": {"revision": "7"}})}, "ok"),
        ("write", {"/v3/kv/put": TIMED_OUT}, "info"),  # may commit after the error answer
        ("write", {"/v3/kv/put": HANG}, "info"),
        ("read", {"/v3/kv/range": TIMED_OUT}, "fail"),  # a read changes nothing
        ("read", {"/v3/kv/range": HANG}, "info"),
        ("cas", {"/v3/kv/txn": (200, {"succeeded": False})}, "fail"),
        ("cas", {"/v3/kv/txn": (200, {"succeeded": True})}, "ok"),
        ("cas", {"/v3/kv/txn": TIMED_OUT}, "info"),
    ],
)
def test_etcd_register(env: LoopEnv, f: str, routes: Routes, recorded: str) -> None:
    port, stop = serving(env, routes)
    client = EtcdClient(env, node(port), process="p", timeout=0.3)
    call = {
        "write": lambda: client.write("k", 1),
        "read": lambda: client.read("k"),
        "cas": lambda: client.cas("k", 1, 2),
    }[f]
    try:
        env.run(call())
    except PeerlabError:
        assert recorded != "ok"
    finally:
        stop()
    assert env.last()[0] == recorded, env.last()


def test_etcd_write_that_never_left_is_a_fail(env: LoopEnv) -> None:
    client = EtcdClient(env, node(closed_port()), process="p")
    with pytest.raises(PeerlabError, match="kv/put"):
        env.run(client.write("k", 1))
    assert env.last()[0] == "fail"


def test_task_queue_claims_and_unreadable_answers(env: LoopEnv) -> None:
    routes: Routes = {"/v3/kv/txn": (200, {"succeeded": False})}
    port, stop = serving(env, routes)
    queue = TaskQueue(EtcdClient(env, node(port), process="w"))
    try:
        assert env.run(queue.claim("t1", "w")) is False
        assert env.last() == ("fail", {"id": "t1", "worker": "w"}, "already claimed")
        routes["/v3/kv/txn"] = (200, {"succeeded": True})
        assert env.run(queue.claim("t1", "w")) is True
        assert env.last()[0] == "ok"
        # The key was used before, and the answer lacks the task it names: whether the
        # enqueue happened is unknown (before, such an operation stayed open forever).
        routes["/v3/kv/txn"] = (200, {"succeeded": False, "responses": []})
        with pytest.raises(IndexError):
            env.run(queue.enqueue("t2", {}, "key-1"))
        assert env.last()[0] == "info"
        routes["/v3/kv/txn"] = (
            200,
            {
                "succeeded": False,
                "responses": [{"response_range": {"kvs": [{"value": b64('"t1"')}]}}],
            },
        )
        assert env.run(queue.enqueue("t2", {}, "key-1")) == "t1"
        assert env.last() == ("ok", {"id": "t1", "key": "key-1"}, None)
    finally:
        stop()


@pytest.mark.parametrize(
    ("answer", "recorded"),
    [
        ((200, {"name": "a.txt", "version": 1}), "ok"),
        ((400, {"error": "invalid name"}), "fail"),  # syncpeer checks before it stores
        ((500, {"error": "internal error: OSError"}), "info"),
        (HANG, "info"),
    ],
    ids=["ok", "bad-request", "server-error", "no-answer"],
)
def test_syncpeer_publish(env: LoopEnv, answer: Any, recorded: str) -> None:
    port, stop = serving(env, {"/admin/files": answer})
    client = SyncpeerClient(env, node(port), timeout=0.3)
    try:
        client.publish("a.txt", b"hello")
    except (PeerlabError, TimeoutError):
        assert recorded != "ok"
    finally:
        stop()
    assert env.last()[0] == recorded, env.last()


@pytest.mark.parametrize("alive", [True, False], ids=["refused", "peer-down"])
def test_syncpeer_publish_that_never_left_is_a_fail(env: LoopEnv, alive: bool) -> None:
    client = SyncpeerClient(env, node(closed_port(), alive=alive))
    with pytest.raises(PeerlabError):
        client.publish("a.txt", b"hello")
    assert env.last()[0] == "fail"
