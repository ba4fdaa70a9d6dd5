"""A system that makes its identity at first start comes up connected from its manifest
alone: `peerlab up --system examples/idpeer/idpeer.toml --peers 5` (docs/adding-a-system.md)."""

import json
import urllib.request
from pathlib import Path

from peerlab.testing import wait_until

MANIFEST = Path(__file__).parents[3] / "examples" / "idpeer" / "idpeer.toml"


def node_status(node: dict) -> dict:
    url = f"http://{node['bind_address']}:{node['ports']['http']}/status"
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def all_connected(nodes: list[dict]) -> dict[str, dict]:
    """Each node's status, once every node is connected to every other; {} before."""
    seen = {node["name"]: node_status(node) for node in nodes}
    ids = {status["id"] for status in seen.values()}
    done = all(set(s["connected"]) == ids - {s["id"]} for s in seen.values())
    return seen if done else {}


def test_generated_identities_come_up_connected(cli) -> None:
    """TC-701: five peers with keys made by their init step find each other by id."""
    cli("up", "--system", str(MANIFEST), "--peers", "5")
    nodes = json.loads(cli("status", "--json").stdout)["nodes"]
    seen = wait_until(lambda: all_connected(nodes), 60, what="5 idpeer nodes connected")
    assert len({status["id"] for status in seen.values()}) == 5

    # A restart keeps the identity (no init); a node added later makes its own and knows
    # every existing node's id.
    cli("peer", "restart", "B")
    cli("peer", "add", "F")
    nodes = json.loads(cli("status", "--json").stdout)["nodes"]
    after = wait_until(lambda: all_connected(nodes), 60, what="6 idpeer nodes connected")
    assert after["B"]["id"] == seen["B"]["id"]
    assert after["F"]["id"] not in {status["id"] for status in seen.values()}
    assert after["F"]["peers"] == 6
