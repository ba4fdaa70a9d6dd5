"""The secrets checker: keys and other people's plaintext, in every form, wherever exposed."""

from __future__ import annotations

import base64
import json
import random

import pytest

from peerlab.checkers.secrets import Exposure, Secret, no_secret_leaks, renderings

KEY = random.Random(1).randbytes(32)
PLAIN = b"the minutes of the board meeting, not for C\n" * 3


def secrets() -> list[Secret]:
    return [
        Secret("A's signing key", KEY),
        Secret("plaintext of minutes.txt", PLAIN, "plaintext", frozenset({"A", "B"})),
    ]


@pytest.mark.parametrize("alignment", [0, 1, 2, 3, 4, 5])
def test_a_key_inside_a_longer_base64_blob_is_found_at_any_alignment(alignment: int) -> None:
    blob = random.Random(alignment).randbytes(alignment) + KEY + b"trailing bytes"
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        data = b'{"dump": "' + encode(blob) + b'"}'
        verdict = no_secret_leaks([Exposure("B stdout", data, node="B")], secrets())
        assert verdict.valid == "invalid", (alignment, encode)


@pytest.mark.parametrize(
    "rendered",
    [
        KEY,
        KEY.hex().encode(),
        KEY.hex().upper().encode(),
        json.dumps({"key": repr(KEY)}).encode(),
        json.dumps({"identity": {"sign_private": base64.b64encode(KEY).decode()}}).encode(),
    ],
    ids=["raw", "hex", "HEX", "repr-in-json", "base64-in-json"],
)
def test_a_key_is_found_in_every_form_anywhere(rendered: bytes) -> None:
    data = b"line one\n" + b"x" * 100 + b" " + rendered + b" tail\n"
    for kind in ("log", "answer", "record"):
        verdict = no_secret_leaks([Exposure("A GET /admin/status", data, kind, "A")], secrets())
        assert verdict.valid == "invalid"
        [leak] = verdict.evidence["leaks"]
        assert leak["secret"] == "A's signing key" and leak["where"] == "A GET /admin/status"
        assert leak["line"] == 2 and leak["occurrences"] == 1
        assert "<A's signing key," in leak["context"]


def test_plaintext_may_be_shown_by_a_reader_but_never_logged() -> None:
    json_line = json.dumps({"event": "file_received", "preview": PLAIN[:60].decode()}).encode()
    answer = PLAIN  # what GET /admin/files/minutes.txt/content would answer
    assert no_secret_leaks([Exposure("B content", answer, "answer", "B")], secrets()).ok
    leaked = no_secret_leaks(
        [
            Exposure("C GET /admin/debug", answer, "answer", "C"),
            Exposure("B stdout", json_line, "log", "B"),
            Exposure("history.jsonl", base64.b64encode(PLAIN), "record"),
        ],
        secrets(),
    )
    assert leaked.valid == "invalid"
    where = [(leak["where"], leak["form"]) for leak in leaked.evidence["leaks"]]
    assert where == [
        ("C GET /admin/debug", "raw"),
        ("B stdout", "text in JSON"),
        ("history.jsonl", "base64"),
    ]
    assert "3 leaks" not in leaked.summary and "2 more leaks" in leaked.summary


def test_a_clean_run_is_valid_and_a_short_plaintext_is_not_searched() -> None:
    logs = [Exposure(f"{n} stdout", b'{"event": "node_started"}\n' * 100, node=n) for n in "AB"]
    verdict = no_secret_leaks(logs, [*secrets(), Secret("tiny", b"v1", "plaintext")])
    assert verdict.ok, verdict.summary
    assert verdict.stats["too_short"] == 1 and verdict.stats["exposures"] == 2
    assert no_secret_leaks(logs, [Secret("tiny", b"v1", "plaintext")]).valid == "unknown"


def test_evidence_never_holds_a_secret_it_found() -> None:
    other = random.Random(2).randbytes(32)
    identity = json.dumps(
        {"sign_private": base64.b64encode(KEY).decode(), "box": base64.b64encode(other).decode()}
    ).encode()
    verdict = no_secret_leaks(
        [Exposure("A stdout", identity)], [*secrets(), Secret("A's box key", other)]
    )
    text = json.dumps(verdict.to_json())
    for value in (KEY, other):
        assert all(form.decode("latin-1") not in text for _, form in renderings(value)[1:])
