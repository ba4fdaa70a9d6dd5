"""No secret leaves a peer (TC-301, syft 6.2): the check every syncpeer scenario ends with,
run here on purpose, and proven to catch a peer that logs its private keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest

from peerlab.env import Environment
from peerlab.systems.syncpeer import SyncpeerAdapter, SyncpeerError, assert_file_synced
from peerlab.systems.syncpeer_secrets import check_secrets

pytestmark = pytest.mark.security

MINUTES = b"board minutes: the merger closes on Friday; tell nobody but B.\n" * 20


def test_private_file_relayed_through_a_stranger_leaks_nowhere(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """TC-301: A publishes minutes for B only; C, B's friend, sees them listed, is handed
    the envelope and cannot open it. No peer's log, events, endpoints, the history or the
    artifacts hold any private key, nor the minutes anywhere but where B may show them."""
    env = peerlab_env
    adapter = syncpeer_net(3, [("A", "B"), ("B", "C")])
    sent = env.client("A").publish("minutes.txt", MINUTES, adapter.fingerprints(["B"]))
    assert_file_synced(env, "minutes.txt", ["B"], content=MINUTES)
    envelope = env.client("B").envelope("minutes.txt")
    assert hashlib.sha256(envelope).hexdigest() == sent["sha256"]
    with pytest.raises(SyncpeerError, match="not a recipient"):
        env.client("C").open_envelope(envelope)
    assert env.client("C").file("minutes.txt") is None, "C fetches nothing it cannot read"
    env.save_artifacts(snapshot=True)  # the snapshot's identity.json files are not a leak
    verdict = check_secrets(env)
    assert verdict.ok, f"{verdict.summary}\n{json.dumps(verdict.evidence, indent=1)}"
    assert verdict.stats["secrets"] == 7, "3 peers' two keys each, and the minutes"
    assert verdict.stats["endpoints_unanswered"] == 0
    assert verdict.stats["exposures"] > 3 * 9, "logs, endpoints, history, artifacts"


@pytest.mark.peerlab_skip_checks("no_secret_leaks")
def test_a_peer_that_logs_its_keys_is_caught(
    peerlab_env: Environment, syncpeer_net: Callable[..., SyncpeerAdapter]
) -> None:
    """The leak-private-key mutant on B: B logs its identity when it starts. The check
    fails naming B's keys, the form and where (its stdout and its served events)."""
    env = peerlab_env
    syncpeer_net(2)
    env.setenv("B", {"SYNCPEER_MUTANTS": "leak-private-key"})
    verdict = check_secrets(env)
    assert verdict.valid == "invalid"
    leaks = {(leak["secret"], leak["where"]) for leak in verdict.evidence["leaks"]}
    for key in ("B's signing key (Ed25519)", "B's box key (X25519)"):
        assert (key, "B stdout") in leaks and (key, "B GET /admin/events?since=0") in leaks
    assert not any(secret.startswith("A's") for secret, _ in leaks), "A did nothing wrong"
    assert {leak["form"] for leak in verdict.evidence["leaks"]} == {"base64"}
    text = json.dumps(verdict.to_json())
    identity = json.loads((env.node("B").data_dir / "identity.json").read_text())
    assert identity["sign_private"] not in text, "the evidence must not leak the key again"
