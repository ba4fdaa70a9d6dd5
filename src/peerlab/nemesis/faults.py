"""The nemesis's faults as values: what breaks, on which node or link; JSON for the history.

    Kill("B")                        SIGKILL; removed = restarted with its data
    Pause("B")                       SIGSTOP; removed = SIGCONT
    Restart("B")                     a clean stop and start (instant: nothing to remove)
    Network({"kind": "partition", ...})   any fabric fault (partition shapes, link toxics)
    ClockSkew("B", 3600)             B's wall clock an hour ahead; removed = back to 0
    Byzantine("B", "corrupt")        B lies to its peers; removed = honest again

Each has `apply(target)` and `remove(target)`, where the target is the live network (an
Environment, or the CLI's typed handle on a supervisor's network: both are `ControlAPI`s
with a `net`), and `to_dict()` / `fault_from_dict` for the history and for schedules.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from peerlab.api import ControlTarget
from peerlab.errors import PeerlabError, UsageError

# What the nemesis acts on: an Environment, or the CLI's handle on a remote one.
NemesisTarget = ControlTarget


@dataclass(frozen=True)
class Kill:
    """SIGKILL the node; removing the fault restarts it with its data."""

    kind: ClassVar[str] = "kill"
    node: str

    def apply(self, target: NemesisTarget) -> None:
        target.kill(self.node)

    def remove(self, target: NemesisTarget) -> None:
        target.restart(self.node)

    def nodes(self) -> tuple[str, ...]:
        return (self.node,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node}


@dataclass(frozen=True)
class Pause:
    """SIGSTOP the node (its sockets stay open, it answers nothing); removing it resumes."""

    kind: ClassVar[str] = "pause"
    node: str

    def apply(self, target: NemesisTarget) -> None:
        target.pause(self.node)

    def remove(self, target: NemesisTarget) -> None:
        target.resume(self.node)

    def nodes(self) -> tuple[str, ...]:
        return (self.node,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node}


@dataclass(frozen=True)
class Restart:
    """Stop the node cleanly and start it again, data kept; there is nothing to remove."""

    kind: ClassVar[str] = "restart"
    node: str

    def apply(self, target: NemesisTarget) -> None:
        target.restart(self.node)

    def remove(self, target: NemesisTarget) -> None:
        return None

    def nodes(self) -> tuple[str, ...]:
        return (self.node,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node}


@dataclass(frozen=True)
class Network:
    """A fabric fault in its JSON form (`peerlab.fabric.faults`): a partition of any shape,
    a rolling partition, or a toxic on a link."""

    kind: ClassVar[str] = "network"
    fault: dict[str, Any] = field(hash=False)

    def apply(self, target: NemesisTarget) -> None:
        target.net.apply(self.fault)

    def remove(self, target: NemesisTarget) -> None:
        name = self.fault.get("name") or "partition"
        # A transient partition heals by itself; a later one replaces an earlier one.
        with contextlib.suppress(PeerlabError):
            target.net.remove(str(name))

    def nodes(self) -> tuple[str, ...]:
        return ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "fault": self.fault}


MAX_SKEW = 100 * 365.25 * 86400
"""The largest clock offset, in seconds (100 years either way): far enough for any date a
system must survive (2038 included), near enough that every clock still reads a date."""


def skew_seconds(value: Any) -> float:
    """`value` as a clock offset in seconds; anything that is not one is a usage error."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or abs(value) > MAX_SKEW
    ):
        raise UsageError(
            f"clock skew is {value!r} seconds",
            field="seconds",
            hint=f"a finite number of seconds within +/-{MAX_SKEW:.0f} (100 years)",
        )
    return float(value)


@dataclass(frozen=True)
class ClockSkew:
    """Set the node's wall clock `seconds` ahead of real time (negative: behind)."""

    kind: ClassVar[str] = "clock_skew"
    node: str
    seconds: float

    def __post_init__(self) -> None:
        skew_seconds(self.seconds)

    def apply(self, target: NemesisTarget) -> None:
        target.skew(self.node, self.seconds)

    def remove(self, target: NemesisTarget) -> None:
        target.skew(self.node, 0.0)

    def nodes(self) -> tuple[str, ...]:
        return (self.node,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node, "seconds": self.seconds}


@dataclass(frozen=True)
class Byzantine:
    """Restart the node lying to its peers in `mode`, one of its system's modes (its
    adapter's `byzantine`; syncpeer's are in `syncpeer.io.byzantine`); removing it restarts
    the node honest."""

    kind: ClassVar[str] = "byzantine"
    node: str
    mode: str

    def apply(self, target: NemesisTarget) -> None:
        target.lie(self.node, self.mode)

    def remove(self, target: NemesisTarget) -> None:
        target.lie(self.node, None)

    def nodes(self) -> tuple[str, ...]:
        return (self.node,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "node": self.node, "mode": self.mode}


NemesisFault = Kill | Pause | Restart | Network | ClockSkew | Byzantine
KINDS: dict[str, type[NemesisFault]] = {
    cls.kind: cls for cls in (Kill, Pause, Restart, Network, ClockSkew, Byzantine)
}


def fault_from_dict(raw: Any) -> NemesisFault:
    """A fault from its `to_dict()` form; UsageError naming what is wrong."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind not in KINDS:
        raise UsageError(
            f"a nemesis fault has kind {kind!r}", field="kind", hint=f"one of {', '.join(KINDS)}"
        )
    fields = {key: value for key, value in raw.items() if key != "kind"}
    try:
        return KINDS[kind](**fields)
    except TypeError as exc:
        raise UsageError(f"bad {kind} fault {raw!r}: {exc}", field=kind) from None
