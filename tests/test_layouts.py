"""Reading the popular data layouts into Records: fixtures of real rows, plus counts over the full shared copies."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from prmkit.data.layouts import detect_layout, layout_names, load_records
from prmkit.data.readers import read_rows
from prmkit.errors import DataError, RecipeError

FIX = Path(__file__).parent / "fixtures" / "data"
SHARED = Path(__file__).parents[2] / "shared" / "data"


def load(name: str, **kw) -> list:
    return list(load_records(FIX / name, **kw))


# ---------------------------------------------------------------- readers


def test_broken_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a" 3}\n', encoding="utf-8")
    rows = read_rows(path)
    assert next(rows) == (str(path), 1, {"a": 1})
    assert next(rows) == (str(path), 3, {"a": 2})  # blank line 2 skipped, numbering kept
    with pytest.raises(DataError) as err:
        next(rows)
    msg = str(err.value)
    assert "x.jsonl line 4" in msg and "invalid JSON" in msg and "column" in msg


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "y.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"y\.jsonl line 2: expected a JSON object, got list"):
        list(read_rows(path))


def test_broken_line_through_load_records(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    good = (FIX / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines()[0]
    path.write_text(good + "\n" + good[:-5] + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.jsonl line 2: invalid JSON"):
        list(load_records(path))


def test_json_object_with_data_key_and_parquet(tmp_path: Path) -> None:
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"version": 1, "data": [{"a": 1}, {"a": 2}]}), encoding="utf-8")
    assert [n for _, n, _ in read_rows(path)] == [1, 2]
    rows = list(read_rows(FIX / "prm800k_phase1_test_stepwise.parquet"))
    assert len(rows) == 50 and rows[0][1] == 1 and rows[-1][1] == 50
    assert rows[1][2]["rating"] == -1 and rows[6][2]["rating"] is None  # nulls stay None, not NaN


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.jsonl: no such file"):
        list(read_rows(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match="no such file"):
        list(read_rows("./missing/dir"))
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"unsupported file type '\.csv'"):
        list(read_rows(csv))


def test_directory_reads_sorted_files_and_split_picks_a_stem(tmp_path: Path) -> None:
    for name in ("train.jsonl", "test.jsonl", "notes.txt"):
        (tmp_path / name).write_text(f'{{"n": "{name}"}}\n', encoding="utf-8")
    assert [r["n"] for _, _, r in read_rows(tmp_path)] == ["test.jsonl", "train.jsonl"]
    assert [r["n"] for _, _, r in read_rows(tmp_path, split="train")] == ["train.jsonl"]
    with pytest.raises(DataError, match="no file for split 'dev'.*test, train"):
        list(read_rows(tmp_path, split="dev"))


def test_hub_failure_is_a_clear_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/ds' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="cannot load data set 'someone/ds' from the Hub .*pass a local path"):
        list(load_records("someone/ds", split="test"))


def test_hub_rows_get_origin_and_same_ids_as_local(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    rows = [json.loads(line) for line in (FIX / "gsm8k_test.jsonl").read_text(encoding="utf-8").splitlines()]
    calls = []

    def fake(path, name=None, split=None):
        calls.append((path, name, split))
        table = datasets.Dataset.from_list(rows)
        return table if split else datasets.DatasetDict({"test": table})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    hub = list(load_records("openai/gsm8k", subset="main", split="test"))
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [r.id for r in hub] == ["test-1", "test-2", "test-3"]  # same ids as a local test.jsonl
    assert [r.steps for r in hub] == [r.steps for r in load("gsm8k_test.jsonl")]
    origins = {o for o, _, _ in read_rows("openai/gsm8k", subset="main")}
    assert origins == {"hf://openai/gsm8k/main/test"}


# ---------------------------------------------------------------- adapters on real rows


def test_processbench_first_error_labels() -> None:
    recs = load("processbench_gsm8k.json")
    first = recs[0]
    assert first.id == "gsm8k-0" and len(first.steps) == 4
    assert first.meta["first_error"] == 1 and first.first_error == 1
    assert first.labels == [1.0, 0.0, 0.0, 0.0]  # steps after the first error count as wrong
    assert first.correct is False and first.meta["generator"] == "Qwen2-7B-Instruct"
    clean = recs[-1]
    assert clean.meta["first_error"] == -1 and clean.first_error == -1 and set(clean.labels) == {1.0}


def test_processbench_math688_kept_as_in_file() -> None:
    (rec,) = load("processbench_math688.json")
    assert rec.id == "math-688" and rec.first_error == 2 and rec.correct is True and len(rec.steps) == 8


def test_gsm8k_steps_reference_and_calculator_option() -> None:
    recs = load("gsm8k_test.jsonl")
    janet = recs[0]
    assert janet.reference == janet.answer == "18" and janet.correct is True and janet.labels is None
    assert janet.steps == [
        "Janet sells 16 - 3 - 4 = 9 duck eggs a day.",
        "She makes 9 * 2 = $18 every day at the farmer’s market.",
    ]
    assert recs[2].reference == "2125"  # '#### 2,125' loses its comma
    kept = load("gsm8k_test.jsonl", layout="gsm8k", keep_calculator=True)
    assert kept[0].steps[0] == "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day."


def test_math500_paragraphs_keep_asy_whole() -> None:
    rec = load("math500_test.jsonl")[0]
    assert rec.id == "test/precalculus/807.json"
    assert rec.reference == r"\left( 3, \frac{\pi}{2} \right)"
    assert len(rec.steps) == 3 and rec.steps[1].startswith("[asy]") and rec.steps[1].endswith("[/asy]")
    assert rec.meta["subject"] == "Precalculus" and rec.meta["level"] == 2


def test_math_reference_from_boxed_when_answer_absent(tmp_path: Path) -> None:
    path = tmp_path / "hendrycks.jsonl"
    solution = "First.\n\nSo $\\boxed{\\frac{1}{2}}$ and not \\boxed{3}... $\\boxed{\\{1,2\\}}$."
    row = {"problem": "p", "solution": solution, "level": "Level 1", "type": "Algebra"}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (rec,) = load_records(path)
    assert rec.reference == r"\{1,2\}" and rec.steps[0] == "First." and rec.id == "hendrycks-1"
    assert rec.meta["type"] == "Algebra"


def test_math_shepherd_labels_problem_and_answer() -> None:
    recs = load("math_shepherd_samples.jsonl")
    first = recs[0]
    assert first.problem.startswith("Janet pays $40/hour") and first.problem.endswith("in a year?")
    assert first.labels == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert first.steps[0] == "Step 1: Janet spends 3 hours + 5 hours = <<3+5=8>>8 hours per week on music lessons."
    assert first.answer == "13520" and first.correct is False and first.meta["task"] == "GSM8K"
    assert all(len(r.steps) == len(r.labels) for r in recs)


def test_math_shepherd_label_that_does_not_mirror_input(tmp_path: Path) -> None:
    path = tmp_path / "ms.jsonl"
    row = {"input": "Q? Step 1: a ки\nStep 2: b ки", "label": "Q? Step 1: a +\nStep 2: b ?"}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ms\.jsonl line 1: math_shepherd layout: .*'\?' where step 2"):
        list(load_records(path, layout="math_shepherd", skip_bad_rows=False))


def _ms_row(text: str) -> dict:
    """A Math-Shepherd row: 'input' with ' ки' tags, 'label' the same text with each tag as + (or - for '-ки')."""
    label = text.replace("-ки", "-").replace("ки", "+")
    return {"input": text.replace("-ки", "ки"), "label": label}


def test_math_shepherd_problem_ends_where_trl_finds_it(tmp_path: Path) -> None:
    """'Step 1:', else 'step 1:', else after the first '?'; a tag inside the problem is dropped with its label."""
    rows = [
        _ms_row("How many? Step 1: 2 + 2 = 4 ки\nStep 2: The answer is: 4 ки"),
        _ms_row("How many? step 1: 2 + 2 = 4 ки\nstep 2: The answer is: 4 -ки"),
        _ms_row("How many? First add 2 and 2 to get 4. ки\nThe answer is: 4 ки"),
        _ms_row("Mr. Rocky sells ки jam. How much? Step 1: 3 jars ки\nStep 2: The answer is: 3 ки"),
    ]
    path = tmp_path / "ms.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    a, b, c, d = list(load_records(path))
    assert (a.problem, a.steps[0], a.labels) == ("How many?", "Step 1: 2 + 2 = 4", [1.0, 1.0])
    assert (b.problem, b.steps[0], b.labels, b.correct) == ("How many?", "step 1: 2 + 2 = 4", [1.0, 0.0], False)
    assert (c.problem, c.steps, c.labels) == (
        "How many?",
        ["First add 2 and 2 to get 4.", "The answer is: 4"],
        [1.0, 1.0],
    )
    assert d.problem == "Mr. Rocky sells  jam. How much?" and d.labels == [1.0, 1.0] and d.meta["stray_tags"] == 1
    assert d.steps == ["Step 1: 3 jars", "Step 2: The answer is: 3"]


def test_math_shepherd_bad_rows_are_skipped_and_counted(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ms.jsonl"
    rows = [
        _ms_row("Q? Step 1: a ки"),
        {"input": "no tags here", "label": "no tags here"},
        _ms_row("Q2? Step 1: b ки"),
        {"input": "Q? Step 1: a ки", "label": "mismatch"},
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    recs = list(load_records(path))
    assert [r.problem for r in recs] == ["Q?", "Q2?"]
    err = capsys.readouterr().err
    assert "skipped 2 row(s)" in err and "ms.jsonl line 2" in err


def test_bigbench_mistake() -> None:
    recs = load("bigbench_mistake_multistep_arithmetic.jsonl")
    assert recs[0].labels == [1.0, 1.0, 1.0, 0.0, 0.0] and recs[0].first_error == 3
    assert recs[0].answer == "1244" and recs[0].reference == "-2116" and recs[0].correct is False
    assert recs[1].meta["first_error"] == -1 and recs[1].correct is False  # no marked mistake, wrong answer
    assert recs[2].first_error == 2 and recs[2].correct is True  # marked mistake, right answer
    assert recs[0].id == "bigbench_mistake_multistep_arithmetic-1"


def test_prmbench_labels_ids_and_originals() -> None:
    recs = load("prmbench_subset400.jsonl")
    first = recs[0]
    assert first.id == "confidence_prm_test_p1_0" and first.meta["error_steps"] == [5, 6]
    assert first.labels == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    odd = recs[2]
    assert len(odd.steps) == 53 and odd.meta["error_steps_out_of_range"] == [54]
    assert [i for i, lab in enumerate(odd.labels) if lab == 0.0] == [51]
    both = load("prmbench_subset400.jsonl", include_original=True)
    assert len(both) == 6
    orig = both[1]
    assert orig.id == "correct_prm_test_p1_0" and set(orig.labels) == {1.0}
    assert orig.steps[-1] == "That means a pencil costs 29 cents."


def test_prmbench_repeated_idx_gets_unique_ids() -> None:
    recs = load("prmbench_multi_solutions.jsonl", include_original=True)
    assert [r.id for r in recs] == [
        "multi_solutions_prm_test_p2_863",
        "correct_prm_test_p2_863",
        "multi_solutions_prm_test_p2_863-2",
    ]
    assert recs[0].steps != recs[2].steps and recs[0].reference == recs[2].reference == "8"
    assert set(recs[0].labels) == {1.0}


LEGACY_WALK = {"alternatives": False, "unrated": "skip", "error_end": "first_error", "answer_text": "cut"}
"""prmkit's walk before the TRL defaults: main records only, each ending at its first error, '# Answer' cut."""


def test_prm800k_raw_walk_under_both_mappings() -> None:
    strict = load("prm800k_raw_samples.jsonl", **LEGACY_WALK)
    loose = load("prm800k_raw_samples.jsonl", neutral_is_good=True, **LEGACY_WALK)
    pencils = strict[0]
    assert len(pencils.steps) == 6 and pencils.meta["human_steps"] == [1]
    assert pencils.steps[1] == "We have $3p+e=1.24$ and $5p+e=1.82$."  # human-written step, label 1
    assert pencils.steps[-1] == "That means a pencil costs 29 cents." and pencils.answer == "29"
    assert pencils.reference == "29" and pencils.labels == [1.0] * 6
    senate = strict[1]  # phase 2 walk: a neutral step, then the error the labeller found
    assert senate.meta["finish_reason"] == "found_error" and len(senate.steps) == 7
    assert senate.labels == [1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0] and senate.first_error == 1
    assert loose[1].labels == [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0] and loose[1].first_error == 6
    assert [r.id for r in strict] == [f"prm800k_raw_samples-{i}" for i in range(1, 7)]


def test_prm800k_alternatives_are_labelled_branches() -> None:
    legacy = {**LEGACY_WALK, "alternatives": True}
    recs = load("prm800k_raw_samples.jsonl", **legacy)
    branches = [r for r in recs if r.meta.get("branch_of") == "prm800k_raw_samples-1"]
    # step 2: five -1 candidates (a human step was taken); step 6: four not chosen (one 0, three +1)
    assert len(branches) == 9
    assert Counter(tuple(r.labels) for r in branches) == Counter({(1.0, 0.0): 5, (1.0,) * 5 + (0.0,): 1, (1.0,) * 6: 3})
    neutral = load("prm800k_raw_samples.jsonl", neutral_is_good=True, **legacy)
    assert sum(r.labels == [1.0] * 6 for r in neutral if r.meta.get("branch_of") == "prm800k_raw_samples-1") == 4


def test_prm800k_flattened_parquet_rebuilds_the_same_walks() -> None:
    flat = load("prm800k_phase1_test_stepwise.parquet", **LEGACY_WALK)
    assert [r.id for r in flat] == ["prm800k_phase1_test_stepwise-1", "prm800k_phase1_test_stepwise-16"]
    raw = load("prm800k_raw_samples.jsonl", **LEGACY_WALK)[0]
    assert flat[0].steps == raw.steps and flat[0].labels == raw.labels and flat[0].answer == "29"
    base9 = flat[1]
    assert base9.problem.startswith("Compute $58_9 - 18_9.$") and base9.meta["human_steps"] == [0, 4]
    assert len(base9.steps) == 6 and base9.answer == "40_9"

    # the same raw walk and its flattened rows give the same branches too
    def walk_one(name: str) -> list:
        return [
            r
            for r in load(name, **{**LEGACY_WALK, "alternatives": True})
            if r.meta.get("branch_of", r.id).endswith("-1")
        ]

    raw_alt, flat_alt = walk_one("prm800k_raw_samples.jsonl"), walk_one("prm800k_phase1_test_stepwise.parquet")
    assert len(raw_alt) == 10
    assert [(r.steps, r.labels) for r in raw_alt] == [(r.steps, r.labels) for r in flat_alt]


def _trl_conversion(example: dict) -> list[tuple[tuple[str, ...], tuple[bool, ...]]]:
    """TRL's examples/datasets/prm800k.py, written out again from its description: walk the steps; every completion
    that is not the chosen one ends a record (the prefix so far plus it, labelled rating == 1); the chosen one
    (rating == 1) or the human one (True) extends the prefix; a step with neither ends the walk; the prefix is the
    last record. Texts stay whole."""
    out, prefix, labels = [], [], []
    for step in example["label"]["steps"]:
        if step["completions"] is None and step["human_completion"] is None and step["chosen_completion"] is None:
            break
        for k, completion in enumerate(step["completions"] or []):
            if k != step["chosen_completion"]:
                out.append((tuple(prefix + [completion["text"]]), tuple(labels + [completion["rating"] == 1])))
        if step["chosen_completion"] is not None:
            taken = step["completions"][step["chosen_completion"]]
            prefix, labels = prefix + [taken["text"]], labels + [taken["rating"] == 1]
        elif step["human_completion"] is not None:
            prefix, labels = prefix + [step["human_completion"]["text"]], labels + [True]
        else:
            break
    out.append((tuple(prefix), tuple(labels)))
    return out


def test_prm800k_defaults_match_trls_conversion_on_the_raw_samples() -> None:
    """The default prm800k layout gives the same (steps, labels) records as TRL's conversion, sample by sample:
    unrated chosen steps labelled bad and walked past, unrated alternatives kept as bad, a walk ending at an
    error ending before it, and '# Answer' kept in the final step."""
    rows = [json.loads(line) for line in (FIX / "prm800k_raw_samples.jsonl").read_text().splitlines() if line.strip()]
    recs = load("prm800k_raw_samples.jsonl")
    for i, row in enumerate(rows, start=1):
        rid = f"prm800k_raw_samples-{i}"
        ours = [
            (tuple(r.steps), tuple(bool(x) for x in r.labels))
            for r in recs
            if r.id == rid or r.meta.get("branch_of") == rid
        ]
        assert Counter(ours) == Counter(t for t in _trl_conversion(row) if t[0]), rid
    final = [r for r in recs if r.id == "prm800k_raw_samples-1"][0]
    assert final.steps[-1].endswith("# Answer\n\n29") and final.answer == "29"
    cut = load("prm800k_raw_samples.jsonl", answer_text="cut")
    assert [r for r in cut if r.id == "prm800k_raw_samples-1"][0].steps[-1] == "That means a pencil costs 29 cents."
    with pytest.raises(RecipeError, match="option 'unrated' must be one of bad, skip"):
        load("prm800k_raw_samples.jsonl", unrated="drop")


def test_prm800k_flattened_rows_out_of_order_are_refused(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(FIX / "prm800k_phase1_test_stepwise.parquet")
    path = tmp_path / "shuffled.parquet"
    pq.write_table(table.take([0, 7]), path)  # depth 2 row without the chosen depth-1 step
    with pytest.raises(DataError, match=r"shuffled\.parquet row 2: prm800k layout: .*does not continue"):
        list(load_records(path))


def test_trl_soft_labels_survive(tmp_path: Path) -> None:
    path = tmp_path / "trl.jsonl"
    rows = [
        {"prompt": "1+1?", "completions": ["1+1=2", "So 2."], "labels": [True, False]},
        {"prompt": "2+2?", "completions": ["2+2=4", "So 4."], "labels": [0.25, 1]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recs = list(load_records(path))
    assert recs[0].labels == [1.0, 0.0] and recs[0].meta["layout"] == "trl"
    assert recs[1].labels == [0.25, 1.0] and isinstance(recs[1].labels[0], float)
    assert [r.id for r in recs] == ["trl-1", "trl-2"]
    path.write_text(json.dumps({"prompt": "p", "completions": ["a"], "labels": [1.5]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"trl\.jsonl line 1: trl layout: field 'labels' item 0"):
        list(load_records(path))


def test_prmkit_records_round_trip(tmp_path: Path) -> None:
    recs = load("processbench_gsm8k.json")
    recs[0].scores = [0.9, 0.2, 0.3, 0.1]
    recs[0].extra["note"] = "kept"
    path = tmp_path / "out.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in recs), encoding="utf-8")
    again = list(load_records(path))
    assert again[0].meta["layout"] == "processbench"  # the written record is read as prmkit, not re-detected
    assert [r.to_dict() for r in again] == [r.to_dict() for r in recs]
    assert detect_layout(recs[0].to_dict()) == "prmkit"


# ---------------------------------------------------------------- detection, options, ids, limit


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("processbench_gsm8k.json", "processbench"),
        ("gsm8k_test.jsonl", "gsm8k"),
        ("math500_test.jsonl", "math"),
        ("math_shepherd_samples.jsonl", "math_shepherd"),
        ("bigbench_mistake_multistep_arithmetic.jsonl", "bigbench_mistake"),
        ("prmbench_subset400.jsonl", "prmbench"),
        ("prm800k_raw_samples.jsonl", "prm800k"),
        ("prm800k_phase1_test_stepwise.parquet", "prm800k"),
    ],
)
def test_auto_detection(name: str, layout: str) -> None:
    _, _, row = next(read_rows(FIX / name))
    assert detect_layout(row) == layout
    assert {r.meta["layout"] for r in load(name)} == {layout}


def test_detection_failures_list_candidates() -> None:
    with pytest.raises(DataError, match="no known data layout fits a row with keys: foo; pass layout= one of"):
        detect_layout({"foo": 1})
    with pytest.raises(DataError, match=r"several data layouts \(gsm8k, math\)"):
        detect_layout({"question": "q", "answer": "a", "problem": "p", "solution": "s"})


def test_unknown_layout_and_option_fail_before_reading() -> None:
    with pytest.raises(RecipeError, match="unknown data layout 'procesbench'.*did you mean 'processbench'"):
        load_records("does/not/exist.jsonl", layout="procesbench")
    with pytest.raises(RecipeError, match="'gsm8k' has no option 'neutral_is_good'; allowed options: keep_calculator"):
        load_records("does/not/exist.jsonl", layout="gsm8k", neutral_is_good=True)
    with pytest.raises(RecipeError, match="must be true or false"):
        load_records("x.jsonl", layout="prm800k", neutral_is_good="yes")
    expected = {"prmkit", "gsm8k", "math", "processbench", "prmbench", "prm800k", "math_shepherd", "trl"}
    assert set(layout_names()) == expected | {"bigbench_mistake"}


def test_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "pb.jsonl"
    row = json.loads((FIX / "processbench_gsm8k.json").read_text(encoding="utf-8"))[0]
    bad = dict(row, label=9)
    del row["steps"]
    path.write_text(json.dumps(bad) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pb\.jsonl line 1: processbench layout: field 'label' is 9, outside -1\.\.3"):
        list(load_records(path, layout="processbench"))
    path.write_text(json.dumps(dict(bad, label=0)) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pb\.jsonl line 2: processbench layout: missing field 'steps'"):
        list(load_records(path, layout="processbench"))


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    text = (FIX / "processbench_gsm8k.json").read_text(encoding="utf-8")
    rows = json.loads(text)
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(rows + rows[:1]), encoding="utf-8")
    with pytest.raises(DataError, match=r"dup\.json row 5: record id 'gsm8k-0' was already produced by .*row 1"):
        list(load_records(path))


def test_limit_stops_early() -> None:
    assert [r.id for r in load_records(FIX / "gsm8k_test.jsonl", limit=2)] == ["gsm8k_test-1", "gsm8k_test-2"]
    assert len(load("prm800k_raw_samples.jsonl", alternatives=True, limit=3)) == 3
    assert load("gsm8k_test.jsonl", limit=0) == []
    with pytest.raises(RecipeError, match="limit"):
        load_records(FIX / "gsm8k_test.jsonl", limit=-1)


# ---------------------------------------------------------------- full shared copies (skipped on users' machines)

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present (../shared/data)")


@needs_shared
@pytest.mark.parametrize(
    ("subset", "count"), [("gsm8k", 400), ("math", 1000), ("olympiadbench", 1000), ("omnimath", 1000)]
)
def test_full_processbench_counts(subset: str, count: int) -> None:
    recs = list(load_records(SHARED / "processbench", split=subset))
    assert len(recs) == count and len({r.id for r in recs}) == count
    assert all(r.meta["layout"] == "processbench" and len(r.labels) == len(r.steps) for r in recs)
    assert all(r.first_error == r.meta["first_error"] for r in recs)


@needs_shared
def test_full_prmbench() -> None:
    recs = list(load_records(SHARED / "prmbench"))
    assert len(recs) == 718 + 165 + 394
    per_class = Counter(r.meta["classification"] for r in recs)
    assert per_class["multi_solutions"] == 175 and per_class["deception"] == 88 + 48
    with_orig = list(load_records(SHARED / "prmbench", include_original=True))
    originals = [r for r in with_orig if r.meta["classification"] == "correct"]
    assert len(originals) == len({r.meta["idx"] for r in recs})


@needs_shared
def test_full_gsm8k_and_math500() -> None:
    gsm = list(load_records(SHARED / "gsm8k", split="test"))
    assert len(gsm) == 1319 and all(r.reference.lstrip("-").replace(".", "").isdigit() for r in gsm)
    math = list(load_records(SHARED / "math500" / "test.jsonl"))
    assert len(math) == 500 and all(r.reference and r.steps for r in math)


@needs_shared
def test_full_prm800k_flattened_and_bigbench() -> None:
    flat = list(load_records(SHARED / "prm800k" / "phase1_test.stepwise-critic.parquet", **LEGACY_WALK))
    assert len(flat) == 103  # 106 walks, 3 of which have no rated step
    assert sum(r.answer is not None for r in flat) == 90
    bbm = list(load_records(SHARED / "bigbench_mistake" / "multistep_arithmetic.jsonl"))
    assert len(bbm) == 300 and sum(r.first_error == -1 for r in bbm) == 62
