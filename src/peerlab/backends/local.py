"""The local backend: nodes are processes on this machine, each on its own loopback address.

Processes are started by a launcher (see `launcher.py`): forked from a pre-imported Python
process for systems that name an entry point, exec'd for anything else. Control is by
signal: kill (SIGKILL), stop (SIGTERM then SIGKILL), pause and resume (SIGSTOP / SIGCONT),
sent to the node's process group so that whatever it spawned follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerlab.errors import PeerlabError
from peerlab.reaper import Reaper


@dataclass
class ProcessSpec:
    """One process to start: either `entry` + `args` (fork) or `argv` (exec)."""

    stdout: Path
    stderr: Path
    argv: list[str] = field(default_factory=list)
    entry: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    preload: tuple[str, ...] = ()


class _Launcher:
    """Client side of one launcher process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.exits: dict[int, asyncio.Future[int]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, preload: tuple[str, ...]) -> _Launcher:
        args = [sys.executable, "-m", "peerlab.backends.launcher"]
        for module in preload:
            args += ["--preload", module]
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
        except TimeoutError:
            process.kill()
            raise PeerlabError("the node launcher did not start within 60s") from None
        if not line:
            raise PeerlabError(
                f"the node launcher exited before it was ready (preloading {', '.join(preload)})",
                hint="check that the system's Python modules import: python -c 'import MODULE'",
            )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if message.get("event") == "exit":
                exit_future = self.exits.setdefault(
                    message["pid"], asyncio.get_running_loop().create_future()
                )
                if not exit_future.done():
                    exit_future.set_result(message["returncode"])
            elif (request_id := message.get("id")) in self._pending:
                self._pending.pop(request_id).set_result(message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PeerlabError("the node launcher exited"))

    async def request(self, message: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        async with self._lock:
            self.process.stdin.write((json.dumps({**message, "id": request_id}) + "\n").encode())
            await self.process.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def close(self, detach: bool = False) -> None:
        if detach and self.process.returncode is None:
            await self.request({"op": "detach"})
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
        self._reader.cancel()


class LocalBackend:
    """Starts and controls node processes on this machine."""

    def __init__(self, reaper: Reaper) -> None:
        self.reaper = reaper
        self._launchers: dict[tuple[str, ...], _Launcher] = {}
        self._launcher_lock = asyncio.Lock()

    async def _launcher(self, preload: tuple[str, ...]) -> _Launcher:
        async with self._launcher_lock:
            launcher = self._launchers.get(preload)
            if launcher is None or launcher.process.returncode is not None:
                launcher = await _Launcher.start(preload)
                self.reaper.add_process(launcher.process.pid)
                self._launchers[preload] = launcher
            return launcher

    async def spawn(self, spec: ProcessSpec) -> tuple[int, asyncio.Future[int]]:
        """Start a process; returns its pid and a future of its exit code."""
        launcher = await self._launcher(spec.preload if spec.entry else ())
        reply = await launcher.request(
            {
                "op": "spawn",
                "argv": spec.argv,
                "entry": spec.entry,
                "args": spec.args,
                "env": spec.env,
                "cwd": spec.cwd,
                "stdout": str(spec.stdout),
                "stderr": str(spec.stderr),
            }
        )
        if "error" in reply:
            program = spec.argv[0] if spec.argv else spec.entry
            raise PeerlabError(
                f"{program}: {reply['error']}",
                hint="check that the program is installed and on PATH",
            )
        pid = int(reply["pid"])
        self.reaper.add_process(pid)
        exit_future = launcher.exits.setdefault(pid, asyncio.get_running_loop().create_future())
        return pid, exit_future

    @staticmethod
    def signal(pid: int, sig: signal.Signals) -> None:
        """Signal the node's process group (the node and anything it started)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    async def close(self, detach: bool = False) -> None:
        for launcher in self._launchers.values():
            with contextlib.suppress(Exception):
                await launcher.close(detach=detach)
            if not detach:
                self.reaper.forget_process(launcher.process.pid)
        self._launchers.clear()
