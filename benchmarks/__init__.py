"""Benchmark scripts, run from the repository root as `python -m benchmarks.NAME ...` (accuracy,
clustering_stage, distill_variants, few_labels, scale, size_sweep, speed, and gpu_data and
gpu_run for the GPU run); each prints the table its docs/ page shows."""
