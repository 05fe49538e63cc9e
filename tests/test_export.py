"""`prmkit export`: labelled records into TRL's, OpenRLHF's and a Hugging Face data set's layout, each read back:
with `datasets`, with prmkit's own TRL reader (a round trip), and with OpenRLHF's placeholder rule on a tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from prmkit.data import load_records
from prmkit.errors import DataError
from prmkit.export.command import run
from prmkit.export.recipe import ExportRecipe
from prmkit.records import Record


@pytest.fixture
def labelled(tmp_path) -> Path:
    """An annotate run's folder: labels.jsonl with hard and soft labels, its recipe.yaml and metrics.json."""
    run_dir = tmp_path / "annotate"
    run_dir.mkdir()
    records = [
        Record(
            id="p1/s0",
            problem="Start at 3. Add 4. Double it.",
            steps=["3 + 4 = 7", "7 * 2 = 15", "The answer is 15."],
            labels=[1.0, 0.0, 0.0],
            meta={"annotation": {"soft": [1.0, 0.25, 0.0]}},
        ),
        Record(
            id="p2/s0",
            problem="Start at 5. Add 1.",
            steps=["5 + 1 = 6", "The answer is 6."],
            labels=[1.0, 1.0],
            meta={"annotation": {"soft": [0.75, 1.0]}},
        ),
    ]
    (run_dir / "labels.jsonl").write_text("".join(r.to_json() + "\n" for r in records))
    (run_dir / "recipe.yaml").write_text(
        yaml.safe_dump({"method": {"name": "binary"}, "rollout": {"k": 4}, "policy": {"model": "runs/q/policy/final"}})
    )
    (run_dir / "metrics.json").write_text(
        json.dumps(
            {
                "audit": {"labels": {"step_accuracy": 0.93, "first_error_f1": 0.81, "solutions": 2}},
                "cost": {"rollouts": 24, "generated_tokens": 900},
            }
        )
    )
    return run_dir / "labels.jsonl"


def export(tmp_path, labelled, to, **extra):
    recipe = ExportRecipe.model_validate(
        {"output_dir": str(tmp_path / to), "data": {"path": str(labelled)}, "to": to, **extra}
    )
    run(recipe, "r.yaml")
    return tmp_path / to


def test_trl_rows_read_back_with_datasets_and_with_prmkits_trl_reader(tmp_path, labelled):
    import datasets

    out = export(tmp_path, labelled, "trl")
    ds = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    assert ds.column_names == ["id", "prompt", "completions", "labels"]
    assert ds[0]["labels"] == [True, False, False] and ds[1]["completions"] == ["5 + 1 = 6", "The answer is 6."]
    back = list(load_records(str(out / "train.jsonl"), layout="trl"))
    assert [(r.problem, r.steps, r.labels) for r in back] == [
        ("Start at 3. Add 4. Double it.", ["3 + 4 = 7", "7 * 2 = 15", "The answer is 15."], [1.0, 0.0, 0.0]),
        ("Start at 5. Add 1.", ["5 + 1 = 6", "The answer is 6."], [1.0, 1.0]),
    ]
    soft = export(tmp_path / "s", labelled, "trl", labels="soft")
    assert [json.loads(x)["labels"] for x in (soft / "train.jsonl").read_text().splitlines()] == [
        [1.0, 0.25, 0.0],
        [0.75, 1.0],
    ]


def test_the_card_says_where_the_labels_came_from(tmp_path, labelled):
    text = (export(tmp_path, labelled, "trl") / "README.md").read_text()
    assert text.startswith("---\ntags: [process-reward-model, step-labels, prmkit]")
    assert "2 solutions, 5 labelled steps, hard labels" in text
    assert "method `binary`, k = 4 rollouts per prefix, policy `runs/q/policy/final`" in text
    assert "step accuracy 0.930, first-error F1 0.810" in text and "24 rollouts, 900 generated tokens" in text


def test_hf_parquet_loads_with_datasets(tmp_path, labelled):
    import datasets

    out = export(tmp_path, labelled, "hf")
    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "train.parquet"), split="train")
    assert len(ds) == 2 and ds[0]["labels"] == [True, False, False]
    assert "path: data/train.parquet" in (out / "README.md").read_text()


def test_openrlhf_has_one_placeholder_per_label_as_its_dataset_counts_them(tmp_path, labelled):
    """OpenRLHF's ProcessRewardDataset puts the i-th label at the i-th placeholder token of the tokenized input."""
    from prmkit.models.tiny import train_tokenizer

    out = export(tmp_path, labelled, "openrlhf")
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert rows[0]["value"] == ["+", "-", "-"] and rows[1]["value"] == ["+", "+"]
    tok = train_tokenizer(kind="char", extra_tokens=["ки"])
    tag = tok.convert_tokens_to_ids("ки")
    for row in rows:
        ids = tok(row["input"], add_special_tokens=False)["input_ids"]
        assert ids.count(tag) == len(row["value"])
    assert "--placeholder_token ки" in (out / "README.md").read_text()


def test_records_without_step_labels_are_refused(tmp_path):
    data = tmp_path / "x.jsonl"
    data.write_text(Record(id="a", problem="p", steps=["s"]).to_json() + "\n")
    with pytest.raises(DataError, match="record 'a' has no label per step"):
        export(tmp_path, data, "trl")


def test_push_to_hub_offline_is_a_clear_error_before_any_work(labelled, tmp_path, monkeypatch):
    """No network here: the Hub does not answer (or offline mode is on), and nothing is written."""
    out = tmp_path / "pushed"
    recipe = ExportRecipe.model_validate(
        {"output_dir": str(out), "data": {"path": str(labelled / "labels.jsonl")}, "push_to_hub": "me/labels"}
    )
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: as with no network
    with pytest.raises(DataError, match=r"push_to_hub 'me/labels': the Hub \(127.0.0.1:9\) does not answer"):
        run(recipe, "r.yaml")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="HF_HUB_OFFLINE is set"):
        run(recipe, "r.yaml")
    assert not out.exists()


def test_export_a_run_folder_without_a_recipe(labelled, tmp_path):
    from test_cli import run_cli  # tests/ is on sys.path

    out = tmp_path / "trl"
    res = run_cli("export", str(labelled), "--output", str(out), "to=trl", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["records"] == 2
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert rows[0]["labels"] == [True, False, False]
    res = run_cli("export", str(labelled), "--to", "openrlhf", "--labels=soft", "--output", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    soft = [json.loads(x) for x in (tmp_path / "o" / "train.jsonl").read_text().splitlines()]
    assert soft[0]["value"] == [1.0, 0.25, 0.0] and "input" in soft[0]


def trl_prm_trainer():
    """TRL's PRMTrainer: top-level in trl 0.x, under trl.experimental.prm in 1.x up to 1.13 (removed in 1.14)."""
    trl = pytest.importorskip("trl", reason="TRL is not installed (make test installs trl 0.24 with --no-deps)")
    if hasattr(trl, "PRMTrainer"):
        return trl.PRMTrainer
    try:
        from trl.experimental.prm import PRMTrainer
    except ImportError:
        pytest.skip(f"trl {trl.__version__} ships no PRMTrainer (0.x and 1.x up to 1.13 do; make test installs 0.24)")
    return PRMTrainer


def test_trl_rows_through_trls_own_prm_tokenizer(labelled, tmp_path):
    """TRL's PRMTrainer.tokenize_row (trl 0.24, `make test` installs it; 1.13 works too) reads the exported rows:
    one label per step, on the step separator's token, in the order exported."""
    import inspect

    import datasets
    from transformers import AutoTokenizer

    from prmkit.models.tiny import make_tiny_model

    trainer = trl_prm_trainer()
    out = export(tmp_path, labelled, "trl")
    rows = datasets.load_dataset("json", data_files=str(out / "train.jsonl"), split="train")
    tokenizer = AutoTokenizer.from_pretrained(make_tiny_model(tmp_path / "lm"))
    options = {
        "step_separator": "\n",
        "max_length": None,
        "max_prompt_length": None,
        "max_completion_length": None,
        "train_on_last_step_only": False,
        "is_eval": False,
    }
    taken = inspect.signature(trainer.tokenize_row).parameters
    for row in rows:
        features = trainer.tokenize_row(row, tokenizer, **{k: v for k, v in options.items() if k in taken})
        marked = [y for y in features["labels"] if y != -100]
        assert marked == [int(x) for x in row["labels"]]


def test_openrlhf_rows_through_openrlhfs_own_process_reward_dataset(tmp_path, labelled):
    """OpenRLHF's ProcessRewardDataset (openrlhf 0.8.5, `make test` installs it) reads the exported rows: each
    label lands on its step's placeholder token, as OpenRLHF's PRM trainer reads it."""
    pytest.importorskip("openrlhf", reason="OpenRLHF is not installed (make test installs 0.8.5 with --no-deps)")
    from types import SimpleNamespace

    from openrlhf.datasets import ProcessRewardDataset

    from prmkit.models.tiny import train_tokenizer

    out = export(tmp_path, labelled, "openrlhf")
    rows = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    tok = train_tokenizer(kind="char", extra_tokens=["ки"])
    args = SimpleNamespace(input_key="input", label_key="value", placeholder_token="ки", reward_tokens=["+", "-"])
    columns = {"input": [r["input"] for r in rows], "value": [r["value"] for r in rows]}
    dataset = ProcessRewardDataset(columns, tok, max_length=2048, strategy=SimpleNamespace(args=args))
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    for k, row in enumerate(rows):
        input_ids, _, labels = dataset[k]
        marked = labels[labels != -100].tolist()
        assert marked == [plus if v == "+" else minus for v in row["value"]]
        assert (input_ids[labels != -100] == tok.convert_tokens_to_ids("ки")).all()
