"""The supervisor: a background process that owns one live Environment for the CLI.

`peerlab up` starts it; it keeps its state under `$PEERLAB_HOME/envs/<name>/` and serves the
Environment's `@rpc` methods over HTTP on a unix socket there, so that separate CLI commands
act on the same running network. `remote(name).call("net.partition", groups=...)` is the
client side. `peerlab down` asks it to close the Environment and exit; if it was killed,
`down` kills what its state file names.

A simulated network (`--backend sim`) lives on virtual time, which moves only while someone
waits: here a thread lets it follow the wall clock between commands (a tenth of a second at
a time, as fast as the simulation can go), and each command runs alone, so the simulation
has one driver at a time. Commands typed by hand arrive at wall-clock moments: such a
session is not replayable; a scenario run from a test or `peerlab sim run` is.

The client side is what every CLI command imports, so it stays light: a plain HTTP request
(`http.client`) on the socket; the server side imports asyncio, aiohttp and the API's
pydantic models where it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import inspect
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from peerlab.api import ControlAPI, ControlTarget, NetAPI
from peerlab.errors import PeerlabError, UsageError
from peerlab.home import peerlab_home, runtime_dir
from peerlab.names import SAFE_NAME, child, remove_tree
from peerlab.versions import parse_versions

if TYPE_CHECKING:
    from peerlab.clock import Scheduler
    from peerlab.services import Services

CALL_TIMEOUT = 300.0
T = TypeVar("T")


def envs_root() -> Path:
    return peerlab_home() / "envs"


def env_dir(name: str) -> Path:
    """The environment's folder; a name that is not a safe folder name is refused."""
    return child(envs_root(), name, "environment", "--env")


def socket_path(name: str) -> Path:
    """The supervisor's unix socket. Kept short (a hash in the runtime dir): unix socket paths
    are limited to 107 bytes and PEERLAB_HOME can be deep."""
    digest = hashlib.sha256(str(env_dir(name).resolve()).encode()).hexdigest()[:20]
    directory = runtime_dir() / "sockets"
    directory.mkdir(exist_ok=True)
    return directory / f"{digest}.sock"


def read_state(name: str) -> dict[str, Any] | None:
    path = env_dir(name) / "state.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return state


def write_state(name: str, state: dict[str, Any]) -> None:
    path = env_dir(name) / "state.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def is_running(name: str) -> bool:
    from peerlab.reaper import same_process

    state = read_state(name)
    return bool(state and same_process(state.get("pid", -1), state.get("pid_start")))


def list_envs() -> list[str]:
    base = envs_root()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and SAFE_NAME.fullmatch(p.name))


# ------------------------------------------------------------------ client side


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the supervisor's unix socket; `timeout` bounds each wait on it (the answer
    comes in one piece once the operation is done, so in effect the whole call)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("supervisor", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Remote:
    """Calls a live Environment's `@rpc` methods through its supervisor: a plain HTTP
    request on its unix socket (`POST /v1/{namespace}/{verb}`, docs/api.md), so a CLI
    command imports no HTTP framework."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.socket = socket_path(name)

    def call(self, path: str, timeout: float = CALL_TIMEOUT, **kwargs: Any) -> Any:
        route = "/v1/shutdown" if path == "shutdown" else "/v1/" + path.replace(".", "/", 1)
        connection = _UnixHTTPConnection(str(self.socket), timeout)
        try:
            connection.request(
                "POST", route, json.dumps(kwargs), headers={"Content-Type": "application/json"}
            )
            answer = json.loads(connection.getresponse().read())
        except (FileNotFoundError, ConnectionRefusedError):
            # Nothing listens: not running (or still starting, or died).
            if not is_running(self.name):
                raise self._not_running() from None
            raise PeerlabError(
                f"the supervisor of {self.name!r} is not answering yet",
                hint="it may still be starting; `peerlab down` cleans up one that died",
            ) from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise PeerlabError(
                f"the supervisor of {self.name!r} did not answer: {exc!r}",
                hint="`peerlab down` cleans up a supervisor that died",
            ) from None
        finally:
            connection.close()
        if "error" in answer:
            cls = UsageError if answer.get("usage") else PeerlabError
            raise cls(answer["error"], hint=answer.get("hint"))
        return answer.get("result")

    def _not_running(self) -> UsageError:
        running = [e for e in list_envs() if is_running(e)]
        return UsageError(
            f"environment {self.name!r} is not running",
            field="env",
            hint="start one with `peerlab up --peers N`"
            + (f"; running: {', '.join(running)}" if running else ""),
        )

    def namespace(self, namespace: str, api: type[T]) -> T:
        """A typed proxy of one namespace (`env`, `net`, ...): each method call on it is
        one remote call, with positional arguments named by `api`'s signatures."""
        return cast(T, _Namespace(self, namespace, api))

    def environment(self) -> ControlTarget:
        """The live network as the nemesis and churn drive an Environment: the node verbs
        (`env` namespace) with its `net`."""
        net = _Namespace(self, "net", NetAPI)
        return cast(ControlTarget, _Namespace(self, "env", ControlAPI, net=net))


class _Namespace:
    def __init__(self, remote: Remote, namespace: str, api: type[Any], **attributes: Any) -> None:
        self._remote = remote
        self._namespace = namespace
        self._api = api
        self.__dict__.update(attributes)

    def __getattr__(self, verb: str) -> Callable[..., Any]:
        method = getattr(self._api, verb, None)
        if verb.startswith("_") or method is None:
            raise AttributeError(verb)
        signature = inspect.signature(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(None, *args, **kwargs)  # None stands for self
            arguments = dict(list(bound.arguments.items())[1:])
            return self._remote.call(f"{self._namespace}.{verb}", **arguments)

        return call


def remote(name: str = "default") -> Remote:
    return Remote(name)


# ------------------------------------------------------------------ supervisor side


class Pacer:
    """Virtual time that follows the wall clock while the supervisor serves commands."""

    STEP = 0.1  # seconds of virtual time per step (and of wall time between steps)

    def __init__(self, clock: Scheduler) -> None:
        self.clock = clock
        self.lock = threading.Lock()  # one driver of the simulation at a time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peerlab-pacer", daemon=True)

    def start(self) -> Pacer:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.STEP):
            with self.lock:
                self.clock.sleep(self.STEP)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


async def answer(services: Services, path: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """One call's answer, as the API gives it (`peerlab.control_api.call`)."""
    from peerlab.control_api import call

    return await call(services.resolve, path, kwargs)


def api_token(name: str) -> Path:
    """The file holding the bearer token of the environment's TCP API (readable by its
    owner only)."""
    return env_dir(name) / "api-token"


async def _serve(env: Any, name: str, api_port: int | None = None) -> None:
    import asyncio

    from aiohttp import web

    from peerlab.clock import Scheduler
    from peerlab.control_api import app as control_app
    from peerlab.control_api import document

    pacer = Pacer(env.clock) if isinstance(env.clock, Scheduler) else None
    lock = pacer.lock if pacer is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def spec() -> dict[str, Any]:
        return document(env.services.types(), title=f"peerlab control API ({name})")

    runners = []
    api: dict[str, Any] = {"socket": str(socket_path(name))}
    sock = socket_path(name)
    sock.unlink(missing_ok=True)
    unix = web.AppRunner(
        control_app(env.services.resolve, spec, stop.set, lock=lock), access_log=None
    )
    await unix.setup()
    await web.UnixSite(unix, str(sock)).start()
    runners.append(unix)
    if api_port is not None:
        token = secrets.token_urlsafe(24)
        path = api_token(name)
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        path.write_text(token + "\n")
        tcp = web.AppRunner(
            control_app(env.services.resolve, spec, stop.set, token, lock), access_log=None
        )
        await tcp.setup()
        site = web.TCPSite(tcp, "127.0.0.1", api_port)
        try:
            await site.start()
        except OSError as exc:
            await tcp.cleanup()
            await unix.cleanup()
            raise UsageError(
                f"cannot listen on 127.0.0.1:{api_port}: {exc.strerror or exc}",
                field="--api-port",
                hint="choose a free port, or 0 for any",
            ) from None
        runners.append(tcp)
        host, port = tcp.addresses[0][:2]
        api.update(url=f"http://{host}:{port}", token_file=str(path))
    state = read_state(name) or {}
    write_state(name, {**state, "state": "ready", "api": api, "status": env.status()})
    if pacer is not None:
        pacer.start()
    try:
        await stop.wait()
    finally:
        if pacer is not None:
            pacer.stop()
    for runner in runners:
        await runner.cleanup()
    sock.unlink(missing_ok=True)


def supervise(options: argparse.Namespace) -> int:
    import asyncio

    from peerlab.env import Environment
    from peerlab.handover import adopt as adopt_network

    name = options.env
    own = {
        "pid": os.getpid(),
        "pid_start": _own_start(),
        "state": "starting",
        "system": options.system,
        "peers": options.peers,
    }
    write_state(name, own)
    env = None
    try:
        if options.adopt:
            env = adopt_network(json.loads(Path(options.adopt).read_text()), name)
        else:
            # A new network starts from empty data dirs; the last one's results were saved
            # by `peerlab down`.
            remove_tree(env_dir(name) / "work", envs_root())
            env = Environment(
                name,
                seed=options.seed,
                backend=options.backend,
                fabric=not options.no_fabric,
                workdir=env_dir(name) / "work",
            )
        write_state(name, {**own, "seed": env.seed, "env_id": env.id})
        _report_progress(env, name)
        if options.adopt:
            pass
        elif options.bootstrap:
            env.versions.update(parse_versions(options.version))
            env.start(options.system, 1, role="bootstrap")
            peers = 3 if options.peers is None else options.peers
            if peers > 1:
                env.start(options.system, peers - 1)
        else:
            env.start(options.system, options.peers, version=parse_versions(options.version))
        asyncio.run(_serve(env, name, options.api_port))
        write_state(name, {**own, "state": "stopping"})
        return 0
    except PeerlabError as exc:
        write_state(
            name,
            {
                **own,
                "state": "failed",
                "error": exc.message,
                "hint": exc.hint,
                "usage": isinstance(exc, UsageError),
            },
        )
        return 2 if isinstance(exc, UsageError) else 1
    except BaseException as exc:
        traceback.print_exc()
        write_state(name, {**own, "state": "failed", "error": repr(exc)})
        return 1
    finally:
        if env is not None:
            env.close()
        state = read_state(name) or {}
        if state.get("state") != "failed":
            write_state(name, {**state, "state": "down"})


def _report_progress(env: Any, name: str) -> None:
    """While nodes start, keep how many are ready in progress.json (its own file, so it never
    races the state file's writers) for `peerlab up` to show."""
    path = env_dir(name) / "progress.json"

    def loop() -> None:
        while (read_state(name) or {}).get("state") == "starting":
            nodes = list(env.nodes.values())
            ready = sum(1 for node in nodes if node.state == "running")
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"ready": ready, "created": len(nodes)}))
            tmp.replace(path)
            time.sleep(0.2)

    threading.Thread(target=loop, name="progress", daemon=True).start()


def _own_start() -> float | None:
    import psutil

    return psutil.Process().create_time()


def launch(
    name: str,
    system: str,
    peers: int | None,
    seed: int | None,
    fabric: bool,
    bootstrap: bool,
    timeout: float,
    on_progress: Callable[[int, int], None] | None = None,
    backend: str = "local",
    versions: Sequence[str] = (),
    api_port: int | None = None,
) -> dict[str, Any]:
    """Start a supervisor in the background and wait until its nodes are ready (or failed).

    `versions`: "A,B=1.0" texts, which nodes run which version of the system."""
    args = ["--system", system, "--backend", backend]
    for text in versions:
        args += ["--version", text]
    if api_port is not None:
        args += ["--api-port", str(api_port)]
    if peers is not None:  # None: the system's layout of roles, or 3 nodes
        args += ["--peers", str(peers)]
    if seed is not None:
        args += ["--seed", str(seed)]
    if not fabric:
        args.append("--no-fabric")
    if bootstrap:
        args.append("--bootstrap")
    return _start_supervisor(name, args, timeout, on_progress)


def adopt(env: Any, name: str, timeout: float = 60.0) -> dict[str, Any]:
    """Hand a live Environment over to a new supervisor named `name` (for --peerlab-keep)."""
    if is_running(name):
        shutdown(name)
    directory = env_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    handed = directory / "handover.json"
    handed.write_text(json.dumps(env.handover(), default=str))
    return _start_supervisor(name, ["--adopt", str(handed)], timeout)


def _start_supervisor(
    name: str,
    extra: list[str],
    timeout: float,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    directory = env_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "state.json").unlink(missing_ok=True)
    (directory / "progress.json").unlink(missing_ok=True)
    args = [sys.executable, "-m", "peerlab.supervisor", "--env", name, *extra]
    with (directory / "supervisor.log").open("ab") as log_file:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True
        )
    try:
        return _wait_ready(name, process, timeout, on_progress)
    except BaseException:  # a failure, a timeout, Ctrl-C: nothing stays running
        abort(name, process)
        raise


def _wait_ready(
    name: str,
    process: subprocess.Popen[bytes],
    timeout: float,
    on_progress: Callable[[int, int], None] | None,
) -> dict[str, Any]:
    directory = env_dir(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(name) or {}
        if state.get("state") in ("ready", "failed"):
            if state["state"] == "failed":
                process.wait(30)
                cls = UsageError if state.get("usage") else PeerlabError
                raise cls(state.get("error", "the supervisor failed"), hint=state.get("hint"))
            return state
        if on_progress is not None:
            with contextlib.suppress(OSError, ValueError):
                progress = json.loads((directory / "progress.json").read_text())
                on_progress(progress["ready"], progress["created"])
        if process.poll() is not None:
            raise PeerlabError(
                f"the supervisor exited with code {process.returncode}",
                hint=f"see {directory / 'supervisor.log'}",
            )
        time.sleep(0.05)
    raise PeerlabError(
        f"the network was not up within {timeout:g}s; everything it started is stopped",
        hint=f"raise --timeout, or see {directory / 'supervisor.log'}",
    )


def abort(name: str, process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """Stop a supervisor that is still starting its network, and all it started: SIGINT
    lets it close its Environment; a kill (and the sweep of what it leaves) follows if it
    does not end in `grace` seconds."""
    from peerlab.reaper import kill_tree, sweep

    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
            process.wait(5)
    sweep()
    socket_path(name).unlink(missing_ok=True)
    state = read_state(name) or {}
    if state.get("state") != "failed":
        write_state(name, {**state, "state": "down"})


def shutdown(name: str, timeout: float = 60.0) -> bool:
    """Stop the environment; returns False when nothing was running."""
    from peerlab.reaper import kill_tree, same_process, sweep

    state = read_state(name)
    if not state:
        return False
    pid, start = state.get("pid", -1), state.get("pid_start")
    if same_process(pid, start):
        with contextlib.suppress(PeerlabError):
            Remote(name).call("shutdown", timeout=10)
        deadline = time.monotonic() + timeout
        while same_process(pid, start) and time.monotonic() < deadline:
            time.sleep(0.05)
        if same_process(pid, start):
            kill_tree(pid, start)
    sweep()  # what a killed supervisor left: its nodes, launcher and temp dirs
    socket_path(name).unlink(missing_ok=True)
    write_state(name, {**state, "state": "down"})
    return True


def main() -> None:
    parser = argparse.ArgumentParser(prog="peerlab-supervisor")
    parser.add_argument("--env", default="default")
    parser.add_argument("--system", default="syncpeer")
    parser.add_argument("--backend", default="local")
    parser.add_argument("--peers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--no-fabric", action="store_true")
    parser.add_argument("--bootstrap", action="store_true")
    parser.add_argument("--version", action="append", default=[], help="A,B=1.0 (repeat)")
    parser.add_argument("--adopt", default=None, help="take over a handed-over network")
    parser.add_argument("--api-port", type=int, default=None, help="also serve the API on TCP")
    sys.exit(supervise(parser.parse_args()))


if __name__ == "__main__":
    main()
