"""Starting a system by its layout of roles: each role's count, program and files (real
processes: Python's http.server serving the files the manifest rendered)."""

from __future__ import annotations

import textwrap
import urllib.request
from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import UsageError

MANIFEST = """
[system]
name = "layered"

[launch]
command = ["{python}", "-m", "http.server", "--bind", "{bind}", "{port.http}",
           "--directory", "{data_dir}/www"]

[ports]
http = 8000

[readiness]
type = "http"
port = "http"
path = "/"
timeout = 15

[templates]
primary = { each = "{name}@{address}", role = "primary" }

[files]
"www/index.html" = "{name} is a {role}; primary {primary}"

[roles.primary]
count = 1
start_first = true

[roles.mirror]
count = 2

[roles.odd]
count = 1
command = ["{python}", "-m", "http.server", "--bind", "{bind}", "{port.http}",
           "--directory", "{data_dir}/other"]
files = { "other/index.html" = "odd one {name}" }
"""


def page(env: Environment, name: str) -> str:
    with urllib.request.urlopen(env.node(name).direct_url("http", "/"), timeout=5) as response:
        return str(response.read().decode())


@pytest.fixture
def manifest(tmp_path: Path) -> str:
    path = tmp_path / "layered.toml"
    path.write_text(textwrap.dedent(MANIFEST))
    return str(path)


def test_layout_roles_programs_and_files(manifest: str) -> None:
    with Environment("layout", fabric=False) as env:
        nodes = env.start(manifest)
        assert [(n.name, n.role) for n in nodes] == [
            ("A", "primary"),
            ("B", "mirror"),
            ("C", "mirror"),
            ("D", "odd"),
        ]
        primary = f"A@{env.node('A').address}"
        assert page(env, "A") == f"A is a primary; primary {primary}"
        assert page(env, "C") == f"C is a mirror; primary {primary}"
        assert page(env, "D") == "odd one D"  # its own program, serving its own file

        # A count for a system with a layout is a mistake; a role adds nodes.
        with pytest.raises(UsageError) as info:
            env.start(manifest, 2)
        assert info.value.field == "peers" and "mirror" in str(info.value.hint)
        (extra,) = env.start(manifest, 1, role="mirror")
        assert extra.name == "E" and page(env, "E") == f"E is a mirror; primary {primary}"

        # What a node wrote over its files survives a restart (Redis rewrites its config).
        index = env.node("B").data_dir / "www" / "index.html"
        index.write_text("rewritten by B")
        env.restart("B")
        assert page(env, "B") == "rewritten by B"


def test_a_role_program_that_is_not_installed_is_named(tmp_path: Path, manifest: str) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        Path(manifest).read_text().replace('name = "layered"', 'name = "broken"')
        + '\n[roles.ghost]\ncommand = ["peerlab-no-such-program"]\n'
    )
    with Environment("layout-missing", fabric=False) as env:
        with pytest.raises(UsageError) as info:
            env.start(str(broken))
        assert "peerlab-no-such-program" in str(info.value)
        assert env.nodes == {}
