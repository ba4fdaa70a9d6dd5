"""Evidence from a syncpeer run, and the checkers over it: what each peer holds, who fetched
which version from whom, and the verdicts a chaos scenario asserts.

    verdicts = check_sync(env)          # convergence, durable writes, no sync loops
    assert all(v.ok for v in verdicts), explain(verdicts)

Everything is read over the admin API and from the nodes' JSON logs; nothing here imports
syncpeer. Three views of the peers' state:

* `held_states`: each live peer's current version of every name (envelope SHA-256, version,
  deleted): what convergence compares.
* `durable_states`: every version each peer keeps (current and history), by content: what
  "no acknowledged write was lost" means for syncpeer, which keeps the losers of its version
  rule instead of dropping them. The history's publishes and deletes are re-keyed the same
  way (`durable_history`), so `no_lost_writes` asks whether each acknowledged write's content
  is still held somewhere under its name.
* `transfers`: every completed download (`file_download_completed` in a peer's log), named
  by peer, keyed by the envelope (one signed version) or by its content.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from peerlab.checkers import convergence, no_lost_writes, no_sync_loops
from peerlab.checkers.verdict import Verdict
from peerlab.errors import PeerlabError
from peerlab.history import Entry
from peerlab.systems.syncpeer import SyncpeerAdapter

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

DELETED = "deleted"  # the content of a tombstone, in durable views


def _adapter(env: EnvironmentAPI) -> SyncpeerAdapter:
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    return adapter


def _live(env: EnvironmentAPI, nodes: Iterable[str] | None) -> list[str]:
    names = list(nodes) if nodes is not None else list(env.nodes)
    return [name for name in names if env.node(name).state == "running"]


def held_states(
    env: EnvironmentAPI, nodes: Iterable[str] | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """`{peer: {name: {"sha256", "version", "deleted"}}}` of the current versions."""
    states = {}
    for name in _live(env, nodes):
        files = env.client(name).files()
        states[name] = {
            f["name"]: {
                "sha256": f["sha256"],
                "version": f["version"],
                "deleted": bool(f.get("deleted")),
            }
            for f in files
        }
    return states


def content_of(file: dict[str, Any]) -> str | None:
    """What a version holds, as the history names it: the plaintext SHA-256, or "deleted"."""
    if file.get("deleted"):
        return DELETED
    content = file.get("sha256_plain")
    return str(content) if content else None


def durable_states(
    env: EnvironmentAPI, nodes: Iterable[str] | None = None
) -> dict[str, dict[str, str]]:
    """`{peer: {"name#content": content}}` for every version each live peer keeps."""
    states: dict[str, dict[str, str]] = {}
    for name in _live(env, nodes):
        client = env.client(name)
        kept: dict[str, str] = {}
        for current in client.files():
            versions = [current]
            with contextlib.suppress(PeerlabError):  # changed under us: the current counts
                versions += client.versions(current["name"])
            for version in versions:
                content = content_of(version)
                if content is not None:
                    kept[f"{current['name']}#{content}"] = content
        states[name] = kept
    return states


def durable_history(entries: Iterable[Entry]) -> list[Entry]:
    """The history's publishes and deletes as writes keyed "name#content", other entries
    left out; completions keep their link to their invocation."""
    out = []
    for entry in entries:
        if entry.f not in ("publish", "delete") or not isinstance(entry.value, dict):
            continue
        name = entry.value.get("name")
        content = DELETED if entry.f == "delete" else entry.value.get("sha256")
        value = {"key": f"{name}#{content}", "value": content}
        out.append(
            Entry(
                entry.type,
                "write",
                entry.index,
                entry.time,
                entry.wall,
                entry.process,
                entry.node,
                value,
                entry.error,
                dict(entry.data),
            )
        )
    return out


def log_events(env: EnvironmentAPI, node: str, event: str) -> list[dict[str, Any]]:
    """Every `event` line in the node's log (all of its runs: the log file is appended to)."""
    return _log_records(env, node, (event,))


def _log_records(env: EnvironmentAPI, node: str, events: tuple[str, ...]) -> list[dict[str, Any]]:
    """The node's log lines of any of `events`, in the order it wrote them."""
    path = env.node(node).stdout_path
    if not path.exists():
        return []
    found = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not any(f'"{event}"' in line for event in events):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") in events:
                found.append(record)
    return found


def downloads(env: EnvironmentAPI, node: str) -> list[dict[str, Any]]:
    """The node's completed downloads as an honest node made them: less those that fetched
    again what a crash took, and less those of its lives as a liar.

    A life of the node that ended without `node_stopped` was killed: a crash keeps only
    what the node had made durable (syncpeer syncs what it publishes, not what it
    receives), so the next download of an envelope it had received in that life is
    recovery, not a loop. (On real processes a kill loses nothing and nothing is fetched
    again; on the simulator a kill is a crash of the node's machine.) A life that began in
    a byzantine mode is the adversary's; and the second envelope an equivocating node
    signed and showed others was never in its store: fetching it later is no loop.
    """
    lines = (
        "node_started",
        "node_stopped",
        "byzantine_mode",
        "byzantine_equivocated",
        "file_download_completed",
    )
    forged: set[str] = set()
    lost: set[str] = set()
    this_life: set[str] = set()
    stopped, lying, lies_next = True, False, False  # a node says it lies as it starts
    out = []
    for record in _log_records(env, node, lines):
        if record["event"] == "node_started":
            if not stopped:
                lost |= this_life
            this_life, stopped, lying, lies_next = set(), False, lies_next, False
        elif record["event"] == "node_stopped":
            stopped = True
        elif record["event"] == "byzantine_mode":
            lies_next = True
        elif record["event"] == "byzantine_equivocated":
            forged.add(str(record.get("other")))
        elif lying or record.get("sha256") in forged:
            continue
        else:
            envelope = str(record.get("sha256"))
            this_life.add(envelope)
            if envelope in lost:
                lost.discard(envelope)
                continue
            out.append(record)
    return out


def transfers(
    env: EnvironmentAPI,
    nodes: Iterable[str] | None = None,
    *,
    by: Literal["envelope", "content"] = "envelope",
) -> list[dict[str, Any]]:
    """Completed downloads as `no_sync_loops` reads them: `{node, source, name, version,
    time, origin}`, where `version` is the envelope's SHA-256 (one signed version) or, with
    `by="content"`, the content's (the same bytes travelling back are a loop even when
    someone re-signed them).

    The origin is named, not left to the log times, which come from each peer's own clock
    (skewed, perhaps): an envelope starts at its author; content at the peer whose publish
    of it the history records first (the history is in real-time order).
    """
    peers = _adapter(env).names_by_fingerprint()
    first_publisher: dict[tuple[str, str], str] = {}
    for entry in env.history.entries():
        if entry.type == "invoke" and entry.f == "publish" and isinstance(entry.value, dict):
            published = (str(entry.value.get("name")), str(entry.value.get("sha256")))
            first_publisher.setdefault(published, str(entry.node))
    out = []
    for node in list(nodes) if nodes is not None else list(env.nodes):
        for record in downloads(env, node):
            author = peers.get(str(record.get("author")))
            if by == "envelope" or record.get("deleted"):  # tombstones have no content
                key, origin = record.get("sha256"), author
            else:
                key = record.get("content_sha256")
                origin = first_publisher.get((str(record.get("name")), str(key)), author)
            if key is None:  # a log from before these fields existed
                key = f"{record.get('version')}@{record.get('author')}"
            out.append(
                {
                    "node": node,
                    "source": peers.get(str(record.get("source")), str(record.get("source"))),
                    "name": record.get("name"),
                    "version": str(key),
                    "time": record.get("ts"),
                    "origin": origin,
                }
            )
    return out


def friend_graph(env: EnvironmentAPI, nodes: Iterable[str] | None = None) -> dict[str, list[str]]:
    """`{peer: [friend peers]}` of the live peers."""
    peers = _adapter(env).names_by_fingerprint()
    return {
        name: sorted(
            peers.get(f["fingerprint"], f["fingerprint"]) for f in env.client(name).friends()
        )
        for name in _live(env, nodes)
    }


def wait_converged(
    env: EnvironmentAPI, nodes: Sequence[str] | None = None, timeout: float = 60.0
) -> Verdict:
    """Poll until the live peers hold the same current versions, at most `timeout` seconds;
    the convergence verdict, with when it happened and how long it took in `stats`."""
    clock = env.clock
    began = clock.monotonic()
    deadline = began + timeout
    snapshots: list[tuple[float, Any]] = []
    while True:
        now = clock.monotonic()
        try:
            states = held_states(env, nodes)
        except PeerlabError:
            states = None  # a peer was briefly unreachable; ask again
        if states is not None:
            snapshots.append((now - began, states))
            verdict = convergence(states)
            if verdict.ok or now > deadline:
                return Verdict(
                    verdict.checker,
                    verdict.valid,
                    verdict.summary,
                    verdict.evidence,
                    {**verdict.stats, "waited_s": round(now - began, 3), "polls": len(snapshots)},
                )
        elif now > deadline:
            return Verdict(
                "convergence", "unknown", f"Could not read every peer's files within {timeout:g}s."
            )
        clock.sleep(0.25)


def check_sync(
    env: EnvironmentAPI,
    nodes: Sequence[str] | None = None,
    *,
    timeout: float = 60.0,
    loops_by: Literal["envelope", "content"] = "envelope",
    record: bool = True,
) -> list[Verdict]:
    """Convergence (waiting up to `timeout`), no acknowledged write lost, no sync loops, over
    the live peers among `nodes`; each verdict is also recorded in the history."""
    converged = wait_converged(env, nodes, timeout)
    durable = no_lost_writes(
        durable_history(env.history.entries()), durable_states(env, nodes), fs=("write",)
    )
    loops = no_sync_loops(transfers(env, nodes, by=loops_by), friend_graph(env, nodes))
    verdicts = [converged, durable, loops]
    if record:
        for verdict in verdicts:
            env.record_verdict(verdict)
    return verdicts


def explain(verdicts: Iterable[Verdict]) -> str:
    """The failed verdicts, with their evidence, for an assertion message."""
    lines = []
    for verdict in verdicts:
        if verdict.ok:
            continue
        evidence = json.dumps(verdict.evidence, default=str)
        lines.append(
            f"{verdict.checker}: {verdict.valid}: {verdict.summary}\n  evidence: {evidence[:3000]}"
        )
    return "\n".join(lines) or "all verdicts valid"
