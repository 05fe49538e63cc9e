"""Tiny local models for tests and the embedded world: a tokenizer trained with `tokenizers` and a
random-init Qwen2/Llama causal LM, saved with `save_pretrained` exactly like a Hub checkpoint.

Nothing here downloads anything; the same call with the same seed writes identical weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prmkit.errors import ModelError
from prmkit.registry import Registry

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)
CHAT_TOKENS = ("<|im_start|>", "<|im_end|>")
# A ChatML-like template: enough for PRM formats that render a conversation before scoring.
SIMPLE_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TokenizerBuilder = Callable[[list[str], int], Any]
# A Registry: a train recipe names the kind (`init.tiny.tokenizer: words`), so an unknown one gets its error and hint.
TOKENIZER_KINDS: Registry[TokenizerBuilder] = Registry("tokenizer kind")
ARCHS: Registry[Callable[..., Any]] = Registry("tiny model architecture")


# Qwen2's pre-tokenizer. AutoTokenizer rebuilds any qwen2-typed checkpoint's tokenizer with it
# (transformers 5 ignores tokenizer_class there), so tiny tokenizers use it too: then the object
# returned here, AutoTokenizer (hf back-end) and vLLM all tokenize alike, for both archs.
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def byte_level(model: Any) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers

    tok = Tokenizer(model)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    return tok


@TOKENIZER_KINDS.register("char")
def _char_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """One token per byte, i.e. per character for ASCII (the arithmetic world): lossless on any text.

    A byte-level BPE without merges; `texts` and `vocab_size` are ignored (4 specials + 256 bytes).
    """
    from tokenizers import models, pre_tokenizers

    symbols = [*SPECIAL_TOKENS, *sorted(pre_tokenizers.ByteLevel.alphabet())]
    return byte_level(models.BPE({s: i for i, s in enumerate(symbols)}, []))


@TOKENIZER_KINDS.register("bpe")
def _bpe_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Byte-level BPE (Qwen2 style): lossless on any text, merges learned from `texts`."""
    from tokenizers import models, pre_tokenizers, trainers

    tok = byte_level(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


WORD_PIECE = r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\n+"
"""What the `words` tokenizer counts as one piece: a word, a number or a punctuation run, with its leading space."""


@TOKENIZER_KINDS.register("words")
def _words_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Bytes plus the commonest whole pieces of `texts` (words, numbers, punctuation runs, each with its
    leading space) as added tokens, up to `vocab_size` in all: lossless on any text, like `char`.

    Why: Qwen2's pre-tokenizer splits numbers into digits and AutoTokenizer re-applies it to qwen2
    checkpoints, so merges cannot make a number one token; added tokens are matched before it (longest
    first) and are kept by AutoTokenizer and vLLM alike. In the arithmetic world a step such as
    "48 - 6 = 42" becomes five tokens instead of twelve, and copying a number is copying one token:
    the tiny policy learns the world several times faster than with `char` (see recipes/quickstart).
    """
    import re
    from collections import Counter

    from tokenizers import AddedToken

    tok = _char_tokenizer(texts, vocab_size)
    counts = Counter(m for text in texts for m in re.findall(WORD_PIECE, text))
    room = max(0, vocab_size - tok.get_vocab_size() - len(SPECIAL_TOKENS))
    pieces = [p for p, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(p) > 1 and n > 1][:room]
    tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in sorted(pieces)])
    return tok


def train_tokenizer(
    texts: Iterable[str] | None = None,
    kind: str = "char",
    vocab_size: int = 512,
    *,
    extra_tokens: Iterable[str] = (),
    add_bos: bool = True,
    chat_template: bool | str = False,
    base: Any = None,
) -> Any:
    """A `PreTrainedTokenizerFast` with <s>/</s>/<pad>/<unk>, trained locally.

    `extra_tokens` (e.g. "<extra_0>", " ки") are added as whole, non-special tokens so PRM formats
    find them as single ids and decoding keeps them. `chat_template=True` adds a ChatML-like
    template and its two marker tokens; a string is used as the template itself. `base`: a `tokenizers.Tokenizer`
    to wrap instead of training one (models/shapes.py pads a byte tokenizer to a real vocabulary size).
    """
    from tokenizers import AddedToken, processors
    from transformers import PreTrainedTokenizerFast

    tok = base if base is not None else TOKENIZER_KINDS.get(kind)(list(texts or []), vocab_size)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    if add_bos:
        bos_id = tok.token_to_id(BOS)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
        )
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK)
    if chat_template:
        hf.add_special_tokens({"additional_special_tokens": list(CHAT_TOKENS)})
        hf.chat_template = SIMPLE_CHAT_TEMPLATE if chat_template is True else chat_template
    extras = [AddedToken(t, normalized=False, special=False) for t in extra_tokens]
    if extras:
        hf.add_tokens(extras)
    return hf


def _common_config(
    tokenizer: Any,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    intermediate_size: int,
    max_position_embeddings: int,
    tie_word_embeddings: bool,
    initializer_range: float,
) -> dict[str, Any]:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=tie_word_embeddings,
        initializer_range=initializer_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        dtype="float32",
    )


@ARCHS.register("qwen2")
def _qwen2_config(**common: Any) -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(**common, use_sliding_window=False)


@ARCHS.register("llama")
def _llama_config(**common: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(**common, head_dim=common["hidden_size"] // common["num_attention_heads"])


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def make_tiny_model(
    out_dir: str | Path,
    arch: str = "qwen2",
    *,
    texts: Iterable[str] | None = None,
    tokenizer: Any = None,
    tokenizer_kind: str = "char",
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    num_kv_heads: int | None = None,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 1024,
    seed: int = 0,
    extra_tokens: Iterable[str] = (),
    chat_template: bool | str = False,
    tie_word_embeddings: bool = True,
    initializer_range: float = 0.02,
) -> Path:
    """Write a random-init causal LM (config, safetensors weights, tokenizer) to `out_dir` and return it.

    Defaults give head_dim 32 (vLLM's CPU attention wants 32/64/80/...). Without `tokenizer`, one is
    trained from `texts` with `tokenizer_kind`; `extra_tokens` are added either way.
    """
    import torch
    from transformers import AutoModelForCausalLM

    if hidden_size % num_heads:
        raise ModelError(f"tiny model: hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
    num_kv_heads = num_kv_heads or num_heads
    if num_heads % num_kv_heads:
        raise ModelError(f"tiny model: num_heads {num_heads} is not a multiple of num_kv_heads {num_kv_heads}")
    extra = list(extra_tokens)
    if tokenizer is None:
        tokenizer = train_tokenizer(texts, tokenizer_kind, vocab_size, extra_tokens=extra, chat_template=chat_template)
    elif extra:
        from tokenizers import AddedToken

        tokenizer.add_tokens([AddedToken(t, normalized=False, special=False) for t in extra])
    config = ARCHS.get(arch)(
        **_common_config(
            tokenizer,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads,
            intermediate_size or 4 * hidden_size,
            max_position_embeddings,
            tie_word_embeddings,
            initializer_range,
        )
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_world(
    root: str | Path,
    problems: int,
    *,
    problem_seed: int = 5,
    text_problems: int = 60,
    text_seed: int | None = 6,
    seed: int = 0,
    **model: Any,
) -> Path:
    """`root/problems.jsonl` (`problems` arithmetic-world problems) and `root/policy`, an untrained tiny policy whose
    tokenizer was fitted to the world's reference solutions: the workload of tests and benchmarks that run stages
    end to end. `text_seed=None` fits the tokenizer to the problems themselves. `model` goes to make_tiny_model."""
    from prmkit.tasks import get_task

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    task = get_task("arithmetic")
    made = task.make_problems(problems, seed=problem_seed)
    with open(root / "problems.jsonl", "w", encoding="utf-8") as fh:
        for p in made:
            fh.write(task.to_record(p).to_json() + "\n")
    source = made if text_seed is None else task.make_problems(text_problems, seed=text_seed)
    texts = [task.prompt(p) + "\n".join(task.reference_solution(p)) for p in source]
    model = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, **model}
    make_tiny_model(root / "policy", texts=texts, seed=seed, **model)
    return root
