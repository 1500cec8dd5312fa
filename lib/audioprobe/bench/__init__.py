"""Micro-benchmarks run by hand (`python -m audioprobe.bench.<name>`), not by the pipeline."""
