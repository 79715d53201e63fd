"""Benchmarks anyone can run, one module each: `python -m bench.<name>`."""
