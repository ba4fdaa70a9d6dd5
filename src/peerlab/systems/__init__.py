"""The systems peerlab knows: built-in manifests shipped here, or any manifest file by path."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peerlab.errors import UsageError
from peerlab.manifest import SystemSpec, load_manifest

if TYPE_CHECKING:
    from peerlab.env import Environment

BUILTIN_DIR = Path(__file__).parent


def builtin_systems() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.toml"))


def find_system(name_or_path: str | Path) -> SystemSpec:
    """A built-in system by name, or a manifest file by path."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        return load_manifest(Path(text))
    path = BUILTIN_DIR / f"{text}.toml"
    if not path.exists():
        raise UsageError(
            f"unknown system {text!r}",
            field="system",
            hint=f"use one of: {', '.join(builtin_systems())}, or a path to a manifest .toml",
        )
    return load_manifest(path)


def load_adapter(spec: SystemSpec, env: Environment) -> Any:
    """The system's Python adapter bound to `env`, or None when the manifest names none."""
    if not spec.adapter:
        return None
    module_name, _, attr = spec.adapter.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            f"{spec.source}: adapter {spec.adapter!r} cannot be loaded ({exc})",
            field="system.adapter",
            hint='write it as "package.module:ClassName" importable from this Python',
        ) from None
    return factory(env)
