"""`peerlab net ...`: break the network of a running environment, and show what is broken.

Values take units (`500ms`, `10KB/s`, `10%`; see peerlab.units); they are parsed here,
strictly, and sent as numbers to `env.net` through the supervisor.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from peerlab.cli.common import console, print_json, remote_env, split_names
from peerlab.errors import UsageError
from peerlab.units import parse_duration, parse_percent, parse_rate

net_app = typer.Typer(
    help="Partitions, latency, bandwidth and loss between the peers.", no_args_is_help=True
)

# A value such as `-5ms` is an argument to refuse with a reason, not an unknown option.
VALUES = {"ignore_unknown_options": True}

FROM = typer.Option(None, "--from", help="Only data sent by this node (default: any).")
TO = typer.Option(None, "--to", help="Only data sent to this node (default: any).")


def _link(src: str | None, dst: str | None) -> str:
    return f"{src or '*'} -> {dst or '*'}"


def _groups(groups: list[list[str]], one_way: bool) -> str:
    return (" -/-> " if one_way else " | ").join(",".join(group) for group in groups)


def describe(fault: dict[str, Any]) -> str:
    """One line for a fault's JSON form."""
    kind = fault.get("kind")
    if kind == "partition":
        text = _groups(fault["groups"], fault.get("one_way", False))
        return text + (f" for {fault['duration']:g}s" if fault.get("duration") else "")
    if kind == "rolling":
        return f"rolling, {fault['period']:g}s per node over {','.join(fault['nodes'])}"
    attributes = " ".join(f"{k}={v:g}" for k, v in fault.get("attributes", {}).items())
    stream = f" {fault['stream']}" if kind == "toxic" else ""
    share = f" toxicity={fault['toxicity']:g}" if fault.get("toxicity", 1) != 1 else ""
    return f"{fault['type']}{stream} {attributes}{share}  {_link(fault['src'], fault['dst'])}"


def _show(net: dict[str, Any]) -> None:
    faults = Table("name", "fault", title="faults", title_justify="left")
    for fault in net["faults"]:
        faults.add_row(fault["name"], describe(fault))
    console.print(faults if net["faults"] else "no faults")
    if net["cut"]:
        console.print("cut: " + ", ".join(f"{a}-/->{b}" for a, b in net["cut"]))
    proxies = Table(title="proxies", title_justify="left")
    for column in ("node", "port", "proto", "listen", "upstream", "conns", "in", "out"):
        proxies.add_column(column, overflow="fold")  # addresses wrap, never cut
    for proxy in net["proxies"]:
        tcp = proxy["protocol"] == "tcp"
        proxies.add_row(
            proxy["node"],
            proxy["port"],
            proxy["protocol"],
            proxy["listen"],
            proxy["upstream"],
            str(proxy["connections"] if tcp else proxy["flows"]),
            f"{proxy['bytes_up']:,} B" if tcp else f"{proxy['received']:,} dgrams",
            f"{proxy['bytes_down']:,} B" if tcp else f"{proxy['sent']:,} dgrams",
        )
    console.print(proxies)
    console.print("per link: connections, bytes, how each source was told: `peerlab net links`")


def _links(view: dict[str, Any]) -> None:
    # Here, not at the top: importing any of peerlab.fabric imports the whole fabric.
    from peerlab.fabric.attribution import describe as describe_attribution

    table = Table(title="links (connections src opened to dst)", title_justify="left")
    for column in ("link", "proto", "open", "attributed", "bytes ->", "bytes <-", "cut"):
        table.add_column(column, no_wrap=True)
    table.add_column("faults", overflow="fold")
    for link in view["links"]:
        table.add_row(
            f"{link['src']} -> {link['dst']}",
            link["protocol"],
            str(link["open"]),
            describe_attribution(link["attribution"]),
            f"{link['bytes_up']:,}",
            f"{link['bytes_down']:,}",
            "cut" if link["cut"] else "",
            ", ".join(link["faults"]),
        )
    console.print(table if view["links"] else "no link has carried traffic yet")
    refused = view["unattributed"]
    if refused:
        console.print(f"refused, source unknown ({len(refused)}):")
        for item in refused:
            console.print(
                f"  {item['protocol']} {item['src']} -> {item['dst']} ({item['node']}): "
                f"{item['reason']}"
            )
    timing = view["attribution"].get("owner_lookup_ms")
    if timing:
        console.print(
            f"owner lookups (latest): {view['attribution']['owner_lookups']}, "
            f"p50 {timing['p50']} ms, p99 {timing['p99']} ms"
        )


@net_app.command("links")
def links(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every directed link: open connections and how each source was told, bytes each way,
    whether it is cut, its faults; connections refused because their source was unknown."""
    view = remote_env(ctx).call("net.links")
    if as_json:
        print_json(view)
    else:
        _links(view)


@net_app.command("show")
def show(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Faults, what the partition cuts, and each proxy's connections and bytes."""
    net = remote_env(ctx).call("net.show")
    if as_json:
        print_json(net)
    else:
        _show(net)


@net_app.command("partition")
def partition(
    ctx: typer.Context,
    groups: list[str] = typer.Argument(
        ..., help="Groups of nodes: `A,B C,D`; a node in no group is cut off from all."
    ),
    one_way: bool = typer.Option(
        False, "--one-way", help="Two groups: the first cannot reach the second."
    ),
    duration: str | None = typer.Option(None, "--for", help="Heal after this long (`30s`)."),
) -> None:
    """Cut the network into groups (replacing any partition)."""
    parsed = [split_names(group) for group in groups]
    if one_way and len(parsed) != 2:
        raise UsageError(
            f"--one-way takes two groups, got {len(parsed)}",
            field="groups",
            hint="net partition --one-way A B: A cannot reach B",
        )
    seconds = parse_duration(duration, "--for") if duration else None
    remote_env(ctx).call("net.partition", groups=parsed, one_way=one_way, duration_s=seconds)
    console.print(
        f"partitioned: {_groups(parsed, one_way)}" + (f" (heals in {duration})" if duration else "")
    )


@net_app.command("rolling", context_settings=VALUES)
def rolling(
    ctx: typer.Context,
    period: str = typer.Argument(..., help="How long each node stays cut off (`10s`)."),
    nodes: str | None = typer.Option(None, "--nodes", help="Only these nodes: `A,B,C`."),
) -> None:
    """Cut off one node after another, in a seeded order, until `net heal`."""
    seconds = parse_duration(period, "period")
    fault = remote_env(ctx).call(
        "net.rolling", period_s=seconds, nodes=split_names(nodes) if nodes else None
    )
    console.print(describe(fault))


@net_app.command("heal")
def heal(ctx: typer.Context) -> None:
    """Remove the partition."""
    remote_env(ctx).call("net.heal")
    console.print("healed")


@net_app.command("latency", context_settings=VALUES)
def latency(
    ctx: typer.Context,
    delay: str = typer.Argument(..., help="One-way delay: `500ms`."),
    jitter: str = typer.Option("0ms", "--jitter", help="Plus or minus this much: `100ms`."),
    src: str | None = FROM,
    dst: str | None = TO,
) -> None:
    """Delay data on a link, one way (a round trip pays it twice when both ways match)."""
    fault = remote_env(ctx).call(
        "net.latency",
        latency_ms=parse_duration(delay, "latency") * 1000,
        jitter_ms=parse_duration(jitter, "--jitter") * 1000,
        src=src,
        dst=dst,
    )
    console.print(describe(fault))


@net_app.command("limit", context_settings=VALUES)
def limit(
    ctx: typer.Context,
    rate: str = typer.Argument(..., help="Bandwidth: `10KB/s`, `1MB/s`, `10Mbit/s`."),
    src: str | None = FROM,
    dst: str | None = TO,
) -> None:
    """Cap the bandwidth of a link (TCP)."""
    fault = remote_env(ctx).call("net.limit", rate_kb_s=parse_rate(rate) / 1000, src=src, dst=dst)
    console.print(describe(fault))


@net_app.command("loss", context_settings=VALUES)
def loss(
    ctx: typer.Context,
    percent: str = typer.Argument(..., help="Share of packets lost: `10%`."),
    src: str | None = FROM,
    dst: str | None = TO,
) -> None:
    """Lose packets: UDP datagrams vanish; TCP stalls as lost segments are resent."""
    fault = remote_env(ctx).call("net.loss", percent=parse_percent(percent), src=src, dst=dst)
    console.print(describe(fault))


@net_app.command("reset")
def reset(ctx: typer.Context, src: str, dst: str) -> None:
    """Reset (RST) the open TCP connections between two nodes."""
    count = remote_env(ctx).call("net.reset", src=src, dst=dst)
    console.print(f"reset {count} connection{'s' if count != 1 else ''} between {src} and {dst}")


@net_app.command("clear")
def clear(ctx: typer.Context) -> None:
    """Remove every fault and heal the partition."""
    remote_env(ctx).call("net.clear")
    console.print("cleared")


def register(app: typer.Typer) -> None:
    app.add_typer(net_app, name="net")
