"""`prmkit view`: one self-contained HTML page from a run folder or a records file, with the data inline (no
network), every step's label and score, the three first errors, and step text that cannot break the page."""

from __future__ import annotations

import json
import re

import pytest
from test_cli import run_cli  # tests/ is on sys.path (pytest prepend import mode)

from prmkit.errors import DataError
from prmkit.records import Record
from prmkit.view.command import from_path
from prmkit.view.page import page_rows, render

EVIL = "</script><script>alert(1)</script> & <b>"


def records() -> list[Record]:
    return [
        Record(
            id="p1/s0",
            problem="Start at 3. Add 4. Double it.",
            steps=["3 + 4 = 7", "7 * 2 = 15", "The answer is 15."],
            answer="15",
            reference="14",
            correct=False,
            labels=[1.0, 0.0, 0.0],
            meta={"true_first_error": 1},
        ),
        Record(
            id="p2/s0",
            problem="Start at 5. Add 1.",
            steps=["5 + 1 = 6", EVIL],
            answer="6",
            reference="6",
            correct=True,
            labels=[1.0, 1.0],
            scores=[0.9, 0.2],
            meta={"first_error": -1},
        ),
    ]


def data_of(page: str) -> list[dict]:
    blocks = re.findall(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def test_the_page_carries_every_step_and_the_three_first_errors():
    page = render(records(), "t", "labels.jsonl", 0.5)
    rows = data_of(page)
    assert [r["id"] for r in rows] == ["p1/s0", "p2/s0"]
    assert rows[0]["steps"][1] == "7 * 2 = 15" and rows[0]["labels"] == [1.0, 0.0, 0.0]
    assert (rows[0]["label_fe"], rows[0]["prm_fe"], rows[0]["truth_fe"]) == (1, None, 1)
    assert (rows[1]["label_fe"], rows[1]["prm_fe"], rows[1]["truth_fe"]) == (-1, 1, -1)
    assert rows[1]["steps"][1] == EVIL  # round-trips exactly, yet never closes the data block early
    assert page.count("</script>") == 2 and "alert(1)</script>" not in page
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page), "the page must load nothing from the network"
    for control in ('id="q"', 'id="f-wrong"', 'id="f-truth"', 'id="f-prm"', 'id="colour"', 'id="more"'):
        assert control in page
    assert page_rows(records(), 0.95)[1]["prm_fe"] == 0  # the threshold decides what counts as an error


def test_view_a_run_folder_through_the_cli_with_a_prm(tmp_path):
    from test_score import make_tiny_prm

    run_dir = tmp_path / "annotate"
    run_dir.mkdir()
    (run_dir / "labels.jsonl").write_text("".join(r.to_json() + "\n" for r in records()))
    prm = make_tiny_prm(tmp_path / "prm")
    out = tmp_path / "page.html"
    res = run_cli("view", str(run_dir), "--output", str(out), f"prm.model={prm}", "prm.device=cpu", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["solutions"] == 2 and summary["with PRM scores"] == 2
    rows = data_of(out.read_text())
    assert all(len(r["scores"]) == len(r["steps"]) and all(0 <= s <= 1 for s in r["scores"]) for r in rows)
    assert not list(tmp_path.glob("*.partial"))


def test_a_folder_without_records_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no labels.jsonl, scored.jsonl, results.jsonl, samples.jsonl here"):
        from_path(str(tmp_path))
    assert from_path(str(tmp_path / "x.jsonl"))["output"] == str(tmp_path / "view.html")
    res = run_cli("view", str(tmp_path / "nowhere"), "--output", str(tmp_path / "p.html"))
    assert res.returncode == 2 and "takes a recipe, a records file or a run folder" in res.stderr
