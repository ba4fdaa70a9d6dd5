"""What the etcd and Redis adapters read from their systems' answers."""

from __future__ import annotations

import base64

from peerlab.systems.etcd import MemberStatus, b64, prefix_end, unb64
from peerlab.systems.redis_sentinel import pairs, parse_info, parse_replicas


def test_prefix_end_covers_exactly_the_prefix() -> None:
    assert base64.b64decode(prefix_end("queue/")) == b"queue0"
    # The last byte that can grow does ("ÿ" is c3 bf in UTF-8).
    assert base64.b64decode(prefix_end("a\xff")) == b"a\xc3\xc0"
    assert unb64(b64("héllo")) == "héllo"


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
