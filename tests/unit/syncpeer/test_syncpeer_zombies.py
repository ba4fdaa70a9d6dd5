"""Zombie files and phantom deletes in the store model, as properties: whatever order an
author's versions and tombstones arrive in, duplicated, and with restarts that reload the
store from what is on disk, the newest version is current and nothing held is lost. A
tombstone removes only what it supersedes; the `delete-wins` mutant breaks that and
hypothesis finds the order that shows it."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import find, given
from hypothesis import strategies as st

from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.store import Store, StoredFile, history_filename

AUTHOR = "a" * 40


def version(number: int, deleted: bool) -> StoredFile:
    return StoredFile(
        name="plan.txt",
        author=AUTHOR,
        version=number,
        timestamp=1000.0 + number,
        size=10,
        sha256=f"{number:04d}{int(deleted)}".ljust(64, "0"),
        public=deleted,
        recipients=(AUTHOR,),
        plain_size=0 if deleted else 1,
        plain_sha256="0" * 64,
        trace_id=None,
        deleted=deleted,
    )


@dataclass(frozen=True)
class Run:
    """The author's versions (True: a tombstone), the order the receiver gets them in (by
    index, repeats allowed), and after which deliveries it restarts."""

    deletes: tuple[bool, ...]
    order: tuple[int, ...]
    restarts: frozenset[int]


@st.composite
def runs(draw: st.DrawFn) -> Run:
    deletes = tuple(draw(st.lists(st.booleans(), min_size=2, max_size=6)))
    # The author never deletes twice in a row: a delete needs something to delete.
    deletes = tuple(d and not (i and deletes[i - 1]) for i, d in enumerate(deletes))
    indices = st.integers(0, len(deletes) - 1)
    order = tuple(draw(st.permutations(range(len(deletes))))) + tuple(
        draw(st.lists(indices, max_size=4))  # replays of versions already delivered
    )
    restarts = frozenset(draw(st.sets(st.integers(0, len(order) - 1), max_size=3)))
    return Run(deletes, order, restarts)


def receive(run: Run, mutants: Mutants = NO_MUTANTS) -> Store:
    """Deliver the run to a fresh store; a restart rebuilds it the way a node does at
    start (`FileStore.load`): the current file first, then `.versions/` in name order."""
    files = [version(i + 1, deleted) for i, deleted in enumerate(run.deletes)]
    store = Store(wall=0.0, mutants=mutants)
    for step, index in enumerate(run.order):
        decision = store.decide(files[index])
        store.commit(decision, wall=float(step))
        if step in run.restarts:
            kept = sorted(store.history("plan.txt"), key=history_filename)
            on_disk = [store.current("plan.txt"), *kept]
            store = Store(wall=float(step), mutants=mutants)
            for file in on_disk:
                if file is not None:
                    store.commit(store.decide(file), wall=float(step))
    return store


def newest_is_current(run: Run, mutants: Mutants = NO_MUTANTS) -> bool:
    store = receive(run, mutants)
    current = store.current("plan.txt")
    held = {f.version for f in store.history("plan.txt")} | {current.version if current else 0}
    return (
        current is not None
        and current.version == len(run.deletes)
        and current.deleted == run.deletes[-1]
        and held == set(range(1, len(run.deletes) + 1))
    )


@given(runs())
def test_the_newest_version_wins_whatever_the_order_and_the_restarts(run: Run) -> None:
    assert newest_is_current(run), run


def test_a_delete_that_always_wins_is_found_out() -> None:
    """The oracle can fail: with `delete-wins`, hypothesis finds a run (the smallest: v1
    deleted as v2, re-created as v3, the tombstone arriving last) where it does."""
    mutants = Mutants.of(["delete-wins"])
    found = find(runs(), lambda run: not newest_is_current(run, mutants))
    assert not newest_is_current(found, mutants) and newest_is_current(found)
    assert found.deletes[-1] is False and any(found.deletes)
