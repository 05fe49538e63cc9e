"""The score stage: per-step scores for solutions from a PRM (discriminative, generative or bidirectional)."""
