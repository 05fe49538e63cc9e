"""The resumable writer: torn tails repaired, ids remembered, completion markers, deterministic shards."""

from __future__ import annotations

import json

import pytest

from prmkit.data.shards import ResumableWriter, is_complete, parse_shard, select_shard
from prmkit.errors import DataError, RecipeError
from prmkit.records import Record


def rec(i: int) -> Record:
    return Record(id=f"r{i}", problem=f"p{i}", steps=["a", "b"], labels=[1.0, 0.25])


def test_write_then_resume_skips_done_ids(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResumableWriter(path) as w:
        for i in range(3):
            w.write(rec(i))
    with ResumableWriter(path) as w:
        assert w.resumed == 3 and "r1" in w and "r3" not in w
        w.write(rec(3))
    lines = path.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["r0", "r1", "r2", "r3"]
    assert json.loads(lines[0])["labels"] == [1.0, 0.25]  # soft labels stay floats


def test_torn_tail_is_truncated(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResumableWriter(path) as w:
        w.write(rec(0))
        w.write(rec(1))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "r2", "probl')  # a kill in the middle of a write
    with ResumableWriter(path) as w:
        assert w.done_ids == {"r0", "r1"}
        w.write(rec(2))
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["r0", "r1", "r2"]


def test_duplicate_write_and_foreign_file_refused(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResumableWriter(path) as w:
        w.write(rec(0))
        with pytest.raises(DataError, match="written twice"):
            w.write(rec(0))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl line 2"):
        ResumableWriter(bad)


def test_completion_marker(tmp_path):
    path = tmp_path / "out.jsonl"
    with ResumableWriter(path) as w:
        w.write(rec(0))
        assert not is_complete(path)
        w.mark_complete(1)
    assert is_complete(path)
    with ResumableWriter(path) as w:  # appending makes the marker stale
        w.write(rec(1))
    assert not is_complete(path)


def test_shards_are_disjoint_balanced_and_cover_everything():
    items = list(range(10))
    parts = [select_shard(items, f"{i}/3") for i in range(3)]
    assert sorted(sum(parts, [])) == items and parts[0] == [0, 3, 6, 9]
    assert select_shard(items, None) == items
    for bad in ["3/3", "a/b", "1", "0/0"]:
        with pytest.raises(RecipeError):
            parse_shard(bad)


def test_records_with_unicode_line_separators_survive_a_merge(tmp_path):
    """JSON written with ensure_ascii=False keeps U+2028, U+0085 and form feeds raw inside strings; only "\\n" ends
    a JSONL line (str.splitlines() would cut these records in two: found on a random model's samples)."""
    import yaml

    from prmkit.data.shards import jsonl_lines, merge_shards, read_jsonl
    from prmkit.recipe import Section

    class Tiny(Section):
        output_dir: str
        shard: str | None = None
        merge_from: list[str] | None = None

    odd = "a\u2028b\x85c\x0cd\x1ce\u2029f"
    for i in range(2):
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        (folder / "recipe.yaml").write_text(yaml.safe_dump({"output_dir": str(folder), "shard": f"{i}/2"}))
        with ResumableWriter(folder / "x.jsonl") as w:
            w.write({"id": f"r{i}", "text": odd})
            w.mark_complete(1)
    merge_shards(
        [str(tmp_path / "s0"), str(tmp_path / "s1")], tmp_path / "m", ["x.jsonl"], Tiny(output_dir=str(tmp_path / "m"))
    )
    assert [r["text"] for r in read_jsonl(tmp_path / "m" / "x.jsonl")] == [odd, odd]
    assert len([x for x in jsonl_lines((tmp_path / "m" / "x.jsonl").read_text(encoding="utf-8")) if x]) == 2
