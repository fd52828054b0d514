"""Benchmark of the sandbox beside Stoplight Prism: ``python -m bench`` (see bench/run.py)."""
