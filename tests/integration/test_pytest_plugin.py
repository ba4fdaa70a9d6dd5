"""peerlab's pytest plugin, run on throwaway test files with pytester."""

import json
from pathlib import Path

import pytest

MANIFEST = Path(__file__).parents[1] / "fixtures" / "httpd.toml"


def test_failing_scenario_keeps_artifacts_and_prints_replay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        def test_breaks(peerlab_env):
            nodes = peerlab_env.start({str(MANIFEST)!r}, 2)
            (nodes[0].data_dir / "evidence.txt").write_text("state at failure")
            assert False, "deliberate failure"

        def test_passes(peerlab_env):
            assert peerlab_env.start({str(MANIFEST)!r}, 1)[0].state == "running"
    """)
    result = pytester.runpytest("--peerlab-seed", "4242", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*seed 4242; replay: pytest '*test_breaks' --peerlab-seed 4242*"])

    results = pytester.path / "peerlab-results"
    failed_dir = next(results.glob("*test_breaks*"))
    outcome = json.loads((failed_dir / "result.json").read_text())
    assert outcome["outcome"] == "failed" and outcome["seed"] == 4242
    assert (failed_dir / "nodes/A/data/evidence.txt").read_text() == "state at failure"
    assert (failed_dir / "nodes/A/stderr.log").exists()
    passed_dir = next(results.glob("*test_passes*"))
    assert json.loads((passed_dir / "result.json").read_text())["outcome"] == "passed"
    assert not (passed_dir / "nodes").exists()


def test_seed_option_fixes_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_seed(peerlab_env, peerlab_seed):
            assert peerlab_env.seed == peerlab_seed == 99
    """)
    pytester.runpytest("--peerlab-seed", "99").assert_outcomes(passed=1)
