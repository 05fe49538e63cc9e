"""Random-weight models of real shapes: what `make gpu-smoke` runs every GPU recipe's code path on.

Why: a GPU box (or a lent device) has no Hub access, yet a smoke run should stress the real sizes: a
Qwen2.5-Math-1.5B policy in vLLM, a Qwen2.5-Math-PRM-7B scorer, a 1.5B PRM fine-tune. The shapes here are those
models' published configs; the weights are random and the tokenizer is a byte tokenizer padded with filler tokens
to the full vocabulary, so every sampled id decodes (to a `<t123>`-like string). `tiny` shapes keep the same code
path small enough for a CPU test.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prmkit.errors import ModelError, RecipeError


@dataclass(frozen=True)
class Shape:
    """A decoder's published size (Qwen2 architecture)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int = 4096
    rope_theta: float = 10000.0

    def parameters(self) -> int:
        """Parameters of the body and embeddings (an untied LM head adds vocab x hidden more)."""
        h, kv = self.hidden_size, self.hidden_size // self.num_heads * self.num_kv_heads
        layer = h * h * 2 + h * kv * 2 + h + 2 * kv + 3 * h * self.intermediate_size + 2 * h
        return self.vocab_size * h + self.num_layers * layer + h


SHAPES: dict[str, Shape] = {
    # Qwen/Qwen2.5-Math-1.5B(-Instruct) config.json
    "qwen2.5-math-1.5b": Shape(1536, 28, 12, 2, 8960, 151936, True),
    # Qwen/Qwen2.5-Math-PRM-7B config.json (Qwen2.5-Math-7B's body)
    "qwen2.5-math-7b": Shape(3584, 28, 28, 4, 18944, 152064, False),
    # CPU stand-ins with the same structure (head_dim 32, grouped KV), for the test of the smoke's code path
    "tiny-policy": Shape(128, 2, 4, 2, 256, 1024, True),
    "tiny-prm": Shape(96, 2, 3, 1, 192, 1056, False),
}
"""A plain dict: the published shapes, looked up by `shape_named` with a clear error."""


def shape_named(name: str) -> Shape:
    if name not in SHAPES:
        raise RecipeError(f"model shape {name!r}: unknown; known: {', '.join(SHAPES)}")
    return SHAPES[name]


def full_vocab_tokenizer(vocab_size: int, extra_tokens: tuple[str, ...] = ()) -> Any:
    """A byte tokenizer (prmkit's `char` kind, with its chat template) padded with `<tN>` fillers so that it has
    exactly `vocab_size` tokens: a random model's every id decodes, and vLLM sees a tokenizer as large as the model."""
    from tokenizers import models, pre_tokenizers

    from prmkit.models import tiny

    def build(fillers: int) -> Any:
        symbols = [*tiny.SPECIAL_TOKENS, *sorted(pre_tokenizers.ByteLevel.alphabet())]
        symbols += [f"<t{i}>" for i in range(fillers)]
        base = tiny.byte_level(models.BPE({s: i for i, s in enumerate(symbols)}, []))
        return tiny.train_tokenizer(extra_tokens=extra_tokens, chat_template=True, base=base)

    fillers = vocab_size - len(build(0))
    if fillers < 0:
        raise ModelError(f"vocab_size {vocab_size} is smaller than the byte tokenizer itself ({len(build(0))})")
    tokenizer = build(fillers)
    assert len(tokenizer) == vocab_size, (len(tokenizer), vocab_size)
    return tokenizer


def _config(shape: Shape, tokenizer: Any) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        intermediate_size=shape.intermediate_size,
        max_position_embeddings=shape.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": shape.rope_theta},
        tie_word_embeddings=shape.tie_word_embeddings,
        use_sliding_window=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="bfloat16",
    )


def _device_and_dtype(device: str) -> tuple[Any, Any]:
    import torch

    return torch.device(device), torch.bfloat16


def make_random_lm(
    out_dir: str | Path, shape: Shape, *, device: str = "cpu", seed: int = 0, extra_tokens: tuple[str, ...] = ()
) -> Path:
    """A random-weight Qwen2ForCausalLM of `shape`, in bf16, initialised on `device` (a GPU makes a 7B in
    seconds), saved with its full-vocabulary tokenizer."""
    import torch
    from transformers import Qwen2ForCausalLM

    out = Path(out_dir)
    tokenizer = full_vocab_tokenizer(shape.vocab_size, extra_tokens)
    config = _config(shape, tokenizer)
    dev, dtype = _device_and_dtype(device)
    with torch.random.fork_rng(devices=[]), torch.device(dev):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM._from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return out


QWEN_PRM_REMOTE_CODE = '''
import torch.nn as nn
from transformers import Qwen2Model, Qwen2PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    """The shape of Qwen2.5-Math-PRM's remote code: Qwen2 body, score = Linear -> ReLU -> Linear(2)."""

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        h = config.hidden_size
        self.score = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Linear(h, config.num_labels))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))
'''
"""The remote code a Qwen2.5-Math-PRM checkpoint ships (its structure; hf loads it with trust_remote_code, vLLM
serves the architecture with its own implementation)."""


def write_qwen_process_rm(
    out_dir: str | Path, body: dict[str, Any], config: dict[str, Any], head: dict[str, Any], tokenizer: Any
) -> Path:
    """A Qwen2ForProcessRewardModel checkpoint: `body` (Qwen2Model weights, keys as in the LM without `lm_head`),
    the 2-layer `head` (score.0/score.2 weights and biases), the remote code and the tokenizer."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in body.items() if not k.startswith("lm_head")}
    state.update({k: v.detach().to("cpu").contiguous() for k, v in head.items()})
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = dict(
        config,
        architectures=["Qwen2ForProcessRewardModel"],
        num_labels=2,
        auto_map={"AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"},
    )
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "modeling_qwen2_rm.py").write_text(QWEN_PRM_REMOTE_CODE)
    tokenizer.save_pretrained(out)
    return out


def make_random_qwen_prm(out_dir: str | Path, shape: Shape, *, device: str = "cpu", seed: int = 0) -> Path:
    """A random-weight Qwen2ForProcessRewardModel of `shape` (bf16), with `<extra_0>` as the step separator."""
    import torch
    from transformers import Qwen2Model

    tokenizer = full_vocab_tokenizer(shape.vocab_size, ("<extra_0>",))
    config = _config(shape, tokenizer)
    dev, dtype = _device_and_dtype(device)
    h = shape.hidden_size
    with torch.random.fork_rng(devices=[]), torch.device(dev):
        torch.manual_seed(seed)
        body = Qwen2Model._from_config(config, dtype=dtype)
        head = {
            "score.0.weight": torch.randn(h, h, dtype=dtype) * h**-0.5,
            "score.0.bias": torch.zeros(h, dtype=dtype),
            "score.2.weight": torch.randn(2, h, dtype=dtype) * h**-0.5,
            "score.2.bias": torch.zeros(2, dtype=dtype),
        }
    state = {f"model.{k}": v for k, v in body.state_dict().items()}
    out = write_qwen_process_rm(out_dir, state, config.to_dict(), head, tokenizer)
    del body, state
    return out


def describe(shape: Shape) -> dict[str, Any]:
    return {**asdict(shape), "parameters": shape.parameters()}
