"""The store model: the version rule, history keeping, and safe names."""

from __future__ import annotations

import pytest

from syncpeer.core.errors import InvalidName
from syncpeer.core.names import validate_name
from syncpeer.core.store import Placement, Store, StoredFile, history_filename

ALICE, BOB = "a" * 40, "b" * 40


def stored(
    version: int, timestamp: float = 100.0, author: str = ALICE, name: str = "f"
) -> StoredFile:
    return StoredFile(
        name=name,
        author=author,
        version=version,
        timestamp=timestamp,
        size=10,
        sha256=f"{version:02d}{author[:2]}{int(timestamp):04d}".ljust(64, "0"),
        public=False,
        recipients=(author,),
        plain_size=1,
        plain_sha256="0" * 64,
        trace_id=None,
    )


def accept(store: Store, file: StoredFile) -> Placement:
    decision = store.decide(file)
    store.commit(decision, wall=500.0)
    return decision.placement


def test_higher_version_wins_and_old_current_is_kept() -> None:
    store = Store(wall=0.0)
    v1, v2 = stored(1), stored(2)
    assert accept(store, v1) is Placement.CURRENT
    decision = store.decide(v2)
    assert decision.placement is Placement.CURRENT and decision.displaced == v1
    store.commit(decision, wall=7.0)
    assert store.current("f") == v2
    assert store.history("f") == [v1]
    assert store.generation == 2 and store.last_modified == 7.0


@pytest.mark.parametrize(
    ("held", "incoming", "winner"),
    [
        (stored(2, 100.0, BOB), stored(3, 50.0, ALICE), "incoming"),  # version first
        (stored(2, 100.0, BOB), stored(2, 101.0, ALICE), "incoming"),  # then timestamp
        (stored(2, 100.0, ALICE), stored(2, 100.0, BOB), "incoming"),  # then author
        (stored(2, 100.0, BOB), stored(2, 100.0, ALICE), "held"),
        (stored(3, 1.0, ALICE), stored(2, 999.0, BOB), "held"),
    ],
)
def test_current_is_greatest_version_timestamp_author(
    held: StoredFile, incoming: StoredFile, winner: str
) -> None:
    store = Store(wall=0.0)
    accept(store, held)
    accept(store, incoming)
    assert store.current("f") == (incoming if winner == "incoming" else held)
    # Nothing is lost: the loser is in history either way.
    assert store.history("f") == [held if winner == "incoming" else incoming]


def test_concurrent_edits_resolve_the_same_on_both_sides() -> None:
    base, on_a, on_b = stored(1), stored(2, 200.0, ALICE), stored(2, 201.0, BOB)
    side_a, side_b = Store(wall=0.0), Store(wall=0.0)
    for store, first, second in ((side_a, on_a, on_b), (side_b, on_b, on_a)):
        accept(store, base)
        accept(store, first)
        accept(store, second)
    assert side_a.current("f") == side_b.current("f") == on_b
    assert set(side_a.history("f")) == set(side_b.history("f")) == {base, on_a}


def test_older_unheld_version_goes_to_history_and_held_is_duplicate() -> None:
    store = Store(wall=0.0)
    accept(store, stored(3))
    generation = store.generation
    assert accept(store, stored(2)) is Placement.HISTORY
    assert store.current("f") == stored(3)
    assert store.generation == generation  # the listing did not change
    assert accept(store, stored(2)) is Placement.DUPLICATE
    assert accept(store, stored(3)) is Placement.DUPLICATE


def test_next_version_is_above_everything_held() -> None:
    store = Store(wall=0.0)
    assert store.next_version("f") == 1
    accept(store, stored(4))
    accept(store, stored(7, author=BOB, name="g"))
    accept(store, stored(2))
    assert store.next_version("f") == 5
    assert store.next_version("g") == 8


def test_stale_decision_is_refused() -> None:
    store = Store(wall=0.0)
    first, second = store.decide(stored(1)), store.decide(stored(2))
    store.commit(first, wall=1.0)
    with pytest.raises(RuntimeError, match="stale"):
        store.commit(second, wall=2.0)


def test_listing_filters_by_author() -> None:
    store = Store(wall=0.0)
    accept(store, stored(1, name="x"))
    accept(store, stored(1, author=BOB, name="y"))
    assert [file.name for file in store.files()] == ["x", "y"]
    assert [file.name for file in store.files(author=BOB)] == ["y"]


def test_history_filename_names_version_and_author() -> None:
    assert history_filename(stored(2, author=BOB, name="shared.txt")).startswith(
        "shared.txt.v2.bbbbbbbb."
    )


@pytest.mark.parametrize(
    "name", ["../secret", "a/b", "..", "a\\b", "nul\x00byte", ".versions", "", "tab\tname", 7]
)
def test_unsafe_names_are_rejected(name: object) -> None:
    with pytest.raises(InvalidName):
        validate_name(name)


@pytest.mark.parametrize("name", ["hello.txt", "shared.txt", "Ünïcode name.md", "a-b_c.1"])
def test_flat_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name
