"""Benchmarks: each measures its contenders side by side in one run and prints JSON."""
