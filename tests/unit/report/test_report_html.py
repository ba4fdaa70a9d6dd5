"""A results folder read back and drawn: spans, evidence, the HTML report, JUnit XML."""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from peerlab.errors import UsageError
from peerlab.history import History
from peerlab.observe.events import iso
from peerlab.report.data import load_run
from peerlab.report.html import evidence_html, render_report
from peerlab.report.junit import junit_xml
from peerlab.report.runs import find_run


def _folder(tmp_path: Path, outcome: str = "failed") -> tuple[Path, dict[str, Any]]:
    """A run: A writes, B reads stale under a partition, B is killed and restarted."""
    folder = tmp_path / "run"
    history = History(folder / "history.jsonl")
    began = time.time()
    history.event("node_started", "A")
    history.event("node_started", "B")
    write = history.invoke("write", 1, process="A", node="A")
    history.complete(write, "ok")
    history.fault("apply", {"kind": "partition", "name": "partition", "groups": [["A"], ["B"]]})
    history.fault(
        "apply",
        {
            "kind": "link",
            "name": "latency:A->B",
            "type": "latency",
            "src": "A",
            "dst": "B",
            "attributes": {"latency": 100, "jitter": 0},
        },
    )
    stale = history.invoke("read", None, process="B", node="B")
    history.complete(stale, "ok", 0)
    failed = history.invoke("write", 2, process="A", node="A")
    history.complete(failed, "fail", error="timeout")
    history.fault("apply", {"kind": "partition", "name": "partition", "groups": [["A", "B"]]})
    history.fault("remove", {"kind": "partition", "name": "partition", "groups": [["A", "B"]]})
    history.event("node_killed", "B")
    history.event("node_restarted", "B")
    history.close()
    (folder / "nodes/B").mkdir(parents=True)
    (folder / "nodes/B/stdout.log").write_text(
        json.dumps(
            {
                "ts": iso(time.time()),
                "level": "warning",
                "event": "friend_unreachable",
                "component": "sync",
                "trace_id": "t9",
            }
        )
        + "\n"
    )
    blocked = {
        "process": "B",
        "type": "ok",
        "f": "read",
        "value": None,
        "index": stale.index,
        "result": 0,
        "node": "B",
    }
    result = {
        "run": "run",
        "test": "tests/test_x.py::test_stale",
        "outcome": outcome,
        "seed": 99,
        "replay": "pytest 'tests/test_x.py::test_stale' --peerlab-seed 99",
        "started": began,
        "ended": time.time(),
        "seconds": 1.5,
        "verdicts": [
            {
                "checker": "linearizable",
                "valid": "invalid",
                "summary": "stale read on B",
                "evidence": {"blocked": blocked, "missing": ["B"]},
                "stats": {"operations": 3},
                "wall": time.time(),
            },
            {
                "checker": "no-loss",
                "valid": "valid",
                "summary": "nothing lost",
                "evidence": {},
                "stats": {},
            },
        ],
        "failure": {
            "when": "call",
            "message": "AssertionError: stale read on B",
            "text": "long traceback",
            "wall": time.time(),
        },
        "nodes": [
            {"name": "A", "state": "running", "address": "127.0.0.2", "system": "x"},
            {"name": "B", "state": "running", "address": "127.0.0.3", "system": "x"},
        ],
        "graph": {
            "nodes": [{"name": "A", "state": "running"}, {"name": "B", "state": "running"}],
            "friends": [["A", "B"], ["B", "A"]],
            "source": "adapter",
        },
        "timings": {
            "operations": {
                "read": {
                    "ok": 1,
                    "fail": 0,
                    "info": 0,
                    "latency_ms": {"p50": 1, "p95": 1, "max": 1},
                }
            }
        },
        "versions": {"peerlab": "test", "python": "3.11"},
    }
    (folder / "result.json").write_text(json.dumps(result))
    return folder, {"stale": stale.index, "failed_write": failed.index}


def test_a_run_is_read_back_as_lanes_spans_and_evidence(tmp_path: Path) -> None:
    folder, index = _folder(tmp_path)
    run = load_run(folder)
    assert run.lanes == ["A", "B"]
    assert [(s.name, s.label, s.end is None) for s in run.faults] == [
        ("partition", "partition A | B", False),
        ("latency:A->B", "latency 100ms A->B", True),
        ("partition", "partition A,B", False),
    ]
    first, _, second = run.faults
    assert first.end == second.start, "a new partition replaces the one before"
    assert [(s.name, s.label) for s in run.downtime] == [("B", "killed")]
    assert run.downtime[0].end is not None
    assert run.evidence == {index["stale"]: ["linearizable"]}
    assert run.evidence_nodes == {"B"}
    assert [op.type for op in run.ops] == ["ok", "ok", "fail"]


def test_the_report_draws_what_happened(tmp_path: Path) -> None:
    folder, index = _folder(tmp_path)
    html = render_report(folder)
    assert 'id="outcome">FAILED<' in html
    assert "pytest &#39;tests/test_x.py::test_stale&#39; --peerlab-seed 99" in html
    assert html.count('class="fault-span partition"') == 2
    assert 'data-fault="latency:A-&gt;B"' in html
    assert f'class="op op-ok evidence" id="op-{index["stale"]}"' in html
    assert f'class="op op-fail" id="op-{index["failed_write"]}"' in html
    assert 'class="down-span killed"' in html and "evidence-lane" in html
    assert 'class="verdict-mark invalid"' in html and 'class="failure-mark"' in html
    assert 'class="log-mark warning"' in html
    assert html.count('class="peer"') == 2 and 'class="friend mutual"' in html
    assert html.count('src="data:image/png;base64,') == 2
    assert f'href="#op-{index["stale"]}"' in html, "evidence links to its bar"
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_run_without_operations_or_verdicts_still_renders(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "result.json").write_text(
        json.dumps({"test": "t", "outcome": "passed", "seed": 1, "nodes": []})
    )
    html = render_report(folder)
    assert "No client operations were recorded" in html
    assert "No checker recorded a verdict" in html and "No network fault" in html


def test_evidence_is_rendered_readably() -> None:
    ops = [{"process": "B", "type": "ok", "f": "read", "value": None, "index": 7, "result": 0}]
    html = str(
        evidence_html({"blocked": ops, "state": {"x": 1}, "missing": ["B", "C"], "deep": [[1, 2]]})
    )
    assert "<table" in html and 'href="#op-7"' in html and "#7" in html
    assert "B, C" in html and "<pre>" in html
    assert "&lt;script&gt;" in str(evidence_html({"x": "<script>"}))


def test_junit_xml_for_ci(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path)
    result = json.loads((folder / "result.json").read_text())
    suite = ET.fromstring(junit_xml(result))
    assert suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case is not None
    assert (case.get("classname"), case.get("name")) == ("tests.test_x", "test_stale")
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "AssertionError: stale read on B"
    assert "linearizable: stale read on B" in (failure.text or "")
    seed = suite.find("properties/property[@name='peerlab.seed']")
    assert seed is not None and seed.get("value") == "99"
    passed = ET.fromstring(junit_xml({**result, "outcome": "passed"}))
    assert passed.get("failures") == "0" and passed.find("testcase/failure") is None


def test_find_run_by_path_name_or_newest(tmp_path: Path) -> None:
    base = tmp_path / "peerlab-results"
    for age, name in enumerate(("old", "new")):
        (base / name).mkdir(parents=True)
        (base / name / "result.json").write_text("{}")
        os.utime(base / name / "result.json", (1_700_000_000 + age, 1_700_000_000 + age))
    assert find_run(None, base) == base / "new"
    assert find_run("old", base) == base / "old"
    assert find_run(str(base / "old"), base) == base / "old"
    with pytest.raises(UsageError, match="no results folder"):
        find_run("nosuch", base)
    with pytest.raises(UsageError, match="no runs"):
        find_run(None, tmp_path / "empty")
