"""`peerlab status --watch`: a live dashboard of nodes, faulty links and recent events.

The view is a pure function of what the supervisor reports (`Dashboard.render`), so it is
tested without a terminal; `watch` is the loop that polls the supervisor and redraws.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from peerlab.observe.events import TimelineEvent, describe_fault
from peerlab.observe.render import event_text, node_colour

_STATE_STYLE = {"running": "green", "paused": "yellow", "starting": "cyan"}


class Dashboard:
    """Keeps what the view needs between refreshes: CPU samples and the event feed."""

    def __init__(self, feed_size: int = 12) -> None:
        self.feed: deque[TimelineEvent] = deque(maxlen=feed_size)
        # node -> (cpu seconds, wall time, pid) of the previous refresh, for CPU %
        self._cpu: dict[str, tuple[float, float, int | None]] = {}
        self.error: str | None = None

    def add_events(self, events: list[TimelineEvent]) -> None:
        self.feed.extend(events)

    def cpu_percent(self, node: dict[str, Any], now: float) -> float | None:
        """CPU use since the last refresh (100% is one core); None on the first sample."""
        seconds = node.get("cpu_seconds")
        if seconds is None:
            self._cpu.pop(node["name"], None)
            return None
        previous = self._cpu.get(node["name"])
        self._cpu[node["name"]] = (float(seconds), now, node.get("pid"))
        if previous is None or previous[2] != node.get("pid") or now <= previous[1]:
            return None
        return max(0.0, 100 * (float(seconds) - previous[0]) / (now - previous[1]))

    def render(self, status: dict[str, Any], now: float | None = None) -> RenderableType:
        now = time.time() if now is None else now
        nodes = status.get("nodes", [])
        running = sum(1 for n in nodes if n["state"] == "running")
        net = status.get("net") or {}
        faults = net.get("faults") or []
        header = Text.assemble(
            ("environment ", "dim"),
            (str(status.get("name")), "bold"),
            ("  seed ", "dim"),
            str(status.get("seed")),
            ("  up ", "dim"),
            f"{status.get('uptime_s', 0):.0f}s",
            ("  peers ", "dim"),
            (f"{running}/{len(nodes)} running", "green" if running == len(nodes) else "yellow"),
            ("  faults ", "dim"),
            (str(len(faults)), "bold red" if faults else "green"),
        )
        if self.error:
            header.append(f"  ({self.error})", style="bold red")
        parts: list[RenderableType] = [header, self._nodes(nodes, now)]
        parts.append(
            Panel(
                self._links(net),
                title="links with faults",
                title_align="left",
                border_style="red" if faults else "dim",
            )
        )
        feed = (
            Group(*(_one_line(event_text(event)) for event in self.feed))
            if self.feed
            else Text("no events yet", style="dim")
        )
        parts.append(Panel(feed, title="recent events", title_align="left", border_style="dim"))
        return Group(*parts)

    def _nodes(self, nodes: list[dict[str, Any]], now: float) -> Table:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("peer", "state", "address", "CPU %", "RSS MB", "uptime", "restarts"):
            table.add_column(
                column,
                justify="right" if column in ("CPU %", "RSS MB", "uptime", "restarts") else "left",
            )
        for node in nodes:
            cpu = self.cpu_percent(node, now)
            state = node["state"]
            ports = node.get("ports") or {}
            port = next(iter(ports.values()), None)
            table.add_row(
                Text(node["name"], style=node_colour(node["name"])),
                Text(state, style=_STATE_STYLE.get(state, "red")),
                f"{node['address']}:{port}" if port else node["address"],
                "-" if cpu is None else f"{cpu:.1f}",
                str(node.get("rss_mb", "-")),
                _duration(node.get("uptime_s")) if state in ("running", "paused") else "-",
                str(node.get("restarts", 0)),
            )
        return table

    @staticmethod
    def _links(net: dict[str, Any]) -> RenderableType:
        faults = net.get("faults") or []
        if not faults:
            return Text("none: every link is healthy", style="green")
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("link")
        table.add_column("fault")
        for fault in faults:
            if fault.get("kind") in ("partition", "rolling"):
                table.add_row("partition", Text(describe_fault(fault), style="bold red"))
            else:
                link = f"{fault.get('src') or '*'} -> {fault.get('dst') or '*'}"
                table.add_row(link, Text(describe_fault(fault), style="red"))
        cut = net.get("cut") or []
        if cut:
            pairs = sorted({tuple(sorted(pair)) for pair in cut})
            shown = ", ".join(f"{a}-{b}" for a, b in pairs[:12])
            more = f" (+{len(pairs) - 12} more)" if len(pairs) > 12 else ""
            table.add_row("cut", Text(f"{len(pairs)} node pairs: {shown}{more}", style="red"))
        return table


def _one_line(text: Text) -> Text:
    """A feed line is cut at the panel's edge: the feed must not scroll the table away."""
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
    )


def watch(
    status: Callable[[], dict[str, Any]],
    events: Callable[[dict[str, Any] | None], dict[str, Any]],
    interval: float = 1.0,
    feed_size: int = 12,
    console: Console | None = None,
) -> None:
    """Redraw until Ctrl-C: `status()` is the env's status, `events(cursor)` its timeline.

    On a terminal the view is redrawn in place; into a pipe or a file, each refresh is
    printed after the previous one (a log of the dashboard).
    """
    from peerlab.errors import PeerlabError

    console = console or Console()
    dashboard = Dashboard(feed_size)
    answer = events(None)
    cursor = answer["cursor"]
    dashboard.add_events([TimelineEvent.from_json(e) for e in answer["events"]])
    current = status()
    live = (
        Live(dashboard.render(current), auto_refresh=False, console=console)
        if console.is_terminal
        else None
    )

    def show() -> None:
        view = dashboard.render(current)
        if live is not None:
            live.update(view, refresh=True)
        else:
            console.rule(time.strftime("%H:%M:%S"))
            console.print(view)

    try:
        if live is not None:
            live.start()
        else:
            show()
        while True:
            time.sleep(interval)  # the refresh period, not a wait for a condition
            try:
                current = status()
                answer = events(cursor)
                cursor = answer["cursor"]
                dashboard.add_events([TimelineEvent.from_json(e) for e in answer["events"]])
                dashboard.error = None
            except PeerlabError as exc:
                dashboard.error = exc.message
                if "not running" in exc.message:
                    show()
                    raise
            show()
    except KeyboardInterrupt:
        return
    finally:
        if live is not None:
            live.stop()
