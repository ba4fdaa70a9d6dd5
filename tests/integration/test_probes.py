"""Readiness probes take a method, headers and a status, or a command; a timeout says what
the probe saw last."""

from __future__ import annotations

from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import PeerlabError

HTTPD = """
[system]
name = "{name}"
[launch]
command = ["{{python}}", "-m", "http.server", "--bind", "{{bind}}", "{{port.http}}"]
[ports]
http = 8000
[readiness]
{readiness}
timeout = {timeout}
"""


def start(env: Environment, tmp_path: Path, name: str, readiness: str, timeout: float = 15):
    path = tmp_path / f"{name}.toml"
    path.write_text(HTTPD.format(name=name, readiness=readiness, timeout=timeout))
    return env.start(path, 1)


@pytest.fixture
def env(tmp_path: Path):
    with Environment("probes", fabric=False, workdir=tmp_path / "work") as environment:
        yield environment


def test_http_probe_with_method_headers_and_status(env: Environment, tmp_path: Path) -> None:
    readiness = 'type = "http"\npath = "/nothing"\nmethod = "HEAD"\nstatus = 404\n'
    readiness += 'headers = { X-Node = "{name}" }'
    assert start(env, tmp_path, "notfound", readiness)[0].state == "running"


def test_http_timeout_says_what_it_saw(env: Environment, tmp_path: Path) -> None:
    with pytest.raises(PeerlabError, match=r"last seen: GET http://\S+/nothing answered 404"):
        start(env, tmp_path, "missing", 'type = "http"\npath = "/nothing"', timeout=1.5)


def test_a_refused_connection_is_named(env: Environment, tmp_path: Path) -> None:
    path = tmp_path / "silent.toml"
    path.write_text(
        '[system]\nname = "silent"\n[launch]\ncommand = ["sleep", "600"]\n'
        '[ports]\nhttp = 8000\n[readiness]\ntype = "http"\ntimeout = 1\n'
    )
    with pytest.raises(PeerlabError, match="connection refused"):
        env.start(path, 1)


def test_command_probe(env: Environment, tmp_path: Path) -> None:
    path = tmp_path / "cmd.toml"
    path.write_text(
        '[system]\nname = "cmd"\n'
        '[launch]\ncommand = ["sh", "-c", "sleep 0.3; touch ready; exec sleep 600"]\n'
        '[readiness]\ntype = "command"\ncommand = ["test", "-f", "{data_dir}/ready"]\n'
    )
    assert env.start(path, 1)[0].state == "running"
    never = tmp_path / "never.toml"
    never.write_text(
        '[system]\nname = "never"\n[launch]\ncommand = ["sleep", "600"]\n'
        '[readiness]\ntype = "command"\ntimeout = 1\n'
        'command = ["sh", "-c", "echo not yet; exit 3"]\n'
    )
    with pytest.raises(PeerlabError, match="exited 3: 'not yet'"):
        env.start(never, 1)
