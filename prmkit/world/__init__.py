"""The world stage: write an embedded task family's data sets (train/test problems, planted-error benchmark)."""
