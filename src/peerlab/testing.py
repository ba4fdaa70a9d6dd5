"""What scenarios import: waits, and requirements on installed programs. A system's own
assertions live with its adapter (syncpeer's: `peerlab.systems.syncpeer`)."""

from __future__ import annotations

import os
import shutil

import pytest

from peerlab.errors import UsageError
from peerlab.nemesis.clock import libfaketime
from peerlab.wait import wait_until

__all__ = ["in_ci", "require_libfaketime", "require_program", "wait_until"]


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


def require_libfaketime() -> None:
    """Skip a clock-skew scenario where libfaketime is missing; under CI, fail instead."""
    try:
        libfaketime()
    except UsageError as exc:
        message = f"{exc.message} ({exc.hint})"
        if in_ci():
            pytest.fail(f"{message}; CI installs it in .ci/run, so this is a broken CI setup")
        pytest.skip(message)
