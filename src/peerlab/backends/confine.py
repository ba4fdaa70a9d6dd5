"""Placing a process: into a network namespace, with mounts and capabilities of its own.

The launcher calls these in a forked child before it runs a node (so a fork-mode node, which
never execs, is placed too); `userns.py` uses `unshare` and `mount`. Python 3.11 has no
`os.setns`, `os.unshare` or `mount`, and the standard library no capability calls, hence
these few libc calls.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_CAPBSET_DROP = 24
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2
_CAPABILITY_VERSION_3 = 0x20080522
# The capabilities a manifest may grant (peerlab.manifest_schema.Grantable), by number.
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


def mount(
    source: str | None, target: str, kind: str | None, flags: int = 0, data: str = ""
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            kind.encode() if kind else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def own_mounts() -> None:
    """Give this process a mount namespace of its own, as `ip netns exec` does: a /sys that
    shows its network namespace's devices, and an empty /run for what programs keep there
    (wireguard-go's control sockets), gone with the process. Where a mount is refused the
    host's stays: a node runs all the same."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_SLAVE)
    with contextlib.suppress(OSError):
        _check(_libc.umount2(b"/sys", MNT_DETACH), "umount /sys")
        mount("sysfs", "/sys", "sysfs")
    with contextlib.suppress(OSError):
        mount("tmpfs", "/run", "tmpfs", 0, "mode=755")


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
