"""A results folder read back as what a report draws: lanes, operations, fault spans, evidence.

Everything here is a pure function of the folder's files, so a report can be made long
after the network is gone, on another machine, from CI artifacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerlab.history import Entry, Operation, operations
from peerlab.observe.events import TimelineEvent, describe_fault, fault_nodes
from peerlab.observe.render import node_index
from peerlab.observe.timeline import HISTORY, TIMELINE, load_timeline, read_timeline
from peerlab.report.runs import load_result

# Node events that take a node down, and those that bring it back.
_DOWN = {
    "node_killed": "killed",
    "node_stopped": "stopped",
    "node_exited": "exited",
    "node_paused": "paused",
}
_UP = {"node_started", "node_restarted", "node_resumed"}


@dataclass
class Span:
    """Something that lasted: a fault on the network, or a node being down."""

    name: str
    label: str
    start: float
    end: float | None  # None: still on when the run ended
    nodes: list[str] | None = None  # None: every node
    kind: str = "fault"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunData:
    path: Path
    result: dict[str, Any]
    entries: list[Entry]
    ops: list[Operation]
    timeline: list[TimelineEvent]
    lanes: list[str]
    start: float
    end: float
    faults: list[Span]
    downtime: list[Span]
    evidence: dict[int, list[str]]  # invocation index -> the verdicts that cite it
    evidence_nodes: set[str]

    @property
    def failed(self) -> bool:
        return self.result.get("outcome") == "failed"

    @property
    def verdicts(self) -> list[dict[str, Any]]:
        return list(self.result.get("verdicts") or [])

    @property
    def failure(self) -> dict[str, Any] | None:
        failure = self.result.get("failure")
        return failure if isinstance(failure, dict) else None

    def graph(self) -> dict[str, Any]:
        """Peers and friendships: the adapter's view at the end, else the history's."""
        graph = self.result.get("graph")
        if isinstance(graph, dict) and graph.get("friends"):
            return graph
        return {
            "nodes": [
                {"name": n.get("name"), "state": n.get("state"), "address": n.get("address")}
                for n in self.result.get("nodes", [])
            ],
            "friends": friends_from_history(self.entries, self.result.get("nodes", [])),
            "source": "history",
        }


def friends_from_history(entries: list[Entry], nodes: list[dict[str, Any]]) -> list[list[str]]:
    """Friendships from successful `friend_add` operations whose address names a node."""
    by_address = {str(n.get("address")): str(n.get("name")) for n in nodes}
    edges = []
    for op in operations(entries) if entries else []:
        if op.f != "friend_add" or op.type != "ok" or not isinstance(op.invoke.value, dict):
            continue
        host = str(op.invoke.value.get("address", "")).rsplit(":", 1)[0]
        if op.node and host in by_address:
            edges.append([op.node, by_address[host]])
    return edges


def _load_entries(path: Path) -> list[Entry]:
    entries = []
    history = path / HISTORY
    if history.exists():
        for line in history.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    entries.append(Entry.from_json(json.loads(line)))
                except (json.JSONDecodeError, TypeError):
                    continue
    return entries


def _fault_spans(entries: list[Entry]) -> list[Span]:
    spans: list[Span] = []
    open_spans: dict[str, Span] = {}
    for entry in entries:
        if entry.type != "fault" or not isinstance(entry.value, dict):
            continue
        name = str(entry.value.get("name") or describe_fault(entry.value))
        current = open_spans.pop(name, None)
        if current is not None:
            current.end = entry.wall
        if entry.f == "apply":
            span = Span(
                name,
                describe_fault(entry.value),
                entry.wall,
                None,
                fault_nodes(entry.value),
                "partition" if entry.value.get("kind") in ("partition", "rolling") else "link",
                dict(entry.value),
            )
            spans.append(span)
            open_spans[name] = span
    return spans


def _downtime(entries: list[Entry]) -> list[Span]:
    spans: list[Span] = []
    down: dict[str, Span] = {}
    for entry in entries:
        if entry.type != "event" or entry.node is None:
            continue
        if entry.f in _DOWN and entry.node not in down:
            span = Span(entry.node, _DOWN[entry.f], entry.wall, None, [entry.node], "down")
            down[entry.node] = span
            spans.append(span)
        elif entry.f in _UP and entry.node in down:
            down.pop(entry.node).end = entry.wall
    return spans


def _evidence(verdicts: list[dict[str, Any]]) -> tuple[dict[int, list[str]], set[str]]:
    """Operations (by invocation index) and nodes that invalid verdicts cite.

    A node counts when the evidence names it outright ("missing": ["B"]); the nodes of
    cited operations are shown by the operations themselves.
    """
    cited: dict[int, list[str]] = {}
    nodes: set[str] = set()

    def walk(value: Any, checker: str) -> None:
        if isinstance(value, str):
            nodes.add(value)  # kept only if it names a lane (see load_run)
        elif isinstance(value, dict):
            if "f" in value and isinstance(value.get("index"), int):
                cited.setdefault(value["index"], [])
                if checker not in cited[value["index"]]:
                    cited[value["index"]].append(checker)
                return
            for item in value.values():
                walk(item, checker)
        elif isinstance(value, list):
            for item in value:
                walk(item, checker)

    for verdict in verdicts:
        if verdict.get("valid") == "invalid":
            walk(verdict.get("evidence"), str(verdict.get("checker")))
    return cited, nodes


def load_run(path: Path) -> RunData:
    result = load_result(path)
    entries = _load_entries(path)
    # timeline.jsonl holds only this run's part of a reused work dir: prefer it.
    timeline = load_timeline(path / TIMELINE) if (path / TIMELINE).exists() else read_timeline(path)
    try:
        ops = operations(entries)
    except ValueError:
        ops = []
    walls = [e.wall for e in entries if e.wall] + [e.wall for e in timeline]
    start = float(result.get("started") or min(walls, default=0.0))
    if walls:
        start = min(start, min(walls))
    end = (
        max([float(result.get("ended") or start), *walls])
        if walls
        else float(result.get("ended") or start + 1)
    )
    end = max(end, start + 0.001)
    lanes = [str(n["name"]) for n in result.get("nodes", []) if n.get("name")]
    seen = {e.node for e in timeline if e.node} | {op.node for op in ops if op.node}
    lanes += sorted((n for n in seen if n not in lanes), key=node_index)
    evidence, mentioned = _evidence(result.get("verdicts") or [])
    evidence_nodes = mentioned & set(lanes)
    return RunData(
        path,
        result,
        entries,
        ops,
        timeline,
        lanes,
        start,
        end,
        _fault_spans(entries),
        _downtime(entries),
        evidence,
        evidence_nodes,
    )
