"""Seeds derive independent, reproducible generators; waits fail with what they waited for."""

import itertools

import pytest

from peerlab.errors import WaitTimeout
from peerlab.seed import derive_rng, derive_seed
from peerlab.wait import wait_until


def test_same_seed_same_choices_different_seed_different() -> None:
    a = [derive_rng(7, "link", "A", "B").random() for _ in range(3)]
    b = [derive_rng(7, "link", "A", "B").random() for _ in range(3)]
    c = [derive_rng(8, "link", "A", "B").random() for _ in range(3)]
    assert a == b
    assert a != c
    assert derive_seed(7, "A", "B") != derive_seed(7, "B", "A")


def test_wait_until_returns_the_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter) >= 3 and "done", 5, interval=0.001) == "done"


def test_wait_until_says_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: False, 0.05, what="the moon", describe=lambda: "still cheese")
    assert "the moon" in str(info.value)
    assert "still cheese" in str(info.value)


def test_wait_until_reports_the_last_error() -> None:
    def broken() -> bool:
        raise ConnectionError("refused")

    with pytest.raises(WaitTimeout, match="refused"):
        wait_until(broken, 0.05)
