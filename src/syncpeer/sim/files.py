"""Envelopes on the simulated disk, kept in step with the core store model: what
`syncpeer.io.filestore` does on a real disk, with the same layout and the same durability.

A published (or deleted) envelope is synced, and with it the directories it moved files in
(so every rename into them so far), before the publish is acknowledged; a received one is
not (a crash may lose it, and it is fetched again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from syncpeer.core import envelope
from syncpeer.core.errors import InvalidEnvelope
from syncpeer.core.mutants import Mutants
from syncpeer.core.store import (
    HISTORY_DIR,
    PARTIAL_DIR,
    SUFFIX,
    Decision,
    Placement,
    Store,
    StoredFile,
    current_filename,
    history_filename,
)
from syncpeer.sim.host import Disk

FILES = "files/"
HISTORY = f"{FILES}{HISTORY_DIR}/"
PARTIAL = f"{FILES}{PARTIAL_DIR}/"
SEALED = f"{PARTIAL}sealed.tmp"  # a freshly sealed envelope on its way to its place


class SimFiles:
    def __init__(self, disk: Disk, clock: Callable[[], float], mutants: Mutants) -> None:
        self.disk = disk
        self.clock = clock
        self.model = Store(clock(), mutants)

    def load(self) -> list[tuple[str, str]]:
        """Rebuild the model from the disk; (path, reason) of the envelopes skipped."""
        for leftover in [p for p in self.disk.paths(PARTIAL) if p.endswith(".tmp")]:
            self.disk.delete(leftover)
        skipped = []
        for path in self._envelope_paths():
            data = self.disk.read(path) or b""
            try:
                verified = envelope.verify(data, self.model.mutants)
            except InvalidEnvelope as error:
                skipped.append((path, str(error)))
                continue
            file = StoredFile.from_envelope(verified, len(data), hashlib.sha256(data).hexdigest())
            self.accept(self.model.decide(file), path)
        return skipped

    def _envelope_paths(self) -> Iterator[str]:
        # Current files first, so history files are judged against them.
        yield from (
            p for p in self.disk.paths(FILES) if "/" not in p[len(FILES) :] and p.endswith(SUFFIX)
        )
        yield from (p for p in self.disk.paths(HISTORY) if p.endswith(SUFFIX))

    def accept(self, decision: Decision, source: str, *, durable: bool = False) -> None:
        """Move the envelope at `source` to where `decision` puts it, then commit it."""
        file = decision.file
        if decision.placement is Placement.DUPLICATE:
            if source.startswith(PARTIAL):
                self.disk.delete(source)
            return
        if decision.placement is Placement.HISTORY:
            self._move(source, self.history_path(file))
        else:
            if decision.displaced is not None:
                current = self.current_path(file.name)
                self._move(current, self.history_path(decision.displaced))
            self._move(source, self.current_path(file.name))
        if durable:
            self.disk.sync_dir(FILES)
            self.disk.sync_dir(HISTORY)
        self.model.commit(decision, wall=self.clock())

    def accept_bytes(self, decision: Decision, data: bytes) -> None:
        """Write a freshly sealed envelope and accept it, durably."""
        self.disk.write(SEALED, data, sync=True, share=True)
        self.accept(decision, SEALED, durable=True)

    def _move(self, source: str, target: str) -> None:
        if source != target:
            self.disk.rename(source, target, share=True)

    @staticmethod
    def current_path(name: str) -> str:
        return FILES + current_filename(name)

    @staticmethod
    def history_path(file: StoredFile) -> str:
        return HISTORY + history_filename(file)

    @staticmethod
    def partial_path(sha256: str) -> str:
        return f"{PARTIAL}{sha256}.part"

    def partials(self) -> dict[str, int]:
        """Bytes downloaded so far of each envelope (by SHA-256) with a partial file."""
        found = {}
        for path in self.disk.paths(PARTIAL):
            if path.endswith(".part"):
                found[path[len(PARTIAL) : -len(".part")]] = self.disk.size(path)
        return found

    def partial_size(self, sha256: str, expected: int) -> int:
        """Bytes already downloaded of an envelope; a partial longer than expected is dropped."""
        path = self.partial_path(sha256)
        size = self.disk.size(path)
        if size > expected:
            self.disk.delete(path)
            return 0
        return size

    def read(self, file: StoredFile) -> bytes:
        """The bytes of an envelope held (current or kept)."""
        current = self.model.current(file.name)
        path = self.current_path(file.name) if current == file else self.history_path(file)
        data = self.disk.read(path)
        if data is None:
            raise KeyError(path)
        return data

    def read_current(self, name: str) -> tuple[StoredFile, bytes] | None:
        file = self.model.current(name)
        return None if file is None else (file, self.read(file))
