"""Placing a process: into a network namespace, with only the capabilities it was granted.

The launcher calls these in a forked child before it runs a node (so a fork-mode node, which
never execs, is placed too); `userns.py` uses `unshare`. Python 3.11 has no `os.setns` or
`os.unshare`, and the standard library no capability calls, hence these few libc calls.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_CAPBSET_DROP = 24
_CAPABILITY_VERSION_3 = 0x20080522
# The capabilities a manifest may grant (peerlab.manifest.GRANTABLE), by number.
CAPABILITIES = {"NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def enter_netns(path: str) -> None:
    """Move this (single-threaded) process into the network namespace pinned at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(fd)


def keep_only(names: list[str] | tuple[str, ...]) -> None:
    """Drop every capability but `names` for good: from the bounding set (so a program this
    process execs, even as root, gets no more) and from the current sets."""
    keep = {CAPABILITIES[name] for name in names}
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        if cap not in keep:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    mask = sum(1 << cap for cap in keep)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(mask, mask, mask), _CapData(0, 0, 0))
    _check(_libc.capset(ctypes.byref(header), data), "capset")
