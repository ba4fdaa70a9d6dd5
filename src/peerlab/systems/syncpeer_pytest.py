"""syncpeer's pytest helpers, loaded by peerlab's pytest plugin through syncpeer's system
plugin: the `syncpeer_net` fixture (peers started and befriended in one call), the
assertions scenarios use (`assert_file_synced`, `assert_friends`), and the final check of
every test that ran syncpeer: no private key and no plaintext a peer may not read left any
peer (`no_secret_leaks`, see peerlab.systems.syncpeer_secrets)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import pytest

from peerlab.api import EnvironmentAPI
from peerlab.checkers.verdict import Verdict
from peerlab.clock import Scheduler
from peerlab.systems.syncpeer import SyncpeerAdapter, assert_file_synced, assert_friends
from peerlab.systems.syncpeer_secrets import check_secrets
from peerlab.testing import require_libfaketime

__all__ = [
    "assert_file_synced",
    "assert_friends",
    "mesh",
    "pytest_peerlab_final_checks",
    "syncpeer_net",
]

Edges = Iterable[tuple[str, str]]


def mesh(names: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair of `names` once: a full friend graph."""
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]


@pytest.fixture
def syncpeer_net(peerlab_env: EnvironmentAPI) -> Callable[..., SyncpeerAdapter]:
    """start(count, edges=mesh, skewable=False, versions=None): start syncpeer peers A, B, ...
    and befriend them along `edges`; `skewable` starts them able to take a clock skew at
    once; `versions` maps peers to protocol versions ({"A": "1.0"}, the manifest's
    [versions])."""

    def start(
        count: int,
        edges: Edges | None = None,
        *,
        skewable: bool = False,
        versions: Mapping[str, str] | None = None,
    ) -> SyncpeerAdapter:
        names = [chr(ord("A") + i) for i in range(count)]
        if skewable:
            if not isinstance(peerlab_env.clock, Scheduler):  # the simulator skews by itself
                require_libfaketime()
            for name in names:
                peerlab_env.clock_skews[name] = 0.0
        peerlab_env.start("syncpeer", names, version=versions)
        adapter = SyncpeerAdapter.of(peerlab_env, "syncpeer")
        adapter.befriend_graph(mesh(names) if edges is None else edges)
        return adapter

    return start


@pytest.hookimpl
def pytest_peerlab_final_checks(env: EnvironmentAPI, skip: frozenset[str]) -> list[Verdict]:
    """No secret left a peer: run at the end of every test whose network ran syncpeer."""
    if "syncpeer" not in env.systems or "no_secret_leaks" in skip:
        return []
    return [check_secrets(env)]
