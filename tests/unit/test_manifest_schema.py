"""The manifest schema: a bad value is one UsageError naming its field and the fix; every field
has a hint and a row in the field reference of docs/adding-a-system.md."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from peerlab.errors import UsageError
from peerlab.manifest import parse_manifest
from peerlab.manifest_schema import HINTS, reference_markdown, schema_paths

DOC = Path(__file__).parents[2] / "docs/adding-a-system.md"

BASE = tomllib.loads(
    """
[system]
name = "kvd"

[launch]
command = ["kvd", "{data_dir}/kvd.conf"]
args = ["--port", "{port.http}"]

[ports]
http = 8080

[readiness]
type = "http"
path = "/health"

[templates]
primary = { each = "{address}", role = "primary" }

[files]
"common.conf" = "port {port.http}\\n"

[roles.primary]
count = 1
start_first = true

[roles.spare]
"""
)


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with the tables of `patch` merged in, key by key (a value replaces a value)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def row(snippet: str, field: str, fix: str, *, without: str = "") -> Any:
    return pytest.param(snippet, field, fix, without, id=field)


# TOML merged into BASE (`without` drops a dotted key first), the field the error must name,
# and a word of the fix it must give.
BAD = [
    # Values the hand-written validator let through or crashed on.
    row('[stop]\nsignal = "SIGFOO"', "stop.signal", "SIGTERM"),
    row('[stop]\ntimeout = "five"', "stop.timeout", "seconds"),
    row('[readiness]\ntimeout = "x"', "readiness.timeout", "seconds"),
    row('[launch]\npreload = "abc"', "launch.preload", "list of module names"),
    row('[ports]\nhttp = { port = 8080, proxied = "no" }', "ports.http.proxied", "true or false"),
    row("[system]\nadapter = 3", "system.adapter", "package.module:ClassName"),
    # The cases the hand-written validator caught.
    row("", "system.name", "lowercase", without="system.name"),
    row('[system]\nname = "Bad Name"', "system.name", "lowercase"),
    row("", "launch", "[launch]", without="launch"),
    row("[launch]\ncommand = []", "launch.command", "command = ["),
    row('[launch]\nmode = "spawn"', "launch.mode", '"fork"'),
    row('[launch]\nmode = "fork"', "launch.entry", "mypkg.main:main"),
    row("[ports]\nhttp = 70000", "ports.http.port", "65535"),
    row('[ports]\nhttp = { port = 1, protocol = "sctp" }', "ports.http.protocol", '"udp"'),
    row('[readiness]\nport = "nope"', "readiness.port", "use one of: http"),
    row('[readiness]\ntype = "smoke"', "readiness.type", '"log"'),
    row('[readiness]\ntype = "log"', "readiness.pattern", "regex"),
    row('[launch]\nargs = ["{nope}"]', "launch.args", "{port.http}"),
    row("[launch]\ncolour = 1", "launch.colour", "known fields here: mode, command"),
    row("[roles.x]\ncount = -1", "roles.x.count", "0"),
    row('[roles.x]\ncount = "two"', "roles.x.count", "0"),
    row("[roles.x]\ncommand = []", "roles.x.command", "command = ["),
    row('[roles.x]\ncommand = "kvd"', "roles.x.command", "command = ["),
    row('[roles.x]\nargs = "--fast"', "roles.x.args", "args = ["),
    row('[roles.x]\ncolour = "red"', "roles.x.colour", "known fields here"),
    row('[roles.x.files]\n"/etc/passwd" = "x"', "roles.x.files./etc/passwd", "relative"),
    row('[files]\n"../up.conf" = "x"', "files.../up.conf", "relative"),
    row('[files]\n"a.conf" = 3', "files.a.conf", "text"),
    row('files = "a.conf"', "files", "[files]"),
    row('[files]\n"a.conf" = "{nope}"', "files.a.conf", "{data_dir}"),
    row('[roles.x]\ncommand = ["{nope}"]', "roles.x.command", "{port.http}"),
    row('[templates]\nt = { each = "{name}", role = "ghost" }', "templates.t.role", "primary"),
    row('[templates]\nt = { each = "{name}", joiner = "," }', "templates.t.joiner", "'join'"),
    # More of the same family: types, ranges, names and forms.
    row("[readyness]\ntimeout = 5", "readyness", "did you mean 'readiness'"),
    row('[readiness]\ntype = "log"\npattern = "("', "readiness.pattern", "regex"),
    row('[readiness]\npath = "health"', "readiness.path", '"/health"'),
    row("[readiness]\ntimeout = 0", "readiness.timeout", "positive"),
    row("[readiness]\ntimeout = inf", "readiness.timeout", "seconds"),
    row("[stop]\ntimeout = -1", "stop.timeout", "0 or more"),
    row("stop = 5", "stop", "[stop]"),
    row("[env]\nLEVEL = 3", "env.LEVEL", "quote"),
    row("[roles.x]\nenv = { LEVEL = 3 }", "roles.x.env.LEVEL", "quote"),
    row('[roles.x]\nstart_first = "yes"', "roles.x.start_first", "true or false"),
    row('[launch]\nentry = "mypkg.main"', "launch.entry", "mypkg.main:main"),
    row('[launch]\npreload = ["ok", "not a module"]', "launch.preload", "module names"),
    row('[launch]\ncommand = ["kvd", 3]', "launch.command", "command = ["),
    row('[ports]\nhttp = "8080"', "ports.http", "port number"),
    row("[ports]\nhttp = { port = true }", "ports.http.port", "65535"),
    row('[system]\nbinary = ["etcd"]', "system.binary", "Debian"),
    row('[templates]\nt = "{name}"', "templates.t", "each ="),
    row('[launch]\ncapabilities = "NET_ADMIN"', "launch.capabilities", '["NET_ADMIN"]'),
    row('[launch]\ncapabilities = ["SYS_ADMIN"]', "launch.capabilities", "NET_RAW"),
]


@pytest.mark.parametrize(("snippet", "field", "fix", "without"), BAD)
def test_a_bad_manifest_names_the_field_and_the_fix(
    snippet: str, field: str, fix: str, without: str
) -> None:
    data = merged(BASE, tomllib.loads(snippet))
    if without:
        *tables, key = without.split(".")
        table = data
        for name in tables:
            table = table[name]
        del table[key]
    with pytest.raises(UsageError) as info:
        parse_manifest(data, "kvd.toml")
    error = info.value
    assert error.field == field
    assert f"kvd.toml: field '{field}' " in error.message
    assert fix in str(error.hint)
    assert "\n" not in str(error)


def test_the_base_of_the_table_is_valid() -> None:
    spec = parse_manifest(BASE)
    assert spec.readiness.port == "http"
    assert spec.layout == [("primary", 1)]


def test_every_schema_field_has_a_hint() -> None:
    assert sorted(HINTS) == sorted(schema_paths())


def doc_reference(text: str) -> str:
    found = re.search(r"<!-- fields -->\n(.*?)<!-- /fields -->", text, re.DOTALL)
    return found.group(1) if found else ""


def test_the_guide_lists_every_field_as_the_schema_says() -> None:
    expected = reference_markdown()
    assert doc_reference(DOC.read_text()) == expected, (
        "docs/adding-a-system.md's field reference is out of date: replace the table between "
        "<!-- fields --> and <!-- /fields --> with the output of "
        "`python -m peerlab.manifest_schema`"
    )
