"""The view stage: one self-contained HTML page of step-labelled or scored solutions."""
