"""Finding a friend by fingerprint alone over asyncio: the DHT gives the address, the friend
gives the card (`syncpeer.core.discovery` says what both must show).
"""

from __future__ import annotations

import aiohttp
from yarl import URL

from syncpeer.core.dht.lookup import LookupResult
from syncpeer.core.discovery import (
    DiscoveryError,
    address_of,
    friend_from_card,
    target_of,
    unanswered,
)
from syncpeer.core.keyring import Friend
from syncpeer.io.dht_transport import DhtService

__all__ = ["DiscoveryError", "discover_friend"]


async def discover_friend(
    dht: DhtService, session: aiohttp.ClientSession, fingerprint: object, timeout: float
) -> tuple[Friend, LookupResult]:
    """The friend with `fingerprint`: its address from the DHT, its card from that address."""
    result = await dht.lookup(target_of(fingerprint))
    address = address_of(fingerprint, result)
    try:
        async with session.get(
            URL(f"http://{address}/identity"), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            raw = await response.json(content_type=None) if response.status == 200 else None
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as problem:
        raise unanswered(fingerprint, address, problem, result) from None
    return friend_from_card(fingerprint, address, status, raw, result), result
