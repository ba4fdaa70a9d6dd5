"""`peerlab image build NAME...` and `peerlab image list`: the docker backend's images,
made on this machine (see `peerlab.backends.images`)."""

from __future__ import annotations

import time

import typer

from peerlab.cli.common import console, print_json
from peerlab.errors import UsageError


def register(app: typer.Typer) -> None:
    image_app = typer.Typer(
        help="Container images for the docker backend, built here.", no_args_is_help=True
    )
    app.add_typer(image_app, name="image")

    @image_app.command("build")
    def build(
        names: list[str] = typer.Argument(
            ..., help="base, syncpeer, etcd or redis (base first: the others are FROM it)"
        ),
    ) -> None:
        """Make images: `base` from Debian's packages (mmdebstrap), the built-in systems'
        FROM it. One that is already made is kept (its content key, or the engine's cache)."""
        from peerlab.backends.images import NAMES, Images

        for name in names:
            if name not in NAMES:
                raise UsageError(
                    f"no built-in image {name!r}",
                    field="name",
                    hint=f"use some of: {', '.join(NAMES)}",
                )
        images = Images()
        for name in names:
            began = time.monotonic()
            tag = images.build(name, lambda step: console.print(f"[dim]{step}[/]"))
            console.print(f"{name}: {tag} ({time.monotonic() - began:.0f}s)")

    @image_app.command("list")
    def listing(as_json: bool = typer.Option(False, "--json")) -> None:
        """The images peerlab made on this engine."""
        from peerlab.backends.images import Images

        found = Images().listing()
        if as_json:
            print_json(found)
            return
        for image in found:
            # One line each, however narrow the terminal: for reading and for grep.
            typer.echo(f"{image['tag']:44} {image['id']}  {image['mb']:>5} MB  {image['recipe']}")
