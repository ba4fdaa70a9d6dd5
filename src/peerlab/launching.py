"""Launch planning: from a node of a system to the backend-neutral `Launch` that starts it.

The manifest's command (or its role's), arguments, environment and files are rendered with
the node's fields, then changed as its version's `[versions]` table says; the Environment
adds the node's name and seed, the variables set at run time (`env.setenv`) and the clock
offset (`env.skew`). Which process runs it, and how the
offset is applied, is the backend's business.
"""

from __future__ import annotations

import shlex
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

from peerlab.backends.base import Capabilities, Launch
from peerlab.errors import UsageError
from peerlab.manifest import SystemSpec, node_files, render
from peerlab.node import Node


def plan_launch(
    node: Node,
    *,
    seed: int,
    extra_env: Mapping[str, str],
    clock_offset: float | None,
) -> Launch:
    """How to start `node` now."""
    spec = node.system
    role = spec.roles[node.role] if node.role else None
    # A role with a program of its own runs it by exec, without launch.args.
    command = role.command if role is not None and role.command else spec.command
    own = command is not spec.command
    args = [] if own else [render(p, node.fields) for p in spec.args]
    if role is not None:
        args += [render(part, node.fields) for part in role.args]
    env = {k: render(v, node.fields) for k, v in spec.env.items()}
    if role is not None:
        env.update({k: render(v, node.fields) for k, v in role.env.items()})
    version = spec.versions.get(node.fields.get("version") or "")
    if version is not None:
        # A version's own program is another build of the same system: same arguments.
        command = version.command or command
        args += [render(part, node.fields) for part in version.args]
        env.update({k: render(v, node.fields) for k, v in version.env.items()})
    env.update({"PEERLAB_NODE": node.name, "PEERLAB_SEED": str(seed), "PYTHONUNBUFFERED": "1"})
    env.update(extra_env)
    fork = spec.mode == "fork" and command is spec.command  # a role's or version's: exec
    image, build = spec.images()[node.role]
    return Launch(
        argv=[render(part, node.fields) for part in command] + args,
        env=env,
        cwd=node.data_dir,
        data_dir=node.data_dir,
        stdout=node.stdout_path,
        stderr=node.stderr_path,
        files=node_files(spec, node.role, node.fields),
        entry=spec.entry if fork else None,
        args=args,
        preload=spec.preload,
        sim=spec.sim,
        clock_offset=clock_offset,
        stop_signal=signal.Signals[spec.stop_signal],
        capabilities=spec.capabilities,
        program=bool(command),
        image=image,
        build=build,
        volume=spec.volume,
    )


def check_launchable(spec: SystemSpec, capabilities: Capabilities, backend: str) -> None:
    """Refuse, before anything starts, a system that `backend` cannot run: its programs
    missing here, capabilities it cannot grant, or nodes from images on a backend of
    processes (and processes on a backend of containers: one backend runs a whole network)."""
    if spec.capabilities and not capabilities.node_capabilities:
        raise UsageError(
            f"system {spec.name!r} asks for capabilities {', '.join(spec.capabilities)}, "
            f"which the {backend} backend cannot grant",
            field="launch.capabilities",
            hint="run it on a backend that gives each node its own network namespace "
            "(--backend netns or docker; docs/backends.md)",
        )
    if capabilities.images:
        for role, (image, build) in spec.images().items():
            if image is None and build is None:
                where = (
                    f"role {role!r} of system {spec.name!r}" if role else f"system {spec.name!r}"
                )
                raise UsageError(
                    f"{where} names no image, and on the {backend} backend every node runs "
                    "from one (mixing processes and containers in one network is not supported)",
                    field=f"roles.{role}.image" if role else "launch.image",
                    hint='add image = "NAME" or build = "./Dockerfile" to [launch], '
                    "or run it with --backend local",
                )
        check_installed(spec, here_only=True)
        return
    if spec.readiness.type == "healthcheck":
        raise UsageError(
            f"system {spec.name!r} is ready by its image's healthcheck, which a node of the "
            f"{backend} backend has not",
            field="readiness.type",
            hint="run it with --backend docker, or probe it by http or tcp",
        )
    if not spec.command or any(not role.command for role in spec.roles.values() if role.image):
        raise UsageError(
            f"system {spec.name!r} runs from its image only (no launch.command for it), and "
            f"the {backend} backend runs processes",
            field="launch.command",
            hint="run it with --backend docker, or give it a command installed here",
        )
    check_installed(spec)


SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash"})
# Words that run the next word as the program (`env X=1 prog`, `exec prog`, `nice prog`).
WRAPPERS = frozenset({"env", "exec", "nice", "nohup", "setsid", "stdbuf", "command"})


def real_program(command: Sequence[str]) -> str | None:
    """The program a command runs: `command[0]`, or for `sh -c "exec prog ..."` and
    `env X=1 prog` the program they start; None when it is templated or cannot be told."""
    words = list(command)
    while words:
        head = PurePosixPath(words[0]).name
        if head in SHELLS:
            flags = [i for i, w in enumerate(words) if _is_c_flag(w)]
            if not flags:
                return words[0]
            try:
                words = shlex.split(" ".join(words[flags[0] + 1 : flags[0] + 2]), comments=True)
            except ValueError:
                return None
        elif head in WRAPPERS or "=" in words[0] or words[0].startswith("-"):
            words = words[1:]
        elif "{" in words[0] or "$" in words[0] or ("/" in words[0] and words[0][0] != "/"):
            return None  # templated, a variable, or relative to the node's data dir
        else:
            return words[0]
    return None


def _is_c_flag(word: str) -> bool:
    return word.startswith("-") and not word.startswith("--") and "c" in word[1:]


def check_installed(spec: SystemSpec, here_only: bool = False) -> None:
    """Refuse a system whose programs are not installed, naming the package to install.
    `here_only`: the nodes run from images, so only what runs on this machine counts (the
    init step and a command probe)."""
    # Roles may run programs of their own (redis-sentinel next to redis-server); the init
    # step and a command probe run programs too.
    commands = [("launch.command", c) for c in spec.commands()] if not here_only else []
    if spec.mode == "fork":
        commands = commands[1:]
    if spec.init is not None:
        commands.append(("init.command", spec.init.command))
    if spec.readiness.type == "command" and spec.readiness.command is not None:
        commands.append(("readiness.command", spec.readiness.command))
    for field, command in commands:
        program = real_program(command)
        if program is not None and shutil.which(program) is None:
            raise UsageError(
                f"system {spec.name!r} needs the program {program!r}, which is not installed",
                field=field,
                hint=f"install it (for example `apt-get install {spec.binary or program}`) "
                "or put it on PATH",
            )
