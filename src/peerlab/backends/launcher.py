"""The launcher: a small process that starts every node of an Environment.

It imports the Python systems' modules once (`--preload`), then serves spawn requests as
JSON lines on stdin: a `fork` spawn forks a child that calls the system's entry point with
its arguments (a few milliseconds, memory shared copy-on-write with the launcher); an `exec`
spawn forks and execs any program. A spawn may name a network namespace to enter (`netns`;
the child gets mounts of its own there too) and the capabilities to keep (`capabilities`):
the child enters it and drops the rest before it runs the node, so one launcher serves the
nodes of every namespace. Each node is still its
own process in its own session: its own pid, killable and pausable. The launcher reaps its
children and reports exits as events on stdout. When its stdin closes (the Environment's
owner died, even by SIGKILL) it kills every node it started, unless it was told to `detach`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import random
import selectors
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from peerlab.backends import confine


def _write(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _resolve(entry: str) -> Callable[[list[str]], int | None]:
    module_name, _, attr = entry.partition(":")
    func: Callable[[list[str]], int | None] = getattr(importlib.import_module(module_name), attr)
    return func


class Launcher:
    def __init__(self, preload: list[str]) -> None:
        for module in preload:
            importlib.import_module(module)
        # Objects that exist now are never written by children again: keeping the collector
        # away from them keeps their pages shared after fork.
        gc.collect()
        gc.freeze()
        self.out = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
        self.children: set[int] = set()
        self.detached = False
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.selector.register(0, selectors.EVENT_READ, "requests")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        self.buffer = b""

    def serve(self) -> None:
        _write(self.out, {"event": "ready", "pid": os.getpid()})
        while True:
            for key, _ in self.selector.select():
                if key.data == "signal":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self.wake_r, 4096)
                    self.reap()
                    continue
                chunk = os.read(0, 65536)
                if not chunk:
                    self.shutdown()
                    return
                self.buffer += chunk
                while b"\n" in self.buffer:
                    line, self.buffer = self.buffer.split(b"\n", 1)
                    if line.strip():
                        self.handle(json.loads(line))

    def handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        reply: dict[str, Any] = {"id": request.get("id")}
        if op == "spawn":
            try:
                reply["pid"] = self.spawn(request)
            except OSError as exc:
                reply["error"] = f"cannot start: {exc}"
        elif op == "detach":
            self.detached = True
            reply["ok"] = True
        else:
            reply["error"] = f"unknown op {op!r}"
        _write(self.out, reply)

    def spawn(self, request: dict[str, Any]) -> int:
        stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        stderr = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        pid = os.fork()
        if pid == 0:  # the node
            code = 127
            try:
                code = self._child(request, stdout, stderr)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        os.close(stdout)
        os.close(stderr)
        self.children.add(pid)
        return pid

    def _child(self, request: dict[str, Any], stdout: int, stderr: int) -> int:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        if request.get("entry"):
            # A Python node writes to a peer that reset its connection: as in any Python
            # program, that is an error to handle (EPIPE), not a signal that kills it.
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.selector.close()
        for fd in (self.wake_r, self.wake_w, self.out):
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in (devnull, stdout, stderr):
            os.close(fd)
        if request.get("netns"):
            confine.enter_netns(request["netns"])
            confine.own_mounts()
        if request.get("capabilities") is not None:
            confine.keep_only(request["capabilities"])
        os.chdir(request.get("cwd") or "/")
        env = dict(os.environ)
        env.update(request.get("env") or {})
        entry = request.get("entry")
        if not entry:
            argv = request["argv"]
            os.execvpe(argv[0], argv, env)
        os.environ.clear()
        os.environ.update(env)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
        random.seed()  # the parent's generator state must not be shared by every node
        gc.unfreeze()
        args = list(request.get("args") or [])
        sys.argv = [entry, *args]
        return int(_resolve(entry)(args) or 0)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            _write(
                self.out,
                {"event": "exit", "pid": pid, "returncode": os.waitstatus_to_exitcode(status)},
            )

    def shutdown(self) -> None:
        if self.detached:
            return
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGCONT)
                os.killpg(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="peerlab-launcher")
    parser.add_argument("--preload", action="append", default=[])
    options = parser.parse_args()
    Launcher(options.preload).serve()


if __name__ == "__main__":
    main()
