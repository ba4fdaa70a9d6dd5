"""Hostile names never become paths: the check, and removals confined to their root."""

from pathlib import Path

import pytest

from peerlab.errors import PeerlabError, UsageError
from peerlab.names import check_name, remove_tree
from peerlab.snapshot import snapshot_dir

HOSTILE = ["../../evil", "/abs/path", "", "x" * 65, ".", "..", ".hidden", "a/b", "a\0b", "-rf"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="is not usable") as caught:
        check_name(name, "peer", "name")
    assert caught.value.field == "name"
    assert "letters, digits" in (caught.value.hint or "")


@pytest.mark.parametrize("name", ["A", "node-1", "kv_2.b", "x" * 64, "9"])
def test_safe_names_pass(name: str) -> None:
    assert check_name(name, "peer", "name") == name


@pytest.mark.parametrize("name", HOSTILE)
def test_snapshot_names_are_checked(name: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        snapshot_dir(name, tmp_path)


def test_remove_tree_stays_inside_its_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "work").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious").write_text("keep me")
    (root / "link").symlink_to(outside)
    for path in (outside, root / ".." / "outside", root, root / "link" / "..", Path("/")):
        with pytest.raises(PeerlabError, match="refused to remove"):
            remove_tree(path, root)
    remove_tree(root / "link", root)  # the link goes, not what it points to
    assert (outside / "precious").read_text() == "keep me"
    remove_tree(root / "work", root)
    assert not (root / "work").exists()
