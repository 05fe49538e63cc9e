"""The score stage: per-step scores for solutions from a PRM (discriminative, generative or bidirectional).

`prmkit.score.StepScorer` is the same scoring as a Python call, for RL reward functions."""

from prmkit.score.step_scorer import StepScorer

__all__ = ["StepScorer"]
