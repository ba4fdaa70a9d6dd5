"""Readiness: when a started node counts as ready, by its manifest's probe.

`http` (an answer with the expected status, any 2xx by default, to a request of the
manifest's method, path and headers), `tcp` (a connection is accepted), `log` (a line of its
output matches a pattern), `command` (a program that exits 0), `healthcheck` (a container's
own healthcheck passes) or `none`. The harness probes the node where it listens
(`bind_address`), not through the fabric, so a fault on its links never delays a start. Each
probe says what it saw, so a timeout can tell the last answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from peerlab.backends.base import Backend
from peerlab.clock import Scheduler
from peerlab.errors import PeerlabError
from peerlab.manifest import render
from peerlab.node import Node, NodeState
from peerlab.transport import HttpRequest, NoAnswer, Transport, Unreachable

POLL = 0.02  # seconds between probes (virtual ones on a simulated backend)
Run = Callable[..., Any]  # runs a coroutine on the environment's loop: run(coro, timeout, what=)
EXCERPT = 200  # bytes of an answer's body (or characters of a command's output) kept
COMMAND_TIMEOUT = 10.0  # seconds one run of a command probe may take


async def wait_ready(node: Node, backend: Backend, transport: Transport) -> None:
    """Probe `node` until it is ready (its state becomes running), it exits, or the probe's
    timeout passes; PeerlabError with what was seen otherwise."""
    deadline = time.monotonic() + node.system.readiness.timeout
    while True:
        ready, seen = await check_ready(node, backend, transport)
        if ready:
            return
        if time.monotonic() > deadline:
            raise not_ready(node, seen)
        await asyncio.sleep(POLL)


def wait_ready_virtual(
    nodes: list[Node], backend: Backend, transport: Transport, clock: Scheduler, run: Run
) -> None:
    """`wait_ready` for nodes on virtual time, called in the thread that drives the
    simulation: its waits are what make time pass (and the nodes join, elect, ...). Probes
    every node not yet ready (on the environment's loop, through `run`), lets POLL of
    virtual time pass, and again; each node's probe timeout counts virtual seconds."""
    began = clock.monotonic()
    waiting = list(nodes)
    while waiting:
        seen = run(_check_all(waiting, backend, transport), 30, what="probing readiness")
        late = clock.monotonic() - began
        for node, (ready, saw) in seen:
            if not ready and late > node.system.readiness.timeout:
                raise not_ready(node, saw)
        waiting = [node for node, (ready, _) in seen if not ready]
        if waiting:
            clock.sleep(POLL)


async def _check_all(
    nodes: list[Node], backend: Backend, transport: Transport
) -> list[tuple[Node, Seen]]:
    return [(node, await check_ready(node, backend, transport)) for node in nodes]


async def check_ready(node: Node, backend: Backend, transport: Transport) -> Seen:
    """One probe of `node`: ready (its state becomes running) or not, and what it saw;
    PeerlabError if it exited."""
    assert node.handle is not None
    if node.handle.exited.done():
        node.state = NodeState.FAILED
        last = backend.logs(node, 5, "stderr") or backend.logs(node, 5, "stdout")
        raise PeerlabError(
            f"node {node.name} ({node.system.name}) exited with code "
            f"{node.returncode} before it was ready",
            hint="its last output: " + (" | ".join(last[-5:]) or "(none)"),
        )
    ready, seen = await probe(node, backend, transport)
    if ready:
        node.state = NodeState.RUNNING
    return ready, seen


def not_ready(node: Node, seen: str) -> PeerlabError:
    readiness = node.system.readiness
    return PeerlabError(
        f"node {node.name} ({node.system.name}) was not ready within "
        f"{readiness.timeout:g}s ({readiness.type} probe); last seen: {seen}",
        hint=f"see its logs in {node.stdout_path.parent}",
    )


Seen = tuple[bool, str]


async def probe(node: Node, backend: Backend, transport: Transport) -> Seen:
    """One probe of the node's readiness: ready or not, and what it saw."""
    readiness = node.system.readiness
    if readiness.type == "none":
        return True, "no probe"
    if readiness.type == "healthcheck":
        healthy = backend.healthy(node)
        return healthy, "healthy" if healthy else "the engine's healthcheck has not passed yet"
    if readiness.type == "log":
        assert readiness.pattern is not None
        pattern = re.compile(readiness.pattern)
        lines = backend.logs(node, 200, "stdout") + backend.logs(node, 200, "stderr")
        return any(pattern.search(line) for line in lines), f"no line matching {pattern.pattern!r}"
    if readiness.type == "command":
        return await _command(node)
    assert readiness.port is not None
    if readiness.type == "tcp":
        port = node.system.ports[readiness.port].port
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(node.bind_address, port), 1)
        except (OSError, TimeoutError) as exc:
            return False, _failure(exc, f"{node.bind_address}:{port}")
        writer.close()
        return True, "connected"
    return await _http(node, readiness.port, transport)


async def _http(node: Node, port: str, transport: Transport) -> Seen:
    readiness = node.system.readiness
    url = node.direct_url(port, readiness.path)
    headers = {key: render(value, node.fields) for key, value in readiness.headers.items()}
    try:
        answer = await transport.fetch(
            node, port, HttpRequest(readiness.method, readiness.path, headers=headers), 2
        )
    except (Unreachable, NoAnswer) as exc:
        return False, _failure(exc.__cause__ or exc, url)
    status = answer.status
    ready = status == readiness.status if readiness.status else 200 <= status < 300
    text = " ".join(answer.body[:EXCERPT].decode(errors="replace").split())
    return ready, f"{readiness.method} {url} answered {status}" + (f": {text!r}" if text else "")


async def _command(node: Node) -> Seen:
    readiness = node.system.readiness
    assert readiness.command is not None
    argv = [render(part, node.fields) for part in readiness.command]
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=node.data_dir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return False, f"{argv[0]} could not run: {exc.strerror}"
    try:
        out, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    except TimeoutError:
        _kill(process.pid)
        await process.wait()
        return False, f"{' '.join(argv)} took over {COMMAND_TIMEOUT:g}s"
    except asyncio.CancelledError:  # the start gave up: leave no probe behind
        _kill(process.pid)
        raise
    text = " ".join(out.decode(errors="replace").split())[-EXCERPT:]
    return process.returncode == 0, f"{' '.join(argv)} exited {process.returncode}" + (
        f": {text!r}" if text else ""
    )


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _failure(exc: BaseException, where: str) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return f"{where}: no answer within the probe's time"
    cause = getattr(exc, "os_error", None) or exc
    if isinstance(cause, ConnectionRefusedError):
        return f"{where}: connection refused"
    return f"{where}: {getattr(cause, 'strerror', None) or cause}"
