"""`linearizable`: classic valid and invalid histories, info/fail semantics, keys, limits."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from peerlab.bench.check import inject_stale_read, register_history
from peerlab.checkers import linearizable
from peerlab.checkers.linearizability import EVIDENCE_TAIL
from peerlab.checkers.models import CasRegister, SetModel
from peerlab.history import Entry, History
from peerlab.history_edn import read_edn_history


def done(history: History, process: int, f: str, value: Any = None, result: Any = None) -> None:
    """One operation that completes ok before the next one starts."""
    history.complete(history.invoke(f, value, process=process), "ok", result)


def test_sequential_history_is_valid() -> None:
    h = History()
    done(h, 0, "write", 1)
    done(h, 1, "read", result=1)
    done(h, 0, "write", 2)
    done(h, 1, "read", result=2)
    verdict = linearizable(h.entries())
    assert verdict.valid == "valid" and verdict.ok
    assert verdict.evidence == {}
    assert verdict.stats["operations"] == 4


def test_read_of_a_value_never_written_is_invalid() -> None:
    h = History()
    done(h, 0, "write", 1)
    done(h, 1, "read", result=7)
    verdict = linearizable(h.entries())
    assert verdict.valid == "invalid"
    assert verdict.evidence["blocked"]["result"] == 7
    assert verdict.evidence["could_not_linearize"][0]["rejected_by_model"] is True
    assert "read → 7" in verdict.summary


def test_initial_value_is_what_an_early_read_sees() -> None:
    h = History()
    done(h, 0, "read", result=None)
    assert linearizable(h.entries()).valid == "valid"
    assert linearizable(h.entries(), CasRegister(initial=0)).valid == "invalid"


def test_stale_read_after_a_completed_write_is_invalid() -> None:
    h = History()
    done(h, 0, "write", 1)
    done(h, 0, "write", 2)
    done(h, 1, "read", result=1)
    verdict = linearizable(h.entries())
    assert verdict.valid == "invalid"
    assert verdict.evidence["linearized"] == 2
    assert verdict.evidence["state"] == 2
    assert [op["value"] for op in verdict.evidence["prefix_tail"]] == [1, 2]


def test_read_concurrent_with_a_write_may_see_either_value() -> None:
    for seen in (1, 2):
        h = History()
        done(h, 0, "write", 1)
        read = h.invoke("read", process=1)
        write = h.invoke("write", 2, process=0)
        h.complete(read, "ok", seen)
        h.complete(write, "ok")
        assert linearizable(h.entries()).valid == "valid", seen


def test_reads_that_see_a_new_value_then_the_old_one_are_invalid() -> None:
    # Two reads during one slow write: once a read saw 2, a later read cannot see 1.
    h = History()
    done(h, 0, "write", 1)
    write = h.invoke("write", 2, process=0)
    done(h, 1, "read", result=2)
    done(h, 2, "read", result=1)
    h.complete(write, "ok")
    assert linearizable(h.entries()).valid == "invalid"


KNOSSOS_RETHINK_FAIL_MINIMAL = """
[{:type :invoke, :f :write, :value 0, :process 0}
 {:type :ok, :f :write, :value 0, :process 0}
 {:type :invoke, :f :read, :value nil, :process 1}
 {:type :invoke, :f :write, :value 4, :process 2}
 {:type :ok, :f :read, :value 3, :process 1}
 {:type :ok, :f :write, :value 4, :process 2}
 {:type :invoke, :f :read, :value nil, :process 3}
 {:type :ok, :f :read, :value 4, :process 3}]
"""

KNOSSOS_CRASHED_WRITE = """
{:process 0, :type :invoke, :f :read, :value nil}
{:process 1, :type :invoke, :f :write, :value 3}
{:process 1, :type :info, :f :write, :value 3}
{:process 0, :type :ok, :f :read, :value 3}
"""


def test_knossos_readme_examples() -> None:
    bad = linearizable(read_edn_history(KNOSSOS_RETHINK_FAIL_MINIMAL), "cas-register")
    assert bad.valid == "invalid"
    assert bad.evidence["blocked"]["result"] == 3
    crashed = linearizable(read_edn_history(KNOSSOS_CRASHED_WRITE), "cas-register")
    assert crashed.valid == "valid"


def test_cas_succeeds_only_on_a_match() -> None:
    h = History()
    done(h, 0, "write", 0)
    done(h, 1, "cas", [0, 1])
    done(h, 2, "read", result=1)
    assert linearizable(h.entries(), "cas-register").valid == "valid"

    h = History()
    done(h, 0, "write", 0)
    done(h, 1, "cas", [5, 6])
    verdict = linearizable(h.entries(), "cas-register")
    assert verdict.valid == "invalid"
    assert verdict.evidence["blocked"]["f"] == "cas"


def test_two_concurrent_cas_from_the_same_value_cannot_both_succeed() -> None:
    h = History()
    done(h, 0, "write", 0)
    first = h.invoke("cas", [0, 1], process=1)
    second = h.invoke("cas", [0, 2], process=2)
    h.complete(first, "ok")
    h.complete(second, "ok")
    assert linearizable(h.entries(), "cas-register").valid == "invalid"
    # If one of them failed, the other alone is fine.
    h = History()
    done(h, 0, "write", 0)
    first = h.invoke("cas", [0, 1], process=1)
    second = h.invoke("cas", [0, 2], process=2)
    h.complete(first, "ok")
    h.complete(second, "fail")
    assert linearizable(h.entries(), "cas-register").valid == "valid"


def test_failed_write_did_not_happen() -> None:
    h = History()
    done(h, 0, "write", 1)
    write = h.invoke("write", 2, process=0)
    h.complete(write, "fail")
    done(h, 1, "read", result=2)
    assert linearizable(h.entries()).valid == "invalid"


def test_unknown_write_may_take_effect_later_but_only_once() -> None:
    h = History()
    done(h, 0, "write", 1)
    write = h.invoke("write", 2, process=0)
    h.complete(write, "info")
    done(h, 1, "read", result=1)
    done(h, 1, "read", result=2)  # long after the timeout: still possible
    assert linearizable(h.entries()).valid == "valid"
    done(h, 1, "read", result=1)  # but 2 cannot be undone
    assert linearizable(h.entries()).valid == "invalid"


def test_unknown_write_cannot_take_effect_before_it_was_invoked() -> None:
    h = History()
    done(h, 0, "write", 1)
    done(h, 1, "read", result=2)
    write = h.invoke("write", 2, process=0)
    h.complete(write, "info")
    assert linearizable(h.entries()).valid == "invalid"


def test_invocation_without_completion_counts_as_unknown() -> None:
    h = History()
    h.invoke("write", 5, process=0)
    done(h, 1, "read", result=5)
    assert linearizable(h.entries()).valid == "valid"


def test_unknown_ops_nobody_observed_are_dropped() -> None:
    h = History()
    for value in range(3):
        h.complete(h.invoke("write", value, process=value), "info")
    done(h, 5, "read", result=None)
    verdict = linearizable(h.entries())
    assert verdict.valid == "valid"
    assert verdict.stats["dropped"] == 3
    assert verdict.stats["operations"] == 1


def test_set_reads_must_show_every_completed_add() -> None:
    h = History()
    done(h, 0, "add", 1)
    done(h, 1, "add", 2)
    done(h, 2, "read", result=[1, 2])
    assert linearizable(h.entries(), "set").valid == "valid"
    done(h, 2, "read", result=[1])
    verdict = linearizable(h.entries(), "set")
    assert verdict.valid == "invalid"
    assert verdict.evidence["state"] == [1, 2]


def test_set_read_concurrent_with_an_add_may_miss_it() -> None:
    h = History()
    done(h, 0, "add", 1)
    add = h.invoke("add", 2, process=0)
    done(h, 1, "read", result=[1])
    h.complete(add, "ok")
    assert linearizable(h.entries(), "set").valid == "valid"


def test_keys_are_checked_independently_and_the_bad_key_is_named() -> None:
    h = History()
    done(h, 0, "write", {"key": "x", "value": 1})
    done(h, 0, "write", {"key": "y", "value": 2})
    done(h, 1, "read", {"key": "x"}, {"key": "x", "value": 1})
    done(h, 1, "read", {"key": "y"}, {"key": "y", "value": 1})  # 1 was written to x, not y
    verdict = linearizable(h.entries())
    assert verdict.valid == "invalid"
    assert verdict.evidence["key"] == "y"
    assert verdict.stats["keys"] == 2
    assert "other_invalid_keys" not in verdict.evidence


def test_unsupported_operation_names_the_model_to_use() -> None:
    h = History()
    done(h, 0, "cas", [None, 1])
    with pytest.raises(ValueError, match="cas-register"):
        linearizable(h.entries(), "register")
    with pytest.raises(ValueError, match="register, cas-register, set"):
        linearizable(h.entries(), "queue")


@pytest.mark.parametrize("keys", [1, 4])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_histories_are_valid_until_a_stale_read_is_injected(keys: int, seed: int) -> None:
    entries = register_history(1500, 5, seed, keys=keys, info_ratio=0.02)
    assert linearizable(entries).valid == "valid"
    stale = inject_stale_read(entries)
    verdict = linearizable(entries)
    assert verdict.valid == "invalid"
    assert verdict.evidence["blocked"]["index"] == stale.invoke.index
    assert len(verdict.evidence["prefix_tail"]) <= EVIDENCE_TAIL


def test_time_limit_turns_a_hard_search_into_unknown() -> None:
    # Twenty clients on one register with a late stale read: exhausting every order takes
    # tens of seconds, so a tiny limit must stop it early and say so.
    entries = register_history(2000, 20, 7)
    inject_stale_read(entries)
    started = time.monotonic()
    verdict = linearizable(entries, time_limit=0.05)
    assert verdict.valid == "unknown"
    assert time.monotonic() - started < 5
    assert verdict.evidence["undecided_keys"] == [None]
    assert "time limit" in verdict.summary


def test_verdict_is_json_able_and_shows_structured_values_as_written() -> None:
    h = History()
    done(h, 0, "write", {"name": "a", "tags": [1, 2]})
    done(h, 1, "read", result={"name": "b"})
    verdict = linearizable(h.entries())
    assert not verdict.ok
    assert json.loads(json.dumps(verdict.to_json()))["valid"] == "invalid"
    assert verdict.evidence["state"] == {"name": "a", "tags": [1, 2]}


def test_set_model_initial_value_must_be_a_collection() -> None:
    with pytest.raises(ValueError, match="list of elements"):
        SetModel(initial=5)
    h = History()
    done(h, 0, "read", result=[7])
    assert linearizable(h.entries(), SetModel(initial=[7])).valid == "valid"


def test_entries_without_invoke_index_pair_by_process() -> None:
    entries = [
        Entry("invoke", "write", 0, 0, 0.0, 0, value=1),
        Entry("invoke", "read", 1, 1, 0.0, 1),
        Entry("ok", "write", 2, 2, 0.0, 0, value=1),
        Entry("ok", "read", 3, 3, 0.0, 1, value=1),
    ]
    assert linearizable(entries).valid == "valid"
