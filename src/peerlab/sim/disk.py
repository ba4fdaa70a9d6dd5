"""A simulated node's disk: what the node sees now, and what a crash leaves of it.

Writes, renames and deletes change the live view at once; they become durable only when the
node syncs them, as fsync does: `sync(path)` a file's content (or its absence) as it is now,
`sync_dir(directory)` every entry directly in a directory, as it is now (what a directory's
fsync makes of the renames and deletes into and out of it). A clean exit keeps everything
(the machine stays up; its page cache reaches the disk), a crash (`kill`) keeps only what
was synced. Contents are bytes shared, not copied: the same envelope held by a thousand
nodes is one object (`Blobs`).
"""

from __future__ import annotations

from collections.abc import Iterator


class Blobs:
    """Equal contents stored once (envelopes relayed to many nodes)."""

    def __init__(self) -> None:
        self._known: dict[bytes, bytes] = {}

    def intern(self, data: bytes) -> bytes:
        return self._known.setdefault(data, data)

    def __len__(self) -> int:
        return len(self._known)

    def size(self) -> int:
        return sum(len(data) for data in self._known)


class Disk:
    """One node's files by path (a string relative to its data dir)."""

    def __init__(self, blobs: Blobs | None = None) -> None:
        self._live: dict[str, bytes | bytearray] = {}
        self._durable: dict[str, bytes] = {}
        self._blobs = blobs

    def read(self, path: str) -> bytes | None:
        data = self._live.get(path)
        return bytes(data) if isinstance(data, bytearray) else data

    def exists(self, path: str) -> bool:
        return path in self._live

    def size(self, path: str) -> int:
        data = self._live.get(path)
        return 0 if data is None else len(data)

    def write(self, path: str, data: bytes, *, sync: bool = False, share: bool = False) -> None:
        """Replace `path`'s content (`share`: store equal contents once across nodes)."""
        if share and self._blobs is not None:
            data = self._blobs.intern(data)
        self._live[path] = data
        if sync:
            self.sync(path)

    def truncate(self, path: str, size: int) -> None:
        """Cut (or extend with zeros) `path` to `size` bytes; it is created if missing. The
        file stays growable in place (`write_at`), as a partial download is."""
        old = self._live.get(path, b"")
        grown = bytearray(old[:size])
        grown.extend(bytes(size - len(grown)))
        self._live[path] = grown

    def write_at(self, path: str, position: int, data: bytes) -> None:
        """Write `data` at `position` of a file made by `truncate`."""
        buffer = self._live[path]
        if not isinstance(buffer, bytearray):
            buffer = self._live[path] = bytearray(buffer)
        if position > len(buffer):
            buffer.extend(bytes(position - len(buffer)))
        buffer[position : position + len(data)] = data

    def rename(self, source: str, target: str, *, sync: bool = False, share: bool = False) -> None:
        data = self._live.pop(source)
        whole = bytes(data) if isinstance(data, bytearray) else data
        self._live[target] = (
            self._blobs.intern(whole) if share and self._blobs is not None else whole
        )
        if sync:
            self.sync(source)
            self.sync(target)

    def delete(self, path: str, *, sync: bool = False) -> None:
        self._live.pop(path, None)
        if sync:
            self.sync(path)

    def paths(self, prefix: str = "") -> Iterator[str]:
        """Paths under `prefix`, sorted."""
        return iter(sorted(path for path in self._live if path.startswith(prefix)))

    def sync(self, path: str) -> None:
        """Make `path`'s current state (content or absence) survive a crash."""
        data = self._live.get(path)
        if data is None:
            self._durable.pop(path, None)
        else:
            self._durable[path] = bytes(data)

    def sync_dir(self, directory: str) -> None:
        """Make the directory's entries (`directory` ends with "/") survive a crash."""

        def inside(path: str) -> bool:
            return path.startswith(directory) and "/" not in path[len(directory) :]

        for path in [p for p in self._durable if inside(p) and p not in self._live]:
            del self._durable[path]
        for path, data in self._live.items():
            if inside(path):
                self._durable[path] = bytes(data)

    def sync_all(self) -> None:
        """Everything survives (the process exited; the machine's cache reaches the disk)."""
        self._durable = {path: bytes(data) for path, data in self._live.items()}

    def crash(self) -> None:
        """The machine went down: what was not synced is gone."""
        self._live = dict(self._durable)

    def used(self) -> int:
        """Bytes held (shared contents counted in full)."""
        return sum(len(data) for data in self._live.values())
