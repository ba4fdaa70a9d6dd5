"""Where nodes run: the registry of backends. `local` (processes on this machine, no root) is
the default; `Environment(backend=NAME)`, `peerlab up --backend NAME` and
`pytest --peerlab-backend NAME` choose another. A backend is one module with a class that
implements `peerlab.backends.base.Backend`, plus one line in `REGISTRY`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from peerlab.errors import UsageError

if TYPE_CHECKING:
    from peerlab.backends.base import Backend, BackendContext

# name -> "module:Class"; imported only when chosen, so a backend's dependencies cost
# nothing to users of the others.
REGISTRY: dict[str, str] = {
    "local": "peerlab.backends.local:LocalBackend",
    "netns": "peerlab.backends.netns:NetnsBackend",
    "docker": "peerlab.backends.docker:DockerBackend",
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
