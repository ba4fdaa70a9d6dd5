"""Jepsen's EDN histories: a small EDN reader and writer, and conversion to and from entries.

The reader covers what Jepsen and Knossos histories use: maps, vectors, lists, sets,
keywords, symbols, strings, characters, integers, floats, `##Inf`, nil, true/false, `;`
comments, commas as whitespace, `#_` discards, and tagged values (`#inst "..."`,
`#jepsen.history.Op{...}`), whose tag is dropped. Keywords and symbols read as `str`
subclasses, so `op["type"] == "invoke"` works on a map read from `{:type :invoke}`.

A history is a vector or list of op maps, or op maps one after another. Client ops
become `Entry`s; ops of `:process :nemesis` become fault entries. `read_history` reads a
file in either this format or peerlab's JSONL.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from peerlab.hashable import hashable
from peerlab.history import CLIENT_TYPES, Entry, read_jsonl


class Keyword(str):
    """An EDN keyword, `:name`; equal to the plain string "name"."""

    def __repr__(self) -> str:
        return f":{self}"


class Symbol(str):
    """An EDN symbol, written bare."""

    def __repr__(self) -> str:
        return str(self)


_DELIMITERS = frozenset('()[]{}",;')
_WHITESPACE = frozenset(" \t\r\n,")
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?[NM]?")
_CHARACTERS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r"}
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_BARE_KEYWORD = re.compile(r"[A-Za-z*+!_?<>=-][\w*+!?<>=./-]*")


def loads_all(text: str) -> list[Any]:
    """Every top-level form in `text`."""
    reader = _Reader(text)
    forms = []
    while reader.skip_space() is not None:
        forms.append(reader.form())
    return forms


def loads(text: str) -> Any:
    """The one form in `text`."""
    forms = loads_all(text)
    if len(forms) != 1:
        raise ValueError(f"expected one EDN form, found {len(forms)}")
    return forms[0]


def dumps(value: Any) -> str:
    """EDN text for a value built from dicts, lists, sets, strings, numbers, bools and None."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Keyword):
        return f":{value}"
    if isinstance(value, Symbol):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and not math.isfinite(value):
        return "##NaN" if math.isnan(value) else "##Inf" if value > 0 else "##-Inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{dumps(k)} {dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + " ".join(dumps(item) for item in value) + "]"
    if isinstance(value, set | frozenset):
        return "#{" + " ".join(sorted(dumps(item) for item in value)) + "}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as EDN")


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def error(self, message: str) -> ValueError:
        line = self.text.count("\n", 0, self.at) + 1
        column = self.at - (self.text.rfind("\n", 0, self.at) + 1) + 1
        return ValueError(f"EDN line {line}, column {column}: {message}")

    def skip_space(self) -> str | None:
        """Skip whitespace and comments; the next character, or None at the end."""
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            if char in _WHITESPACE:
                self.at += 1
            elif char == ";":
                end = text.find("\n", self.at)
                self.at = len(text) if end < 0 else end
            elif text.startswith("#_", self.at):
                self.at += 2
                self.form()
            else:
                return char
        return None

    def form(self) -> Any:
        char = self.skip_space()
        if char is None:
            raise self.error("unexpected end of input")
        if char in _CLOSE:
            self.at += 1
            items = self.until(_CLOSE[char])
            return self.mapping(items) if char == "{" else items
        if char in ")]}":
            raise self.error(f"unexpected {char!r}")
        if char == '"':
            return self.string()
        if char == "#":
            return self.dispatch()
        if char == "\\":
            return self.character()
        return self.atom()

    def until(self, close: str) -> list[Any]:
        items: list[Any] = []
        while True:
            char = self.skip_space()
            if char is None:
                raise self.error(f"missing {close!r}")
            if char == close:
                self.at += 1
                return items
            items.append(self.form())

    def mapping(self, items: list[Any]) -> dict[Any, Any]:
        if len(items) % 2:
            raise self.error("a map needs an even number of forms")
        return {hashable(items[i]): items[i + 1] for i in range(0, len(items), 2)}

    def dispatch(self) -> Any:
        self.at += 1
        char = self.text[self.at : self.at + 1]
        if char == "{":
            self.at += 1
            return frozenset(hashable(item) for item in self.until("}"))
        if char == "#":
            self.at += 1
            name = self.token()
            values = {"Inf": float("inf"), "-Inf": float("-inf"), "NaN": float("nan")}
            if name not in values:
                raise self.error(f"unknown symbolic value ##{name}")
            return values[name]
        self.token()  # a tag: the tagged value reads as itself
        return self.form()

    def string(self) -> str:
        text = self.text
        start = self.at
        self.at += 1
        out = []
        while True:
            end = self.at
            while end < len(text) and text[end] not in '"\\':
                end += 1
            out.append(text[self.at : end])
            if end >= len(text):
                self.at = start
                raise self.error("unterminated string")
            self.at = end + 1
            if text[end] == '"':
                return "".join(out)
            escape = text[self.at : self.at + 1]
            if escape == "u":
                out.append(chr(int(text[self.at + 1 : self.at + 5], 16)))
                self.at += 5
            elif escape in _ESCAPES:
                out.append(_ESCAPES[escape])
                self.at += 1
            else:
                raise self.error(f"unknown string escape \\{escape}")

    def character(self) -> str:
        self.at += 1
        start = self.at
        self.at += 1  # the first character is always part of the literal, even a delimiter
        while self.at < len(self.text) and self.text[self.at].isalnum():
            self.at += 1
        name = self.text[start : self.at]
        if len(name) == 1:
            return name
        if name in _CHARACTERS:
            return _CHARACTERS[name]
        if name.startswith("u") and len(name) == 5:
            return chr(int(name[1:], 16))
        raise self.error(f"unknown character \\{name}")

    def token(self) -> str:
        start = self.at
        text = self.text
        while self.at < len(text) and text[self.at] not in _WHITESPACE | _DELIMITERS:
            self.at += 1
        if self.at == start:
            raise self.error("expected a symbol")
        return text[start : self.at]

    def atom(self) -> Any:
        token = self.token()
        if token.startswith(":"):
            return Keyword(token[1:])
        if _NUMBER.fullmatch(token):
            if token[-1] in "NM":
                token = token[:-1]
            return float(token) if any(c in token for c in ".eE") else int(token)
        named: dict[str, Any] = {"nil": None, "true": True, "false": False}
        if token in named:
            return named[token]
        return Symbol(token)


def read_edn_history(text: str) -> list[Entry]:
    """Entries from a Jepsen EDN history; ops without :index are numbered by position."""
    forms = loads_all(text)
    if len(forms) == 1 and isinstance(forms[0], list):
        forms = forms[0]
    entries = []
    for position, op in enumerate(forms):
        if not isinstance(op, dict):
            raise ValueError(f"history op {position}: expected a map, got {dumps(op)[:60]}")
        entries.append(_entry(op, position))
    return entries


def _entry(op: dict[Any, Any], position: int) -> Entry:
    kind = str(op.get("type", ""))
    process = op.get("process")
    process = _plain(process) if isinstance(process, int | str) else None
    f = str(op.get("f", ""))
    error = op.get("error")
    fields: dict[str, Any] = {
        "index": int(op.get("index", position)),
        "time": int(op.get("time", 0)),
        "wall": 0.0,
        "process": process,
        "value": _plain(op.get("value")),
        "error": None if error is None else error if isinstance(error, str) else dumps(error),
    }
    if "node" in op:
        fields["node"] = str(op["node"])
    if process == "nemesis":
        action = {"start": "apply", "stop": "remove"}.get(f, f)
        return Entry("fault", action, **fields)
    if kind not in CLIENT_TYPES:
        raise ValueError(
            f"history op {position}: :type {':' + kind if kind else 'missing'}; expected "
            ":invoke, :ok, :fail or :info"
        )
    return Entry(kind, f, **fields)  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    """EDN data as JSON-able data: keywords become strings, sets sorted lists."""
    if isinstance(value, Keyword | Symbol):
        return str(value)
    if isinstance(value, dict):
        return {
            str(k) if isinstance(k, str) else json.dumps(_plain(k)): _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, frozenset):
        items = [_plain(item) for item in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    return value


def export_edn(entries: Iterable[Entry]) -> str:
    """Jepsen EDN for the client operations and faults in `entries`, one op map per line.

    A fault becomes `{:type :info, :process :nemesis, :f :start (or :stop), :value ...}`,
    which is how Jepsen records its nemesis; framework events are left out.
    """
    lines = []
    for entry in entries:
        if entry.type in CLIENT_TYPES:
            kind, f, process = entry.type, entry.f, entry.process
        elif entry.type == "fault":
            kind, process = "info", "nemesis"
            f = {"apply": "start", "remove": "stop"}.get(entry.f, entry.f)
        else:
            continue
        op: dict[Keyword, Any] = {
            Keyword("index"): entry.index,
            Keyword("time"): entry.time,
            Keyword("type"): Keyword(kind),
            Keyword("process"): Keyword(process) if process == "nemesis" else process,
            Keyword("f"): Keyword(f) if _BARE_KEYWORD.fullmatch(f) else f,
            Keyword("value"): _edn(entry.value),
        }
        if entry.error is not None:
            op[Keyword("error")] = entry.error
        if entry.node is not None:
            op[Keyword("node")] = entry.node
        lines.append(dumps(op))
    return "\n".join(lines) + "\n" if lines else ""


def _edn(value: Any) -> Any:
    """JSON-ish data for EDN: string map keys that read as keywords become keywords."""
    if isinstance(value, Mapping):
        return {
            Keyword(k) if isinstance(k, str) and _BARE_KEYWORD.fullmatch(k) else k: _edn(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_edn(item) for item in value]
    return value


def read_history(path: Path) -> list[Entry]:
    """Entries from a history file: `.jsonl` is peerlab's JSONL, `.edn` is Jepsen's EDN,
    anything else is sniffed (a first line that parses as JSON means JSONL)."""
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".edn":
        return read_edn_history(text)
    if suffix == ".jsonl" or _looks_like_jsonl(text):
        return list(read_jsonl(text.splitlines()))
    return read_edn_history(text)


def _looks_like_jsonl(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False
