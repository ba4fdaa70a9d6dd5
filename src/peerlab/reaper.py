"""Every resource an Environment creates is registered here, so nothing outlives the run.

Processes, directories, in-process resources (proxies, loops) and system resources (network
namespaces, links, firewall tables: `add_resource`) are cleaned on close, on exceptions and
on Ctrl-C. The registry is mirrored to a state file under the runtime directory; a runner
killed with SIGKILL cannot clean up, so every new Environment first sweeps the state files
whose owner is dead: it kills their processes (checked by pid and start time, so a reused
pid is never hit), removes their system resources and their directories.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from peerlab import log
from peerlab.home import peerlab_home, runtime_dir, scratch_dir
from peerlab.names import inside
from peerlab.nemesis.clock import sweep_stale_segments

# How each kind of system resource is removed without its owner: "module:function" taking
# the resource's record, imported only when a sweep meets one (the reaper depends on no
# backend).
SWEEPERS = {
    "network": "peerlab.backends.plumbing:sweep",
    "docker": "peerlab.backends.engine:sweep",
}


def _start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def same_process(pid: int, start_time: float | None) -> bool:
    """True when `pid` is still the process that was registered (not a reused pid) and has
    not ended. An ended child of this process (a zombie) is reaped on the way."""
    current = _start_time(pid)
    if current is None or (start_time is not None and abs(current - start_time) >= 0.5):
        return False
    with contextlib.suppress(psutil.Error):
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # ours: reap it, or it stays a zombie
            return False
    return True


def kill_tree(pid: int, start_time: float | None = None) -> None:
    """SIGKILL a process and everything it spawned (its children first found, then it)."""
    kill_trees([(pid, start_time)])


def kill_trees(roots: list[tuple[int, float | None]]) -> None:
    """SIGKILL several processes and everything they spawned, all at once, then wait for
    them together (not one after another)."""
    family: list[psutil.Process] = []
    for pid, start_time in roots:
        if not same_process(pid, start_time):
            continue
        try:
            proc = psutil.Process(pid)
            family += [*proc.children(recursive=True), proc]
        except psutil.NoSuchProcess:
            continue
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            member.send_signal(signal.SIGCONT)  # a paused process must wake to die promptly
            member.kill()
    psutil.wait_procs(family, timeout=3)


class Reaper:
    """The registry of one Environment's resources."""

    def __init__(self, owner_id: str) -> None:
        self.owner_id = owner_id
        self._lock = threading.Lock()
        self._pids: dict[int, float | None] = {}
        self._dirs: list[Path] = []
        self._callbacks: list[tuple[str, Callable[[], Any]]] = []
        self._resources: dict[str, dict[str, Any]] = {}
        self._state = runtime_dir() / "owners" / f"{owner_id}.json"
        self._state.parent.mkdir(exist_ok=True)
        self._closed = False
        self._save()

    def add_process(self, pid: int) -> None:
        with self._lock:
            self._pids[pid] = _start_time(pid)
        self._save()

    def forget_process(self, pid: int) -> None:
        with self._lock:
            self._pids.pop(pid, None)
        self._save()

    def add_dir(self, path: Path) -> None:
        with self._lock:
            self._dirs.append(path)
        self._save()

    def keep_dir(self, path: Path) -> None:
        """Stop tracking `path`: it is kept on purpose (artifacts, --peerlab-keep)."""
        with self._lock:
            self._dirs = [d for d in self._dirs if d != path]
        self._save()

    def add_resource(self, key: str, kind: str, record: dict[str, Any]) -> None:
        """A system resource that outlives this process unless removed (`kind` names its
        sweeper); its owner removes it and calls `forget_resource`, a sweep does otherwise."""
        with self._lock:
            self._resources[key] = {"kind": kind, **record}
        self._save()

    def forget_resource(self, key: str) -> None:
        with self._lock:
            self._resources.pop(key, None)
        self._save()

    def add_callback(self, what: str, callback: Callable[[], Any]) -> None:
        """An in-process resource to close (run in reverse order of registration)."""
        with self._lock:
            self._callbacks.append((what, callback))

    def _save(self) -> None:
        with self._lock:
            state = {
                "owner_pid": os.getpid(),
                "owner_start": _start_time(os.getpid()),
                "pids": [[pid, start] for pid, start in self._pids.items()],
                "dirs": [str(d) for d in self._dirs],
                "resources": list(self._resources.values()),
            }
        tmp = self._state.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self._state)

    def close(self) -> None:
        """Release everything: callbacks, processes, directories; then the state file."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            callbacks = list(reversed(self._callbacks))
            pids = dict(self._pids)
            dirs = list(self._dirs)
        for what, callback in callbacks:
            try:
                callback()
            except Exception as exc:
                log.warning("cleanup_failed", resource=what, error=str(exc))
        kill_trees(list(pids.items()))
        with self._lock:
            left = list(self._resources.values())  # their owners' own clean-up failed
        for record in left:
            _sweep_resource(record)
        for path in dirs:
            _remove_own(path)
        self._state.unlink(missing_ok=True)


def _remove_own(path: Path) -> None:
    """Remove a registered folder, only if it lies in peerlab's runtime dir, scratch space
    or home."""
    for root in (runtime_dir(), scratch_dir(create=False), peerlab_home()):
        if inside(path, root):
            shutil.rmtree(path, ignore_errors=True)
            return
    log.warning("cleanup_refused", path=str(path), reason="outside peerlab's folders")


def sweep() -> list[str]:
    """Clean what dead owners left behind, all of their processes at once; returns a line
    per owner swept."""
    swept: list[str] = []
    stale = sweep_stale_segments()  # what killed skewed nodes left in /dev/shm
    if stale:
        log.info("swept_leftovers", owner=f"libfaketime: {stale} stale segments")
    owners = runtime_dir() / "owners"
    if not owners.is_dir():
        return swept
    processes: list[tuple[int, float | None]] = []
    dead: list[tuple[Path, dict[str, Any]]] = []
    for state_file in owners.glob("*.json"):
        try:
            state = json.loads(state_file.read_text())
        except (OSError, json.JSONDecodeError):
            state_file.unlink(missing_ok=True)
            continue
        if same_process(state.get("owner_pid", -1), state.get("owner_start")):
            continue
        processes += [(pid, start) for pid, start in state.get("pids", [])]
        dead.append((state_file, state))
    kill_trees(processes)
    for state_file, state in dead:
        for record in state.get("resources", []):
            _sweep_resource(record)
        for path in state.get("dirs", []):
            _remove_own(Path(path))
        state_file.unlink(missing_ok=True)
        swept.append(
            f"{state_file.stem}: {len(state.get('pids', []))} processes, "
            f"{len(state.get('resources', []))} resources, {len(state.get('dirs', []))} dirs"
        )
    for line in swept:
        log.info("swept_leftovers", owner=line)
    return swept


def _sweep_resource(record: dict[str, Any]) -> None:
    target = SWEEPERS.get(str(record.get("kind")))
    if target is None:
        return
    module_name, _, attr = target.partition(":")
    try:
        getattr(importlib.import_module(module_name), attr)(record)
    except Exception as exc:
        log.warning("sweep_failed", resource=record, error=str(exc))
