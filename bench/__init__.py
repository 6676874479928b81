"""Benchmarks: how fast the lab's tools run, measured side by side (`make bench-sim`)."""
