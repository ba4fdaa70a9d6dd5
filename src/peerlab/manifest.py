"""Systems as data: a TOML manifest says how to run one node of a system.

A manifest is enough to test a system written in any language: a command template, named
ports, a readiness probe, a data dir, environment variables and roles. A Python adapter
(named by `adapter`) may add a typed client and a state probe on top.

    [system]
    name = "kvd"
    adapter = "mypkg.kvd_adapter:KvdAdapter"    # optional

    [launch]
    mode = "exec"                               # exec | fork
    command = ["kvd"]                           # the program (exec mode)
    args = ["--listen", "{bind}:{port.http}", "--data", "{data_dir}"]
    # mode = "fork": entry = "mypkg.main:main" is called with the rendered args in a
    # process forked from a launcher that imported it once (fast start, shared memory)

    [ports]
    http = 8080                                 # or { port = 8080, protocol = "tcp", proxied = true }

    [readiness]
    type = "http"                               # http | tcp | log
    port = "http"
    path = "/health"
    timeout = 20

Template fields: {name} {index} {address} {bind} {data_dir} {python} {seed} {port.NAME}
and every `[templates]` entry, which joins one line per node, e.g.
`initial_cluster = { each = "{name}=http://{address}:{port.peer}", join = "," }`.
"""

from __future__ import annotations

import re
import string
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from peerlab.errors import UsageError

LaunchMode = Literal["exec", "fork"]
ProbeType = Literal["http", "tcp", "log", "none"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
_FIELD_RE = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class PortSpec:
    name: str
    port: int
    protocol: Literal["tcp", "udp"] = "tcp"
    proxied: bool = True


@dataclass(frozen=True)
class Readiness:
    type: ProbeType = "tcp"
    port: str | None = None
    path: str = "/"
    pattern: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True)
class RoleSpec:
    name: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    start_first: bool = False


@dataclass(frozen=True)
class SystemSpec:
    """Everything needed to run nodes of one system."""

    name: str
    description: str
    mode: LaunchMode
    command: tuple[str, ...]
    args: tuple[str, ...]
    entry: str | None
    preload: tuple[str, ...]
    ports: Mapping[str, PortSpec]
    readiness: Readiness
    env: Mapping[str, str]
    roles: Mapping[str, RoleSpec]
    templates: Mapping[str, tuple[str, str]]
    adapter: str | None
    stop_signal: str
    stop_timeout: float
    binary: str | None
    source: Path | None = None


def _fail(source: str, field_name: str, problem: str, fix: str) -> UsageError:
    return UsageError(f"{source}: field '{field_name}' {problem}", field=field_name, hint=fix)


def _expect(source: str, table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(source, f"{where}{key}", f"must be a {kind.__name__}, got {value!r}",
                    f"write it as a TOML {kind.__name__}")
    return value


def _unknown_keys(source: str, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(source, f"{where}{key}", "is not a known field",
                        f"known fields here: {', '.join(sorted(allowed))}")


def parse_manifest(data: Mapping[str, Any], source: str = "<manifest>") -> SystemSpec:
    """Validate a manifest's data; every error names the field and the fix."""
    _unknown_keys(source, data, {"system", "launch", "ports", "readiness", "env", "roles",
                                 "templates", "stop"}, "")
    if "system" not in data:
        raise _fail(source, "system", "is missing", 'add a [system] table with name = "..."')
    system = data["system"]
    _unknown_keys(source, system, {"name", "description", "adapter", "binary"}, "system.")
    if "name" not in system:
        raise _fail(source, "system.name", "is missing", 'add name = "mysystem" under [system]')
    name = _expect(source, system, "name", str, "system.")
    if not _NAME_RE.match(name):
        raise _fail(source, "system.name", f"{name!r} is not a valid name",
                    "use lowercase letters, digits, '-' and '_', starting with a letter")

    launch = data.get("launch")
    if not isinstance(launch, Mapping):
        raise _fail(source, "launch", "is missing", "add a [launch] table with command = [...]")
    _unknown_keys(source, launch, {"mode", "command", "args", "entry", "preload"}, "launch.")
    mode = launch.get("mode", "exec")
    if mode not in ("exec", "fork"):
        raise _fail(source, "launch.mode", f"is {mode!r}", 'use "exec" or "fork"')
    command = tuple(launch.get("command", ()))
    if not command or not all(isinstance(part, str) for part in command):
        raise _fail(source, "launch.command", "must be a non-empty list of strings",
                    'e.g. command = ["mysystem", "--port", "{port.http}"]')
    args = tuple(launch.get("args", ()))
    if not all(isinstance(part, str) for part in args):
        raise _fail(source, "launch.args", "must be a list of strings",
                    'e.g. args = ["--port", "{port.http}"]')
    entry = launch.get("entry")
    if mode == "fork":
        if not isinstance(entry, str) or ":" not in entry:
            raise _fail(source, "launch.entry", "is required for mode = \"fork\"",
                        'name the function that takes argv: entry = "mypkg.main:main"')
    preload = tuple(launch.get("preload", [entry.split(":")[0]] if entry else []))

    ports: dict[str, PortSpec] = {}
    for port_name, raw in dict(data.get("ports", {})).items():
        where = f"ports.{port_name}"
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = {"port": raw}
        if not isinstance(raw, Mapping):
            raise _fail(source, where, f"is {raw!r}", "write a port number or { port = N }")
        _unknown_keys(source, raw, {"port", "protocol", "proxied"}, where + ".")
        if "port" not in raw:
            raise _fail(source, where + ".port", "is missing", "add port = N")
        number = _expect(source, raw, "port", int, where + ".")
        if not 1 <= number <= 65535:
            raise _fail(source, where + ".port", f"is {number}", "use a port from 1 to 65535")
        protocol = raw.get("protocol", "tcp")
        if protocol not in ("tcp", "udp"):
            raise _fail(source, where + ".protocol", f"is {protocol!r}", 'use "tcp" or "udp"')
        ports[port_name] = PortSpec(port_name, number, protocol, bool(raw.get("proxied", True)))

    readiness_raw = dict(data.get("readiness", {}))
    _unknown_keys(source, readiness_raw, {"type", "port", "path", "pattern", "timeout"},
                  "readiness.")
    probe = readiness_raw.get("type", "tcp" if ports else "none")
    if probe not in ("http", "tcp", "log", "none"):
        raise _fail(source, "readiness.type", f"is {probe!r}", 'use "http", "tcp", "log" or "none"')
    probe_port = readiness_raw.get("port", next(iter(ports), None))
    if probe in ("http", "tcp") and probe_port not in ports:
        raise _fail(source, "readiness.port", f"names {probe_port!r}, which is not in [ports]",
                    f"use one of: {', '.join(ports) or '(add a [ports] entry)'}")
    if probe == "log" and not readiness_raw.get("pattern"):
        raise _fail(source, "readiness.pattern", "is missing", "a log probe needs a regex pattern")
    timeout = float(readiness_raw.get("timeout", 30.0))
    if timeout <= 0:
        raise _fail(source, "readiness.timeout", f"is {timeout}", "use a positive number of seconds")
    readiness = Readiness(probe, probe_port, str(readiness_raw.get("path", "/")),
                          readiness_raw.get("pattern"), timeout)

    env = {str(k): str(v) for k, v in dict(data.get("env", {})).items()}
    roles: dict[str, RoleSpec] = {}
    for role_name, raw in dict(data.get("roles", {})).items():
        where = f"roles.{role_name}"
        if not isinstance(raw, Mapping):
            raise _fail(source, where, "must be a table", f"write [roles.{role_name}]")
        _unknown_keys(source, raw, {"args", "env", "start_first"}, where + ".")
        roles[role_name] = RoleSpec(role_name, tuple(raw.get("args", ())),
                                    {str(k): str(v) for k, v in dict(raw.get("env", {})).items()},
                                    bool(raw.get("start_first", False)))

    templates: dict[str, tuple[str, str]] = {}
    for tname, raw in dict(data.get("templates", {})).items():
        if not isinstance(raw, Mapping) or "each" not in raw:
            raise _fail(source, f"templates.{tname}", "must have an 'each' template",
                        '{ each = "{name}={address}", join = "," }')
        templates[tname] = (str(raw["each"]), str(raw.get("join", ",")))

    stop = dict(data.get("stop", {}))
    _unknown_keys(source, stop, {"signal", "timeout"}, "stop.")

    spec = SystemSpec(
        name=name, description=str(system.get("description", "")), mode=mode, command=command,
        args=args, entry=entry, preload=preload, ports=ports, readiness=readiness, env=env, roles=roles,
        templates=templates, adapter=system.get("adapter"),
        stop_signal=str(stop.get("signal", "SIGTERM")), stop_timeout=float(stop.get("timeout", 5)),
        binary=system.get("binary"), source=None,
    )
    _check_template_fields(spec, source)
    return spec


def _check_template_fields(spec: SystemSpec, source: str) -> None:
    known = {"name", "index", "address", "bind", "data_dir", "python", "seed", "role"}
    known |= {f"port.{p}" for p in spec.ports} | set(spec.templates)
    parts = list(spec.command) + list(spec.args) + [a for r in spec.roles.values() for a in r.args]
    parts += list(spec.env.values()) + [each for each, _ in spec.templates.values()]
    for part in parts:
        for match in _FIELD_RE.finditer(part):
            if match.group(1) not in known:
                raise _fail(source, "launch.command", f"uses unknown template field {{{match.group(1)}}}",
                            f"known fields: {', '.join('{' + k + '}' for k in sorted(known))}")


def load_manifest(path: Path) -> SystemSpec:
    """Read and validate a manifest file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"manifest {path} does not exist", field="manifest",
                         hint="check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})", field="manifest",
                         hint="fix the syntax at the line named") from None
    spec = parse_manifest(raw, str(path))
    return SystemSpec(**{**spec.__dict__, "source": path})


class _Fields(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        return kwargs[field_name], field_name


def render(template: str, fields: Mapping[str, Any]) -> str:
    """Fill `{field}` placeholders (dotted names such as {port.http} are plain keys)."""
    return _FIELD_RE.sub(lambda m: str(fields[m.group(1)]), template)


def node_fields(
    spec: SystemSpec, *, name: str, index: int, address: str, bind: str, data_dir: Path,
    seed: int, role: str | None, cluster: list[Mapping[str, Any]],
) -> dict[str, Any]:
    """The template fields for one node; `cluster` holds the fields of every node (for joins)."""
    fields: dict[str, Any] = {
        "name": name, "index": index, "address": address, "bind": bind,
        "data_dir": str(data_dir), "python": sys.executable, "seed": seed, "role": role or "",
    }
    fields.update({f"port.{p.name}": p.port for p in spec.ports.values()})
    for tname, (each, join) in spec.templates.items():
        fields[tname] = join.join(render(each, member) for member in cluster)
    return fields
