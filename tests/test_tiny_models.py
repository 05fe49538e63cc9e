"""Tiny local models: tokenizers round-trip text, checkpoints reload with the Auto classes, seeds fix weights."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from prmkit.errors import ModelError, RecipeError
from prmkit.models.loading import load_causal_lm, load_tokenizer, looks_like_hub_id
from prmkit.models.tiny import count_parameters, make_tiny_model, train_tokenizer

WORLD = ["Step 1: 12 + 7 = 19\nStep 2: 19 * 3 = 57\nThe answer is 57.", "Step 1: 40 - 8 = 32\nThe answer is 32."]
PRM_TOKENS = ["<extra_0>", " ки"]
SAMPLES = [
    "Step 1: 12 + 7 = 19 ки\nStep 2: 19 * 3 = 57<extra_0>",
    "Hello  world!\n\n\tit's  é ✓ 数学",
    "",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads; on a busy 2-core box OpenMP spinning makes them ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", ["char", "bpe", "words"])
def test_tokenizer_round_trips_text(kind: str) -> None:
    tok = train_tokenizer(WORLD * 3, kind, vocab_size=300, extra_tokens=PRM_TOKENS)
    for text in SAMPLES:
        ids = tok(text)["input_ids"]
        assert ids[0] == tok.bos_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text
    assert {tok.bos_token, tok.eos_token, tok.pad_token} == {"<s>", "</s>", "<pad>"}
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3


def test_char_tokenizer_is_one_token_per_ascii_char_and_extras_are_single_tokens() -> None:
    tok = train_tokenizer(kind="char", extra_tokens=PRM_TOKENS)
    text = "19 * 3 = 57"
    assert len(tok(text, add_special_tokens=False)["input_ids"]) == len(text)
    ids = tok("a ки<extra_0>", add_special_tokens=False)["input_ids"]
    assert ids == tok.convert_tokens_to_ids(["a", " ки", "<extra_0>"])
    assert len(set(ids)) == 3 and tok.unk_token_id not in ids


def test_bpe_tokenizer_learns_merges() -> None:
    tok = train_tokenizer(WORLD * 5, "bpe", vocab_size=320)
    text = "The answer is 57."
    assert len(tok(text, add_special_tokens=False)["input_ids"]) < len(text)


def test_words_tokenizer_makes_frequent_words_and_numbers_single_tokens() -> None:
    tok = train_tokenizer(WORLD * 3, "words", vocab_size=300)
    pieces = tok.convert_ids_to_tokens(
        tok("Step 2: 19 * 3 = 57\nThe answer is 57.", add_special_tokens=False)["input_ids"]
    )
    assert pieces == ["Step", " 2", ":", " 19", " *", " 3", " =", " 57", "Ċ", "The", " answer", " is", " 57", "."]
    # a number it never saw falls back to known pieces and bytes: still lossless
    assert tok.decode(tok("The answer is 1234567.")["input_ids"], skip_special_tokens=True) == "The answer is 1234567."
    # the vocabulary size caps the added pieces
    assert len(train_tokenizer(WORLD * 3, "words", vocab_size=270)) <= 270


def test_unknown_tokenizer_kind_lists_allowed() -> None:
    with pytest.raises(RecipeError, match="allowed: bpe, char, words"):
        train_tokenizer(WORLD, "wordpiece")


def test_chat_template_renders_conversation() -> None:
    tok = train_tokenizer(kind="char", chat_template=True)
    text = tok.apply_chat_template([{"role": "user", "content": "2+2?"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.convert_tokens_to_ids("<|im_start|>") != tok.unk_token_id


@pytest.mark.parametrize("arch,cls", [("qwen2", "Qwen2ForCausalLM"), ("llama", "LlamaForCausalLM")])
@pytest.mark.parametrize("kind", ["char", "bpe", "words"])
def test_tiny_model_round_trip(tmp_path: Path, arch: str, cls: str, kind: str) -> None:
    path = make_tiny_model(
        tmp_path / "m",
        arch,
        texts=WORLD * 3,
        tokenizer_kind=kind,
        vocab_size=300,
        extra_tokens=PRM_TOKENS,
        chat_template=True,
    )
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    assert type(model).__name__ == cls
    assert model.config.vocab_size == len(tok)
    assert model.config.hidden_size // model.config.num_attention_heads == 32
    # AutoTokenizer (what the hf and vllm back-ends load) must tokenize exactly like the trained object.
    fresh = train_tokenizer(WORLD * 3, kind, 300, extra_tokens=PRM_TOKENS, chat_template=True)
    for text in SAMPLES:
        assert tok(text)["input_ids"] == fresh(text)["input_ids"]
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    with torch.no_grad():
        logits = model(**tok(SAMPLES[0], return_tensors="pt")).logits
    assert logits.shape[-1] == len(tok) and torch.isfinite(logits).all()


def test_same_seed_same_weights_other_seed_differs(tmp_path: Path) -> None:
    a = make_tiny_model(tmp_path / "a", seed=3)
    b = make_tiny_model(tmp_path / "b", seed=3)
    c = make_tiny_model(tmp_path / "c", seed=4)
    assert _sha(a / "model.safetensors") == _sha(b / "model.safetensors")
    assert _sha(a / "model.safetensors") != _sha(c / "model.safetensors")


def test_seeded_init_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_model(tmp_path / "m", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_world_sized_model_has_about_0_8m_parameters(tmp_path: Path) -> None:
    path = make_tiny_model(tmp_path / "w", hidden_size=128, num_layers=3, num_heads=4, intermediate_size=512)
    model, tok = load_causal_lm(path)
    assert 0.7e6 < count_parameters(model) < 0.9e6
    assert model.dtype == torch.float32 and not model.training


def test_bad_shapes_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a multiple of num_heads"):
        make_tiny_model(tmp_path / "x", hidden_size=100, num_heads=3)
    with pytest.raises(RecipeError, match="allowed: llama, qwen2"):
        make_tiny_model(tmp_path / "y", arch="gpt5")


def test_missing_path_is_a_clear_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model '.*nope' not found: no such directory$"):
        load_causal_lm(tmp_path / "nope")


def test_folder_without_config_is_not_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="is not a model directory: it has no config.json"):
        load_causal_lm(tmp_path)
    (tmp_path / "weights.bin").write_text("x")
    with pytest.raises(ModelError, match="is a file, not a model directory"):
        load_tokenizer(tmp_path / "weights.bin")


def test_unreachable_hub_id_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelError) as info:
        load_causal_lm("prmkit-test/no-such-model")
    msg = str(info.value)
    assert msg.startswith("model 'prmkit-test/no-such-model' not found: no such directory, and the Hub is unreachable")
    assert "\n" not in msg


def test_bad_dtype_and_device_name_allowed_values() -> None:
    with pytest.raises(RecipeError, match="allowed: auto, float32, bfloat16, float16"):
        load_causal_lm("whatever", dtype="float8")
    with pytest.raises(RecipeError, match="allowed: auto, cpu, cuda"):
        load_causal_lm("whatever", device="tpu")


def test_hub_id_shape() -> None:
    assert looks_like_hub_id("Qwen/Qwen2.5-Math-PRM-7B") and looks_like_hub_id("gpt2")
    assert not looks_like_hub_id("./models/x") and not looks_like_hub_id("/abs/path")
    assert not looks_like_hub_id("a/b/c")
