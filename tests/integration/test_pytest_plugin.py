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
    # A passing test keeps the minimum; the summary says where results went.
    assert sorted(p.name for p in passed_dir.iterdir()) == ["junit.xml", "result.json"]
    assert (failed_dir / "timeline.jsonl").exists() and (failed_dir / "history.jsonl").exists()
    result.stdout.fnmatch_lines([f"peerlab: results of 2 test(s) in {results}*"])


def test_all_artifacts_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        def test_passes(peerlab_env):
            peerlab_env.start({str(MANIFEST)!r}, 1)
    """)
    pytester.runpytest("--peerlab-artifacts", "all").assert_outcomes(passed=1)
    passed_dir = next((pytester.path / "peerlab-results").glob("*test_passes*"))
    assert (passed_dir / "timeline.jsonl").exists()


def test_tc_ids_in_docstrings_are_selectable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_friend_sync():
            \"\"\"TC-002: friends sync a file.\"\"\"

        def test_other():
            \"\"\"TC-5 and TC 7\"\"\"
    """)
    result = pytester.runpytest("-k", "TC002", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_friend_sync PASSED*"])
    pytester.runpytest("-k", "TC7 and TC5").assert_outcomes(passed=1)
    pytester.runpytest("-k", "TC003").assert_outcomes()


def test_seed_option_fixes_the_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        def test_seed(peerlab_env, peerlab_seed):
            assert peerlab_env.seed == peerlab_seed == 99
    """)
    pytester.runpytest("--peerlab-seed", "99").assert_outcomes(passed=1)


def test_final_checks_fail_a_test_at_teardown_unless_skipped(pytester: pytest.Pytester) -> None:
    """A plugin's `pytest_peerlab_final_checks` judge every test's network before it goes: an
    invalid verdict fails the test (recorded in its history), a marker skips a check."""
    pytester.makeconftest("""
        import pytest
        from peerlab.checkers.verdict import Verdict

        @pytest.hookimpl
        def pytest_peerlab_final_checks(env, skip):
            if "always_invalid" in skip:
                return []
            return [Verdict("always_invalid", "invalid", "the key leaked in A stdout, line 3")]
    """)
    pytester.makepyfile("""
        import pytest

        def test_judged(peerlab_env):
            pass

        @pytest.mark.peerlab_skip_checks("always_invalid")
        def test_skipped(peerlab_env):
            pass

        def test_without_a_network():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*always_invalid: the key leaked in A stdout, line 3*"])
    judged = next((pytester.path / "peerlab-results").glob("*test_judged*"))
    outcome = json.loads((judged / "result.json").read_text())
    assert outcome["outcome"] == "failed"
    assert [v["checker"] for v in outcome.get("verdicts", [])] == ["always_invalid"]


def test_a_cut_link_that_carried_bytes_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        import socket

        from peerlab.fabric.links import Links
        from peerlab.fabric.tcp import TcpProxy

        def exchange(env, src, dst):
            sock = socket.socket()
            sock.bind((env.node(src).bind_address, 0))  # as node src dials
            sock.connect((env.node(dst).address, 8000))
            sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
            return sock.recv(100)

        def test_leaky(peerlab_env, monkeypatch):
            peerlab_env.start({str(MANIFEST)!r}, 2)
            monkeypatch.setattr(Links, "blocked", lambda self, src, dst: False)
            monkeypatch.setattr(TcpProxy, "cut", lambda self: 0)
            peerlab_env.net.partition([["A"], ["B"]])
            assert exchange(peerlab_env, "A", "B").startswith(b"HTTP")

        def test_faithful(peerlab_env):
            peerlab_env.start({str(MANIFEST)!r}, 2)
            peerlab_env.net.partition([["A"], ["B"]])
            try:
                answer = exchange(peerlab_env, "A", "B")
            except OSError:
                answer = b""
            assert answer == b""
    """)
    # In a process of its own: writing report.html imports numpy, which a second in-process
    # run could not import again.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*fault-fidelity: *A->B forwarded * bytes while cut*"])
    results = pytester.path / "peerlab-results"
    leaky = json.loads(next(results.glob("*test_leaky*")).joinpath("result.json").read_text())
    assert leaky["outcome"] == "failed"
    (verdict,) = [v for v in leaky["verdicts"] if v["checker"] == "fault-fidelity"]
    assert verdict["valid"] == "invalid" and verdict["evidence"]["leaks"][0]["link"] == "A->B"
    assert (next(results.glob("*test_leaky*")) / "report.html").exists()
    faithful = json.loads(next(results.glob("*test_faithful*")).joinpath("result.json").read_text())
    assert [v["valid"] for v in faithful["verdicts"]] == ["valid"]
