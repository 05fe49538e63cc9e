"""`prmkit train`: PRM fine-tuning (prm, implicit) and policy SFT on transformers' Trainer.

A newcomer finds the objectives in `objectives/`, the shared Trainer machinery in `trainer.py`, the
starting model in `init_model.py`, held-out metrics in `metrics.py` and the CLI stage in `command.py`.
"""
