"""`python core_digest.py SEED`: run syncpeer's cores on a virtual clock with one seed (five
sync engines editing and syncing, twenty DHT nodes joining and looking each other up) and
print the SHA-256 of everything they did. Two runs with one seed must print the same line,
whatever PYTHONHASHSEED is (test_core_determinism.py)."""

from __future__ import annotations

import hashlib
import sys
from random import Random

from dht_sim import SimNetwork
from sync_sim import scenario

from syncpeer.core.dht.protocol import DhtConfig


def dht_digest(seed: int) -> str:
    net = SimNetwork(seed)
    config = DhtConfig(rpc_timeout=0.5)
    bootstrap = net.add(config)
    nodes = [bootstrap] + [net.add(config, [bootstrap.address]) for _ in range(19)]
    net.run_until(lambda: all(node.protocol.joined for node in nodes), 30)
    rng = Random(seed)
    digest = hashlib.sha256()
    for _ in range(10):
        looker, target = rng.sample(nodes, 2)
        digest.update(repr(net.lookup(looker, target.id).to_json()).encode())
    net.run_for(60.0)
    for node in nodes:
        digest.update(repr((node.name, sorted(node.protocol.counters.items()))).encode())
    return digest.hexdigest()


if __name__ == "__main__":
    seed = int(sys.argv[1])
    print(scenario(seed), dht_digest(seed))
