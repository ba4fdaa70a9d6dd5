"""The docker backend against a real engine: containers from images, lifecycle mapped to the
engine, data kept across restarts, output streamed into the node's files, the engine's
stats, clock skew from the image's libfaketime, a user's own image with a healthcheck, and
the sweep of what a SIGKILLed runner left, found by its label. `make test-docker` runs it
(the engine running, the images built: `peerlab image build base syncpeer`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from peerlab.env import Environment
from peerlab.errors import UsageError
from peerlab.node import NodeState
from peerlab.wait import wait_until

pytestmark = pytest.mark.docker

EXAMPLE = Path(__file__).parents[2] / "examples/static-web/static-web.toml"


@pytest.fixture(scope="module")
def engine() -> Any:
    """The engine, or a skip saying why there is none."""
    try:
        from peerlab.backends.engine import client

        return client()
    except Exception as exc:
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture
def env(engine: Any, tmp_path: Path) -> Iterator[Environment]:
    with Environment("docker-test", backend="docker", seed=11, workdir=tmp_path / "env") as made:
        yield made


def containers(engine: Any, env_id: str, **filters: str) -> list[dict[str, Any]]:
    labels = [f"peerlab.env={env_id}", *(f"peerlab.{k}={v}" for k, v in filters.items())]
    return list(engine.api.containers(all=True, filters={"label": labels}))


def in_container(engine: Any, container: str, *argv: str) -> str:
    run = engine.api.exec_create(container, list(argv))
    return str(engine.api.exec_start(run["Id"]).decode(errors="replace")).strip()


def test_lifecycle_maps_to_the_engine(engine: Any, env: Environment) -> None:
    _, b = env.start("syncpeer", 2)
    nodes = containers(engine, env.id, part="node")
    assert sorted(c["Labels"]["peerlab.node"] for c in nodes) == ["A", "B"]
    assert len(containers(engine, env.id, part="sandbox")) == 2
    card = env.client("B").identity()

    env.pause("B")
    assert engine.api.inspect_container(b.handle.key)["State"]["Paused"]
    env.resume("B")
    assert env.client("B").identity() == card

    env.kill("B")
    assert env["B"].state == NodeState.KILLED and env["B"].returncode == 137
    env.restart("B")
    assert env.client("B").identity() == card, "the data volume keeps the node's identity"
    assert env["B"].address == b.address

    env.stop("A")
    assert env["A"].state == NodeState.STOPPED
    assert env["A"].returncode == 0, "SIGTERM reached the node through the container's init"
    assert any('"event"' in line for line in env.logs("A", 50)), "output streamed to its file"

    usage = env.describe(env["B"])
    assert usage["rss_mb"] > 1 and usage["processes"] >= 1 and usage["cpu_seconds"] > 0


def test_traffic_between_containers_crosses_the_fabric(engine: Any, env: Environment) -> None:
    env.start("syncpeer", 2)
    b = env["B"]
    url = f"http://{b.address}:7400/health"
    fetch = [
        "python3",
        "-c",
        f"import urllib.request as u; print(u.urlopen({url!r}, timeout=2).status)",
    ]
    assert in_container(engine, env["A"].handle.key, *fetch) == "200"
    proxy = next(p for p in env.net.show()["proxies"] if p["node"] == "B" and p["port"] == "http")
    assert proxy["accepted"] >= 1, "the connection was intercepted, not routed around"
    env.net.partition([["A"], ["B"]])
    assert "200" not in in_container(engine, env["A"].handle.key, *fetch)
    env.net.heal()
    assert in_container(engine, env["A"].handle.key, *fetch) == "200"
    interceptor = env.net.plane.interceptor  # type: ignore[attr-defined]
    assert interceptor.refused == 0, "every diverted connection was told to a node"


def test_clock_skew_comes_from_the_images_libfaketime(engine: Any, env: Environment) -> None:
    env.clock_skews["A"] = 3600.0
    env.start("syncpeer", 1)
    container = env["A"].handle.key

    def offset() -> float:
        return float(in_container(engine, container, "date", "+%s")) - time.time()

    assert 3500 < offset() < 3700
    env.skew("A", -1800)  # the running node follows within a second, no restart
    assert env["A"].restarts == 0
    wait_until(lambda: -1900 < offset() < -1700, 10, what="the skew file to be re-read")


def test_a_users_own_image_with_its_healthcheck(engine: Any, env: Environment) -> None:
    nodes = env.start(str(EXAMPLE), 2)
    a = nodes[0]
    page = in_container(
        engine, a.handle.key, "busybox", "wget", "-q", "-O", "-", f"http://{nodes[1].address}:8080/"
    )
    assert page == f"<h1>node B at {nodes[1].address}</h1>"
    assert (a.data_dir / "index.html").exists(), "the volume is the node's data dir"
    wait_until(
        lambda: any("GET" in line or "response" in line for line in env.logs("B", 20, "stderr")),
        10,
        what="B's access log",
    )


def test_a_backend_of_containers_needs_the_fabric(engine: Any) -> None:
    with pytest.raises(UsageError, match="fabric"):
        Environment("docker-test", backend="docker", fabric=False)


RUNNER = textwrap.dedent(
    """
    import sys, time
    from peerlab.env import Environment
    env = Environment("swept", backend="docker")
    env.start("syncpeer", 1)
    print(env.id, env.backend.tag, flush=True)
    time.sleep(600)
    """
)


def test_what_a_sigkilled_runner_left_is_swept_by_label(engine: Any, tmp_path: Path) -> None:
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert runner.stdout is not None
        env_id, tag = runner.stdout.readline().split()
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
        runner.wait()
    assert len(containers(engine, env_id)) == 2, "left behind: the node and its sandbox"
    volumes = engine.api.volumes(filters={"label": f"peerlab.env={env_id}"})["Volumes"]
    assert len(volumes) == 1

    Environment("sweeper", fabric=False, workdir=tmp_path / "sweeper").close()

    assert containers(engine, env_id) == []
    assert not engine.api.volumes(filters={"label": f"peerlab.env={env_id}"})["Volumes"]
    namespaces = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True)
    assert f"peerlab-{tag}-" not in namespaces.stdout
    tables = subprocess.run(["nft", "-j", "list", "tables"], capture_output=True, text=True)
    assert f"peerlab_{tag}" not in json.dumps(tables.stdout)


def test_an_image_not_on_the_engine_is_refused(
    engine: Any, env: Environment, tmp_path: Path
) -> None:
    manifest = tmp_path / "ghost.toml"
    manifest.write_text(
        '[system]\nname = "ghost"\n[launch]\nimage = "peerlab-test/no-such-image:1"\n'
    )
    with pytest.raises(UsageError, match="not on the engine") as info:
        env.start(str(manifest), 1)
    assert info.value.field == "launch.image"
    assert containers(engine, env.id, part="node") == []


def test_image_build_refuses_an_unknown_name(cli: Any) -> None:
    result = cli("image", "build", "nosuch", check=False)
    assert result.returncode == 2
    assert "base, syncpeer, etcd, redis" in result.stderr


def test_a_handed_over_network_is_adopted_and_cleaned_by_its_adopter(engine: Any) -> None:
    from peerlab.handover import adopt

    env = Environment("docker-keep", backend="docker", seed=5)
    try:
        env.start("syncpeer", 2)
        env.net.partition([["A"], ["B"]])
        card = env.client("A").identity()
        state = env.handover()
    except BaseException:
        env.close()
        raise
    first = env.id
    assert len(containers(engine, first, part="node")) == 2, "the nodes outlive the handover"
    adopter = adopt(state, "docker-kept")
    try:
        assert [n.state for n in adopter.nodes.values()] == [NodeState.RUNNING] * 2
        assert adopter.net.show()["partition"]["groups"] == [["A"], ["B"]]
        adopter.kill("A")
        assert adopter["A"].returncode == 137, "the adopter sees the exit of a node it adopted"
        adopter.restart("A")
        assert adopter.client("A").identity() == card
    finally:
        adopter.close()
    assert containers(engine, first) == [] and containers(engine, adopter.id) == []


def test_net_admin_is_granted_to_the_nodes_that_ask(
    engine: Any, env: Environment, tmp_path: Path
) -> None:
    def manifest(name: str, capabilities: str) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(
            f'[system]\nname = "{name}"\n[launch]\nimage = "peerlab/base"\n'
            f'command = ["sleep", "infinity"]\ncapabilities = [{capabilities}]\n'
        )
        return str(path)

    granted = env.start(manifest("tun", '"NET_ADMIN"'), 1)[0]
    plain = env.start(manifest("plain", ""), 1)[0]

    def net_admin(node: Any) -> bool:
        status = in_container(engine, node.handle.key, "grep", "CapEff", "/proc/self/status")
        return bool(int(status.split()[1], 16) & (1 << 12))

    assert net_admin(granted) and not net_admin(plain)
    tun = "test -c /dev/net/tun && echo tun"
    assert in_container(engine, granted.handle.key, "sh", "-c", tun) == "tun"
    assert in_container(engine, plain.handle.key, "sh", "-c", tun) == ""


def test_partitions_of_containers_reach_every_link_they_name(engine: Any) -> None:
    from peerlab.bench import fidelity

    result = fidelity.run("syncpeer", backend="docker", cuts=4, load=0)
    assert result["backend"] == "docker" and result["links_cut"] > 0
    assert result["leaked_bytes"] == 0 and result["unattributed"] == 0
    assert result["verdict"] == "valid"


KEYED = r"""
[system]
name = "keyed"

[launch]
image = "peerlab/base"
command = ["sh", "-c", "echo started as {key_id}; exec sleep infinity"]

[init]
command = ["sh", "-c", "echo key-of-$PEERLAB_NODE > key && echo id=$PEERLAB_NODE-made"]
capture = { key_id = 'id=(\S+)' }

[readiness]
type = "log"
pattern = "started as"
"""


def test_the_init_step_runs_here_and_its_node_sees_what_it_made(
    engine: Any, env: Environment, tmp_path: Path
) -> None:
    manifest = tmp_path / "keyed.toml"
    manifest.write_text(KEYED)
    node = env.start(str(manifest), 1)[0]
    assert any("started as A-made" in line for line in env.logs("A", 5)), "the captured field"
    key = in_container(engine, node.handle.key, "cat", str(node.data_dir / "key"))
    assert key == "key-of-A", "the file init wrote is in the container's data dir"
