"""The search stage: PRM-guided test-time search (best-of-N, weighted majority, beam, DVTS, early rejection)
with compute accounting, so methods are compared at equal generated tokens."""
