"""The fault-fidelity checker, on histories written by hand."""

from __future__ import annotations

from peerlab.checkers.fidelity import fault_fidelity, needs_fidelity
from peerlab.history import History

SPLIT = {"kind": "partition", "name": "partition", "groups": [["A"], ["B"]], "one_way": False}


def sample(history: History, cut: list[list[str]], **links: tuple[int, int]) -> None:
    """links: `A_B_tcp=(up, down)`."""
    rows = []
    for key, (up, down) in links.items():
        src, dst, protocol = key.split("_")
        rows.append({"src": src, "dst": dst, "protocol": protocol, "up": up, "down": down})
    history.event("link_bytes", None, cut=cut, links=rows)


def cut_and_heal(before: dict, after: dict, cut=(("A", "B"), ("B", "A"))) -> History:
    history = History()
    history.fault("apply", SPLIT)
    sample(history, [list(pair) for pair in cut], **before)
    history.fault("remove", SPLIT)
    sample(history, [], **after)
    return history


def test_no_byte_on_a_cut_link_is_valid() -> None:
    history = cut_and_heal({"A_B_tcp": (100, 50)}, {"A_B_tcp": (100, 50), "A_C_tcp": (9, 9)})
    verdict = fault_fidelity(history)
    assert verdict.ok
    assert verdict.stats == {
        "samples": 2,
        "cut_intervals": 1,
        "links_cut": 2,
        "cut_link_intervals": 2,
        "leaked_bytes": 0,
        "unattributed": 0,
        "unattributed_at_exit": 0,
    }


def test_bytes_on_a_cut_link_name_the_link_the_interval_and_the_count() -> None:
    history = cut_and_heal({"A_B_tcp": (100, 50)}, {"A_B_tcp": (100, 57)})
    verdict = fault_fidelity(history)
    assert verdict.valid == "invalid"
    (leak,) = verdict.evidence["leaks"]
    assert leak["link"] == "A->B" and leak["bytes"] == 7 and leak["by_protocol"] == {"tcp": 7}
    assert leak["partition"] == SPLIT and leak["to_s"] >= leak["from_s"] >= 0
    assert "A->B forwarded 7 bytes while cut" in verdict.summary


def test_udp_is_checked_per_datagram_direction() -> None:
    # A -/-> B one way: B's answers relayed to A's socket (downstream of A->B) are B -> A.
    one_way = (("A", "B"),)
    allowed = cut_and_heal({"A_B_udp": (10, 10)}, {"A_B_udp": (10, 30)}, cut=one_way)
    assert fault_fidelity(allowed).ok
    leaked = cut_and_heal({"B_A_udp": (10, 10)}, {"B_A_udp": (10, 11)}, cut=one_way)
    assert fault_fidelity(leaked).evidence["leaks"][0]["by_protocol"] == {"udp": 1}


def test_an_unattributed_connection_is_invalid() -> None:
    history = History()
    history.event(
        "unattributed",
        "B",
        protocol="tcp",
        src="127.0.0.1:40000",
        dst="127.10.0.2:2380",
        reason="no live process holds the source socket",
    )
    verdict = fault_fidelity(history)
    assert verdict.valid == "invalid"
    assert verdict.evidence["unattributed"][0]["src"] == "127.0.0.1:40000"
    assert "127.0.0.1:40000 -> 127.10.0.2:2380 (B)" in verdict.summary


def test_an_orphaned_socket_at_a_node_s_exit_is_the_dying_node_s() -> None:
    history = History()
    refusal = {"protocol": "tcp", "src": "127.0.0.1:40000", "dst": "127.10.0.2:2380"}
    history.event("unattributed", "A", **refusal, orphaned=True, reason="no live process")
    history.event("node_killed", "B")
    verdict = fault_fidelity(history)
    assert verdict.ok and verdict.stats["unattributed_at_exit"] == 1
    history.event("unattributed", "A", **refusal, orphaned=False, reason="lookup timed out")
    assert fault_fidelity(history).valid == "invalid"


def test_which_runs_need_the_check() -> None:
    history = History()
    history.fault("apply", {"kind": "link", "name": "latency:*->*", "src": None, "dst": None})
    assert not needs_fidelity(history)
    history.fault("apply", {"kind": "link", "name": "latency:A->*", "src": "A", "dst": None})
    assert needs_fidelity(history)
    assert needs_fidelity(cut_and_heal({}, {}))
