"""The simulator's event loop, virtual clock and simulated disk."""

from __future__ import annotations

import threading

import pytest

from peerlab.clock import REAL_CLOCK, Scheduler
from peerlab.errors import PeerlabError
from peerlab.sim.clock import EPOCH, VirtualClock
from peerlab.sim.disk import Blobs, Disk
from peerlab.sim.loop import EventLoop


def test_timers_fire_in_time_then_set_order_and_time_jumps() -> None:
    loop = EventLoop()
    fired: list[str] = []
    loop.call_at(5.0, fired.append, "late")
    loop.call_at(1.0, fired.append, "first at 1")
    loop.call_at(1.0, fired.append, "second at 1")
    cancelled = loop.call_at(2.0, fired.append, "cancelled")
    cancelled.cancel()
    assert loop.run_until(3.0) is False
    assert fired == ["first at 1", "second at 1"]
    assert loop.now == 3.0, "time moves to the deadline when nothing else is due"
    loop.run_for(100.0)
    assert fired[-1] == "late" and loop.now == 103.0 and loop.events == 3


def test_a_run_stops_when_its_condition_holds_and_calls_its_hooks() -> None:
    loop = EventLoop()
    done = threading.Event()
    runs: list[float] = []
    loop.after.append(lambda: runs.append(loop.now))
    loop.call_later(0.5, done.set)
    loop.call_later(0.7, done.clear)
    assert loop.run_for(10.0, done.is_set) is True
    assert loop.now == 0.5 and runs == [0.5]
    with pytest.raises(PeerlabError):
        loop.run_for(-1.0)


def test_the_virtual_clock_is_a_clock_whose_waits_run_the_simulation() -> None:
    clock = VirtualClock()
    assert isinstance(clock, Scheduler) and not isinstance(REAL_CLOCK, Scheduler)
    seen: list[float] = []
    clock.call_later(2.0, lambda: seen.append(clock.monotonic()))
    clock.sleep(3.0)
    assert seen == [2.0] and clock.monotonic() == 3.0 and clock.time() == EPOCH + 3.0
    event = threading.Event()
    clock.call_later(1.5, event.set)
    assert clock.wait(event, 10.0) is True and clock.monotonic() == 4.5
    assert clock.wait(threading.Event(), 2.0) is False and clock.monotonic() == 6.5


def test_a_crash_keeps_what_was_synced_and_a_clean_exit_everything() -> None:
    disk = Disk()
    disk.write("keys.json", b"key", sync=True)
    disk.write("files/a.spe", b"A")
    disk.write("files/b.spe", b"B")
    disk.rename("files/b.spe", "files/.versions/b.spe")
    disk.sync_dir("files/")  # a.spe and b.spe's leaving; not .versions/
    disk.crash()
    assert disk.read("keys.json") == b"key" and disk.read("files/a.spe") == b"A"
    assert not disk.exists("files/b.spe") and not disk.exists("files/.versions/b.spe")
    disk.write("files/c.spe", b"C")
    disk.sync_all()
    disk.crash()
    assert disk.read("files/c.spe") == b"C"


def test_a_partial_file_grows_in_place_and_equal_contents_are_shared() -> None:
    blobs = Blobs()
    one, two = Disk(blobs), Disk(blobs)
    one.truncate("p.part", 3)
    one.write_at("p.part", 3, b"abc")
    one.write_at("p.part", 1, b"Z")
    assert one.read("p.part") == b"\0Z\0abc"
    one.rename("p.part", "done", share=True)
    two.write("done", b"\0Z\0abc", share=True)
    assert one.read("done") is two.read("done") and len(blobs) == 1
