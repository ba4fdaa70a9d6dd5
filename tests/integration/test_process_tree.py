"""status and inspect count a node's whole process tree: a monitor and the worker it runs."""

from pathlib import Path

import psutil

from peerlab.env import Environment
from peerlab.testing import wait_until

# A monitor (sh) that runs a worker holding ~40 MB and burning CPU, as supervisors do.
MONITOR = """
[system]
name = "monitor"
[launch]
command = ["sh", "-c", '''
{python} -c "b = bytearray(40 * 2**20)
while True: sum(range(10**5))" &
wait''']
[readiness]
type = "none"
"""


def test_status_and_inspect_count_the_worker(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(MONITOR)
    with Environment("tree", fabric=False, workdir=tmp_path / "work") as env:
        node = env.start(path, 1)[0]
        info = wait_until(
            lambda: (i := env.inspect("A"))["processes"] == 2 and i["cpu_seconds"] > 0.2 and i,
            30,
            what="the worker to run",
        )
        monitor = psutil.Process(node.pid)
        own = monitor.memory_info().rss / 2**20
        worker = monitor.children()[0].memory_info().rss / 2**20
        assert worker > 40 > own
        assert info["rss_mb"] >= worker
        row = next(n for n in env.status()["nodes"] if n["name"] == "A")
        assert row["processes"] == 2 and row["rss_mb"] >= worker
