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

from peerlab.backends.base import Launch
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
    args = [] if command is not spec.command else [render(p, node.fields) for p in spec.args]
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
    fork = spec.mode == "fork" and command is spec.command
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
    )


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


def check_installed(spec: SystemSpec) -> None:
    """Refuse a system whose programs are not installed, naming the package to install."""
    # Roles may run programs of their own (redis-sentinel next to redis-server); the init
    # step and a command probe run programs too.
    commands = spec.commands() if spec.mode == "exec" else spec.commands()[1:]
    if spec.init is not None:
        commands.append(spec.init.command)
    if spec.readiness.command is not None:
        commands.append(spec.readiness.command)
    for command in commands:
        program = real_program(command)
        if program is not None and shutil.which(program) is None:
            raise UsageError(
                f"system {spec.name!r} needs the program {program!r}, which is not installed",
                field="launch.command",
                hint=f"install it (for example `apt-get install {spec.binary or program}`) "
                "or put it on PATH",
            )
