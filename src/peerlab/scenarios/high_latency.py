"""high-latency: how much slower a file spreads when every link has latency.

A file is published and timed until every peer holds it, first on the network as it is,
then with latency (and jitter) on every link; the latency is removed at the end.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from peerlab.scenarios.base import Narrator, Scenario
from peerlab.scenarios.syncpeer_steps import (
    adapter,
    befriend_all,
    content_for,
    reachable,
    running_peers,
    wait_for_file,
)

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI


def run(env: EnvironmentAPI, say: Narrator, params: dict[str, Any]) -> None:
    peers = running_peers(env)
    latency = float(params.get("latency_ms", 250))
    jitter = float(params.get("jitter_ms", 50))
    timeout = float(params.get("timeout", 60))
    befriend_all(env, peers, say)
    publisher = peers[0]
    others = reachable(env, publisher, peers[1:], say)
    client = adapter(env).client(env.node(publisher))
    stamp = int(time.time())
    timings = {}
    for label in ("baseline", "latency"):
        if label == "latency":
            say.step(f"adding {latency:g}ms ± {jitter:g}ms of latency to every link")
            fault = env.net.latency(latency, jitter)
        name = f"high-latency-{stamp}-{label}.txt"
        content = content_for(env, name, 4096)
        say.step(f"{publisher} publishes {name}; timing until {len(others)} peers hold it")
        client.publish(name, content, "public")
        have, took = wait_for_file(env, say, others, name, content, timeout)
        timings[label] = took
        say.check(
            f"spreads-{label}",
            len(have) == len(others),
            f"{label}: {name} reached {len(have)} of {len(others)} peers in {took:.2f}s",
            {"missing": sorted(set(others) - set(have))},
            seconds=round(took, 3),
        )
        if label == "latency":
            say.step("removing the latency")
            fault.remove()
    ratio = timings["latency"] / timings["baseline"] if timings["baseline"] else float("inf")
    say.step(
        f"with latency the file took {timings['latency']:.2f}s instead of "
        f"{timings['baseline']:.2f}s ({ratio:.1f}x)"
    )


SCENARIO = Scenario(
    name="high-latency",
    summary="Time a file spreading to every peer, without and with latency on every link.",
    run=run,
    min_peers=2,
    needs_fabric=True,
    needs_system="syncpeer",
    params={
        "latency_ms": "latency per link (default 250)",
        "jitter_ms": "jitter per link (default 50)",
        "timeout": "seconds to wait for the file to spread (default 60)",
    },
)
