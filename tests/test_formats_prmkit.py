"""prmkit's own PRM format: rendering, score positions, truncation, score reading, checkpoint metadata."""

from __future__ import annotations

import json

import pytest
import torch

from prmkit.errors import ModelError, RecipeError
from prmkit.formats import FORMATS, METADATA_FILE, PrmkitFormat, format_for_checkpoint
from prmkit.models.tiny import train_tokenizer

PROBLEM = "Start at 3. Add 2. What is the result?"
STEPS = ["3 + 2 = 5", "The answer is 5."]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(chat_template=True)


def test_positions_are_last_separator_token(tok):
    fmt = PrmkitFormat(step_separator="\n\n")
    enc = fmt.encode(tok, PROBLEM, STEPS)
    sep = tok("\n\n", add_special_tokens=False)["input_ids"]
    assert len(sep) == 2
    for pos in enc.step_positions:
        assert enc.input_ids[pos - 1 : pos + 1] == sep
    assert enc.step_positions[-1] == len(enc.input_ids) - 1
    # the prompt is the tokenizer's own encoding of problem + "\n" (BOS included, as the samplers see it)
    prompt = tok(PROBLEM + "\n")["input_ids"]
    assert enc.input_ids[: len(prompt)] == prompt and prompt[0] == tok.bos_token_id
    text = tok.decode(enc.input_ids, skip_special_tokens=True)
    assert text == PROBLEM + "\n" + "3 + 2 = 5\n\nThe answer is 5.\n\n"


def test_max_length_drops_whole_steps_and_counts_them(tok):
    fmt = PrmkitFormat()
    full = fmt.encode(tok, PROBLEM, STEPS)
    cut = fmt.encode(tok, PROBLEM, STEPS, max_length=full.step_positions[0] + 3)
    assert cut.step_positions == full.step_positions[:1] and cut.dropped_steps == 1
    assert cut.input_ids == full.input_ids[: full.step_positions[0] + 1]
    none = fmt.encode(tok, PROBLEM, STEPS, max_length=5)
    assert none.step_positions == [] and none.dropped_steps == 2


def test_chat_template_prompt(tok):
    enc = PrmkitFormat(chat_template=True).encode(tok, PROBLEM, STEPS)
    text = tok.decode(enc.input_ids)
    assert text.startswith("<|im_start|>user\n" + PROBLEM + "<|im_end|>\n<|im_start|>assistant\n")


def test_lm_head_needs_single_token_labels(tok):
    with pytest.raises(ModelError, match="good_token 'good' is 4 tokens"):
        PrmkitFormat(head="lm", good_token="good").encode(tok, PROBLEM, STEPS)
    with pytest.raises(RecipeError, match="allowed: token_classification, lm"):
        PrmkitFormat(head="value")


def test_step_scores_both_heads(tok):
    tc = PrmkitFormat()
    logits = torch.zeros(6, 2)
    logits[2] = torch.tensor([0.0, torch.log(torch.tensor(3.0))])  # P(good) = 0.75
    assert tc.step_scores(logits, [2, 4]) == pytest.approx([0.75, 0.5])
    lm = PrmkitFormat(head="lm")
    good, bad = lm.label_token_ids(tok)
    vocab = torch.zeros(6, len(tok))
    vocab[3, good], vocab[3, bad] = 2.0, 0.0
    assert lm.step_scores(vocab, [3]) == pytest.approx([torch.sigmoid(torch.tensor(2.0)).item()])


def test_format_for_checkpoint_round_trip(tmp_path):
    meta = {
        "prmkit_version": "0.1.0",
        "format": "prmkit",
        "objective": "prm",
        "head": "lm",
        "step_separator": " ки\n",
        "good_token": "+",
        "bad_token": "-",
        "chat_template": True,
        "label_type": "soft",
        "last_step_only": False,
        "max_length": 512,
        "implicit": None,
    }
    (tmp_path / METADATA_FILE).write_text(json.dumps(meta))
    fmt = format_for_checkpoint(tmp_path)
    assert fmt == PrmkitFormat(head="lm", step_separator=" ки\n", chat_template=True)
    assert "prmkit" in FORMATS


def test_format_for_checkpoint_errors(tmp_path):
    with pytest.raises(ModelError, match="name the PRM's format in the recipe"):
        format_for_checkpoint(tmp_path)
    (tmp_path / METADATA_FILE).write_text(json.dumps({"format": None, "objective": "sft"}))
    with pytest.raises(ModelError, match="is a policy"):
        format_for_checkpoint(tmp_path)


def test_remembered_pieces_equal_the_tokenizer_and_follow_added_tokens():
    """Formats tokenize each step through a per-tokenizer memo (search re-renders the same steps every round):
    the ids are the tokenizer's own, and a token added to the vocabulary is seen at once."""
    from prmkit.formats.base import piece_ids
    from prmkit.models.tiny import train_tokenizer

    tok = train_tokenizer(["Start at 4.\n4 * 3 = 12\nThe answer is 12."])
    for text in ("4 * 3 = 12", "The answer is 12.", "\n", "unseen words"):
        assert piece_ids(tok, text) == tok(text, add_special_tokens=False)["input_ids"]
        assert piece_ids(tok, text, add_special_tokens=True) == tok(text)["input_ids"]
        assert piece_ids(tok, text) == piece_ids(tok, text)  # from the memo, a fresh list each time
    before = piece_ids(tok, "ZQX")
    tok.add_tokens(["ZQX"])
    after = piece_ids(tok, "ZQX")
    assert after == tok("ZQX", add_special_tokens=False)["input_ids"] and len(after) == 1 and after != before
