"""The systems peerlab knows: built-in manifests shipped here, or any manifest file by path.

The manifest schema (pydantic) is imported when a manifest is read, not with this package:
the CLI imports system plugins from here to list their verbs, and that must stay cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from peerlab.errors import UsageError

if TYPE_CHECKING:
    from peerlab.api import EnvironmentAPI
    from peerlab.manifest import SystemSpec
    from peerlab.systems.base import Adapter

BUILTIN_DIR = Path(__file__).parent
DEFAULT_SYSTEM = "syncpeer"


def builtin_systems() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.toml"))


def find_system(name_or_path: str | Path) -> SystemSpec:
    """A built-in system by name, or a manifest file by path."""
    from peerlab.manifest import load_manifest

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


def adapter_class(spec: SystemSpec) -> Callable[[EnvironmentAPI], Adapter] | None:
    """The class (factory) of the system's adapter, None when the manifest names none."""
    if not spec.adapter:
        return None
    module_name, _, attr = spec.adapter.partition(":")
    try:
        factory: Callable[[EnvironmentAPI], Adapter] = getattr(
            importlib.import_module(module_name), attr
        )
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            f"{spec.source}: adapter {spec.adapter!r} cannot be loaded ({exc})",
            field="system.adapter",
            hint='write it as "package.module:ClassName" importable from this Python',
        ) from None
    return factory


def load_adapter(spec: SystemSpec, env: EnvironmentAPI) -> Adapter | None:
    """The system's Python adapter bound to `env`, or None when the manifest names none."""
    factory = adapter_class(spec)
    return factory(env) if factory is not None else None


def byzantine_modes(system: str) -> list[str]:
    """The lying modes a system's adapter declares, without starting anything."""
    factory = adapter_class(find_system(system))
    byzantine = getattr(factory, "byzantine", None)
    return list(byzantine.modes) if byzantine is not None else []


class Systems:
    """The systems an Environment runs, and their adapters, in the order they were added."""

    def __init__(self, host: EnvironmentAPI) -> None:
        self.host = host  # what the adapters are bound to
        self.specs: dict[str, SystemSpec] = {}
        self.adapters: dict[str, Adapter] = {}

    def add(self, name: str | SystemSpec) -> SystemSpec:
        """The system `name` (a built-in, a manifest path or a spec), loaded once."""
        from peerlab.launching import check_installed
        from peerlab.manifest import SystemSpec

        spec = name if isinstance(name, SystemSpec) else find_system(name)
        if spec.name not in self.specs:
            check_installed(spec)
            self.specs[spec.name] = spec  # an adapter may read its own manifest
            try:
                adapter = load_adapter(spec, self.host)
            except BaseException:
                del self.specs[spec.name]
                raise
            if adapter is not None:
                self.adapters[spec.name] = adapter
        return self.specs[spec.name]

    def primary(self) -> str:
        if not self.specs:
            raise UsageError(
                "no system has been started yet",
                field="system",
                hint="start nodes first or name the system",
            )
        return next(iter(self.specs))

    def get(self, name: str | None) -> SystemSpec:
        """A system already added (the first one when `name` is None)."""
        key = name or self.primary()
        if key not in self.specs:
            raise UsageError(
                f"system {key!r} is not running here",
                field="system",
                hint=f"running: {', '.join(self.specs) or '(none)'}",
            )
        return self.specs[key]

    def adapter(self, name: str | None = None) -> Adapter:
        key = name or self.primary()
        if key not in self.adapters:
            raise UsageError(
                f"system {key!r} has no Python adapter",
                field="system",
                hint="this operation needs a system with an adapter (e.g. syncpeer)",
            )
        return self.adapters[key]
