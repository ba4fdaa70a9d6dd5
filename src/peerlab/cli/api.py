"""`peerlab api ...`: the control API any language can drive (docs/api.md).

`peerlab api openapi` prints the reference OpenAPI document (docs/api/openapi.json), built
from the same `@rpc` methods a supervisor serves; `peerlab api show` tells where the running
environment's API listens and where its token is.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from peerlab.cli.common import env_name, print_json

api_app = typer.Typer(help="The HTTP/JSON control API (docs/api.md).", no_args_is_help=True)


def reference_types() -> dict[str, type]:
    """The namespaces of a network of the default system, syncpeer: what the reference
    document describes (another system's `adapter` verbs are its own)."""
    from peerlab.env import Environment
    from peerlab.fabric.network import Network
    from peerlab.services import ObserveService, ResultsService, ScenarioService, SnapshotService
    from peerlab.systems.syncpeer import SyncpeerAdapter

    return {
        "env": Environment,
        "net": Network,
        "observe": ObserveService,
        "snapshot": SnapshotService,
        "scenario": ScenarioService,
        "results": ResultsService,
        "adapter": SyncpeerAdapter,
    }


def reference_document() -> dict[str, Any]:
    from peerlab.control_api import document

    return document(reference_types())


@api_app.command("openapi")
def openapi() -> None:
    """Print the OpenAPI 3.1 document of the control API."""
    typer.echo(json.dumps(reference_document(), indent=2, sort_keys=True))


@api_app.command("show")
def show(ctx: typer.Context) -> None:
    """Where the running environment's API listens (unix socket, TCP URL, token file)."""
    from peerlab import supervisor

    name = env_name(ctx)
    if not supervisor.is_running(name):
        supervisor.remote(name).call("env.status")  # raises the usual "not running" error
    print_json((supervisor.read_state(name) or {}).get("api", {}))


def register(app: typer.Typer) -> None:
    app.add_typer(api_app, name="api")
