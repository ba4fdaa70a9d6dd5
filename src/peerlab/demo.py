"""The demo: five syncpeer peers, a friend graph, one encrypted file, a summary.

It is the main job on the embedded default (local processes, syncpeer, built-in fabric),
and the shortest honest proof that the whole stack works.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter, SyncpeerError, assert_file_synced

GRAPH = [("A", "B"), ("A", "C"), ("A", "D"), ("B", "E"), ("C", "E")]


def run_demo(
    results: Path = Path("peerlab-results/demo"),
    seed: int | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo; returns the result written to `results/result.json`."""
    began = time.monotonic()
    steps: list[dict[str, Any]] = []

    def step(what: str) -> None:
        steps.append({"at_s": round(time.monotonic() - began, 3), "step": what})
        say(f"[{steps[-1]['at_s']:6.2f}s] {what}")

    content = b"Hello from A. Only B and C can read this.\n" + os.urandom(16).hex().encode()
    result: dict[str, Any] = {"ok": False}
    with Environment("demo", seed=seed, artifacts=results) as env:
        result["seed"] = env.seed
        nodes = env.start("syncpeer", peers=5)
        step(f"5 syncpeer peers ready: {', '.join(f'{n.name}@{n.address}' for n in nodes)}")
        adapter = SyncpeerAdapter.of(env, "syncpeer")
        adapter.befriend_graph(GRAPH)
        step("friends: " + ", ".join(f"{a}-{b}" for a, b in GRAPH))
        recipients = adapter.fingerprints(["B", "C"])
        env.client("A").publish("hello.txt", content, recipients)
        step("A published hello.txt encrypted for B and C")
        synced_at = time.monotonic()
        assert_file_synced(env, "hello.txt", ["B", "C"], content=content, timeout=20)
        sync_seconds = time.monotonic() - synced_at
        for name in ("B", "C"):
            if env.client(name).content("hello.txt") != content:
                raise AssertionError(f"{name} decrypted different content")
        step(f"B and C have hello.txt and decrypt it ({sync_seconds:.2f}s after publishing)")
        envelope = env.client("A").envelope("hello.txt")
        try:
            env.client("E").open_envelope(envelope)
            raise AssertionError("E, not a friend of A, decrypted hello.txt")
        except SyncpeerError as exc:
            refusal = str(exc)
        if content in envelope:
            raise AssertionError("the envelope A serves contains the plaintext")
        step(
            f"E (not A's friend) fetched the ciphertext ({len(envelope)} bytes) and cannot "
            f"decrypt it: {refusal.split(': ', 2)[-1]}"
        )
        statuses = {n.name: env.client(n.name).status() for n in nodes}
        result.update(
            {
                "ok": True,
                "nodes": [
                    n.describe() | {"fingerprint": env.client(n.name).fingerprint} for n in nodes
                ],
                "friends": [list(edge) for edge in GRAPH],
                "file": {
                    "name": "hello.txt",
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "recipients": ["B", "C"],
                    "sync_seconds": round(sync_seconds, 3),
                },
                "non_recipient": {"peer": "E", "error": refusal},
                "node_status": statuses,
                "steps": steps,
                "seconds": round(time.monotonic() - began, 3),
            }
        )
    results.mkdir(parents=True, exist_ok=True)
    (results / "result.json").write_text(json.dumps(result, indent=2, default=str))
    step(f"done in {result['seconds']:.2f}s; nothing left running; wrote {results / 'result.json'}")
    return result
