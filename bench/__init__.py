"""Benchmarks, run by hand (not in CI); results go to docs/benchmarks.md."""
