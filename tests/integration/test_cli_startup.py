"""What the CLI imports to start: `import peerlab.cli`, `peerlab --help` and a control call
(`peerlab net heal`, against a stand-in supervisor on the unix socket) in fresh interpreters
stay clear of the heavy libraries and of the command modules they do not run."""

from __future__ import annotations

import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from peerlab import supervisor

HEAVY = (
    "matplotlib",
    "aiohttp",
    "pydantic",
    "syncpeer",
    "psutil",
    "jinja2",
    "cryptography",
    "prompt_toolkit",
    "structlog",
    "networkx",
)
# Runs the CLI with the given arguments, then prints the modules it imported.
RUN = """
import json, sys
from peerlab.cli import main
sys.argv = ["peerlab", *json.loads(sys.argv[1])]
try:
    main()
finally:
    print("MODULES " + json.dumps(sorted(sys.modules)))
"""


def _run(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", RUN, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    output, _, modules = result.stdout.rpartition("MODULES ")
    return result.returncode, output + result.stderr, set(json.loads(modules))


def _heavy(modules: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = f"import sys, peerlab.cli; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_help_lists_every_command_and_imports_none() -> None:
    code, output, modules = _run(["--help"])
    assert code == 0, output
    for name in ("up", "status", "net", "nemesis", "bench", "friend", "file", "dht"):
        assert f"\n  {name} " in output, name
    assert _heavy(modules) == []
    imported = sorted(m for m in modules if m.startswith(("peerlab.cli.", "peerlab.bench.")))
    assert imported == ["peerlab.cli.lazy"]
    assert "peerlab.systems.syncpeer_cli" not in modules


def test_the_guard_sees_a_heavy_import() -> None:
    code, output, modules = _run(["shell", "--help"])  # the shell's module: prompt_toolkit
    assert code == 0, output
    assert "peerlab.cli.shell" in modules
    assert "prompt_toolkit" in _heavy(modules)


class _Supervisor(BaseHTTPRequestHandler):
    """Answers every call with a null result, and keeps what it was asked."""

    calls: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.calls.append({"route": self.path, "body": json.loads(self.rfile.read(length))})
        answer = json.dumps({"result": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A stand-in supervisor of environment `lab` listening on its socket."""
    runtime = tempfile.mkdtemp(prefix="peerlab-test-")  # short: a socket path has 107 bytes
    env = {"PEERLAB_HOME": str(tmp_path / "home"), "PEERLAB_RUNTIME": runtime}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    calls: list[dict[str, Any]] = []
    handler = type("Handler", (_Supervisor,), {"calls": calls})
    server = socketserver.UnixStreamServer(str(supervisor.socket_path("lab")), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"env": env, "calls": calls}
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        shutil.rmtree(runtime)


def test_a_control_call_is_one_request_without_the_server_side(stand_in: dict[str, Any]) -> None:
    code, output, modules = _run(["--env", "lab", "net", "heal"], stand_in["env"])
    assert code == 0, output
    assert "healed" in output
    assert [(call["route"], call["body"]) for call in stand_in["calls"]] == [("/v1/net/heal", {})]
    assert _heavy(modules) == []
    commands = sorted(m for m in modules if m.startswith("peerlab.cli."))
    assert commands == ["peerlab.cli.common", "peerlab.cli.lazy", "peerlab.cli.net"]
    assert "peerlab.systems" not in modules  # a built-in command: no plugin is looked up
    assert "peerlab.fabric" not in modules  # the fabric runs in the supervisor only


def test_a_call_to_an_environment_that_is_not_running_exits_2(stand_in: dict[str, Any]) -> None:
    code, output, _ = _run(["--env", "other", "net", "heal"], stand_in["env"])
    assert code == 2
    assert "environment 'other' is not running" in output
    assert stand_in["calls"] == []


def test_status_is_one_request_without_the_server_side(stand_in: dict[str, Any]) -> None:
    code, output, modules = _run(["--env", "lab", "status", "--json"], stand_in["env"])
    assert code == 0, output
    assert [(call["route"], call["body"]) for call in stand_in["calls"]] == [("/v1/env/status", {})]
    assert _heavy(modules) == []
    assert "peerlab.manifest" not in modules  # status reads no manifest
