"""The control API over HTTP/JSON: the document is generated from the code and kept in docs/,
loopback TCP needs the bearer token, every error has one shape, and schemathesis fuzzing it
from its own OpenAPI document draws no 5xx and only documented statuses and shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[3]
# A cheap system: nodes that only sleep, behind the fabric so every net verb works.
SLEEPER = """
[system]
name = "sleeper"
[launch]
command = ["sleep", "3600"]
[ports]
p = 7000
[readiness]
type = "none"
"""


def request(url: str, body: Any = None, token: str | None = None, raw: bytes | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def api(cli, tmp_path: Path) -> dict[str, str]:
    manifest = tmp_path / "sleeper.toml"
    manifest.write_text(SLEEPER)
    out = cli("up", "--system", str(manifest), "--peers", "3", "--api-port", "0").stdout
    state = json.loads((tmp_path / "home/envs/default/state.json").read_text())
    token_file = Path(state["api"]["token_file"])
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert state["api"]["url"] in out
    return {"url": state["api"]["url"], "token": token_file.read_text().strip()}


def test_the_reference_document_is_generated_and_kept_in_docs(cli) -> None:
    printed = json.loads(cli("api", "openapi").stdout)
    kept = json.loads((ROOT / "docs/api/openapi.json").read_text())
    assert printed == kept, "run `peerlab api openapi > docs/api/openapi.json`"
    kill = kept["paths"]["/v1/env/kill"]["post"]
    assert kill["summary"].startswith("Kill the node at once")
    schema = kept["components"]["schemas"]["EnvKill"]
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False


def test_tcp_needs_the_token_and_errors_have_one_shape(api: dict[str, str]) -> None:
    url, token = api["url"], api["token"]
    assert request(f"{url}/v1/env/peers", {})[0] == 401
    assert request(f"{url}/v1/env/peers", {}, token="wrong")[0] == 401
    status, peers = request(f"{url}/v1/env/peers", {}, token)
    assert status == 200 and [p["name"] for p in peers["result"]] == ["A", "B", "C"]
    answers = {
        "unknown operation": request(f"{url}/v1/env/explode", {}, token),
        "unknown peer": request(f"{url}/v1/env/kill", {"name": "Q"}, token),
        "wrong type": request(f"{url}/v1/env/logs", {"name": "A", "lines": "5"}, token),
        "unknown argument": request(f"{url}/v1/env/kill", {"nme": "A"}, token),
        "not json": request(f"{url}/v1/env/kill", token=token, raw=b"\xff\xfe{"),
        "same group twice": request(f"{url}/v1/net/partition", {"groups": [["A"], ["A"]]}, token),
        "rolling too fast": request(f"{url}/v1/net/rolling", {"period_s": 1e-6}, token),
        "made-up cursor": request(f"{url}/v1/observe/timeline", {"cursor": {"x": 1}}, token),
        "skew past any date": request(f"{url}/v1/env/skew", {"name": "A", "seconds": 1e300}, token),
        "negative lines": request(f"{url}/v1/env/logs", {"name": "A", "lines": -1}, token),
    }
    statuses = {what: status for what, (status, _) in answers.items()}
    assert statuses == {
        "unknown operation": 404,
        "unknown peer": 400,
        "wrong type": 400,
        "unknown argument": 400,
        "not json": 400,
        "same group twice": 400,
        "rolling too fast": 400,
        "made-up cursor": 400,
        "skew past any date": 400,
        "negative lines": 400,
    }
    for _, body in answers.values():
        assert set(body) == {"error", "hint", "usage", "status"} and body["usage"] is True
    assert "argument 'lines'" in answers["wrong type"][1]["error"]
    status, shown = request(f"{url}/v1/net/show", {}, token)
    assert status == 200 and shown["result"]["cut"] == [] and shown["result"]["faults"] == []
    status, spec = request(f"{url}/openapi.json", token=token)
    assert status == 200 and "/v1/net/partition" in spec["paths"]
    assert "/v1/adapter/file_add" not in spec["paths"]  # this system has no adapter


# Operations the bounded fuzz leaves out: they start nodes by the thousand (add_peers),
# write wherever they are told (results.save), or run for minutes (scenario.run).
SLOW_OR_WRITING = ["env.add_peers", "env.add_peer", "results.save", "scenario.run"]


def fuzz(api: dict[str, str], tmp_path: Path, max_examples: int, max_time: int):
    args = [str(Path(sys.executable).with_name("schemathesis")), "run"]
    args += [f"{api['url']}/openapi.json", "-H", f"Authorization: Bearer {api['token']}"]
    args += ["--checks", "not_a_server_error,status_code_conformance,content_type_conformance"]
    args += ["--checks", "response_schema_conformance,negative_data_rejection"]
    args += ["-n", str(max_examples), "--max-time", str(max_time), "--seed", "17"]
    args += ["--phases", "examples,coverage,fuzzing", "--request-timeout", "60"]
    for operation in SLOW_OR_WRITING:
        args += ["--exclude-operation-id", operation]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    return subprocess.run(
        args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=max_time + 300
    )


def test_fuzzing_the_api_finds_no_server_error(api: dict[str, str], tmp_path: Path) -> None:
    result = fuzz(api, tmp_path, max_examples=5, max_time=90)
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary + result.stderr[-2000:]
    assert "passed" in summary.lower()
