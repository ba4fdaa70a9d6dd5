"""A failing simulated run shrinks to the smallest plan that still fails the same way, shown
on a built-in syncpeer mutant; a failing sim test in pytest is shrunk by itself."""

from __future__ import annotations

from dataclasses import replace

import pytest

from peerlab.plan import Plan
from peerlab.sim.runs import run
from peerlab.sim.shrink import shrink

pytestmark = pytest.mark.chaos

MUTANT = "forget-tombstone"  # deletes never leave the node that made them
SEED = 3


def test_a_mutant_run_shrinks_to_a_minimal_plan_that_fails_alike() -> None:
    first = run(Plan("chaos", SEED, {"mutants": MUTANT}))
    assert first.failed == ("convergence",), first.summary()
    assert first.plan.steps is not None and first.plan.ops is not None
    shrunk = shrink(first.plan, first.failed, tries=60)
    small = shrunk.plan
    assert small.steps is not None and small.ops is not None
    assert len(small.steps) < len(first.plan.steps), shrunk.summary()
    assert len(small.ops) < len(first.plan.ops), shrunk.summary()
    assert any(op.op.f == "delete" for op in small.ops), "the mutant needs a delete to show"

    again = run(small)
    assert again.failed == first.failed, "the shrunk plan does not fail the same way"
    assert again.history_sha256 == run(small).history_sha256, "the shrunk plan does not replay"
    honest = run(replace(small, params={**small.params, "mutants": ""}))
    assert not honest.failed, "the shrunk plan fails without the mutant: it shows no bug"
    if shrunk.complete:
        for index in range(len(small.steps)):  # 1-minimal: every fault left is needed
            fewer = replace(small, steps=small.steps[:index] + small.steps[index + 1 :])
            assert run(fewer).failed != first.failed, f"fault {index} is not needed"


FAILING_TEST = f"""
import pytest
from peerlab.plan import Plan
from peerlab.systems.syncpeer_chaos import chaos

pytestmark = pytest.mark.sim


def test_deletes_reach_everyone(peerlab_env):
    ran = chaos(peerlab_env, Plan("chaos", {SEED}, {{"mutants": "{MUTANT}"}}))
    assert all(v.ok for v in ran.verdicts), [v.checker for v in ran.verdicts if not v.ok]
"""


def test_a_failing_sim_test_is_shrunk_by_itself(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken=FAILING_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--peerlab-backend", "sim", "--peerlab-shrink", "12"
    )
    text = result.stdout.str()
    assert result.ret == 1, text[-3000:]
    assert "peerlab shrink" in text and "the smallest failing plan found" in text, text[-3000:]
    replay = next(line for line in text.splitlines() if "peerlab sim run --plan" in line)
    plan = Plan.load(pytester.path / replay.split("--plan ", 1)[1].strip())
    assert plan.steps is not None and plan.ops is not None
    assert run(plan).failed == ("convergence",)
