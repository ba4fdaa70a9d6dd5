"""The Docker engine as peerlab uses it: one client, the labels on what peerlab makes, and
the sweep that removes what a killed runner left.

Every container and volume peerlab creates carries `peerlab.env` = the Environment's id (and
images carry `peerlab.image`), so peerlab finds and removes exactly its own things by a
label filter, never anything else on the engine, and never prunes. The client is the
`docker` package (the Engine API over its socket), an optional dependency:
`pip install 'peerlab[docker]'`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from peerlab import log
from peerlab.errors import PeerlabError, UsageError

if TYPE_CHECKING:
    import docker

ENV_LABEL = "peerlab.env"  # the Environment's id, on every container and volume
NODE_LABEL = "peerlab.node"  # the node's name
ROLE_LABEL = "peerlab.part"  # "node" (runs the system) or "sandbox" (holds its network)
IMAGE_LABEL = "peerlab.image"  # on images peerlab builds: which recipe made it

_client: docker.DockerClient | None = None


def client() -> docker.DockerClient:
    """A client of the engine at DOCKER_HOST (default: the local socket), made once."""
    global _client
    if _client is not None:
        return _client
    try:
        import docker
    except ImportError:
        raise UsageError(
            "the docker backend needs the docker Python package",
            field="backend",
            hint="pip install 'peerlab[docker]'",
        ) from None
    try:
        # A connection per node follows its output: more than the default pool of 10.
        made = docker.from_env(timeout=120, max_pool_size=256)
        made.ping()
    except docker.errors.DockerException as exc:
        raise PeerlabError(
            f"cannot reach the Docker engine ({_first_line(exc)})",
            hint="start it (`dockerd &`, or `systemctl start docker`) or point DOCKER_HOST at it",
        ) from None
    _client = made
    return made


def labels(env_id: str, **more: str) -> dict[str, str]:
    """The labels of something an Environment makes."""
    return {ENV_LABEL: env_id, **{f"peerlab.{key}": value for key, value in more.items()}}


def owned(env_id: str) -> dict[str, Any]:
    """The filter that finds what an Environment made."""
    return {"label": f"{ENV_LABEL}={env_id}"}


def remove_containers(engine: docker.DockerClient, ids: list[str]) -> None:
    """Remove containers (running or not) with their anonymous volumes; gone ones are fine."""
    import docker

    for container in ids:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                engine.api.remove_container(container, force=True, v=True)
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise


def remove_owned(engine: docker.DockerClient, env_id: str) -> tuple[int, int]:
    """Remove every container, then every volume, labelled with `env_id`; how many of each."""
    import docker

    found = engine.api.containers(all=True, quiet=True, filters=owned(env_id))
    remove_containers(engine, [c["Id"] for c in found])
    volumes = engine.api.volumes(filters=owned(env_id)).get("Volumes") or []
    for volume in volumes:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_volume(volume["Name"], force=True)
    return len(found), len(volumes)


def sweep(record: dict[str, Any]) -> None:
    """The reaper's sweeper for `{"kind": "docker", "envs": [ID, ...]}`: what a runner killed
    with SIGKILL left on the engine, by the labels of the networks it owned (an engine that
    is gone has nothing left to remove)."""
    envs = [str(env) for env in record.get("envs", [])]
    try:
        engine = client()
    except PeerlabError as exc:
        log.warning("docker_sweep_skipped", envs=envs, error=exc.message)
        return
    for env in envs:
        containers, volumes = remove_owned(engine, env)
        log.info("docker_swept", env=env, containers=containers, volumes=volumes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
