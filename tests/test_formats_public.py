"""Public PRM formats and prmkit's own, on tiny random models built to each family's conventions.

Each one-pass score (every step read from ONE forward pass of the whole solution) is checked against a
plain reference computation written the way the family's own code does it: the model run on each prefix
separately and the score read by hand.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from prmkit.engines import make_scorer
from prmkit.errors import ModelError, RecipeError
from prmkit.formats import FORMATS, METADATA_FILE, format_for_checkpoint
from prmkit.models.tiny import make_tiny_model

PROBLEM = "Start at 17. Add 23. Multiply by 4. What is the result?"
STEPS = ["17 + 23 = 40", "40 * 4 = 160", "The answer is 160."]
SOLUTIONS = [
    (PROBLEM, STEPS),
    ("Start at 5. Add 1. What is the result?", ["5 + 1 = 6", "The answer is 6."]),
    (PROBLEM, STEPS[:1]),
]


def _lm(root: Path, name: str, **kw) -> Path:
    return make_tiny_model(root / name, hidden_size=64, num_layers=2, num_heads=2, seed=kw.pop("seed", 0), **kw)


def _token_classifier(lm_path: Path, out: Path, seed: int = 1) -> Path:
    """A Qwen2ForTokenClassification (2 labels) with the LM's tokenizer: the shape of Qwen2.5-Math-PRM's head."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(lm_path)
    config.num_labels = 2
    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():
        model.score.weight.normal_(0, 0.15)  # spread the random scores away from 0.5
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(lm_path).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("prms")
    chat = _lm(root, "chat", extra_tokens=["<extra_0>", "ки"], chat_template=True)
    qwen = _token_classifier(chat, root / "qwen_prm")
    sky = _lm(root, "skywork", seed=3)
    from safetensors.torch import load_file, save_file

    state = load_file(str(sky / "model.safetensors"))
    torch.manual_seed(4)
    state["v_head.summary.weight"] = torch.randn(1, 64)
    state["v_head.summary.bias"] = torch.randn(1)
    save_file(state, str(sky / "model.safetensors"), metadata={"format": "pt"})
    policy = _lm(root, "policy", seed=5)
    reference = _lm(root, "reference", seed=6)
    return {"chat": chat, "qwen": qwen, "skywork": sky, "policy": policy, "reference": reference, "root": root}


def _logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def _score(path, fmt, options=None, **kw):
    scorer = make_scorer("hf", model=str(path), format=fmt, format_options=options or {}, device="cpu", **kw)
    return [r.scores for r in scorer.score(SOLUTIONS)], scorer


def test_every_family_is_registered():
    assert {"prmkit", "qwen_prm", "math_shepherd", "rlhflow", "skywork", "implicit"} <= set(FORMATS.names())


def test_qwen_prm_matches_model_card_computation(models):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    got, scorer = _score(models["qwen"], "qwen_prm")
    tok = AutoTokenizer.from_pretrained(models["qwen"])
    model = AutoModelForTokenClassification.from_pretrained(models["qwen"]).eval()
    sep = tok.encode("<extra_0>", add_special_tokens=False)[0]
    for (problem, steps), scores in zip(SOLUTIONS, got):
        want = []
        for k in range(1, len(steps) + 1):  # per prefix, as a step-by-step caller would
            messages = [
                {
                    "role": "system",
                    "content": "Please reason step by step, and put your final answer within \\boxed{}.",
                },
                {"role": "user", "content": problem},
                {"role": "assistant", "content": "<extra_0>".join(steps[:k]) + "<extra_0>"},
            ]
            ids = tok.encode(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
            at = [i for i, t in enumerate(ids) if t == sep][-1]
            want.append(torch.softmax(_logits(model, ids)[at], -1)[1].item())
        assert scores == pytest.approx(want, abs=1e-5)
    assert len({round(s, 4) for s in got[0]}) > 1  # a real spread, not a constant


def test_qwen_prm_remote_code_needs_trust(models, tmp_path):
    import shutil

    fake = tmp_path / "qwen_remote"
    shutil.copytree(models["qwen"], fake)
    config = json.loads((fake / "config.json").read_text())
    config["architectures"] = ["Qwen2ForProcessRewardModel"]
    (fake / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="trust_remote_code"):
        make_scorer("hf", model=str(fake), format="qwen_prm", device="cpu")


def test_math_shepherd_reads_plus_minus_at_each_tag(models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    got, _ = _score(models["chat"], "math_shepherd")
    tok = AutoTokenizer.from_pretrained(models["chat"])
    model = AutoModelForCausalLM.from_pretrained(models["chat"]).eval()
    tag = tok.encode("ки", add_special_tokens=False)[-1]
    plus, minus = tok.encode("+", add_special_tokens=False)[0], tok.encode("-", add_special_tokens=False)[0]
    for (problem, steps), scores in zip(SOLUTIONS, got):
        text = problem + " " + "".join(f"Step {k}: {s} ки\n" for k, s in enumerate(steps, 1))
        ids = tok.encode(text)  # upstream: the whole string, tokenizer defaults
        logits = _logits(model, ids)
        want = [torch.softmax(logits[i, [plus, minus]], -1)[0].item() for i, t in enumerate(ids) if t == tag]
        assert scores == pytest.approx(want, abs=1e-5)


def test_rlhflow_reads_p_plus_before_each_assistant_turn(models):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    got, _ = _score(models["chat"], "rlhflow")
    tok = AutoTokenizer.from_pretrained(models["chat"])
    model = AutoModelForCausalLM.from_pretrained(models["chat"]).eval()
    plus, minus = tok.encode("+", add_special_tokens=False)[0], tok.encode("-", add_special_tokens=False)[0]
    for (problem, steps), scores in zip(SOLUTIONS, got):
        conversation, want = [], []
        for k, step in enumerate(steps):  # RLHFlow's prm_evaluate.py loop: one pass per prefix
            conversation.append({"role": "user", "content": problem + " " + step if k == 0 else step})
            conversation.append({"role": "assistant", "content": "+"})
            ids = tok.encode(tok.apply_chat_template(conversation, tokenize=False), add_special_tokens=False)
            at = max(i for i, t in enumerate(ids) if t == plus) - 1  # the token that predicts the last "+"
            want.append(torch.softmax(_logits(model, ids)[at, [plus, minus]], -1)[0].item())
        assert scores == pytest.approx(want, abs=1e-5)


def test_skywork_value_head_matches_reference_inference(models):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    got, _ = _score(models["skywork"], "skywork")
    tok = AutoTokenizer.from_pretrained(models["skywork"])
    model = AutoModelForCausalLM.from_pretrained(models["skywork"]).eval()
    state = load_file(str(models["skywork"] / "model.safetensors"))
    w, b = state["v_head.summary.weight"], state["v_head.summary.bias"]
    step_id = tok.encode("\n", add_special_tokens=False)[-1]
    for (problem, steps), scores in zip(SOLUTIONS, got):
        ids = tok.encode(tok.bos_token + problem + "\n", add_special_tokens=False)  # skywork prepare_input
        flags = [0] * len(ids)
        for s in steps:
            piece = tok.encode(s, add_special_tokens=False) + [step_id]
            ids += piece
            flags += [0] * (len(piece) - 1) + [1]
        with torch.no_grad():
            hidden = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
        values = torch.sigmoid(hidden @ w.T + b)[:, 0]
        want = [values[i].item() for i, f in enumerate(flags) if f]
        assert scores == pytest.approx(want, abs=1e-5)


def _write_meta(path: Path, **fields) -> None:
    meta = {
        "prmkit_version": "test",
        "format": "prmkit",
        "objective": "prm",
        "head": "token_classification",
        "step_separator": "\n",
        "good_token": "+",
        "bad_token": "-",
        "chat_template": False,
        "label_type": "hard",
        "last_step_only": False,
        "max_length": 512,
        "implicit": None,
    }
    meta.update(fields)
    (path / METADATA_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize("head", ["token_classification", "lm"])
def test_prmkit_format_both_heads_through_checkpoint_metadata(models, tmp_path, head):
    import shutil

    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    path = tmp_path / head
    if head == "lm":
        shutil.copytree(models["policy"], path)
    else:
        _token_classifier(models["policy"], path)
    _write_meta(path, head=head)
    assert format_for_checkpoint(path).head == head
    got, _ = _score(path, "auto")
    tok = AutoTokenizer.from_pretrained(path)
    cls = AutoModelForCausalLM if head == "lm" else AutoModelForTokenClassification
    model = cls.from_pretrained(path).eval()
    plus, minus = tok.encode("+", add_special_tokens=False)[0], tok.encode("-", add_special_tokens=False)[0]
    for (problem, steps), scores in zip(SOLUTIONS, got):
        want = []
        for k in range(1, len(steps) + 1):  # per prefix: prompt + "\n", then step + separator pieces
            ids = tok(problem + "\n")["input_ids"]
            for s in steps[:k]:
                ids += tok(s, add_special_tokens=False)["input_ids"] + tok("\n", add_special_tokens=False)["input_ids"]
            last = _logits(model, ids)[-1]
            want.append(
                (torch.softmax(last[[plus, minus]], -1)[0] if head == "lm" else torch.softmax(last, -1)[1]).item()
            )
        assert scores == pytest.approx(want, abs=1e-5)


def test_implicit_prm_cumulative_log_ratio(models, tmp_path):
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path / "implicit"
    shutil.copytree(models["policy"], path)
    beta = 0.5
    _write_meta(
        path,
        format="implicit",
        objective="implicit",
        head=None,
        good_token=None,
        bad_token=None,
        implicit={"beta": beta, "reference_model": str(models["reference"])},
    )
    got, _ = _score(path, "auto")
    tok = AutoTokenizer.from_pretrained(path)
    pi = AutoModelForCausalLM.from_pretrained(path).eval()
    ref = AutoModelForCausalLM.from_pretrained(models["reference"]).eval()

    def step_logprob(model, ids, start):
        """Sum of log p(token t | tokens < t) over t in [start, len(ids)), from a pass over this prefix alone."""
        logp = torch.log_softmax(_logits(model, ids), -1)
        return sum(logp[t - 1, ids[t]].item() for t in range(start, len(ids)))

    for (problem, steps), scores in zip(SOLUTIONS, got):
        ids = tok(problem + "\n")["input_ids"]
        total, want = 0.0, []
        for s in steps:  # per prefix: step k's reward from the prefix that ends with it
            start = len(ids)
            ids += tok(s, add_special_tokens=False)["input_ids"] + tok("\n", add_special_tokens=False)["input_ids"]
            total += beta * (step_logprob(pi, ids, start) - step_logprob(ref, ids, start))
            want.append(1 / (1 + math.exp(-total)))
        assert scores == pytest.approx(want, abs=1e-4)


def test_batching_and_truncation_do_not_change_scores(models):
    one, _ = _score(models["qwen"], "qwen_prm", max_batch_size=1)
    many, _ = _score(models["qwen"], "qwen_prm", max_batch_size=8)
    assert all(a == pytest.approx(b, abs=1e-5) for a, b in zip(one, many))
    scorer = make_scorer("hf", model=str(models["chat"]), format="math_shepherd", device="cpu", max_length=40)
    cut = scorer.score([(PROBLEM, STEPS)])[0]
    assert cut.dropped_steps > 0 and len(cut.scores) + cut.dropped_steps == len(STEPS)


def test_truncation_is_counted_and_warned_once(models, capsys):
    scorer = make_scorer("hf", model=str(models["chat"]), format="math_shepherd", device="cpu", max_length=40)
    scorer.score([(PROBLEM, STEPS), ("Add 1.", ["1 + 1 = 2"])])
    scorer.score([(PROBLEM, STEPS)])
    stats = scorer.stats.as_dict()
    assert stats["truncated_records"] == 2 and stats["unscored_steps"] > 0 and "_warned" not in stats
    err = " ".join(capsys.readouterr().err.split())  # the console folds long lines
    assert err.count("longer than the PRM's max_length 40") == 1 and "raise prm.max_length" in err
    wide = make_scorer("hf", model=str(models["chat"]), format="math_shepherd", device="cpu", max_length=4096)
    wide.score([(PROBLEM, STEPS)])
    assert wide.stats.truncated_records == 0


def test_rlhflow_greedy_decision_is_the_full_vocabulary_argmax(models):
    """decision: greedy flags a step (score < 0.5) exactly when the most likely next token is not "+"."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fmt = FORMATS.get("rlhflow")(decision="greedy")
    got, _ = _score(models["chat"], fmt)
    tok = AutoTokenizer.from_pretrained(models["chat"])
    model = AutoModelForCausalLM.from_pretrained(models["chat"]).eval()
    plus = tok.encode("+", add_special_tokens=False)[0]
    for (problem, steps), scores in zip(SOLUTIONS, got):
        enc = fmt.encode(tok, problem, steps)
        logits = _logits(model, enc.input_ids)
        for pos, score in zip(enc.step_positions, scores):
            p_plus = torch.softmax(logits[pos], -1)[plus].item()
            assert (score >= 0.5) == (int(logits[pos].argmax()) == plus)
            assert score == pytest.approx(max(0.5, p_plus) if score >= 0.5 else min(0.5, p_plus), abs=1e-5)
    with pytest.raises(RecipeError, match="decision must be one of pair, greedy"):
        FORMATS.get("rlhflow")(decision="argmax")
    with pytest.raises(RecipeError, match="layout must be one of reference, search_and_learn"):
        FORMATS.get("math_shepherd")(layout="sal")


def test_format_errors_are_clear(models):
    with pytest.raises(ModelError, match="prmkit_prm.json"):
        make_scorer("hf", model=str(models["chat"]), format="auto", device="cpu")
    with pytest.raises(RecipeError, match="allowed"):
        make_scorer("hf", model=str(models["chat"]), format="rlhflow", format_options={"nope": 1}, device="cpu")
    with pytest.raises(ModelError, match="v_head"):
        make_scorer("hf", model=str(models["chat"]), format="skywork", device="cpu")
    with pytest.raises(ModelError, match="chat template"):
        make_scorer("hf", model=str(models["skywork"]), format="rlhflow", device="cpu").score([(PROBLEM, STEPS)])


# A search's rounds: each round's candidates extend the last round's by one step (some share a parent).
ROUNDS = [
    [(PROBLEM, ["17 + 23 = 40"]), (PROBLEM, ["17 + 23 = 41"])],
    [(PROBLEM, ["17 + 23 = 40", "40 * 4 = 160"]), (PROBLEM, ["17 + 23 = 40", "40 * 4 = 161"])]
    + [(PROBLEM, ["17 + 23 = 41", "41 * 4 = 164"])],
    [(PROBLEM, STEPS), (PROBLEM, ["17 + 23 = 40", "40 * 4 = 161", "The answer is 161."])],
]


@pytest.mark.parametrize(
    "model,fmt,options",
    [
        ("qwen", "qwen_prm", {}),
        ("chat", "math_shepherd", {}),
        ("chat", "rlhflow", {}),
        ("skywork", "skywork", {}),
        ("policy", "likelihood", {"scale": 0.3, "bias": 2.0}),  # every token's log-probability is read
    ],
)
def test_prefix_cache_scores_equal_full_rescoring_for_fewer_tokens(models, model, fmt, options):
    """With prefix_cache_mb, a candidate extending a scored one runs only its new tokens: the same scores
    (within 1e-5) as scoring it whole, and PRM-scored tokens count what was computed."""
    kw = {"model": str(models[model]), "format": fmt, "format_options": options, "device": "cpu"}
    plain = make_scorer("hf", **kw)
    cached = make_scorer("hf", prefix_cache_mb=64, **kw)
    for items in ROUNDS:
        want, got = plain.score(items), cached.score(items)
        for w, g in zip(want, got):
            assert g.scores == pytest.approx(w.scores, abs=1e-5)
    assert cached.prefix_cache.hits == 5
    assert cached.stats.scored_tokens < 0.7 * plain.stats.scored_tokens


def test_identical_candidates_are_scored_once(models):
    """A search's candidates often coincide: each distinct (problem, steps) runs once, its repeats get its scores
    and 0 computed tokens, and the progress callback still counts every item."""
    scorer = make_scorer("hf", model=str(models["skywork"]), format="skywork", device="cpu")
    alone = make_scorer("hf", model=str(models["skywork"]), format="skywork", device="cpu")
    items = [ROUNDS[1][0], ROUNDS[1][1], ROUNDS[1][0], ("Other problem", ROUNDS[1][0][1]), ROUNDS[1][0]]
    done: list[int] = []
    got = scorer.score(items, progress=done.append)
    for item, result in zip(items, got):
        assert result.scores == pytest.approx(alone.score([item])[0].scores, abs=1e-6)
    assert [r.tokens > 0 for r in got] == [True, True, False, True, False]
    assert scorer.stats.duplicate_sequences == 2 and scorer.stats.sequences == 3 and sum(done) == len(items)
    assert scorer.stats.scored_tokens == sum(r.tokens for r in got)
    short = make_scorer("hf", model=str(models["skywork"]), format="skywork", device="cpu", max_length=12)
    cut = short.score([items[0]] * 3)  # too long for 12 tokens: every repeat is a truncated record too
    assert cut[0].dropped_steps > 0 and [r.dropped_steps for r in cut] == [cut[0].dropped_steps] * 3
    assert short.stats.truncated_records == 3 and short.stats.unscored_steps == 3 * cut[0].dropped_steps


def test_prefix_cache_is_bounded_and_off_where_it_cannot_apply(models, tmp_path):
    one = make_scorer("hf", model=str(models["skywork"]), format="skywork", device="cpu", prefix_cache_mb=1)
    plain = make_scorer("hf", model=str(models["skywork"]), format="skywork", device="cpu")
    for k, items in enumerate(ROUNDS):
        for w, g in zip(plain.score(items), one.score(items)):
            assert g.scores == pytest.approx(w.scores, abs=1e-5)
        if k == 0:
            bound = one.prefix_cache.max_bytes = one.prefix_cache.bytes  # room for round 1's two prefixes only
    assert one.prefix_cache.evictions > 0 and one.prefix_cache.bytes <= bound
    implicit = make_scorer(
        "hf",
        model=str(models["policy"]),
        format="implicit",
        format_options={"reference_model": str(models["reference"])},
        device="cpu",
        prefix_cache_mb=64,
    )
    assert implicit.prefix_cache is None  # every token's log-ratio is read: nothing to reuse
