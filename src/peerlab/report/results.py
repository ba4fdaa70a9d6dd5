"""The results folder of a run: what CI keeps and what `peerlab report` reads.

peerlab-results/<run>/
  result.json        seed, outcome, verdicts, timings, versions, replay command,
                     the nodes, the network's faults and links at the end, the peer graph
  history.jsonl      peerlab's record (operations, faults, node events)
  timeline.jsonl     every node's log and the history merged in time order
  junit.xml          the run as a JUnit test case, for CI
  nodes/<name>/      node logs (and data dirs when a snapshot is kept)
  snapshot/          on failure: the adapter's view of each node and the faults
  report.html        on failure (or `peerlab report RUN --html`)
"""

from __future__ import annotations

import contextlib
import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerlab.errors import PeerlabError
from peerlab.history import Entry, operations
from peerlab.observe.timeline import read_timeline, write_timeline
from peerlab.report.junit import write_junit
from peerlab.report.runs import RESULT, versions

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

FORMAT = 1


def _history_file(env: EnvironmentAPI) -> list[Entry]:
    """The history as written to its file (what other processes recorded too), else memory."""
    path = env.history.path
    if path is None or not path.exists():
        return env.history.entries()
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError, TypeError):
            if line.strip():
                entries.append(Entry.from_json(json.loads(line)))
    return entries


def verdicts_of(entries: list[Entry]) -> list[dict[str, Any]]:
    """The verdicts recorded in a history (by checkers, scenarios and tests)."""
    found = []
    for entry in entries:
        if entry.type == "event" and entry.f == "verdict":
            verdict = dict(entry.data)
            verdict["wall"] = entry.wall
            found.append(verdict)
    return found


def operation_stats(entries: list[Entry]) -> dict[str, Any]:
    """Per operation name: how many ended ok / fail / info, and latency percentiles (ms)."""
    by_name: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(ValueError):
        for op in operations(entries):
            stats = by_name.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0, "_lat": []})
            stats[op.type] += 1
            if op.latency_ns is not None:
                stats["_lat"].append(op.latency_ns / 1e6)
    for stats in by_name.values():
        latencies = sorted(stats.pop("_lat"))
        if latencies:
            stats["latency_ms"] = {
                "p50": round(statistics.median(latencies), 3),
                "p95": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))], 3),
                "max": round(latencies[-1], 3),
            }
    return by_name


def collect_graph(env: EnvironmentAPI) -> dict[str, Any]:
    """The peers, and who is friends with whom when a system's adapter can tell (`graph()`,
    a list of [from, to] node names); otherwise the report reads friendships from the
    history's `friend_add` operations. Asking every node about every other node here would
    cost a number of calls that grows with the square of the network at every teardown."""
    nodes = [
        {"name": n.name, "state": n.state, "address": n.address, "role": n.role}
        for n in env.nodes.values()
    ]
    friends: list[list[str]] = []
    source = "history"
    for adapter in env.adapters.values():
        with contextlib.suppress(PeerlabError):
            edges = adapter.graph()
            if edges is not None:
                friends += [[str(a), str(b)] for a, b in edges]
                source = "adapter"
    return {"nodes": nodes, "friends": friends, "source": source}


def _net(env: EnvironmentAPI) -> dict[str, Any] | None:
    if not env.net.enabled:
        return None
    try:
        shown = env.net.show()
        links = env.net.links()
    except PeerlabError:
        return None
    return {
        "faults": shown.get("faults", []),
        "cut": shown.get("cut", []),
        "proxies": shown.get("proxies", []),
        "links": links.get("links", []),
        "unattributed": links.get("unattributed", []),
        "attribution": links.get("attribution", {}),
    }


def write_results(
    env: EnvironmentAPI,
    dest: Path,
    *,
    outcome: str | None = None,
    test: str | None = None,
    replay: str | None = None,
    failure: dict[str, Any] | None = None,
    timings: dict[str, Any] | None = None,
    copy_logs: bool = True,
    snapshot: bool = False,
    state: bool | None = None,
    html: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `dest` for a live (or just finished) Environment; returns its result.json.

    `outcome` defaults to "failed" when a recorded verdict is invalid, else "passed".
    `copy_logs` copies node logs; `snapshot` every node's data dir too; `state` (default:
    as `snapshot`) the adapter's view of each node and the faults, in snapshot/ (what a
    failing run needs); `html` renders report.html as well.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if copy_logs or snapshot:
        env.save_artifacts(dest, snapshot=snapshot)
    # A supervisor's work dir outlives its networks: keep only this network's part.
    floor = env.started_at - 1
    entries = [e for e in _history_file(env) if e.wall >= floor]
    with (dest / "history.jsonl").open("w", encoding="utf-8") as handle:
        for entry in entries:
            handle.write(json.dumps(entry.to_json(), default=str) + "\n")
    timeline = read_timeline(env.workdir)
    write_timeline((e for e in timeline if e.wall >= floor), dest / "timeline.jsonl")
    if snapshot if state is None else state:
        from peerlab import snapshot as snapshots

        with contextlib.suppress(PeerlabError):
            snapshots.save(env, dest / "snapshot", force=True, copy_data=False)
    verdicts = verdicts_of(entries)
    if outcome is None:
        outcome = "failed" if any(v.get("valid") == "invalid" for v in verdicts) else "passed"
    ended = env.clock.time()  # virtual time on the simulator, as every timestamp of the run
    result: dict[str, Any] = {
        "format": FORMAT,
        "run": dest.name,
        "test": test or env.name,
        "outcome": outcome,
        "seed": env.seed,
        "replay": replay or f"peerlab up --seed {env.seed}",
        "started": env.started_at,
        "ended": ended,
        "seconds": round(ended - env.started_at, 3),
        "timings": {**(timings or {}), "operations": operation_stats(entries)},
        "versions": versions(env),
        "verdicts": verdicts,
        "failure": failure,
        "nodes": [n.describe() for n in env.nodes.values()],
        "net": _net(env),
        "graph": collect_graph(env),
        "path": str(dest),
        **(extra or {}),
    }
    (dest / RESULT).write_text(json.dumps(result, indent=2, default=str))
    write_junit(result, dest / "junit.xml")
    if html:
        from peerlab.report.html import write_report

        write_report(dest)
    return result
