"""Rootless: a process without root enters a user namespace that it owns, and runs there.

Rootless container tools do the same. The process unshares a user namespace (mapping its own
uid to root in it), a mount namespace and a network namespace: it is then root over that
network namespace, which stands in for the host, and over every namespace it creates from
there; nothing outside changes. A private `/run` (tmpfs) holds the named namespaces
(`/run/netns`) and whatever programs keep there (wireguard's sockets). The process's
loopback is that namespace's own from then on.

Only a single-threaded process can enter a user namespace, so this happens first thing:
`Environment(backend="netns")`, the pytest plugin and the CLI's supervisor call
`backends.enter` before they start a thread. What does not work without real root: opening
`/dev/net/tun` (root's device, mode 0600), so a node cannot create a TUN or WireGuard
device.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from peerlab.backends import confine
from peerlab.errors import UsageError
from peerlab.reaper import runtime_dir

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
_FULL_MAP = "0 0 4294967295"


def privileged() -> bool:
    """Whether this process can make namespaces, links and firewall tables already (root,
    or root in a user namespace it entered)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            effective = int(line.split()[1], 16)
            return all(effective & (1 << cap) for cap in (CAP_NET_ADMIN, CAP_SYS_ADMIN))
    return False


def inside() -> bool:
    """Whether this process runs in a user namespace other than the machine's."""
    with contextlib.suppress(OSError):
        return Path("/proc/self/uid_map").read_text().split() != _FULL_MAP.split()
    return False


def available() -> str | None:
    """None if this kernel lets an unprivileged user create user namespaces; else why not."""
    with contextlib.suppress(OSError, ValueError):
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return "user namespaces are disabled (/proc/sys/user/max_user_namespaces is 0)"
    with contextlib.suppress(OSError):
        if Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() == "0":
            return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone)"
    return None


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def enter() -> None:
    """Make this process root of a private user, mount and network namespace (see above)."""
    reason = available()
    if reason is not None:
        raise UsageError(
            f"the netns backend needs root or an unprivileged user namespace: {reason}",
            field="backend",
            hint="run as root, or allow user namespaces, or use --backend local",
        )
    if _threads() > 1:
        raise UsageError(
            "the netns backend without root must enter a user namespace before any thread "
            "starts, and this process already runs threads",
            field="backend",
            hint="create the Environment before starting threads, call "
            "peerlab.backends.enter('netns') first thing, or run as root",
        )
    uid, gid = os.getuid(), os.getgid()
    # Files stay where this user keeps them: the runtime dir is named by the real uid.
    os.environ.setdefault("PEERLAB_RUNTIME", str(runtime_dir()))
    confine.unshare(confine.CLONE_NEWUSER | confine.CLONE_NEWNS | confine.CLONE_NEWNET)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    confine.mount(None, "/", None, confine.MS_REC | confine.MS_PRIVATE)
    confine.mount("tmpfs", "/run", "tmpfs", 0, "mode=755")
    Path("/run/netns").mkdir()
    subprocess.run(["ip", "link", "set", "dev", "lo", "up"], check=True)
