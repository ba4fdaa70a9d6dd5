"""A run's plan: which scenario, its seed and parameters, and the inputs it draws from the
seed (the nemesis's fault schedule and the workload's operations), made explicit.

A scenario given a plan without steps or operations draws them from its seed and says what
it drew (`Ran`); given them, it does exactly those. So a run is replayed from its plan, and
a failing plan can be made smaller, step by step, and run again (`peerlab.sim.shrink`).

    plan = Plan("chaos", seed=7, params={"peers": 5, "seconds": 8})
    ran = chaos(env, plan)          # ran.plan has the steps and operations it drew
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from peerlab.checkers.verdict import Verdict
from peerlab.errors import UsageError
from peerlab.history import Entry
from peerlab.nemesis.schedule import Step
from peerlab.workload.files import TimedOp

PLAN_EVENT = "plan"  # the history event in which a scenario leaves the plan it ran


@dataclass(frozen=True)
class Plan:
    scenario: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    steps: tuple[Step, ...] | None = None  # None: the scenario draws them from the seed
    ops: tuple[TimedOp, ...] | None = None  # None: the scenario draws them from the seed

    def drawn(self, steps: tuple[Step, ...], ops: tuple[TimedOp, ...]) -> Plan:
        """This plan with what the run drew made explicit."""
        return replace(self, steps=steps, ops=ops)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "params": self.params,
            "steps": None if self.steps is None else [step.to_dict() for step in self.steps],
            "ops": None if self.ops is None else [op.to_json() for op in self.ops],
        }

    @classmethod
    def from_json(cls, raw: Any) -> Plan:
        if not isinstance(raw, dict) or "scenario" not in raw or "seed" not in raw:
            raise UsageError(
                "a plan is a JSON object with scenario, seed, params, steps and ops",
                field="plan",
                hint="use a plan.json that `peerlab sim run` or `peerlab sim shrink` wrote",
            )
        steps = raw.get("steps")
        ops = raw.get("ops")
        return cls(
            str(raw["scenario"]),
            int(raw["seed"]),
            dict(raw.get("params") or {}),
            None if steps is None else tuple(Step.from_dict(step) for step in steps),
            None if ops is None else tuple(TimedOp.from_json(op) for op in ops),
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path

    @classmethod
    def last_in(cls, entries: list[Entry]) -> Plan | None:
        """The last plan a scenario left in a history (None: it ran none)."""
        for entry in reversed(entries):
            if entry.type == "event" and entry.f == PLAN_EVENT:
                return cls.from_json(entry.data)
        return None

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise UsageError(
                f"no plan at {path}", field="plan", hint="name a plan.json file"
            ) from None
        except ValueError as exc:
            raise UsageError(f"{path} is not JSON: {exc}", field="plan") from None
        return cls.from_json(raw)


@dataclass
class Ran:
    """What a scenario did: its verdicts, its plan with what it drew made explicit, and
    facts worth showing (counts of outcomes, the nemesis's report)."""

    plan: Plan
    verdicts: list[Verdict]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[str, ...]:
        """The checkers whose verdict is not valid, sorted: what "fails the same way" means."""
        return tuple(sorted({v.checker for v in self.verdicts if not v.ok}))
