"""Envelopes on disk, kept in step with the core store model.

The core decides where an envelope belongs; this module moves the bytes there and then commits
the decision, so the model never claims a file the disk does not have. Moves are renames within
one filesystem, so a reader holding an open file keeps the bytes it started with.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from syncpeer.core import envelope
from syncpeer.core.errors import InvalidEnvelope
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.store import (
    SUFFIX,
    Decision,
    Placement,
    Store,
    StoredFile,
    current_filename,
    history_filename,
)
from syncpeer.io.datadir import DataDir

Clock = Callable[[], float]
"""The wall clock: envelope timestamps and the listing's Last-Modified."""


class FileStore:
    def __init__(self, data: DataDir, clock: Clock, mutants: Mutants = NO_MUTANTS) -> None:
        self.data = data
        self.clock = clock
        self.model = Store(clock(), mutants)

    def load(self) -> list[tuple[Path, str]]:
        """Rebuild the model from disk; returns (path, reason) for envelopes that were skipped.

        Leftover temporary files are removed; partial downloads stay, to be resumed.
        """
        for leftover in self.data.partial.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
        skipped = []
        for path in self._envelope_paths():
            data = path.read_bytes()
            try:
                verified = envelope.verify(data, self.model.mutants)
            except InvalidEnvelope as error:
                skipped.append((path, str(error)))
                continue
            file = StoredFile.from_envelope(verified, len(data), hashlib.sha256(data).hexdigest())
            self.accept(self.model.decide(file), path)
        return skipped

    def accept(self, decision: Decision, source: Path, *, durable: bool = False) -> None:
        """Move the envelope at `source` to where `decision` puts it, then commit it;
        `durable`: the moves are on disk (directories synced) before it is committed."""
        file = decision.file
        if decision.placement is Placement.DUPLICATE:
            if source.parent == self.data.partial:
                source.unlink(missing_ok=True)
            return
        if decision.placement is Placement.HISTORY:
            self._move(source, self.history_path(file))
        else:
            if decision.displaced is not None:
                self._move(self.current_path(file.name), self.history_path(decision.displaced))
            self._move(source, self.current_path(file.name))
        if durable:
            for directory in (self.data.files, self.data.history):
                _sync_directory(directory)
        self.model.commit(decision, wall=self.clock())

    def accept_bytes(self, decision: Decision, data: bytes) -> None:
        """Write a freshly sealed envelope and accept it, durably: a publish or a delete is
        acknowledged only once a crash of the machine cannot take it back."""
        descriptor, temporary = tempfile.mkstemp(suffix=".tmp", dir=self.data.partial)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        self.accept(decision, Path(temporary), durable=True)

    def current_path(self, name: str) -> Path:
        return self.data.files / current_filename(name)

    def history_path(self, file: StoredFile) -> Path:
        return self.data.history / history_filename(file)

    def partial_path(self, sha256: str) -> Path:
        return self.data.partial / f"{sha256}.part"

    def partials(self) -> dict[str, int]:
        """Bytes downloaded so far of each envelope (by SHA-256) with a partial file."""
        return {path.stem: path.stat().st_size for path in sorted(self.data.partial.glob("*.part"))}

    def partial_size(self, sha256: str, expected: int) -> int:
        """Bytes already downloaded of an envelope; a partial longer than expected is dropped."""
        path = self.partial_path(sha256)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return 0
        if size > expected:
            path.unlink()
            return 0
        return size

    def open_current(self, name: str) -> tuple[StoredFile, BinaryIO] | None:
        """The current file of `name` and an open handle on its bytes, or None."""
        file = self.model.current(name)
        if file is None:
            return None
        return file, self.current_path(name).open("rb")

    def read_current(self, name: str) -> tuple[StoredFile, bytes] | None:
        file = self.model.current(name)
        if file is None:
            return None
        return file, self.current_path(name).read_bytes()

    def _envelope_paths(self) -> Iterator[Path]:
        # Current files first, so history files are judged against them.
        yield from sorted(self.data.files.glob("*" + SUFFIX))
        yield from sorted(self.data.history.glob("*" + SUFFIX))

    @staticmethod
    def _move(source: Path, target: Path) -> None:
        if source != target:
            os.replace(source, target)


def _sync_directory(directory: Path) -> None:
    """Make the renames into `directory` survive a crash."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
