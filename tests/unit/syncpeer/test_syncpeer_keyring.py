"""The friends keyring and friend addresses."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from syncpeer.core.errors import InvalidCard, UnknownFriend
from syncpeer.core.keyring import Friend, Keyring, parse_address


def test_add_update_remove_and_round_trip(make_identity: Callable) -> None:
    me, bob = make_identity("me"), make_identity("bob")
    keyring = Keyring(me.fingerprint)
    assert keyring.add(Friend(bob.card, "127.0.0.1:9000")) is True
    assert keyring.add(Friend(bob.card, "127.0.0.2:9000")) is False
    assert keyring.get(bob.fingerprint).address == "127.0.0.2:9000"  # type: ignore[union-attr]
    restored = Keyring.from_json(me.fingerprint, keyring.to_json())
    assert [friend.fingerprint for friend in restored] == [bob.fingerprint]
    keyring.remove(bob.fingerprint)
    assert len(keyring) == 0
    with pytest.raises(UnknownFriend):
        keyring.remove(bob.fingerprint)


def test_own_card_cannot_be_a_friend(make_identity: Callable) -> None:
    me = make_identity("me")
    with pytest.raises(ValueError, match="own card"):
        Keyring(me.fingerprint).add(Friend(me.card, "127.0.0.1:9000"))


def test_cards_for_names_the_unknown_fingerprint(make_identity: Callable) -> None:
    me, bob = make_identity("me"), make_identity("bob")
    keyring = Keyring(me.fingerprint, [Friend(bob.card, "h:1")])
    assert keyring.cards_for([bob.fingerprint, me.fingerprint]) == [bob.card]
    with pytest.raises(UnknownFriend, match="f00d"):
        keyring.cards_for([bob.fingerprint, "f00d"])


def test_friend_from_json_checks_card_and_address(make_identity: Callable) -> None:
    card = make_identity("bob").card.to_json()
    assert Friend.from_json({"card": card, "address": "[::1]:80"}).address == "[::1]:80"
    with pytest.raises(ValueError, match="port"):
        Friend.from_json({"card": card, "address": "host:0"})
    with pytest.raises(InvalidCard):
        Friend.from_json({"card": {**card, "name": "eve"}, "address": "host:1"})


@pytest.mark.parametrize("address", ["nohost", ":80", "host:x", "host:70000", 7])
def test_bad_addresses_are_rejected(address: object) -> None:
    with pytest.raises(ValueError):
        parse_address(address)
