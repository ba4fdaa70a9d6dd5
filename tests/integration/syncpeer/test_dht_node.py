"""Real syncpeer nodes with the DHT on 127.0.0.1, in one event loop: join over UDP, the DHT
admin API, friends added by fingerprint alone, the puzzle at start-up, and the arguments."""

from __future__ import annotations

import asyncio
import io
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from syncpeer.core.dht.ids import node_id_of
from syncpeer.core.dht.puzzle import satisfies
from syncpeer.core.identity import Identity
from syncpeer.io.config import parse_run_args
from syncpeer.io.datadir import DataDir
from syncpeer.io.node import Node

TIMEOUT = 10.0


async def wait_for(condition: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {TIMEOUT}s waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def dht_nodes(tmp_path: Path, count: int, *extra: str) -> AsyncIterator[list[Node]]:
    """A bootstrap node and `count - 1` nodes joining through it, all on 127.0.0.1."""
    nodes: list[Node] = []
    try:
        first = Node(
            parse_run_args(
                ["--data-dir", str(tmp_path / "n0"), "--name", "n0", "--udp-port", "0", *extra]
            ),
            stream=io.StringIO(),
        )
        await first.start()
        nodes.append(first)
        assert first.dht is not None
        bootstrap = first.dht.address
        for index in range(1, count):
            node = Node(
                parse_run_args(
                    [
                        "--data-dir",
                        str(tmp_path / f"n{index}"),
                        "--name",
                        f"n{index}",
                        "--udp-port",
                        "0",
                        "--bootstrap",
                        bootstrap,
                        "--dht-rpc-timeout",
                        "0.3",
                        *extra,
                    ]
                ),
                stream=io.StringIO(),
            )
            await node.start()
            nodes.append(node)
        await wait_for(
            lambda: all(n.dht is not None and n.dht.joined.is_set() for n in nodes), "joins"
        )
        yield nodes
    finally:
        for node in nodes:
            await node.stop()


async def call(
    http: aiohttp.ClientSession, node: Node, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, f"http://127.0.0.1:{node.port}{path}", json=body) as response:
        return response.status, await response.json()


def test_join_lookup_table_and_friend_by_fingerprint(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dht_nodes(tmp_path, 5) as nodes, aiohttp.ClientSession() as http:
            a, b = nodes[1], nodes[4]
            status, found = await call(http, a, "POST", "/admin/dht/lookup", {"key": b.fingerprint})
            assert status == 200 and found["found"], found
            assert found["record"]["address"] == b.address
            assert found["distance"] == f"{int(a.fingerprint, 16) ^ int(b.fingerprint, 16):040x}"
            assert found["hops"] == len(found["path"]) >= 1

            status, table = await call(http, a, "GET", "/admin/dht/table")
            assert status == 200 and table["joined"] and table["id"] == a.fingerprint
            assert table["contacts"] == sum(len(bk["contacts"]) for bk in table["buckets"]) >= 1
            assert table["config"]["rpc_timeout"] == 0.3

            status, added = await call(
                http, a, "POST", "/admin/friends", {"fingerprint": b.fingerprint}
            )
            assert status == 200 and added["added"], added
            assert added["friend"]["address"] == b.address
            assert added["friend"]["card"]["fingerprint"] == b.fingerprint
            assert a.keyring.get(b.fingerprint) is not None

            status, status_body = await call(http, a, "GET", "/admin/status")
            assert status_body["dht"]["joined"] and status_body["dht"]["contacts"] >= 1

            nobody = "f" * 40
            status, error = await call(http, a, "POST", "/admin/friends", {"fingerprint": nobody})
            assert status == 404 and nobody in error["error"]
            status, error = await call(http, a, "POST", "/admin/friends", {"fingerprint": "xyz"})
            assert status == 400 and "40 lowercase hex" in error["error"]
            status, error = await call(
                http, a, "POST", "/admin/friends", {"fingerprint": a.fingerprint}
            )
            assert status == 400
            status, error = await call(http, a, "POST", "/admin/dht/lookup", {"key": 5})
            assert status == 400

    asyncio.run(scenario())


def test_a_node_without_udp_port_runs_no_dht(tmp_path: Path) -> None:
    async def scenario() -> None:
        node = Node(
            parse_run_args(["--data-dir", str(tmp_path), "--name", "solo"]), stream=io.StringIO()
        )
        await node.start()
        try:
            async with aiohttp.ClientSession() as http:
                status, error = await call(http, node, "GET", "/admin/dht/table")
                assert status == 404 and "--udp-port" in error["error"]
                status, error = await call(
                    http, node, "POST", "/admin/friends", {"fingerprint": "a" * 40}
                )
                assert status == 409
        finally:
            await node.stop()

    asyncio.run(scenario())


def test_puzzle_bits_make_a_solving_identity_and_refuse_an_old_one(tmp_path: Path) -> None:
    node = Node(
        parse_run_args(
            [
                "--data-dir",
                str(tmp_path / "new"),
                "--name",
                "p",
                "--udp-port",
                "0",
                "--puzzle-bits",
                "6",
            ]
        ),
        stream=io.StringIO(),
    )
    assert satisfies(node_id_of(node.identity.card.sign_key), 6)

    old = DataDir(tmp_path / "old")
    old.prepare()
    unsolved = next(
        i
        for i in (Identity.generate("o", os.urandom) for _ in range(100))
        if not satisfies(node_id_of(i.card.sign_key), 6)
    )
    old.save_identity(unsolved)
    with pytest.raises(ValueError, match="does not solve the 6-bit puzzle"):
        Node(
            parse_run_args(
                [
                    "--data-dir",
                    str(old.root),
                    "--name",
                    "o",
                    "--udp-port",
                    "0",
                    "--puzzle-bits",
                    "6",
                ]
            ),
            stream=io.StringIO(),
        )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--bootstrap", "nohost"], "--bootstrap"),
        (["--puzzle-bits", "99"], "--puzzle-bits"),
        (["--dht-rpc-timeout", "0"], "--dht-rpc-timeout"),
        (["--disjoint-paths", "0"], "--disjoint-paths"),
        (["--udp-port", "70000"], "--udp-port"),
    ],
)
def test_bad_dht_arguments_exit_2(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_run_args(["--data-dir", str(tmp_path), "--name", "x", *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_dht_arguments_reach_the_config(tmp_path: Path) -> None:
    config = parse_run_args(
        [
            "--data-dir",
            str(tmp_path),
            "--name",
            "x",
            "--udp-port",
            "7401",
            "--bootstrap",
            "10.0.0.1:7401, 10.0.0.2:7401",
            "--dht-rpc-timeout",
            "0.25",
            "--disjoint-paths",
            "3",
            "--puzzle-bits",
            "8",
            "--dht-k",
            "8",
        ]
    )
    assert config.udp_port == 7401
    assert config.bootstrap == ("10.0.0.1:7401", "10.0.0.2:7401")
    assert (config.dht.rpc_timeout, config.dht.disjoint_paths) == (0.25, 3)
    assert (config.dht.puzzle_bits, config.dht.k) == (8, 8)
    assert (
        parse_run_args(["--data-dir", str(tmp_path), "--name", "x", "--bootstrap", ""]).bootstrap
        == ()
    )


def test_ready_only_once_joined_with_a_contact(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with dht_nodes(tmp_path, 2) as nodes, aiohttp.ClientSession() as http:
            for node in nodes:  # the bootstrap node (a network of one) and one that joined
                assert await call(http, node, "GET", "/ready") == (200, {"status": "ready"})
            silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            silent.bind(("127.0.0.1", 0))  # a bootstrap address where nobody answers
            lonely = Node(
                parse_run_args(
                    [
                        *("--data-dir", str(tmp_path / "lonely"), "--name", "lonely"),
                        *("--udp-port", "0", "--dht-rpc-timeout", "0.3"),
                        *("--bootstrap", f"127.0.0.1:{silent.getsockname()[1]}"),
                    ]
                ),
                stream=io.StringIO(),
            )
            await lonely.start()
            try:
                status, body = await call(http, lonely, "GET", "/ready")
                assert (status, body) == (
                    503,
                    {"status": "joining", "joined": False, "contacts": 0},
                )
                assert (await call(http, lonely, "GET", "/health"))[0] == 200
            finally:
                await lonely.stop()
                silent.close()

    asyncio.run(scenario())
