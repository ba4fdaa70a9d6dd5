"""No secret leaves a node: private keys and other people's plaintext appear nowhere a node
exposes (Mau TC-301, syft 6.2).

The input is what the nodes exposed, each an `Exposure` (its bytes and where they came
from: a node's stdout or stderr, its JSON events, an admin endpoint's answer, the history,
a file of the artifacts folder), and the `Secret`s: private key material, and the
plaintext of files that only some nodes may read. A secret is searched for in every form a
careless line of code would write it in: raw, hex (either case), base64 (standard and
URL-safe, at each of the three byte alignments, so it is found inside a longer base64
blob too), Python's `repr` of bytes, and each of those as a JSON string escapes it.

What may appear where: a key, nowhere; a plaintext, only in an endpoint's answer of a node
that is one of its readers (the node that may decrypt it may show it to its operator),
never in a log, an event, the history or an artifact. A plaintext shorter than
`min_length` bytes is not searched (a short one turns up by chance); its first `probe`
bytes are what is searched, so a preview of a file is caught too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from peerlab.checkers.verdict import Verdict

SecretKind = Literal["key", "plaintext"]
ExposureKind = Literal["log", "answer", "record"]
CONTEXT_BYTES = 60
EVIDENCE_HITS = 20


@dataclass(frozen=True)
class Secret:
    """`value` must not leave its place; `readers` are the nodes whose endpoint answers may
    show it (a plaintext's recipients). `label` names it in evidence, never its value."""

    label: str
    value: bytes
    kind: SecretKind = "key"
    readers: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Exposure:
    """What a node (or the harness, `node` None) exposed at `where`: a log ("log", the
    JSON events too), an endpoint's answer ("answer"), or a record (history, artifacts)."""

    where: str
    data: bytes
    kind: ExposureKind = "log"
    node: str | None = None


def no_secret_leaks(
    exposures: Iterable[Exposure],
    secrets: Sequence[Secret],
    *,
    min_length: int = 12,
    probe: int = 48,
) -> Verdict:
    """Invalid when some form of a secret appears in an exposure it may not appear in;
    the evidence says where (line), which secret, in which form, with the match redacted."""
    searchable: list[tuple[Secret, list[tuple[str, bytes]]]] = []
    too_short = 0
    for secret in secrets:
        value = secret.value if secret.kind == "key" else secret.value[:probe]
        if len(value) < min_length:
            too_short += 1
            continue
        searchable.append((secret, renderings(value)))
    hits: list[dict[str, Any]] = []
    scanned = bytes_scanned = 0
    for exposure in exposures:
        scanned += 1
        bytes_scanned += len(exposure.data)
        for secret, forms in searchable:
            if _allowed(secret, exposure):
                continue
            for form, pattern in forms:
                position = exposure.data.find(pattern)
                if position < 0:
                    continue
                hits.append(
                    {
                        "secret": secret.label,
                        "kind": secret.kind,
                        "form": form,
                        "where": exposure.where,
                        "node": exposure.node,
                        "line": exposure.data.count(b"\n", 0, position) + 1,
                        "occurrences": exposure.data.count(pattern),
                        "context": _context(exposure.data, position, searchable),
                    }
                )
                break  # one form found is enough for this secret here
    stats = {
        "exposures": scanned,
        "bytes": bytes_scanned,
        "secrets": len(searchable),
        "too_short": too_short,
        "leaks": len(hits),
    }
    if hits:
        first = hits[0]
        return Verdict(
            "no_secret_leaks",
            "invalid",
            f"{first['secret']} leaked ({first['form']}) in {first['where']}, line "
            f"{first['line']}" + (f"; {len(hits) - 1} more leaks" if len(hits) > 1 else ""),
            {"leaks": hits[:EVIDENCE_HITS]},
            stats,
        )
    if not searchable:
        return Verdict(
            "no_secret_leaks", "unknown", "No secret long enough to search for.", {}, stats
        )
    return Verdict(
        "no_secret_leaks",
        "valid",
        f"None of {len(searchable)} secrets appears in {scanned} exposures "
        f"({bytes_scanned} bytes).",
        {},
        stats,
    )


def _allowed(secret: Secret, exposure: Exposure) -> bool:
    return (
        secret.kind == "plaintext" and exposure.kind == "answer" and exposure.node in secret.readers
    )


def renderings(value: bytes) -> list[tuple[str, bytes]]:
    """Every form `value` is searched in, named, without duplicates."""
    forms: dict[bytes, str] = {}

    def add(name: str, form: bytes) -> None:
        if form and form not in forms:
            forms[form] = name

    add("raw", value)
    text = _text(value)
    if text is not None:  # a JSON log escapes quotes, newlines and non-ASCII characters
        add("text in JSON", json.dumps(text)[1:-1].encode())
    add("hex", value.hex().encode())
    add("HEX", value.hex().upper().encode())
    for alignment in range(3):
        add("base64", _aligned_base64(value, alignment, base64.b64encode))
        add("base64url", _aligned_base64(value, alignment, base64.urlsafe_b64encode))
    shown = repr(value)[2:-1]  # str(bytes), as a log line with default=str writes it
    add("repr", shown.encode())
    add("repr in JSON", json.dumps(shown)[1:-1].encode())
    return [(name, form) for form, name in forms.items()]


def _text(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _aligned_base64(value: bytes, alignment: int, encode: Any) -> bytes:
    """The base64 characters that stand for `value` alone when it starts `alignment` bytes
    into a longer blob (the characters shared with its neighbours dropped)."""
    encoded: bytes = encode(bytes(alignment) + value)
    first = -(-alignment * 8 // 6)  # characters holding any bit of the prefix
    last = (alignment + len(value)) * 8 // 6  # characters holding only bits of `value`
    return encoded[first:last]


def _context(
    data: bytes, position: int, searchable: list[tuple[Secret, list[tuple[str, bytes]]]]
) -> str:
    """The bytes around a hit, every secret form in them replaced by its label."""
    window = data[max(0, position - CONTEXT_BYTES) : position + CONTEXT_BYTES * 3]
    for secret, forms in searchable:
        for form, pattern in forms:
            window = window.replace(pattern, f"<{secret.label}, {form}>".encode())
    return window.decode("utf-8", errors="replace")
