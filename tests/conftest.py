"""Shared test setup: the pytester plugin (for testing peerlab's own pytest plugin)."""

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def httpd_manifest() -> Path:
    return FIXTURES / "httpd.toml"
