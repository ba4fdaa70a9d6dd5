"""Seeded fault schedules: which fault starts when, and for how long, fully decided by a seed.

    schedule = Schedule.generate(seed, ["A", "B", "C", "D", "E"], duration=30,
                                 kinds=("partition", "kill", "latency", "skew"))
    schedule.fingerprint()        # the same seed and arguments give the same fingerprint

Kinds name faults (`kill`, `pause`, `restart`, `skew`, `byzantine`), partition shapes
(`split`, `islands`, `bridge`, `one-way`, `transient`, `rolling`) and link toxics (`latency`,
`loss`, `bandwidth`, `slicer`, `reorder`, `duplicate`); `partition`, `toxic` and `all` stand
for their groups. Every draw comes from `derive_rng(seed, "nemesis", "schedule")` in a fixed
order, with nodes sorted, so a schedule is a pure function of its arguments; JSON round-trips.

The generator keeps faults from tripping over each other: one partition at a time, one fault
per node process (kill, pause, restart, byzantine) and per node clock at a time, one toxic per
link and type at a time, and at most `max_impaired` nodes killed, paused or lying at once
(by default a minority, so the rest can keep working).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from peerlab.errors import UsageError
from peerlab.fabric import faults as shapes
from peerlab.fabric.faults import LinkFault
from peerlab.fabric.toxics import Bandwidth, Duplicate, Latency, Loss, Reorder, Slicer, Toxic
from peerlab.nemesis.faults import (
    Byzantine,
    ClockSkew,
    Kill,
    NemesisFault,
    Network,
    Pause,
    Restart,
    fault_from_dict,
)
from peerlab.observe.events import describe_fault
from peerlab.seed import derive_rng

PROCESS_KINDS = ("kill", "pause", "restart")
PARTITION_KINDS = ("split", "islands", "bridge", "one-way", "transient", "rolling")
TOXIC_KINDS = ("latency", "loss", "bandwidth", "slicer", "reorder", "duplicate")
OTHER_KINDS = ("skew", "byzantine")
ALL_KINDS = PROCESS_KINDS + PARTITION_KINDS + TOXIC_KINDS + OTHER_KINDS
GROUPS = {"partition": PARTITION_KINDS, "toxic": TOXIC_KINDS, "all": ALL_KINDS}
DEFAULT_KINDS = ("kill", "pause", "restart", "partition", "latency", "loss", "skew")
RESTART_SECONDS = 2.0  # how long a restart keeps its node busy for the generator


def expand_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """Concrete kinds, groups expanded, in a stable order; UsageError on an unknown one."""
    out: list[str] = []
    for kind in kinds:
        kind = kind.strip()
        if not kind:
            continue
        members = GROUPS.get(kind, (kind,))
        for member in members:
            if member not in ALL_KINDS:
                raise UsageError(
                    f"unknown fault kind {kind!r}",
                    field="kinds",
                    hint=f"kinds: {', '.join(ALL_KINDS)}; groups: {', '.join(GROUPS)}",
                )
            if member not in out:
                out.append(member)
    if not out:
        raise UsageError("no fault kinds given", field="kinds", hint="e.g. partition,kill,latency")
    return tuple(out)


@dataclass(frozen=True)
class Step:
    """`fault` starts `at` seconds into the run and is removed `duration` seconds later
    (None: an instant fault, such as a restart)."""

    at: float
    duration: float | None
    fault: NemesisFault

    @property
    def end(self) -> float:
        return self.at + (self.duration or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "duration": self.duration, "fault": self.fault.to_dict()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Step:
        return cls(float(raw["at"]), raw.get("duration"), fault_from_dict(raw["fault"]))

    def describe(self) -> str:
        fault = self.fault.to_dict()
        kind = str(fault.pop("kind"))
        if kind == "network":
            detail = describe_fault(fault["fault"])
            kind = "partition" if fault["fault"].get("kind") in ("partition", "rolling") else "link"
        else:
            detail = " ".join(f"{k}={v}" for k, v in fault.items())
        length = "instant" if self.duration is None else f"for {self.duration:.1f}s"
        return f"{self.at:6.1f}s  {kind:<10} {detail}  ({length})"


@dataclass(frozen=True)
class Schedule:
    """Timed faults for `nodes` over `duration` seconds, drawn from `seed`."""

    seed: int
    nodes: tuple[str, ...]
    duration: float
    kinds: tuple[str, ...]
    steps: tuple[Step, ...]

    @classmethod
    def generate(
        cls,
        seed: int,
        nodes: Sequence[str],
        duration: float,
        kinds: Iterable[str] = DEFAULT_KINDS,
        *,
        mean_gap: float = 1.5,
        fault_seconds: tuple[float, float] = (1.0, 6.0),
        max_impaired: int | None = None,
        max_skew: float = 3600.0,
        byzantine_modes: Sequence[str] = (),
    ) -> Schedule:
        """A schedule that starts a fault every `mean_gap` seconds on average, each lasting
        between `fault_seconds`, skipping draws that would break the rules above.
        `byzantine_modes` are the system's lying modes (its adapter's `byzantine.modes`);
        without them, no byzantine fault is drawn."""
        names = tuple(sorted(nodes))
        if not names:
            raise UsageError("a schedule needs nodes", field="nodes", hint="start peers first")
        if duration <= 0 or mean_gap <= 0:
            raise UsageError(
                f"duration {duration}s, mean gap {mean_gap}s",
                field="duration",
                hint="both must be above 0",
            )
        concrete = expand_kinds(kinds)
        limit = max_impaired if max_impaired is not None else max(1, (len(names) - 1) // 2)
        rng = derive_rng(seed, "nemesis", "schedule")
        draw = _Drawer(rng, names, max_skew, tuple(byzantine_modes))
        busy: dict[str, float] = {}  # resource -> when it is free again
        impaired: list[Step] = []
        steps: list[Step] = []
        now = rng.uniform(0, mean_gap)
        while now < duration:
            kind = rng.choice(concrete)
            length = round(min(rng.uniform(*fault_seconds), duration - now), 3)
            drawn = draw.fault(kind, length)
            if drawn is not None:
                fault, resource = drawn
                step = Step(round(now, 3), None if kind == "restart" else length, fault)
                held_until = now + (RESTART_SECONDS if kind == "restart" else length)
                live_impaired = [s for s in impaired if s.end > now]
                counts = kind in ("kill", "pause", "byzantine")
                if busy.get(resource, 0.0) <= now and not (counts and len(live_impaired) >= limit):
                    busy[resource] = held_until
                    steps.append(step)
                    if counts:
                        impaired.append(step)
            now += rng.uniform(0.2, 2 * mean_gap - 0.2) if mean_gap > 0.2 else mean_gap
        return cls(seed, names, float(duration), concrete, tuple(steps))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "nodes": list(self.nodes),
            "duration": self.duration,
            "kinds": list(self.kinds),
            "fingerprint": self.fingerprint(),
            "steps": [step.to_dict() for step in self.steps],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Schedule:
        return cls(
            int(raw["seed"]),
            tuple(raw["nodes"]),
            float(raw["duration"]),
            tuple(raw["kinds"]),
            tuple(Step.from_dict(step) for step in raw["steps"]),
        )

    def fingerprint(self) -> str:
        """A short hash of the steps: two runs applied the same schedule iff these match."""
        steps = _by_value([step.to_dict() for step in self.steps])
        text = json.dumps(steps, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> list[str]:
        head = (
            f"nemesis schedule {self.fingerprint()} (seed {self.seed}, {len(self.steps)} faults "
            f"over {self.duration:g}s on {', '.join(self.nodes)})"
        )
        return [head, *(step.describe() for step in self.steps)]


def _by_value(data: Any) -> Any:
    """JSON data with whole floats as ints: equal schedules compare 5 and 5.0 as one number
    (a schedule written by hand says 5), so their fingerprints must too."""
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, dict):
        return {key: _by_value(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_by_value(item) for item in data]
    return data


class _Drawer:
    """Draws one fault of a kind; returns it with the resource it occupies, or None when the
    kind cannot apply to these nodes (a bridge needs three)."""

    def __init__(
        self, rng: Random, nodes: tuple[str, ...], max_skew: float, modes: tuple[str, ...]
    ) -> None:
        self.rng, self.nodes, self.max_skew, self.modes = rng, nodes, max_skew, modes

    def fault(self, kind: str, length: float) -> tuple[NemesisFault, str] | None:
        rng, nodes = self.rng, self.nodes
        if kind in PROCESS_KINDS or kind == "byzantine":
            node = rng.choice(nodes)
            if kind == "byzantine":
                if not self.modes:
                    return None
                return Byzantine(node, rng.choice(self.modes)), f"node:{node}"
            process: NemesisFault = (
                Kill(node) if kind == "kill" else Pause(node) if kind == "pause" else Restart(node)
            )
            return process, f"node:{node}"
        if kind == "skew":
            node = rng.choice(nodes)
            seconds = round(rng.uniform(-self.max_skew, self.max_skew), 3)
            return ClockSkew(node, seconds), f"clock:{node}"
        if kind in PARTITION_KINDS:
            partition = self._partition(kind, length)
            return (Network(partition), "partition") if partition is not None else None
        toxic = self._toxic(kind)
        src = rng.choice(nodes)
        dst = rng.choice([None, *[n for n in nodes if n != src]])
        link = LinkFault(toxic, src, dst)
        return Network(link.to_dict()), f"link:{link.name}"

    def _sides(self, pool: list[str]) -> tuple[list[str], list[str]]:
        cut = self.rng.randint(1, len(pool) - 1)
        return sorted(pool[:cut]), sorted(pool[cut:])

    def _partition(self, kind: str, length: float) -> dict[str, Any] | None:
        pool = list(self.nodes)
        self.rng.shuffle(pool)
        if kind == "islands":
            return shapes.islands(sorted(pool)).to_dict()
        if kind == "rolling":
            period = round(self.rng.uniform(0.5, 2.0), 3)
            return shapes.rolling(period, sorted(pool)).to_dict()
        if len(pool) < 2 or (kind == "bridge" and len(pool) < 3):
            return None
        if kind == "bridge":
            middle = pool.pop()
            left, right = self._sides(pool)
            return shapes.bridge(left, middle, right).to_dict()
        left, right = self._sides(pool)
        if kind == "one-way":
            return shapes.one_way(left, right).to_dict()
        if kind == "transient":
            return shapes.transient(shapes.split(left, right), max(length, 0.1)).to_dict()
        return shapes.split(left, right).to_dict()

    def _toxic(self, kind: str) -> Toxic:
        rng = self.rng
        if kind == "latency":
            latency = round(rng.uniform(50, 800))
            return Latency(latency=latency, jitter=round(rng.uniform(0, latency / 2)))
        if kind == "loss":
            return Loss(percent=round(rng.uniform(1, 30), 1))
        if kind == "bandwidth":
            return Bandwidth(rate=round(rng.uniform(20, 500)))
        if kind == "slicer":
            size = rng.randint(16, 512)
            return Slicer(
                average_size=size, size_variation=size // 2, delay=round(rng.uniform(0, 10), 1)
            )
        if kind == "reorder":
            return Reorder(percent=round(rng.uniform(5, 50), 1), delay=round(rng.uniform(5, 50)))
        return Duplicate(percent=round(rng.uniform(5, 50), 1))
