"""Manifests: valid ones load, bad ones fail with the field named and a fix."""

from pathlib import Path

import pytest

from peerlab.errors import UsageError
from peerlab.manifest import cluster_fields, load_manifest, node_fields, parse_manifest, render
from peerlab.manifest_schema import NODE_FIELDS
from peerlab.systems import builtin_systems, find_system

MINIMAL = {
    "system": {"name": "kvd"},
    "launch": {"command": ["kvd"], "args": ["--port", "{port.http}"]},
    "ports": {"http": 8080},
    "readiness": {"type": "http", "path": "/health"},
}


def test_builtin_manifests_load() -> None:
    assert {"syncpeer", "etcd"} <= set(builtin_systems())
    for name in builtin_systems():
        spec = find_system(name)
        assert spec.name == name
        assert spec.ports


def test_minimal_manifest_defaults() -> None:
    spec = parse_manifest(MINIMAL)
    assert spec.mode == "exec"
    assert spec.ports["http"].port == 8080
    assert spec.ports["http"].protocol == "tcp"
    assert spec.readiness.port == "http"


def test_defaults_that_follow_from_other_fields() -> None:
    fork = {**MINIMAL, "launch": {"mode": "fork", "entry": "mypkg.node:main", "command": ["x"]}}
    assert parse_manifest(fork).preload == ("mypkg.node",)
    fork["launch"] = {**fork["launch"], "preload": []}
    assert parse_manifest(fork).preload == ()
    portless = parse_manifest({"system": {"name": "k"}, "launch": {"command": ["k"]}})
    assert (portless.readiness.type, portless.readiness.port) == ("none", None)
    assert (portless.stop_signal, portless.stop_timeout) == ("SIGTERM", 5.0)
    assert find_system("syncpeer").preload == ("syncpeer.io.node",)


def test_capabilities_are_granted_by_name() -> None:
    launch = {"command": ["x"], "capabilities": ["NET_ADMIN", "NET_RAW"]}
    assert parse_manifest({**MINIMAL, "launch": launch}).capabilities == ("NET_ADMIN", "NET_RAW")
    assert parse_manifest(MINIMAL).capabilities == ()


def test_unknown_system_lists_known_ones() -> None:
    with pytest.raises(UsageError) as info:
        find_system("nosuchsystem")
    assert "nosuchsystem" in str(info.value)
    assert "syncpeer" in str(info.value.hint)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[system\nname = ")
    with pytest.raises(UsageError, match=r"bad\.toml"):
        load_manifest(bad)


def test_cluster_template_joins_every_node() -> None:
    spec = find_system("etcd")
    members = [
        node_fields(
            spec,
            name=n,
            index=i,
            address=f"127.0.0.{i + 2}",
            bind="x",
            data_dir=Path("/d"),
            seed=1,
            role=None,
            shared=cluster_fields(spec, []),
        )
        for i, n in enumerate("ABC")
    ]
    fields = node_fields(
        spec,
        name="A",
        index=0,
        address="127.0.0.2",
        bind="127.9.0.2",
        data_dir=Path("/d"),
        seed=1,
        role=None,
        shared=cluster_fields(spec, members),
    )
    assert fields["initial_cluster"] == (
        "A=http://127.0.0.2:2380,B=http://127.0.0.3:2380,C=http://127.0.0.4:2380"
    )
    assert render("--listen {bind}:{port.client}", fields) == "--listen 127.9.0.2:2379"
    # The fields the schema lets templates use are the ones a node has.
    assert set(fields) == {*NODE_FIELDS, "port.client", "port.peer", "initial_cluster"}
