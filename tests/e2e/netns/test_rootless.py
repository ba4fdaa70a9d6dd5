"""Without root: an unprivileged user runs the netns backend in a user namespace of its own.

The run is made by dropping from root to `nobody` (runuser), so it is skipped where this
test does not run as root, where the kernel does not let unprivileged users create user
namespaces, or where `nobody` cannot run a Python that imports peerlab; the reason is
given each time."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerlab.backends import userns

pytestmark = pytest.mark.netns

ROOT = Path(__file__).parents[3]
USER = "nobody"
PROBE = """
from pathlib import Path
from peerlab.env import Environment
with Environment("rootless", backend="netns") as env:
    node = env.start("syncpeer", 2)[0]
    uid_map = Path("/proc/self/uid_map").read_text().split()
    print(env.backend.describe()["rootless"], node.address, uid_map)
"""


def _as_user(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", USER, "--", "env", *[f"{k}={v}" for k, v in env.items()], *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def unprivileged() -> Iterator[tuple[list[str], dict[str, str], Path]]:
    """(python argv, environment, a working dir) for runs as `nobody`; skips when none."""
    if os.geteuid() != 0:
        pytest.skip("the rootless run drops from root to nobody; this run is not root")
    reason = userns.available()
    if reason is not None:
        pytest.skip(reason)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"there is no user {USER!r} to run as")
    work = Path(tempfile.mkdtemp(prefix="peerlab-rootless-"))
    work.chmod(0o777)
    packages = sysconfig.get_paths()["purelib"]
    env = {
        "HOME": str(work),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": f"{ROOT / 'src'}:{packages}",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [
        sys.executable,
        shutil.which(f"python{version}") or "",
        f"/usr/bin/python{version}",
    ]
    for python in candidates:
        if (
            python
            and _as_user([python, "-c", "import peerlab, aiohttp"], work, env, 60).returncode == 0
        ):
            break
    else:
        shutil.rmtree(work, ignore_errors=True)
        pytest.skip(
            f"{USER} cannot run a Python {version} that imports peerlab (and root's is private)"
        )
    try:
        yield [python], env, work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_an_unprivileged_user_runs_nodes_in_namespaces(
    unprivileged: tuple[list[str], dict[str, str], Path],
) -> None:
    python, env, work = unprivileged
    probe = _as_user([*python, "-c", PROBE], work, env, 120)
    assert probe.returncode == 0, probe.stderr[-3000:]
    rootless, address, uid_map = probe.stdout.split(maxsplit=2)
    assert rootless == "True" and address.startswith("198.1"), probe.stdout
    assert f"'0', '{pwd.getpwnam(USER).pw_uid}', '1'" in uid_map, uid_map  # root only inside


def test_an_unprivileged_user_runs_the_scenarios(
    unprivileged: tuple[list[str], dict[str, str], Path],
) -> None:
    """Friend sync and partitions, as `pytest --peerlab-backend netns` run by nobody."""
    python, env, work = unprivileged
    scenarios = [
        str(ROOT / "tests/e2e/basic/test_friend_sync.py"),
        str(ROOT / "tests/e2e/netns/test_addresses_and_faults.py"),
    ]
    run = _as_user(
        [*python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--rootdir", str(ROOT),
         "-c", str(ROOT / "pyproject.toml"), "--peerlab-backend", "netns", *scenarios],
        work,
        env,
        600,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-2000:]
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in summary and "skipped" not in summary and "failed" not in summary, summary
