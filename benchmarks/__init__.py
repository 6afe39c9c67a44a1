"""Reproducible performance runs; each writes out/bench/<name>.json (see shared BENCHMARKS.md)."""
