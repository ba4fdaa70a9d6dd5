"""Snapshots of a live network: data dirs, running nodes and faults saved and brought back."""

import json
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import UsageError
from peerlab.snapshot import list_snapshots, restore, save, snapshot_dir

MANIFEST = Path(__file__).parents[2] / "fixtures" / "httpd.toml"


@pytest.fixture
def env(tmp_path: Path):
    with Environment("snap", seed=5, workdir=tmp_path / "work") as environment:
        yield environment


def test_save_and_restore_the_whole_network(env: Environment, tmp_path: Path) -> None:
    a, b, _ = env.start(str(MANIFEST), 3)
    (a.data_dir / "keys.json").write_text('{"key": "A-1"}')
    (b.data_dir / "friends.json").write_text('["A"]')
    env.net.partition([["A", "B"], ["C"]])
    env.net.latency(150, 10, src="A", dst="B")
    env.kill("C")
    target = tmp_path / "snapshots" / "before"
    manifest = save(env, target)
    assert [n["state"] for n in manifest["nodes"]] == ["running", "running", "killed"]
    assert {f["name"] for f in manifest["faults"]} == {"partition", "latency:A->B"}
    assert (target / "nodes/A/data/keys.json").read_text() == '{"key": "A-1"}'
    assert all(n.state in ("running", "killed") for n in env.nodes.values()), "resumed"
    assert json.loads((target / "snapshot.json").read_text())["seed"] == 5

    (a.data_dir / "keys.json").write_text('{"key": "A-2"}')
    (b.data_dir / "friends.json").unlink()
    (b.data_dir / "new.txt").write_text("after the snapshot")
    env.net.clear()
    env.restart("C")
    env.kill("A")
    old_pid = b.pid

    done = restore(env, target)
    assert done["started"] == ["A", "B"] and done["stopped"] == ["C"]
    assert (a.data_dir / "keys.json").read_text() == '{"key": "A-1"}'
    assert (b.data_dir / "friends.json").read_text() == '["A"]'
    assert not (b.data_dir / "new.txt").exists()
    assert [env.node(n).state for n in "ABC"] == ["running", "running", "stopped"]
    assert b.pid != old_pid, "restored nodes start again on their restored data"
    assert {f["name"] for f in env.net.faults()} == {"partition", "latency:A->B"}
    events = [e.f for e in env.history.entries() if e.type == "event"]
    assert "snapshot_saved" in events and "snapshot_restored" in events


def test_names_and_refusals(env: Environment, tmp_path: Path) -> None:
    env.start(str(MANIFEST), 1)
    root = tmp_path / "snapshots"
    with pytest.raises(UsageError, match="not usable"):
        snapshot_dir("../escape", root)
    save(env, snapshot_dir("one", root))
    with pytest.raises(UsageError, match="already exists"):
        save(env, snapshot_dir("one", root))
    save(env, snapshot_dir("one", root), force=True)
    with pytest.raises(UsageError, match="no snapshot 'two'"):
        restore(env, snapshot_dir("two", root))
    assert [s["name"] for s in list_snapshots(root)] == ["one"]
    manifest = json.loads((root / "one" / "snapshot.json").read_text())
    manifest["backend"]["address_block"] += 1
    (root / "one" / "snapshot.json").write_text(json.dumps(manifest))
    with pytest.raises(UsageError, match="address_block"):
        restore(env, root / "one")
