"""Clock skew: peers an hour apart still order edits by what each had seen (TC-721)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter
from peerlab.systems.syncpeer_checks import check_sync, explain

from .conftest import wait_holds

pytestmark = [pytest.mark.chaos, pytest.mark.sim]

HOUR = 3600.0


def rank(meta: dict) -> tuple:
    return (meta["version"], meta["timestamp"], meta["author"], meta["sha256"])


def test_skewed_peer_does_not_win_forever(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-721: A runs an hour ahead, B an hour behind, C on time (libfaketime). An edit made
    after seeing another always wins over it, whatever the clocks say; concurrent edits
    resolve the same on every peer, the losers are kept; after the clocks swap at run time
    the same holds. Nothing acknowledged is lost."""
    env = peerlab_env
    syncpeer_net(3, skewable=True)
    env.skew("A", HOUR)
    env.skew("B", -HOUR)
    a, b, c = (env.client(n) for n in "ABC")

    def clock_of(client: object, seconds: float) -> Callable[[], bool]:
        def check() -> bool:
            now = env.clock.time()
            meta = client.publish("clock-probe.txt", str(now).encode())  # type: ignore[attr-defined]
            return abs(meta["timestamp"] - env.clock.time() - seconds) < 60

        return check

    env.wait_until(clock_of(a, HOUR), 10, what="A's clock to run an hour ahead")
    env.wait_until(clock_of(b, -HOUR), 10, what="B's clock to run an hour behind")

    first = a.publish("plan.txt", b"A's plan, stamped an hour ahead")
    wait_holds(env, "BC", "plan.txt", lambda f: f["sha256"] == first["sha256"], "A's plan")
    later = b.publish("plan.txt", b"B's edit on top, stamped an hour behind")
    assert later["version"] == first["version"] + 1 and later["timestamp"] < first["timestamp"]
    wait_holds(
        env,
        "ABC",
        "plan.txt",
        lambda f: f["sha256"] == later["sha256"],
        "B's later edit to win despite its older timestamp",
    )

    with env.net.partition([["A"], ["B"], ["C"]]):
        concurrent = [
            x.publish("plan.txt", f"concurrent edit by {n}".encode())
            for n, x in zip("ABC", (a, b, c), strict=True)
        ]
    winner = max(concurrent, key=rank)
    assert winner["author"] == concurrent[0]["author"], "ties go to the later author clock"
    wait_holds(
        env,
        "ABC",
        "plan.txt",
        lambda f: f["sha256"] == winner["sha256"],
        "every peer to resolve the concurrent edits the same way",
    )
    answer = b.publish("plan.txt", b"B answers A's winning edit")
    wait_holds(
        env,
        "ABC",
        "plan.txt",
        lambda f: f["sha256"] == answer["sha256"],
        "B's answer to win: A does not keep winning",
    )

    env.skew("A", -HOUR)  # the clocks swap while the nodes run
    env.skew("B", HOUR)
    env.wait_until(clock_of(b, HOUR), 10, what="B's clock to jump an hour ahead")
    c_edit = c.publish("plan.txt", b"C edits after B")
    wait_holds(
        env,
        "ABC",
        "plan.txt",
        lambda f: f["sha256"] == c_edit["sha256"],
        "C's edit to win over B's, now B's clock is ahead",
    )
    verdicts = check_sync(env)
    assert all(v.ok for v in verdicts), explain(verdicts)
