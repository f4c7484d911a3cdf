"""Benchmarks: `python -m bench` runs them all; ratios are against baselines measured in the same run."""
