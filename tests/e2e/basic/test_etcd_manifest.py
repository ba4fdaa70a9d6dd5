"""A real third-party system from a manifest alone: a 3-node etcd cluster (Debian etcd-server)."""

import base64
import json
import urllib.request

from peerlab.env import Environment
from peerlab.testing import require_program, wait_until


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        result: dict = json.loads(response.read())
        return result


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_etcd_cluster_write_on_one_read_on_another(peerlab_env: Environment) -> None:
    """A 3-node etcd cluster started from its manifest: write through A, read through C."""
    require_program("etcd", "etcd-server")
    nodes = peerlab_env.start("etcd", 3)
    a, c = nodes[0], nodes[2]
    _post(
        a.url("client", "/v3/kv/put"),
        {"key": _b64("peerlab/greeting"), "value": _b64("hello from A")},
    )

    def read_on_c() -> str | None:
        result = _post(c.url("client", "/v3/kv/range"), {"key": _b64("peerlab/greeting")})
        kvs = result.get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    assert wait_until(read_on_c, 10, what="the key to be readable on C") == "hello from A"
    members = _post(c.url("client", "/v3/cluster/member/list"), {})["members"]
    assert sorted(m["name"] for m in members) == ["A", "B", "C"]
