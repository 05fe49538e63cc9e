"""prmkit: a toolkit for process supervision (step labels, PRM training, scoring, benchmarks, search)."""

__version__ = "0.1.0"
