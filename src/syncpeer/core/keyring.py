"""The friends keyring: verified identity cards and the address where each friend listens.

Only friends are polled for files and only friends can be named as recipients. The keyring is
a plain value; `syncpeer.io.datadir` persists it as friends.json.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from syncpeer.core.errors import InvalidCard, UnknownFriend
from syncpeer.core.identity import IdentityCard
from syncpeer.core.logevent import LogEvent


def parse_address(address: object) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port") and check the port; raise ValueError saying why."""
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(f"address must be 'host:port', got {address!r}")
    host, _, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"address {address!r} has no host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"address {address!r} needs a port between 1 and 65535")
    return host, int(port_text)


@dataclass(frozen=True)
class Friend:
    card: IdentityCard
    address: str

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint

    @property
    def name(self) -> str:
        return self.card.name

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "address": self.address,
            "card": self.card.to_json(),
        }

    @classmethod
    def from_json(cls, data: object) -> Friend:
        """Parse {"card": {...}, "address": "host:port"}; raises InvalidCard or ValueError."""
        if not isinstance(data, dict):
            raise ValueError("friend must be a JSON object with 'card' and 'address'")
        if "card" not in data:
            raise InvalidCard("friend has no 'card'")
        card = IdentityCard.from_json(data["card"])
        address = data.get("address")
        if not isinstance(address, str):
            raise ValueError("friend 'address' must be a 'host:port' string")
        parse_address(address)
        return cls(card, address)


class Keyring:
    """Friends by fingerprint. The node's own fingerprint can never be a friend."""

    def __init__(self, own_fingerprint: str, friends: Iterable[Friend] = ()) -> None:
        self.own_fingerprint = own_fingerprint
        self._friends: dict[str, Friend] = {}
        for friend in friends:
            self.add(friend)

    def add(self, friend: Friend) -> bool:
        """Add or update a friend; True when it is new, False when its entry was replaced."""
        if friend.fingerprint == self.own_fingerprint:
            raise ValueError("a node cannot add its own card as a friend")
        is_new = friend.fingerprint not in self._friends
        self._friends[friend.fingerprint] = friend
        return is_new

    def remove(self, fingerprint: str) -> Friend:
        friend = self._friends.pop(fingerprint, None)
        if friend is None:
            raise UnknownFriend(fingerprint)
        return friend

    def get(self, fingerprint: str) -> Friend | None:
        return self._friends.get(fingerprint)

    def cards_for(self, fingerprints: Iterable[str]) -> list[IdentityCard]:
        """The cards of the named friends; UnknownFriend names the first stranger."""
        cards = []
        for fingerprint in fingerprints:
            if fingerprint == self.own_fingerprint:
                continue  # the author is always a recipient; naming it is harmless
            friend = self._friends.get(fingerprint)
            if friend is None:
                raise UnknownFriend(fingerprint)
            cards.append(friend.card)
        return cards

    def __iter__(self) -> Iterator[Friend]:
        return iter(list(self._friends.values()))

    def __len__(self) -> int:
        return len(self._friends)

    def to_json(self) -> dict[str, Any]:
        return {"friends": [friend.to_json() for friend in self._friends.values()]}

    @classmethod
    def from_json(cls, own_fingerprint: str, data: object) -> Keyring:
        if not isinstance(data, dict) or not isinstance(data.get("friends"), list):
            raise ValueError("friends file must be an object with a 'friends' list")
        return cls(own_fingerprint, (Friend.from_json(item) for item in data["friends"]))


def friend_event(friend: Friend, added: bool, trace_id: str) -> LogEvent:
    """`friend_added`, or `friend_updated` when its card was known (a new address)."""
    return LogEvent(
        "friend_added" if added else "friend_updated",
        "info",
        {
            "trace_id": trace_id,
            "friend": friend.fingerprint,
            "friend_name": friend.name,
            "address": friend.address,
        },
    )
