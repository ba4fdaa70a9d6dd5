"""The docker backend: every node a container, from the system's image, on peerlab's network.

A node runs from its manifest's image (`launch.image`, or built from `launch.build`; a
role may have its own) with the manifest's command, arguments, environment and capabilities,
in the network namespace of its sandbox (`sandboxes.py`: the netns backend's plumbing, so
the fabric intercepts node-to-node traffic exactly as there). Its data dir is a volume per
node (labelled, backed by the node's data dir on this machine, so files, snapshots and
restarts see the same data), mounted at the same path inside and at `launch.volume`.

Lifecycle maps to the engine: kill is SIGKILL, stop the system's signal (then kill), pause
and resume the cgroup freezer, and every start a new container (a restart keeps the volume;
environment and clock offset may have changed). The node's output is streamed from the
engine into its stdout/stderr files as it comes; resources are the engine's stats. Clock
skew is the image's libfaketime (the base image has it). Everything is labelled with the
Environment's id and swept by that label after a SIGKILLed runner (`engine.sweep`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from peerlab import log
from peerlab.backends import datadir, engine
from peerlab.backends.base import Action, Addresses, BackendContext, Capabilities, Launch
from peerlab.backends.images import Images, faketime_path
from peerlab.backends.sandboxes import Sandboxes
from peerlab.errors import PeerlabError, UsageError
from peerlab.manifest import render
from peerlab.nemesis.clock import preload_environment, write_skew
from peerlab.node import NodeHandle

if TYPE_CHECKING:
    from peerlab.fabric.plane import FaultPlane
    from peerlab.node import Node

IMAGE_PYTHON = "python3"  # what `{python}` means inside an image
HEALTH_INTERVAL_NS = 1_000_000_000  # the engine runs a node's healthcheck this often
TUN = "/dev/net/tun:/dev/net/tun:rwm"
HEALTH_POLL = 0.2  # seconds between two questions about a node's health


class DockerBackend:
    """Nodes as containers on this machine's Docker engine."""

    name = "docker"
    capabilities = Capabilities(
        own_ports=True,
        exact_source=True,
        node_capabilities=True,
        images=True,
        parallel_starts=2 * (os.cpu_count() or 1),
    )

    def __init__(self, context: BackendContext) -> None:
        if not context.fabric:
            raise UsageError(
                "the docker backend carries node-to-node traffic through the fabric, so it "
                "cannot run without one",
                field="fabric",
                hint="drop --no-fabric / fabric=False, or use --backend local",
            )
        self.context = context
        self.reaper = context.reaper
        self.engine = engine.client()
        self.images = Images(self.engine)
        adopted = context.adopt or {}
        self.tag = str(adopted.get("tag") or hashlib.sha1(context.env_id.encode()).hexdigest()[:6])
        # The ids whose labels this backend's things carry: its own, and those of the
        # networks it adopted (a container keeps the label it was made with).
        self.owners = [context.env_id, *adopted.get("owners", [])]
        self._resource = f"docker-{self.tag}"
        self.reaper.add_resource(self._resource, "docker", {"envs": self.owners})
        self.network = Sandboxes(context, self.engine, self.tag, adopted)
        self._faketime: set[str] = set(adopted.get("faketime", []))
        self._has_faketime: dict[str, bool] = {}  # image id -> libfaketime inside
        self._volumes: set[str] = set(adopted.get("volumes", []))
        self._health: dict[str, tuple[float, bool]] = {}  # container -> (asked, healthy)
        self._closing = False
        self._detached = False

    # ------------------------------------------------------------------ where nodes are

    def addresses(self, index: int) -> Addresses:
        address = self.network.address(index)
        return Addresses(address, address)

    def prepare(self, node: Node, launch: Launch) -> None:
        datadir.write_files(launch)

    async def expose(self, node: Node, plane: FaultPlane) -> None:
        await self.network.expose(node, plane)

    def identify(self, src_ip: str, src_port: int) -> str | None:
        """By address: a node's address is its own."""
        return next((n for n, node in self.context.nodes().items() if node.address == src_ip), None)

    # ------------------------------------------------------------------ starting

    async def start(self, node: Node, launch: Launch) -> NodeHandle:
        image = await asyncio.to_thread(self.images.ensure, launch.image, launch.build, _say)
        base = await asyncio.to_thread(self.images.base, _say)
        sandbox = await self.network.sandbox(node, base)
        container, pid = await asyncio.to_thread(self._run, node, launch, image, sandbox)
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[int | None] = loop.create_future()
        self._follow(node, container, exited, replay=True)
        return NodeHandle(container, exited, pid, {"node": node.name, "sandbox": sandbox})

    def container_name(self, node: Node) -> str:
        return f"peerlab-{self.tag}-n{node.index}"

    def _run(self, node: Node, launch: Launch, image: str, sandbox: str) -> tuple[str, int]:
        """Create and start the node's container (replacing its previous one)."""
        api = self.engine.api
        engine.remove_containers(self.engine, [self.container_name(node)])
        volume = self._volume(node)
        env = {key: _in_image(value) for key, value in launch.env.items()}
        argv = [_in_image(part) for part in launch.argv]
        clock_dir = node.data_dir.parent / "clock"
        clock_dir.mkdir(parents=True, exist_ok=True)
        if launch.clock_offset is not None:
            env.update(self._skew(node, image, launch.clock_offset, clock_dir))
        else:
            self._faketime.discard(node.name)
        mounts = [
            {"Type": "volume", "Source": volume, "Target": str(launch.data_dir)},
            {"Type": "bind", "Source": str(clock_dir), "Target": str(clock_dir)},
        ]
        if launch.volume:
            mounts.append({"Type": "volume", "Source": volume, "Target": launch.volume})
        created = api.create_container(
            image,
            entrypoint=argv[:1] if launch.program else None,
            command=argv[1:] if launch.program else (argv or None),
            environment=env,
            working_dir=str(launch.cwd) if launch.program else None,
            name=self.container_name(node),
            labels=engine.labels(self.context.env_id, node=node.name, part="node"),
            healthcheck=self._healthcheck(node),
            stop_signal=launch.stop_signal.name,
            host_config=api.create_host_config(
                network_mode=f"container:{sandbox}",
                init=True,
                cap_add=list(launch.capabilities) or None,
                # A TUN device (wireguard-go, VPNs) needs the node to see /dev/net/tun.
                devices=[TUN] if "NET_ADMIN" in launch.capabilities else None,
                mounts=mounts,
            ),
        )
        container = str(created["Id"])
        try:
            api.start(container)
        except engine_errors().APIError as exc:
            raise PeerlabError(
                f"node {node.name} ({image}) did not start: {exc.explanation or exc}",
                hint="check the manifest's command against the image (docker run -it IMAGE)",
            ) from None
        return container, int(api.inspect_container(container)["State"]["Pid"])

    def _skew(self, node: Node, image: str, seconds: float, clock_dir: Path) -> dict[str, str]:
        """The variables that start the node on its image's libfaketime, reading an offset
        file of ours (mounted), which `set_clock` rewrites while it runs."""
        library = faketime_path()
        if not self._image_has(image, library):
            raise UsageError(
                f"image {image} has no libfaketime ({library}), so node {node.name}'s clock "
                "cannot be skewed",
                field="clock_skew",
                hint="build the image FROM peerlab/base, or install Debian's libfaketime in it",
            )
        skew_file = clock_dir / "clock-skew"
        write_skew(skew_file, seconds)
        self._faketime.add(node.name)
        return preload_environment(skew_file, library)

    def _image_has(self, image: str, path: str) -> bool:
        """Whether `path` exists in `image` (looked up once per image, in a container
        made and never started)."""
        api = self.engine.api
        image_id = str(api.inspect_image(image)["Id"])
        if image_id not in self._has_faketime:
            probe = api.create_container(
                image, command=["true"], labels=engine.labels(self.context.env_id, part="probe")
            )
            try:
                api.get_archive(probe["Id"], path)
                self._has_faketime[image_id] = True
            except engine_errors().NotFound:
                self._has_faketime[image_id] = False
            finally:
                engine.remove_containers(self.engine, [probe["Id"]])
        return self._has_faketime[image_id]

    def _volume(self, node: Node) -> str:
        """The node's data volume: the engine's, labelled, backed by its data dir here."""
        name = f"peerlab-{self.tag}-n{node.index}-data"
        if name not in self._volumes:
            self.engine.api.create_volume(
                name,
                driver="local",
                driver_opts={"type": "none", "o": "bind", "device": str(node.data_dir)},
                labels=engine.labels(self.context.env_id, node=node.name),
            )
            self._volumes.add(name)
        return name

    @staticmethod
    def _healthcheck(node: Node) -> dict[str, Any] | None:
        readiness = node.system.readiness
        if readiness.type != "healthcheck":
            return None
        # No test: the image's own HEALTHCHECK, run often enough to be a readiness probe.
        command = [render(part, node.fields) for part in readiness.command or ()]
        test = ["CMD", *command] if command else []
        return {"Test": test, "Interval": HEALTH_INTERVAL_NS, "Retries": 1}

    # ------------------------------------------------------------------ output and exits

    def _follow(
        self, node: Node, container: str, exited: asyncio.Future[int | None], replay: bool
    ) -> None:
        """Stream the container's stdout and stderr into the node's files as they come (from
        its start, or from now when `replay` is off), then resolve `exited` with its exit
        code (None: it is gone)."""
        loop = exited.get_loop()
        since = None if replay else int(time.time())
        stderr_done = threading.Event()

        def copy(stream: Literal["stdout", "stderr"], path: Path) -> None:
            # The engine's log stream, one per kind: read through the HTTP response (an
            # attached socket read raw can lose bytes the response had already buffered).
            try:
                chunks = self.engine.api.logs(
                    container,
                    stdout=stream == "stdout",
                    stderr=stream == "stderr",
                    stream=True,
                    follow=True,
                    since=since,
                )
                with path.open("ab") as out:
                    for chunk in chunks:
                        out.write(chunk)
                        out.flush()
            except Exception as exc:  # the container is gone, or the engine
                if not self._closing:
                    log.debug("container_output_ended", node=node.name, error=str(exc))

        def stderr() -> None:
            copy("stderr", node.stderr_path)
            stderr_done.set()

        def stdout_then_exit() -> None:
            code: int | None = None
            try:
                copy("stdout", node.stdout_path)
                code = int(self.engine.api.wait(container)["StatusCode"])
                stderr_done.wait(5)  # its last lines are in the file before the exit is told
            except Exception as exc:
                if not self._closing:
                    log.debug("container_watch_ended", node=node.name, error=str(exc))
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                    loop.call_soon_threadsafe(_resolve, exited, code)

        for target, name in ((stdout_then_exit, "out"), (stderr, "err")):
            threading.Thread(target=target, name=f"docker-{node.name}-{name}", daemon=True).start()

    # ------------------------------------------------------------------ control

    def act(self, handle: NodeHandle, action: Action, sig: signal.Signals | None = None) -> None:
        api = self.engine.api
        errors = engine_errors()
        try:
            if action == "pause":
                api.pause(handle.key)
            elif action == "resume":
                api.unpause(handle.key)
            else:
                if api.inspect_container(handle.key)["State"]["Paused"]:
                    api.unpause(handle.key)  # a frozen container must thaw to take a signal
                chosen = signal.SIGKILL if action == "kill" else (sig or signal.SIGTERM)
                api.kill(handle.key, signal=chosen.name)
        except (errors.NotFound, errors.APIError) as exc:
            if "is not running" not in str(exc) and not isinstance(exc, errors.NotFound):
                raise PeerlabError(f"cannot {action} container {handle.key[:12]}: {exc}") from None

    def set_clock(self, node: Node, seconds: float) -> bool:
        write_skew(node.data_dir.parent / "clock" / "clock-skew", seconds)
        return node.name in self._faketime

    def healthy(self, node: Node) -> bool:
        """The engine's health status, asked at most a few times a second (it changes once
        per check, and the readiness loop polls far more often)."""
        if node.handle is None:
            return False
        key = node.handle.key
        asked, answer = self._health.get(key, (0.0, False))
        if time.monotonic() - asked >= HEALTH_POLL:
            state = self.engine.api.inspect_container(key)["State"]
            answer = (state.get("Health") or {}).get("Status") == "healthy"
            self._health[key] = (time.monotonic(), answer)
        return answer

    def logs(self, node: Node, lines: int, stream: Literal["stdout", "stderr"]) -> list[str]:
        return node.logs(lines, stream)

    def resources(self, handle: NodeHandle) -> dict[str, Any]:
        """The engine's figures for the container: CPU, memory without page cache, tasks."""
        try:
            stats = self.engine.api.stats(handle.key, stream=False, one_shot=True)
        except (engine_errors().DockerException, OSError):
            return {}
        memory = stats.get("memory_stats") or {}
        cache = (memory.get("stats") or {}).get("cache", 0)
        cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage", 0)
        return {
            "rss_mb": round(max(memory.get("usage", 0) - cache, 0) / 2**20, 1),
            "cpu_seconds": round(cpu / 1e9, 2),
            "processes": int((stats.get("pids_stats") or {}).get("current", 0)),
        }

    def export_data(self, node: Node, target: Path) -> None:
        datadir.export_data(node, target)

    def import_data(self, node: Node, source: Path) -> None:
        datadir.import_data(node, source)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, **self.network.describe(), "tag": self.tag}

    # ------------------------------------------------------------------ handover, close

    def detach(self) -> dict[str, Any]:
        """The containers, volumes and network stay for the adopter."""
        self.reaper.forget_resource(self._resource)
        self._closing = True
        return {
            **self.network.detach(),
            "tag": self.tag,
            "owners": self.owners,
            "volumes": sorted(self._volumes),
            "faketime": sorted(self._faketime),
        }

    async def watch(self, saved: dict[str, Any]) -> NodeHandle:
        """Follow an adopted container: its output from now on, and its exit."""
        exited: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        state = dict(saved.get("state") or {})
        node = self.context.nodes()[str(state["node"])]
        self._follow(node, str(saved["key"]), exited, replay=False)
        return NodeHandle(str(saved["key"]), exited, saved.get("pid"), state)

    async def close(self, detach: bool = False) -> None:
        self._closing = True
        if detach or self._detached:
            self._detached = True  # an adopter owns them now, even when closed again
            return
        for owner in self.owners:
            await asyncio.to_thread(engine.remove_owned, self.engine, owner)
        await self.network.close()
        self.reaper.forget_resource(self._resource)


def engine_errors() -> Any:
    import docker

    return docker.errors


def _in_image(text: str) -> str:
    """`{python}` renders this machine's interpreter; inside an image it is the image's."""
    return text.replace(sys.executable, IMAGE_PYTHON)


def _resolve(future: asyncio.Future[int | None], code: int | None) -> None:
    if not future.done():
        future.set_result(code)


def _say(step: str) -> None:
    log.info("docker_image", step=step, at=time.strftime("%H:%M:%S"))
