"""`peerlab bench proxy --backend netns` measures what it says: the proxied path crosses the
fabric (every connection intercepted), the direct one does not."""

from __future__ import annotations

import pytest

from peerlab.bench import proxy_netns
from peerlab.bench.traffic import ROUNDS

from .conftest import need_netns

pytestmark = pytest.mark.netns


def test_bench_proxy_between_namespaces() -> None:
    need_netns()
    result = proxy_netns.run(megabytes=4, pings=10 * ROUNDS, repeats=1)
    assert result["direct_mb_s"] > 0 and result["proxy_mb_s"] > 0
    assert result["proxy_rtt_p50_us"] > 0 and result["direct_rtt_p50_us"] > 0
    # One bulk stream, one warm-up and ROUNDS ping rounds went through tproxy; had the
    # direct path crossed the fabric too, there would be twice as many.
    assert result["intercepted_connections"] == 1 + 1 + ROUNDS
