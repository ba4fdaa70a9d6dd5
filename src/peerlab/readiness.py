"""Readiness: when a started node counts as ready, by its manifest's probe.

`http` (a 2xx answer on a path), `tcp` (a connection is accepted), `log` (a line of its
output matches a pattern) or `none`. The harness probes the node where it listens
(`bind_address`), not through the fabric, so a fault on its links never delays a start.
"""

from __future__ import annotations

import asyncio
import re
import time

from peerlab.backends.base import Backend
from peerlab.errors import PeerlabError
from peerlab.node import Node, NodeState
from peerlab.transport import HttpRequest, NoAnswer, Transport, Unreachable

POLL = 0.02  # seconds between probes


async def wait_ready(node: Node, backend: Backend, transport: Transport) -> None:
    """Probe `node` until it is ready (its state becomes running), it exits, or the probe's
    timeout passes; PeerlabError with what was seen otherwise."""
    readiness = node.system.readiness
    deadline = time.monotonic() + readiness.timeout
    assert node.handle is not None
    exited = node.handle.exited
    while True:
        if exited.done():
            node.state = NodeState.FAILED
            last = backend.logs(node, 5, "stderr") or backend.logs(node, 5, "stdout")
            raise PeerlabError(
                f"node {node.name} ({node.system.name}) exited with code "
                f"{node.returncode} before it was ready",
                hint="its last output: " + (" | ".join(last[-5:]) or "(none)"),
            )
        if await probe(node, backend, transport):
            node.state = NodeState.RUNNING
            return
        if time.monotonic() > deadline:
            raise PeerlabError(
                f"node {node.name} ({node.system.name}) was not ready within "
                f"{readiness.timeout:g}s ({readiness.type} probe)",
                hint=f"see its logs in {node.stdout_path.parent}",
            )
        await asyncio.sleep(POLL)


async def probe(node: Node, backend: Backend, transport: Transport) -> bool:
    """One probe of the node's readiness."""
    readiness = node.system.readiness
    if readiness.type == "none":
        return True
    if readiness.type == "log":
        assert readiness.pattern is not None
        pattern = re.compile(readiness.pattern)
        lines = backend.logs(node, 200, "stdout") + backend.logs(node, 200, "stderr")
        return any(pattern.search(line) for line in lines)
    assert readiness.port is not None
    if readiness.type == "tcp":
        port = node.system.ports[readiness.port].port
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(node.bind_address, port), 1)
        except (OSError, TimeoutError):
            return False
        writer.close()
        return True
    try:
        answer = await transport.fetch(node, readiness.port, HttpRequest("GET", readiness.path), 2)
    except (Unreachable, NoAnswer):
        return False
    return answer.status < 300
