"""Systems as data: a TOML manifest says how to run one node of a system.

A manifest is enough to test a system written in any language: a command template, named
ports, a readiness probe, a data dir, environment variables and roles. A Python adapter
(named by `adapter`) may add a typed client and a state probe on top.

What a manifest file may say, and the one-line message for a value it may not, is
`peerlab.manifest_schema`; every field is listed in docs/adding-a-system.md. This module
owns the system as the Environment runs it (`SystemSpec`, defaults filled in) and the
rendering of its templates for one node.

Template fields: {name} {index} {address} {bind} {data_dir} {python} {seed} {role}
{version} {port.NAME} and every `[templates]` entry, which joins one line per node, e.g.
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

A system may also run from a container image on the docker backend (`launch.image`, or
`launch.build` with a Dockerfile; a role may have its own): the same command, arguments,
environment, ports and files apply inside the container, and without `launch.command` the
image's own entrypoint runs with `launch.args`. `launch.capabilities` (such as NET_ADMIN)
are granted within the node's own network namespace, on backends that give it one.

Versions let one network mix releases of a system (`peerlab up --version A,B=1.0`): each
`[versions."X.Y"]` table says what a node of that version runs differently, its own
`command` (by exec; `launch.args` still apply), extra `args` or `env`.

    [versions."1.0"]
    args = ["--protocol", "1.0"]

`[files]` (and a role's `files`) are templated text files written into the node's data
dir before its first start. They are not written again on a restart: programs such as
Redis rewrite their own config files, and a restart must see what they wrote.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from peerlab.errors import UsageError
from peerlab.manifest_schema import (
    FIELD_RE,
    PEER_FIELD,
    Init,
    Logs,
    Manifest,
    Port,
    Readiness,
    Role,
    Template,
    Version,
    decode,
    fields_in,
)

LaunchMode = Literal["exec", "fork"]


class PortSpec(Port):
    """A port with its name, the key it has in [ports]."""

    name: str


class RoleSpec(Role):
    """A role with its name, the key it has in [roles]."""

    name: str


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
    sim: str | None
    ports: Mapping[str, PortSpec]
    readiness: Readiness
    env: Mapping[str, str]
    roles: Mapping[str, RoleSpec]
    templates: Mapping[str, Template]
    adapter: str | None
    stop_signal: str
    stop_timeout: float
    binary: str | None
    source: Path | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    versions: Mapping[str, Version] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()  # granted within the node's network namespace
    image: str | None = None  # docker backend: the image nodes run from
    build: Path | None = None  # docker backend: a Dockerfile or directory that makes it
    volume: str | None = None  # docker backend: the image's own data path
    init: Init | None = None
    logs: Logs = field(default_factory=Logs)

    @property
    def layout(self) -> list[tuple[str, int]]:
        """The default layout: (role, count) for every role with a count, in manifest order."""
        return [(role.name, role.count) for role in self.roles.values() if role.count > 0]

    def commands(self) -> list[tuple[str, ...]]:
        """Every program this system may run: launch.command and the roles' own commands."""
        own = [self.command] if self.command else []
        return (
            own
            + [r.command for r in self.roles.values() if r.command]
            + [v.command for v in self.versions.values() if v.command]
        )

    def images(self) -> dict[str | None, tuple[str | None, Path | None]]:
        """The image (name, build context) of the system (key None) and of each role."""
        found: dict[str | None, tuple[str | None, Path | None]] = {None: (self.image, self.build)}
        for role in self.roles.values():
            if role.image or role.build:
                found[role.name] = (role.image, self._context(role.build))
            else:
                found[role.name] = (self.image, self.build)
        return found

    def _context(self, build: str | None) -> Path | None:
        """A build context as written in the manifest, from the manifest's own folder."""
        if build is None:
            return None
        base = self.source.parent if self.source is not None else Path.cwd()
        return (base / build).resolve()

    def check_version(self, version: str, field: str = "version") -> str:
        """`version` when the manifest's [versions] has it; else a UsageError naming them."""
        if version not in self.versions:
            known = ", ".join(self.versions) or "(none: the manifest has no [versions])"
            raise UsageError(
                f"{field} {version!r}: system {self.name!r} has no such version",
                field=field,
                hint=f"versions in its manifest: {known}",
            )
        return version


def parse_manifest(data: Mapping[str, Any], source: str = "<manifest>") -> SystemSpec:
    """Decode a manifest's data strictly; a bad field is a `UsageError` naming it and the fix."""
    return system_spec(decode(data, source))


def system_spec(manifest: Manifest, source: Path | None = None) -> SystemSpec:
    """The system a decoded manifest describes, its defaults filled in."""
    launch, entry = manifest.launch, manifest.launch.entry
    entry_module = (entry.partition(":")[0],) if entry else ()
    return SystemSpec(
        name=manifest.system.name,
        description=manifest.system.description,
        mode=launch.mode,
        command=launch.command or (),
        args=launch.args,
        entry=entry,
        preload=entry_module if launch.preload is None else launch.preload,
        sim=launch.sim,
        ports={name: PortSpec(name=name, **dict(port)) for name, port in manifest.ports.items()},
        readiness=manifest.probe(),
        env=manifest.env,
        roles={name: RoleSpec(name=name, **dict(role)) for name, role in manifest.roles.items()},
        templates=manifest.templates,
        adapter=manifest.system.adapter,
        stop_signal=manifest.stop.signal,
        stop_timeout=manifest.stop.timeout,
        binary=manifest.system.binary,
        source=source,
        files=manifest.files,
        versions=manifest.versions,
        capabilities=launch.capabilities,
        image=launch.image,
        build=Path(launch.build) if launch.build else None,
        volume=launch.volume,
        init=manifest.init,
        logs=manifest.logs,
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
    build = (path.parent / spec.build).resolve() if spec.build is not None else None
    return dataclasses.replace(spec, source=path, build=build)


def render(template: str, fields: Mapping[str, Any]) -> str:
    """Fill `{field}` placeholders (dotted names such as {port.http} are plain keys);
    `{{` and `}}` are literal braces."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)[0]
        try:
            return str(fields[name])
        except KeyError:
            peer = PEER_FIELD.fullmatch(name)
            problem = f"there is no node {peer.group(1)!r}" if peer else "it has no value here"
            raise UsageError(
                f"template field {{{name}}} cannot be filled: {problem}",
                field="template",
                hint="name a node that exists (peers are A, B, ...) and a field it has",
            ) from None

    return FIELD_RE.sub(value, template)


def peer_references(spec: SystemSpec) -> set[str]:
    """The `{peer.NAME.field}` fields the manifest's templates use."""
    texts = [*spec.command, *spec.args, *spec.env.values(), *spec.files.values()]
    texts += [t.each for t in spec.templates.values()]
    texts += [*spec.readiness.headers.values(), *(spec.readiness.command or ())]
    for role in spec.roles.values():
        texts += [*(role.command or ()), *role.args, *role.env.values(), *role.files.values()]
    return {name for text in texts for name in fields_in(text) if PEER_FIELD.fullmatch(name)}


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
    shared: Mapping[str, Any],
    version: str | None = None,
    captured: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The template fields for one node: its own, what its init step `captured`, and the
    fields all nodes share (`cluster_fields`)."""
    fields: dict[str, Any] = {
        "name": name,
        "index": index,
        "address": address,
        "bind": bind,
        "data_dir": str(data_dir),
        "python": sys.executable,
        "seed": seed,
        "role": role or "",
        "version": version or "",
        "manifest_dir": str(spec.source.parent.resolve()) if spec.source else "",
    }
    fields.update({f"port.{p.name}": p.port for p in spec.ports.values()})
    fields.update(captured or {})
    fields.update(shared)
    return fields


def cluster_fields(spec: SystemSpec, cluster: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The fields every node shares, over `cluster` (every node's own and captured fields):
    the `{peer.NAME.field}` references and the joins of [templates]. Rendered once for a
    batch of nodes: a thousand nodes each joining a thousand would be a million."""
    shared: dict[str, Any] = {}
    by_name = {member.get("name"): member for member in cluster}
    for reference in peer_references(spec):
        match = PEER_FIELD.fullmatch(reference)
        assert match is not None
        member = by_name.get(match.group(1))
        if member is not None and match.group(2) in member:
            shared[reference] = member[match.group(2)]
    for tname, template in spec.templates.items():
        members = [m for m in cluster if template.role is None or m.get("role") == template.role]
        shared[tname] = template.join.join(render(template.each, member) for member in members)
    return shared


def file_names(spec: SystemSpec, role: str | None) -> dict[str, str]:
    """The files of a node of `role` as the manifest writes them: `[files]`, then its role's."""
    files = dict(spec.files)
    if role is not None:
        files.update(spec.roles[role].files)
    return files


def node_files(spec: SystemSpec, role: str | None, fields: Mapping[str, Any]) -> dict[str, str]:
    """The files to write into a node's data dir, rendered."""
    return {name: render(text, fields) for name, text in file_names(spec, role).items()}
