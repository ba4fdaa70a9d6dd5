"""What the etcd and Redis adapters read from their systems' answers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

import pytest

from peerlab.systems.etcd import (
    EtcdError,
    EtcdTimeout,
    MemberStatus,
    b64,
    prefix_end,
    through_elections,
    unb64,
)
from peerlab.systems.redis_sentinel import pairs, parse_info, parse_replicas


def test_prefix_end_covers_exactly_the_prefix() -> None:
    assert base64.b64decode(prefix_end("queue/")) == b"queue0"
    # The last byte that can grow does ("ÿ" is c3 bf in UTF-8).
    assert base64.b64decode(prefix_end("a\xff")) == b"a\xc3\xc0"
    assert unb64(b64("héllo")) == "héllo"


def _answers(*outcomes: object) -> tuple[list[int], Callable[[], Awaitable[object]]]:
    """A call that raises or returns `outcomes` in turn, and the list of attempts made."""
    attempts: list[int] = []

    async def call() -> object:
        attempts.append(len(attempts))
        outcome = outcomes[len(attempts) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return attempts, call


def test_an_election_refusal_is_asked_again_and_other_errors_are_not() -> None:
    leader_changed = EtcdError("A", "kv/range", 503, "etcdserver: leader changed")
    attempts, call = _answers(leader_changed, leader_changed, "answer")
    assert asyncio.run(through_elections(call, pause=0)) == "answer"
    assert len(attempts) == 3

    attempts, call = _answers(EtcdError("A", "kv/put", 400, "bad key"), "answer")
    with pytest.raises(EtcdError, match="bad key"):
        asyncio.run(through_elections(call, pause=0))
    assert len(attempts) == 1


def test_an_unanswered_request_is_sent_again_only_when_asked() -> None:
    lost = EtcdTimeout("etcd member A: kv/put: no answer in 2s")
    attempts, call = _answers(lost, "answer")
    with pytest.raises(EtcdTimeout):
        asyncio.run(through_elections(call, pause=0))
    assert len(attempts) == 1
    attempts, call = _answers(lost, "answer")
    assert asyncio.run(through_elections(call, unanswered=True, pause=0)) == "answer"
    assert len(attempts) == 2


def test_member_status_knows_the_leader() -> None:
    raw = {
        "header": {"member_id": "7", "revision": "12", "raft_term": "3"},
        "leader": "7",
        "raftIndex": "40",
        "raftTerm": "3",
        "raftAppliedIndex": "40",
    }
    status = MemberStatus.from_json(raw)
    assert status.is_leader and status.term == 3 and status.revision == 12
    follower = MemberStatus.from_json({**raw, "leader": "9"})
    assert not follower.is_leader
    assert not MemberStatus.from_json(
        {**raw, "leader": "0", "header": {"member_id": "0"}}
    ).is_leader


INFO = """# Replication\r
role:master\r
connected_slaves:2\r
slave0:ip=127.10.0.3,port=6379,state=online,offset=3824,lag=0\r
slave1:ip=127.10.0.4,port=6379,state=wait_bgsave,offset=0,lag=1\r
master_repl_offset:3824\r
\r
"""


def test_info_replication_parses_into_replicas() -> None:
    info = parse_info(INFO)
    assert info["role"] == "master" and info["master_repl_offset"] == "3824"
    assert parse_replicas(info) == [
        {"ip": "127.10.0.3", "port": "6379", "state": "online", "offset": "3824", "lag": "0"},
        {"ip": "127.10.0.4", "port": "6379", "state": "wait_bgsave", "offset": "0", "lag": "1"},
    ]


def test_sentinel_field_lists_become_dicts() -> None:
    assert pairs([b"name", b"mymaster", b"num-slaves", b"2"]) == {
        "name": "mymaster",
        "num-slaves": "2",
    }
