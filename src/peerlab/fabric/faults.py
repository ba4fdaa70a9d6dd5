"""Network faults as values: what breaks on which link; JSON for the history and the nemesis.

    LinkFault(Latency(latency=500), "A", "B")   data from A to B is late, whoever connected
    ToxicFault(ToxicSpec(...), "A", "B")        a Toxiproxy toxic on A's connections to B
    Partition([["A", "B"], ["C"]])              A and B are cut off from C
    RollingPartition(period=5)                  one node after another is cut off

Partition shapes: `split`, `islands`, `bridge`, `one_way`, `transient`, `rolling`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from peerlab.errors import UsageError
from peerlab.fabric.links import LinkToxic
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.toxics import Toxic


def _end(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise UsageError(f"{what} is {value!r}", field=what, hint="a node name, or null for any node")


@dataclass
class LinkFault:
    """A toxic on the data flowing from `src` to `dst` (None: any node), whoever connected.

    Data from src to dst rides the upstream of the connections src opened to dst and the
    downstream of those dst opened to src: the fault is a toxic on both. Applying a fault
    with the name of one already applied replaces it (names default to `type:src->dst`).
    """

    kind: ClassVar[str] = "link"
    toxic: Toxic
    src: str | None = None
    dst: str | None = None
    toxicity: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        self.src, self.dst = _end(self.src, "src"), _end(self.dst, "dst")
        if not self.name:
            self.name = f"{self.toxic.type}:{self.src or '*'}->{self.dst or '*'}"

    def mentions(self) -> list[str]:
        return [n for n in (self.src, self.dst) if n is not None]

    def entries(self) -> list[LinkToxic]:
        return [
            LinkToxic(
                ToxicSpec(self.toxic, f"{self.name}/up", "upstream", self.toxicity),
                self.src,
                self.dst,
            ),
            LinkToxic(
                ToxicSpec(self.toxic, f"{self.name}/down", "downstream", self.toxicity),
                self.dst,
                self.src,
            ),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "src": self.src,
            "dst": self.dst,
            "type": self.toxic.type,
            "attributes": self.toxic.attributes(),
            "toxicity": self.toxicity,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LinkFault:
        spec = ToxicSpec.from_dict(
            {
                "type": raw.get("type"),
                "attributes": raw.get("attributes"),
                "toxicity": raw.get("toxicity", 1.0),
            }
        )
        return cls(spec.toxic, raw.get("src"), raw.get("dst"), spec.toxicity, raw.get("name") or "")


@dataclass
class ToxicFault:
    """A Toxiproxy toxic on the connections opened from `src` to `dst` (None: any)."""

    kind: ClassVar[str] = "toxic"
    spec: ToxicSpec
    src: str | None = None
    dst: str | None = None

    def __post_init__(self) -> None:
        self.src, self.dst = _end(self.src, "src"), _end(self.dst, "dst")

    @property
    def name(self) -> str:
        return self.spec.name

    def mentions(self) -> list[str]:
        return [n for n in (self.src, self.dst) if n is not None]

    def entries(self) -> list[LinkToxic]:
        return [LinkToxic(self.spec, self.src, self.dst)]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "src": self.src, "dst": self.dst, **self.spec.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ToxicFault:
        return cls(ToxicSpec.from_dict(raw), raw.get("src"), raw.get("dst"))


def _groups(groups: Any) -> list[list[str]]:
    if not isinstance(groups, list) or not all(
        isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups
    ):
        raise UsageError(
            f"partition groups are {groups!r}",
            field="groups",
            hint='a list of lists of node names, e.g. [["A", "B"], ["C"]]',
        )
    seen: list[set[str]] = []
    for number, group in enumerate(groups, 1):
        twice = sorted({node for node in group if group.count(node) > 1})
        if twice or (group and set(group) in seen):
            problem = (
                f"names {', '.join(twice)} twice"
                if twice
                else f"is the same as group {seen.index(set(group)) + 1}"
            )
            raise UsageError(
                f"partition group {number} ({','.join(group)}) {problem}",
                field="groups",
                hint="give each group once, with different nodes: `net partition A,B C`",
            )
        seen.append(set(group))
    return [list(g) for g in groups]


@dataclass
class Partition:
    """Nodes reach each other only within a group; a node in no group reaches no one.

    With `one_way` there are exactly two groups: the first cannot reach the second, the
    second still reaches the first (nodes in neither are not cut). With `duration`
    (seconds) it heals by itself. TCP is cut per connection: see docs/faults.md.
    """

    kind: ClassVar[str] = "partition"
    name: ClassVar[str] = "partition"  # one partition at a time: a new one replaces it
    groups: list[list[str]]
    one_way: bool = False
    duration: float | None = None
    _member: dict[str, set[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.groups = _groups(self.groups)
        # Which groups each node is in: every new connection asks `blocks`.
        self._member = {}
        for index, group in enumerate(self.groups):
            for node in group:
                self._member.setdefault(node, set()).add(index)
        if self.one_way and (len(self.groups) != 2 or not all(self.groups)):
            raise UsageError(
                f"a one-way partition has {len(self.groups)} groups",
                field="groups",
                hint="give exactly two groups: from, to",
            )
        if self.duration is not None and not (
            isinstance(self.duration, int | float)
            and math.isfinite(self.duration)
            and self.duration > 0
        ):
            raise UsageError(
                f"partition duration is {self.duration!r}",
                field="duration",
                hint="a number of seconds above 0, or none to last until healed",
            )

    def blocks(self, src: str, dst: str) -> bool:
        of_src, of_dst = self._member.get(src, set()), self._member.get(dst, set())
        if self.one_way:
            return 0 in of_src and 1 in of_dst
        return of_src.isdisjoint(of_dst)

    def mentions(self) -> list[str]:
        return sorted({n for group in self.groups for n in group})

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "groups": self.groups,
            "one_way": self.one_way,
            "duration": self.duration,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Partition:
        return cls(raw.get("groups", []), bool(raw.get("one_way")), raw.get("duration"))


MIN_ROLLING_PERIOD = 0.05
"""The shortest step of a rolling partition, in seconds. Each step is a partition applied,
recorded and sampled for the fidelity check: a step of microseconds would be hundreds of
thousands of them a minute, filling the history and starving everything else."""


@dataclass
class RollingPartition:
    """Cuts off one node after another, each for `period` seconds, in a seeded order."""

    kind: ClassVar[str] = "rolling"
    name: ClassVar[str] = "partition"
    period: float
    nodes: list[str] = field(default_factory=list)  # empty: every node when it starts

    def __post_init__(self) -> None:
        if (
            isinstance(self.period, bool)
            or not isinstance(self.period, int | float)
            or not math.isfinite(self.period)
            or self.period < MIN_ROLLING_PERIOD
        ):
            raise UsageError(
                f"rolling partition period is {self.period!r}",
                field="period",
                hint=f"a number of seconds of at least {MIN_ROLLING_PERIOD}",
            )
        self.nodes = _groups([self.nodes])[0]

    def mentions(self) -> list[str]:
        return list(self.nodes)

    def step(self, isolated: str, everyone: list[str]) -> Partition:
        return Partition([[isolated], [n for n in everyone if n != isolated]])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "period": self.period, "nodes": self.nodes}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RollingPartition:
        return cls(raw.get("period", 0), raw.get("nodes") or [])


Fault = LinkFault | ToxicFault | Partition | RollingPartition
KINDS: dict[str, type[Fault]] = {
    cls.kind: cls for cls in (LinkFault, ToxicFault, Partition, RollingPartition)
}


def fault_from_dict(raw: Any) -> Fault:
    """A fault from its `to_dict()` form."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in KINDS:
        raise UsageError(
            f"a fault has kind {kind!r}", field="kind", hint=f"one of {', '.join(KINDS)}"
        )
    return KINDS[kind].from_dict(raw)


# ------------------------------------------------------------------ partition shapes


def split(*groups: Iterable[str]) -> Partition:
    """Two (or more) sides that cannot reach each other: `split(["A", "B"], ["C", "D"])`."""
    return Partition([list(g) for g in groups])


def islands(nodes: Iterable[str]) -> Partition:
    """Every node alone."""
    return Partition([[n] for n in nodes])


def bridge(left: Iterable[str], node: str, right: Iterable[str]) -> Partition:
    """`node` reaches both sides; the two sides do not reach each other."""
    return Partition([[*left, node], [node, *right]])


def one_way(sources: Iterable[str], targets: Iterable[str]) -> Partition:
    """`sources` cannot reach `targets`; `targets` still reach `sources`."""
    return Partition([list(sources), list(targets)], one_way=True)


def transient(partition: Partition, seconds: float) -> Partition:
    """`partition`, healing by itself after `seconds`."""
    return Partition(partition.groups, partition.one_way, seconds)


def rolling(period: float, nodes: Iterable[str] = ()) -> RollingPartition:
    """Cut off one node after another (all nodes if none given), each for `period` seconds."""
    return RollingPartition(period, list(nodes))
