"""The RPC surface of a live Environment: its namespaces, as the supervisor serves them.

    env        the node verbs and status (the Environment itself: `ControlAPI`)
    net        the fault plane (`env.net`: partitions, toxics, links)
    observe    the merged timeline
    snapshot   save / restore the whole network's state
    scenario   run a named scenario on this network
    results    write this run's results folder
    adapter    the verbs of the first system's adapter (e.g. syncpeer's friend_add)

Only methods marked `@rpc` are reachable; a CLI command is one call `namespace.verb`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from peerlab.api import EnvironmentAPI
from peerlab.errors import NotFound
from peerlab.rpc import is_rpc, rpc


@dataclass
class ObserveService:
    env: EnvironmentAPI
    started_at: float

    @rpc
    def timeline(
        self,
        cursor: dict[str, Any] | None = None,
        filter: dict[str, Any] | None = None,
        tail: int | None = None,
        all_runs: bool = False,
    ) -> dict[str, Any]:
        """Merged timeline events since `cursor` that pass `filter` (EventFilter JSON).

        Events from before this Environment began are left out unless `all_runs`: a
        supervisor's work dir keeps the logs of earlier networks of the same name.
        """
        from peerlab.observe import EventFilter, fetch

        event_filter = EventFilter.from_json(filter)
        floor = self.started_at - 1
        if not all_runs and (event_filter.since is None or event_filter.since < floor):
            event_filter = replace(event_filter, since=floor)
        return fetch(self.env.workdir, cursor, event_filter, tail)


@dataclass
class SnapshotService:
    env: EnvironmentAPI

    @rpc
    def save(self, name: str, force: bool = False) -> dict[str, Any]:
        """Save every node's data dir, state and the active faults as snapshot `name`."""
        from peerlab import snapshot

        return snapshot.save(self.env, snapshot.snapshot_dir(name), force=force)

    @rpc
    def restore(self, name: str, force: bool = False) -> dict[str, Any]:
        """Bring the network back to snapshot `name` (data dirs, running nodes, faults)."""
        from peerlab import snapshot

        return snapshot.restore(self.env, snapshot.snapshot_dir(name), force=force)


@dataclass
class ScenarioService:
    env: EnvironmentAPI

    @rpc
    def run(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a named scenario (see `peerlab.scenarios`) on this network."""
        from peerlab.scenarios import run_scenario

        return run_scenario(self.env, name, params).to_json()


@dataclass
class ResultsService:
    env: EnvironmentAPI

    @rpc
    def save(self, dest: str, outcome: str | None = None, test: str | None = None) -> str:
        """Write this run's results folder (result.json, logs, timeline, JUnit) to `dest`."""
        from peerlab.report.results import write_results

        write_results(self.env, Path(dest), outcome=outcome, test=test)
        return dest


class Services:
    """The namespaces of one Environment, and the lookup of a `namespace.verb` path."""

    def __init__(self, env: EnvironmentAPI, started_at: float) -> None:
        self.env = env
        self._namespaces: dict[str, Any] = {
            "env": env,
            "net": env.net,
            "observe": ObserveService(env, started_at),
            "snapshot": SnapshotService(env),
            "scenario": ScenarioService(env),
            "results": ResultsService(env),
        }

    def names(self) -> list[str]:
        return [*self._namespaces, "adapter"]

    def types(self) -> dict[str, type]:
        """Each namespace's class, the first system's adapter's too (for the API document)."""
        types = {name: type(target) for name, target in self._namespaces.items()}
        adapters = getattr(self.env, "adapters", {})
        if adapters:
            types["adapter"] = type(next(iter(adapters.values())))
        return types

    def resolve(self, path: str) -> Any:
        """The `@rpc` method at `path` (`net.partition`); UsageError naming what exists."""
        namespace, _, verb = path.partition(".")
        if namespace == "adapter":
            target = self.env.adapter()
        elif namespace in self._namespaces:
            target = self._namespaces[namespace]
        else:
            raise NotFound(
                f"{path!r} is not an operation",
                field="path",
                hint=f"paths are NAMESPACE.VERB, namespaces: {', '.join(self.names())}",
            )
        method = getattr(target, verb, None) if verb and not verb.startswith("_") else None
        if method is None or not is_rpc(method):
            what = "this environment's system" if namespace == "adapter" else namespace
            raise NotFound(
                f"{path!r} is not an operation of {what}",
                field="path",
                hint="the system running here may not support it"
                if namespace == "adapter"
                else f"see `peerlab --help` for what {namespace} offers",
            )
        return method
