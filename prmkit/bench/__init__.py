"""Benchmarks for PRMs. Stable API: `processbench_f1(labels, predictions) -> {'error_acc', 'correct_acc', 'f1', ...}`.

The metric functions here are pure Python (no model, no torch), so other tools can import them cheaply.
"""

from prmkit.bench.bestofn import curves as bestofn_curves
from prmkit.bench.prmbench import prmbench_metrics
from prmkit.bench.processbench import average_f1, first_below, processbench_f1, tune_threshold

__all__ = ["average_f1", "bestofn_curves", "first_below", "prmbench_metrics", "processbench_f1", "tune_threshold"]
