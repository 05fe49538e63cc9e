"""Step splitting/joining conventions: round trips, separators inside steps, unknown styles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prmkit.errors import RecipeError
from prmkit.steps import STEP_STYLES, join_steps, split_steps

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
STEPS = ["Janet sells 16 - 3 - 4 = 9 eggs.", "She makes 9 * 2 = $18.\nThat is per day.", "#### 18"]
ONE_LINE = ["x = 2 + 3 = 5", "y = 5 * 2 = 10", "The answer is 10"]


def test_styles_are_registered() -> None:
    assert STEP_STYLES.names() == ["lines", "paragraphs", "tag"]


def test_paragraphs() -> None:
    text = "  Step one.\n\n\nStep two,\nstill two.\n \t \nStep three.  \n"
    assert split_steps(text) == ["Step one.", "Step two,\nstill two.", "Step three."]
    assert split_steps("a\r\n\r\nb\r\n") == ["a", "b"]  # CRLF blank lines are blank lines
    assert split_steps("") == [] and split_steps("\n\n \n") == []


def test_lines() -> None:
    assert split_steps(" a \n\n b\n  \nc", style="lines") == ["a", "b", "c"]


@pytest.mark.parametrize("tag", [" ки", "<extra_0>"])
def test_tagged(tag: str) -> None:
    text = f"Step 1: 8 hours.{tag}\nStep 2: 120.{tag}\nStep 3: The answer is: 13520{tag}"
    expected = ["Step 1: 8 hours.", "Step 2: 120.", "Step 3: The answer is: 13520"]
    assert split_steps(text, style="tag", tag=tag) == expected
    assert split_steps(f"a{tag}b{tag}tail", style="tag", tag=tag) == ["a", "b", "tail"]  # untagged tail kept


@pytest.mark.parametrize(
    ("style", "tag", "steps"),
    [("paragraphs", None, STEPS), ("lines", None, ONE_LINE), ("tag", " ки", STEPS), ("tag", "<extra_0>", STEPS)],
)
def test_round_trip(style: str, tag: str | None, steps: list[str]) -> None:
    padded = ["  " + s + "\n" for s in steps]
    assert split_steps(join_steps(padded, style, tag), style, tag) == steps


def test_join_layouts() -> None:
    assert join_steps(["a", "b"]) == "a\n\nb"
    assert join_steps(["a", "b"], "lines") == "a\nb"
    assert join_steps(["a", "b"], "tag", " ки") == "a ки\nb ки"  # Math-Shepherd's layout


@pytest.mark.parametrize(
    ("style", "tag", "bad"),
    [
        ("paragraphs", None, "one\n\ntwo"),
        ("paragraphs", None, "one\n  \ntwo"),
        ("lines", None, "one\ntwo"),
        ("tag", " ки", "one ки two"),
        ("tag", "<extra_0>", "a<extra_0>b"),
    ],
)
def test_join_refuses_separator_inside_a_step(style: str, tag: str | None, bad: str) -> None:
    with pytest.raises(ValueError, match="step 1 contains"):
        join_steps(["fine", bad, "fine"], style, tag)


def test_join_refuses_empty_step() -> None:
    with pytest.raises(ValueError, match="step 0 is empty"):
        join_steps(["  ", "b"])


def test_unknown_style_and_bad_tag() -> None:
    hint = "unknown step style 'paragraph'.*allowed: lines, paragraphs, tag.*did you mean 'paragraphs'"
    with pytest.raises(RecipeError, match=hint):
        split_steps("a", style="paragraph")
    with pytest.raises(RecipeError, match="needs a non-empty tag"):
        split_steps("a", style="tag")
    with pytest.raises(RecipeError, match="takes no tag"):
        join_steps(["a"], style="lines", tag=" ки")


def test_math_shepherd_sample() -> None:
    """The real Math-Shepherd layout: ` ки` after each step of `input`, `+`/`-` in the same place in `label`."""
    path = SHARED / "math_shepherd" / "samples.jsonl"
    if not path.exists():
        pytest.skip("shared data (../shared/data) is not available")
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        steps = split_steps(record["input"], style="tag", tag=" ки")
        assert len(steps) == record["input"].count(" ки") >= 2
        assert steps[-1].startswith("Step ") and "The answer is:" in steps[-1]
        assert split_steps(join_steps(steps, "tag", " ки"), "tag", " ки") == steps
