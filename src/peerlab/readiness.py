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

import aiohttp

from peerlab.backends.base import Backend
from peerlab.errors import PeerlabError
from peerlab.manifest import render
from peerlab.node import Node, NodeState

POLL = 0.02  # seconds between probes
EXCERPT = 200  # bytes of an answer's body (or characters of a command's output) kept
COMMAND_TIMEOUT = 10.0  # seconds one run of a command probe may take


async def wait_ready(
    node: Node, backend: Backend, session: Callable[[], aiohttp.ClientSession]
) -> None:
    """Probe `node` until it is ready (its state becomes running), it exits, or the probe's
    timeout passes; PeerlabError with what was seen otherwise."""
    readiness = node.system.readiness
    deadline = time.monotonic() + readiness.timeout
    assert node.handle is not None
    exited = node.handle.exited
    seen = "nothing yet"
    while True:
        if exited.done():
            node.state = NodeState.FAILED
            last = backend.logs(node, 5, "stderr") or backend.logs(node, 5, "stdout")
            raise PeerlabError(
                f"node {node.name} ({node.system.name}) exited with code "
                f"{node.returncode} before it was ready",
                hint="its last output: " + (" | ".join(last[-5:]) or "(none)"),
            )
        ready, seen = await probe(node, backend, session)
        if ready:
            node.state = NodeState.RUNNING
            return
        if time.monotonic() > deadline:
            raise PeerlabError(
                f"node {node.name} ({node.system.name}) was not ready within "
                f"{readiness.timeout:g}s ({readiness.type} probe); last seen: {seen}",
                hint=f"see its logs in {node.stdout_path.parent}",
            )
        await asyncio.sleep(POLL)


Seen = tuple[bool, str]


async def probe(node: Node, backend: Backend, session: Callable[[], aiohttp.ClientSession]) -> Seen:
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
    port = node.system.ports[readiness.port].port
    if readiness.type == "tcp":
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(node.bind_address, port), 1)
        except (OSError, TimeoutError) as exc:
            return False, _failure(exc, f"{node.bind_address}:{port}")
        writer.close()
        return True, "connected"
    return await _http(node, port, session)


async def _http(node: Node, port: int, session: Callable[[], aiohttp.ClientSession]) -> Seen:
    readiness = node.system.readiness
    url = f"http://{node.bind_address}:{port}{readiness.path}"
    headers = {key: render(value, node.fields) for key, value in readiness.headers.items()}
    try:
        async with session().request(
            readiness.method, url, headers=headers, timeout=aiohttp.ClientTimeout(total=2)
        ) as response:
            body = (await response.content.read(EXCERPT)).decode(errors="replace")
            status = response.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return False, _failure(exc, url)
    ready = status == readiness.status if readiness.status else 200 <= status < 300
    text = " ".join(body.split())
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
