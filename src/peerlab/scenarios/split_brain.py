"""split-brain: cut the network in two, publish on both sides, heal, check it converges.

While the halves are apart each side must sync within itself and nothing may cross the cut;
after the heal every peer must end with both files.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from peerlab.scenarios.base import Narrator, Scenario
from peerlab.scenarios.syncpeer_steps import (
    adapter,
    befriend_all,
    content_for,
    never_reaches,
    running_peers,
    wait_for_file,
)

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI


def run(env: EnvironmentAPI, say: Narrator, params: dict[str, Any]) -> None:
    peers = running_peers(env)
    half = len(peers) // 2
    left, right = peers[:half], peers[half:]
    timeout = float(params.get("timeout", 30))
    befriend_all(env, peers, say)
    previous = next((f for f in env.net.export() if f.get("name") == "partition"), None)
    if previous is not None:
        say.step("an active partition is replaced for the scenario and put back at the end")
    stamp = int(time.time())
    files = {
        side[0]: (
            f"split-brain-{stamp}-{side[0]}.txt",
            content_for(env, f"split-brain-{stamp}-{side[0]}", 2048),
        )
        for side in (left, right)
    }
    say.step(f"cutting the network in two: {','.join(left)} | {','.join(right)}")
    cut = env.net.partition([left, right])
    try:
        for side in (left, right):
            name, content = files[side[0]]
            say.step(f"{side[0]} publishes {name} (public) on its side of the cut")
            adapter(env).client(env.node(side[0])).publish(name, content, "public")
        for side, other in ((left, right), (right, left)):
            name, content = files[side[0]]
            have, took = wait_for_file(env, say, side, name, content, timeout)
            say.check(
                f"syncs-within-{side[0]}-side",
                len(have) == len(side),
                f"{name} reached {len(have)} of {len(side)} peers on its side in {took:.1f}s",
                {"missing": sorted(set(side) - set(have))},
                seconds=round(took, 3),
            )
            say.step(f"watching {','.join(other)} for 3s: {name} must not cross the cut")
            leaked = never_reaches(env, say, other, name, content, 3.0)
            say.check(
                f"no-crossing-from-{side[0]}-side",
                not leaked,
                f"{name} did not cross the partition"
                if not leaked
                else f"{name} crossed the partition to {', '.join(leaked)}",
                {"leaked_to": leaked},
            )
    finally:
        say.step("healing the partition")
        cut.remove()
    for name, content in files.values():
        have, took = wait_for_file(env, say, peers, name, content, timeout)
        say.check(
            f"converges-{name}",
            len(have) == len(peers),
            f"after the heal {name} reached {len(have)} of {len(peers)} peers in {took:.1f}s",
            {"missing": sorted(set(peers) - set(have))},
            seconds=round(took, 3),
        )
    if previous is not None:
        say.step("putting back the partition that was active before")
        env.net.apply(previous)


SCENARIO = Scenario(
    name="split-brain",
    summary="Cut the network in two, publish on both sides, heal, check every peer converges.",
    run=run,
    min_peers=4,
    needs_fabric=True,
    needs_system="syncpeer",
    params={"timeout": "seconds to wait for each file to spread (default 30)"},
)
