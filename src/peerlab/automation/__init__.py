"""Test automation over the pytest plugin: reruns that tell flaky tests from real failures,
known issues, change-impact selection, per-test outcomes kept with the trends, coverage
gates. See docs/test-automation.md."""
