"""The mutant catalog names every mutant syncpeer has, and only scenarios that exist."""

from __future__ import annotations

from pathlib import Path

from catalog import KILLERS

from syncpeer.core.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[2]


def test_every_mutant_has_scenarios_that_exist() -> None:
    assert set(KILLERS) == set(MUTANTS), "add the new mutant's killers to catalog.py"
    assert len(MUTANTS) >= 8
    for mutant, tests in KILLERS.items():
        assert tests, mutant
        for test in tests:
            path, _, name = test.partition("::")
            source = (ROOT / path).read_text()
            assert f"def {name.split('[')[0]}(" in source, f"{mutant}: no test {test}"
