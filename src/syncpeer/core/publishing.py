"""What a node signs itself, sans-IO: the next version of a name (a file, or the tombstone of
a delete), and what it says about it in its log. The drivers (`syncpeer.io.node`, the
simulator's) store the bytes durably and write the line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from syncpeer.core import envelope
from syncpeer.core.identity import Identity, IdentityCard, RandomSource
from syncpeer.core.logevent import LogEvent
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.store import Decision, Store, StoredFile
from syncpeer.core.tombstone import seal_tombstone


def stored(data: bytes, mutants: Mutants = NO_MUTANTS) -> StoredFile:
    """What the store knows of an envelope, once it verifies (InvalidEnvelope otherwise)."""
    verified = envelope.verify(data, mutants)
    return StoredFile.from_envelope(verified, len(data), hashlib.sha256(data).hexdigest())


def seal_next(
    identity: Identity,
    store: Store,
    name: str,
    *,
    content: bytes | None,
    recipients: Sequence[IdentityCard] | None,
    timestamp: float,
    random: RandomSource,
    trace_id: str,
) -> bytes:
    """The envelope of the next version of `name`: `content` for `recipients` (None: public),
    or, with `content` None, the tombstone that deletes it."""
    version = store.next_version(name)
    if content is None:
        return seal_tombstone(
            identity,
            name=name,
            version=version,
            timestamp=timestamp,
            random=random,
            trace_id=trace_id,
        )
    return envelope.seal(
        identity,
        name=name,
        version=version,
        timestamp=timestamp,
        plaintext=content,
        recipients=recipients,
        random=random,
        trace_id=trace_id,
    )


def sealed_event(file: StoredFile, decision: Decision, trace_id: str) -> LogEvent:
    """`file_published`, or `file_deleted` for a tombstone."""
    replaced = None if decision.displaced is None else decision.displaced.version
    fields = {"component": "store", "trace_id": trace_id, "name": file.name}
    if file.deleted:
        return LogEvent(
            "file_deleted", "info", fields | {"version": file.version, "replaced": replaced}
        )
    return LogEvent(
        "file_published",
        "info",
        fields
        | {
            "version": file.version,
            "size": file.plain_size,
            "envelope_size": file.size,
            "public": file.public,
            "recipients": list(file.recipients),
            "replaced": replaced,
        },
    )
