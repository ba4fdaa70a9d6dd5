"""What syncpeer peers could leak, and everything they expose: the input of the secrets
check (`peerlab.checkers.secrets`), which the pytest plugin runs at the end of every test
that ran syncpeer (`syncpeer_pytest.pytest_peerlab_final_checks`).

Secrets: each peer's private keys (read from its `identity.json`: the Ed25519 signing key
and the X25519 box key), and the plaintext of every non-public file the harness published
(`SyncpeerAdapter.published`), readable by its recipients and its author only.

Exposures: each peer's stdout and stderr (all of its runs), and, from the peers that are
running, the answers of every endpoint that is not about plaintext by design: health,
identity, readiness, the listing, status, friends, files and their versions, the DHT table,
and the JSON events. Then the history, and every file under the test's artifacts folder
except the data-dir snapshots (`nodes/<peer>/data/`: the peer's own private storage, where
its keys belong). The plaintext endpoint (`/admin/files/{name}/content`) is not scanned: it
exists to show a reader its files.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from peerlab.checkers.secrets import Exposure, ExposureKind, Secret, no_secret_leaks
from peerlab.checkers.verdict import Verdict
from peerlab.systems.syncpeer import SyncpeerAdapter

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.node import Node

ENDPOINTS = (
    "/health",
    "/ready",
    "/identity",
    "/files",
    "/admin/status",
    "/admin/friends",
    "/admin/files",
    "/admin/dht/table",
    "/admin/events?since=0",
)
ANSWER_TIMEOUT = 5.0  # per endpoint; a peer that does not answer is skipped, and counted
# The search costs peers x exposures: past this many peers the end-of-test check says
# "unknown" (recorded, not failed) instead of holding a large network's teardown for
# minutes; call `check_secrets(env, max_peers=None)` to scan one anyway.
MAX_PEERS = 40
PRIVATE_KEYS = {"sign_private": "signing key (Ed25519)", "box_private": "box key (X25519)"}


def check_secrets(env: EnvironmentAPI, max_peers: int | None = MAX_PEERS) -> Verdict:
    """No private key and no plaintext of a file a peer may not read leaves any peer."""
    adapter = SyncpeerAdapter.of(env, "syncpeer")
    peers = [node for node in env.nodes.values() if node.system.name == "syncpeer"]
    if max_peers is not None and len(peers) > max_peers:
        return Verdict(
            "no_secret_leaks",
            "unknown",
            f"{len(peers)} peers: not scanned at the end of the test (more than "
            f"{max_peers}); run check_secrets(env, max_peers=None) to scan them",
            {},
            {"peers": len(peers)},
        )
    exposures = list(_logs(peers))
    answers, unanswered = env.run(_answers(env, peers), ANSWER_TIMEOUT * 3, what="secrets scan")
    exposures += answers
    exposures += list(_records(env, getattr(env, "started_at", None)))
    verdict = no_secret_leaks(exposures, [*_keys(peers), *_plaintexts(adapter)])
    stats = {**verdict.stats, "endpoints_unanswered": unanswered}
    return Verdict(verdict.checker, verdict.valid, verdict.summary, verdict.evidence, stats)


def _keys(peers: list[Node]) -> Iterator[Secret]:
    for node in peers:
        try:
            identity = json.loads((node.data_dir / "identity.json").read_text())
        except (OSError, ValueError):
            continue  # never started: it has no keys to leak
        for field, what in PRIVATE_KEYS.items():
            value = identity.get(field) if isinstance(identity, dict) else None
            if isinstance(value, str):
                yield Secret(f"{node.name}'s {what}", base64.b64decode(value))


def _plaintexts(adapter: SyncpeerAdapter) -> Iterator[Secret]:
    by_fingerprint = adapter.names_by_fingerprint()
    for file in adapter.published:
        if file.recipients is None:
            continue  # public: no secret
        readers = {file.author} | {by_fingerprint.get(f, f) for f in file.recipients}
        yield Secret(
            f"the plaintext of {file.name!r} (by {file.author}, for {', '.join(sorted(readers))})",
            file.content,
            "plaintext",
            frozenset(readers),
        )


def _logs(peers: list[Node]) -> Iterator[Exposure]:
    for node in peers:
        for path, what in ((node.stdout_path, "stdout"), (node.stderr_path, "stderr")):
            if path.exists():
                yield Exposure(f"{node.name} {what}", path.read_bytes(), "log", node.name)


async def _answers(env: EnvironmentAPI, peers: list[Node]) -> tuple[list[Exposure], int]:
    session = env.http_session()
    running = [node for node in peers if node.state == "running"]
    paths: list[tuple[Node, str]] = [(node, path) for node in running for path in ENDPOINTS]
    found = await asyncio.gather(*(_get(session, node, path) for node, path in paths))
    listings = found[ENDPOINTS.index("/files") :: len(ENDPOINTS)]
    for node, listing in zip(running, listings, strict=True):
        paths += [(node, f"/admin/files/{name}/versions") for name in _names(listing)]
    found += await asyncio.gather(*(_get(session, n, p) for n, p in paths[len(found) :]))
    exposures = []
    for (node, path), data in zip(paths, found, strict=True):
        if data is not None:
            # The events are the log, served: what may not be logged may not be served there.
            kind: ExposureKind = "log" if path.startswith("/admin/events") else "answer"
            exposures.append(Exposure(f"{node.name} GET {path}", data, kind, node.name))
    return exposures, sum(1 for data in found if data is None)


async def _get(session: aiohttp.ClientSession, node: Node, path: str) -> bytes | None:
    try:
        async with session.get(
            node.direct_url("http", path), timeout=aiohttp.ClientTimeout(total=ANSWER_TIMEOUT)
        ) as response:
            return await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return None


def _names(listing: bytes | None) -> list[str]:
    try:
        files = json.loads(listing or b"{}").get("files", [])
        return [str(f["name"]) for f in files if isinstance(f, dict) and "name" in f]
    except (ValueError, AttributeError):
        return []


def _records(env: EnvironmentAPI, since: float | None) -> Iterator[Exposure]:
    """The history, and the artifacts written since the network started (an earlier run of
    the same test leaves its own files in the same folder)."""
    history = env.history.path
    if history is not None and history.exists():
        yield Exposure("history.jsonl", history.read_bytes(), "record")
    artifacts: Path | None = getattr(env, "artifacts", None)
    if artifacts is None or not artifacts.is_dir():
        return
    for path in sorted(artifacts.rglob("*")):
        relative = path.relative_to(artifacts)
        if not path.is_file() or _is_data_snapshot(relative):
            continue
        if since is None or path.stat().st_mtime >= since - 1:
            yield Exposure(f"artifacts/{relative}", path.read_bytes(), "record")


def _is_data_snapshot(relative: Path) -> bool:
    parts = relative.parts
    return len(parts) >= 3 and parts[0] == "nodes" and parts[2] == "data"
