"""Where nodes run: the registry of backends. `local` (processes on this machine, no root) is
the default; `Environment(backend=NAME)`, `peerlab up --backend NAME` and
`pytest --peerlab-backend NAME` choose another. A backend is one module with a class that
implements `peerlab.backends.base.Backend`, plus one line in `REGISTRY`.

Three hooks are optional, with the defaults real backends want; a backend that simulates
the world (`sim`) brings its own: what time is (`make_clock(seed)`, a classmethod; default
the machine's clock), what carries traffic between nodes (`fault_plane()`; default the
fabric's proxies) and how the harness reaches its nodes (`transport(run, session)`; default
HTTP to each node's address).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerlab.errors import UsageError

if TYPE_CHECKING:
    import aiohttp

    from peerlab.backends.base import Backend, BackendContext
    from peerlab.clock import Clock
    from peerlab.fabric.attribution import Identify
    from peerlab.fabric.plane import FaultPlane
    from peerlab.history import History
    from peerlab.transport import Transport

# name -> "module:Class"; imported only when chosen, so a backend's dependencies cost
# nothing to users of the others.
REGISTRY: dict[str, str] = {
    "local": "peerlab.backends.local:LocalBackend",
    "netns": "peerlab.backends.netns:NetnsBackend",
    "docker": "peerlab.backends.docker:DockerBackend",
    "sim": "peerlab.backends.sim:SimBackend",
}
DEFAULT = "local"


def names() -> list[str]:
    return list(REGISTRY)


def check(name: str) -> str:
    """`name` if it is a known backend; a UsageError naming the choices otherwise."""
    if name not in REGISTRY:
        raise UsageError(
            f"unknown backend {name!r}",
            field="backend",
            hint=f"choose one of: {', '.join(REGISTRY)}",
        )
    return name


def _factory(name: str) -> Any:
    module_name, _, attr = REGISTRY[check(name)].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def enter(name: str) -> None:
    """Ready this process for backend `name`, before it starts any thread: a backend may
    need something of the process itself (its `prepare_process`; the netns backend without
    root enters a user namespace, which only a single-threaded process can)."""
    prepare = getattr(_factory(name), "prepare_process", None)
    if prepare is not None:
        prepare()


def create(name: str, context: BackendContext) -> Backend:
    """A new backend `name` for one Environment."""
    backend: Backend = _factory(name)(context)
    return backend


# The hooks import what they need when called: `peerlab status` and the control calls
# import this module, and must not pay for the fabric or aiohttp.


def clock(name: str, seed: int) -> Clock:
    """The clock of an Environment on backend `name`: its own (`make_clock`), or real."""
    from peerlab.clock import REAL_CLOCK

    make = getattr(_factory(name), "make_clock", None)
    made: Clock = make(seed) if make is not None else REAL_CLOCK
    return made


def scratch(name: str) -> Path:
    """Where an Environment on backend `name` keeps its workdir: in memory for a backend
    whose nodes' files are many and short-lived (`scratch_in_memory`), else the runtime dir."""
    from peerlab.home import runtime_dir, scratch_dir

    return scratch_dir() if getattr(_factory(name), "scratch_in_memory", False) else runtime_dir()


def transport(
    backend: Backend, run: Callable[..., Any], session: Callable[[], aiohttp.ClientSession]
) -> Transport:
    """How the harness reaches the backend's nodes: its own (`transport`), or HTTP."""
    from peerlab.transport import HttpTransport

    make = getattr(backend, "transport", None)
    made: Transport = make(run, session) if make is not None else HttpTransport(run, session)
    return made


def fault_plane(
    backend: Backend,
    fabric: bool,
    seed: int,
    history: History,
    identify: Identify,
) -> FaultPlane:
    """What carries the nodes' traffic and its faults: the backend's own plane, or the
    fabric's proxies; without a fabric, a plane that refuses every fault."""
    from peerlab.fabric.fabric import Fabric
    from peerlab.fabric.plane import NoFabric

    if not fabric:
        return NoFabric()
    own = getattr(backend, "fault_plane", None)
    plane: FaultPlane = own() if own is not None else Fabric(seed, history, identify)
    return plane
