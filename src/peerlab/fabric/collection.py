"""The named proxies of the standalone Toxiproxy-compatible server, each with its own toxics.

Proxies and toxics read and write Toxiproxy's JSON: a proxy is `name`, `listen`,
`upstream` (both "host:port"), `enabled` and `toxics`; `listen` with port 0 gets a free
port and shows it. These are the fabric's own TCP proxies; every connection is a client.
"""

from __future__ import annotations

from typing import Any

from peerlab.errors import UsageError
from peerlab.fabric.errors import Conflict, NotFound
from peerlab.fabric.links import Links, LinkToxic
from peerlab.fabric.spec import ToxicSpec
from peerlab.fabric.tcp import TcpProxy

DEFAULT_LISTEN = "127.0.0.1:0"


def _address(value: Any, field: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(
            f"bad request body: {field} is {value!r}",
            field=field,
            hint='an address "host:port", such as "127.0.0.1:26379"',
        )
    return host.strip("[]"), int(port)


def _missing(field: str) -> UsageError:
    return UsageError(f"missing required field: {field}", field=field)


def _text(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class ProxyCollection:
    """Proxies by name, as Toxiproxy's ProxyCollection keeps them."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.proxies: dict[str, TcpProxy] = {}

    def get(self, name: str) -> TcpProxy:
        try:
            return self.proxies[name]
        except KeyError:
            raise NotFound(
                "proxy not found",
                field="proxy",
                hint=f"proxies: {', '.join(self.proxies) or 'none'}",
            ) from None

    @staticmethod
    def to_dict(proxy: TcpProxy) -> dict[str, Any]:
        return {
            "name": proxy.name,
            "listen": _text(proxy.listen),
            "upstream": _text(proxy.upstream),
            "enabled": proxy.enabled,
            "toxics": [item.spec.to_dict() for item in proxy.links.toxics],
        }

    def _new(self, raw: Any, where: str = "") -> tuple[TcpProxy, bool]:
        if not isinstance(raw, dict):
            raise UsageError("bad request body: a proxy is a JSON object", field="proxy")
        if not raw.get("name"):
            raise _missing("name" + where)
        if not raw.get("upstream"):
            raise _missing("upstream" + where)
        proxy = TcpProxy(
            str(raw["name"]),
            _address(raw.get("listen") or DEFAULT_LISTEN, "listen"),
            _address(raw["upstream"], "upstream"),
            Links(self.seed),
        )
        return proxy, bool(raw.get("enabled", True))

    async def create(self, raw: Any) -> TcpProxy:
        proxy, enabled = self._new(raw)
        if proxy.name in self.proxies:
            raise Conflict("proxy already exists", field="name")
        if enabled:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    async def populate(self, raw: Any) -> tuple[list[TcpProxy], Exception | None]:
        """Create or replace proxies; those done before a failure, and the failure."""
        if not isinstance(raw, list):
            raise UsageError(
                "bad request body: populate takes a JSON array of proxies", field="proxies"
            )
        wanted = [self._new(item, f" at proxy {i}") for i, item in enumerate(raw, 1)]
        done: list[TcpProxy] = []
        for proxy, enabled in wanted:
            existing = self.proxies.get(proxy.name)
            if existing is not None and (existing.listen, existing.upstream) == (
                proxy.listen,
                proxy.upstream,
            ):
                done.append(existing)
                continue
            try:
                if existing is not None:
                    await existing.stop()
                if enabled:
                    await proxy.start()
            except Exception as exc:  # reported with the proxies made so far, as Toxiproxy
                return done, exc
            self.proxies[proxy.name] = proxy
            done.append(proxy)
        return done, None

    async def update(self, name: str, raw: Any) -> TcpProxy:
        """Change `listen`, `upstream` or `enabled`; a new address restarts the proxy."""
        proxy = self.get(name)
        if not isinstance(raw, dict):
            raise UsageError("bad request body: a proxy is a JSON object", field="proxy")
        listen = _address(raw["listen"], "listen") if "listen" in raw else proxy.listen
        upstream = _address(raw["upstream"], "upstream") if "upstream" in raw else proxy.upstream
        enabled = bool(raw.get("enabled", proxy.enabled))
        if (listen, upstream) != (proxy.listen, proxy.upstream):
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
        if enabled:
            await proxy.start()
        else:
            await proxy.stop()
        return proxy

    async def delete(self, name: str) -> None:
        await self.get(name).stop()
        del self.proxies[name]

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        for proxy in self.proxies.values():
            await proxy.start()
            proxy.links.toxics.clear()

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.stop()

    def add_toxic(self, name: str, raw: Any) -> ToxicSpec:
        spec = ToxicSpec.from_dict(raw, protocol="tcp")
        self.get(name).links.toxics.add(LinkToxic(spec))
        return spec
