"""The annotate stage: automatic step labels for solutions (Monte Carlo rollouts, binary search, judges)."""
