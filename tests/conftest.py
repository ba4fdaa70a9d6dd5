"""Shared test setup: the pytester plugin (for testing peerlab's own pytest plugin), the
hypothesis profiles."""

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

pytest_plugins = ["pytester"]

# Property tests (hypothesis): no deadline per example, as the machine is shared and loaded;
# a failure prints the smallest example and how to replay it. `--hypothesis-profile
# thorough` draws ten times as many examples.
settings.register_profile("peerlab", deadline=None, print_blob=True)
settings.register_profile("thorough", settings.get_profile("peerlab"), max_examples=1000)
settings.load_profile("peerlab")

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    # A runner started in the background by a non-interactive shell (`make test &`, nohup)
    # has SIGINT ignored, and an ignored signal stays ignored in every child: the commands
    # the tests interrupt (Ctrl-C on `up`, on a `--follow`) would then never see it. With a
    # handler here, children start with the default action, as under a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def httpd_manifest() -> Path:
    return FIXTURES / "httpd.toml"


Cli = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def cli(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cli]:
    """Runs `peerlab ...` in a subprocess with its own PEERLAB_HOME, on the backend the run
    chose (--peerlab-backend); stops every network after."""
    home = tmp_path / "home"
    env = {
        **os.environ,
        "PEERLAB_HOME": str(home),
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PEERLAB_BACKEND": request.config.getoption("--peerlab-backend"),
    }

    def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "peerlab", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"peerlab {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    yield run
    # Cleanup only: the test is over, so its results folder would be rendered for nobody
    # (after a fuzzing run, its history is thousands of calls). The timeout is a backstop
    # for a runner busy with other work, not a bound on how long stopping may take.
    run("down", "--all", "--no-results", check=False, timeout=600)
