"""EDN: the reader and writer, Jepsen histories in and out, and format sniffing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from peerlab.history import History, operations
from peerlab.history_edn import (
    Keyword,
    dumps,
    export_edn,
    loads,
    loads_all,
    read_edn_history,
    read_history,
)


def test_reader_covers_the_forms_histories_use() -> None:
    text = """
    ; a comment, then commas as whitespace
    {:a 1, :b -2.5e1, :c nil, :d true, :e false, :f "x\\"y\\n\\u00e9",
     :g [1 (2 3)], :h #{1 2}, :i \\z, :j 12N, #_ :skipped #_ 99 :k :ns/kw,
     :l #inst "2020-01-01", :m ##Inf, :n sym}
    """
    value = loads(text)
    assert value == {
        "a": 1,
        "b": -25.0,
        "c": None,
        "d": True,
        "e": False,
        "f": 'x"y\né',
        "g": [1, [2, 3]],
        "h": frozenset({1, 2}),
        "i": "z",
        "j": 12,
        "k": "ns/kw",
        "l": "2020-01-01",
        "m": math.inf,
        "n": "sym",
    }
    assert all(isinstance(key, Keyword) for key in value)
    assert repr(value["k"]) == ":ns/kw"


def test_tagged_records_read_as_their_value() -> None:
    assert loads("#jepsen.history.Op{:index 2, :type :ok}") == {"index": 2, "type": "ok"}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{:a "open', "line 1, column 5: unterminated string"),
        ("[1 2", "missing ']'"),
        ("{:a}", "even number"),
        ("\n  )", "line 2, column 3: unexpected ')'"),
    ],
)
def test_reader_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(ValueError, match=where.replace("(", r"\(").replace(")", r"\)")):
        loads_all(text)


def test_writer_output_reads_back_to_the_same_value() -> None:
    value = {
        Keyword("type"): Keyword("ok"),
        Keyword("value"): [1, 2.5, None, True, 'quote " and \\ and\nline'],
        Keyword("set"): frozenset({3, 1}),
        Keyword("nested"): {Keyword("inf"): -math.inf},
    }
    text = dumps(value)
    assert "#{1 3}" in text and "##-Inf" in text
    assert loads(text) == value
    with pytest.raises(TypeError, match="cannot write"):
        dumps(object())


def test_export_then_read_keeps_client_ops_and_faults() -> None:
    h = History()
    write = h.invoke("write", {"key": "x", "value": 1}, process=0, node="n1")
    h.fault("apply", {"kind": "partition", "groups": [["n1"], ["n2"]]})
    cas = h.invoke("cas", [1, 2], process=1)
    h.complete(write, "ok")
    h.complete(cas, "info", error="timeout")
    h.event("node_killed", node="n2")
    h.fault("remove", {"kind": "partition"})
    entries = h.entries()

    text = export_edn(entries)
    assert ":process :nemesis" in text and ":f :start" in text and ":f :stop" in text
    assert "node_killed" not in text
    assert ':value {:key "x", :value 1}' in text

    back = read_edn_history(text)
    assert [e.type for e in back] == ["invoke", "fault", "invoke", "ok", "info", "fault"]
    assert [e.f for e in back if e.type == "fault"] == ["apply", "remove"]
    original = [e for e in entries if e.type != "event"]
    for before, after in zip(original, back, strict=True):
        assert (after.index, after.time, after.value) == (before.index, before.time, before.value)
        assert after.process == before.process
    assert back[4].error == "timeout"
    assert back[0].node == "n1"
    assert [(op.f, op.type) for op in operations(back)] == [("write", "ok"), ("cas", "info")]


def test_history_as_one_vector_or_op_after_op() -> None:
    ops = "{:type :invoke, :f :read, :process 0} {:type :ok, :f :read, :value #{2 1}, :process 0}"
    for text in (ops, f"[{ops}]", f"({ops})"):
        entries = read_edn_history(text)
        assert [e.index for e in entries] == [0, 1]  # numbered by position without :index
        assert entries[1].value == [1, 2]


def test_non_client_ops_are_rejected_with_position() -> None:
    with pytest.raises(ValueError, match="history op 1: :type :weird"):
        read_edn_history("{:type :invoke :f :read :process 0} {:type :weird :process 0}")
    with pytest.raises(ValueError, match="expected a map"):
        read_edn_history("[1 2]")


def test_read_history_picks_the_format(tmp_path: Path) -> None:
    h = History(tmp_path / "history.jsonl")
    h.complete(h.invoke("write", 1, process=0), "ok")
    h.close()
    jsonl = (tmp_path / "history.jsonl").read_text()
    edn = export_edn(History.load(tmp_path / "history.jsonl"))
    for name, text in [("a.jsonl", jsonl), ("a.edn", edn), ("a.log", jsonl), ("b.log", edn)]:
        (tmp_path / name).write_text(text)
        entries = read_history(tmp_path / name)
        assert [(e.type, e.f, e.value) for e in entries] == [
            ("invoke", "write", 1),
            ("ok", "write", 1),
        ]
