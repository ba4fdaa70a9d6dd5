"""The manifest's [init] step: run once per node before its first start, captures become
fields every node's templates can use, files rendered afterwards win, never on a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import PeerlabError, UsageError
from peerlab.launching import check_installed, real_program
from peerlab.manifest import load_manifest

# A node "makes its identity": a random id on stdout, a secret in a file, a count of runs.
SYSTEM = """
[system]
name = "ident"

[init]
command = ["sh", "-c", '''
echo run >> runs
od -An -N4 -tx4 /dev/urandom | tr -d ' ' > id.txt
echo ID: $(cat id.txt)
echo stale > node.conf
echo warn >&2''']
capture = { node_id = 'ID: ([0-9a-f]+)' }
{extra}

[launch]
command = ["sleep", "600"]

[ports]
p2p = 7000

[readiness]
type = "none"

[templates]
everyone = { each = '{{"{name}": "{node_id}"}}', join = "," }

[files]
"node.conf" = "me={node_id} first={peer.A.node_id} all=[{everyone}] shell=${{HOME}} {{ x; }}"
"""


def system(extra: str = "") -> str:
    return SYSTEM.replace("{extra}", extra)


def manifest(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "ident.toml"
    path.write_text(system(extra))
    return path


@pytest.fixture
def env(tmp_path: Path):
    with Environment("init", fabric=False, workdir=tmp_path / "work") as environment:
        yield environment


def test_every_node_knows_every_id_and_restarts_keep_them(env: Environment, tmp_path: Path) -> None:
    nodes = env.start(manifest(tmp_path), 3)
    ids = {node.name: node.fields["node_id"] for node in nodes}
    assert len(set(ids.values())) == 3 and all(len(i) == 8 for i in ids.values())
    everyone = ",".join(json.dumps({name: ids[name]}) for name in "ABC")
    for node in nodes:
        conf = (node.data_dir / "node.conf").read_text()
        # [files] rendered after every init: it replaced the "stale" file the init wrote.
        assert conf == (
            f"me={ids[node.name]} first={ids['A']} all=[{everyone}] shell=${{HOME}} {{ x; }}"
        )
        assert (node.data_dir / "id.txt").read_text().strip() == ids[node.name]
        assert "warn" in (node.stdout_path.parent / "init.log").read_text()
    env.restart("B")
    assert (env["B"].data_dir / "runs").read_text() == "run\n"  # never again on a restart
    assert env["B"].fields["node_id"] == ids["B"]
    # A node added later runs its init and knows every existing node's id.
    added = env.add_node(name="D")
    assert (added.data_dir / "runs").read_text() == "run\n"
    conf = (added.data_dir / "node.conf").read_text()
    assert all(node_id in conf for node_id in ids.values())
    assert added.fields["node_id"] in conf and added.fields["node_id"] not in ids.values()


def test_capture_from_a_file_and_from_stderr(env: Environment, tmp_path: Path) -> None:
    path = tmp_path / "file.toml"
    text = system('file = "id.txt"').replace("ID: ([0-9a-f]+)", "^([0-9a-f]+)$")
    path.write_text(text)
    node = env.start(path, 1)[0]
    assert node.fields["node_id"] == (node.data_dir / "id.txt").read_text().strip()
    stderr = tmp_path / "stderr.toml"
    stderr.write_text(
        system('source = "stderr"')
        .replace("ID: ([0-9a-f]+)", "w(a)rn")
        .replace('name = "ident"', 'name = "ident2"')  # a system of its own
        .replace("{peer.A.node_id}", "{name}")  # A is of the other system
    )
    assert env.start(stderr, 1)[0].fields["node_id"] == "a"


def test_a_capture_that_finds_nothing_says_what_it_saw(env: Environment, tmp_path: Path) -> None:
    path = tmp_path / "miss.toml"
    path.write_text(system().replace("ID: ([0-9a-f]+)", "Device: (\\S+)"))
    with pytest.raises(PeerlabError, match="capture 'node_id' found nothing") as caught:
        env.start(path, 1)
    assert "ID: " in (caught.value.hint or "")


def test_a_failing_init_shows_its_output(env: Environment, tmp_path: Path) -> None:
    path = tmp_path / "fail.toml"
    path.write_text(system("").replace("echo run >> runs", "echo boom >&2; exit 3"))
    with pytest.raises(PeerlabError, match="exited with code 3") as caught:
        env.start(path, 1)
    assert "boom" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('capture = { name = "x" }', "init.capture.name"),
        ('capture = { p = "(a)(b)" }', "init.capture.p"),
        ('command = ["x", "{everyone}"]', "init.command"),
    ],
)
def test_bad_init_tables_are_named(tmp_path: Path, extra: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[system]\nname = "x"\n[launch]\ncommand = ["sleep", "1"]\n'
        '[templates]\neveryone = { each = "{name}" }\n'
        f'[init]\ncommand = ["true"]\n{extra}\n'.replace('command = ["true"]\ncommand', "command")
    )
    with pytest.raises(UsageError, match=f"field '{field}'"):
        load_manifest(path)


def test_unknown_peer_field_is_named(tmp_path: Path) -> None:
    path = tmp_path / "peer.toml"
    path.write_text(
        '[system]\nname = "x"\n[launch]\ncommand = ["sleep", "1"]\n'
        '[files]\n"a" = "{peer.A.nothing}"\n'
    )
    with pytest.raises(UsageError, match=r"unknown template field \{peer.A.nothing\}"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("command", "program"),
    [
        (["sh", "-c", "exec kvd --port 1"], "kvd"),
        (["bash", "-ec", "LEVEL=3 nohup kvd"], "kvd"),
        (["env", "A=1", "kvd"], "kvd"),
        (["kvd", "-c", "x"], "kvd"),
        (["{python}", "-m", "kvd"], None),
        (["sh", "-c", "./kvd"], None),
    ],
)
def test_the_real_program_is_found(command: list[str], program: str | None) -> None:
    assert real_program(command) == program


def test_a_missing_program_behind_sh_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sh.toml"
    path.write_text(
        '[system]\nname = "x"\nbinary = "kvd-server"\n'
        '[launch]\ncommand = ["sh", "-c", "exec no-such-program-kvd --port 1"]\n'
    )
    with pytest.raises(UsageError, match="no-such-program-kvd") as caught:
        check_installed(load_manifest(path))
    assert "apt-get install kvd-server" in (caught.value.hint or "")
