"""Benchmarks, not tests: figures beside a baseline measured in the same run; see docs/performance.md."""
