"""crash-during-sync: kill a peer in the middle of a download, restart it, check the file.

The link to the downloader is slowed so the transfer takes seconds; the downloader is
killed (SIGKILL) once it holds part of the file, restarted, and must end with the file
intact. Whether it resumed from the bytes it held or started again is reported.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from peerlab.errors import PeerlabError
from peerlab.scenarios.base import Narrator, Scenario
from peerlab.scenarios.syncpeer_steps import (
    POLL,
    adapter,
    befriend_all,
    content_for,
    reachable,
    running_peers,
    wait_for_file,
)

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.node import Node


def _partial_bytes(node: Node) -> int:
    """Bytes of downloads in progress in the node's data dir (syncpeer keeps them there)."""
    partial = node.data_dir / "files" / ".partial"
    return (
        sum(p.stat().st_size for p in partial.glob("*") if p.is_file()) if partial.is_dir() else 0
    )


def run(env: EnvironmentAPI, say: Narrator, params: dict[str, Any]) -> None:
    peers = running_peers(env)
    source = peers[0]
    targets = reachable(env, source, peers[1:], say)
    if not targets:
        raise PeerlabError(
            f"every peer is cut off from {source}",
            hint="heal the partition (`peerlab net heal`) and run it again",
        )
    target = targets[0]
    size = int(params.get("size", 4_000_000))
    rate = float(params.get("rate_kb_s", 400))
    timeout = float(params.get("timeout", 60))
    befriend_all(env, [source, target], say)
    name = f"crash-during-sync-{int(time.time())}.bin"
    content = content_for(env, name, size)
    say.step(
        f"slowing data from {source} to {target} to {rate:g} KB/s so the download "
        f"takes about {size / 1000 / rate:.0f}s"
    )
    limit = env.net.limit(rate, src=source, dst=target)
    sync = adapter(env)
    try:
        fingerprint = sync.fingerprints([target])[0]
        say.step(f"{source} publishes {name} ({size / 1e6:.1f} MB) for {target}")
        sync.client(env.node(source)).publish(name, content, [fingerprint])
        node = env.node(target)
        deadline = time.monotonic() + timeout
        held = 0
        while time.monotonic() < deadline:
            held = _partial_bytes(node)
            say.progress(f"{target} downloading {name}", held, size)
            if held >= size * 0.2:
                break
            time.sleep(POLL)
        say.check(
            "download-started",
            held > 0,
            f"{target} held {held:,} of {size:,} bytes before the crash",
            held_bytes=held,
        )
        say.step(f"killing {target} (SIGKILL) in the middle of the download")
        env.kill(target)
        restarted_at = time.time()
        say.step(f"restarting {target} with its data dir kept")
        env.restart(target)
    finally:
        say.step(f"lifting the bandwidth limit from {source} to {target}")
        limit.remove()
    have, took = wait_for_file(env, say, [target], name, content, timeout)
    say.check(
        "intact-after-crash",
        have == [target],
        f"{target} holds {name} intact (sha256 {hashlib.sha256(content).hexdigest()[:12]}…)"
        f" {took:.1f}s after its restart"
        if have
        else f"{target} does not hold {name} intact {took:.1f}s after its restart",
        {"peer": target, "file": name},
        seconds=round(took, 3),
    )
    from peerlab.observe import EventFilter, read_timeline

    resumed = read_timeline(
        env.workdir,
        EventFilter(nodes=(target,), since=restarted_at, events=("file_download_resumed",)),
    )
    say.step(
        f"{target} resumed from the {resumed[0].fields.get('offset', 0):,} bytes it held"
        if resumed
        else f"{target} started the download again from the beginning"
    )


SCENARIO = Scenario(
    name="crash-during-sync",
    summary="Kill a peer mid-download (slowed link), restart it, check the file arrives intact.",
    run=run,
    min_peers=2,
    needs_fabric=True,
    needs_system="syncpeer",
    params={
        "size": "bytes to publish (default 4000000)",
        "rate_kb_s": "bandwidth of the slowed link in KB/s (default 400)",
        "timeout": "seconds for each wait (default 60)",
    },
)
