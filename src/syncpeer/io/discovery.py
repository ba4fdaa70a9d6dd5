"""Finding a friend by fingerprint alone: the DHT gives the address, the friend gives the card.

The address record found in the DHT is signed by the fingerprint's key; the card fetched
from that address must carry the same fingerprint (whose key signed the card), so neither a
lying DHT node nor whoever answers at the address can make us befriend someone else.
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from syncpeer.core.dht.ids import parse_id
from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.errors import InvalidCard, SyncpeerError
from syncpeer.core.identity import IdentityCard
from syncpeer.core.keyring import Friend
from syncpeer.io.dht_transport import DhtService


class DiscoveryError(SyncpeerError):
    """A fingerprint could not be turned into a verified friend; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str, lookup: LookupResult | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.lookup = lookup


async def discover_friend(
    dht: DhtService, session: aiohttp.ClientSession, fingerprint: object, timeout: float
) -> tuple[Friend, LookupResult]:
    """The friend with `fingerprint`: its address from the DHT, its card from that address."""
    try:
        target = parse_id(fingerprint, "fingerprint")
    except ValueError as error:
        raise DiscoveryError(400, str(error)) from None
    result = await dht.lookup(target)
    if result.record is None:
        raise DiscoveryError(
            404,
            f"fingerprint {fingerprint} was not found in the DHT ({result.reason}; "
            f"{len(result.queried)} nodes asked)",
            result,
        )
    address = result.record.address
    try:
        async with session.get(
            URL(f"http://{address}/identity"), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status != 200:
                raise DiscoveryError(
                    502, f"{address} answered GET /identity with HTTP {response.status}", result
                )
            raw = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        raise DiscoveryError(
            502, f"the address {address} found for {fingerprint} did not answer: {error}", result
        ) from None
    try:
        card = IdentityCard.from_json(raw)
    except InvalidCard as error:
        raise DiscoveryError(502, f"{address} served an invalid card: {error}", result) from None
    if card.fingerprint != fingerprint:
        raise DiscoveryError(
            502,
            f"{address} served the card of {card.fingerprint}, not of {fingerprint}",
            result,
        )
    return Friend(card, address), result
