"""Helpers for the chaos scenarios: a syncpeer network with a friend graph, seeds for the
randomized runs, and waits on what peers hold."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import pytest

from peerlab.env import Environment

# A test that takes the `chaos_seed` fixture runs once per seed: PEERLAB_CHAOS_SEEDS=20 gives
# seeds 1001..1020 (`make chaos`), a comma-separated list gives those; unset, none. The seed
# of a replay (--peerlab-seed N) is always added, so the replay line a failure prints,
# `pytest '...[seedN]' --peerlab-seed N`, names a test that exists.
FIRST_SEED = 1001


def chaos_seeds() -> list[int]:
    raw = os.environ.get("PEERLAB_CHAOS_SEEDS", "").strip()
    if "," in raw:
        return [int(part) for part in raw.split(",") if part.strip()]
    return [FIRST_SEED + i for i in range(int(raw or 0))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" not in metafunc.fixturenames:
        return
    seeds = chaos_seeds()
    explicit = metafunc.config.getoption("--peerlab-seed")
    if explicit is not None and int(explicit) not in seeds:
        seeds.append(int(explicit))
    metafunc.parametrize("chaos_seed", seeds, ids=[f"seed{seed}" for seed in seeds])


@pytest.fixture
def peerlab_seed(request: pytest.FixtureRequest) -> int:
    """--peerlab-seed when given (a replay), else the case's `chaos_seed`, else a fixed
    seed: chaos scenarios are reproducible by default."""
    explicit = request.config.getoption("--peerlab-seed")
    if explicit is not None:
        return int(explicit)
    if "chaos_seed" in request.fixturenames:
        return int(request.getfixturevalue("chaos_seed"))
    return FIRST_SEED


Edges = Iterable[tuple[str, str]]


def current(env: Environment, node: str, name: str) -> dict | None:
    return env.client(node).file(name)


def versions_held(env: Environment, node: str, name: str) -> set[int]:
    """Every version of `name` the node holds, current and kept."""
    client = env.client(node)
    held = current(env, node, name)
    kept = {v["version"] for v in client.versions(name)} if held is not None else set()
    return kept | ({held["version"]} if held is not None else set())


def wait_holds(
    env: Environment,
    nodes: Iterable[str],
    name: str,
    check: Callable[[dict], bool],
    what: str,
    timeout: float = 20.0,
) -> None:
    """Wait until every node's current version of `name` passes `check`."""
    nodes = list(nodes)

    def lagging() -> dict[str, object]:
        out: dict[str, object] = {}
        for node in nodes:
            held = current(env, node, name)
            if held is None or not check(held):
                out[node] = (
                    None
                    if held is None
                    else {k: held.get(k) for k in ("version", "author", "deleted", "sha256")}
                )
        return out

    env.wait_until(
        lambda: not lagging(), timeout, what=what, describe=lambda: f"lagging: {lagging()}"
    )
