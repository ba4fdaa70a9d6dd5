"""The manifest's `[init]` step: a command run once per node before its first start.

Systems that make their identity at first start (a key pair, a certificate, a node id
derived from either) print it or write it to a file; the step's `capture` regexes turn that
into fields of the node (`{device_id}`), which every node's templates can then use: its
own, every node's through `[templates]` joins, one node's as `{peer.B.device_id}`. The
Environment runs every new node's init before it renders any of their files, and never
again on a restart. What the command printed is kept in the node's folder as `init.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from pathlib import Path

from peerlab.errors import PeerlabError
from peerlab.manifest import file_names, render
from peerlab.names import inside
from peerlab.node import Node

EXCERPT = 300  # characters of output shown when a capture finds nothing


async def run_init(node: Node, seed: int) -> dict[str, str]:
    """Run the node's init command in its data dir; the fields its captures found."""
    init = node.system.init
    if init is None:
        return {}
    argv = [render(part, node.fields) for part in init.command]
    env = {
        **os.environ,
        **{key: render(value, node.fields) for key, value in init.env.items()},
        "PEERLAB_NODE": node.name,
        "PEERLAB_SEED": str(seed),
    }
    node.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=node.data_dir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise PeerlabError(
            f"the init step of node {node.name} could not run {argv[0]!r}: {exc.strerror}",
            hint="check [init] command in the manifest",
        ) from None
    try:
        out, err = await asyncio.wait_for(process.communicate(), init.timeout)
    except BaseException:  # a timeout, or the start being cancelled: leave nothing behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise PeerlabError(
            f"the init step of node {node.name} did not finish within {init.timeout:g}s",
            hint="raise [init] timeout, or check that the command does not wait for input",
        ) from None
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    log = node.stdout_path.parent / "init.log"
    log.write_text(f"$ {' '.join(argv)}\n{stdout}{stderr}", encoding="utf-8")
    if process.returncode != 0:
        last = " | ".join((stderr or stdout).strip().splitlines()[-5:]) or "(none)"
        raise PeerlabError(
            f"the init step of node {node.name} exited with code {process.returncode}",
            hint=f"its last output: {last}; all of it is in {log}",
        )
    text = _source_text(node, stdout, stderr)
    captured = {}
    for field, pattern in init.capture.items():
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            excerpt = text.strip()[-EXCERPT:] or "(nothing)"
            raise PeerlabError(
                f"the init step of node {node.name}: capture {field!r} found nothing "
                f"in its {init.file or init.source}",
                hint=f"the regex {pattern!r} must match what it wrote: {excerpt!r}",
            )
        captured[field] = match.group(1) if match.re.groups else match.group(0)
    _clear_rendered_files(node)
    return captured


def _source_text(node: Node, stdout: str, stderr: str) -> str:
    init = node.system.init
    assert init is not None
    if init.file is not None:
        path = node.data_dir / init.file
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            raise PeerlabError(
                f"the init step of node {node.name} wrote no file {init.file!r}",
                hint=f"[init] file names a file the command writes in {node.data_dir}",
            ) from None
    return {"stdout": stdout, "stderr": stderr}.get(init.source, stdout + stderr)


def _clear_rendered_files(node: Node) -> None:
    """Remove what the init wrote under the names of the node's `[files]`: those are written
    at its first start, and the manifest's version wins."""
    for name in file_names(node.system, node.role):
        path: Path = node.data_dir / name
        if inside(path, node.data_dir) and path.is_file():
            path.unlink()
