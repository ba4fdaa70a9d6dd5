"""When each directed link was tried: a TCP connection arriving at a node's proxy, a
datagram arriving for a node. Kept per link (src, dst, protocol), the newest `limit` of
each, on the history's clock (seconds since the history began), so they line up with the
faults and node events the history records. They are recorded whether the link then
carries the attempt, cuts it, or finds its node down: what a client does toward a peer it
cannot reach is the point (the backoff checker, `peerlab.checkers.backoff`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

AttemptKey = tuple[str | None, str | None, str]  # src, dst (None: not a node), protocol
LIMIT = 20_000  # attempts kept per link: hours of a client retrying several times a second


class Attempts:
    def __init__(self, clock: Callable[[], float] = time.monotonic, limit: int = LIMIT) -> None:
        self.clock = clock
        self.limit = limit
        self._times: dict[AttemptKey, deque[float]] = {}

    def record(self, src: str | None, dst: str | None, protocol: str) -> None:
        key = (src, dst, protocol)
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque(maxlen=self.limit)
        times.append(self.clock())

    def times(
        self, src: str | None = None, dst: str | None = None, protocol: str | None = None
    ) -> dict[AttemptKey, list[float]]:
        """The attempts on every link that matches (None matches any), oldest first."""
        return {
            key: list(times)
            for key, times in self._times.items()
            if (src is None or key[0] == src)
            and (dst is None or key[1] == dst)
            and (protocol is None or key[2] == protocol)
        }
