"""The manifest file's schema: what a system's TOML may say, decoded strictly.

Every table of the file is a frozen pydantic model with exact types: a string is never read
as a list, "no" is not a boolean, a port is an integer from 1 to 65535, a signal is a name
the `signal` module knows, a timeout is a number of seconds, and an unknown key is refused
(with the nearest known key as a suggestion). `decode` returns a `Manifest` or raises one
`UsageError` for the first bad field: its dotted path, what is wrong, and the fix from
`HINTS`. Checks across fields (a probe's port must be in [ports], a template's role in
[roles], `{fields}` must be known) run after the types are right.

Adding a field is one line in its model (type, default, description) and one row in `HINTS`;
tests fail until the hint and the field reference in docs/adding-a-system.md (printed by
`python -m peerlab.manifest_schema`) are there.
"""

import difflib
import json
import re
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from peerlab.errors import UsageError

# The template language: `{field}` placeholders, `{{` and `}}` for literal braces, the
# fields every node has, another node's field as `{peer.NAME.field}`, and the placeholder
# written for a table key in field paths ("ports.NAME.port").
FIELD_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
NODE_FIELDS = (
    "name",
    "index",
    "address",
    "bind",
    "data_dir",
    "python",
    "seed",
    "role",
    "manifest_dir",
    "version",
)
PEER_FIELD = re.compile(r"peer\.([A-Za-z0-9][A-Za-z0-9_.-]*)\.([^.]+(?:\.[^.]+)?)")
KEY = "NAME"


def fields_in(text: str) -> Iterator[str]:
    """The `{field}` names a template uses (literal `{{` and `}}` are not fields)."""
    for match in FIELD_RE.finditer(text):
        if match.group(1) is not None:
            yield match.group(1)


class Shown(str):
    """How a constrained type is named in the field reference ("signal name")."""


def _as_tuple(value: Any) -> Any:
    # TOML arrays arrive as lists; specs keep tuples. Anything else fails as "not a list".
    return tuple(value) if isinstance(value, list) else value


def _dotted_names(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", value):
        raise ValueError(f"is {_shown(value)}, not a valid name")
    return value


def _import_path(value: str) -> str:
    module, colon, attribute = value.partition(":")
    if not (colon and _dotted_names(module) and _dotted_names(attribute)):
        raise ValueError(f'is {_shown(value)}, not "package.module:name"')
    return value


def _module(value: str) -> str:
    if not _dotted_names(value):
        raise ValueError(f"is {_shown(value)}, not a module name")
    return value


def _signal(value: str) -> str:
    if value not in signal.Signals.__members__:
        raise ValueError(f"is {_shown(value)}, not a signal name")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is {_shown(value)}, not a regular expression ({exc})") from None
    return value


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f'is {_shown(value)}, which does not start with "/"')
    return value


def _image_name(value: str) -> str:
    # What the engine accepts as a name: lowercase path components, an optional tag.
    if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?", value):
        raise ValueError(f"is {_shown(value)}, not an image name")
    return value


def _absolute_path(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or "\0" in value or path == PurePosixPath("/"):
        raise ValueError(f"is {_shown(value)}, not an absolute path below /")
    return value


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\0" in value:
        raise ValueError("is not a path inside the data dir")
    return value


Strings = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
ImageName = Annotated[str, AfterValidator(_image_name), Shown('image name ("repo/name:tag")')]
BuildContext = Annotated[
    str, Field(min_length=1), Shown("path: a Dockerfile or a directory, from the manifest")
]
AbsolutePath = Annotated[str, AfterValidator(_absolute_path), Shown("absolute path")]
Command = Annotated[Strings, Field(min_length=1), Shown("non-empty list of strings")]
Name = Annotated[str, AfterValidator(_name), Shown("name: a-z, 0-9, - and _")]
ImportPath = Annotated[str, AfterValidator(_import_path), Shown('"module:name"')]
Modules = Annotated[
    tuple[Annotated[str, AfterValidator(_module)], ...],
    BeforeValidator(_as_tuple),
    Shown("list of module names"),
]
SignalName = Annotated[str, AfterValidator(_signal), Shown('signal name ("SIGTERM")')]
Regex = Annotated[str, AfterValidator(_regex), Shown("regular expression")]
UrlPath = Annotated[str, AfterValidator(_url_path), Shown('URL path ("/...")')]
RelativePath = Annotated[str, AfterValidator(_relative_path)]
Files = Annotated[dict[RelativePath, str], Shown("table: relative path = text")]
PortNumber = Annotated[int, Field(ge=1, le=65535), Shown("integer 1-65535")]
Count = Annotated[int, Field(ge=0), Shown("integer >= 0")]
Seconds = Annotated[float, Field(gt=0), Shown("seconds > 0")]
GraceSeconds = Annotated[float, Field(ge=0), Shown("seconds >= 0")]
# What a node may be granted within its own network namespace: devices and raw sockets of
# its own, nothing that reaches the machine outside it (peerlab.backends.confine).
Grantable = Literal["NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE"]
Capabilities = Annotated[
    tuple[Grantable, ...],
    BeforeValidator(_as_tuple),
    Shown("list of NET_ADMIN, NET_RAW, NET_BIND_SERVICE"),
]
ProbeType = Literal["http", "tcp", "log", "command", "healthcheck", "none"]
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
Status = Annotated[int, Field(ge=100, le=599), Shown("HTTP status 100-599")]


def _field_name(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", value) or value in NODE_FIELDS:
        raise ValueError(f"is {_shown(value)}, not a field name of its own")
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]


class Table(BaseModel):
    """A TOML table: exact types, no unknown keys, read-only once decoded."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


class System(Table):
    """[system]: what the system is and where its adapter lives."""

    name: Name = Field(description="what the system is called: `--system NAME`, node records")
    description: str = Field("", description="one line shown in listings")
    binary: str | None = Field(
        None, description="Debian package(s) to suggest when a program is missing"
    )
    adapter: ImportPath | None = Field(
        None, description="Python adapter class (typed client, inspect), `package.module:Class`"
    )


class Launch(Table):
    """[launch]: how one node's program starts."""

    mode: Literal["exec", "fork"] = Field(
        "exec", description="`exec` runs the command; `fork` calls `entry` in a forked launcher"
    )
    command: Command | None = Field(
        None,
        description="the program and its first arguments (templated); with an image, "
        "none runs the image's own entrypoint with `args`",
    )
    args: Strings = Field((), description="arguments after the command (templated)")
    entry: ImportPath | None = Field(
        None, description="fork mode: `module:function` called with the rendered args"
    )
    preload: Modules | None = Field(
        None, description="fork mode: modules the launcher imports once (default: entry's)"
    )
    sim: ImportPath | None = Field(
        None,
        description="the simulator: `module:Class` of the system's simulated node, built "
        "with the rendered args (docs/sim.md)",
    )
    capabilities: Capabilities = Field(
        (),
        description="granted within the node's own network namespace (a TUN or WireGuard "
        "device); only a backend that isolates nodes can grant them (netns, docker)",
    )
    image: ImageName | None = Field(
        None, description="docker backend: the image nodes run from (built by `build`, if given)"
    )
    build: BuildContext | None = Field(
        None, description="docker backend: a Dockerfile or a build directory to make the image"
    )
    volume: AbsolutePath | None = Field(
        None,
        description="docker backend: where the image expects its data; the node's data dir "
        "is mounted there too",
    )


class Port(Table):
    """[ports] NAME: one port every node listens on, at its own address."""

    port: PortNumber = Field(description="the port number; `http = 8080` is short for this")
    protocol: Literal["tcp", "udp"] = Field("tcp", description="the transport the fabric proxies")
    proxied: bool = Field(True, description="false: peers dial the node directly, no faults")

    @model_validator(mode="before")
    @classmethod
    def _number_alone(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"port": value}
        return value


class Readiness(Table):
    """[readiness]: how peerlab knows a node is ready."""

    type: ProbeType = Field(
        "tcp",
        description="the probe: an HTTP answer, an open port, a log line, a command that "
        "exits 0; `none` without ports",
    )
    port: str | None = Field(None, description="the [ports] name to probe (default: the first)")
    path: UrlPath = Field("/", description="http: the path to ask for")
    method: HttpMethod = Field("GET", description="http: the request method")
    headers: dict[str, str] = Field(
        default_factory=dict, description="http: request headers (templated)"
    )
    status: Status | None = Field(
        None, description="http: the status that means ready (default: any 2xx)"
    )
    pattern: Regex | None = Field(None, description="log: a regex over stdout and stderr")
    command: Command | None = Field(
        None,
        description="command: a program run in the data dir, exit 0 means ready (templated); "
        "healthcheck: run in the container (default: the image's HEALTHCHECK)",
    )
    timeout: Seconds = Field(30.0, description="seconds a node has to become ready")


class Init(Table):
    """[init]: a command run once per node before its first start, whose output (or a file
    it writes) gives the node fields of its own, such as an id derived from a key it made."""

    command: Command = Field(
        description="run once per node in its data dir before its first start, never on a "
        "restart (templated with the node's own fields)"
    )
    capture: dict[FieldName, Regex] = Field(
        default_factory=dict,
        description="field = regex: its first group (or the whole match) becomes `{field}`",
    )
    source: Literal["output", "stdout", "stderr"] = Field(
        "output", description="where `capture` looks: stdout and stderr, or one of them"
    )
    file: Annotated[RelativePath, Shown("relative path")] | None = Field(
        None, description="capture from this file of the data dir instead of the output"
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="environment added for the command (templated)"
    )
    timeout: Seconds = Field(60.0, description="seconds the command may take")


class Logs(Table):
    """[logs]: how to read the time of a plain-text log line, for the merged timeline."""

    timestamp: Regex | None = Field(
        None, description="a regex whose first group (or match) is a line's time"
    )
    format: str = Field(
        "iso8601",
        description='how to read that time: "iso8601", "unix" (seconds) or a strptime format',
    )


class Template(Table):
    """A field that joins `each`, rendered for every node (of `role`, if given), with `join`."""

    each: str = Field(description="rendered once per node with that node's fields")
    join: str = Field(",", description="written between the nodes' renderings")
    role: str | None = Field(None, description="join only the nodes of this role")


class Role(Table):
    """[roles.NAME]: what nodes of one role do differently."""

    args: Strings = Field((), description="arguments added after launch.args (templated)")
    env: dict[str, str] = Field(default_factory=dict, description="environment added (templated)")
    start_first: bool = Field(False, description="start and wait for these nodes first")
    command: Command | None = Field(
        None, description="a program of the role's own; launch.args then do not apply"
    )
    count: Count = Field(0, description="nodes of this role in the default layout")
    image: ImageName | None = Field(None, description="docker backend: an image of the role's own")
    build: BuildContext | None = Field(
        None, description="docker backend: a Dockerfile or directory for the role's image"
    )
    files: Files = Field(
        default_factory=dict,
        description="files of the role (templated), replacing [files] of the same name",
    )


class Version(Table):
    """[versions."X.Y"]: how a node of one version of the system starts (`--version`)."""

    command: Command | None = Field(
        None, description="the program of this version (run by exec); launch.args still apply"
    )
    args: Strings = Field((), description="arguments added after launch.args (templated)")
    env: dict[str, str] = Field(default_factory=dict, description="environment added (templated)")


class Stop(Table):
    """[stop]: how a node is asked to stop."""

    signal: SignalName = Field("SIGTERM", description="sent by stop and restart before SIGKILL")
    timeout: GraceSeconds = Field(5.0, description="seconds from the signal to SIGKILL")


class Manifest(Table):
    """A whole manifest file, tables in the order their errors are reported."""

    system: System
    launch: Launch
    ports: dict[str, Port] = Field(default_factory=dict)
    readiness: Readiness = Readiness()
    env: dict[str, str] = Field(
        default_factory=dict, description="environment of every node (templated)"
    )
    roles: dict[str, Role] = Field(default_factory=dict)
    templates: dict[str, Template] = Field(default_factory=dict)
    files: Files = Field(
        default_factory=dict,
        description="text files (templated) written into a node's data dir at its first start",
    )
    stop: Stop = Stop()
    versions: dict[str, Version] = Field(default_factory=dict)
    init: Init | None = None
    logs: Logs = Logs()

    def probe(self) -> Readiness:
        """The readiness probe with its defaults: the first port, and no probe without ports."""
        update: dict[str, Any] = {}
        if "type" not in self.readiness.model_fields_set and not self.ports:
            update["type"] = "none"
        if self.readiness.port is None and self.ports:
            update["port"] = next(iter(self.ports))
        return self.readiness.model_copy(update=update)


# The fix for each field, keyed by its path with NAME for a table key. A test keeps this
# table and the schema's fields the same set.
HINTS: dict[str, str] = {
    "system": 'add a [system] table with name = "mysystem"',
    "system.name": 'write name = "mysystem": lowercase letters, digits, - and _, a letter first',
    "system.description": 'write one line of text, e.g. description = "my key-value daemon"',
    "system.binary": 'name the Debian package(s), e.g. binary = "etcd-server"',
    "system.adapter": 'write it as "package.module:ClassName", e.g. "mypkg.kvd:KvdAdapter"',
    "launch": 'add a [launch] table with command = ["mysystem", ...]',
    "launch.mode": 'use "exec" or "fork"',
    "launch.command": 'e.g. command = ["mysystem", "--port", "{port.http}"]',
    "launch.args": 'e.g. args = ["--port", "{port.http}"]',
    "launch.entry": 'name the function that takes argv: entry = "mypkg.main:main"',
    "launch.sim": 'name the simulated node class: sim = "mypkg.sim:Node" (docs/sim.md)',
    "launch.preload": 'write a list of module names, e.g. preload = ["mypkg.node"]',
    "launch.capabilities": 'e.g. capabilities = ["NET_ADMIN"]: NET_ADMIN, NET_RAW or '
    "NET_BIND_SERVICE",
    "launch.image": 'name a local image, e.g. image = "peerlab/etcd" (`peerlab image list`)',
    "launch.build": 'e.g. build = "./Dockerfile" or build = "./image" (a directory)',
    "launch.volume": 'write the path the image keeps its data in, e.g. volume = "/var/lib/kvd"',
    "ports": "write [ports] with a line per port, e.g. http = 8080",
    "ports.NAME": "write a port number or { port = N }",
    "ports.NAME.port": "use a port from 1 to 65535",
    "ports.NAME.protocol": 'use "tcp" or "udp"',
    "ports.NAME.proxied": "write true or false, without quotes",
    "readiness": 'write [readiness] with type = "http", "tcp", "log", "command", '
    '"healthcheck" or "none"',
    "readiness.type": 'use "http", "tcp", "log", "command", "healthcheck" or "none"',
    "readiness.port": "name one of the [ports]",
    "readiness.path": 'write the path to ask for, starting with "/", e.g. path = "/health"',
    "readiness.method": 'use "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS" or "PATCH"',
    "readiness.headers": 'e.g. headers = { Authorization = "Bearer {name}" }',
    "readiness.headers.NAME": 'quote the value, e.g. Accept = "application/json"',
    "readiness.status": "use the status a ready node answers, e.g. status = 200",
    "readiness.command": 'e.g. command = ["mysystem-cli", "health"]; exit 0 means ready '
    "(a healthcheck's runs inside the container)",
    "readiness.pattern": 'write a regex a ready node logs, e.g. pattern = "listening on"',
    "readiness.timeout": "use a positive number of seconds, e.g. timeout = 20",
    "env": 'write [env] with a line per variable, e.g. LOG_LEVEL = "debug"',
    "env.NAME": 'quote the value: variables are text, e.g. LOG_LEVEL = "debug"',
    "roles": "write a [roles.NAME] table per role",
    "roles.NAME": "write the role as a table: [roles.NAME]",
    "roles.NAME.args": 'e.g. args = ["--verbose"]',
    "roles.NAME.env": 'e.g. env = { LOG_LEVEL = "debug" }',
    "roles.NAME.env.NAME": 'quote the value: variables are text, e.g. LOG_LEVEL = "debug"',
    "roles.NAME.start_first": "write true or false, without quotes",
    "roles.NAME.command": 'e.g. command = ["redis-sentinel", "{data_dir}/sentinel.conf"]',
    "roles.NAME.count": "use 0 or more; 0 leaves the role out of the default layout",
    "roles.NAME.image": 'name a local image, e.g. image = "peerlab/redis"',
    "roles.NAME.build": 'e.g. build = "./sentinel.Dockerfile"',
    "roles.NAME.files": 'e.g. files = { "node.conf" = "port {port.http}" }',
    "roles.NAME.files.NAME": 'use a relative name such as "node.conf" = "its text"',
    "templates": 'write [templates] with e.g. peers = { each = "{address}", join = "," }',
    "templates.NAME": 'write { each = "{name}={address}", join = "," }',
    "templates.NAME.each": 'e.g. each = "{name}=http://{address}:{port.peer}"',
    "templates.NAME.join": 'e.g. join = "," (or "\\n" for a line per node)',
    "templates.NAME.role": "name one of the [roles]",
    "files": 'e.g. [files] "node.conf" = "port {port.http}"',
    "files.NAME": 'use a relative name such as "node.conf" = "its text"; """ for many lines',
    "stop": 'write [stop] with signal = "SIGTERM" and timeout = 5',
    "stop.signal": 'use a signal name such as "SIGTERM", "SIGINT" or "SIGQUIT"',
    "stop.timeout": "use a number of seconds, 0 or more, e.g. timeout = 5",
    "versions": 'write a [versions."X.Y"] table per version, e.g. args = ["--protocol", "1.0"]',
    "versions.NAME": 'write the version as a table: [versions."1.0"]',
    "versions.NAME.command": 'e.g. command = ["/opt/mysystem-1.0/bin/mysystem"]',
    "versions.NAME.args": 'e.g. args = ["--protocol", "1.0"]',
    "versions.NAME.env": 'e.g. env = { PROTOCOL = "1.0" }',
    "versions.NAME.env.NAME": 'quote the value: variables are text, e.g. PROTOCOL = "1.0"',
    "init": 'write [init] with command = ["mysystem", "init"] and capture = { id = "ID: (\\S+)" }',
    "init.command": 'e.g. command = ["mysystem", "generate", "--home", "{data_dir}"]',
    "init.capture": "write a table: field = regex, e.g. capture = { device_id = 'ID: (\\S+)' }",
    "init.capture.NAME": "name the field in lowercase (device_id) and give a regex with one group",
    "init.source": 'use "output", "stdout" or "stderr"',
    "init.file": 'use a relative name of a file the command writes, e.g. file = "id.txt"',
    "init.env": 'e.g. env = { HOME = "{data_dir}" }',
    "init.env.NAME": 'quote the value: variables are text, e.g. HOME = "{data_dir}"',
    "init.timeout": "use a positive number of seconds, e.g. timeout = 30",
    "logs": "write [logs] with timestamp = a regex and format = how to read it",
    "logs.timestamp": "write a regex whose first group is the time, e.g. timestamp = '^(\\S+)'",
    "logs.format": 'use "iso8601", "unix" or a strptime format such as "%Y/%m/%d %H:%M:%S"',
}


def decode(data: Mapping[str, Any], source: str = "<manifest>") -> Manifest:
    """A manifest's data as a `Manifest`, or a `UsageError` naming the first bad field."""
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        raise _type_error(source, exc.errors()[0]) from None
    for loc, problem, hint in _cross_field_problems(manifest):
        raise _usage_error(source, loc, problem, hint)
    return manifest


Loc = tuple[str, ...]


def _usage_error(source: str, loc: Loc, problem: str, hint: str | None = None) -> UsageError:
    path = ".".join(loc)
    if hint is None:
        hint = HINTS.get(_locate(loc)[0], "see the field reference in docs/adding-a-system.md")
    return UsageError(f"{source}: field '{path}' {problem}", field=path, hint=hint)


def _type_error(source: str, error: ErrorDetails) -> UsageError:
    # A bad table key is reported at the key; a bad list item names its list.
    loc = [part for part in error["loc"] if part != "[key]"]
    item = None
    if loc and isinstance(loc[-1], int):
        item = int(loc.pop()) + 1
    names = tuple(str(part) for part in loc)
    if error["type"] == "extra_forbidden" and names[-1] == "backend":
        return _usage_error(
            source,
            names,
            "cannot choose a backend: one network runs on one backend, and mixing backends "
            "(processes beside containers) is not supported",
            "remove it, and choose the backend for the whole run: --backend NAME, "
            "Environment(backend=NAME) or pytest --peerlab-backend NAME",
        )
    if error["type"] == "extra_forbidden":
        known = list(_model_fields(_locate(names[:-1])[1]))
        close = difflib.get_close_matches(names[-1], known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known fields here: {', '.join(known)}"
        return _usage_error(source, names, "is not a known field", hint)
    problem = _problem(error)
    return _usage_error(source, names, problem if item is None else f"item {item} {problem}")


_KINDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}
_BOUNDS = {
    "greater_than": "more than {gt:g}",
    "greater_than_equal": "at least {ge:g}",
    "less_than": "less than {lt:g}",
    "less_than_equal": "at most {le:g}",
}


def _problem(error: ErrorDetails) -> str:
    kind, value, context = error["type"], _shown(error["input"]), error.get("ctx", {})
    if kind == "missing":
        return "is missing"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, got {value}"
    if kind in _BOUNDS:
        return f"is {value}, must be {_BOUNDS[kind].format(**context)}"
    if kind == "literal_error":
        expected = str(context["expected"]).replace("'", '"')
        return f"is {value}, expected {expected}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "value_error":
        return str(context["error"])
    return f"is {value}: {error['msg']}"


def _shown(value: Any) -> str:
    """A value as TOML writes it, cut short: "SIGFOO", true, [1, 2]."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | list | dict):
        text = json.dumps(value, default=str, ensure_ascii=False)
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _cross_field_problems(manifest: Manifest) -> Iterator[tuple[Loc, str, str | None]]:
    launch, probe = manifest.launch, manifest.probe()
    if launch.mode == "fork" and launch.entry is None:
        yield ("launch", "entry"), 'is required for mode = "fork"', None
    images = launch.image is not None or launch.build is not None
    if launch.command is None and not images:
        yield ("launch", "command"), "is missing", None
    if launch.mode == "fork" and launch.command is None:
        yield ("launch", "command"), 'is required for mode = "fork"', None
    if probe.type == "healthcheck" and not images:
        problem = "is healthcheck, which only a node run from an image has"
        yield ("readiness", "type"), problem, 'name the image (launch.image) or use "http"/"tcp"'
    if probe.type in ("http", "tcp") and probe.port not in manifest.ports:
        ports = ", ".join(manifest.ports) or "(add a [ports] entry)"
        problem = f"names {_shown(probe.port)}, not one of the [ports]"
        yield ("readiness", "port"), problem, f"use one of: {ports}"
    if probe.type == "log" and probe.pattern is None:
        yield ("readiness", "pattern"), "is missing: a log probe needs one", None
    if probe.type == "command" and probe.command is None:
        yield ("readiness", "command"), "is missing: a command probe needs one", None
    init = manifest.init
    captured = tuple(init.capture) if init is not None else ()
    for name, pattern in init.capture.items() if init is not None else ():
        if re.compile(pattern).groups > 1:
            problem = f"has {re.compile(pattern).groups} groups, at most one is the value"
            yield ("init", "capture", name), problem, "make the others (?:non-capturing)"
    taken = {*manifest.templates, *(f"port.{p}" for p in manifest.ports)}
    for name in captured:
        if name in taken:
            yield ("init", "capture", name), "is a template field already", "choose another name"
    roles = ", ".join(manifest.roles) or "(add a [roles.NAME] table)"
    for name, template in manifest.templates.items():
        if template.role is not None and template.role not in manifest.roles:
            problem = f"names {_shown(template.role)}, not one of the [roles]"
            yield ("templates", name, "role"), problem, f"use one of: {roles}"
    own = {*NODE_FIELDS, *(f"port.{p}" for p in manifest.ports)}
    known = {*own, *captured, *manifest.templates}
    fix = f"known fields: {', '.join('{' + f + '}' for f in sorted(known))}"
    fix += ", {peer.NAME.FIELD} for another node's, {{ and }} for braces"
    for loc, text in _templated(manifest):
        for name in fields_in(text):
            peer = PEER_FIELD.fullmatch(name)
            if peer is not None and peer.group(2) in {*own, *captured}:
                continue
            if name not in known:
                yield loc, f"uses unknown template field {{{name}}}", fix
    for loc, text in _init_templated(manifest):
        for name in fields_in(text):
            if name not in own:
                problem = f"uses {{{name}}}, which is not known before the init step"
                yield (
                    loc,
                    problem,
                    f"the init step knows only the node's own fields: {', '.join(sorted(own))}",
                )


def _init_templated(manifest: Manifest) -> Iterator[tuple[Loc, str]]:
    """The texts templated before the init step ran: only the node's own fields are known."""
    if manifest.init is not None:
        yield from ((("init", "command"), part) for part in manifest.init.command)
        yield from ((("init", "env", key), value) for key, value in manifest.init.env.items())


def _templated(manifest: Manifest) -> Iterator[tuple[Loc, str]]:
    """Every templated text after the init step, with the path of the field it is in."""
    launch = manifest.launch
    probe = manifest.readiness
    yield from ((("readiness", "headers", key), v) for key, v in probe.headers.items())
    yield from ((("readiness", "command"), part) for part in probe.command or ())
    yield from ((("launch", "command"), part) for part in launch.command or ())
    yield from ((("launch", "args"), part) for part in launch.args)
    yield from ((("env", key), value) for key, value in manifest.env.items())
    yield from ((("templates", name, "each"), t.each) for name, t in manifest.templates.items())
    yield from ((("files", name), text) for name, text in manifest.files.items())
    for name, role in manifest.roles.items():
        yield from ((("roles", name, "command"), part) for part in role.command or ())
        yield from ((("roles", name, "args"), part) for part in role.args)
        yield from ((("roles", name, "env", key), value) for key, value in role.env.items())
        yield from ((("roles", name, "files", file), text) for file, text in role.files.items())
    for name, version in manifest.versions.items():
        yield from ((("versions", name, "command"), part) for part in version.command or ())
        yield from ((("versions", name, "args"), part) for part in version.args)
        yield from ((("versions", name, "env", key), value) for key, value in version.env.items())


def _unwrap(annotation: Any) -> tuple[Any, list[Any]]:
    """The type under Annotated[...] and `| None`, and the metadata found on the way."""
    metadata: list[Any] = []
    while True:
        if get_origin(annotation) is Annotated:
            metadata += annotation.__metadata__
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) in (Union, UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        else:
            return annotation, metadata


def _model_fields(annotation: Any) -> dict[str, FieldInfo]:
    bare = _unwrap(annotation)[0]
    return bare.model_fields if isinstance(bare, type) and issubclass(bare, BaseModel) else {}


def _table_value(annotation: Any) -> Any:
    """The value type of a table keyed by the user's names (ports, roles, env ...), or None."""
    bare = _unwrap(annotation)[0]
    return get_args(bare)[1] if get_origin(bare) is dict else None


def _locate(loc: Loc) -> tuple[str, Any]:
    """A path of the data as the schema names it (a table key becomes NAME), and the schema
    type there (None past an unknown key)."""
    node: Any = Manifest
    names = []
    for part in loc:
        value = _table_value(node)
        if value is not None:
            names.append(KEY)
            node = value
        else:
            names.append(part)
            field = _model_fields(node).get(part)
            node = field.annotation if field is not None else None
    return ".".join(names), node


def schema_paths() -> list[str]:
    """Every path the schema knows, tables and table keys included ("ports.NAME")."""
    paths: list[str] = []

    def visit(annotation: Any, prefix: str) -> None:
        value = _table_value(annotation)
        if value is not None:
            paths.append(f"{prefix}.{KEY}")
            visit(value, f"{prefix}.{KEY}")
        for name, field in _model_fields(annotation).items():
            path = f"{prefix}.{name}".lstrip(".")
            paths.append(path)
            visit(_annotation(field), path)

    visit(Manifest, "")
    return paths


@dataclass(frozen=True)
class FieldDoc:
    """One row of the field reference."""

    path: str
    type: str
    default: str
    meaning: str


def reference() -> list[FieldDoc]:
    """Every value a manifest may set, in file order; tables of tables are opened."""
    rows: list[FieldDoc] = []

    def visit(annotation: Any, prefix: str) -> None:
        for name, field in _model_fields(annotation).items():
            path = f"{prefix}{name}"
            value = _table_value(field.annotation)
            if _model_fields(field.annotation):
                visit(field.annotation, f"{path}.")
            elif value is not None and _model_fields(value):
                visit(value, f"{path}.{KEY}.")
            else:
                kind = _type_name(_annotation(field))
                rows.append(FieldDoc(path, kind, _default(field), field.description or ""))

    visit(Manifest, "")
    return rows


def _annotation(field: FieldInfo) -> Any:
    # pydantic moves the outer Annotated[...] metadata onto the field; put it back.
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _type_name(annotation: Any) -> str:
    bare, metadata = _unwrap(annotation)
    shown = [item for item in metadata if isinstance(item, Shown)]
    if shown:
        return shown[0]
    if get_origin(bare) is Literal:
        *first, last = (f'"{value}"' for value in get_args(bare))
        return f"{', '.join(first)} or {last}" if first else last
    if get_origin(bare) is tuple:
        return f"list of {_type_name(get_args(bare)[0])}s"
    if get_origin(bare) is dict:
        return f"table of {_type_name(get_args(bare)[1])}s"
    names = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if bare in names:
        return names[bare]
    raise TypeError(f"no name for {annotation!r}: give its alias a Shown(...)")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def reference_markdown() -> str:
    """The field reference as the Markdown table in docs/adding-a-system.md."""
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for row in reference():
        cells = (f"`{row.path}`", row.type, f"`{row.default}`", row.meaning)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
