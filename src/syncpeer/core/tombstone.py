"""Deletes as data: a tombstone is the next version of a name, signed by the deleting node,
public, with no content and `deleted: true` in its header.

Because it is a version like any other, the version rule does all the work: it replaces
every older version wherever it arrives, an older version that arrives later (out of order,
or replayed by a peer) goes to history instead of resurrecting the file, and a later publish
(one version higher) brings the name back. A tombstone is public whatever it deletes: it
carries no content, and every listing already shows every name.
"""

from __future__ import annotations

from syncpeer.core import envelope
from syncpeer.core.identity import Identity, RandomSource


def seal_tombstone(
    author: Identity,
    *,
    name: str,
    version: int,
    timestamp: float,
    random: RandomSource,
    trace_id: str | None = None,
) -> bytes:
    """The signed envelope that deletes `name` as of `version`."""
    return envelope.seal(
        author,
        name=name,
        version=version,
        timestamp=timestamp,
        plaintext=b"",
        recipients=None,
        random=random,
        trace_id=trace_id,
        deleted=True,
    )
