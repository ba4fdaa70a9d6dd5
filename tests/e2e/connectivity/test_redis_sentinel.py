"""Redis with Sentinel: discovery, registration, failover, reconnection, and what a
partition costs (TC-601 to TC-605). Node A starts as master, B and C as replicas, D, E and
F as sentinels (redis-sentinel.toml's layout)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest

from peerlab.checkers import no_lost_writes
from peerlab.env import Environment
from peerlab.errors import PeerlabError, UsageError
from peerlab.history import operations
from peerlab.systems.redis_sentinel import MASTER_NAME, RedisClient, RedisSentinelAdapter
from peerlab.systems.resp import RespError
from peerlab.testing import wait_until

pytestmark = pytest.mark.connectivity

StartRedis = Callable[[], RedisSentinelAdapter]


def test_clients_discover_the_master_through_sentinels(
    peerlab_env: Environment, redis_sentinel: StartRedis
) -> None:
    """TC-601: every sentinel gives the master's address, and that address is the master;
    asking for a master name no sentinel monitors fails cleanly."""
    redis = redis_sentinel()
    master = peerlab_env.node("A")
    for sentinel in redis.nodes("sentinel"):
        address = peerlab_env.run(redis.sentinel(sentinel.name).master_address())
        assert address == (master.address, master.ports["redis"]), (sentinel.name, address)
        found = redis.node_at(address)
        assert found is not None and found.name == "A"
        assert peerlab_env.run(redis.redis(found.name).role()) == "master"

    # An unknown name: a nil answer (no address, no exception, no hang) ...
    assert peerlab_env.run(redis.sentinel("D").master_address("no-such-master")) is None
    # ... an error reply for the commands that need the master to exist ...
    with pytest.raises(RespError, match="No such master"):
        peerlab_env.run(redis.sentinel("D").master("no-such-master"))
    # ... and the CLI's call says what is wrong.
    with pytest.raises(UsageError, match="no-such-master"):
        redis.discover_master("no-such-master")
    assert redis.discover_master(MASTER_NAME)["node"] == "A"


def _replicas_of(redis: RedisSentinelAdapter, master: str) -> dict[str, dict[str, str]]:
    """The master's replica list, by node name (None for an address no node announces)."""
    out = {}
    for entry in redis.replication(master)["replicas"]:
        node = redis.node_at(entry["ip"])
        out[node.name if node else str(entry["ip"])] = entry
    return out


def test_replicas_register_and_a_wrong_password_is_refused(
    peerlab_env: Environment, redis_sentinel: StartRedis
) -> None:
    """TC-602: both replicas register with the master (link up, offsets advancing with the
    writes); a replica with the wrong password is refused and never listed."""
    redis = redis_sentinel()
    registered = _replicas_of(redis, "A")
    assert sorted(registered) == ["B", "C"], registered
    assert all(entry["state"] == "online" for entry in registered.values()), registered

    before = int(redis.replication("A")["master_repl_offset"])
    master = redis.redis("A")

    async def write_some() -> None:
        for i in range(100):
            await master.write(f"registration:{i}", i)

    peerlab_env.run(write_some(), 30)
    after = int(redis.replication("A")["master_repl_offset"])
    assert after > before

    def caught_up() -> bool:
        offsets = {name: int(e["offset"]) for name, e in _replicas_of(redis, "A").items()}
        return sorted(offsets) == ["B", "C"] and min(offsets.values()) >= after

    wait_until(
        caught_up,
        10,
        what=f"B and C to reach the master's offset {after}",
        describe=lambda: str(_replicas_of(redis, "A")),
    )
    for name in ("B", "C"):
        state = redis.inspect(peerlab_env.node(name))
        assert state["link"] == "up" and state["offset"] >= after, (name, state)

    intruder = peerlab_env.add_node(role="replica-wrong-password")
    # It tries: its own log shows the master refusing its password ...
    wait_until(
        lambda: any(
            "WRONGPASS" in line or "invalid password" in line.lower() for line in intruder.logs(200)
        ),
        15,
        what=f"{intruder.name} to be refused by the master",
        describe=lambda: " | ".join(intruder.logs(5)),
    )
    # ... its link stays down, and the master never lists it (watched for a while, as a
    # refused replica retries every second).
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert intruder.name not in _replicas_of(redis, "A")
        assert redis.inspect(intruder)["link"] == "down"
        time.sleep(0.2)
    assert sorted(_replicas_of(redis, "A")) == ["B", "C"]


def _follows(env: Environment, redis: RedisSentinelAdapter, name: str, master: str) -> bool:
    """`name` is a replica of `master` with its replication link up."""
    state = redis.inspect(env.node(name))
    return state.get("master") == master and state.get("link") == "up"


async def _write_through_sentinels(
    redis: RedisSentinelAdapter,
    stop: asyncio.Event,
    prefix: str,
    *,
    replicas: int,
    sentinels: list[str] | None = None,
) -> int:
    """Write `prefix:i` once for every i, each to the master the sentinels name then,
    until `stop`; how many writes Redis acknowledged."""
    acknowledged = 0
    i = 0
    clients: dict[str, RedisClient] = {}  # one connection per node, as a real client keeps
    while not stop.is_set():
        i += 1
        try:
            found = await redis.discover(sentinels=sentinels)
            if found is None or found.node is None:
                raise PeerlabError("no master known")
            if found.node not in clients:
                clients[found.node] = redis.redis(found.node, process=f"{prefix}-writer")
            client = clients[found.node]
            confirmed = await client.write(f"{prefix}:{i}", i, replicas=replicas, wait_ms=500)
            acknowledged += confirmed >= replicas
        except PeerlabError:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.005)
    for client in clients.values():
        await client.close()
    return acknowledged


@pytest.mark.parametrize(
    "runs",
    [pytest.param(1, id="1-failover"), pytest.param(5, marks=pytest.mark.stress, id="5-failovers")],
)
def test_failover_loses_no_acknowledged_write_and_the_old_master_rejoins(
    peerlab_env: Environment,
    redis_sentinel: StartRedis,
    keep_json: Callable[[str, Any], None],
    runs: int,
) -> None:
    """TC-603: SIGKILL the master while a client writes with `WAIT 1`: the sentinels
    promote a replica, the client is redirected, and no write WAIT confirmed is lost.
    TC-604: the old master, restarted, rejoins as a replica of the new master, holding the
    new master's data and nothing it took alone. The full form fails over five times."""
    redis = redis_sentinel()
    stop = asyncio.Event()
    writing = peerlab_env.loop.submit(_write_through_sentinels(redis, stop, "acked", replicas=1))
    master = "A"
    seconds = []
    for run in range(runs):
        before = len(operations(peerlab_env.history.entries()))
        wait_until(
            lambda before=before, master=master: any(
                op.type == "ok" and op.node == master
                for op in operations(peerlab_env.history.entries())[before:]
            ),
            15,
            what=f"the writer to write to {master}",
        )
        killed_at = time.monotonic()
        peerlab_env.kill(master)
        written_at, new_master = redis.write_on_new_master(master, timeout=60)
        seconds.append(round(written_at - killed_at, 3))
        assert new_master != master
        # The writer follows the sentinels to the new master.
        wait_until(
            lambda new_master=new_master, before=before: any(
                op.type == "ok" and op.node == new_master
                for op in operations(peerlab_env.history.entries())[before:]
            ),
            15,
            what=f"the writer to be redirected to {new_master}",
        )

        peerlab_env.restart(master)
        # Until a sentinel turns it into a replica (it asks each node for INFO every 10 s),
        # the restarted node is a master of its own: a client that still has its address
        # can write there, and that write will be lost (docs/findings/redis-sentinel.md).
        stale_key = f"stale:{run}"
        stale_client = redis.redis(master, process="stale-client")
        with contextlib.suppress(PeerlabError):  # already a replica (READONLY): nothing lost
            peerlab_env.run(stale_client.write(stale_key, "to the restarted old master"))
        wait_until(
            lambda master=master, new_master=new_master: _follows(
                peerlab_env, redis, master, new_master
            ),
            45,
            what=f"the old master {master} to rejoin as a replica of {new_master}",
            describe=lambda master=master: str(redis.inspect(peerlab_env.node(master))),
        )
        assert sorted(_replicas_of(redis, new_master)) == sorted({"A", "B", "C"} - {new_master})
        assert peerlab_env.run(redis.redis(master).read(stale_key)) is None
        assert peerlab_env.run(redis.redis(new_master).read(stale_key)) is None
        redis.wait_settled(new_master, 45)
        master = new_master

    peerlab_env.loop.loop.call_soon_threadsafe(stop.set)
    acknowledged = writing.result(10)
    keep_json("failover.json", {"seconds": seconds, "acknowledged": acknowledged})
    print(f"redis failover: {seconds}s to the first write on the new master")

    # Every write here asked for WAIT 1, so `ok` means a replica confirmed it; one that no
    # replica confirmed is `info`, and the checker does not count it as acknowledged.
    # (The writes to restarted old masters are checked above: lost, as they should be.)
    final = peerlab_env.run(redis.redis(master).keys("acked:*"), 10)
    confirmed = [e for e in peerlab_env.history.entries() if e.process != "stale-client"]
    verdict = no_lost_writes(confirmed, {master: final})
    assert verdict.valid == "valid", verdict.to_json()
    assert verdict.stats["acknowledged"] == acknowledged > 20
    # Every node that rejoined holds them too, once it has caught up.
    for name in ("A", "B", "C"):
        if name != master:
            wait_until(
                lambda name=name: (
                    set(final) <= set(peerlab_env.run(redis.redis(name).keys("acked:*"), 10))
                ),
                15,
                what=f"{name} to hold every confirmed write",
            )


def test_partitioned_master_loses_the_writes_it_took_alone(
    peerlab_env: Environment, redis_sentinel: StartRedis, keep_json: Callable[[str, Any], None]
) -> None:
    """TC-605: cut the master A off with one sentinel (D). The majority side (B, C, E, F)
    elects a new master; a client on A's side keeps writing to A, which acknowledges.
    After the heal A becomes a replica of the new master, and - as Redis documents for
    asynchronous replication without min-replicas-to-write - exactly the writes A took
    during the partition are lost; no write acknowledged anywhere else is."""
    redis = redis_sentinel()
    # WAIT answers as soon as both replicas confirm; the long limit is for a busy machine.
    before = peerlab_env.run(redis.redis("A").write("before:1", 1, replicas=2, wait_ms=10_000), 20)
    assert before == 2

    peerlab_env.net.partition([["A", "D"], ["B", "C", "E", "F"]])
    partition_began = peerlab_env.history.event("partition_in_force", None).time
    stop = asyncio.Event()
    isolated = peerlab_env.loop.submit(
        _write_through_sentinels(redis, stop, "isolated", replicas=0, sentinels=["D"])
    )
    waited = peerlab_env.loop.submit(
        _write_through_sentinels(redis, stop, "isolated-wait", replicas=1, sentinels=["D"])
    )
    majority = peerlab_env.loop.submit(
        _write_through_sentinels(redis, stop, "majority", replicas=0, sentinels=["E", "F"])
    )

    def promoted() -> str | None:
        views = peerlab_env.run(redis.views(), 10)
        named = {views.get("E"), views.get("F")}
        return named.pop() if len(named) == 1 and None not in named and "A" not in named else None

    new_master = wait_until(
        promoted,
        30,
        what="sentinels E and F to promote a replica",
        describe=lambda: str(peerlab_env.run(redis.views(), 10)),
    )
    assert new_master in ("B", "C")
    wait_until(
        lambda: (
            sum(
                op.type == "ok" and op.node == new_master
                for op in operations(peerlab_env.history.entries())
            )
            > 10
        ),
        15,
        what=f"writes on the new master {new_master}",
    )
    peerlab_env.net.heal()
    healed = peerlab_env.history.event("partition_healed", None).time
    wait_until(
        lambda: _follows(peerlab_env, redis, "A", new_master),
        45,
        what=f"A to become a replica of {new_master} after the heal",
        describe=lambda: str(redis.inspect(peerlab_env.node("A"))),
    )
    peerlab_env.loop.loop.call_soon_threadsafe(stop.set)
    counts = {
        "isolated": isolated.result(10),
        "isolated_wait": waited.result(10),
        "majority": majority.result(10),
    }

    final = peerlab_env.run(redis.redis(new_master).keys("*"), 10)
    entries = peerlab_env.history.entries()
    verdict = no_lost_writes(entries, {new_master: final})
    keep_json(
        "partition.json",
        {"verdict": verdict.to_json(), "acknowledged": counts, "new_master": new_master},
    )
    print(f"redis partition: {verdict.summary}")

    took_alone = {
        op.invoke.value["key"]
        for op in operations(entries)
        if op.f == "write"
        and op.type == "ok"
        and op.node == "A"
        and op.invoke.time > partition_began
    }
    assert counts["isolated"] > 0 and took_alone, "A acknowledged no write while cut off"
    assert verdict.valid == "invalid", verdict.to_json()
    # Exactly those writes are lost (the evidence shows the first 20 of them).
    assert verdict.stats["lost"] == len(took_alone), (verdict.stats, len(took_alone))
    shown = {lost["key"] for lost in verdict.evidence}
    assert shown <= took_alone, sorted(shown - took_alone)
    # WAIT 1 never confirmed a write on the cut-off side while it was cut off: no
    # replica could see it. (After the heal that writer follows D to the new master.)
    confirmed_alone = [
        op.to_json()
        for op in operations(entries)
        if op.f == "write"
        and op.type == "ok"
        and op.node == "A"
        and partition_began < op.invoke.time
        and op.completion.time < healed
        and op.completion.value["replicas"] >= 1
    ]
    assert not confirmed_alone, confirmed_alone[:5]
    assert any(
        op.f == "write" and op.type == "info" and op.node == "A" for op in operations(entries)
    ), "no WAIT 1 write was tried on the cut-off side"
    assert final.get("before:1") == "1"
    assert counts["majority"] > 0
