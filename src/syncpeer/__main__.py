"""The `syncpeer` command: `syncpeer run ...` runs a node, `syncpeer identity ...` prints a card."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

USAGE = """usage: syncpeer run --data-dir DIR --name NAME [--host IP] [--port N] [options]
       syncpeer identity --data-dir DIR [--name NAME [--puzzle-bits N]]

  run       run a node until SIGTERM/SIGINT (see `syncpeer run --help`)
  identity  print this node's identity card as JSON (--name creates the identity if missing)
"""


def identity_command(argv: Sequence[str]) -> int:
    from syncpeer.io.datadir import DataDir

    parser = argparse.ArgumentParser(prog="syncpeer identity", description="Print the card.")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--name", help="create the identity under this name if there is none")
    parser.add_argument(
        "--puzzle-bits", type=int, default=0, help="a created identity solves the DHT puzzle"
    )
    args = parser.parse_args(list(argv))
    data = DataDir(args.data_dir)
    try:
        identity = data.load_identity()
        if identity is None and args.name:
            data.prepare()
            if args.puzzle_bits > 0:
                from syncpeer.core.dht.puzzle import solve

                data.save_identity(solve(args.name, os.urandom, args.puzzle_bits))
            identity, _ = data.identity(args.name, os.urandom)
    except (OSError, ValueError) as error:
        print(f"syncpeer identity: {error}", file=sys.stderr)
        return 1
    if identity is None:
        print(
            f"syncpeer identity: no identity in {args.data_dir}; "
            "run `syncpeer run` there first or pass --name to create one",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(identity.card.to_json(), indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, end="", file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "run":
        from syncpeer.io.node import main as run_main

        return run_main(rest)
    if command == "identity":
        return identity_command(rest)
    print(f"syncpeer: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
