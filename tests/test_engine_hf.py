"""The hf sampling back-end: greedy and seeded sampling are reproducible and independent of batching,
stop strings / EOS / length end sequences correctly, and the compute counters add up."""

from __future__ import annotations

import string
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from prmkit.engines import SAMPLERS, make_sampler
from prmkit.engines.base import Completion, Sampler, SamplingParams, find_stop
from prmkit.engines.hf import HFSampler, sample_tokens, sequence_keys, uniforms
from prmkit.errors import ModelError, RecipeError
from prmkit.models.loading import load_causal_lm
from prmkit.models.tiny import make_tiny_model

PROMPTS = ["1 + 2 =", "Step 1: 12 + 7 = 19\nStep 2:", "x", "The answer is", "Step 1: 40 - 8 = 32\nStep 2: 32 * 2 ="]
ASCII = set(string.ascii_letters + string.digits + "=+-*:.")


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads; on a busy 2-core box OpenMP spinning makes them ~10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # initializer_range 0.1: varied greedy text, top-2 logit gaps far above float32 noise.
    return make_tiny_model(tmp_path_factory.mktemp(request.param), request.param, initializer_range=0.1, seed=1)


@pytest.fixture(scope="module")
def sampler(model_dir: Path) -> HFSampler:
    return HFSampler(model_dir, max_batch_size=64)


@pytest.fixture(scope="module")
def sampler64(model_dir: Path) -> HFSampler:
    """float64 weights: batch-layout float noise (~1e-16) can then never flip a sampled token."""
    model, tok = load_causal_lm(model_dir)
    return HFSampler(model.double(), tok, max_batch_size=64)


def _ids(out: list[list[Completion]]) -> list[list[list[int]]]:
    return [[c.token_ids for c in row] for row in out]


def test_protocol_and_registry(sampler: HFSampler, model_dir: Path) -> None:
    assert isinstance(sampler, Sampler)
    assert "hf" in SAMPLERS
    built = make_sampler("hf", model=model_dir, max_batch_size=4)
    assert isinstance(built, HFSampler) and built.max_batch_size == 4
    with pytest.raises(RecipeError, match="unknown sampler engine 'hff'.*did you mean 'hf'"):
        make_sampler("hff", model=model_dir)


def test_greedy_is_deterministic_and_samples_agree(sampler: HFSampler) -> None:
    params = SamplingParams(n=3, temperature=0, max_new_tokens=16)
    first, second = sampler.generate(PROMPTS, params), sampler.generate(PROMPTS, params)
    assert _ids(first) == _ids(second)
    assert all(len({tuple(ids) for ids in row}) == 1 for row in _ids(first))
    assert len({tuple(row[0]) for row in _ids(first)}) > 1  # different prompts, different text


def test_greedy_batch_equals_one_at_a_time(sampler: HFSampler) -> None:
    params = SamplingParams(n=2, temperature=0, max_new_tokens=20)
    sampler.max_batch_size = 64
    batched = sampler.generate(PROMPTS, params)
    sampler.max_batch_size = 1
    try:
        single = [sampler.generate([p], params)[0] for p in PROMPTS]
    finally:
        sampler.max_batch_size = 64
    assert _ids(batched) == _ids(single)
    assert [[c.text for c in row] for row in batched] == [[c.text for c in row] for row in single]


def test_seeded_sampling_is_reproducible(model_dir: Path) -> None:
    a, b = HFSampler(model_dir, seed=5), HFSampler(model_dir, seed=5)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=123)
    assert _ids(a.generate(PROMPTS, params)) == _ids(b.generate(PROMPTS, params))
    other = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=124)
    assert _ids(a.generate(PROMPTS, params)) != _ids(a.generate(PROMPTS, other))
    # seed=None: fresh draws on each call, but the sampler's own seed makes the sequence of calls reproducible
    unseeded = SamplingParams(n=4, temperature=1.0, max_new_tokens=12)
    a_calls = [_ids(a.generate(PROMPTS, unseeded)) for _ in range(2)]
    b_calls = [_ids(b.generate(PROMPTS, unseeded)) for _ in range(2)]
    assert a_calls == b_calls and a_calls[0] != a_calls[1]


def test_seeded_sampling_ignores_batch_size(sampler64: HFSampler) -> None:
    params = SamplingParams(n=3, temperature=1.0, top_p=0.9, max_new_tokens=16, seed=7)
    results = []
    for size in (1, 4, 64):
        sampler64.max_batch_size = size
        results.append(_ids(sampler64.generate(PROMPTS, params)))
    sampler64.max_batch_size = 64
    assert results[0] == results[1] == results[2]


def test_samples_drawn_in_waves_equal_one_draw(sampler64: HFSampler) -> None:
    """first_sample: samples 0..1 and then 2..4 of each prompt are the 5 samples of one call (early stopping)."""
    seeds = [7, 8, 9, 10, 11, 12][: len(PROMPTS)]

    def draw(n: int, first: int = 0, idx: list[int] | None = None) -> list[list[list[int]]]:
        idx = idx if idx is not None else list(range(len(PROMPTS)))
        params = SamplingParams(
            n=n, temperature=1.0, max_new_tokens=10, prompt_seeds=[seeds[i] for i in idx], first_sample=first
        )
        return _ids(sampler64.generate([PROMPTS[i] for i in idx], params))

    whole = draw(5)
    head, tail = draw(2), draw(3, first=2, idx=[1, 3])
    assert [row[:2] for row in whole] == head
    assert [whole[1][2:], whole[3][2:]] == tail
    assert all(len({tuple(ids) for ids in row}) > 1 for row in whole)


def test_prompt_seeds_make_samples_independent_of_the_call(sampler64: HFSampler) -> None:
    """With one seed per prompt, a prompt's samples are the same alone, in a subset, or in another order."""
    seeds = [101, 202, 303, 404, 505, 606][: len(PROMPTS)]
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=12, prompt_seeds=seeds)
    together = _ids(sampler64.generate(PROMPTS, params))
    order = list(reversed(range(len(PROMPTS))))
    backwards = _ids(
        sampler64.generate(
            [PROMPTS[i] for i in order],
            SamplingParams(n=3, temperature=1.0, max_new_tokens=12, prompt_seeds=[seeds[i] for i in order]),
        )
    )
    assert [backwards[order.index(i)] for i in range(len(PROMPTS))] == together
    alone = _ids(
        sampler64.generate(
            [PROMPTS[2]], SamplingParams(n=3, temperature=1.0, max_new_tokens=12, prompt_seeds=[seeds[2]])
        )
    )
    assert alone[0] == together[2]
    other = _ids(
        sampler64.generate(
            [PROMPTS[2]], SamplingParams(n=3, temperature=1.0, max_new_tokens=12, prompt_seeds=[seeds[2] + 1])
        )
    )
    assert other[0] != together[2]
    with pytest.raises(ValueError, match="2 prompt_seeds for"):
        sampler64.generate(PROMPTS, SamplingParams(n=1, temperature=1.0, max_new_tokens=4, prompt_seeds=[1, 2]))


def test_prefix_sharing_off_gives_the_same_samples(sampler64: HFSampler) -> None:
    """share_prefix=False (each sample prefills its prompt again: the throughput baseline) changes cost only."""
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=11)
    prompts = PROMPTS + [PROMPTS[1], PROMPTS[0]]  # repeats: prefilled once with their first occurrence
    shared = _ids(sampler64.generate(prompts, params))
    assert shared[-1] != shared[0] and shared[-2] != shared[1]  # a repeat still draws its own samples
    sampler64.share_prefix = False
    try:
        assert _ids(sampler64.generate(prompts, params)) == shared
    finally:
        sampler64.share_prefix = True


def test_prompt_prefix_cache_gives_the_same_samples_for_fewer_prompt_tokens(model_dir: Path) -> None:
    """A search's round: every prompt extends one prefilled the round before (prompt + step + separator), one
    repeats it exactly and one is new. With the prefix cache those run only their new tokens; the samples are
    those of a sampler without it."""
    model, tok = load_causal_lm(model_dir)
    model = model.double()
    plain = HFSampler(model, tok, max_batch_size=4)
    cached = HFSampler(model, tok, max_batch_size=4, prefix_cache_mb=16)
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=6, seed=5, stop=["\n"])
    first = cached.generate(PROMPTS, params)
    assert _ids(first) == _ids(plain.generate(PROMPTS, params))
    assert cached.stats.cached_prompt_tokens == 0 and len(cached.prefix_cache) == len(PROMPTS)
    grown = [p + row[j].text + "\n" for p, row in zip(PROMPTS, first) for j in range(2)]
    # A new prompt as long as the grown ones in the same batch: the cached prefixes beside it are cut short, so
    # the block is never wider than the longest prompt.
    second = [grown[0], "Step 1: 40 - 8 = 32\nStep 2: 32 * 2 = 64\nStep 3: 64 + 1 = 65\nStep 4:"] + grown[1:]
    second += [PROMPTS[0], "7 * 6 ="]
    again = cached.generate(second, params)
    assert _ids(again) == _ids(plain.generate(second, params))
    assert cached.stats.prompt_tokens == plain.stats.prompt_tokens
    encoded = tok(second)["input_ids"]
    shared = sum(1 for p in second if p in grown or p == PROMPTS[0])
    assert cached.prefix_cache.hits >= shared  # every grown prompt and the repeat found their parent's KV
    assert 0 < cached.stats.cached_prompt_tokens < sum(len(ids) for ids in encoded)


def test_prompt_prefix_cache_is_bounded_and_off_where_it_cannot_apply(model_dir: Path) -> None:
    from types import SimpleNamespace

    from transformers import AutoConfig

    from prmkit.engines.hf import plain_kv_cache

    model, tok = load_causal_lm(model_dir)
    small = HFSampler(model, tok, prefix_cache_mb=1)
    small.prefix_cache.max_bytes = 40_000  # room for a few prompts' KV only
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=2, seed=1)
    small.generate([f"Step {k}: {k} + {k} = {2 * k}\nStep 2:" for k in range(40)], params)
    assert small.prefix_cache.evictions > 0 and small.prefix_cache.bytes <= 40_000
    sliding = AutoConfig.for_model(
        "qwen2", num_hidden_layers=2, use_sliding_window=True, sliding_window=8, max_window_layers=0
    )
    assert plain_kv_cache(SimpleNamespace(config=sliding)) is False  # a window drops old KV: nothing to put in front
    assert plain_kv_cache(model) is True


def test_n_samples_per_prompt_in_order(sampler64: HFSampler) -> None:
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=10, seed=3)
    out = sampler64.generate(PROMPTS, params)
    assert [len(row) for row in out] == [4] * len(PROMPTS)
    assert all(len({tuple(c.token_ids) for c in row}) > 1 for row in out)  # samples differ
    # Row i belongs to prompt i: the same prompt alone at the same position gives the same greedy text.
    greedy = SamplingParams(n=2, temperature=0, max_new_tokens=10)
    together = sampler64.generate(PROMPTS, greedy)
    for i, prompt in enumerate(PROMPTS):
        assert _ids(sampler64.generate([prompt], greedy))[0] == _ids(together)[i]


def _first_ascii(text: str, start: int) -> str:
    return next(ch for ch in text[start:] + "".join(sorted(ASCII)) if ch in ASCII)


def test_stop_strings_cut_at_first_occurrence(sampler64: HFSampler) -> None:
    tok = sampler64.tokenizer
    base = SamplingParams(n=3, temperature=1.0, max_new_tokens=24, seed=11)
    free = sampler64.generate(PROMPTS, base)
    texts = [c.text for row in free for c in row]
    singles = [_first_ascii(texts[0], 3), _first_ascii(texts[4], 8)]
    # A two-character stop that no single stop starts, so each hit names one stop unambiguously.
    two = next(
        (t[k : k + 2] for t in texts for k in range(len(t) - 1) if set(t[k : k + 2]) <= ASCII and t[k] not in singles),
        "ab",
    )
    stops = singles + [two]
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=24, seed=11, stop=stops)
    cut = sampler64.generate(PROMPTS, params)
    reasons = set()
    for row_free, row_cut in zip(free, cut):
        for f, c in zip(row_free, row_cut):
            hit = find_stop(f.text, stops)
            reasons.add(c.finish_reason)
            if hit is None:
                assert (c.text, c.finish_reason, c.stop_reason, c.token_ids) == (
                    f.text,
                    f.finish_reason,
                    None,
                    f.token_ids,
                )
                continue
            assert c.text == f.text[: hit[0]] and hit[1] not in c.text
            assert (c.finish_reason, c.stop_reason) == ("stop", hit[1])
            # generation ends on the token that completes the stop string, and not later
            m = next(
                m
                for m in range(1, f.num_tokens + 1)
                if find_stop(tok.decode(f.token_ids[:m], skip_special_tokens=True), stops)
            )
            assert c.num_tokens == m == len(c.token_ids) and c.token_ids == f.token_ids[:m]
    assert {"stop", "length"} <= reasons


def test_max_new_tokens_gives_length(sampler: HFSampler) -> None:
    params = SamplingParams(n=2, temperature=0.8, max_new_tokens=7, seed=0, ignore_eos=True)
    out = sampler.generate(PROMPTS[:2], params)
    for c in (c for row in out for c in row):
        assert (c.finish_reason, c.num_tokens, len(c.token_ids), c.stop_reason) == ("length", 7, 7, None)


def test_eos_ends_a_sequence(model_dir: Path) -> None:
    model, tok = load_causal_lm(model_dir)
    probe = HFSampler(model, tok).generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=20))[0][0]
    k = 3
    eos = probe.token_ids[k]
    k = probe.token_ids.index(eos)
    model.generation_config.eos_token_id = [tok.eos_token_id, eos]
    sampler = HFSampler(model, tok)
    got = sampler.generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=20))[0][0]
    assert (got.finish_reason, got.num_tokens, got.token_ids) == ("eos", k + 1, probe.token_ids[: k + 1])
    assert got.text == tok.decode(probe.token_ids[:k], skip_special_tokens=True)
    kept = sampler.generate([PROMPTS[1]], SamplingParams(temperature=0, max_new_tokens=20, ignore_eos=True))[0][0]
    assert (kept.finish_reason, kept.token_ids) == ("length", probe.token_ids)


def test_tiny_top_p_is_greedy(sampler: HFSampler) -> None:
    greedy = sampler.generate(PROMPTS, SamplingParams(n=2, temperature=0, max_new_tokens=12))
    nucleus = sampler.generate(PROMPTS, SamplingParams(n=2, temperature=1.0, top_p=1e-6, max_new_tokens=12, seed=9))
    assert _ids(greedy) == _ids(nucleus)


def test_sample_tokens_follows_the_distribution() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0]])
    n = 20000
    keys = sequence_keys(torch.zeros(n, dtype=torch.int64), torch.arange(n))
    u = uniforms(keys, step=3)
    assert 0 < float(u.min()) and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.01
    for temperature, top_p in [(1.0, 1.0), (0.5, 1.0), (1.0, 0.7)]:
        params = SamplingParams(temperature=temperature, top_p=top_p)
        picks = sample_tokens(logits.expand(n, -1), params, u)
        freq = torch.bincount(picks, minlength=5).double() / n
        probs = torch.softmax(logits[0].double() / temperature, -1)
        if top_p < 1:  # nucleus: smallest set of top tokens with mass >= top_p, renormalised
            keep = (probs.cumsum(-1) - probs) < top_p
            probs = torch.where(keep, probs, 0.0)
            probs = probs / probs.sum()
        assert torch.allclose(freq, probs, atol=0.015), (temperature, top_p, freq, probs)


def test_token_counts_and_stats(model_dir: Path) -> None:
    sampler = HFSampler(model_dir)
    calls: list[int] = []
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=9, seed=2, stop=["a", "e"])
    out = sampler.generate(PROMPTS, params, progress=calls.append)
    out2 = sampler.generate(PROMPTS[:2], SamplingParams(n=1, temperature=0, max_new_tokens=5))
    prompt_tokens = sum(len(sampler.tokenizer(p)["input_ids"]) for p in PROMPTS + PROMPTS[:2])
    completions = [c for row in out + out2 for c in row]
    assert all(c.num_tokens == len(c.token_ids) > 0 for c in completions)
    assert sampler.stats.prompt_tokens == prompt_tokens
    assert sampler.stats.generated_tokens == sum(c.num_tokens for c in completions)
    assert (sampler.stats.prompts, sampler.stats.completions) == (7, 17)
    assert sampler.stats.wall_s > 0
    assert sum(calls) == len(PROMPTS)
    assert sampler.generate([], params) == []


def test_batches_split_a_prompts_samples(sampler64: HFSampler) -> None:
    """max_batch_size smaller than n: one prompt's samples span several forward batches."""
    params = SamplingParams(n=5, temperature=1.0, max_new_tokens=8, seed=4)
    sampler64.max_batch_size = 2
    calls: list[int] = []
    small = sampler64.generate(PROMPTS[:2], params, progress=calls.append)
    sampler64.max_batch_size = 64
    assert _ids(small) == _ids(sampler64.generate(PROMPTS[:2], params))
    assert sum(calls) == 2


def test_bad_sampling_params_name_the_key() -> None:
    with pytest.raises(RecipeError, match=r"sampling.temperature: got -1.*>= 0"):
        SamplingParams(temperature=-1)
    with pytest.raises(RecipeError, match="sampling.top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(RecipeError, match="sampling.stop"):
        SamplingParams(stop=[""])
    assert SamplingParams(stop="\n").stop == ["\n"]


def test_missing_model_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model '.*missing' not found: no such directory"):
        make_sampler("hf", model=tmp_path / "missing")


def test_find_stop_prefers_earliest_then_longest() -> None:
    assert find_stop("ab\ncd\n\n", ["\n\n", "\n"]) == (2, "\n")
    assert find_stop("ab\n\ncd", ["\n", "\n\n"]) == (2, "\n\n")
    assert find_stop("abc", ["x"]) is None
