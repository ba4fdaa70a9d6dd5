"""The local backend on a system defined only by a manifest (Python's http.server, by exec)."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import psutil
import pytest

from peerlab.env import Environment, node_name
from peerlab.errors import PeerlabError, UsageError
from peerlab.reaper import runtime_dir, sweep
from peerlab.wait import wait_until


def fetch(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:
        return int(response.status)


def test_node_names() -> None:
    assert [node_name(i) for i in (0, 1, 25, 26, 27, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "ZZ",
        "AAA",
    ]


def test_start_control_and_cleanup(httpd_manifest: Path) -> None:
    with Environment("t", fabric=False) as env:
        nodes = env.start(str(httpd_manifest), 3)
        assert [n.name for n in nodes] == ["A", "B", "C"]
        assert len({n.address for n in nodes}) == 3
        for node in nodes:
            assert node.state == "running"
            assert fetch(node.url()) == 200
        pids = [n.pid for n in nodes]
        workdir = env.workdir

        a = env.node("A")
        (a.data_dir / "kept.txt").write_text("data survives restarts")
        env.kill("A")
        assert a.state == "killed"
        assert not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie"
        env.restart("A")
        assert a.state == "running" and a.pid != pids[0] and a.restarts == 1
        assert fetch(a.url(path="/kept.txt")) == 200

        env.pause("B")
        b_process = psutil.Process(env.node("B").pid)
        wait_until(lambda: b_process.status() == psutil.STATUS_STOPPED, 5, what="B stopped")
        with pytest.raises(OSError):
            urllib.request.urlopen(env.node("B").url(), timeout=0.5)
        env.resume("B")
        assert fetch(env.node("B").url()) == 200

        env.stop("C")
        assert env.node("C").state == "stopped"
        live = [n.pid for n in env.nodes.values() if n.alive]
    for pid in live:
        wait_until(lambda pid=pid: not psutil.pid_exists(pid), 5, what=f"pid {pid} gone")
    assert not workdir.exists()


def test_unknown_peer_and_bad_count(httpd_manifest: Path) -> None:
    with Environment("t", fabric=False) as env:
        env.start(str(httpd_manifest), 1)
        with pytest.raises(UsageError, match="unknown peer 'Q'") as info:
            env.kill("Q")
        assert "A" in str(info.value.hint)
        with pytest.raises(UsageError, match="peers"):
            env.start(str(httpd_manifest), 0)


def test_port_in_use_is_named(httpd_manifest: Path) -> None:
    with Environment("t", fabric=False) as env:
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((env.backend.addresses(0).public, 8000))
        squatter.listen()
        try:
            with pytest.raises(UsageError, match="8000") as info:
                env.start(str(httpd_manifest), 1)
            assert info.value.field == "ports.http"
        finally:
            squatter.close()
        assert all(not n.alive for n in env.nodes.values())


def test_missing_program_is_a_usage_error(tmp_path: Path) -> None:
    manifest = tmp_path / "ghost.toml"
    manifest.write_text(
        textwrap.dedent("""
        [system]
        name = "ghost"
        [launch]
        command = ["no-such-program-peerlab"]
        [ports]
        http = 9
    """)
    )
    with Environment("t", fabric=False) as env, pytest.raises(UsageError, match="not installed"):
        env.start(str(manifest), 1)


def test_node_that_dies_at_start_reports_its_output(tmp_path: Path) -> None:
    manifest = tmp_path / "crash.toml"
    manifest.write_text(
        textwrap.dedent("""
        [system]
        name = "crash"
        [launch]
        command = ["{python}", "-c",
                   "import sys; print('boom on purpose', file=sys.stderr); sys.exit(3)"]
        [ports]
        http = 9
    """)
    )
    with Environment("t", fabric=False) as env, pytest.raises(PeerlabError) as info:
        env.start(str(manifest), 1)
    assert "code 3" in str(info.value)
    assert "boom on purpose" in str(info.value)


def test_sweep_cleans_after_a_sigkilled_runner(httpd_manifest: Path, tmp_path: Path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, sys, time
        from peerlab.env import Environment
        env = Environment("victim", fabric=False)
        nodes = env.start({str(httpd_manifest)!r}, 2)
        print(env.workdir, *[n.pid for n in nodes], env.backend._launchers[()].process.pid,
              flush=True)
        time.sleep(600)
    """)
    )
    runner = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert runner.stdout is not None
    line = runner.stdout.readline().split()
    workdir, pids = Path(line[0]), [int(p) for p in line[1:]]
    assert workdir.exists() and all(psutil.pid_exists(p) for p in pids)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    # The launcher sees its owner's pipe close and kills the nodes at once ...
    wait_until(
        lambda: (
            not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
        ),
        10,
        what="nodes of the killed runner to die",
    )
    # ... and the next start sweeps the directories the runner could not remove.
    sweep()
    assert not workdir.exists()
    assert not any(
        f.read_text().find(str(workdir)) >= 0 for f in (runtime_dir() / "owners").glob("*.json")
    )


def test_capabilities_are_refused_where_nodes_share_the_machines_network(
    httpd_manifest: Path, tmp_path: Path
) -> None:
    """A node granted NET_ADMIN on loopback would act on the machine's own network: the local
    backend refuses such a system by name, before anything starts."""
    manifest = tmp_path / "admin.toml"
    manifest.write_text(
        httpd_manifest.read_text().replace("[ports]", 'capabilities = ["NET_ADMIN"]\n\n[ports]', 1)
    )
    with Environment("t", fabric=False) as env:
        with pytest.raises(UsageError, match="cannot grant") as info:
            env.start(str(manifest), 1)
        assert info.value.field == "launch.capabilities"
        assert "netns" in str(info.value.hint)
        assert env.nodes == {}


def test_a_forked_python_node_survives_writing_to_a_reset_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python ignores SIGPIPE: a write to a connection its peer reset is an error to handle
    (EPIPE), and a fork-mode node (no exec, so no fresh interpreter) must not die of it."""
    (tmp_path / "brokenpipe.py").write_text(
        textwrap.dedent(
            """
            import socket, time
            def main(args):
                mine, theirs = socket.socketpair()
                theirs.close()
                try:
                    for _ in range(3):
                        mine.send(b"x")
                except BrokenPipeError:
                    print("EPIPE handled", flush=True)
                time.sleep(60)
            """
        )
    )
    manifest = tmp_path / "brokenpipe.toml"
    manifest.write_text(
        textwrap.dedent(
            """
            [system]
            name = "brokenpipe"
            [launch]
            mode = "fork"
            entry = "brokenpipe:main"
            command = ["{python}", "-c", "import brokenpipe; brokenpipe.main([])"]
            [readiness]
            type = "log"
            pattern = "EPIPE handled"
            timeout = 20
            """
        )
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the launcher imports it from there
    with Environment("t", fabric=False) as env:
        node = env.start(str(manifest), 1)[0]
        assert node.state == "running" and node.returncode is None
