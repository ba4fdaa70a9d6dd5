"""One node of a WireGuard mesh (the `wgmesh` system): userspace WireGuard and a small API.

On start the node makes (or reuses) its key pair, runs `wireguard-go` in the foreground on a
device of its own, gives it the mesh address 10.42.0.N/16 (N = index + 1) and listens for
WireGuard on the node's own address. Its HTTP API, on the node's address, is how the harness
plays the mesh's coordinator and looks inside:

- `GET /info`: name, public key, mesh address, WireGuard endpoint (readiness probe);
- `POST /peers`: `[{"public_key", "endpoint", "mesh_address"}, ...]` become its peers, with
  the persistent keepalive given at start;
- `GET /ping?to=10.42.0.2`: one ping across the mesh (`{"ok": bool}`);
- `GET /wg`: each peer's endpoint as this node sees it and its latest handshake.

The device needs NET_ADMIN (and the ping NET_RAW) within the node's network namespace: the
manifest grants them, which only the netns backend can. The device is named after the node's
address, so the nodes of runs side by side never share a name (wireguard-go keeps its control
socket in /var/run/wireguard/NAME.sock).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

MESH = ipaddress.IPv4Network("10.42.0.0/16")


def run(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout.strip()


class Mesh:
    def __init__(self, options: argparse.Namespace) -> None:
        self.name = options.name
        self.address = options.address
        self.port = options.wg_port
        self.keepalive = options.keepalive
        self.device = "wg" + ipaddress.IPv4Address(options.address).packed.hex()
        self.mesh_address = str(MESH[options.index + 1])
        data = Path(options.data_dir)
        key = data / "private.key"
        if not key.exists():
            os.umask(0o077)
            key.write_text(run("wg", "genkey") + "\n")
        self.key_file = key
        self.public_key = run("wg", "pubkey", stdin=key.read_text())
        self.daemon: subprocess.Popen[bytes] | None = None

    def up(self) -> None:
        env = {**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
        self.daemon = subprocess.Popen(["wireguard-go", "-f", self.device], env=env)
        deadline = time.monotonic() + 10
        while True:
            try:
                run("wg", "show", self.device)
                break
            except RuntimeError:
                if self.daemon.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        run(
            "wg",
            "set",
            self.device,
            "listen-port",
            str(self.port),
            "private-key",
            str(self.key_file),
        )
        run("ip", "address", "add", f"{self.mesh_address}/{MESH.prefixlen}", "dev", self.device)
        run("ip", "link", "set", "dev", self.device, "up")

    def down(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(5)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "public_key": self.public_key,
            "mesh_address": self.mesh_address,
            "endpoint": f"{self.address}:{self.port}",
        }

    def set_peers(self, peers: list[dict[str, str]]) -> None:
        for peer in peers:
            run(
                "wg", "set", self.device, "peer", peer["public_key"],
                "endpoint", peer["endpoint"],
                "allowed-ips", f"{peer['mesh_address']}/32",
                "persistent-keepalive", str(self.keepalive),
            )  # fmt: skip

    def ping(self, to: str) -> dict[str, Any]:
        done = subprocess.run(
            ["ping", "-n", "-c", "1", "-W", "1", "-I", self.device, to],
            capture_output=True,
            text=True,
            check=False,
        )
        return {"ok": done.returncode == 0, "output": done.stdout.strip()[-300:]}

    def show(self) -> dict[str, Any]:
        peers = {}
        for line in run("wg", "show", self.device, "dump").splitlines()[1:]:
            key, _, endpoint, allowed, handshake, received, sent, _ = line.split("\t")
            peers[key] = {
                "endpoint": None if endpoint == "(none)" else endpoint,
                "allowed_ips": allowed,
                "latest_handshake": int(handshake),
                "rx_bytes": int(received),
                "tx_bytes": int(sent),
            }
        return {"device": self.device, "peers": peers}


def serve(mesh: Mesh, address: str, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/info":
                self._answer(200, mesh.info())
            elif url.path == "/ping":
                self._answer(200, mesh.ping(parse_qs(url.query).get("to", [""])[0]))
            elif url.path == "/wg":
                self._answer(200, mesh.show())
            else:
                self._answer(404, {"error": "unknown path"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                mesh.set_peers(json.loads(self.rfile.read(length)))
            except (RuntimeError, ValueError, KeyError) as exc:
                self._answer(400, {"error": str(exc)})
                return
            self._answer(200, mesh.show())

        def log_message(self, format: str, *args: Any) -> None:
            sys.stdout.write(f"{self.address_string()} {format % args}\n")

    server = ThreadingHTTPServer((address, port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwinds to main's clean-up
    print(json.dumps({"event": "mesh_up", **mesh.info()}), flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wgmesh-node")
    parser.add_argument("--name", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--wg-port", type=int, default=51820)
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--keepalive", type=int, default=2)
    parser.add_argument("--data-dir", required=True)
    options = parser.parse_args(argv)
    mesh = Mesh(options)
    mesh.up()
    try:
        serve(mesh, options.address, options.http_port)
    finally:
        mesh.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
