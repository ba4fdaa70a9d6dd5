"""What a named scenario is, and the narrator that tells what it does as it does it.

A scenario is a function of a live Environment and a `Narrator`. It acts on the network as a
person at the CLI would (faults, kills, files), says what it does, and ends with checks:
verdicts that go into the history (and so into results and reports) like a checker's.

Narration is recorded in the history as `scenario_*` events: the CLI that started the
scenario through the supervisor follows them on the timeline, and the HTML report shows
them. `run_scenario` works the same from a pytest test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from peerlab.checkers.verdict import Verdict
from peerlab.errors import UsageError

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI


class Narrator:
    """Says what a scenario does; every line is a history event (and `say` is called)."""

    def __init__(
        self, env: EnvironmentAPI, scenario: str, say: Callable[[str], None] | None = None
    ) -> None:
        self.env = env
        self.scenario = scenario
        self._say = say
        self.verdicts: list[Verdict] = []
        self._began = time.monotonic()
        self._progress: dict[str, tuple[int, int]] = {}

    def step(self, text: str, **data: Any) -> None:
        """A step of the story: what is about to happen, or what was just seen."""
        self.env.history.event("scenario_step", None, scenario=self.scenario, text=text, **data)
        if self._say is not None:
            self._say(text)

    def progress(self, what: str, done: int, total: int) -> None:
        """How far a long wait has come (shown as a progress bar by the CLI).

        Only changes are recorded: a wait that polls ten times a second must not flood the
        history with the same count.
        """
        if self._progress.get(what) == (done, total):
            return
        self._progress[what] = (done, total)
        self.env.history.event(
            "scenario_progress", None, scenario=self.scenario, what=what, done=done, total=total
        )

    def check(
        self, name: str, ok: bool, summary: str, evidence: Any = None, **stats: Any
    ) -> Verdict:
        """Record a check's outcome as a verdict (kept in the history and the results)."""
        verdict = Verdict(
            f"{self.scenario}/{name}",
            "valid" if ok else "invalid",
            summary,
            evidence if evidence is not None else {},
            stats,
        )
        self.verdicts.append(verdict)
        self.env.history.event("verdict", None, **verdict.to_json())
        self.step(("ok: " if ok else "FAILED: ") + summary, level="info" if ok else "error")
        return verdict

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._began


@dataclass(frozen=True)
class Scenario:
    """A named scenario: what it shows, what it needs, and the function that runs it."""

    name: str
    summary: str
    run: Callable[[EnvironmentAPI, Narrator, dict[str, Any]], None]
    min_peers: int = 2
    needs_fabric: bool = False
    needs_system: str | None = None
    budget: float = 180.0  # seconds the whole scenario may take
    params: dict[str, str] = field(default_factory=dict)  # name -> what it means

    def check_requirements(self, env: EnvironmentAPI) -> None:
        running = [n for n in env.nodes.values() if n.state == "running"]
        if len(running) < self.min_peers:
            raise UsageError(
                f"scenario {self.name!r} needs {self.min_peers} running peers; "
                f"{len(running)} are running",
                field="NAME",
                hint=f"`peerlab up --peers {self.min_peers}` or `peerlab peer add`",
            )
        if self.needs_fabric and not env.net.enabled:
            raise UsageError(
                f"scenario {self.name!r} breaks the network, and this one has no fabric",
                field="NAME",
                hint="`peerlab up` without --no-fabric",
            )
        if self.needs_system and self.needs_system not in env.adapters:
            raise UsageError(
                f"scenario {self.name!r} needs {self.needs_system} peers",
                field="NAME",
                hint=f"`peerlab up --system {self.needs_system}`",
            )


@dataclass
class ScenarioResult:
    name: str
    passed: bool
    seconds: float
    verdicts: list[Verdict]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "seconds": round(self.seconds, 3),
            "verdicts": [v.to_json() for v in self.verdicts],
            "error": self.error,
        }
