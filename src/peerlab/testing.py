"""What scenarios import: waits, assertions, and requirements on installed programs."""

from __future__ import annotations

import os
import shutil

import pytest

from peerlab.systems.syncpeer import assert_file_synced, assert_friends
from peerlab.wait import wait_until

__all__ = ["assert_file_synced", "assert_friends", "in_ci", "require_program", "wait_until"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_program(program: str, package: str) -> str:
    """The path of `program`; skip the test locally when it is missing, fail under CI."""
    path = shutil.which(program)
    if path:
        return path
    message = f"{program} is not installed (Debian package {package}: apt-get install {package})"
    if in_ci():
        pytest.fail(f"{message}; CI installs it in .ci/run, so this is a broken CI setup")
    pytest.skip(message)
