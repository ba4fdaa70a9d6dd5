"""Which scenarios should kill each syncpeer mutant (the switches in syncpeer.core.mutants).

A mutant is killed when one of its scenarios fails with it switched on (and all of them pass
with it off: the control run). The first scenario listed is the one expected to kill it;
the others are more that should. `make mutants` runs this catalog (run.py).
"""

from __future__ import annotations

CHAOS = "tests/e2e/chaos"
SECURITY = "tests/e2e/security"

KILLERS: dict[str, list[str]] = {
    "skip-signature": [f"{CHAOS}/test_byzantine.py::test_lying_relay[corrupt]"],
    "accept-older": [
        f"{CHAOS}/test_byzantine.py::test_replayed_old_versions_do_not_revert",
        f"{CHAOS}/test_ordering.py::test_delete_before_create",
    ],
    "timestamp-wins": [f"{CHAOS}/test_clock_skew.py::test_skewed_peer_does_not_win_forever"],
    "forget-tombstone": [
        f"{CHAOS}/test_ordering.py::test_delete_before_create",
        f"{CHAOS}/test_ordering.py::test_concurrent_delete_and_update",
    ],
    "rebroadcast": [
        f"{CHAOS}/test_sync_loops.py::test_ping_pong",
        f"{CHAOS}/test_sync_loops.py::test_triangle",
    ],
    "drop-range-offset": [f"{CHAOS}/test_resume.py::test_cut_download_resumes_intact[1.0]"],
    "stale-etag": [
        f"{CHAOS}/test_sync_loops.py::test_metadata_resave",
        f"{CHAOS}/test_sync_loops.py::test_echo_along_a_chain",
    ],
    "refetch-held": [
        f"{CHAOS}/test_sync_loops.py::test_ping_pong",
        f"{CHAOS}/test_sync_loops.py::test_metadata_resave",
    ],
    "ignore-equivocation": [f"{CHAOS}/test_byzantine.py::test_equivocation_is_detected"],
    "blame-envelope": [f"{CHAOS}/test_byzantine.py::test_lying_relay[lie-timestamp]"],
    "trust-size": [f"{CHAOS}/test_byzantine.py::test_lying_relay[lie-size]"],
    "poll-in-lockstep": [
        f"{CHAOS}/test_unresponsive.py::test_paused_friend_does_not_stall_the_others"
    ],
    "delete-wins": [
        f"{CHAOS}/test_zombies.py::test_recreated_file_survives_its_old_tombstone"
        "[tombstone-late-live]",
        f"{CHAOS}/test_zombies.py::test_replayed_tombstone_does_not_delete_the_recreated_file",
    ],
    "poll-at-fixed-rate": [
        f"{CHAOS}/test_backoff.py::test_friends_poll_a_dead_friend_less_and_less_often"
    ],
    "no-read-deadline": [
        f"{CHAOS}/test_slowloris.py::"
        "test_stalled_downloads_give_up_resume_elsewhere_and_free_their_slots"
    ],
    "wrong-distance": [
        "tests/unit/syncpeer/test_dht_properties.py::test_two_hundred_nodes_route_exactly"
    ],
    "leak-private-key": [
        f"{SECURITY}/test_secrets.py::test_private_file_relayed_through_a_stranger_leaks_nowhere"
    ],
}
