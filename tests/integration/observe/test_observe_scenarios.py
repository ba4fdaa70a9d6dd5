"""Named scenarios from Python: requirements, narration in the history, verdicts."""

from pathlib import Path

import pytest

from peerlab.env import Environment
from peerlab.errors import UsageError
from peerlab.scenarios import get, run_scenario, scenarios


def test_the_shipped_scenarios() -> None:
    assert set(scenarios()) == {"split-brain", "crash-during-sync", "high-latency"}
    with pytest.raises(UsageError, match="split-brain"):
        get("split-brian")


@pytest.fixture
def env(tmp_path: Path):
    with Environment("scenario", seed=11, workdir=tmp_path / "work") as environment:
        yield environment


def test_requirements_and_parameters_are_checked_first(env: Environment) -> None:
    env.start("syncpeer", 2)
    with pytest.raises(UsageError, match="needs 4 running peers; 2 are running"):
        run_scenario(env, "split-brain")
    with pytest.raises(UsageError, match="no parameter 'sizes'"):
        run_scenario(env, "crash-during-sync", {"sizes": 1})
    assert not [e for e in env.history.entries() if e.f.startswith("scenario")]


@pytest.mark.slow
def test_crash_during_sync_narrates_and_records_verdicts(env: Environment) -> None:
    env.start("syncpeer", 2)
    said: list[str] = []
    result = run_scenario(
        env,
        "crash-during-sync",
        {"size": 1_500_000, "rate_kb_s": 300, "timeout": 30},
        say=said.append,
    )
    assert result.passed, result.to_json()
    assert [v.checker for v in result.verdicts] == [
        "crash-during-sync/download-started",
        "crash-during-sync/intact-after-crash",
    ]
    assert any("killing B (SIGKILL)" in line for line in said)
    assert said[-1].startswith("scenario crash-during-sync passed")
    entries = env.history.entries()
    events = [e.f for e in entries if e.type == "event"]
    assert events.count("verdict") == 2 and "node_killed" in events
    steps = [e.data["text"] for e in entries if e.f == "scenario_step"]
    assert steps == said
    faults = [(e.f, e.value["type"]) for e in entries if e.type == "fault"]
    assert faults == [("apply", "bandwidth"), ("remove", "bandwidth")], "it cleans up"
