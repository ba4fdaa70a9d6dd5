"""The settings of one node and the `syncpeer run` arguments that produce them."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syncpeer.core import protocol
from syncpeer.core.dht.protocol import DhtConfig
from syncpeer.core.dht.puzzle import MAX_BITS
from syncpeer.core.keyring import parse_address
from syncpeer.core.mutants import NO_MUTANTS, Mutants
from syncpeer.core.protocol import Versions
from syncpeer.io.logs import LEVELS

MUTANTS_VARIABLE = "SYNCPEER_MUTANTS"  # mutants to switch on, "a,b" (syncpeer.core.mutants)


@dataclass(frozen=True)
class NodeConfig:
    data_dir: Path
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    advertise: str | None = None
    source_address: str | None = None
    poll_interval: float = 1.0
    http_timeout: float = 10.0
    max_backoff: float = 8.0
    stall_timeout: float = 5.0
    log_level: str = "info"
    udp_port: int | None = None  # None: no DHT
    dht_advertise: str | None = None
    bootstrap: tuple[str, ...] = ()
    dht: DhtConfig = field(default_factory=DhtConfig)
    mutants: Mutants = NO_MUTANTS  # deliberate bugs, for mutation testing (docs/nemesis.md)
    versions: Versions = protocol.ALL  # protocol versions spoken (syncpeer.core.protocol)


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syncpeer run", description="Run a syncpeer node until SIGTERM or SIGINT."
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="where state is kept")
    parser.add_argument("--name", required=True, help="display name on the identity card")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument("--advertise", help="HOST:PORT friends should use to reach this node")
    parser.add_argument("--source-address", help="local IP outgoing connections bind to")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--http-timeout", type=float, default=10.0, help="HTTP timeout, seconds")
    parser.add_argument(
        "--max-backoff",
        type=float,
        default=8.0,
        help="longest wait, seconds, before asking a friend that keeps failing again",
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=5.0,
        help="a download gives up when less than 1 KiB/s arrived over this many seconds",
    )
    parser.add_argument("--log-level", default="info", choices=LEVELS)
    parser.add_argument(
        "--protocol",
        default=protocol.VERSIONS[-1],
        choices=protocol.VERSIONS,
        help="the newest protocol version to speak (1.0: whole-envelope downloads)",
    )
    parser.add_argument(
        "--require-protocol",
        default=protocol.VERSIONS[0],
        choices=protocol.VERSIONS,
        help="the oldest protocol version to accept from friends",
    )
    dht = parser.add_argument_group("DHT (Kademlia over UDP; see docs/dht.md)")
    dht.add_argument(
        "--udp-port", type=int, help="UDP port of the DHT (0: any free; unset: no DHT)"
    )
    dht.add_argument("--dht-advertise", help="HOST:PORT other nodes reach the DHT at")
    dht.add_argument(
        "--bootstrap", default="", help="HOST:PORT,... of DHT nodes to join through (own ignored)"
    )
    defaults = DhtConfig()
    dht.add_argument(
        "--dht-rpc-timeout",
        type=float,
        default=defaults.rpc_timeout,
        help="seconds before an unanswered DHT request counts as failed",
    )
    dht.add_argument(
        "--dht-lookup-timeout",
        type=float,
        default=defaults.lookup_timeout,
        help="seconds a whole lookup may take",
    )
    dht.add_argument("--dht-k", type=int, default=defaults.k, help="bucket size and replication")
    dht.add_argument(
        "--dht-alpha", type=int, default=defaults.alpha, help="requests in flight per lookup path"
    )
    dht.add_argument(
        "--disjoint-paths",
        type=int,
        default=defaults.disjoint_paths,
        help="disjoint lookup paths (S/Kademlia; 1: plain Kademlia)",
    )
    dht.add_argument(
        "--puzzle-bits",
        type=int,
        default=defaults.puzzle_bits,
        help="zero bits SHA-256(node id) must start with (0: no puzzle)",
    )
    dht.add_argument(
        "--dht-refresh",
        type=float,
        default=defaults.refresh_interval,
        help="seconds before an idle bucket is refreshed",
    )
    dht.add_argument(
        "--dht-republish",
        type=float,
        default=defaults.republish_interval,
        help="seconds between stores of this node's address record",
    )
    dht.add_argument(
        "--dht-record-ttl",
        type=float,
        default=defaults.record_ttl,
        help="seconds other nodes keep this node's address record",
    )
    return parser


@functools.lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    # Made once: building it costs more than parsing with it, and a simulation starts
    # thousands of nodes. Parsing leaves a parser as it was.
    return run_parser()


def _dht_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> DhtConfig:
    if args.udp_port is not None and not 0 <= args.udp_port < 65536:
        parser.error("--udp-port must be between 0 and 65535")
    for option in ("dht_advertise",):
        value = getattr(args, option)
        if value:
            try:
                parse_address(value)
            except ValueError as error:
                parser.error(f"--{option.replace('_', '-')}: {error}")
    for address in _split(args.bootstrap):
        try:
            parse_address(address)
        except ValueError as error:
            parser.error(f"--bootstrap: {error}")
    positive = (
        "dht_rpc_timeout",
        "dht_lookup_timeout",
        "dht_refresh",
        "dht_republish",
        "dht_record_ttl",
    )
    for option in positive:
        if getattr(args, option) <= 0:
            parser.error(f"--{option.replace('_', '-')} must be positive")
    if args.dht_k < 1 or args.dht_alpha < 1 or args.disjoint_paths < 1:
        parser.error("--dht-k, --dht-alpha and --disjoint-paths must be at least 1")
    if not 0 <= args.puzzle_bits <= MAX_BITS:
        parser.error(f"--puzzle-bits must be between 0 and {MAX_BITS}")
    return DhtConfig(
        k=args.dht_k,
        alpha=args.dht_alpha,
        disjoint_paths=args.disjoint_paths,
        rpc_timeout=args.dht_rpc_timeout,
        lookup_timeout=args.dht_lookup_timeout,
        puzzle_bits=args.puzzle_bits,
        refresh_interval=args.dht_refresh,
        republish_interval=args.dht_republish,
        record_ttl=args.dht_record_ttl,
    )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_run_args(argv: Sequence[str]) -> NodeConfig:
    """Parse `syncpeer run` arguments (and the mutants named in $SYNCPEER_MUTANTS);
    argparse exits 2 with a message on bad input."""
    parser = _parser()
    args = parser.parse_args(list(argv))
    if args.advertise:
        try:
            parse_address(args.advertise)
        except ValueError as error:
            parser.error(f"--advertise: {error}")
    if not 0 <= args.port < 65536:
        parser.error("--port must be between 0 and 65535")
    if min(args.poll_interval, args.http_timeout, args.max_backoff, args.stall_timeout) <= 0:
        parser.error(
            "--poll-interval, --http-timeout, --max-backoff and --stall-timeout must be positive"
        )
    try:
        versions = Versions.between(args.require_protocol, args.protocol)
    except ValueError as error:
        parser.error(f"--require-protocol: {error}")
    dht = _dht_config(parser, args)
    try:
        mutants = Mutants.parse(os.environ.get(MUTANTS_VARIABLE))
    except ValueError as error:
        parser.error(f"{MUTANTS_VARIABLE}: {error}")
    return NodeConfig(
        data_dir=args.data_dir,
        name=args.name,
        host=args.host,
        port=args.port,
        advertise=args.advertise,
        source_address=args.source_address,
        poll_interval=args.poll_interval,
        http_timeout=args.http_timeout,
        max_backoff=args.max_backoff,
        stall_timeout=args.stall_timeout,
        log_level=args.log_level,
        udp_port=args.udp_port,
        dht_advertise=args.dht_advertise,
        bootstrap=_split(args.bootstrap),
        dht=dht,
        mutants=mutants,
        versions=versions,
    )
