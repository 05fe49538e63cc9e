"""`prmkit train`: objectives (sft, prm with hard/soft labels and both heads, implicit), losses, truncation
reports, bad-label errors, checkpoint metadata, LoRA merge and resume. Tiny models (hidden 64), few steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from prmkit.errors import DataError, RecipeError
from prmkit.formats import PrmkitFormat, format_for_checkpoint, read_metadata
from prmkit.recipe import validate
from prmkit.records import Record
from prmkit.tasks import get_task
from prmkit.train.collate import PadCollator
from prmkit.train.command import run
from prmkit.train.objectives import make_objective
from prmkit.train.objectives.prm import soft_bce
from prmkit.train.recipe import TrainRecipe

TASK = get_task("arithmetic")
TINY = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "intermediate_size": 128}


def write_jsonl(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(r.to_json() + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-data")
    planted = TASK.planted_errors(64, 7, "easy", correct_share=0.4)
    soft = []
    for r in planted[:32]:  # soft labels: MC-like rates, strictly inside (0, 1) on some steps
        d = r.to_dict()
        d["labels"] = [0.75 if lab == 1.0 else 0.25 for lab in r.labels]
        soft.append(Record.from_dict(d))
    problems = [TASK.to_record(p) for p in TASK.make_problems(96, 3, "easy")]
    return {
        "hard": write_jsonl(root / "planted.jsonl", planted[:48]),
        "hard_eval": write_jsonl(root / "planted_eval.jsonl", planted[48:]),
        "soft": write_jsonl(root / "soft.jsonl", soft),
        "sft": write_jsonl(root / "sft.jsonl", problems[:80]),
        "sft_eval": write_jsonl(root / "sft_eval.jsonl", problems[80:]),
    }


@pytest.fixture(scope="module")
def policy(tmp_path_factory, data) -> Path:
    """A tiny policy trained from scratch by the sft objective (also the sft test)."""
    out = tmp_path_factory.mktemp("policy")
    recipe = make_recipe(
        out,
        "sft",
        data["sft"],
        init={"tiny": TINY},
        steps={"style": "lines"},
        training={"max_steps": 40, "learning_rate": 3e-3, "batch_size": 16, "logging_steps": 5},
        eval={
            "data": {"path": str(data["sft_eval"])},
            "task": "arithmetic",
            "problems": 8,
            "temperatures": [0.0],
            "max_new_tokens": 40,
        },
    )
    run(recipe, "test")
    return out


def make_recipe(out: Path, objective: str, path: Path, **sections) -> TrainRecipe:
    d = {
        "output_dir": str(out),
        "objective": objective,
        "data": {"path": str(path)},
        "max_length": 256,
        "training": {"max_steps": 6, "batch_size": 8, "learning_rate": 1e-3, "logging_steps": 1, "save_steps": 50},
    }
    for key, value in sections.items():
        d[key] = {**d.get(key, {}), **value} if isinstance(value, dict) else value
    return validate(TrainRecipe, d, "test recipe")


def test_sft_from_scratch_learns_and_generates(policy):
    metrics = json.loads((policy / "metrics.json").read_text())
    losses = [h["loss"] for h in metrics["loss_history"]]
    assert losses[-1] < losses[0] * 0.7, losses
    assert metrics["compute"]["trained_tokens_total"] > 0 and metrics["compute"]["tokens_per_s"] > 0
    assert "answer_accuracy@T0" in metrics["policy"] and metrics["eval"]["eval_loss"] < losses[0]
    assert read_metadata(policy / "final")["objective"] == "sft"
    from prmkit.engines import SamplingParams
    from prmkit.engines.hf import HFSampler

    sampler = HFSampler(str(policy / "final"))
    ((completion,),) = sampler.generate(
        ["Start at 3. Add 2. What is the result?\n"], SamplingParams(temperature=0, max_new_tokens=30)
    )
    assert completion.num_tokens > 0 and completion.text.strip()


@pytest.mark.parametrize("head", ["token_classification", "lm"])
@pytest.mark.parametrize("labels", ["hard", "soft"])
def test_prm_heads_and_label_types(tmp_path, data, policy, head, labels):
    recipe = make_recipe(
        tmp_path,
        "prm",
        data[labels],
        init={"model": str(policy / "final")},
        prm={"head": head},
        eval={"data": {"path": str(data["hard_eval"])}},
    )
    rows = run(recipe, "test")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert math.isfinite(metrics["train"]["loss_last"]) and metrics["train"]["steps"] == 6
    for key in ("step_accuracy", "step_f1", "first_error_f1", "error_accuracy", "correct_accuracy"):
        assert key in metrics["eval"]
    meta = read_metadata(tmp_path / "final")
    assert meta["head"] == head and meta["label_type"] == labels and meta["objective"] == "prm"
    fmt = format_for_checkpoint(tmp_path / "final")
    assert fmt == PrmkitFormat(head=head)
    assert rows["training records"] == (48 if labels == "hard" else 32)


def test_prm_loss_decreases(tmp_path, data, policy):
    recipe = make_recipe(
        tmp_path,
        "prm",
        data["hard"],
        init={"model": str(policy / "final")},
        training={"max_steps": 30, "learning_rate": 3e-3},
    )
    run(recipe, "test")
    losses = [h["loss"] for h in json.loads((tmp_path / "metrics.json").read_text())["loss_history"]]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def test_soft_label_reaches_the_loss_unchanged(tmp_path, data, policy):
    recipe = make_recipe(tmp_path, "prm", data["soft"], init={"model": str(policy / "final")})
    objective = make_objective(recipe)
    from prmkit.train.init_model import load_for_training

    model, tok = load_for_training(str(policy / "final"), objective.model_kind)
    objective.setup(model, tok, str(policy / "final"))
    rec = Record(
        id="r1",
        problem="Start at 3. Add 2. What is the result?",
        steps=["3 + 2 = 5", "The answer is 5."],
        labels=[1.0, 0.25],
    )
    enc = objective.encode([rec], tok, "mem")
    batch = PadCollator(tok.pad_token_id)(enc.features)
    supervised = batch["targets"][batch["targets"] != -100.0]
    assert supervised.dtype == torch.float32 and supervised.tolist() == [1.0, 0.25]
    # the soft BCE is minimal (zero gradient) exactly where P(good) equals the soft label 0.25
    logits = torch.tensor([[math.log(0.75), math.log(0.25)]], requires_grad=True)
    soft_bce(logits, torch.tensor([0.25])).backward()
    assert logits.grad.abs().max() < 1e-6
    loss = objective.compute_loss(model, batch)
    rows, cols = (batch["targets"] != -100.0).nonzero(as_tuple=True)
    logp = torch.log_softmax(model(input_ids=batch["input_ids"]).logits[rows, cols], -1)
    expected = -(torch.tensor([1.0, 0.25]) * logp[:, 1] + torch.tensor([0.0, 0.75]) * logp[:, 0]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_truncation_is_reported(tmp_path, data, policy):
    recipe = make_recipe(
        tmp_path, "prm", data["hard"], init={"model": str(policy / "final")}, max_length=95, training={"max_steps": 2}
    )
    rows = run(recipe, "test")
    stats = json.loads((tmp_path / "metrics.json").read_text())["data"]
    assert stats["dropped_labels"] > 0 and stats["truncated_records"] > 0
    assert rows["labels dropped by max_length"] == stats["dropped_labels"]
    records = [Record.from_dict(json.loads(line)) for line in data["hard"].read_text().splitlines()]
    assert stats["labels"] + stats["dropped_labels"] == sum(len(r.steps) for r in records)


def test_label_count_mismatch_names_record_and_file(tmp_path, policy):
    bad = write_jsonl(tmp_path / "bad.jsonl", [Record(id="oops-7", problem="p", steps=["a", "b"], labels=[1.0])])
    recipe = make_recipe(tmp_path / "out", "prm", bad, init={"model": str(policy / "final")})
    with pytest.raises(DataError, match=r"bad\.jsonl: record 'oops-7' has 1 labels for 2 steps"):
        run(recipe, "test")


def test_unknown_objective_lists_allowed(tmp_path, data):
    with pytest.raises(RecipeError, match="allowed: implicit, likelihood, prm, sft"):
        make_recipe(tmp_path, "dpo", data["hard"], init={"model": "x"})


def test_last_step_only_is_an_orm(tmp_path, data, policy):
    recipe = make_recipe(
        tmp_path,
        "prm",
        data["hard"],
        init={"model": str(policy / "final")},
        prm={"last_step_only": True},
        eval={"data": {"path": str(data["hard_eval"])}},
    )
    run(recipe, "test")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"]["labels"] == 48 and "outcome_accuracy" in metrics["eval"]
    assert read_metadata(tmp_path / "final")["last_step_only"] is True


def test_implicit_prm(tmp_path, data, policy):
    recipe = make_recipe(
        tmp_path,
        "implicit",
        data["hard"],
        init={"model": str(policy / "final")},
        implicit={"beta": 0.1},
        eval={"data": {"path": str(data["hard_eval"])}},
    )
    objective = make_objective(recipe)
    from prmkit.train.init_model import load_for_training

    model, tok = load_for_training(str(policy / "final"), "causal_lm")
    objective.setup(model, tok, str(policy / "final"))
    records = [Record.from_dict(json.loads(line)) for line in data["hard"].read_text().splitlines()][:4]
    batch = PadCollator(tok.pad_token_id)(objective.encode(records, tok, "mem").features)
    # policy == reference: every implicit reward is 0, so the loss is log 2 and every step scores 0.5
    assert objective.compute_loss(model, batch).item() == pytest.approx(math.log(2), abs=1e-5)
    assert all(s == pytest.approx(0.5) for row in objective.step_scores(model, batch) for s in row)
    run(recipe, "test")
    meta = read_metadata(tmp_path / "final")
    assert meta["format"] == "implicit" and meta["objective"] == "implicit"
    assert meta["implicit"]["beta"] == 0.1 and Path(meta["implicit"]["reference_model"]).is_dir()
    fmt = format_for_checkpoint(tmp_path / "final")  # the score stage's implicit format, rebuilt from metadata
    assert (fmt.name, fmt.beta, fmt.reference_model) == ("implicit", 0.1, meta["implicit"]["reference_model"])
    assert "outcome_accuracy" in json.loads((tmp_path / "metrics.json").read_text())["eval"]


@pytest.mark.parametrize("targets", [["q_proj", "v_proj"], "all-linear"])
def test_lora_is_merged_into_a_plain_checkpoint(tmp_path, data, policy, targets):
    from transformers import AutoModelForTokenClassification

    recipe = make_recipe(
        tmp_path,
        "prm",
        data["hard"],
        init={"model": str(policy / "final")},
        lora={"r": 4, "alpha": 8, "target_modules": targets},
    )
    run(recipe, "test")
    final = tmp_path / "final"
    assert not (final / "adapter_config.json").exists()
    model = AutoModelForTokenClassification.from_pretrained(final)
    assert model.config.num_labels == 2
    base = AutoModelForTokenClassification.from_pretrained(policy / "final", num_labels=2)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(model.state_dict()[q], base.state_dict()[q])


def test_resume_continues_from_last_checkpoint(tmp_path, data, policy):
    first = make_recipe(
        tmp_path, "prm", data["hard"], init={"model": str(policy / "final")}, training={"max_steps": 4, "save_steps": 2}
    )
    run(first, "test")
    assert (tmp_path / "checkpoint-4" / "prmkit_train_state.json").is_file()
    again = make_recipe(
        tmp_path, "prm", data["hard"], init={"model": str(policy / "final")}, training={"max_steps": 6, "save_steps": 2}
    )
    run(again, "test")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["train"]["resumed_from"].endswith("checkpoint-4") and metrics["train"]["steps"] == 6
    assert metrics["compute"]["trained_tokens_total"] > metrics["compute"]["trained_tokens_this_run"] > 0


def test_implicit_step_target_puts_each_label_on_its_step(tmp_path, data, policy):
    """implicit.target=steps: the loss is BCE of each step's cumulative reward against that step's label."""
    recipe = make_recipe(
        tmp_path,
        "implicit",
        data["hard"],
        init={"model": str(policy / "final")},
        implicit={"beta": 0.1, "target": "steps"},
    )
    objective = make_objective(recipe)
    from prmkit.train.init_model import load_for_training

    model, tok = load_for_training(str(policy / "final"), "causal_lm")
    objective.setup(model, tok, str(policy / "final"))
    records = [Record.from_dict(json.loads(line)) for line in data["hard"].read_text().splitlines()][:4]
    encoded = objective.encode(records, tok, "mem")
    for rec, feat in zip(records, encoded.features):
        on = [t for t in feat["targets"] if t != -100.0]
        assert on == [float(x) for x in rec.labels]
    batch = PadCollator(tok.pad_token_id)(encoded.features)
    # policy == reference: every cumulative reward is 0, so each step's BCE is log 2 whatever its label
    assert objective.compute_loss(model, batch).item() == pytest.approx(math.log(2), abs=1e-5)
    unlabelled = Record.from_dict({**records[0].to_dict(), "labels": None, "correct": True})
    with pytest.raises(DataError, match="no step labels"):
        objective.encode([unlabelled], tok, "mem.jsonl")
    run(recipe, "test")
    assert read_metadata(tmp_path / "final")["implicit"]["target"] == "steps"


def test_fit_logistic_recovers_a_known_calibration():
    from prmkit.train.objectives.likelihood import fit_logistic

    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, generator=g) * 4 - 3
    y = torch.bernoulli(torch.sigmoid(0.8 * x + 1.5), generator=g)
    scale, bias = fit_logistic(x, y)
    assert scale == pytest.approx(0.8, abs=0.05) and bias == pytest.approx(1.5, abs=0.1)


def test_scored_mask_leaves_out_prompt_and_separators():
    from prmkit.train.objectives.likelihood import scored_mask

    # prompt (0), step 1 of 3 tokens + 1 separator token, step 2 of 2 tokens + 1 separator token
    assert scored_mask([0, 0, 1, 1, 1, 1, 2, 2, 2], 1) == [0, 0, 1, 1, 1, 0, 1, 1, 0]
    assert scored_mask([0, 1, 1, 1, 2, 2, 2], 2) == [0, 1, 0, 0, 1, 0, 0]


def test_likelihood_prm_scores_the_same_in_training_and_score(tmp_path, data, policy):
    """objective likelihood: calibration fitted and saved; HFScorer reads the checkpoint to the same step scores;
    scores never rise along a solution."""
    from prmkit.engines.hf_scorer import HFScorer
    from prmkit.train.init_model import load_for_training

    recipe = make_recipe(
        tmp_path,
        "likelihood",
        data["hard"],
        init={"model": str(policy / "final")},
        training={"max_steps": 3, "learning_rate": 1e-5},
        eval={"data": {"path": str(data["hard_eval"])}},
    )
    run(recipe, "test")
    meta = read_metadata(tmp_path / "final")
    assert meta["format"] == "likelihood" and meta["scale"] != 1.0 and math.isfinite(meta["bias"])
    fmt = format_for_checkpoint(tmp_path / "final")
    assert (fmt.name, fmt.scale, fmt.bias) == ("likelihood", meta["scale"], meta["bias"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "first_error_f1" in metrics["eval"]

    records = [Record.from_dict(json.loads(line)) for line in data["hard_eval"].read_text().splitlines()][:6]
    objective = make_objective(recipe)
    model, tok = load_for_training(str(tmp_path / "final"), "causal_lm")
    objective.setup(model, tok, str(tmp_path / "final"))
    objective.calibration = (meta["scale"], meta["bias"])
    batch = PadCollator(tok.pad_token_id)(objective._encode(records, tok, "mem", need_step_labels=False).features)
    trained = objective.step_scores(model.eval(), batch)
    scored = HFScorer(tmp_path / "final", dtype="float32", device="cpu").score([(r.problem, r.steps) for r in records])
    for a, b in zip(trained, scored):
        assert a == pytest.approx(b.scores, abs=1e-4)
        assert all(x >= y - 1e-9 for x, y in zip(b.scores, b.scores[1:]))


def test_likelihood_format_sums_step_text_logprobs(policy):
    """The score of step i is sigmoid(scale * (log-probs of the texts of steps 1..i) + bias), separators left out."""
    from prmkit.formats.likelihood import LikelihoodFormat

    fmt = LikelihoodFormat(scale=1.0, bias=0.0)
    tok = __import__("transformers").AutoTokenizer.from_pretrained(policy / "final")
    enc = fmt.encode(tok, "p", ["a b", "c"])
    n = len(enc.input_ids)
    logp = [0.0] + [-1.0] * (n - 1)
    scores = fmt.step_scores(logp, enc.step_positions, **enc.extra)
    # every step-text token costs 1 nat; the separators are left out
    first = len(tok("a b", add_special_tokens=False)["input_ids"])
    second = first + len(tok("c", add_special_tokens=False)["input_ids"])
    assert scores == pytest.approx([1 / (1 + math.exp(first)), 1 / (1 + math.exp(second))])


@pytest.mark.parametrize("head", ["token_classification", "lm"])
def test_the_model_cards_snippet_scores_as_prmkit_does(tmp_path, data, policy, head):
    """The checkpoint's README.md shows how to score with plain transformers; run that code, compare with prmkit."""
    import re

    from prmkit.engines import make_scorer

    recipe = make_recipe(
        tmp_path,
        "prm",
        data["hard"],
        init={"model": str(policy / "final")},
        prm={"head": head},
        eval={"data": {"path": str(data["hard_eval"])}},
    )
    run(recipe, "test")
    card = (tmp_path / "final" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers") and f"head `{head}`" in card
    assert "first_error_f1" in card and "## prmkit_prm.json" in card
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "model card", "exec"), namespace)  # the card's own snippet, as a user would paste it
    problem, steps = "Start at 3. Add 4. What is the result?", ["3 + 4 = 7", "The answer is 7."]
    mine = namespace["step_scores"](problem, steps)
    scorer = make_scorer("hf", model=str(tmp_path / "final"), format="auto", device="cpu")
    [theirs] = scorer.score([(problem, steps)])
    assert mine == pytest.approx(theirs.scores, abs=1e-5) and len(mine) == 2
