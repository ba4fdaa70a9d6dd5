"""The hooks peerlab's pytest plugin offers other plugins (a system's pytest module, a
conftest): checks that run at the end of every test that used `peerlab_env`.

    @pytest.hookimpl
    def pytest_peerlab_final_checks(env, skip):
        return [] if "my_check" in skip else [my_check(env)]

Each returns a list of `Verdict`s, computed while the test's nodes still run. The plugin
records every verdict in the history and fails the test (at teardown, naming the checker
and its summary) on an invalid one; "unknown" is recorded, not failed. A test that must
not be judged by a check (one that provokes the very fault the check finds) names it in
`@pytest.mark.peerlab_skip_checks("no_secret_leaks", ...)`, which reaches the hook as `skip`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.checkers.verdict import Verdict


@pytest.hookspec
def pytest_peerlab_final_checks(env: EnvironmentAPI, skip: frozenset[str]) -> list[Verdict]:
    """Verdicts on the test's network, before it is torn down; none named in `skip`."""
    raise NotImplementedError
