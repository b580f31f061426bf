"""Benchmark scripts, run from the repository root as `python -m benchmarks.NAME ...` (accuracy,
distill_variants, scale, size_sweep, speed); each prints the table its docs/ page shows."""
