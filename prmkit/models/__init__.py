"""Model loading (local folder or Hub id, clear errors) and locally made models (tiny, or random of real shapes)."""

from prmkit.models.loading import load_causal_lm, load_tokenizer, resolve_model
from prmkit.models.tiny import make_tiny_model, train_tokenizer

__all__ = ["load_causal_lm", "load_tokenizer", "make_tiny_model", "resolve_model", "train_tokenizer"]
