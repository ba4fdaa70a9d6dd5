"""Full-size discovery scenarios (`make stress`): TC-202 at 100 peers, TC-203 for 10 minutes.

Their short forms run in the default suite (tests/e2e/basic/test_discovery.py).
"""

from __future__ import annotations

import pytest
from dht_scenarios import churn_scenario, random_graph_scenario

from peerlab.env import Environment

pytestmark = pytest.mark.stress


def test_random_friend_graph_100(peerlab_env: Environment, record_property: object) -> None:
    """TC-202: 100 peers in a random friend graph of average degree 5, every friendship made
    by fingerprint through the DHT; every lookup succeeds and the mean lookup time is
    recorded; 10 random publishers' files reach every peer connected to them."""
    stats = random_graph_scenario(peerlab_env, peers=100, degree=5, publishers=10)
    record_property("lookup_mean_ms", stats["lookup_mean_ms"])  # type: ignore[operator]


def test_churn_ten_minutes(peerlab_env: Environment) -> None:
    """TC-203: 20 peers; every 30 s, 2 leave and 2 join, for 10 minutes (20 periods); the
    file published each period reaches at least 95% of the publisher's live friends, and at
    the end no live peer is isolated (each has a live friend and finds others in the DHT)."""
    churn_scenario(peerlab_env, peers=20, periods=20, period=30.0, on_schedule=True)
