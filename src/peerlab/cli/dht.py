"""`peerlab dht lookup A KEY` and `peerlab dht table A`: look into a peer's DHT.

KEY is a peer's name or a fingerprint. The library calls are the adapter's
`dht_lookup(a, key)` and `dht_table(a)`; these commands print what they return.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from peerlab.cli.common import console, print_json, remote_env

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
    app.add_typer(dht_app, name="dht")
