"""Suite-wide settings: one torch thread per process (tiny models are overhead-bound, and two busy
threads on a 2-core machine slow every subprocess down), quiet progress bars, library chatter off."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PRMKIT_QUIET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
