"""Manifests as properties: every valid manifest survives TOML unchanged, and a bad value in
any field is refused with a UsageError naming that field, never a traceback."""

from __future__ import annotations

import copy
import re
import signal
import tomllib
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerlab.errors import UsageError
from peerlab.manifest import parse_manifest
from peerlab.manifest_schema import KEY, NODE_FIELDS, decode, reference

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[a-z][a-z0-9_-]{0,8}", fullmatch=True)
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,8}", fullmatch=True)
identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
modules = st.lists(identifiers, min_size=1, max_size=3).map(".".join)
import_paths = st.tuples(modules, identifiers).map(":".join)
plain_text = st.text(st.characters(exclude_characters="{}", exclude_categories=["Cs"]), max_size=12)
port_numbers = st.integers(1, 65535)
seconds = st.one_of(
    st.integers(1, 10**6), st.floats(min_value=0, exclude_min=True, allow_infinity=False)
)
relative_paths = st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,2}(\.conf)?", fullmatch=True)


def templated(known: list[str]) -> st.SearchStrategy[str]:
    """Text with placeholders of fields the manifest knows."""
    piece = st.one_of(plain_text, st.sampled_from(known).map(lambda name: "{" + name + "}"))
    return st.lists(piece, max_size=4).map("".join)


def optional(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    """The data of a valid manifest, as TOML would give it (only some fields set)."""
    # One form for all ports: tomli-w writes plain values before tables, and the first port
    # (the probe's default) must stay first.
    port = draw(
        st.sampled_from(
            [
                port_numbers,
                st.fixed_dictionaries(
                    {"port": port_numbers},
                    optional={
                        "protocol": st.sampled_from(["tcp", "udp"]),
                        "proxied": st.booleans(),
                    },
                ),
            ]
        )
    )
    ports = draw(st.dictionaries(keys, port, max_size=3))
    role_names = draw(st.lists(keys, max_size=3, unique=True))
    template_names = draw(st.lists(keys, max_size=2, unique=True))
    known = [*NODE_FIELDS, *(f"port.{p}" for p in ports), *template_names]
    text, texts = templated(known), st.lists(templated(known), max_size=3)
    files = st.dictionaries(relative_paths, text, max_size=2)
    env = st.dictionaries(keys, text, max_size=2)
    data: dict[str, Any] = {
        "system": {
            "name": draw(names),
            **draw(
                optional({"description": plain_text, "binary": plain_text, "adapter": import_paths})
            ),
        },
        "launch": {
            "command": draw(st.lists(text, min_size=1, max_size=3)),
            **draw(optional({"args": texts, "preload": st.lists(modules, max_size=2)})),
        },
    }
    if draw(st.booleans()):
        data["launch"].update(mode="fork", entry=draw(import_paths))
    elif draw(st.booleans()):
        data["launch"]["mode"] = "exec"
    if ports or draw(st.booleans()):
        data["ports"] = ports
    url_paths = st.from_regex(r"/[a-z/]{0,8}", fullmatch=True)
    readiness = draw(optional({"path": url_paths, "timeout": seconds}))
    # Without ports only a log probe or none can work; tcp, the default, is left unset at times.
    probe = draw(st.sampled_from(["http", "tcp", "log", "none"] if ports else ["log", "none"]))
    if probe != "tcp" or draw(st.booleans()):
        readiness["type"] = probe
    if ports and draw(st.booleans()):
        readiness["port"] = draw(st.sampled_from(sorted(ports)))
    if probe == "log" or draw(st.booleans()):
        readiness["pattern"] = draw(st.sampled_from(["ready", r"listening on \d+", "^up$"]))
    if readiness or draw(st.booleans()):
        data["readiness"] = readiness
    data.update(draw(optional({"env": env, "files": files})))
    data["roles"] = {
        role: draw(
            optional(
                {
                    "args": texts,
                    "env": env,
                    "start_first": st.booleans(),
                    "command": st.lists(text, min_size=1, max_size=2),
                    "count": st.integers(0, 5),
                    "files": files,
                }
            )
        )
        for role in role_names
    }
    template_options: dict[str, st.SearchStrategy[Any]] = {"join": plain_text}
    if role_names:  # a template may name only a role that exists
        template_options["role"] = st.sampled_from(role_names)
    data["templates"] = {
        name: {
            "each": draw(templated([*NODE_FIELDS, *(f"port.{p}" for p in ports)])),
            **draw(optional(template_options)),
        }
        for name in template_names
    }
    signals = st.sampled_from(sorted(signal.Signals.__members__))
    data["stop"] = draw(optional({"signal": signals, "timeout": st.one_of(st.just(0), seconds)}))
    return data


def lists(value: Any) -> Any:
    """Tuples as lists, as TOML has them."""
    if isinstance(value, dict):
        return {key: lists(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [lists(item) for item in value]
    return value


def with_port_tables(data: dict[str, Any]) -> dict[str, Any]:
    """`http = 8080` as the table it is short for."""
    out = copy.deepcopy(data)
    ports = out.get("ports", {})
    for name, port in ports.items():
        if isinstance(port, int):
            ports[name] = {"port": port}
    return out


@PROPERTY
@given(manifests())
def test_a_valid_manifest_survives_toml_unchanged(data: dict[str, Any]) -> None:
    text = tomli_w.dumps(data)
    decoded = decode(tomllib.loads(text), "m.toml")
    assert lists(decoded.model_dump(exclude_unset=True)) == lists(with_port_tables(data))
    assert parse_manifest(tomllib.loads(text)) == parse_manifest(data)


# A valid manifest with every field set; a bad value goes into one of them.
FULL: dict[str, Any] = {
    "system": {"name": "kvd", "description": "d", "binary": "kvd", "adapter": "mypkg.kvd:Kvd"},
    "launch": {
        "mode": "fork",
        "command": ["kvd"],
        "args": ["--port", "{port.http}"],
        "entry": "mypkg.kvd:main",
        "preload": ["mypkg.kvd"],
    },
    "ports": {"http": {"port": 8080, "protocol": "tcp", "proxied": True}},
    "readiness": {
        "type": "http",
        "port": "http",
        "path": "/",
        "method": "GET",
        "headers": {"Accept": "text/plain"},
        "status": 200,
        "pattern": "up",
        "command": ["kvd-cli", "health"],
        "timeout": 5,
    },
    "env": {"LEVEL": "debug"},
    "roles": {
        "primary": {
            "args": ["--primary"],
            "env": {"ROLE": "p"},
            "start_first": True,
            "command": ["kvd"],
            "count": 1,
            "files": {"a.conf": "x"},
        }
    },
    "templates": {"primary": {"each": "{address}", "join": ",", "role": "primary"}},
    "files": {"common.conf": "port {port.http}"},
    "stop": {"signal": "SIGTERM", "timeout": 5},
    "versions": {"1.0": {"command": ["kvd-1.0"], "args": ["--old"], "env": {"V": "1.0"}}},
    "init": {
        "command": ["kvd", "init"],
        "capture": {"node_id": "ID: (\\S+)"},
        "source": "output",
        "file": "id.txt",
        "env": {"HOME": "{data_dir}"},
        "timeout": 5,
    },
    "logs": {"timestamp": "^(\\S+)", "format": "iso8601"},
}

anything = st.one_of(
    st.text(max_size=8),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.dates(),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(identifiers, st.integers(), min_size=1, max_size=2),
)


def not_of(*kinds: type) -> st.SearchStrategy[Any]:
    return anything.filter(lambda value: type(value) not in kinds)


def text_without(pattern: str) -> st.SearchStrategy[str]:
    return st.text(max_size=10).filter(lambda text: not re.fullmatch(pattern, text))


numbers = (int, float)
# Values no field of this type accepts, by the type's name in the field reference.
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "string": not_of(str),
    "boolean": not_of(bool),
    # `anything` holds lists of integers and tables of integers only: all bad here.
    "list of strings": anything,
    "non-empty list of strings": anything | st.just([]),
    "table of strings": anything,
    "table: relative path = text": anything | st.sampled_from([{"/etc/x": "x"}, {"../x": "x"}]),
    "integer 1-65535": st.one_of(not_of(int), st.integers(max_value=0), st.integers(65536)),
    "integer >= 0": st.one_of(not_of(int), st.integers(max_value=-1)),
    "seconds > 0": st.one_of(
        not_of(*numbers), st.floats(max_value=0), st.sampled_from([float("inf"), float("nan")])
    ),
    "seconds >= 0": st.one_of(
        not_of(*numbers), st.floats(max_value=-1e-9), st.sampled_from([float("inf"), -1])
    ),
    "name: a-z, 0-9, - and _": st.one_of(not_of(str), text_without(r"[a-z][a-z0-9_-]*")),
    '"module:name"': st.one_of(
        not_of(str),
        st.text(max_size=8).filter(lambda text: ":" not in text),
        st.sampled_from(["mod:", ":name", "a b:c", "a..b:c", "1a:b", "a:b:c"]),
    ),
    "list of NET_ADMIN, NET_RAW, NET_BIND_SERVICE": st.one_of(
        not_of(list),
        st.lists(
            st.text(max_size=12).filter(
                lambda s: s not in ("NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE")
            ),
            min_size=1,
        ),
    ),
    "list of module names": st.one_of(
        not_of(list), st.lists(st.sampled_from(["", "a b", "1a", "a..b", "a.", "a-b"]), min_size=1)
    ),
    'signal name ("SIGTERM")': st.one_of(
        not_of(str), st.text(max_size=8).filter(lambda s: s not in signal.Signals.__members__)
    ),
    "regular expression": st.one_of(not_of(str), st.sampled_from(["(", "[a-", "*", "a)"])),
    "table of regular expressions": anything
    | st.sampled_from([{"node_id": "("}, {"Bad-Name": "x"}, {"name": "x"}]),
    "relative path": st.one_of(not_of(str), st.sampled_from(["/etc/passwd", "../x", ""])),
    "HTTP status 100-599": st.one_of(
        not_of(int), st.integers(max_value=99), st.integers(min_value=600)
    ),
    'URL path ("/...")': st.one_of(
        not_of(str), st.text(max_size=8).filter(lambda text: not text.startswith("/"))
    ),
}


def bad_values(type_name: str) -> st.SearchStrategy[Any]:
    if type_name.startswith('"'):  # a choice of strings
        choices = re.findall(r'"([^"]*)"', type_name)
        return st.one_of(not_of(str), st.text(max_size=8).filter(lambda s: s not in choices))
    return BAD_VALUES[type_name]


def test_every_type_in_the_reference_has_bad_values() -> None:
    unknown = [row.type for row in reference() if row.type not in BAD_VALUES]
    assert all(name.startswith('"') for name in unknown), unknown


CONCRETE = {"ports": "http", "roles": "primary", "templates": "primary", "versions": "1.0"}


@pytest.mark.parametrize("field", reference(), ids=lambda row: row.path)
@PROPERTY
@given(data=st.data())
def test_a_bad_value_in_any_field_is_named(field: Any, data: st.DataObject) -> None:
    parts = field.path.split(".")
    path = [CONCRETE[parts[i - 1]] if part == KEY else part for i, part in enumerate(parts)]
    manifest = copy.deepcopy(FULL)
    table = manifest
    for name in path[:-1]:
        table = table[name]
    table[path[-1]] = data.draw(bad_values(field.type), label=field.path)
    with pytest.raises(UsageError) as info:
        parse_manifest(manifest, "m.toml")
    named = ".".join(path)
    assert info.value.field == named or str(info.value.field).startswith(named + ".")
    assert info.value.hint


def test_the_full_manifest_is_valid() -> None:
    assert parse_manifest(FULL).mode == "fork"
