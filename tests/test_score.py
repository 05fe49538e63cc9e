"""`prmkit score`: scores and aggregates on disk, resumability, BiPRM, the generative scorer, one-pass batching."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from prmkit.engines import AGGREGATES, SCORERS, aggregate, make_scorer
from prmkit.engines.bidirectional import Bidirectional
from prmkit.engines.generative import combine, parse_verdicts
from prmkit.recipe import load_recipe
from prmkit.score.command import ScoreRecipe, run
from prmkit.tasks import get_task


def make_tiny_prm(path: Path, seed: int = 0) -> Path:
    """A random prmkit-format PRM (2-label token classifier, hidden 64) with its prmkit_prm.json."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from prmkit.models.tiny import make_tiny_model

    lm = make_tiny_model(path.with_name(path.name + "_lm"), hidden_size=64, num_layers=2, num_heads=2, seed=seed)
    config = AutoConfig.from_pretrained(lm)
    config.num_labels = 2
    torch.manual_seed(seed)
    model = AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():
        model.score.weight.normal_(0, 0.15)
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(lm).save_pretrained(path)
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
    (path / "prmkit_prm.json").write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    prm = make_tiny_prm(root / "prm")
    task = get_task("arithmetic")
    records = task.planted_errors(12, seed=3, difficulty=task.difficulty("medium"))
    data = root / "planted.jsonl"
    data.write_text("".join(r.to_json() + "\n" for r in records))
    return {"root": root, "prm": prm, "data": data, "records": records}


def _recipe(setup, out: Path, **prm) -> ScoreRecipe:
    path = setup["root"] / f"{out.name}.yaml"
    spec = {
        "output_dir": str(out),
        "data": {"path": str(setup["data"])},
        "chunk_size": 5,
        "prm": {"model": str(setup["prm"]), "device": "cpu", "max_batch_size": 4, **prm},
    }
    path.write_text(json.dumps(spec))
    return load_recipe(ScoreRecipe, path)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_aggregates_registry():
    assert set(AGGREGATES.names()) == {"min", "last", "prod", "mean"}
    assert aggregate([0.5, 0.8, 0.4]) == pytest.approx({"min": 0.4, "last": 0.4, "prod": 0.16, "mean": 1.7 / 3})
    assert aggregate([]) == {"min": None, "last": None, "prod": None, "mean": None}
    assert {"hf", "generative"} <= set(SCORERS.names())


def test_score_command_writes_scores_aggregates_metrics_and_resumes(setup, tmp_path):
    out = tmp_path / "run"
    rows = run(_recipe(setup, out), "recipe.yaml")
    scored = _lines(out / "scored.jsonl")
    assert len(scored) == len(setup["records"]) == rows["records"]
    for d, r in zip(scored, setup["records"]):
        assert d["id"] == r.id and len(d["scores"]) == len(r.steps)
        assert all(0.0 <= s <= 1.0 for s in d["scores"])
        assert d["meta"]["aggregates"]["min"] == pytest.approx(min(d["scores"]))
        assert d["meta"]["aggregates"]["prod"] == pytest.approx(math.prod(d["scores"]))
        assert d["meta"]["first_error"] == r.meta["first_error"]  # fields the stage does not know survive
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["compute"]["scored_tokens_this_run"] > 0 and metrics["compute"]["forward_passes_this_run"] == 5
    )  # chunks 5+5+2, batches of 4: one pass per batch, not per prefix
    assert (out / "manifest.json").exists() and (out / "recipe.yaml").exists()
    # the same scores as a direct scorer call, whatever the chunking and batching
    direct = make_scorer("hf", model=str(setup["prm"]), device="cpu", max_batch_size=32)
    want = direct.score([(r.problem, r.steps) for r in setup["records"]])
    assert all(d["scores"] == pytest.approx(w.scores, abs=1e-5) for d, w in zip(scored, want))
    # a killed run: keep 7 whole lines and a torn one; the rerun completes without losing or repeating a record
    text = (out / "scored.jsonl").read_text().splitlines(keepends=True)
    (out / "scored.jsonl").write_text("".join(text[:7]) + text[7][:30])
    rows = run(_recipe(setup, out), "recipe.yaml")
    assert rows["resumed records"] == 7
    again = _lines(out / "scored.jsonl")
    assert [d["id"] for d in again] == [d["id"] for d in scored]
    assert all(a["scores"] == pytest.approx(b["scores"], abs=1e-6) for a, b in zip(again, scored))


def test_bidirectional_averages_forward_and_reversed(setup, tmp_path):
    inner = make_scorer("hf", model=str(setup["prm"]), device="cpu")
    items = [(r.problem, r.steps) for r in setup["records"][:4]]
    both = Bidirectional(inner).score(items)
    fwd = inner.score(items)
    bwd = inner.score([(p, s[::-1]) for p, s in items])
    for b, f, r in zip(both, fwd, bwd):
        want = [(x + y) / 2 for x, y in zip(f.scores, reversed(r.scores))]
        assert b.scores == pytest.approx(want, abs=1e-6)
    out = tmp_path / "bi"
    run(_recipe(setup, out, bidirectional=True), "recipe.yaml")
    first = _lines(out / "scored.jsonl")[0]
    assert first["meta"]["score_forward"] and first["scores"] != pytest.approx(first["meta"]["score_forward"])


def test_generative_verdict_parsing():
    text = "Step 1: correct\nStep 2 is \\boxed{correct}\nStep 3: **incorrect** because...\nStep 9: correct"
    assert parse_verdicts(text, 5) == {0: True, 1: True, 2: False, 3: False, 4: False}
    assert parse_verdicts("no verdicts at all", 2) == {}
    scores, unjudged = combine([{0: True, 1: False}, {0: False}, {}], 3)
    assert scores == [0.5, 0.0, 0.5] and unjudged == 1


def test_generative_scorer_runs_through_the_sampling_engine(setup, tmp_path):
    from prmkit.models.tiny import make_tiny_model

    policy = make_tiny_model(tmp_path / "verifier", hidden_size=64, num_layers=2, num_heads=2, seed=2)
    scorer = make_scorer(
        "generative",
        model=str(policy),
        device="cpu",
        k=3,
        max_new_tokens=12,
        temperature=1.0,
        template="Problem: {problem}\n{steps}\nVerification:\n",
        seed=0,
    )
    items = [(r.problem, r.steps) for r in setup["records"][:2]]
    out = scorer.score(items)
    assert [len(o.scores) for o in out] == [len(s) for _, s in items]
    assert all(0.0 <= x <= 1.0 for o in out for x in o.scores)
    assert scorer.stats.generated_tokens > 0 and scorer.stats.scored_tokens > 0
    # the same plumbing with scripted critiques: k verdicts per step averaged, prompts list every step
    from prmkit.engines import Completion, SamplerStats

    class Scripted:
        stats = SamplerStats()
        tokenizer = None

        def generate(self, prompts, params, progress=None):
            assert params.n == 3 and all("Step 2: " in p for p in prompts)
            texts = ["Step 1: correct\nStep 2: incorrect", "Step 1: correct\nStep 2: correct", "Step 1: incorrect"]
            return [[Completion(t, "eos", 5) for t in texts] for _ in prompts]

        def close(self):
            pass

    from prmkit.engines.generative import GenerativeScorer
    from prmkit.score.recipe import PRMSpec, build_scorer

    spec = PRMSpec(model=str(policy), engine="generative", device="cpu", bidirectional=True, generative={"k": 2})
    built = build_scorer(spec, seed=1)  # the recipe's keys reach the engine's constructor
    assert isinstance(built, Bidirectional) and isinstance(built.inner, GenerativeScorer)
    assert built.inner.params["n"] == 2

    scorer.sampler = Scripted()
    scripted = scorer.score([("p", ["a", "b", "c"])])[0]
    assert scripted.scores == pytest.approx([2 / 3, 1 / 3, 0.0]) and scripted.extra["unjudged"] == 0


def test_prm_spec_errors(setup, tmp_path):
    from prmkit.errors import RecipeError

    with pytest.raises(RecipeError, match="allowed"):
        _recipe(setup, tmp_path / "x", engine="nope")
    with pytest.raises(RecipeError, match="did you mean"):
        _recipe(setup, tmp_path / "y", format="qwen_prn")
