"""Nodes as processes on this machine: what the local and netns backends share.

Processes are started by a launcher (see `launcher.py`): forked from a pre-imported Python
process for systems that name an entry point, exec'd for anything else, in a network
namespace when the backend gives one (`ProcessBackend.spawn_options`). Control is by
signal: kill (SIGKILL), stop (the system's stop signal), pause and resume (SIGSTOP /
SIGCONT), sent to the node's process group so that whatever it spawned follows. Clock skew
is libfaketime, preloaded into nodes that start with an offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil

from peerlab.backends import datadir
from peerlab.backends.base import Action, BackendContext, Capabilities, Launch
from peerlab.errors import PeerlabError
from peerlab.nemesis.clock import preload_environment, sweep_stale_segments, write_skew
from peerlab.node import NodeHandle

if TYPE_CHECKING:
    from peerlab.node import Node


class _Launcher:
    """Client side of one launcher process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.exits: dict[int, asyncio.Future[int | None]] = {}
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


class ProcessBackend:
    """The process side of a backend: launchers, signals, output, resources, data dirs.

    A subclass says where nodes live (addresses, a network namespace) and how the fault
    plane reaches them; `spawn_options` adds what the launcher needs to place a node there.
    """

    name = "processes"
    capabilities = Capabilities()

    def __init__(self, context: BackendContext) -> None:
        self.context = context
        self.reaper = context.reaper
        self._launchers: dict[tuple[str, ...], _Launcher] = {}
        self._launcher_lock = asyncio.Lock()
        self._faketime: set[str] = set()  # nodes started under libfaketime
        self._watchers: set[asyncio.Task[None]] = set()

    def prepare(self, node: Node, launch: Launch) -> None:
        datadir.write_files(launch)

    def spawn_options(self, node: Node, launch: Launch) -> dict[str, Any]:
        """What the launcher's spawn request adds for this backend (a namespace to enter)."""
        return {}

    # ------------------------------------------------------------------ processes

    async def _launcher(self, preload: tuple[str, ...]) -> _Launcher:
        async with self._launcher_lock:
            launcher = self._launchers.get(preload)
            if launcher is None or launcher.process.returncode is not None:
                launcher = await _Launcher.start(preload)
                self.reaper.add_process(launcher.process.pid)
                self._launchers[preload] = launcher
            return launcher

    @staticmethod
    def skew_file(node: Node) -> Path:
        return node.data_dir.parent / "clock-skew"

    async def start(self, node: Node, launch: Launch) -> NodeHandle:
        env = dict(launch.env)
        fork = launch.entry is not None
        if launch.clock_offset is not None:
            write_skew(self.skew_file(node), launch.clock_offset)
            env.update(preload_environment(self.skew_file(node)))
            sweep_stale_segments()  # a stale one for the pid it gets would stop it starting
            fork = False  # LD_PRELOAD acts when a program starts: a forked child escapes it
            self._faketime.add(node.name)
        else:
            self._faketime.discard(node.name)
        launcher = await self._launcher(launch.preload if fork else ())
        reply = await launcher.request(
            {
                "op": "spawn",
                "argv": launch.argv,
                "entry": launch.entry if fork else None,
                "args": launch.args,
                "env": env,
                "cwd": str(launch.cwd),
                "stdout": str(launch.stdout),
                "stderr": str(launch.stderr),
                **self.spawn_options(node, launch),
            }
        )
        if "error" in reply:
            program = launch.argv[0] if launch.argv else launch.entry
            raise PeerlabError(
                f"{program}: {reply['error']}",
                hint="check that the program is installed and on PATH",
            )
        pid = int(reply["pid"])
        self.reaper.add_process(pid)
        exited = launcher.exits.setdefault(pid, asyncio.get_running_loop().create_future())
        exited.add_done_callback(lambda _: self.reaper.forget_process(pid))
        return NodeHandle(str(pid), exited, pid)

    def act(self, handle: NodeHandle, action: Action, sig: signal.Signals | None = None) -> None:
        """Signal the node's process group (the node and anything it started)."""
        if handle.pid is None:
            return
        signals = {
            "kill": (signal.SIGCONT, signal.SIGKILL),  # a paused process must wake to die
            "terminate": (signal.SIGCONT, sig or signal.SIGTERM),
            "pause": (signal.SIGSTOP,),
            "resume": (signal.SIGCONT,),
        }[action]
        for each in signals:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, each)

    def set_clock(self, node: Node, seconds: float) -> bool:
        write_skew(self.skew_file(node), seconds)
        return node.name in self._faketime

    def healthy(self, node: Node) -> bool:
        """A process has no healthcheck of its own (the probe is refused before a start)."""
        return False

    def logs(self, node: Node, lines: int, stream: Literal["stdout", "stderr"]) -> list[str]:
        return node.logs(lines, stream)

    def resources(self, handle: NodeHandle) -> dict[str, Any]:
        """CPU, memory (RSS) and process count of the node's whole process tree."""
        if handle.pid is None:
            return {}
        try:
            root = psutil.Process(handle.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return {}
        rss = cpu = 0.0
        counted = 0
        for proc in family:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    times = proc.cpu_times()
                    cpu += times.user + times.system
                counted += 1
            except psutil.Error:
                continue
        return {
            "rss_mb": round(rss / 2**20, 1),
            "cpu_seconds": round(cpu, 2),
            "processes": counted,
        }

    def export_data(self, node: Node, target: Path) -> None:
        datadir.export_data(node, target)

    def import_data(self, node: Node, source: Path) -> None:
        datadir.import_data(node, source)

    # ------------------------------------------------------------------ handover

    def detach(self) -> dict[str, Any]:
        """The nodes are no longer ours to clean up; they keep running for an adopter."""
        for node in self.context.nodes().values():
            if node.pid is not None:
                self.reaper.forget_process(node.pid)
        return {"faketime": sorted(self._faketime)}

    async def watch(self, saved: dict[str, Any]) -> NodeHandle:
        """Watch an adopted process (not a child of ours) for its exit by polling."""
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int | None] = loop.create_future()
        pid = saved.get("pid")

        async def poll() -> None:
            while pid is not None:
                try:
                    if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                        break
                except psutil.NoSuchProcess:
                    break
                await asyncio.sleep(0.2)
            if not exited.done():
                exited.set_result(None)

        task = loop.create_task(poll())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        if pid is not None:
            self.reaper.add_process(pid)
            exited.add_done_callback(lambda _: self.reaper.forget_process(pid))
        self._faketime.update((self.context.adopt or {}).get("faketime", []))
        return NodeHandle(str(saved["key"]), exited, pid, dict(saved.get("state") or {}))

    async def close(self, detach: bool = False) -> None:
        for task in list(self._watchers):
            task.cancel()
        for launcher in self._launchers.values():
            with contextlib.suppress(Exception):
                await launcher.close(detach=detach)
            if not detach:
                self.reaper.forget_process(launcher.process.pid)
        self._launchers.clear()
