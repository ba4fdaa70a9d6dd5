"""Adoption: a new process takes over a network that another one handed over.

`Environment.handover()` (used by `--peerlab-keep`) lets the nodes run on and writes what an
adopter needs; `adopt(state, name)` builds an Environment around them again: same seed, work
dir, backend (which re-watches each node from its saved handle), nodes and faults.
"""

from __future__ import annotations

from typing import Any

from peerlab.env import Environment
from peerlab.node import Node, NodeRecord


def adopt(state: dict[str, Any], name: str) -> Environment:
    """Take over nodes that another process handed over, with their faults."""
    env = Environment(
        name,
        seed=state["seed"],
        backend=state["backend"],
        fabric=state["fabric"],
        workdir=state["workdir"],
        adopt=state["backend_state"],
    )
    try:
        env.reaper.add_dir(env.workdir)
        env.node_env = state.get("node_env", {})
        env.clock_skews = state.get("clock_skews", {})
        env.versions = state.get("versions", {})
        for source in state["systems"].values():
            env.system(source)
        by_name = {spec.name: spec for spec in env.systems.values()}
        for raw in state["nodes"]:
            record = NodeRecord.from_json(raw)
            node_dir = env.workdir / "nodes" / record.name
            node = Node(
                name=record.name,
                index=record.index,
                system=by_name[record.system],
                role=record.role,
                address=record.address,
                bind_address=record.bind_address,
                data_dir=node_dir / "data",
                stdout_path=node_dir / "stdout.log",
                stderr_path=node_dir / "stderr.log",
                state=record.state,
                started_at=env.clock.time(),
                restarts=record.restarts,
                fields=record.fields,
            )
            env.add(node)
            saved = record.handle if record.state.alive else None
            env.run(env.adopt_node(node, saved), 10)
        env.net.restore(state.get("faults", []))
    except BaseException:
        env.close()
        raise
    return env
