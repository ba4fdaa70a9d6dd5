"""`peerlab net ...` and `peerlab proxy serve`: units parsed strictly, numbers sent to env.net."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from peerlab.cli import net
from peerlab.cli.proxy import register as register_proxy
from peerlab.errors import UsageError

LINKS = {
    "links": [
        {
            "src": "A",
            "dst": "B",
            "protocol": "tcp",
            "open": 2,
            "attribution": {"owner": 2},
            "bytes_up": 18204,
            "bytes_down": 9880,
            "cut": False,
            "faults": ["latency:A->B"],
        },
        {
            "src": "A",
            "dst": "C",
            "protocol": "tcp",
            "open": 0,
            "attribution": {},
            "bytes_up": 0,
            "bytes_down": 0,
            "cut": True,
            "faults": ["partition"],
        },
    ],
    "unattributed": [
        {
            "protocol": "tcp",
            "src": "127.0.0.1:40000",
            "dst": "127.10.0.3:2380",
            "node": "C",
            "reason": "no live process holds the source socket",
        }
    ],
    "attribution": {
        "counts": {"owner": 2},
        "owner_lookups": 2,
        "owner_lookup_ms": {"p50": 1.0, "p99": 2.0, "max": 2.0},
    },
}


class FakeRemote:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, path: str, **kwargs: Any) -> Any:
        self.calls.append((path, kwargs))
        if path == "net.show":
            return {
                "faults": [
                    {
                        "kind": "link",
                        "name": "latency:A->B",
                        "src": "A",
                        "dst": "B",
                        "type": "latency",
                        "attributes": {"latency": 500, "jitter": 0},
                        "toxicity": 1.0,
                    }
                ],
                "links": [],
                "partition": None,
                "cut": [["A", "C"]],
                "proxies": [
                    {
                        "node": "A",
                        "port": "http",
                        "protocol": "tcp",
                        "listen": "127.10.0.2:80",
                        "upstream": "127.130.0.2:80",
                        "connections": 2,
                        "accepted": 3,
                        "bytes_up": 10,
                        "bytes_down": 20,
                    }
                ],
            }
        if path == "net.reset":
            return 2
        if path == "net.links":
            return LINKS
        return {
            "kind": "link",
            "name": "x",
            "src": kwargs.get("src"),
            "dst": kwargs.get("dst"),
            "type": "latency",
            "attributes": {"latency": 1},
            "toxicity": 1,
        }


@pytest.fixture
def cli(monkeypatch):
    remote = FakeRemote()
    monkeypatch.setattr(net, "remote_env", lambda ctx: remote)
    app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context) -> None:
        ctx.obj = {"env": "default"}

    net.register(app)
    register_proxy(app)

    def run(*args: str) -> tuple[Any, list]:
        result = CliRunner().invoke(app, list(args))
        return result, remote.calls

    return run


@pytest.mark.parametrize(
    ("args", "call"),
    [
        (
            ["net", "partition", "A,B", "C,D"],
            (
                "net.partition",
                {"groups": [["A", "B"], ["C", "D"]], "one_way": False, "duration_s": None},
            ),
        ),
        (
            ["net", "partition", "--one-way", "A", "B"],
            ("net.partition", {"groups": [["A"], ["B"]], "one_way": True, "duration_s": None}),
        ),
        (
            ["net", "partition", "A", "B,C", "--for", "1.5s"],
            ("net.partition", {"groups": [["A"], ["B", "C"]], "one_way": False, "duration_s": 1.5}),
        ),
        (
            ["net", "latency", "500ms", "--jitter", "100ms", "--from", "A", "--to", "B"],
            ("net.latency", {"latency_ms": 500, "jitter_ms": 100, "src": "A", "dst": "B"}),
        ),
        (["net", "limit", "10KB/s"], ("net.limit", {"rate_kb_s": 10, "src": None, "dst": None})),
        (
            ["net", "limit", "1MB/s", "--to", "C"],
            ("net.limit", {"rate_kb_s": 1000, "src": None, "dst": "C"}),
        ),
        (
            ["net", "loss", "0.5%", "--from", "B"],
            ("net.loss", {"percent": 0.5, "src": "B", "dst": None}),
        ),
        (["net", "reset", "A", "B"], ("net.reset", {"src": "A", "dst": "B"})),
        (
            ["net", "rolling", "10s", "--nodes", "A,B"],
            ("net.rolling", {"period_s": 10, "nodes": ["A", "B"]}),
        ),
        (["net", "heal"], ("net.heal", {})),
        (["net", "clear"], ("net.clear", {})),
    ],
)
def test_commands_send_numbers(cli, args, call):
    result, calls = cli(*args)
    assert result.exit_code == 0, result.output
    assert calls == [call]


@pytest.mark.parametrize(
    "args",
    [
        ["net", "latency", "500"],
        ["net", "limit", "10KB"],
        ["net", "loss", "10"],
        ["net", "latency", "5ms", "--jitter", "x"],
        ["net", "partition", "--one-way", "A", "B", "C"],
        ["net", "partition", "A", "--for", "soon"],
        ["net", "latency", "-5ms"],
        ["net", "latency", "5ms", "--jitter", "-1ms"],
        ["net", "limit", "-10KB/s"],
        ["net", "loss", "-3%"],
        ["net", "rolling", "-2s"],
    ],
)
def test_bad_values_are_usage_errors_and_nothing_is_sent(cli, args):
    result, calls = cli(*args)
    assert isinstance(result.exception, UsageError)
    assert calls == []
    if any(arg.startswith("-") and arg[1:2].isdigit() for arg in args):
        assert "is negative" in result.exception.message  # not "No such option: -5"


def test_show_prints_faults_cut_and_proxies(cli):
    result, _ = cli("net", "show")
    assert result.exit_code == 0, result.output
    for text in ("latency:A->B", "latency=500", "A -> B", "A-/->C", "127.10.0.2:80"):
        assert text in result.output


def test_links_prints_each_link_its_attribution_and_refusals(cli, monkeypatch):
    monkeypatch.setattr(net.console, "width", 160)  # a terminal wide enough for a row
    result, calls = cli("net", "links")
    assert result.exit_code == 0, result.output
    assert calls == [("net.links", {})]
    for text in ("A -> B", "owner 2", "18,204", "latency:A->B", "A -> C", "cut", "partition"):
        assert text in result.output
    assert "127.0.0.1:40000 -> 127.10.0.3:2380 (C)" in result.output
    assert "p99 2.0 ms" in result.output
    shown, _ = cli("net", "show")
    assert "peerlab net links" in shown.output


def test_describe_partitions():
    assert (
        net.describe(
            {"kind": "partition", "groups": [["A"], ["B"]], "one_way": True, "duration": 3}
        )
        == "A -/-> B for 3s"
    )
    assert (
        net.describe(
            {"kind": "partition", "groups": [["A", "B"], ["C"]], "one_way": False, "duration": None}
        )
        == "A,B | C"
    )


def test_proxy_serve_has_help(cli):
    result, _ = cli("proxy", "serve", "--help")
    assert result.exit_code == 0 and "--seed" in result.output
