"""Node control from several threads at once, and the backend seam's refusals."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from peerlab import backends
from peerlab.env import Environment
from peerlab.errors import UsageError
from peerlab.rpc import rpc
from peerlab.services import Services
from peerlab.supervisor import answer


def in_threads(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run `call(i)` for i < count in threads started together; their results (or errors)."""
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # reported to the test, not lost in the thread
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def node_processes(env: Environment) -> dict[str, int]:
    """How many live processes of this environment run as each node (by PEERLAB_NODE, and
    their data dir under the environment's work dir)."""
    counts: dict[str, int] = {}
    for proc in psutil.process_iter(["environ", "status"]):
        try:
            environ = proc.info["environ"] or {}
        except psutil.Error:
            continue
        if proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        name = environ.get("PEERLAB_NODE")
        if name and str(env.workdir) in " ".join(proc.cmdline()):
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_parallel_adds_get_distinct_names_and_addresses(httpd_manifest: Path) -> None:
    with Environment("parallel-add", fabric=False) as env:
        env.start(str(httpd_manifest), 1)
        added = in_threads(4, lambda _: env.add_peers(2))
        assert not [r for r in added if isinstance(r, Exception)], added
        names = [peer["name"] for batch in added for peer in batch]
        assert sorted(names) == ["B", "C", "D", "E", "F", "G", "H", "I"]
        assert len({node.address for node in env.nodes.values()}) == 9


def test_concurrent_restarts_of_one_node_leave_one_process(httpd_manifest: Path) -> None:
    with Environment("parallel-restart", fabric=False, seed=77) as env:
        env.start(str(httpd_manifest), 2)
        results = in_threads(3, lambda _: env.restart("A"))
        assert not [r for r in results if isinstance(r, Exception)], results
        a = env.node("A")
        assert a.state == "running" and a.restarts == 3
        assert node_processes(env) == {"A": 1, "B": 1}, "a restart raced another"


def test_an_unknown_backend_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown backend 'nope'") as info:
        Environment("nope", backend="nope", workdir=tmp_path / "work")
    assert info.value.field == "backend"
    assert not (tmp_path / "work").exists(), "something was created for a refused backend"
    assert "local" in backends.names()


def test_a_verb_the_backend_cannot_do_is_refused_by_name(
    httpd_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Environment("no-pause", fabric=False) as env:
        env.start(str(httpd_manifest), 1)
        monkeypatch.setattr(
            type(env.backend), "capabilities", backends.base.Capabilities(pause=False)
        )
        with pytest.raises(UsageError, match="local backend cannot pause"):
            env.pause("A")
        assert env.node("A").state == "running"


def test_faults_without_a_fabric_are_refused_with_the_reason(httpd_manifest: Path) -> None:
    with Environment("no-fabric", fabric=False) as env:
        env.start(str(httpd_manifest), 2)
        assert not env.net.enabled
        with pytest.raises(UsageError, match="without a fabric") as info:
            env.net.partition([["A"], ["B"]])
        assert info.value.field == "fabric"
        env.net.heal()  # nothing is cut: healing is harmless


class Broken:
    """A namespace whose operation has a bug: it raises TypeError from inside."""

    @rpc
    def explode(self, name: str) -> None:
        raise TypeError(f"{name} has no len()")

    @rpc
    def fine(self, name: str) -> str:
        return name.upper()


def services_with(namespace: object, tmp_path: Path) -> Services:
    services = Services.__new__(Services)
    services._namespaces = {"env": namespace}
    return services


def test_a_failure_inside_an_operation_is_never_a_usage_error(tmp_path: Path) -> None:
    services = services_with(Broken(), tmp_path)
    inside = asyncio.run(answer(services, "env.explode", {"name": "A"}))
    assert inside["usage"] is False and "TypeError" in inside["error"], inside
    misfit = asyncio.run(answer(services, "env.fine", {"nome": "A"}))
    assert misfit["usage"] is True and "env.fine" in misfit["error"], misfit
    unknown = asyncio.run(answer(services, "env.nothing", {}))
    assert unknown["usage"] is True, unknown
    assert asyncio.run(answer(services, "env.fine", {"name": "a"})) == {"result": "A"}


def test_peers_asks_every_nodes_resources_at_once(
    httpd_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Environment("peers-at-once", fabric=False) as env:
        env.start(str(httpd_manifest), 3)
        # Each answer waits for the other two: asked one after another, none would come.
        together = threading.Barrier(3, timeout=30)

        def resources(handle: Any) -> dict[str, Any]:
            together.wait()
            return {"rss_mb": 1.0}

        monkeypatch.setattr(env.backend, "resources", resources)
        assert [p["rss_mb"] for p in env.peers()] == [1.0, 1.0, 1.0]
        assert [p["name"] for p in env.peers()] == ["A", "B", "C"]
