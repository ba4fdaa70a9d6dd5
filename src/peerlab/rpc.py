"""Marks the library methods that the CLI may call on a live Environment through the supervisor.

One core, two faces: a CLI command such as `peerlab net partition A,B C,D` is a remote call of
`env.net.partition(groups=[["A", "B"], ["C", "D"]])`. Only methods marked `@rpc` can be
reached that way; their arguments and results must be JSON values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

RPC_MARK = "__peerlab_rpc__"


def rpc(func: F) -> F:
    """Expose `func` to the CLI (through the supervisor) under its attribute path."""
    setattr(func, RPC_MARK, True)
    return func


def is_rpc(func: object) -> bool:
    return bool(getattr(func, RPC_MARK, False))
