"""`peerlab logs`: the merged timeline of a network, live or after (`follow` and the
timeline source serve syncpeer's `peerlab file watch` too).

Both read the timeline through the supervisor (`env.timeline`), which filters it where the
files are and hands back a cursor for the next call; with `--run DIR` they read a results
folder instead, so the same commands work on CI artifacts after the network is gone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from peerlab.cli.common import console, remote_env, split_names
from peerlab.errors import UsageError
from peerlab.observe.events import TimelineEvent
from peerlab.observe.filters import EventFilter, parse_since
from peerlab.observe.render import event_text
from peerlab.observe.timeline import fetch

FOLLOW_INTERVAL = 0.25  # seconds between looks for new lines while following

Fetch = Callable[[dict[str, Any] | None, int | None], dict[str, Any]]


def timeline_source(
    ctx: typer.Context, run: Path | None, event_filter: EventFilter, all_runs: bool = False
) -> Fetch:
    """Where events come from: a results folder, or the running environment."""
    if run is not None:
        if not (run / "history.jsonl").exists() and not (run / "nodes").is_dir():
            raise UsageError(
                f"{run} is not a results folder or work dir",
                field="--run",
                hint="name a folder under peerlab-results/",
            )
        return lambda cursor, tail: fetch(run, cursor, event_filter, tail)
    remote = remote_env(ctx)
    return lambda cursor, tail: remote.call(
        "observe.timeline",
        cursor=cursor,
        filter=event_filter.to_json(),
        tail=tail,
        all_runs=all_runs,
    )


def follow(
    source: Fetch,
    show: Callable[[list[TimelineEvent]], None],
    cursor: dict[str, Any],
    interval: float = FOLLOW_INTERVAL,
) -> None:
    """Show new events until Ctrl-C, or until the network goes down."""
    try:
        while True:
            time.sleep(interval)  # the polling period of a tail, not a wait for a condition
            try:
                answer = source(cursor, None)
            except UsageError as exc:
                if "not running" in exc.message:
                    console.print("[dim]the environment is down; stopped following[/]")
                    return
                raise
            cursor = answer["cursor"]
            show([TimelineEvent.from_json(raw) for raw in answer["events"]])
    except KeyboardInterrupt:
        return


def _names(values: list[str]) -> tuple[str, ...]:
    return tuple(name for value in values for name in split_names(value))


def register(app: typer.Typer) -> None:
    @app.command()
    def logs(
        ctx: typer.Context,
        follow_: bool = typer.Option(False, "--follow", "-f", help="Keep showing new events."),
        node: list[str] = typer.Option(
            [], "--node", "-n", help="Only these nodes (repeat, or A,B); faults stay."
        ),
        grep: str | None = typer.Option(
            None, "--grep", "-g", help="A regular expression the line must contain."
        ),
        since: str | None = typer.Option(
            None, "--since", help="Only events since: 30s, 5m, 1h ago, or a time."
        ),
        trace: str | None = typer.Option(None, "--trace", help="Only events of this trace_id."),
        event: list[str] = typer.Option(
            [], "--event", "-E", help="Only events named like this: file_*, node_*."
        ),
        level: str | None = typer.Option(
            None, "--level", help="Least severe level shown: debug, info, warning, error."
        ),
        tail: int | None = typer.Option(
            None, "--tail", help="Only the last N events (then follow)."
        ),
        as_json: bool = typer.Option(False, "--json", help="JSON lines, one event each."),
        run: Path | None = typer.Option(
            None, "--run", help="Read a results folder instead of the live network."
        ),
        all_runs: bool = typer.Option(
            False, "--all-runs", help="Include earlier networks of this environment."
        ),
    ) -> None:
        """One time-ordered timeline of every node's logs and peerlab's own events."""
        event_filter = EventFilter(
            nodes=_names(node),
            grep=grep,
            since=parse_since(since) if since else None,
            trace_id=trace,
            events=tuple(event),
            min_level=level,
        )
        source = timeline_source(ctx, run, event_filter, all_runs)

        def show(events: list[TimelineEvent]) -> None:
            for item in events:
                if as_json:
                    typer.echo(json.dumps(item.to_json(), default=str))
                else:
                    console.print(event_text(item), highlight=False, soft_wrap=True)

        answer = source(None, tail)
        show([TimelineEvent.from_json(raw) for raw in answer["events"]])
        if follow_:
            follow(source, show, answer["cursor"])
