"""Manifest roles: a program of their own, a default layout, files rendered into the data dir,
templates limited to one role; bad ones fail naming the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peerlab.errors import UsageError
from peerlab.manifest import node_fields, node_files, parse_manifest
from peerlab.systems import find_system

BASE: dict[str, Any] = {
    "system": {"name": "kvd"},
    "launch": {"command": ["kvd", "{data_dir}/kvd.conf"], "args": ["--verbose"]},
    "ports": {"data": 7000},
    "templates": {"primary": {"each": "{address}", "role": "primary"}},
    "files": {"common.conf": "port {port.data}\n"},
    "roles": {
        "primary": {"count": 1, "start_first": True, "files": {"kvd.conf": "primary {name}\n"}},
        "follower": {"count": 2, "files": {"kvd.conf": "follow {primary}:{port.data}\n"}},
        "watcher": {"count": 1, "command": ["kvwatch", "--watch", "{primary}"]},
        "spare": {},
    },
}


def fields(spec: Any, name: str, index: int, role: str, cluster: list) -> dict[str, Any]:
    return node_fields(
        spec,
        name=name,
        index=index,
        address=f"127.0.0.{index + 2}",
        bind=f"127.9.0.{index + 2}",
        data_dir=Path(f"/d/{name}"),
        seed=1,
        role=role,
        cluster=cluster,
    )


def test_roles_give_the_layout_programs_and_files() -> None:
    spec = parse_manifest(BASE)
    assert spec.layout == [("primary", 1), ("follower", 2), ("watcher", 1)]
    assert spec.commands() == [("kvd", "{data_dir}/kvd.conf"), ("kvwatch", "--watch", "{primary}")]
    roles = ["primary", "follower", "follower", "watcher"]
    own = [fields(spec, n, i, r, []) for i, (n, r) in enumerate(zip("ABCD", roles, strict=True))]
    follower = fields(spec, "B", 1, "follower", own)
    assert follower["primary"] == "127.0.0.2"  # only the primary's address, not everyone's
    assert node_files(spec, "follower", follower) == {
        "common.conf": "port 7000\n",
        "kvd.conf": "follow 127.0.0.2:7000\n",
    }
    assert node_files(spec, "watcher", follower) == {"common.conf": "port 7000\n"}
    assert node_files(spec, None, follower) == {"common.conf": "port 7000\n"}


def test_a_template_without_role_still_joins_every_node() -> None:
    spec = find_system("etcd")
    assert spec.layout == []
    assert all(t.role is None for t in spec.templates.values())


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"roles": {"x": {"count": -1}}}, "roles.x.count"),
        ({"roles": {"x": {"count": "two"}}}, "roles.x.count"),
        ({"roles": {"x": {"command": []}}}, "roles.x.command"),
        ({"roles": {"x": {"command": "kvd"}}}, "roles.x.command"),
        ({"roles": {"x": {"args": "--fast"}}}, "roles.x.args"),
        ({"roles": {"x": {"colour": "red"}}}, "roles.x.colour"),
        ({"roles": {"x": {"files": {"/etc/passwd": "x"}}}}, "roles.x.files./etc/passwd"),
        ({"files": {"../up.conf": "x"}}, "files.../up.conf"),
        ({"files": {"a.conf": 3}}, "files.a.conf"),
        ({"files": "a.conf"}, "files"),
        ({"files": {"a.conf": "{nope}"}}, "files.a.conf"),
        ({"roles": {"x": {"command": ["{nope}"]}}}, "roles.x.command"),
        ({"templates": {"t": {"each": "{name}", "role": "ghost"}}}, "templates.t.role"),
        ({"templates": {"t": {"each": "{name}", "joiner": ","}}}, "templates.t.joiner"),
    ],
)
def test_bad_roles_and_files_name_the_field(patch: dict[str, Any], field: str) -> None:
    data = {**BASE, **patch}
    if "roles" in patch:  # keep the roles the templates name
        data["roles"] = {**BASE["roles"], **patch["roles"]}
    with pytest.raises(UsageError) as info:
        parse_manifest(data, "m.toml")
    assert info.value.field == field
    assert info.value.hint


def test_builtin_redis_manifest_has_its_layout() -> None:
    spec = find_system("redis-sentinel")
    assert spec.layout == [("master", 1), ("replica", 2), ("sentinel", 3)]
    assert spec.roles["sentinel"].command == ("redis-sentinel", "{data_dir}/sentinel.conf")
    assert spec.roles["replica-wrong-password"].count == 0
