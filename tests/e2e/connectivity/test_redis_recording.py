"""TC-606: a Redis write is recorded `fail` only when Redis certainly did not apply it.

On a real redis-server started by peerlab, the SET is applied and then the `WAIT` that was
to confirm it cannot: the master is demoted while it waits (what the sentinels do to an old
master, and Redis answers the waiting client with an error), the master is killed while it
waits, or there are fewer replicas than asked for. The write happened on the master, so
whatever WAIT says it is `info`, never `fail`: a `fail` would tell the checkers that a
value some replica may hold was never written.
"""

from __future__ import annotations

import socket

import pytest

from peerlab.env import Environment
from peerlab.errors import PeerlabError
from peerlab.history import operations
from peerlab.node import Node
from peerlab.systems.redis_sentinel import RedisClient, RedisSentinelAdapter, parse_info
from peerlab.systems.resp import text
from peerlab.testing import require_program, wait_until

pytestmark = pytest.mark.connectivity


def unanswered_port(env: Environment, node: Node) -> int:
    """A port on the node's own address where no master will answer."""
    if env.backend.capabilities.own_ports:
        return max(node.ports.values()) + 1  # its namespace has nothing else listening
    with socket.socket() as probe:  # a loopback address other processes share
        probe.bind((node.bind_address, 0))
        return int(probe.getsockname()[1])


def blocked_clients(admin: RedisClient, env: Environment) -> int:
    return int(parse_info(text(env.run(admin.command("INFO", "clients"))))["blocked_clients"])


@pytest.mark.parametrize("cut", ["demoted", "killed", "too-few-replicas"])
def test_a_write_whose_wait_fails_after_the_set_is_info(peerlab_env: Environment, cut: str) -> None:
    require_program("redis-server", "redis-server")
    (master,) = peerlab_env.start("redis-sentinel", 1, role="master")
    redis: RedisSentinelAdapter = peerlab_env.adapter("redis-sentinel")
    writer = redis.redis(master.name, process="writer")
    admin = redis.redis(master.name)  # unrecorded commands, on a connection of its own

    if cut == "too-few-replicas":
        assert peerlab_env.run(writer.write("k", "v", replicas=1, wait_ms=100)) == 0
    else:
        # No replica exists, so WAIT 1 blocks for its whole 60 s: time to cut it short.
        writing = peerlab_env.loop.submit(writer.write("k", "v", replicas=1, wait_ms=60_000))
        wait_until(
            lambda: blocked_clients(admin, peerlab_env) == 1,
            10,
            what="the writer to wait in WAIT",
        )
        assert peerlab_env.run(admin.command("GET", "k")) == b"v"  # the SET is applied
        if cut == "demoted":
            nowhere = unanswered_port(peerlab_env, master)
            peerlab_env.run(admin.command("REPLICAOF", master.bind_address, nowhere))
        else:
            peerlab_env.kill(master.name)
        with pytest.raises(PeerlabError):
            writing.result(30)

    (write,) = [op for op in operations(peerlab_env.history.entries()) if op.f == "write"]
    assert write.completion is not None
    assert write.type == "info", write.to_json()
    expected = {
        "demoted": "UNBLOCKED",  # Redis's answer to a client waiting on a demoted master
        "killed": "WAIT",
        "too-few-replicas": "only 0 replicas confirmed",
    }[cut]
    assert expected in (write.completion.error or ""), write.completion.error
    if cut == "demoted":
        assert peerlab_env.run(admin.command("ROLE"))[0] == b"slave"
        assert peerlab_env.run(admin.command("GET", "k")) == b"v"  # still there
