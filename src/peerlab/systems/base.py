"""The base of a system's Python adapter (the `Adapter` protocol is in `peerlab.api`).

`BaseAdapter` gives the optional parts their "nothing to say" answers, so callers never ask
whether an adapter has a method. A system plugin (the `peerlab.systems` entry-point group,
see `peerlab.systems.plugins`) may add CLI verbs and pytest fixtures of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from peerlab.api import Adapter, ByzantineModes, EnvironmentAPI
from peerlab.errors import UsageError

if TYPE_CHECKING:
    from peerlab.node import Node

__all__ = ["Adapter", "BaseAdapter", "ByzantineModes"]


A = TypeVar("A", bound="BaseAdapter")


class BaseAdapter:
    """The optional parts of an adapter, answering "nothing to say"."""

    byzantine: ByzantineModes | None = None

    def __init__(self, env: EnvironmentAPI) -> None:
        self.env = env

    @classmethod
    def of(cls: type[A], env: EnvironmentAPI, system: str | None = None) -> A:
        """This kind of adapter in `env`: the one of `system`, else the first of its kind."""
        found = (
            [env.adapter(system)]
            if system is not None
            else [a for a in env.adapters.values() if isinstance(a, cls)]
        )
        if not found or not isinstance(found[0], cls):
            raise UsageError(
                f"this network runs no system with a {cls.__name__}",
                field="system",
                hint=f"start one first (running: {', '.join(env.systems) or 'none'})",
            )
        return found[0]

    def inspect(self, node: Node) -> dict[str, Any] | None:
        return None

    def graph(self) -> Sequence[tuple[str, str]] | None:
        return None
