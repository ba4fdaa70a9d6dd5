"""The HTML report of a deliberately failing scenario, opened in headless Chromium.

The inner scenario asserts something syncpeer does not promise (a linearizable file store)
while a partition cuts one reader off and a latency fault slows a link: the checker finds
the stale read, the test fails, and peerlab writes the run's results with report.html.
Chromium loads the report from disk with networking off and its DOM must show the fault
spans, the stale read marked as evidence on the timeline, the verdict, the peer graph,
the plots and the replay command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from peerlab.testing import require_program

SEED = 2024

INNER = '''
import hashlib

from peerlab.checkers.linearizability import linearizable


def test_file_store_is_linearizable_under_partition(peerlab_env):
    """Deliberately wrong: syncpeer is eventually consistent, so C, cut off, reads stale."""
    env = peerlab_env
    env.start("syncpeer", 3)
    sync = env.adapter("syncpeer")
    sync.befriend("A", "B")
    sync.befriend("A", "C")
    env.net.latency(120, 20, src="A", dst="B")
    content = b"written while C is cut off\\n"
    digest = hashlib.sha256(content).hexdigest()

    def read(peer):
        op = env.history.invoke("read", {"key": "report.txt", "value": None},
                                process=peer, node=peer)
        state = sync.client(env.node(peer)).file("report.txt")
        value = state.get("sha256_plain") if state else None
        env.history.complete(op, "ok", {"key": "report.txt", "value": value})
        return value

    with env.net.partition([["A", "B"], ["C"]]):
        write = env.history.invoke("write", {"key": "report.txt", "value": digest},
                                   process="A", node="A")
        sync.client(env.node("A")).publish("report.txt", content, "public")
        env.history.complete(write, "ok")
        client_b = sync.client(env.node("B"))
        env.wait_until(lambda: (client_b.file("report.txt") or {}).get("sha256_plain") == digest,
                       20, what="B to hold report.txt")
        read("B")
        for _ in range(3):
            read("C")
    register = [e for e in env.history.entries() if e.f in ("read", "write")]
    verdict = linearizable(register, "register")
    env.record_verdict(verdict)
    assert verdict.ok, verdict.summary
'''


class Dom(HTMLParser):
    """Elements of a dumped DOM: (tag, attributes, text inside) for each start tag."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], list[str]]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        text: list[str] = []
        self.elements.append((tag, {k: v or "" for k, v in attrs}, text))
        self._open.append(text)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for text in self._open:
            text.append(data)

    def find(
        self, cls: str = "", tag: str = "", **attrs: str
    ) -> list[tuple[str, dict[str, str], str]]:
        found = []
        for name, attributes, text in self.elements:
            classes = attributes.get("class", "").split()
            if cls and not all(c in classes for c in cls.split(".")):
                continue
            if tag and name != tag:
                continue
            if any(attributes.get(key) != value for key, value in attrs.items()):
                continue
            found.append((name, attributes, "".join(text)))
        return found


def chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.slow
def test_report_of_a_failing_scenario_renders_in_chromium(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    browser = require_program("chromium", "chromium")
    pytester.makepyfile(test_inner=INNER)
    run = pytester.runpytest("--peerlab-seed", str(SEED), "-p", "no:cacheprovider")
    run.assert_outcomes(failed=1)
    folder = next((pytester.path / "peerlab-results").glob("*test_file_store*"))
    result = json.loads((folder / "result.json").read_text())
    assert result["outcome"] == "failed" and result["seed"] == SEED
    verdict = next(v for v in result["verdicts"] if v["checker"] == "linearizable")
    assert verdict["valid"] == "invalid"
    stale_read = verdict["evidence"]["blocked"]
    assert stale_read["node"] == "C" and stale_read["result"]["value"] is None
    assert (folder / "report.html").exists(), "a failing run writes its report"

    # The CLI renders the same report on demand.
    report = tmp_path / "report.html"
    cli = subprocess.run(
        [sys.executable, "-m", "peerlab", "report", str(folder), "--html", "--out", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr  # written; the run it reports failed
    assert report.exists()

    dumped = chromium(browser, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = Dom()
    dom.feed(dumped.stdout)

    assert [text for *_, text in dom.find(tag="span", id="outcome")] == ["FAILED"]
    assert any("--peerlab-seed 2024" in text for *_, text in dom.find(tag="div", id="replay"))
    faults = {attrs.get("data-fault"): text for _, attrs, text in dom.find("fault")}
    assert "partition A,B | C" in faults.get("partition", ""), faults
    assert "latency 120ms±20ms A->B" in faults.get("latency:A->B", ""), faults
    assert dom.find("fault-span.partition") and dom.find("fault-shade.partition")
    evidence = dom.find("op.evidence")
    assert f"op-{stale_read['index']}" in [attrs["id"] for _, attrs, _ in evidence]
    assert any("evidence of: linearizable" in text for *_, text in evidence)
    assert dom.find("failure-mark")
    assert [text for *_, text in dom.find("verdict.invalid") if "linearizable" in text]
    peers = {attrs["data-node"] for _, attrs, _ in dom.find("peer")}
    assert peers == {"A", "B", "C"}
    assert len(dom.find("friend.mutual")) == 2
    assert dom.find("friend.cut"), "the partition cuts the A-C friendship"
    assert dom.find("faulty-link")
    plots = [attrs for _, attrs, _ in dom.find("plot", tag="img")]
    assert plots and all(a["src"].startswith("data:image/png;base64,") for a in plots)
    for _, attrs, _ in dom.elements:
        for key in ("src", "href"):
            assert not attrs.get(key, "").startswith(("http:", "https:", "//")), attrs

    screenshot = tmp_path / "report.png"
    shot = chromium(
        browser,
        tmp_path / "profile-shot",
        "--hide-scrollbars",
        "--window-size=1400,2600",
        f"--screenshot={screenshot}",
        report.as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 50_000, "the screenshot is blank"
    print(f"report: {report}\nscreenshot: {screenshot}")
