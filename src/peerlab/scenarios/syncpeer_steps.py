"""Steps the syncpeer scenarios share: befriend peers, publish, wait for a file to spread.

Every wait polls with a deadline and reports its progress through the narrator.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING

from peerlab.errors import PeerlabError
from peerlab.scenarios.base import Narrator
from peerlab.seed import derive_rng
from peerlab.systems.syncpeer import SyncpeerAdapter

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI

POLL = 0.2  # seconds between looks at the peers while waiting


def running_peers(env: EnvironmentAPI) -> list[str]:
    return [
        n.name
        for n in sorted(env.nodes.values(), key=lambda n: n.index)
        if n.state == "running" and n.system.name == "syncpeer"
    ]


def adapter(env: EnvironmentAPI) -> SyncpeerAdapter:
    found = SyncpeerAdapter.of(env, "syncpeer")
    return found


def befriend_all(env: EnvironmentAPI, peers: list[str], say: Narrator) -> None:
    """Make every two of `peers` friends (only the friendships missing or out of date)."""
    sync = adapter(env)
    fingerprints = dict(zip(peers, sync.fingerprints(peers), strict=True))
    # A friend is current when it is known at the address the peer has now (data dirs
    # outlive networks, and a new network may give the same peer another address).
    current = {fingerprints[n]: f"{env.node(n).address}:{env.node(n).ports['http']}" for n in peers}
    known: dict[str, set[str]] = {}
    for name in peers:
        known[name] = set()
        for friend in sync.client(env.node(name)).friends():
            fingerprint = friend.get("card", friend).get("fingerprint", friend.get("fingerprint"))
            if friend.get("address") == current.get(fingerprint):
                known[name].add(fingerprint)
    missing = [
        (a, b)
        for i, a in enumerate(peers)
        for b in peers[i + 1 :]
        if fingerprints[b] not in known[a] or fingerprints[a] not in known[b]
    ]
    if not missing:
        say.step(f"all {len(peers)} peers are already friends with each other")
        return
    say.step(f"befriending {len(missing)} pairs so every peer is friends with every other")
    for done, (a, b) in enumerate(missing, 1):
        sync.befriend(a, b)
        say.progress("befriending", done, len(missing))


def reachable(env: EnvironmentAPI, origin: str, peers: list[str], say: Narrator) -> list[str]:
    """The peers that an active partition leaves connected with `origin` (both ways)."""
    if not env.net.enabled:
        return list(peers)
    cut = {tuple(pair) for pair in env.net.show().get("cut") or []}
    kept = [p for p in peers if (origin, p) not in cut and (p, origin) not in cut]
    if len(kept) < len(peers):
        say.step(
            f"a partition is active: {', '.join(sorted(set(peers) - set(kept)))} cannot "
            f"reach {origin}, so only {', '.join(kept) or 'no one'} can get its files"
        )
    return kept


def content_for(env: EnvironmentAPI, label: str, size: int) -> bytes:
    """Seeded bytes: the same run publishes the same content."""
    return derive_rng(env.seed, "scenario", label).randbytes(size)


def holders(env: EnvironmentAPI, peers: list[str], name: str, sha256: str) -> list[str]:
    """Which of `peers` hold `name` with this content and can decrypt it."""
    sync = adapter(env)
    have = []
    for peer in peers:
        node = env.node(peer)
        if node.state != "running":
            continue
        try:
            state = sync.client(node).file(name)
        except PeerlabError:
            continue
        if state and state.get("decryptable") and state.get("sha256_plain") == sha256:
            have.append(peer)
    return have


def wait_for_file(
    env: EnvironmentAPI, say: Narrator, peers: list[str], name: str, content: bytes, timeout: float
) -> tuple[list[str], float]:
    """Wait until every one of `peers` holds `name`; returns (who has it, seconds taken)."""
    sha256 = hashlib.sha256(content).hexdigest()
    began = time.monotonic()
    deadline = began + timeout
    have: list[str] = []
    while True:
        have = holders(env, peers, name, sha256)
        say.progress(f"{name} reaching {len(peers)} peers", len(have), len(peers))
        if len(have) == len(peers) or time.monotonic() >= deadline:
            return have, time.monotonic() - began
        time.sleep(POLL)


def never_reaches(
    env: EnvironmentAPI, say: Narrator, peers: list[str], name: str, content: bytes, window: float
) -> list[str]:
    """Watch `peers` for `window` seconds; returns those that got `name` (none is good)."""
    sha256 = hashlib.sha256(content).hexdigest()
    deadline = time.monotonic() + window
    while True:
        leaked = holders(env, peers, name, sha256)
        if leaked or time.monotonic() >= deadline:
            return leaked
        time.sleep(POLL)
