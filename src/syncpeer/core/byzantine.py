"""Lying peers, sans-IO: what a node in a byzantine mode lists and serves to its friends.

    corrupt        serves every envelope with altered bytes, listed under the altered
                   bytes' size and SHA-256: only the author's signature shows the forgery
    lie-size       lists every envelope 100 bytes longer than it is
    lie-hash       lists every envelope under a SHA-256 that is not its own
    lie-timestamp  lists every envelope an hour later than its signed timestamp
    selective      for each file it publishes, signs a second envelope with other content
                   under the same version and timestamp, and shows it to every other peer
                   (equivocation)
    replay         lists and serves the oldest version it holds of each file as current
    slowloris      lists honestly and answers downloads honestly (Range and If-Match too),
                   sends half of what was asked at once, then a few bytes now and then,
                   forever: the friend that answers and then stalls mid-body; its v1.1
                   chunk lists are honest and sent at once, so the stall comes mid-body,
                   where a download has chunks to keep

The other liars' envelopes ignore If-Match and Range, as a liar would; their listings carry
no ETag and no protocol version, so every poll gets the lie in full and friends speak v1.0
to them (a chunk list asked of one anyway is 404, as a v1.0 node answers). A driver
(`syncpeer.io.byzantine` in front of the aiohttp API, or a simulator) asks a `Liar` what to
answer and reads envelope bytes for it; peerlab's chaos tests switch a mode on with
`SYNCPEER_BYZANTINE`.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any

from syncpeer.core import envelope
from syncpeer.core.encoding import canonical_json
from syncpeer.core.errors import InvalidEnvelope, NotARecipient, UnknownFriend
from syncpeer.core.identity import Identity, RandomSource
from syncpeer.core.keyring import Keyring
from syncpeer.core.logevent import LogEvent
from syncpeer.core.publishing import stored
from syncpeer.core.serve import Answer, error
from syncpeer.core.store import Store, StoredFile

MODES: dict[str, str] = {
    "corrupt": "serves altered envelope bytes under matching listing hashes",
    "lie-size": "lists every envelope with a wrong size",
    "lie-hash": "lists every envelope with a wrong SHA-256",
    "lie-timestamp": "lists every envelope an hour later than it was signed",
    "selective": "shows half of its peers a different signed version of its files",
    "replay": "lists and serves the oldest version it holds as current",
    "slowloris": "answers downloads, then trickles a few bytes now and then, forever",
}
TRICKLING = "slowloris"  # honest in what it says, slow in how it sends
HONEST = "off"
VARIABLE = "SYNCPEER_BYZANTINE"
TIMESTAMP_LIE_S = 3600.0
SIZE_LIE_BYTES = 100
ALTERNATE_SUFFIX = b"\n(what the other half of my peers see)"  # the second envelope's
TRICKLE_BYTES = 8  # what a slowloris sends ...
TRICKLE_EVERY_S = 1.0  # ... this often, once the first half of the answer went out
_HEADER_LENGTH = struct.Struct(">I")
_BODY_LENGTH = struct.Struct(">Q")

Reader = Callable[[StoredFile], bytes]
"""The bytes of an envelope the node holds (current or kept)."""


def mode_of(value: str | None) -> str | None:
    """The byzantine mode a node's `SYNCPEER_BYZANTINE` names (None: honest); ValueError
    naming an unknown one."""
    mode = (value or "").strip() or HONEST
    if mode == HONEST:
        return None
    if mode not in MODES:
        raise ValueError(f"{VARIABLE} is {mode!r}; use one of {', '.join(MODES)} or {HONEST!r}")
    return mode


class Liar:
    """The public API of a node in byzantine `mode`: its listings and envelopes, per peer.

    A peer is named by its address (`requester`); None is the test harness (requests
    without a trace id), which always sees what the first group sees.
    """

    def __init__(self, mode: str, store: Store, read: Reader) -> None:
        self.mode = mode
        self.store = store
        self.read = read
        self._peers: dict[str, int] = {}  # peer address -> order of first contact
        self._alternates: dict[str, tuple[StoredFile, bytes]] = {}
        self._corrupted: dict[str, bytes] = {}  # envelope sha256 -> altered bytes

    @property
    def trickles(self) -> bool:
        """A slowloris: its listings and answers are the honest ones, sent `pace` slowly."""
        return self.mode == TRICKLING

    @staticmethod
    def pace(length: int) -> tuple[int, int, float]:
        """How a slowloris sends an answer of `length` bytes: (fast, piece, every): the first
        `fast` at once, then `piece` bytes every `every` seconds."""
        return length // 2, TRICKLE_BYTES, TRICKLE_EVERY_S

    # ------------------------------------------------------------------ what each peer sees

    def _second_group(self, requester: str | None) -> bool:
        """Peers alternate between two groups in the order they first asked."""
        if requester is None:
            return False
        order = self._peers.setdefault(requester, len(self._peers))
        return order % 2 == 1

    def shown(self, file: StoredFile, requester: str | None) -> tuple[StoredFile, bytes]:
        """The version of `file`'s name this peer is shown, and the bytes it is served."""
        if self.mode == "replay" and (kept := self.store.history(file.name)):
            oldest = kept[-1]
            return oldest, self.read(oldest)
        alternate = self._alternates.get(file.name)
        if (
            alternate is not None
            and alternate[0].key[:3] == file.key[:3]
            and self._second_group(requester)
        ):
            return alternate
        return file, self.read(file)

    def listing(self, requester: str | None) -> dict[str, Any]:
        """The (lying) body of `GET /files`."""
        entries = []
        for file in self.store.files():
            shown, data = self.shown(file, requester)
            entry: dict[str, Any] = shown.listing_json()
            if self.mode == "corrupt":
                bad = self._corrupt(shown.sha256, data)
                entry["size"], entry["sha256"] = len(bad), hashlib.sha256(bad).hexdigest()
            elif self.mode == "lie-size":
                entry["size"] += SIZE_LIE_BYTES
            elif self.mode == "lie-hash":
                entry["sha256"] = hashlib.sha256(b"lie" + shown.sha256.encode()).hexdigest()
            elif self.mode == "lie-timestamp":
                entry["timestamp"] += TIMESTAMP_LIE_S
            entries.append(entry)
        return {"files": entries, "generation": self.store.generation}

    def envelope(self, name: str, requester: str | None) -> tuple[StoredFile, bytes] | None:
        """What `GET /files/{name}` serves this peer (None: not held)."""
        current = self.store.current(name)
        if current is None:
            return None
        shown, data = self.shown(current, requester)
        if self.mode == "corrupt":
            data = self._corrupt(shown.sha256, data)
        return shown, data

    def chunk_list(self, name: str) -> Answer | None:
        """What `GET /files/{name}/chunks` answers (None: the honest answer, a slowloris's)."""
        if self.trickles:
            return None
        return error(404, f"no chunk list of {name!r}: this node speaks protocol v1.0 only")

    def served_event(self, name: str, shown: StoredFile, peer: str | None, **more: int) -> LogEvent:
        """The `byzantine_served` log line of a lie served to `peer` (a slowloris says where
        the answer began, `first`, and how much went at once, `fast`)."""
        fields = {"component": "http", "name": name, "version": shown.version, **more}
        return LogEvent("byzantine_served", "info", fields | {"mode": self.mode, "peer": peer})

    # ------------------------------------------------------------------ forgeries

    def _corrupt(self, sha256: str, data: bytes) -> bytes:
        if sha256 not in self._corrupted:
            self._corrupted[sha256] = forge(data)
        return self._corrupted[sha256]

    def equivocate(
        self,
        identity: Identity,
        keyring: Keyring,
        name: str,
        plaintext: Callable[[str], bytes],
        random: RandomSource,
    ) -> LogEvent | None:
        """In `selective` mode, sign a second envelope of the version of `name` this node
        just published, with other content, for the second group of peers; the log line
        that says so (None: nothing to equivocate about)."""
        current = self.store.current(name)
        if self.mode != "selective" or current is None:
            return None
        if current.author != identity.fingerprint or current.deleted:
            return None
        try:
            content = plaintext(name) + ALTERNATE_SUFFIX
            others = [r for r in current.recipients if r != identity.fingerprint]
            cards = None if current.public else keyring.cards_for(others)
        except (KeyError, NotARecipient, InvalidEnvelope, UnknownFriend):
            return None
        data = envelope.seal(
            identity,
            name=name,
            version=current.version,
            timestamp=current.timestamp,
            plaintext=content,
            recipients=cards,
            random=random,
            trace_id=current.trace_id,
        )
        file = stored(data)
        self._alternates[name] = (file, data)
        fields = {"name": name, "version": file.version, "sha256": current.sha256}
        return LogEvent("byzantine_equivocated", "warning", fields | {"other": file.sha256})


def forge(data: bytes) -> bytes:
    """Alter an envelope's content and re-frame it under its original signature.

    A public body is replaced and the header's size and SHA-256 follow it, so the only check
    left that can tell is the signature; an encrypted body has one byte flipped (its size
    stays), which the signature catches first and AES-GCM only at decryption.
    """
    (header_length,) = _HEADER_LENGTH.unpack_from(data, 4)
    header_end = 8 + header_length
    header = json.loads(data[8:header_end])
    (body_length,) = _BODY_LENGTH.unpack_from(data, header_end)
    body = data[header_end + 8 : header_end + 8 + body_length]
    signature = data[header_end + 8 + body_length :]
    if header.get("public"):
        body = body[::-1] + b"forged"
        header["size"], header["sha256"] = len(body), hashlib.sha256(body).hexdigest()
    else:
        body = bytes([body[0] ^ 0xFF]) + body[1:]
    header_bytes = canonical_json(header)
    return b"".join(
        (
            data[:4],
            _HEADER_LENGTH.pack(len(header_bytes)),
            header_bytes,
            _BODY_LENGTH.pack(len(body)),
            body,
            signature,
        )
    )
