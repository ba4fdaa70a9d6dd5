"""Finding a friend by fingerprint, sans-IO: what a DHT lookup and the card fetched from the
address it found must show before the node befriends anyone.

The address record found in the DHT is signed by the fingerprint's key; the card fetched
from that address must carry the same fingerprint (whose key signed the card), so neither a
lying DHT node nor whoever answers at the address can make us befriend someone else. A
driver (`syncpeer.io.discovery`, or a simulator) does the lookup and the `GET /identity`.
"""

from __future__ import annotations

from syncpeer.core.dht.ids import parse_id
from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.errors import InvalidCard, SyncpeerError
from syncpeer.core.identity import IdentityCard
from syncpeer.core.keyring import Friend


class DiscoveryError(SyncpeerError):
    """A fingerprint could not be turned into a verified friend; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str, lookup: LookupResult | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.lookup = lookup


def target_of(fingerprint: object) -> int:
    """The DHT key to look up; DiscoveryError (400) when it is not a fingerprint."""
    try:
        return parse_id(fingerprint, "fingerprint")
    except ValueError as problem:
        raise DiscoveryError(400, str(problem)) from None


def address_of(fingerprint: object, result: LookupResult) -> str:
    """Where the lookup says `fingerprint` is reached; DiscoveryError (404) when not found."""
    if result.record is None:
        raise DiscoveryError(
            404,
            f"fingerprint {fingerprint} was not found in the DHT ({result.reason}; "
            f"{len(result.queried)} nodes asked)",
            result,
        )
    return result.record.address


def friend_from_card(
    fingerprint: object, address: str, status: int, raw: object, result: LookupResult
) -> Friend:
    """The friend at `address`, from its `GET /identity` answer (status, parsed JSON)."""
    if status != 200:
        raise DiscoveryError(502, f"{address} answered GET /identity with HTTP {status}", result)
    try:
        card = IdentityCard.from_json(raw)
    except InvalidCard as problem:
        raise DiscoveryError(502, f"{address} served an invalid card: {problem}", result) from None
    if card.fingerprint != fingerprint:
        raise DiscoveryError(
            502, f"{address} served the card of {card.fingerprint}, not of {fingerprint}", result
        )
    return Friend(card, address)


def unanswered(
    fingerprint: object, address: str, problem: object, result: LookupResult
) -> DiscoveryError:
    """The error when the address found did not answer (502)."""
    return DiscoveryError(
        502, f"the address {address} found for {fingerprint} did not answer: {problem}", result
    )
