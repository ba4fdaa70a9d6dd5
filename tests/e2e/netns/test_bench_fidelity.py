"""`peerlab bench fidelity --backend netns`: on namespaces every link is told by its source's
own address, and a cut link carries nothing while it is cut."""

from __future__ import annotations

import pytest

from peerlab.bench import fidelity

from .conftest import need_netns

pytestmark = pytest.mark.netns


def test_bench_fidelity_between_namespaces() -> None:
    need_netns()
    result = fidelity.run("syncpeer", "netns", cuts=2, load=0)
    assert result["backend"] == "netns"
    assert result["links_cut"] > 0 and result["operations"] > 0
    assert result["leaked_bytes"] == 0 and result["unattributed"] == 0
    # No owner lookup: every connection and flow came from a node's own address.
    assert set(result["attributed"]) == {"address"} and result["owner_lookups"] == 0
    assert result["verdict"] == "valid"
