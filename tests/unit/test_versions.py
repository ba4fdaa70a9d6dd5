"""A network of mixed versions: `--version A,B=1.0`, the manifest's [versions], and what a
node's version changes in its launch."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlab.errors import UsageError
from peerlab.launching import plan_launch
from peerlab.manifest import node_fields, parse_manifest
from peerlab.node import Node
from peerlab.versions import parse_versions

MANIFEST = {
    "system": {"name": "kvd"},
    "launch": {"mode": "fork", "entry": "kvd.main:main", "command": ["kvd"], "args": ["-v"]},
    "versions": {
        "1.0": {"args": ["--protocol", "{version}"], "env": {"KVD_OLD": "1"}},
        "0.9": {"command": ["/opt/kvd-0.9/bin/kvd"]},
    },
}


def node(version: str | None, tmp_path: Path) -> Node:
    spec = parse_manifest(MANIFEST)
    data = tmp_path / "A"
    built = Node("A", 0, spec, None, "127.0.0.1", "127.0.0.1", data, data / "o", data / "e")
    built.fields = node_fields(
        spec,
        name="A",
        index=0,
        address="127.0.0.1",
        bind="127.0.0.1",
        data_dir=data,
        seed=1,
        role=None,
        shared={},
        version=version,
    )
    return built


def test_a_version_adds_its_args_and_env_or_runs_its_own_program(tmp_path: Path) -> None:
    plain = plan_launch(node(None, tmp_path), seed=1, extra_env={}, clock_offset=None)
    assert plain.argv == ["kvd", "-v"] and plain.entry == "kvd.main:main"
    old = plan_launch(node("1.0", tmp_path), seed=1, extra_env={}, clock_offset=None)
    assert old.argv == ["kvd", "-v", "--protocol", "1.0"] and old.env["KVD_OLD"] == "1"
    assert old.entry == "kvd.main:main", "same program: still forked from the launcher"
    older = plan_launch(node("0.9", tmp_path), seed=1, extra_env={}, clock_offset=None)
    assert older.argv == ["/opt/kvd-0.9/bin/kvd", "-v"] and older.entry is None


def test_an_unknown_version_is_refused_naming_the_known_ones() -> None:
    spec = parse_manifest(MANIFEST)
    with pytest.raises(
        UsageError, match=r"--version '2\.0': system 'kvd' has no such version"
    ) as raised:
        spec.check_version("2.0", "--version")
    assert raised.value.hint == "versions in its manifest: 1.0, 0.9"


def test_version_assignments_parse_and_bad_ones_name_the_fix() -> None:
    assert parse_versions(["A,B=1.0", "C, D=1.1"]) == {
        "A": "1.0",
        "B": "1.0",
        "C": "1.1",
        "D": "1.1",
    }
    for bad in ("A,B", "A=", "A/B=1.0"):
        with pytest.raises(UsageError, match="is not NODES=VERSION"):
            parse_versions([bad])
    with pytest.raises(UsageError, match="names node 'A' twice"):
        parse_versions(["A=1.0", "A,B=1.1"])
