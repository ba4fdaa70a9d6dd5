"""syncpeer's CLI verbs, added to `peerlab` by syncpeer's system plugin.

    peerlab friend add A B [--one-way] [--dht]     A and B become friends
    peerlab friend list A
    peerlab file add A PATH --for B,C               publish a file encrypted for B and C
    peerlab file list A | cat B NAME | watch [PEER]
    peerlab dht lookup A KEY [--node] | table A     look into a peer's DHT

Each is one call to the syncpeer adapter's `@rpc` verbs through the supervisor
(`adapter.friend_add`, ...), so a test does the same with the adapter in the library.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from peerlab.cli.common import console, print_json, remote_env, split_names
from peerlab.cli.observe import follow, timeline_source
from peerlab.errors import UsageError
from peerlab.observe.events import TimelineEvent
from peerlab.observe.files import EVENT_PATTERNS, PeerNames, SyncEvent, sync_events
from peerlab.observe.filters import EventFilter
from peerlab.observe.render import clock, node_colour

friend_app = typer.Typer(help="Friendships between peers (syncpeer).", no_args_is_help=True)
file_app = typer.Typer(help="Publish and read files (syncpeer).", no_args_is_help=True)


@friend_app.command("add")
def friend_add(
    ctx: typer.Context,
    a: str,
    b: str = typer.Argument(..., help="A peer, or a fingerprint (found through the DHT)."),
    one_way: bool = typer.Option(False, "--one-way", help="Only A adds B (B does not add A)."),
    dht: bool = typer.Option(
        False, "--dht", help="Give each side only the other's fingerprint (found via the DHT)."
    ),
) -> None:
    """A and B become friends (both ways unless --one-way). B may be a fingerprint alone:
    A finds its address in the DHT and its card there."""
    remote_env(ctx).call("adapter.friend_add", a=a, b=b, mutual=not one_way, via_dht=dht)
    arrow = "->" if one_way else "<->"
    console.print(f"{a} {arrow} {b}: friends")


@friend_app.command("list")
def friend_list(ctx: typer.Context, a: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """A's friends."""
    friends = remote_env(ctx).call("adapter.friend_list", a=a)
    if as_json:
        print_json(friends)
        return
    table = Table(box=None, header_style="bold")
    for column in ("peer", "fingerprint", "address"):
        table.add_column(column)
    for friend in friends:
        card = friend.get("card", friend)
        table.add_row(
            str(friend.get("peer") or "?"),
            str(card.get("fingerprint", ""))[:16],
            str(friend.get("address", "")),
        )
    console.print(table)


@file_app.command("add")
def file_add(
    ctx: typer.Context,
    a: str,
    path: Path,
    for_peers: str = typer.Option("", "--for", help="Recipients: B,C (default: public)."),
    name: str | None = typer.Option(None, "--name", help="Name to publish under."),
) -> None:
    """Publish a local file on peer A, encrypted for the peers named with --for."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file", field="PATH", hint="name an existing file")
    content = base64.b64encode(path.read_bytes()).decode()
    meta = remote_env(ctx).call(
        "adapter.file_add",
        a=a,
        name=name or path.name,
        content_b64=content,
        recipients=split_names(for_peers) or None,
    )
    audience = for_peers or "everyone (public)"
    console.print(
        f"{a} published [bold]{meta.get('name', name or path.name)}[/] "
        f"v{meta.get('version', '?')} for {audience}"
    )


@file_app.command("list")
def file_list(ctx: typer.Context, a: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The files peer A holds."""
    files = remote_env(ctx).call("adapter.file_list", a=a)
    if as_json:
        print_json(files)
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "version", "author", "size", "decryptable"):
        table.add_column(column)
    for entry in files:
        table.add_row(
            entry["name"],
            str(entry.get("version")),
            str(entry.get("author", ""))[:12],
            str(entry.get("size")),
            "yes" if entry.get("decryptable") else "no",
        )
    console.print(table)


@file_app.command("cat")
def file_cat(ctx: typer.Context, b: str, name: str) -> None:
    """Print a file's decrypted content as peer B sees it."""
    data = base64.b64decode(remote_env(ctx).call("adapter.file_cat", b=b, name=name))
    typer.echo(data.decode(errors="replace"), nl=False)


@file_app.command("watch")
def file_watch(
    ctx: typer.Context,
    peer: str | None = typer.Argument(None, help="Only this peer's events (default: all)."),
    tail: int = typer.Option(10, "--tail", help="Recent events shown before following."),
    run: Path | None = typer.Option(None, "--run", help="Read a results folder instead."),
    no_follow: bool = typer.Option(False, "--no-follow", help="Show and stop."),
) -> None:
    """File sync as it happens: published, started, progress, completed, rejected."""
    # The lines where nodes log their fingerprints come too, so peers show by name.
    wanted = EventFilter(events=(*EVENT_PATTERNS, "node_started", "identity_created"))
    source = timeline_source(ctx, run, wanted)
    names = PeerNames()

    def show(events: list[TimelineEvent], limit: int | None = None) -> None:
        found = [s for s in sync_events(events, names) if peer is None or s.node == peer]
        for item in found[-limit:] if limit else found:
            console.print(_sync_line(item), highlight=False, soft_wrap=True)

    if peer is not None and run is None:
        known = [node["name"] for node in remote_env(ctx).call("env.peers")]
        if peer not in known:
            raise UsageError(
                f"unknown peer {peer!r}",
                field="PEER",
                hint=f"known peers: {', '.join(known) or '(none)'}",
            )
    answer = source(None, None)
    show([TimelineEvent.from_json(raw) for raw in answer["events"]], tail)
    if not no_follow:
        follow(source, show, answer["cursor"])


_PHASE_STYLE = {
    "published": ("⇡", "bold blue"),
    "started": ("⇣", "cyan"),
    "progress": ("…", "yellow"),
    "completed": ("✔", "bold green"),
    "failed": ("✘", "red"),
    "rejected": ("⊘", "bold red"),
}


def _sync_line(item: SyncEvent) -> Text:
    mark, style = _PHASE_STYLE.get(item.phase, ("·", ""))
    line = Text()
    line.append(clock(item.wall) + " ", style="dim")
    line.append(f"{item.node:<4} ", style=node_colour(item.node))
    line.append(f"{mark} {item.phase:<9} ", style=style)
    line.append(item.file, style="bold")
    if item.detail:
        line.append(" " + item.detail)
    if item.trace_id:
        line.append(f" trace={item.trace_id}", style="dim")
    return line


dht_app = typer.Typer(help="The DHT: lookups and routing tables (syncpeer).", no_args_is_help=True)


def _who(entry: dict[str, Any]) -> str:
    return str(entry.get("peer") or "?")


@dht_app.command("lookup")
def lookup(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="The peer that looks up."),
    key: str = typer.Argument(..., help="A peer's name or a fingerprint (40 hex digits)."),
    node: bool = typer.Option(
        False, "--node", help="Find the nearest nodes (FIND_NODE), not the address record."
    ),
    every: bool = typer.Option(False, "--all", help="List every RPC, not only the path."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Look KEY up from peer A: the path taken, hops, XOR distance and time."""
    result = remote_env(ctx).call("adapter.dht_lookup", a=a, key=key, value=not node)
    if as_json:
        print_json(result)
        return
    target = result.get("target_peer") or "?"
    outcome = "[green]found[/]" if result["found"] else f"[red]not found[/] ({result['reason']})"
    console.print(
        f"{a} -> {target} ({result['target'][:16]}…): {outcome} in {result['hops']} hops, "
        f"{result['duration_ms']:.1f} ms, {result['rpcs']} RPCs "
        f"({result['failures']} failed, {result['disjoint_paths']} disjoint paths)"
    )
    bits = result["distance_bits"]
    console.print(
        f"XOR distance {a} -> key: {result['distance']} (2^{bits - 1} <= d < 2^{bits})"
        if bits
        else "XOR distance 0 (the key is the looker's own id)"
    )
    rows = result["queried"] if every else result["path"]
    table = Table(box=None, header_style="bold")
    for column in ("hop", "peer", "id", "address", "distance to key", "via", "state", "rtt ms"):
        table.add_column(column)
    names = {entry["id"]: _who(entry) for entry in result["queried"]}
    for entry in rows:
        rtt = entry.get("rtt_ms")
        table.add_row(
            str(entry["depth"]),
            _who(entry),
            entry["id"][:12],
            entry["address"],
            f"2^{entry['distance_bits'] - 1}" if entry["distance_bits"] else "0",
            names.get(entry["via"], "-") if entry.get("via") else "table",
            entry["state"],
            "-" if rtt is None else f"{rtt:.2f}",
        )
    console.print(table)
    if result["found"] and result.get("record"):
        record = result["record"]
        console.print(
            f"record: {record['fingerprint'][:16]}… at {record['address']} "
            f"(DHT {record['dht_address']}), from {_who(result['holder'] or {})}"
        )


@dht_app.command("table")
def table(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="The peer whose routing table to show."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Peer A's routing table: each k-bucket and its contacts."""
    result = remote_env(ctx).call("adapter.dht_table", a=a)
    if as_json:
        print_json(result)
        return
    state = "joined" if result["joined"] else "[yellow]not joined[/]"
    console.print(
        f"{a} ({result['id'][:16]}…) at {result['address']}: {state}, {result['contacts']} "
        f"contacts in {len(result['buckets'])} buckets (k={result['k']}), "
        f"{result['records']} records held"
    )
    grid = Table(box=None, header_style="bold")
    for column in ("bucket", "distance", "contacts", "peers", "waiting"):
        grid.add_column(column)
    for bucket in result["buckets"]:
        grid.add_row(
            str(bucket["index"]),
            f"2^{bucket['index']}",
            f"{len(bucket['contacts'])}/{result['k']}",
            " ".join(_who(entry) for entry in bucket["contacts"]),
            str(len(bucket["replacements"])),
        )
    console.print(grid)


def register(app: typer.Typer) -> None:
    app.add_typer(friend_app, name="friend")
    app.add_typer(file_app, name="file")
    app.add_typer(dht_app, name="dht")
