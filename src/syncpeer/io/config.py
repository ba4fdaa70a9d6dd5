"""The settings of one node and the `syncpeer run` arguments that produce them."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from syncpeer.core.keyring import parse_address
from syncpeer.io.logs import LEVELS


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
    log_level: str = "info"


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
    parser.add_argument("--log-level", default="info", choices=LEVELS)
    return parser


def parse_run_args(argv: Sequence[str]) -> NodeConfig:
    """Parse `syncpeer run` arguments; argparse exits 2 with a message on bad input."""
    parser = run_parser()
    args = parser.parse_args(list(argv))
    if args.advertise:
        try:
            parse_address(args.advertise)
        except ValueError as error:
            parser.error(f"--advertise: {error}")
    if not 0 <= args.port < 65536:
        parser.error("--port must be between 0 and 65535")
    if args.poll_interval <= 0 or args.http_timeout <= 0:
        parser.error("--poll-interval and --http-timeout must be positive")
    return NodeConfig(
        data_dir=args.data_dir,
        name=args.name,
        host=args.host,
        port=args.port,
        advertise=args.advertise,
        source_address=args.source_address,
        poll_interval=args.poll_interval,
        http_timeout=args.http_timeout,
        log_level=args.log_level,
    )
