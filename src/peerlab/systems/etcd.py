"""etcd's adapter: a typed client over the HTTP/JSON gateway, and each member's Raft state.

etcd 3.4's gRPC API is reachable as JSON at `/v3/...` on the client port (keys and values
are base64). peerlab talks to it with aiohttp because the `etcd3` Python client is broken
with current protobuf releases. The gateway has one gap: it maps HashKV to Hash's route, so
`/v3/maintenance/hash` answers Hash (a hash of the whole backend file). `kv_digest` is the
key-value check instead: a hash of every key a member holds at one revision, read from the
member's own store (a serializable range), which is what HashKV exists to compare.

Register operations (`read`, `write`, `cas`) record themselves in the environment's history
in the form the linearizability checker reads: value `{"key": k, "value": v}`, a cas value
`[expected, new]`. An operation without an answer (a timeout) is `info`, and so is a write
etcd answered with an error: it may have committed anyway. Only a refused connection, or
an error answer to a read, is a `fail` (`read_outcome`, `write_outcome`). A cas whose
compare did not match is a `fail` with the error "compare failed".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from peerlab.errors import PeerlabError
from peerlab.rpc import rpc
from peerlab.systems.base import BaseAdapter
from peerlab.systems.recording import Classify, Recording, Unsuccessful
from peerlab.wait import wait_until

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.node import Node

DEFAULT_TIMEOUT = 2.0  # seconds per request: an election on this machine takes about 1 s

T = TypeVar("T")


class EtcdError(PeerlabError):
    """etcd answered a request with an error (the request reached it)."""

    def __init__(self, node: str, path: str, status: int, message: str) -> None:
        super().__init__(f"etcd member {node}: {path}: HTTP {status}: {message}")
        self.node = node
        self.status = status
        self.detail = message


class EtcdUnreachable(PeerlabError):
    """The member refused the connection: the request never reached etcd."""


class EtcdTimeout(PeerlabError):
    """No answer in time: the request may or may not have taken effect."""


async def through_elections(
    call: Callable[[], Awaitable[T]], *, unanswered: bool = False, pause: float = 0.05
) -> T:
    """`call()`, made again while etcd answers HTTP 503 because an election is under way.

    etcd answers 503 ("leader changed", "no leader") when a leader election overlaps a
    request; a harness step that reads or writes once would fail on a busy machine, where
    elections happen. A 503 to a write does not prove it was not applied ("leader changed"
    can come after the entry committed), so wrap only calls that are harmless to repeat:
    reads, lease grants and keep-alives, `EtcdClient.create`, `TaskQueue.enqueue`. With
    `unanswered`, a request that got no answer (`EtcdTimeout`) is made again too. There is
    no retry limit: the caller's deadline (`Environment.run`'s timeout) bounds the attempts.
    """
    while True:
        try:
            return await call()
        except EtcdError as exc:
            if exc.status != 503:
                raise
        except EtcdTimeout:
            if not unanswered:
                raise
        await asyncio.sleep(pause)


def absent(key: str) -> dict[str, str]:
    """A transaction's compare that holds while the key (base64, as `b64` gives it) does not
    exist: its create revision is 0."""
    return {"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}


def read_outcome(exc: Exception) -> Unsuccessful:
    """A read changes nothing: an error answer, or no connection, means it did not happen."""
    return "fail" if isinstance(exc, EtcdUnreachable | EtcdError) else "info"


def write_outcome(exc: Exception) -> Unsuccessful:
    """A write etcd never received did not happen. An error answer does not prove that
    ("request timed out" can come after the entry was committed), nor does anything else."""
    return "fail" if isinstance(exc, EtcdUnreachable) else "info"


def b64(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return base64.b64encode(data).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with `prefix` (etcd's convention)."""
    data = bytearray(prefix.encode())
    for i in range(len(data) - 1, -1, -1):
        if data[i] < 0xFF:
            data[i] += 1
            return b64(bytes(data[: i + 1]))
    return b64(b"\0")


@dataclass(frozen=True)
class MemberStatus:
    """What one member says about itself and the cluster (`/v3/maintenance/status`)."""

    member_id: str
    leader_id: str
    term: int
    revision: int
    raft_index: int
    applied_index: int

    @property
    def is_leader(self) -> bool:
        return self.member_id == self.leader_id and self.leader_id != "0"

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MemberStatus:
        header = raw.get("header", {})
        return cls(
            member_id=str(header.get("member_id", "0")),
            leader_id=str(raw.get("leader", "0")),
            term=int(raw.get("raftTerm", header.get("raft_term", 0))),
            revision=int(header.get("revision", 0)),
            raft_index=int(raw.get("raftIndex", 0)),
            applied_index=int(raw.get("raftAppliedIndex", 0)),
        )


class EtcdClient:
    """Operations on one etcd member, as one client process of a workload.

    `process` names the client in the history (several clients may share a member).
    Every method is a coroutine for the environment's loop; `Environment.run` calls it
    from a test thread.
    """

    def __init__(
        self,
        env: EnvironmentAPI,
        node: Node,
        process: int | str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.env = env
        self.node = node
        self.process = process if process is not None else node.name
        self.timeout = timeout

    # ------------------------------------------------------------- transport

    async def call(self, path: str, body: dict[str, Any], timeout: float | None = None) -> Any:
        """POST `body` to the gateway's `/v3/<path>`; the parsed JSON answer."""
        # The harness talks to the member's own address: the faults it injects between
        # members must not hide what a member answers.
        url = self.node.direct_url("client", f"/v3/{path}")
        limit = timeout or self.timeout
        try:
            async with self.env.http_session().post(
                url, json=body, timeout=aiohttp.ClientTimeout(total=limit)
            ) as response:
                data = await response.read()
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            raise EtcdUnreachable(f"etcd member {self.node.name}: {path}: {exc}") from None
        except TimeoutError:
            raise EtcdTimeout(
                f"etcd member {self.node.name}: {path}: no answer in {limit:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            # The connection broke mid-request: the member may have acted on it.
            raise EtcdTimeout(f"etcd member {self.node.name}: {path}: {exc!r}") from None
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {"error": data[:200].decode(errors="replace")}
        if status >= 400 or (isinstance(answer, dict) and "error" in answer):
            message = answer.get("message") or answer.get("error") or str(answer)
            raise EtcdError(self.node.name, path, status, str(message))
        return answer

    # ------------------------------------------------------------- recorded register ops

    def recording(self, f: str, value: Any, classify: Classify) -> Recording:
        """Record an operation of this client (see `peerlab.systems.recording`)."""
        return Recording(
            self.env.history, f, value, classify=classify, process=self.process, node=self.node.name
        )

    async def read(self, key: str, *, serializable: bool = False) -> Any:
        """The register's value (JSON-decoded), None when the key does not exist."""
        with self.recording("read", {"key": key, "value": None}, read_outcome) as op:
            value = await self.get(key, serializable=serializable)
            op.ok({"key": key, "value": value})
        return value

    async def write(self, key: str, value: Any) -> int:
        """Set the register; returns the revision of the write."""
        with self.recording("write", {"key": key, "value": value}, write_outcome):
            return await self.put(key, value)

    async def cas(self, key: str, expected: Any, new: Any) -> bool:
        """Compare-and-set in one transaction: True when it swapped, False (a `fail`) if not."""
        encoded_key = b64(key)
        with self.recording("cas", {"key": key, "value": [expected, new]}, write_outcome) as op:
            answer = await self.call(
                "kv/txn",
                {
                    "compare": [
                        {
                            "key": encoded_key,
                            "target": "VALUE",
                            "result": "EQUAL",
                            "value": b64(json.dumps(expected)),
                        }
                    ],
                    "success": [
                        {"request_put": {"key": encoded_key, "value": b64(json.dumps(new))}}
                    ],
                },
            )
            if not answer.get("succeeded"):
                op.fail(error="compare failed")
                return False
        return True

    # ------------------------------------------------------------- plain KV

    async def put(self, key: str, value: Any, *, lease: str | None = None) -> int:
        body: dict[str, Any] = {"key": b64(key), "value": b64(json.dumps(value))}
        if lease is not None:
            body["lease"] = lease
        answer = await self.call("kv/put", body)
        return int(answer.get("header", {}).get("revision", 0))

    async def create(self, key: str, value: Any) -> bool:
        """Put `key` only if it does not exist: True when this call created it.

        One transaction (compare the key's create revision with 0): sent again after an
        attempt that got no answer or a 503, it cannot write twice (see `through_elections`).
        """
        encoded_key = b64(key)
        answer = await self.txn(
            [absent(encoded_key)],
            [{"request_put": {"key": encoded_key, "value": b64(json.dumps(value))}}],
        )
        return bool(answer.get("succeeded"))

    async def get(self, key: str, *, serializable: bool = False) -> Any:
        kvs = await self.range(key, serializable=serializable)
        return json.loads(unb64(kvs[0]["value"])) if kvs else None

    async def range(
        self,
        key: str,
        *,
        prefix: bool = False,
        serializable: bool = False,
        revision: int | None = None,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """Raw key-value records (base64 fields) for `key`, or every key under it."""
        body: dict[str, Any] = {"key": b64(key), "serializable": serializable}
        if prefix:
            body["range_end"] = prefix_end(key)
        if revision is not None:
            body["revision"] = str(revision)
        answer = await self.call("kv/range", body, timeout)
        return list(answer.get("kvs", []))

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        body: dict[str, Any] = {"key": b64(key)}
        if prefix:
            body["range_end"] = prefix_end(key)
        answer = await self.call("kv/deleterange", body)
        return int(answer.get("deleted", 0))

    async def txn(
        self,
        compare: Sequence[dict[str, Any]],
        success: Sequence[dict[str, Any]],
        failure: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """A raw transaction (fields as the gateway spells them, keys in base64)."""
        answer: dict[str, Any] = await self.call(
            "kv/txn", {"compare": list(compare), "success": list(success), "failure": list(failure)}
        )
        return answer

    # ------------------------------------------------------------- leases

    async def lease_grant(self, ttl: int) -> str:
        answer = await self.call("lease/grant", {"TTL": ttl})
        return str(answer["ID"])

    async def lease_keepalive(self, lease: str) -> int:
        """Renew the lease once; returns its TTL, 0 when it has already expired."""
        answer = await self.call("lease/keepalive", {"ID": lease})
        return int(answer.get("result", answer).get("TTL", 0))

    async def lease_ttl(self, lease: str) -> int:
        """Seconds left; -1 once the lease has expired (or was revoked)."""
        answer = await self.call("lease/timetolive", {"ID": lease})
        return int(answer.get("TTL", -1))

    async def lease_revoke(self, lease: str) -> None:
        await self.call("lease/revoke", {"ID": lease})

    # ------------------------------------------------------------- cluster state

    async def status(self, timeout: float | None = None) -> MemberStatus:
        return MemberStatus.from_json(await self.call("maintenance/status", {}, timeout))

    async def members(self) -> list[dict[str, Any]]:
        answer = await self.call("cluster/member/list", {})
        return list(answer.get("members", []))

    async def backend_hash(self) -> int:
        """Hash of the member's whole backend (what the gateway answers for HashKV too)."""
        return int((await self.call("maintenance/hash", {})).get("hash", 0))

    async def kv_digest(self, revision: int) -> str:
        """SHA-256 of every key, value and revision this member holds at `revision`.

        The range is serializable: the member answers from its own store, so two members
        that applied the same log give the same digest.
        """
        # key "\0" with range end "\0" is etcd's spelling of "every key".
        answer = await self.call(
            "kv/range",
            {
                "key": b64("\0"),
                "range_end": b64("\0"),
                "serializable": True,
                "revision": str(revision),
            },
        )
        kvs = answer.get("kvs", [])
        digest = hashlib.sha256()
        for kv in sorted(kvs, key=lambda kv: str(kv.get("key"))):
            fields = (
                kv.get("key"),
                kv.get("value", ""),
                kv.get("create_revision"),
                kv.get("mod_revision"),
                kv.get("version"),
                kv.get("lease", "0"),
            )
            digest.update(json.dumps(fields).encode())
        return digest.hexdigest()


class TaskQueue:
    """A work queue on etcd transactions, for exactly-once scenarios.

    `<prefix>pending/<id>` holds a task until a worker claims it; a claim is one
    transaction that checks the task is still pending and unclaimed, deletes it from
    pending and writes `<prefix>claimed/<id>` = worker. An enqueue with an idempotency key
    first records `<prefix>keys/<key>` = id, in the same transaction, only if the key is
    new; a repeated enqueue gets the id the key already names. `enqueue` and `claim`
    record themselves in the history (f "enqueue" / "claim", value {"id": ...}).
    """

    def __init__(self, client: EtcdClient, prefix: str = "queue/") -> None:
        self.client = client
        self.prefix = prefix

    def _key(self, kind: str, task: str) -> str:
        return f"{self.prefix}{kind}/{task}"

    async def enqueue(self, task: str, payload: Any, idempotency_key: str) -> str:
        """Add `task` unless `idempotency_key` was used; the id of the task the key names."""
        client = self.client
        marker = b64(self._key("keys", idempotency_key))
        value = {"id": task, "key": idempotency_key}
        with client.recording("enqueue", value, write_outcome) as op:
            answer = await client.txn(
                [absent(marker)],
                [
                    {"request_put": {"key": marker, "value": b64(json.dumps(task))}},
                    {
                        "request_put": {
                            "key": b64(self._key("pending", task)),
                            "value": b64(json.dumps(payload)),
                        }
                    },
                ],
                [{"request_range": {"key": marker}}],
            )
            if answer.get("succeeded"):
                queued = task
            else:
                kvs = answer["responses"][0]["response_range"]["kvs"]
                queued = json.loads(unb64(kvs[0]["value"]))
            op.ok({"id": queued, "key": idempotency_key})
        return str(queued)

    async def pending(self) -> list[str]:
        kvs = await self.client.range(self._key("pending", ""), prefix=True)
        start = len(self._key("pending", ""))
        return [unb64(kv["key"])[start:] for kv in kvs]

    async def claimed(self) -> dict[str, Any]:
        """Every claimed task and the worker that holds it."""
        kvs = await self.client.range(self._key("claimed", ""), prefix=True)
        start = len(self._key("claimed", ""))
        return {unb64(kv["key"])[start:]: json.loads(unb64(kv["value"])) for kv in kvs}

    async def claim(self, task: str, worker: int | str) -> bool:
        """Claim `task` for `worker` in one transaction; False (a `fail`) if it is taken."""
        client = self.client
        pending = b64(self._key("pending", task))
        claimed = b64(self._key("claimed", task))
        with client.recording("claim", {"id": task, "worker": worker}, write_outcome) as op:
            answer = await client.txn(
                [
                    {"key": pending, "target": "VERSION", "result": "GREATER", "version": "0"},
                    absent(claimed),
                ],
                [
                    {"request_delete_range": {"key": pending}},
                    {"request_put": {"key": claimed, "value": b64(json.dumps(worker))}},
                ],
            )
            if not answer.get("succeeded"):
                op.fail(error="already claimed")
                return False
        return True


@dataclass(frozen=True)
class Leader:
    name: str
    term: int
    member_id: str


class EtcdAdapter(BaseAdapter):
    """The etcd system for an Environment: clients, the Raft state of each member."""

    def __init__(self, env: EnvironmentAPI) -> None:
        super().__init__(env)
        self._clients: dict[str, EtcdClient] = {}
        self._member_names: dict[str, str] = {}

    def client(
        self, node: Node, process: int | str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> EtcdClient:
        """The member's client; a `process` (one workload process) or a timeout of its own
        gets a new client."""
        if process is not None or timeout != DEFAULT_TIMEOUT:
            return EtcdClient(self.env, node, process, timeout)
        if node.name not in self._clients:
            self._clients[node.name] = EtcdClient(self.env, node)
        return self._clients[node.name]

    def _etcd_nodes(self) -> list[Node]:
        return [n for n in self.env.nodes.values() if n.system.name == "etcd"]

    def _run(self, coro: Any, timeout: float = DEFAULT_TIMEOUT + 1, what: str = "") -> Any:
        return self.env.run(coro, timeout, what=what)

    def member_name(self, member_id: str) -> str | None:
        """The node name of an etcd member id (asked of the cluster once, then remembered);
        None for "0", which is how a member without a leader names its leader."""
        if member_id == "0":
            return None
        if member_id not in self._member_names:
            for node in self._etcd_nodes():
                if not node.alive or node.state == "paused":
                    continue
                try:
                    members = self._run(self.client(node).members(), what="member list")
                except PeerlabError:
                    continue
                self._member_names.update({str(m["ID"]): m["name"] for m in members})
                break
        return self._member_names.get(member_id)

    async def statuses(
        self, names: Iterable[str] | None = None, timeout: float = 1.0
    ) -> dict[str, MemberStatus | None]:
        """Every reachable member's status at once; None for one that did not answer."""
        nodes = [self.env.node(n) for n in names] if names else self._etcd_nodes()
        nodes = [n for n in nodes if n.state == "running"]

        async def one(node: Node) -> MemberStatus | None:
            try:
                return await self.client(node).status(timeout)
            except PeerlabError:
                return None

        results = await asyncio.gather(*(one(node) for node in nodes))
        return {node.name: status for node, status in zip(nodes, results, strict=True)}

    def leader(self, names: Iterable[str] | None = None) -> Leader | None:
        """The leader named by the answering member with the highest term, if it runs."""
        statuses = self._run(self.statuses(names), 5, "member statuses")
        known = [s for s in statuses.values() if s is not None and s.leader_id != "0"]
        if not known:
            return None
        best = max(known, key=lambda s: s.term)
        name = self.member_name(best.leader_id)
        if name is None or self.env.node(name).state != "running":
            return None
        return Leader(name, best.term, best.leader_id)

    def wait_for_leader(
        self, timeout: float = 15.0, *, min_term: int = 0, names: Iterable[str] | None = None
    ) -> Leader:
        """Wait until the members agree on a running leader with a term above `min_term`."""
        chosen = list(names) if names else None

        def elected() -> Leader | None:
            found = self.leader(chosen)
            return found if found is not None and found.term > min_term else None

        found = wait_until(elected, timeout, what=f"an etcd leader with a term above {min_term}")
        assert found is not None  # wait_until returns only a truthy value
        return found

    def write_on_new_leader(
        self, old_term: int, timeout: float = 30.0, key: str = "peerlab/failover"
    ) -> tuple[float, str, int]:
        """Wait for a leader of a term above `old_term` and write through it; (monotonic
        time the write was acknowledged, the leader, the write's term)."""
        result: tuple[float, str, int] = self._run(
            self._write_on_new_leader(old_term, key, timeout), timeout + 5
        )
        return result

    async def _write_on_new_leader(
        self, old_term: int, key: str, timeout: float
    ) -> tuple[float, str, int]:
        # Ask every member who leads (answered locally, even mid-election) every 10 ms and
        # write to a leader of a newer term as soon as one appears. Writing blindly instead
        # would measure the client's timeouts: a write sent while there is no leader is
        # held until etcd's own request timeout (6 s here; docs/findings/etcd.md).
        deadline = time.monotonic() + timeout
        attempt = 0
        while time.monotonic() < deadline:
            statuses = await self.statuses(timeout=0.2)
            leaders = [
                name
                for name, status in statuses.items()
                if status is not None and status.is_leader and status.term > old_term
            ]
            for name in leaders:
                attempt += 1
                client = self.client(self.env.node(name), process=f"failover-{name}", timeout=1)
                try:
                    answer = await client.call(
                        "kv/put", {"key": b64(key), "value": b64(json.dumps(attempt))}
                    )
                except PeerlabError:
                    continue
                term = int(answer.get("header", {}).get("raft_term", 0))
                if term > old_term:
                    return time.monotonic(), name, term
            await asyncio.sleep(0.01)
        raise PeerlabError(
            f"no write committed in a term above {old_term} within {timeout:g}s",
            hint="the cluster may have lost its quorum; see the members' logs",
        )

    def kv_digests(
        self, names: Iterable[str] | None = None, timeout: float = 20.0
    ) -> dict[str, Any]:
        """{member: {revision, kv_digest, backend_hash}} at one revision, once all applied it."""
        nodes = [self.env.node(n) for n in names] if names else self._etcd_nodes()
        revision = max(
            self._run(self.client(n).status(), what="status").revision
            for n in nodes
            if n.state == "running"
        )

        def gather() -> dict[str, Any]:
            out = {}
            for node in nodes:
                client = self.client(node)
                status = self._run(client.status(), what="status")
                if status.revision < revision:
                    return {}
                out[node.name] = {
                    "revision": status.revision,
                    "kv_digest": self._run(client.kv_digest(revision), what="kv digest"),
                    "backend_hash": self._run(client.backend_hash(), what="hash"),
                }
            return out

        result: dict[str, Any] = wait_until(
            gather, timeout, what=f"every member to apply revision {revision}"
        )
        return result

    # ------------------------------------------------------------- CLI and state probe

    def inspect(self, node: Node) -> dict[str, Any]:
        """The member's Raft state: role, leader, term, revision, indexes."""
        status: MemberStatus = self._run(self.client(node).status(), what="status")
        return {
            "role": "leader" if status.is_leader else "follower",
            "leader": self.member_name(status.leader_id),
            "term": status.term,
            "revision": status.revision,
            "raft_index": status.raft_index,
            "applied_index": status.applied_index,
            "member_id": status.member_id,
        }

    @rpc
    def cluster(self) -> dict[str, Any]:
        """Every member's view: role, leader and term (`peerlab peer inspect` shows one)."""
        statuses = self._run(self.statuses(), 5, "member statuses")
        out: dict[str, Any] = {}
        for name, status in statuses.items():
            if status is None:
                out[name] = {"error": "no answer"}
                continue
            out[name] = {
                "role": "leader" if status.is_leader else "follower",
                "leader": self.member_name(status.leader_id),
                "term": status.term,
                "revision": status.revision,
            }
        return out

    @rpc
    def put(self, node: str, key: str, value: str) -> dict[str, Any]:
        """Write `key` through member `node`; returns the revision."""
        client = self.client(self.env.node(node))
        return {"revision": self._run(client.write(key, value), what=f"put on {node}")}

    @rpc
    def get(self, node: str, key: str) -> dict[str, Any]:
        """Read `key` through member `node` (a linearizable read)."""
        client = self.client(self.env.node(node))
        return {"key": key, "value": self._run(client.read(key), what=f"get on {node}")}


# ------------------------------------------------------------------- assertions


def assert_members_agree(
    env: EnvironmentAPI, names: Sequence[str], timeout: float = 20.0
) -> dict[str, Any]:
    """Every member in `names` holds the same revision and key-value digest; returns them."""
    adapter = EtcdAdapter.of(env, "etcd")
    digests = adapter.kv_digests(names, timeout)
    kv = {d["kv_digest"] for d in digests.values()}
    revisions = {d["revision"] for d in digests.values()}
    if len(kv) != 1 or len(revisions) != 1:
        raise AssertionError(f"etcd members disagree: {json.dumps(digests, indent=1)}")
    return digests
