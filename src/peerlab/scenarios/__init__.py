"""Named scenarios that run against a live network and narrate what they do.

    peerlab scenario list
    peerlab scenario run split-brain

From Python (a test, a notebook): `run_scenario(env, "split-brain", say=print)`. Adding a
scenario means adding one module with a `SCENARIO` and listing it in `_MODULES`.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from peerlab.errors import PeerlabError, UsageError
from peerlab.scenarios.base import Narrator, Scenario, ScenarioResult

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

_MODULES = ("split_brain", "crash_during_sync", "high_latency")


def scenarios() -> dict[str, Scenario]:
    found = {}
    for module in _MODULES:
        scenario: Scenario = importlib.import_module(f"peerlab.scenarios.{module}").SCENARIO
        found[scenario.name] = scenario
    return found


def get(name: str) -> Scenario:
    known = scenarios()
    if name not in known:
        raise UsageError(
            f"there is no scenario {name!r}", field="NAME", hint=f"scenarios: {', '.join(known)}"
        )
    return known[name]


def run_scenario(
    env: EnvironmentAPI,
    name: str,
    params: dict[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
) -> ScenarioResult:
    """Run a named scenario on `env`; a scenario that cannot finish is a failed one."""
    scenario = get(name)
    scenario.check_requirements(env)
    params = dict(params or {})
    unknown = sorted(set(params) - set(scenario.params))
    if unknown:
        raise UsageError(
            f"scenario {name!r} has no parameter {unknown[0]!r}",
            field="--param",
            hint=f"its parameters: {', '.join(scenario.params) or 'none'}",
        )
    narrator = Narrator(env, name, say)
    began = time.monotonic()
    narrator.step(f"scenario {name}: {scenario.summary}", level="info", phase="start")
    error = None
    try:
        scenario.run(env, narrator, params)
    except PeerlabError as exc:
        error = exc.message
    except Exception as exc:  # a scenario's bug is reported as its failure
        error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    passed = error is None and all(v.ok for v in narrator.verdicts)
    seconds = time.monotonic() - began
    if error is not None:
        narrator.step(f"scenario stopped: {error}", level="error")
    narrator.step(
        f"scenario {name} {'passed' if passed else 'FAILED'} in {seconds:.1f}s",
        level="info" if passed else "error",
        phase="end",
        passed=passed,
    )
    return ScenarioResult(name, passed, seconds, narrator.verdicts, error)


__all__ = ["Narrator", "Scenario", "ScenarioResult", "get", "run_scenario", "scenarios"]
