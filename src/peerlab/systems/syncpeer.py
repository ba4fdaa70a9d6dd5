"""syncpeer's adapter: a typed client over its HTTP admin API, and assertions for scenarios.

peerlab never imports syncpeer: everything here goes over HTTP (the environment's
`transport`), so the same client works for any syncpeer node, wherever it runs: a process,
or a simulated node on virtual time. Admin calls go to the node's own address (not through
the fabric): the harness's control channel must not suffer the faults it injects.

Calls that change state record themselves in the history. syncpeer checks a request before
it changes anything, so a 4xx answer, like a request that never left (the peer is down, the
connection was refused), is a `fail`; a 5xx answer or no answer is `info` (`outcome`).
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from peerlab.errors import NotFound, PeerlabError, UsageError, WaitTimeout
from peerlab.rpc import rpc
from peerlab.systems.base import BaseAdapter, ByzantineModes
from peerlab.systems.recording import Recording, Unsuccessful
from peerlab.transport import HttpRequest, Unreachable

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.node import Node

# A friend added by fingerprint is a DHT lookup (up to syncpeer's lookup timeout, 10 s by
# default) and then a GET of the card from the address found.
DISCOVERY_TIMEOUT = 30.0
_FINGERPRINT = re.compile(r"[0-9a-f]{40}")


class SyncpeerError(PeerlabError):
    """syncpeer answered with an error."""

    def __init__(self, node: str, status: int, message: str) -> None:
        super().__init__(f"peer {node}: HTTP {status}: {message}")
        self.node = node
        self.status = status


class SyncpeerUnreachable(PeerlabError):
    """The request never left: the peer is not running, or refused the connection."""


@contextlib.contextmanager
def _refusals(peer: str, name: str) -> Iterator[None]:
    """syncpeer's "no such file" and "bad name" answers as the user's mistakes, in words."""
    try:
        yield
    except SyncpeerError as exc:
        if exc.status == 404:
            raise NotFound(
                f"peer {peer} has no file named {name!r}",
                field="name",
                hint=f"it has not arrived yet, or {peer} is not a recipient: "
                f"`peerlab file list {peer}` shows what it holds",
            ) from None
        if exc.status == 400:
            raise UsageError(
                f"peer {peer} refused the file name {name!r}: {exc.message.split(': ', 2)[-1]}",
                field="name",
                hint="use a plain file name such as notes.txt",
            ) from None
        raise


def outcome(exc: Exception) -> Unsuccessful:
    """A 4xx answer is syncpeer refusing the request before it changed anything, and a
    request that never left did nothing: both `fail`. A 5xx answer or no answer: `info`."""
    if isinstance(exc, SyncpeerUnreachable):
        return "fail"
    if isinstance(exc, SyncpeerError) and exc.status < 500:
        return "fail"
    return "info"


@dataclass(frozen=True)
class Published:
    """A file the harness asked a peer to publish: kept in memory (never in the history,
    which must not hold plaintext) so the secrets check knows what only its recipients may
    show. `recipients` None: public."""

    author: str
    name: str
    content: bytes
    recipients: tuple[str, ...] | None


class SyncpeerClient:
    """Typed operations on one syncpeer node; every call that changes state is recorded."""

    def __init__(
        self,
        env: EnvironmentAPI,
        node: Node,
        timeout: float = 10.0,
        published: list[Published] | None = None,
    ) -> None:
        self.env = env
        self.node = node
        self.timeout = timeout
        self.published = published

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bool = False,
        timeout: float | None = None,
        data: bytes | None = None,
    ) -> Any:
        if not self.node.alive:
            raise SyncpeerUnreachable(
                f"peer {self.node.name} is {self.node.state}",
                hint=f"restart it with `peerlab peer restart {self.node.name}`",
            )
        if body is not None:
            data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = HttpRequest(method, path, data, headers)
        try:
            answer = self.env.transport.request(self.node, "http", request, timeout or self.timeout)
        except Unreachable as exc:
            raise SyncpeerUnreachable(exc.message) from None
        if answer.status >= 400:
            try:
                message = json.loads(answer.body)["error"]
            except (ValueError, KeyError, TypeError):
                message = answer.body[:200].decode(errors="replace")
            raise SyncpeerError(self.node.name, answer.status, message)
        if raw:
            return answer.body
        return answer.json()

    def recording(self, f: str, value: Any) -> Recording:
        """Record an operation of this peer (see `peerlab.systems.recording`)."""
        return Recording(
            self.env.history,
            f,
            value,
            classify=outcome,
            process=self.node.name,
            node=self.node.name,
        )

    def _recorded(
        self,
        f: str,
        value: Any,
        method: str,
        path: str,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        with self.recording(f, value):
            return self._call(method, path, body, timeout=timeout)

    # identity and friends
    def identity(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/identity")
        return result

    @property
    def fingerprint(self) -> str:
        return str(self.identity()["fingerprint"])

    def add_friend(self, card: dict[str, Any], address: str) -> dict[str, Any]:
        result: dict[str, Any] = self._recorded(
            "friend_add",
            {"fingerprint": card.get("fingerprint"), "address": address},
            "POST",
            "/admin/friends",
            {"card": card, "address": address},
        )
        return result

    def add_friend_by_fingerprint(self, fingerprint: str) -> dict[str, Any]:
        """Add a friend knowing only its fingerprint: the node finds it through the DHT."""
        result: dict[str, Any] = self._recorded(
            "friend_add",
            {"fingerprint": fingerprint, "via": "dht"},
            "POST",
            "/admin/friends",
            {"fingerprint": fingerprint},
            timeout=DISCOVERY_TIMEOUT,
        )
        return result

    def friends(self) -> list[dict[str, Any]]:
        result = self._call("GET", "/admin/friends")
        return list(result["friends"] if isinstance(result, dict) else result)

    # the DHT
    def dht_table(self) -> dict[str, Any]:
        """The routing table: buckets, contacts, counters and the DHT's settings."""
        result: dict[str, Any] = self._call("GET", "/admin/dht/table")
        return result

    def dht_status(self) -> dict[str, Any] | None:
        status: dict[str, Any] | None = self.status().get("dht")
        return status

    def dht_lookup(self, key: str, value: bool = True) -> dict[str, Any]:
        """Look `key` (a fingerprint) up from this node: found, hops, path, time.

        Recorded as a `dht_lookup` operation: ok when found, fail (with the reason) when not.
        """
        with self.recording("dht_lookup", {"key": key}) as op:
            result: dict[str, Any] = self._call(
                "POST",
                "/admin/dht/lookup",
                {"key": key, "value": value},
                timeout=DISCOVERY_TIMEOUT,
            )
            summary = {
                "key": key,
                "found": result["found"],
                "hops": result["hops"],
                "duration_ms": result["duration_ms"],
            }
            if result["found"] or not value:
                op.ok(summary)
            else:
                op.fail(summary, error=result.get("reason"))
        return result

    # files
    def publish(
        self, name: str, content: bytes, recipients: Sequence[str] | str = "public"
    ) -> dict[str, Any]:
        """Publish `content` as `name`, encrypted for `recipients` (fingerprints) or public."""
        body = {
            "name": name,
            "content_b64": base64.b64encode(content).decode(),
            "recipients": recipients if isinstance(recipients, str) else list(recipients),
        }
        value = {"name": name, "sha256": hashlib.sha256(content).hexdigest()}
        if self.published is not None:
            targets = None if isinstance(recipients, str) else tuple(recipients)
            self.published.append(Published(self.node.name, name, content, targets))
        result: dict[str, Any] = self._recorded("publish", value, "POST", "/admin/files", body)
        return result

    def delete(self, name: str) -> dict[str, Any]:
        """Delete `name` everywhere: the node signs a tombstone that its friends fetch."""
        value = {"name": name, "deleted": True}
        result: dict[str, Any] = self._recorded("delete", value, "DELETE", f"/admin/files/{name}")
        return result

    def files(self) -> list[dict[str, Any]]:
        result = self._call("GET", "/admin/files")
        return list(result["files"] if isinstance(result, dict) else result)

    def file(self, name: str) -> dict[str, Any] | None:
        return next((f for f in self.files() if f["name"] == name), None)

    def content(self, name: str) -> bytes:
        """The decrypted content; SyncpeerError(403) when this node is not a recipient."""
        data: bytes = self._call("GET", f"/admin/files/{name}/content", raw=True)
        return data

    def envelope(self, name: str) -> bytes:
        """The raw envelope as served to peers (ciphertext unless public)."""
        data: bytes = self._call("GET", f"/files/{name}", raw=True)
        return data

    def open_envelope(self, envelope: bytes) -> bytes:
        """Ask this node to verify and decrypt an envelope it was handed (403: not for it)."""
        data: bytes = self._call("POST", "/admin/open", raw=True, data=envelope)
        return data

    def versions(self, name: str) -> list[dict[str, Any]]:
        result = self._call("GET", f"/admin/files/{name}/versions")
        return list(result["versions"] if isinstance(result, dict) else result)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/admin/status")
        return result


class SyncpeerAdapter(BaseAdapter):
    """The syncpeer system for an Environment: clients, friendships, files (CLI verbs too)."""

    # syncpeer's lying modes (`syncpeer.io.byzantine.MODES`), switched at start-up.
    byzantine = ByzantineModes(
        "SYNCPEER_BYZANTINE",
        ("corrupt", "lie-size", "lie-hash", "lie-timestamp", "selective", "replay", "slowloris"),
    )

    def __init__(self, env: EnvironmentAPI) -> None:
        super().__init__(env)
        self._clients: dict[str, SyncpeerClient] = {}
        self._fingerprints: dict[str, str] = {}
        self.published: list[Published] = []  # what the harness published, content included

    def client(self, node: Node) -> SyncpeerClient:
        if node.name not in self._clients:
            self._clients[node.name] = SyncpeerClient(self.env, node, published=self.published)
        return self._clients[node.name]

    def _client(self, name: str) -> SyncpeerClient:
        return self.client(self.env.node(name))

    def inspect(self, node: Node) -> dict[str, Any]:
        client = self.client(node)
        return {
            "identity": client.identity(),
            "friends": client.friends(),
            "files": client.files(),
            "status": client.status(),
        }

    def befriend(self, a: str, b: str, *, mutual: bool = True, via_dht: bool = False) -> None:
        """`a` adds `b` as a friend (and `b` adds `a` unless mutual=False).

        via_dht: each side is given only the other's fingerprint and finds the rest (address,
        card) through the DHT, as a user who was told a fingerprint would.
        """
        if a == b:
            raise UsageError(
                f"a peer cannot befriend itself ({a})",
                field="peer",
                hint="name two different peers",
            )
        ca, cb = self._client(a), self._client(b)
        if via_dht:
            ca.add_friend_by_fingerprint(self.fingerprint_of(b))
            if mutual:
                cb.add_friend_by_fingerprint(self.fingerprint_of(a))
            return
        ca.add_friend(cb.identity(), f"{cb.node.address}:{cb.node.ports['http']}")
        if mutual:
            cb.add_friend(ca.identity(), f"{ca.node.address}:{ca.node.ports['http']}")

    def befriend_graph(self, edges: Iterable[tuple[str, str]], *, via_dht: bool = False) -> None:
        for a, b in edges:
            self.befriend(a, b, via_dht=via_dht)

    @rpc
    def friend_add(
        self, a: str, b: str, mutual: bool = True, via_dht: bool = False
    ) -> dict[str, Any]:
        """`a` befriends `b`: a peer name, or a fingerprint alone (found through the DHT;
        then only `a` adds it, unless it is the fingerprint of a peer here and `mutual`)."""
        if b not in self.env.nodes and _FINGERPRINT.fullmatch(b):
            self._client(a).add_friend_by_fingerprint(b)
            peer = self.names_by_fingerprint().get(b)
            if mutual and peer is not None:
                self._client(peer).add_friend_by_fingerprint(self.fingerprint_of(a))
        else:
            self.befriend(a, b, mutual=mutual, via_dht=via_dht)
        return {"peer": a, "friends": self.friend_list(a)}

    @rpc
    def friend_list(self, a: str) -> list[dict[str, Any]]:
        names = self.names_by_fingerprint()
        friends = self._client(a).friends()
        for friend in friends:
            card = friend.get("card", friend)
            friend["peer"] = names.get(card.get("fingerprint", friend.get("fingerprint")))
        return friends

    def fingerprints(self, names: Iterable[str]) -> list[str]:
        return [self.fingerprint_of(name) for name in names]

    def fingerprint_of(self, name: str) -> str:
        """A peer's fingerprint (kept: a node's identity lives as long as its data dir)."""
        fingerprint = self._fingerprints.get(name)
        if fingerprint is None:
            fingerprint = self._stored_fingerprint(self.env.node(name))
            if fingerprint is None:
                fingerprint = self._client(name).fingerprint
            self._fingerprints[name] = fingerprint
        return fingerprint

    @staticmethod
    def _stored_fingerprint(node: Node) -> str | None:
        # syncpeer writes identity.json (atomically) before it serves anything; reading it
        # spares an HTTP call per node, and works for a node that is down.
        try:
            data = json.loads((node.data_dir / "identity.json").read_text())
        except (OSError, ValueError):
            return None
        fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
        return fingerprint if isinstance(fingerprint, str) else None

    def fingerprint_map(self) -> dict[str, str]:
        """Every started peer's fingerprint, by peer name."""
        out = {}
        for node in self.env:
            try:
                out[node.name] = self.fingerprint_of(node.name)
            except PeerlabError:
                continue  # a peer that never started has no identity yet
        return out

    def names_by_fingerprint(self) -> dict[str, str]:
        return {fingerprint: name for name, fingerprint in self.fingerprint_map().items()}

    def _key(self, key: str) -> str:
        """A lookup key: a peer's name (its fingerprint) or a fingerprint."""
        if key in self.env.nodes:
            return self.fingerprint_of(key)
        if _FINGERPRINT.fullmatch(key):
            return key
        raise UsageError(
            f"{key!r} is neither a peer nor a fingerprint",
            field="key",
            hint=f"name a peer ({', '.join(list(self.env.nodes)[:5])}...) "
            "or give 40 lowercase hex digits",
        )

    # ------------------------------------------------------------------ the DHT

    @rpc
    def dht_lookup(self, a: str, key: str, value: bool = True) -> dict[str, Any]:
        """Peer `a` looks `key` (a peer or a fingerprint) up: path, hops, XOR distance, time.

        Every id in the answer also gets the name of the peer it belongs to (`peer`).
        """
        fingerprint = self._key(key)
        result = self._client(a).dht_lookup(fingerprint, value)
        names = self.names_by_fingerprint()
        result["looker"] = a
        result["target_peer"] = names.get(fingerprint)
        for entry in [*result["path"], *result["queried"], *result["closest"]]:
            entry["peer"] = names.get(entry["id"])
        if result.get("holder"):
            result["holder"]["peer"] = names.get(result["holder"]["id"])
        return result

    @rpc
    def dht_table(self, a: str) -> dict[str, Any]:
        """Peer `a`'s routing table: every bucket and its contacts (with peer names)."""
        table = self._client(a).dht_table()
        names = self.names_by_fingerprint()
        table["peer"] = a
        for bucket in table["buckets"]:
            for entry in [*bucket["contacts"], *bucket["replacements"]]:
                entry["peer"] = names.get(entry["id"])
        return table

    def wait_joined(self, names: Iterable[str] | None = None, timeout: float = 30.0) -> None:
        """Wait until every named peer (default: every live one) has joined the DHT."""
        pending = list(names) if names is not None else [n.name for n in self.env.live_nodes()]

        def not_joined() -> list[str]:
            return [
                name
                for name in pending
                if not (self._client(name).dht_status() or {}).get("joined")
            ]

        self.env.wait_until(
            lambda: not not_joined(),
            timeout,
            what=f"{len(pending)} peers to join the DHT",
            describe=lambda: f"not joined: {', '.join(not_joined()[:10])}",
        )

    @rpc
    def file_add(
        self, a: str, name: str, content_b64: str, recipients: list[str] | None = None
    ) -> dict[str, Any]:
        """Publish a file on `a` for the named peers (None: public)."""
        try:
            content = base64.b64decode(content_b64, validate=True)
        except ValueError:
            raise UsageError("content_b64 is not base64", field="content_b64") from None
        targets: list[str] | str = self.fingerprints(recipients) if recipients else "public"
        with _refusals(a, name):
            return self._client(a).publish(name, content, targets)

    @rpc
    def file_list(self, a: str) -> list[dict[str, Any]]:
        """The files `a` holds (its own and those it received)."""
        return self._client(a).files()

    @rpc
    def file_cat(self, b: str, name: str) -> str:
        """The decrypted content on `b`, base64 (the CLI decodes it)."""
        with _refusals(b, name):
            return base64.b64encode(self._client(b).content(name)).decode()


# ------------------------------------------------------------------- assertions


def _file_state(client: SyncpeerClient, name: str) -> dict[str, Any] | None:
    try:
        return client.file(name)
    except PeerlabError:
        return None


def assert_file_synced(
    env: EnvironmentAPI,
    name: str,
    nodes: Iterable[str],
    *,
    content: bytes | None = None,
    timeout: float = 15.0,
) -> None:
    """Wait until every node in `nodes` holds `name`, can decrypt it, and (if given) its
    content equals `content`. Fails naming the nodes that do not, and what they hold; fails
    at once when a node holds the author's latest version and it is not `content` (it will
    not change by waiting), with a short diff when both are small text."""
    names = list(nodes)
    expected = hashlib.sha256(content).hexdigest() if content is not None else None
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    final_and_wrong: list[str] = []  # nodes whose wrong content will not change by waiting

    def lagging() -> dict[str, str]:
        out: dict[str, str] = {}
        for node_name in names:
            state = _file_state(adapter.client(env.node(node_name)), name)
            if state is None:
                out[node_name] = "does not have it"
            elif not state.get("decryptable"):
                out[node_name] = "has it but cannot decrypt it"
            elif expected and state.get("sha256_plain") != expected:
                if _is_latest(env, adapter, name, state):
                    final_and_wrong.append(node_name)
                out[node_name] = f"holds sha256 {str(state.get('sha256_plain'))[:12]}…"
        return out

    try:
        env.wait_until(
            lambda: final_and_wrong or not lagging(),
            timeout,
            what=f"{name!r} to sync to {', '.join(names)}",
            describe=lambda: "; ".join(f"{n}: {why}" for n, why in lagging().items()),
        )
    except WaitTimeout as exc:
        detail = f" (expected sha256 {expected[:12]}…)" if expected else ""
        raise AssertionError(f"{exc}{detail}") from None
    if final_and_wrong:
        assert content is not None
        node = final_and_wrong[0]
        held = adapter.client(env.node(node)).content(name)
        raise AssertionError(
            f"{node} holds the latest version of {name!r}, and it is not the content "
            f"expected:\n{_difference(content, held)}"
        )


def _is_latest(
    env: EnvironmentAPI, adapter: SyncpeerAdapter, name: str, state: dict[str, Any]
) -> bool:
    """True when the node's version of the file is its author's own latest: final."""
    author = adapter.names_by_fingerprint().get(str(state.get("author")))
    if author is None:
        return False
    own = _file_state(adapter.client(env.node(author)), name)
    return own is not None and own.get("version") == state.get("version")


DIFF_LIMIT = 4096  # bytes of text below which a wrong content is shown as a diff


def _difference(expected: bytes, held: bytes) -> str:
    """A short unified diff for small text, else both sizes and hashes."""
    if max(len(expected), len(held)) <= DIFF_LIMIT:
        try:
            lines = difflib.unified_diff(
                expected.decode().splitlines(),
                held.decode().splitlines(),
                "expected",
                "held",
                lineterm="",
            )
            return "\n".join(list(lines)[:40])
        except UnicodeDecodeError:
            pass
    return (
        f"expected {len(expected)} bytes (sha256 {hashlib.sha256(expected).hexdigest()[:12]}…), "
        f"held {len(held)} bytes (sha256 {hashlib.sha256(held).hexdigest()[:12]}…)"
    )


def assert_friends(env: EnvironmentAPI, a: str, b: str, *, mutual: bool = True) -> None:
    """`a` lists `b` as a friend (and the reverse when mutual)."""
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    pairs = [(a, b), (b, a)] if mutual else [(a, b)]
    for x, y in pairs:
        fingerprint = adapter.client(env.node(y)).fingerprint
        friends = adapter.client(env.node(x)).friends()
        seen = [f.get("card", f).get("fingerprint", f.get("fingerprint")) for f in friends]
        if fingerprint not in seen:
            raise AssertionError(
                f"peer {x} does not list {y} ({fingerprint[:12]}…) as a friend; "
                f"{x}'s friends: {[s[:12] for s in seen] or 'none'}"
            )
