"""The Toxiproxy-compatible HTTP API: routes, JSON fields, status codes and error shapes."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fabric_helpers import Peer, addresses, round_trip

from peerlab.aio import LoopThread
from peerlab.errors import PeerlabError
from peerlab.fabric import api

Call = Callable[..., tuple[int, Any]]


@pytest.fixture
def echo() -> Iterator[Peer]:
    public, bind = addresses()
    peer = Peer("upstream", public, bind)
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture
def call(loop: LoopThread) -> Iterator[Call]:
    runner, url = loop.run(api.start("127.0.0.1", 0, 3))

    def call(
        method: str,
        path: str,
        body: Any = None,
        agent: str = "peerlab-test",
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(
            url + path, data=data, method=method, headers={"User-Agent": agent}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        try:
            return status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return status, text

    yield call
    loop.run(runner.cleanup())


def create(call: Call, echo: Peer, name: str = "redis", **fields: Any) -> dict[str, Any]:
    status, proxy = call(
        "POST",
        "/proxies",
        {"name": name, "listen": "127.0.0.1:0", "upstream": f"{echo.bind}:{echo.port}", **fields},
    )
    assert status == 201, proxy
    return proxy


def dial(proxy: dict[str, Any]) -> socket.socket:
    host, port = proxy["listen"].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=2)


def test_version(call):
    status, body = call("GET", "/version")
    assert status == 200 and "version" in body


def test_create_show_list_and_delete_a_proxy(call, echo):
    proxy = create(call, echo)
    assert proxy["name"] == "redis" and proxy["enabled"] is True and proxy["toxics"] == []
    assert proxy["upstream"] == f"{echo.bind}:{echo.port}"
    assert not proxy["listen"].endswith(":0")  # port 0 is replaced by the one it got
    assert round_trip(dial(proxy))
    assert call("GET", "/proxies/redis") == (200, proxy)
    assert call("GET", "/proxies") == (200, {"redis": proxy})
    assert call("DELETE", "/proxies/redis") == (204, None)
    assert call("GET", "/proxies/redis")[0] == 404
    with pytest.raises(OSError):
        round_trip(dial(proxy))


def test_proxy_errors_have_toxiproxy_shapes(call, echo):
    create(call, echo)
    assert call("POST", "/proxies", {"name": "redis", "upstream": "127.0.0.1:1"}) == (
        409,
        {"error": "proxy already exists", "status": 409},
    )
    assert call("POST", "/proxies", {"name": "x"}) == (
        400,
        {"error": "missing required field: upstream", "status": 400},
    )
    assert (
        call("POST", "/proxies", {"upstream": "127.0.0.1:1"})[1]["error"]
        == "missing required field: name"
    )
    status, body = call("DELETE", "/proxies/nope")
    assert (status, body["error"], body["status"]) == (404, "proxy not found", 404)
    status, body = call("POST", "/proxies", raw=b"{not json")
    assert status == 400 and body["error"].startswith("bad request body")


def test_listen_address_in_use_is_a_500_naming_it(call, echo):
    proxy = create(call, echo)
    status, body = call(
        "POST", "/proxies", {"name": "twin", "listen": proxy["listen"], "upstream": "127.0.0.1:1"}
    )
    assert status == 500 and f"cannot listen on {proxy['listen']}" in body["error"]


def test_toxics_crud(call, echo):
    proxy = create(call, echo)
    sock = dial(proxy)
    status, toxic = call(
        "POST", "/proxies/redis/toxics", {"type": "latency", "attributes": {"latency": 500}}
    )
    assert status == 200  # Toxiproxy answers 200, not 201, to a new toxic
    assert toxic == {
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
        "attributes": {"latency": 500, "jitter": 0},
    }
    assert round_trip(sock) >= 0.5  # applies to the connection already open
    assert call("GET", "/proxies/redis/toxics") == (200, [toxic])
    assert call("GET", "/proxies/redis/toxics/latency_downstream") == (200, toxic)
    assert call("GET", "/proxies/redis")[1]["toxics"] == [toxic]
    status, updated = call(
        "POST",
        "/proxies/redis/toxics/latency_downstream",
        {"attributes": {"jitter": 10}, "toxicity": 0.5},
    )
    assert status == 200
    assert updated["attributes"] == {"latency": 500, "jitter": 10}
    assert updated["toxicity"] == 0.5
    assert call("DELETE", "/proxies/redis/toxics/latency_downstream") == (204, None)
    assert round_trip(sock) < 0.5  # the toxic's 500 ms are gone
    status, body = call("GET", "/proxies/redis/toxics/latency_downstream")
    assert (status, body["error"]) == (404, "toxic not found")


def test_toxic_errors_have_toxiproxy_shapes(call, echo):
    create(call, echo)
    toxic = {"type": "slow_close", "stream": "upstream", "attributes": {"delay": 10}}
    assert call("POST", "/proxies/redis/toxics", toxic)[0] == 200
    assert call("POST", "/proxies/redis/toxics", toxic) == (
        409,
        {
            "error": "toxic already exists",
            "status": 409,
            "hint": "'slow_close_upstream' is taken; give the new toxic another name",
        },
    )
    status, body = call("POST", "/proxies/redis/toxics", {"type": "nope"})
    assert (status, body["error"]) == (400, "invalid toxic type")
    status, body = call("POST", "/proxies/redis/toxics", {"type": "duplicate"})  # UDP only
    assert (status, body["error"]) == (400, "invalid toxic type")
    status, body = call("POST", "/proxies/redis/toxics", {"type": "latency", "stream": "up"})
    assert (status, body["error"]) == (
        400,
        "stream was invalid, can be either upstream or downstream",
    )
    status, body = call(
        "POST", "/proxies/redis/toxics", {"type": "latency", "attributes": {"latenc": 1}}
    )
    assert status == 400 and body["error"].startswith("bad request body")
    status, body = call(
        "POST", "/proxies/redis/toxics", {"type": "latency", "attributes": {"latency": "1s"}}
    )
    assert status == 400 and "latency" in body["error"]
    assert call("POST", "/proxies/nope/toxics", toxic)[0] == 404


def test_populate_creates_then_keeps_then_replaces(call, echo):
    upstream = f"{echo.bind}:{echo.port}"
    wanted = [
        {"name": "one", "listen": "127.0.0.1:0", "upstream": upstream},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": upstream, "enabled": False},
    ]
    status, body = call("POST", "/populate", wanted)
    assert status == 201
    assert [(p["name"], p["enabled"]) for p in body["proxies"]] == [("one", True), ("two", False)]
    listen = body["proxies"][0]["listen"]
    status, again = call(
        "POST", "/populate", [{"name": "one", "listen": listen, "upstream": upstream}]
    )
    assert (status, again["proxies"][0]["listen"]) == (201, listen)
    status, body = call(
        "POST", "/populate", [{"name": "ok", "upstream": upstream}, {"upstream": upstream}]
    )
    assert (status, body["error"]) == (400, "missing required field: name at proxy 2")
    assert "ok" not in call("GET", "/proxies")[1]


def test_disable_enable_and_reset(call, echo):
    proxy = create(call, echo)
    call("POST", "/proxies/redis/toxics", {"type": "latency", "attributes": {"latency": 500}})
    status, body = call("POST", "/proxies/redis", {"enabled": False})
    assert (status, body["enabled"]) == (200, False)
    with pytest.raises(OSError):
        round_trip(dial(proxy))
    assert call("POST", "/reset") == (204, None)
    shown = call("GET", "/proxies/redis")[1]
    assert shown["enabled"] is True and shown["toxics"] == []
    assert round_trip(dial(shown)) < 0.5  # the toxic's 500 ms are gone


def test_browsers_are_refused(call):
    assert call("GET", "/proxies", agent="Mozilla/5.0") == (403, "User agent not allowed")


def test_the_api_port_in_use_is_named(loop):
    runner, url = loop.run(api.start("127.0.0.1", 0, 1))
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(PeerlabError, match=f"cannot listen on 127.0.0.1:{port}"):
        loop.run(api.start("127.0.0.1", port, 1))
    loop.run(runner.cleanup())
