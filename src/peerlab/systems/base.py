"""What a system's Python adapter is: a typed client per node, and optional views of state.

`BaseAdapter` gives the optional parts their "nothing to say" answers, so callers never ask
whether an adapter has a method. A system plugin (the `peerlab.systems` entry-point group,
see `peerlab.systems.plugins`) may add CLI verbs and pytest fixtures of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from peerlab.errors import UsageError

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.node import Node


@dataclass(frozen=True)
class ByzantineModes:
    """How a system's nodes are made to lie: an environment variable read at start-up, and
    the modes it accepts (the nemesis restarts a node with it set)."""

    variable: str
    modes: tuple[str, ...]


class Adapter(Protocol):
    """A system's adapter, bound to one Environment."""

    byzantine: ByzantineModes | None

    def client(self, node: Node) -> Any:
        """The typed client for `node` (every call it makes is recorded in the history)."""
        ...

    def inspect(self, node: Node) -> dict[str, Any] | None:
        """What the node says about itself (roles, peers, files), None when nothing."""
        ...

    def graph(self) -> Sequence[tuple[str, str]] | None:
        """Who is connected to whom, as (from, to) node names; None when it cannot tell."""
        ...


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
