"""Manifest roles: a program of their own, a default layout, files rendered into the data dir,
templates limited to one role (bad ones: tests/unit/test_manifest_schema.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from peerlab.manifest import cluster_fields, node_fields, node_files, parse_manifest
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
        shared=cluster_fields(spec, cluster),
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


def test_builtin_redis_manifest_has_its_layout() -> None:
    spec = find_system("redis-sentinel")
    assert spec.layout == [("master", 1), ("replica", 2), ("sentinel", 3)]
    assert spec.roles["sentinel"].command == ("redis-sentinel", "{data_dir}/sentinel.conf")
    assert spec.roles["replica-wrong-password"].count == 0
