"""The server side of the sync protocol, sans-IO: what a node answers a friend's `GET /files`
(the protocol version agreed on, or a 426; its listing, with ETags, Last-Modified and
304s), `GET /files/{name}` (an envelope, with If-Match and Range) and, in v1.1,
`GET /files/{name}/chunks` (the envelope's chunk list), decided from the store alone.

A driver (`syncpeer.io.api` over aiohttp, or a simulator) turns a request into the few
values these functions take and sends what they return: an `Answer` (status, headers, a
JSON body) or, for an envelope, an `Answer` for the head and the `Slice` of the envelope's
bytes to send after it, which the driver reads from wherever it keeps them. The mutants of
the serving side (`stale-etag`, `forget-tombstone`) are decided here, so every driver has
them.
"""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from syncpeer.core import protocol
from syncpeer.core.chunks import ChunkList
from syncpeer.core.errors import InvalidName
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import Mutants
from syncpeer.core.names import validate_name
from syncpeer.core.protocol import Mismatch, Versions
from syncpeer.core.store import Store, StoredFile

if TYPE_CHECKING:
    from syncpeer.core.dht.protocol import DhtProtocol

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: `status`, `headers`, and a JSON `body` (None: empty, or the bytes
    of a `Slice` follow)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Slice:
    """Bytes `first` to `last` (inclusive) of `file`'s envelope: what follows the head."""

    file: StoredFile
    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """Every error answer is `{"error": message}`."""
    return Answer(status, dict(headers or {}), {"error": message})


def parse_range(header: str, size: int) -> tuple[int, int]:
    """Inclusive (first, last) byte positions of a single range; ValueError when unservable."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise ValueError(f"unsupported Range {header!r}; use bytes=N- or bytes=N-M")
    if match.group(1) == "":
        suffix = int(match.group(2))
        if suffix == 0:
            raise ValueError("empty suffix range")
        return max(0, size - suffix), size - 1
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else size - 1
    if first >= size or last < first:
        raise ValueError(f"range {header!r} is outside 0..{size - 1}")
    return first, min(last, size - 1)


@functools.lru_cache(maxsize=1024)
def _http_date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-None-Match / If-Match header names `etag` (weak or strong) or is "*"."""
    tokens = [token.strip().removeprefix("W/") for token in header.split(",")]
    return "*" in tokens or etag in tokens


@dataclass(frozen=True)
class Refused:
    """A poll offering no version this node speaks: the 426 to answer, and the log line
    (None: this mismatch was logged for this peer already)."""

    answer: Answer
    log: LogEvent | None


class Negotiator:
    """A node's side of the version negotiation on polls (`syncpeer.core.protocol`): the
    version agreed with each poll, or a 426 naming the versions this node speaks, logged
    once per peer (until it agrees again), not every poll."""

    def __init__(self, versions: Versions) -> None:
        self.versions = versions
        self._refused: dict[str | None, str] = {}  # peer -> the mismatch logged for it

    def poll(self, header: str | None, peer: str | None, trace_id: str | None) -> str | Refused:
        agreed = protocol.answer(self.versions, protocol.parse_header(header))
        if not isinstance(agreed, Mismatch):
            self._refused.pop(peer, None)
            return agreed.version
        log = None
        if self._refused.get(peer) != agreed.message:
            self._refused[peer] = agreed.message
            fields = {"trace_id": trace_id, "peer": peer, "error": agreed.message}
            log = LogEvent("protocol_mismatch", "error", fields)
        body = {
            "error": agreed.message,
            "code": protocol.MISMATCH_CODE,
            "protocols": list(agreed.ours),
        }
        headers = {protocol.HEADER: self.versions.header()}
        return Refused(Answer(protocol.MISMATCH_STATUS, headers, body), log)


def listing(
    store: Store,
    instance: str,
    mutants: Mutants,
    version: str,
    *,
    if_none_match: str | None = None,
    if_modified_since: float | None = None,
    author: str | None = None,
) -> Answer:
    """`GET /files`: the current files (of `author`, when given), or 304 when the friend's
    ETag (else its If-Modified-Since, in epoch seconds) says it has them already.

    The ETag is `"<instance>-<generation>"`: the instance (random per start) keeps a
    restarted node from matching an ETag of its previous life. `version`: the protocol
    version the poll agreed on (`Negotiator.poll`), named in the answer.
    """
    generation = 0 if "stale-etag" in mutants else store.generation
    etag = f'"{instance}-{generation}"'
    headers = {
        "ETag": etag,
        "Last-Modified": _http_date(store.last_modified),
        "Cache-Control": "no-cache",
        protocol.HEADER: version,
    }
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            return Answer(304, headers)
    elif if_modified_since is not None and int(store.last_modified) <= if_modified_since:
        return Answer(304, headers)
    hide_deletes = "forget-tombstone" in mutants
    files = [f.listing_json() for f in store.files(author) if not (f.deleted and hide_deletes)]
    return Answer(200, headers, {"files": files, "generation": store.generation})


def envelope(
    store: Store, name: str, *, if_match: str | None = None, range_header: str | None = None
) -> tuple[Answer, Slice | None]:
    """`GET /files/{name}`: the head of the answer and the slice of the current envelope to
    send after it (None: the answer is an error, with its JSON body).

    If-Match not naming the current envelope is 412 (its version changed since the
    friend's listing); a Range is answered 206 with Content-Range, or 416 when it cannot be.
    """
    try:
        name = validate_name(name)
    except InvalidName as problem:
        return error(400, str(problem)), None
    file = store.current(name)
    if file is None:
        return error(404, f"no file named {name!r}"), None
    etag = f'"{file.sha256}"'
    if if_match is not None and not etag_matches(if_match, etag):
        return error(412, f"current envelope of {name!r} is {etag}, not {if_match}"), None
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    if file.trace_id:
        headers["X-Trace-Id"] = file.trace_id
    first, last, status = 0, file.size - 1, 200
    if range_header is not None:
        try:
            first, last = parse_range(range_header, file.size)
        except ValueError as problem:
            return error(416, str(problem), {"Content-Range": f"bytes */{file.size}"}), None
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{file.size}"
    part = Slice(file, first, last)
    headers["Content-Length"] = str(part.length)
    return Answer(status, headers), part


class ChunkLists:
    """The chunk lists of the last envelopes asked for, by SHA-256: each computed once."""

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self._lists: dict[str, ChunkList] = {}

    def of(self, file: StoredFile, read: Callable[[StoredFile], bytes]) -> ChunkList:
        found = self._lists.get(file.sha256)
        if found is None:
            found = ChunkList.of(read(file))
            if len(self._lists) >= self.keep:
                self._lists.pop(next(iter(self._lists)))
            self._lists[file.sha256] = found
        return found


def chunk_list(
    store: Store,
    name: str,
    lists: ChunkLists,
    read: Callable[[StoredFile], bytes],
    *,
    if_match: str | None = None,
) -> Answer:
    """v1.1's `GET /files/{name}/chunks`: the current envelope's chunk hashes (`read` gives
    its bytes), with If-Match pinning which envelope as for the envelope itself."""
    try:
        name = validate_name(name)
    except InvalidName as problem:
        return error(400, str(problem))
    file = store.current(name)
    if file is None:
        return error(404, f"no file named {name!r}")
    etag = f'"{file.sha256}"'
    if if_match is not None and not etag_matches(if_match, etag):
        return error(412, f"current envelope of {name!r} is {etag}, not {if_match}")
    return Answer(200, {"ETag": etag}, lists.of(file, read).to_json())


def ready(wants_dht: bool, dht: DhtProtocol | None) -> Answer:
    """`GET /ready`: 200 once the node can do its job; with a DHT (`wants_dht`) joined
    through bootstrap nodes, when it has joined and knows a contact (`dht`: None while it
    has not started); 503 with how far it got until then."""
    if not wants_dht or (dht is not None and dht.ready):
        return Answer(200, {}, {"status": "ready"})
    joined = dht is not None and dht.joined
    contacts = len(dht.table) if dht is not None else 0
    return Answer(503, {}, {"status": "joining", "joined": joined, "contacts": contacts})


def served_event(part: Slice, trace_id: str | None, outcome: str, peer: str | None) -> LogEvent:
    """The `file_served` log line of an envelope's bytes sent (or cut off: `outcome`)."""
    file = part.file
    return LogEvent(
        "file_served",
        "info",
        {
            "trace_id": trace_id or file.trace_id,
            "name": file.name,
            "version": file.version,
            "author": file.author,
            "first": part.first,
            "last": part.last,
            "outcome": outcome,
            "peer": peer,
        },
    )
