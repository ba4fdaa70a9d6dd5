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
    # capabilities = ["NET_ADMIN"]              # granted inside the node's own network
    # namespace (a TUN or WireGuard device); only backends that isolate nodes can grant it

    [ports]
    http = 8080                      # or { port = 8080, protocol = "tcp", proxied = true }

    [readiness]
    type = "http"                               # http | tcp | log
    port = "http"
    path = "/health"
    timeout = 20

Template fields: {name} {index} {address} {bind} {data_dir} {python} {seed} {role}
{port.NAME} and every `[templates]` entry, which joins one line per node, e.g.
`initial_cluster = { each = "{name}=http://{address}:{port.peer}", join = "," }`;
`role = "master"` limits a template to the nodes of one role.

Roles make one manifest describe a system whose nodes differ (a master, replicas,
sentinels). A role may replace the program (`command`; then `launch.args` do not apply,
they belong to `launch.command`), add `args`, `env` and `files`, start before the others
(`start_first`), and give the default layout (`count`): a system whose roles have counts
starts that layout when no node count is asked for.

    [roles.sentinel]
    command = ["redis-sentinel", "{data_dir}/sentinel.conf"]
    count = 3
    files = { "sentinel.conf" = "port {port.redis}\\nsentinel monitor ..." }

`[files]` (and a role's `files`) are templated text files written into the node's data
dir before its first start. They are not written again on a restart: programs such as
Redis rewrite their own config files, and a restart must see what they wrote.
"""

from __future__ import annotations

import re
import string
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from peerlab.errors import UsageError

LaunchMode = Literal["exec", "fork"]
ProbeType = Literal["http", "tcp", "log", "none"]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
# What a node may be granted within its own network namespace (`launch.capabilities`):
# devices and raw sockets of its own, nothing that reaches the machine outside it.
GRANTABLE = ("NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE")
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
    command: tuple[str, ...] | None = None  # replaces launch.command and launch.args
    count: int = 0  # nodes of this role in the default layout
    files: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateSpec:
    """A field that joins `each`, rendered for every node (of `role`, if given), with `join`."""

    each: str
    join: str = ","
    role: str | None = None


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
    templates: Mapping[str, TemplateSpec]
    adapter: str | None
    stop_signal: str
    stop_timeout: float
    binary: str | None
    source: Path | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()  # granted within the node's network namespace

    @property
    def layout(self) -> list[tuple[str, int]]:
        """The default layout: (role, count) for every role with a count, in manifest order."""
        return [(role.name, role.count) for role in self.roles.values() if role.count > 0]

    def commands(self) -> list[tuple[str, ...]]:
        """Every program this system may run: launch.command and the roles' own commands."""
        return [self.command] + [r.command for r in self.roles.values() if r.command]


def _fail(source: str, field_name: str, problem: str, fix: str) -> UsageError:
    return UsageError(f"{source}: field '{field_name}' {problem}", field=field_name, hint=fix)


def _expect(source: str, table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _fail(
            source,
            f"{where}{key}",
            f"must be a {kind.__name__}, got {value!r}",
            f"write it as a TOML {kind.__name__}",
        )
    return value


def _unknown_keys(source: str, table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(
                source,
                f"{where}{key}",
                "is not a known field",
                f"known fields here: {', '.join(sorted(allowed))}",
            )


def parse_manifest(data: Mapping[str, Any], source: str = "<manifest>") -> SystemSpec:
    """Validate a manifest's data; every error names the field and the fix."""
    _unknown_keys(
        source,
        data,
        {"system", "launch", "ports", "readiness", "env", "roles", "templates", "stop", "files"},
        "",
    )
    if "system" not in data:
        raise _fail(source, "system", "is missing", 'add a [system] table with name = "..."')
    system = data["system"]
    _unknown_keys(source, system, {"name", "description", "adapter", "binary"}, "system.")
    if "name" not in system:
        raise _fail(source, "system.name", "is missing", 'add name = "mysystem" under [system]')
    name = _expect(source, system, "name", str, "system.")
    if not _NAME_RE.match(name):
        raise _fail(
            source,
            "system.name",
            f"{name!r} is not a valid name",
            "use lowercase letters, digits, '-' and '_', starting with a letter",
        )

    launch = data.get("launch")
    if not isinstance(launch, Mapping):
        raise _fail(source, "launch", "is missing", "add a [launch] table with command = [...]")
    _unknown_keys(
        source, launch, {"mode", "command", "args", "entry", "preload", "capabilities"}, "launch."
    )
    mode = launch.get("mode", "exec")
    if mode not in ("exec", "fork"):
        raise _fail(source, "launch.mode", f"is {mode!r}", 'use "exec" or "fork"')
    raw_command = launch.get("command", [])
    command = tuple(raw_command) if isinstance(raw_command, list) else ()
    if not command or not all(isinstance(part, str) for part in command):
        raise _fail(
            source,
            "launch.command",
            "must be a non-empty list of strings",
            'e.g. command = ["mysystem", "--port", "{port.http}"]',
        )
    raw_args = launch.get("args", [])
    args = tuple(raw_args) if isinstance(raw_args, list) else (None,)
    if not all(isinstance(part, str) for part in args):
        raise _fail(
            source,
            "launch.args",
            "must be a list of strings",
            'e.g. args = ["--port", "{port.http}"]',
        )
    entry = launch.get("entry")
    if mode == "fork" and (not isinstance(entry, str) or ":" not in entry):
        raise _fail(
            source,
            "launch.entry",
            'is required for mode = "fork"',
            'name the function that takes argv: entry = "mypkg.main:main"',
        )
    preload = tuple(launch.get("preload", [entry.split(":")[0]] if entry else []))
    capabilities = _parse_capabilities(source, launch.get("capabilities", []))

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
    _unknown_keys(
        source, readiness_raw, {"type", "port", "path", "pattern", "timeout"}, "readiness."
    )
    probe = readiness_raw.get("type", "tcp" if ports else "none")
    if probe not in ("http", "tcp", "log", "none"):
        raise _fail(source, "readiness.type", f"is {probe!r}", 'use "http", "tcp", "log" or "none"')
    probe_port = readiness_raw.get("port", next(iter(ports), None))
    if probe in ("http", "tcp") and probe_port not in ports:
        raise _fail(
            source,
            "readiness.port",
            f"names {probe_port!r}, which is not in [ports]",
            f"use one of: {', '.join(ports) or '(add a [ports] entry)'}",
        )
    if probe == "log" and not readiness_raw.get("pattern"):
        raise _fail(source, "readiness.pattern", "is missing", "a log probe needs a regex pattern")
    timeout = float(readiness_raw.get("timeout", 30.0))
    if timeout <= 0:
        raise _fail(
            source, "readiness.timeout", f"is {timeout}", "use a positive number of seconds"
        )
    readiness = Readiness(
        probe,
        probe_port,
        str(readiness_raw.get("path", "/")),
        readiness_raw.get("pattern"),
        timeout,
    )

    env = {str(k): str(v) for k, v in dict(data.get("env", {})).items()}
    roles: dict[str, RoleSpec] = {}
    for role_name, raw in dict(data.get("roles", {})).items():
        roles[role_name] = _parse_role(source, role_name, raw)

    templates: dict[str, TemplateSpec] = {}
    for tname, raw in dict(data.get("templates", {})).items():
        if not isinstance(raw, Mapping) or "each" not in raw:
            raise _fail(
                source,
                f"templates.{tname}",
                "must have an 'each' template",
                '{ each = "{name}={address}", join = "," }',
            )
        _unknown_keys(source, raw, {"each", "join", "role"}, f"templates.{tname}.")
        template_role = raw.get("role")
        if template_role is not None and template_role not in roles:
            raise _fail(
                source,
                f"templates.{tname}.role",
                f"names {template_role!r}, which is not in [roles]",
                f"use one of: {', '.join(roles) or '(add a [roles.NAME] table)'}",
            )
        templates[tname] = TemplateSpec(str(raw["each"]), str(raw.get("join", ",")), template_role)
    files = _parse_files(source, data.get("files", {}), "files")

    stop = dict(data.get("stop", {}))
    _unknown_keys(source, stop, {"signal", "timeout"}, "stop.")

    spec = SystemSpec(
        name=name,
        description=str(system.get("description", "")),
        mode=mode,
        command=command,
        args=args,
        entry=entry,
        preload=preload,
        ports=ports,
        readiness=readiness,
        env=env,
        roles=roles,
        templates=templates,
        adapter=system.get("adapter"),
        stop_signal=str(stop.get("signal", "SIGTERM")),
        stop_timeout=float(stop.get("timeout", 5)),
        binary=system.get("binary"),
        source=None,
        files=files,
        capabilities=capabilities,
    )
    _check_template_fields(spec, source)
    return spec


def _parse_capabilities(source: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise _fail(
            source,
            "launch.capabilities",
            f"must be a list of capability names, got {raw!r}",
            'e.g. capabilities = ["NET_ADMIN"]',
        )
    names = tuple(dict.fromkeys(name.upper().removeprefix("CAP_") for name in raw))
    for name in names:
        if name not in GRANTABLE:
            raise _fail(
                source,
                "launch.capabilities",
                f"names {name!r}, which a node cannot be granted",
                f"use some of: {', '.join(GRANTABLE)}",
            )
    return names


def _parse_role(source: str, role_name: str, raw: Any) -> RoleSpec:
    where = f"roles.{role_name}"
    if not isinstance(raw, Mapping):
        raise _fail(source, where, "must be a table", f"write [roles.{role_name}]")
    _unknown_keys(
        source, raw, {"args", "env", "start_first", "command", "count", "files"}, where + "."
    )
    command: tuple[str, ...] | None = None
    if "command" in raw:
        raw_command = raw["command"]
        if (
            not isinstance(raw_command, list)
            or not raw_command
            or not all(isinstance(part, str) for part in raw_command)
        ):
            raise _fail(
                source,
                where + ".command",
                "must be a non-empty list of strings",
                'e.g. command = ["redis-sentinel", "{data_dir}/sentinel.conf"]',
            )
        command = tuple(raw_command)
    raw_args = raw.get("args", [])
    if not isinstance(raw_args, list) or not all(isinstance(part, str) for part in raw_args):
        raise _fail(
            source, where + ".args", "must be a list of strings", 'e.g. args = ["--verbose"]'
        )
    count = _expect(source, raw, "count", int, where + ".") if "count" in raw else 0
    if count < 0:
        raise _fail(
            source, where + ".count", f"is {count}", "use 0 (not in the default layout) or more"
        )
    return RoleSpec(
        role_name,
        tuple(raw_args),
        {str(k): str(v) for k, v in dict(raw.get("env", {})).items()},
        bool(raw.get("start_first", False)),
        command,
        count,
        _parse_files(source, raw.get("files", {}), where + ".files"),
    )


def _parse_files(source: str, raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise _fail(
            source,
            where,
            "must be a table of file name = text",
            f'e.g. [{where}] "node.conf" = "port {{port.http}}"',
        )
    files: dict[str, str] = {}
    for file_name, text in raw.items():
        path = Path(file_name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise _fail(
                source,
                f"{where}.{file_name}",
                "is not a path inside the data dir",
                'use a relative name such as "node.conf" or "conf/node.conf"',
            )
        if not isinstance(text, str):
            raise _fail(
                source,
                f"{where}.{file_name}",
                f"must be text, got {text!r}",
                'write the content as a TOML string (""" for many lines)',
            )
        files[file_name] = text
    return files


def _check_template_fields(spec: SystemSpec, source: str) -> None:
    known = {"name", "index", "address", "bind", "data_dir", "python", "seed", "role"}
    known |= {f"port.{p}" for p in spec.ports} | set(spec.templates)
    # launch.args are reported as launch.command: together they are one command line.
    parts = [("launch.command", part) for part in spec.command + spec.args]
    parts += [(f"env.{key}", value) for key, value in spec.env.items()]
    parts += [(f"templates.{name}.each", t.each) for name, t in spec.templates.items()]
    parts += [(f"files.{name}", text) for name, text in spec.files.items()]
    for role in spec.roles.values():
        where = f"roles.{role.name}"
        parts += [(f"{where}.command", part) for part in role.command or ()]
        parts += [(f"{where}.args", part) for part in role.args]
        parts += [(f"{where}.env.{key}", value) for key, value in role.env.items()]
        parts += [(f"{where}.files.{name}", text) for name, text in role.files.items()]
    for where, part in parts:
        for match in _FIELD_RE.finditer(part):
            if match.group(1) not in known:
                raise _fail(
                    source,
                    where,
                    f"uses unknown template field {{{match.group(1)}}}",
                    f"known fields: {', '.join('{' + k + '}' for k in sorted(known))}",
                )


def load_manifest(path: Path) -> SystemSpec:
    """Read and validate a manifest file."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(
            f"manifest {path} does not exist", field="manifest", hint="check the path"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{path}: not valid TOML ({exc})",
            field="manifest",
            hint="fix the syntax at the line named",
        ) from None
    spec = parse_manifest(raw, str(path))
    return SystemSpec(**{**spec.__dict__, "source": path})


class _Fields(string.Formatter):
    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        return kwargs[field_name], field_name


def render(template: str, fields: Mapping[str, Any]) -> str:
    """Fill `{field}` placeholders (dotted names such as {port.http} are plain keys)."""
    return _FIELD_RE.sub(lambda m: str(fields[m.group(1)]), template)


def node_fields(
    spec: SystemSpec,
    *,
    name: str,
    index: int,
    address: str,
    bind: str,
    data_dir: Path,
    seed: int,
    role: str | None,
    cluster: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The template fields for one node; `cluster` holds the fields of every node (for joins)."""
    fields: dict[str, Any] = {
        "name": name,
        "index": index,
        "address": address,
        "bind": bind,
        "data_dir": str(data_dir),
        "python": sys.executable,
        "seed": seed,
        "role": role or "",
    }
    fields.update({f"port.{p.name}": p.port for p in spec.ports.values()})
    for tname, template in spec.templates.items():
        members = [m for m in cluster if template.role is None or m.get("role") == template.role]
        fields[tname] = template.join.join(render(template.each, member) for member in members)
    return fields


def node_files(spec: SystemSpec, role: str | None, fields: Mapping[str, Any]) -> dict[str, str]:
    """The files to write into a node's data dir: `[files]`, then its role's, rendered."""
    files = dict(spec.files)
    if role is not None:
        files.update(spec.roles[role].files)
    return {name: render(text, fields) for name, text in files.items()}
