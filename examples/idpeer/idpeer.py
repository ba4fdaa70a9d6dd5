"""idpeer: a tiny peer-to-peer program that is known by an id derived from its own key.

It stands for the many real systems that create a key pair at their first start and are
known by an id derived from it (a device ID from a TLS certificate, a libp2p peer ID, a
WireGuard public key), so each node's config must list its peers' ids:

    idpeer.py init --home DIR     make DIR/key.pem once; print "Device ID: XXXXX-XXXXX-..."
    idpeer.py run --home DIR      read DIR/config.json, listen, dial every peer it lists

Peers authenticate each other: a hello carries the sender's public key and a signature over
the id it meant to reach; the receiver checks that the key gives the claimed id and that the
signature is good, then answers in kind. `GET /status` on the http port tells which ids it is
connected to. Logs are plain text with a time on each line, as many Go programs write them.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def log(text: str) -> None:
    stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime())
    print(f"{stamp}.{int(time.time() * 1e6) % 1_000_000:06d} {text}", flush=True)


def device_id(public: bytes) -> str:
    """Five groups of five base32 letters of the key's SHA-256."""
    digest = base64.b32encode(hashlib.sha256(public).digest()).decode()[:25]
    return "-".join(digest[i : i + 5] for i in range(0, 25, 5))


def load_key(home: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key((home / "key.pem").read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def init(home: Path) -> int:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "key.pem"
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        # A default config, as real programs write one: the manifest's [files] replace it.
        (home / "config.json").write_text(json.dumps({"listen": "127.0.0.1:22000", "peers": []}))
    print(f"Device ID: {device_id(load_key(home).public_key().public_bytes(*RAW))}")
    return 0


class Peer:
    def __init__(self, home: Path) -> None:
        self.key = load_key(home)
        self.public = self.key.public_key().public_bytes(*RAW)
        self.id = device_id(self.public)
        self.config = json.loads((home / "config.json").read_text())
        self.connected: dict[str, asyncio.StreamWriter] = {}

    def hello(self, to: str) -> bytes:
        signature = self.key.sign(f"idpeer-hello:{to}".encode())
        body = {
            "id": self.id,
            "key": base64.b64encode(self.public).decode(),
            "sig": base64.b64encode(signature).decode(),
        }
        return json.dumps(body).encode() + b"\n"

    def check(self, line: bytes) -> str:
        """The sender's id, if its hello proves it holds the key behind that id."""
        hello = json.loads(line)
        public = base64.b64decode(hello["key"])
        if device_id(public) != hello["id"]:
            raise ValueError("the key does not give the claimed id")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(
                base64.b64decode(hello["sig"]), f"idpeer-hello:{self.id}".encode()
            )
        except InvalidSignature:
            raise ValueError("bad signature") from None
        return str(hello["id"])

    async def keep(self, peer_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected[peer_id] = writer
        log(f"connected to {peer_id}")
        try:
            while await reader.read(1024):
                pass
        except OSError:
            pass
        finally:
            if self.connected.get(peer_id) is writer:
                del self.connected[peer_id]
                log(f"connection closed with {peer_id}")
            writer.close()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer_id = self.check(await asyncio.wait_for(reader.readline(), 5))
        except (ValueError, KeyError, TimeoutError, OSError) as exc:
            log(f"refused a connection: {exc}")
            writer.close()
            return
        writer.write(self.hello(peer_id))
        await writer.drain()
        if peer_id in self.connected:
            writer.close()  # one connection per pair is enough
            return
        await self.keep(peer_id, reader, writer)

    async def dial(self, peer: dict[str, str], bind: str) -> None:
        host, port = peer["address"].rsplit(":", 1)
        while True:
            if peer["id"] not in self.connected:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, int(port), local_addr=(bind, 0)), 3
                    )
                    writer.write(self.hello(peer["id"]))
                    await writer.drain()
                    answer = self.check(await asyncio.wait_for(reader.readline(), 5))
                    if answer != peer["id"]:
                        raise ValueError(f"expected {peer['id']}, met {answer}")
                    if answer in self.connected:
                        writer.close()
                    else:
                        asyncio.ensure_future(self.keep(answer, reader, writer))
                except (OSError, ValueError, KeyError, TimeoutError, json.JSONDecodeError) as exc:
                    log(f"dial {peer['id']} at {peer['address']} failed: {exc or type(exc).__name__}")
            await asyncio.sleep(0.5)

    async def status(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readline()
        while (await reader.readline()).strip():
            pass
        if request.split()[1:2] != [b"/status"]:
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        else:
            body = json.dumps(
                {"id": self.id, "connected": sorted(self.connected), "peers": len(self.config["peers"])}
            ).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        await writer.drain()
        writer.close()

    async def run(self) -> None:
        host, port = self.config["listen"].rsplit(":", 1)
        server = await asyncio.start_server(self.accept, host, int(port))
        status_host, status_port = self.config["status"].rsplit(":", 1)
        admin = await asyncio.start_server(self.status, status_host, int(status_port))
        log(f"device {self.id} listening on {self.config['listen']}")
        others = [p for p in self.config["peers"] if p["id"] != self.id]
        async with server, admin:
            await asyncio.gather(*(self.dial(peer, host) for peer in others))
            await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="idpeer")
    parser.add_argument("command", choices=["init", "run"])
    parser.add_argument("--home", type=Path, required=True)
    options = parser.parse_args(argv)
    if options.command == "init":
        return init(options.home)
    try:
        asyncio.run(Peer(options.home).run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
