"""Append-only JSONL output that survives a kill: a rerun of the same command continues where it stopped.

The file is the checkpoint. On open, a torn last line (a write cut by SIGKILL) is truncated away and the
ids already written are collected; the caller skips those ids and regenerates the rest deterministically,
so a resumed run ends with exactly the records of an uninterrupted one, none lost and none twice.

Shards: `select_shard` splits work deterministically (`shard=i/n`); `merge_shards` joins the outputs of the
shard runs into one folder, refusing shards of another recipe, unfinished shards, missing shards and
records found in two shards.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from prmkit.errors import DataError, RecipeError, StorageError
from prmkit.manifest import recipe_changes
from prmkit.records import Record

T = TypeVar("T")

COMPLETE_SUFFIX = ".complete"


class ResumableWriter:
    """Appends one JSON record per line; knows which ids are already on disk."""

    def __init__(self, path: str | Path, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done_ids: set[str] = set()
        self.resumed = 0
        self._dirty = False
        self._repair_and_scan()
        self._fh = open(self.path, "a", encoding="utf-8")

    def _repair_and_scan(self) -> None:
        if not self.path.exists():
            return
        good_bytes = 0
        with open(self.path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    break  # torn tail: written partly before a kill
                try:
                    rid = json.loads(raw)["id"]
                except (ValueError, KeyError, TypeError):
                    raise DataError(
                        f"{self.path} line {lineno}: not a prmkit record; refusing to resume into it "
                        "(move the file away to start afresh)"
                    ) from None
                if rid in self.done_ids:
                    raise DataError(f"{self.path} line {lineno}: record id {rid!r} appears twice")
                self.done_ids.add(rid)
                good_bytes += len(raw)
        if good_bytes != self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(good_bytes)
        self.resumed = len(self.done_ids)

    @property
    def complete_marker(self) -> Path:
        return self.path.with_name(self.path.name + COMPLETE_SUFFIX)

    def __contains__(self, rid: str) -> bool:
        return rid in self.done_ids

    def write(self, record: Record | dict) -> None:
        """Append one record as a single write, flushed, so a kill tears at most the line being written."""
        d = record.to_dict() if isinstance(record, Record) else record
        rid = d["id"]
        if rid in self.done_ids:
            raise DataError(f"{self.path}: record id {rid!r} written twice")
        if not self._dirty:
            self.complete_marker.unlink(missing_ok=True)  # appending makes an old completion marker stale
            self._dirty = True
        line = json.dumps(d, ensure_ascii=False) + "\n"
        try:
            self._fh.write(line)
            self._fh.flush()
            if self.fsync:
                os.fsync(self._fh.fileno())
        except OSError as exc:  # a full disk: the torn line is dropped on resume, nothing before it is lost
            raise StorageError.from_os(exc, self.path) from None
        self.done_ids.add(rid)

    def mark_complete(self, count: int) -> None:
        """Record that the output holds every expected record (a later stage may trust it)."""
        try:
            self.complete_marker.write_text(json.dumps({"records": count}) + "\n", encoding="utf-8")
        except OSError as exc:
            raise StorageError.from_os(exc, self.complete_marker) from None

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a buffered write that failed was already reported by write()
            self._fh.close()

    def __enter__(self) -> ResumableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text. Only "\\n" ends a line: str.splitlines() would also cut at U+2028, U+0085 or a
    form feed, which JSON written with ensure_ascii=False (as prmkit writes it) keeps raw inside strings."""
    return text.split("\n")


def read_jsonl(path: str | Path, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The JSON objects of a file `ResumableWriter` wrote (blank lines skipped); [] for a missing file when
    `missing_ok`."""
    path = Path(path)
    if missing_ok and not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_records(path: str | Path, missing_ok: bool = False) -> list[Record]:
    """`read_jsonl` as prmkit Records."""
    return [Record.from_dict(d) for d in read_jsonl(path, missing_ok)]


def is_complete(path: str | Path) -> bool:
    """True when a stage finished writing `path` (its completion marker is there and the count matches)."""
    path = Path(path)
    marker = path.with_name(path.name + COMPLETE_SUFFIX)
    if not (path.exists() and marker.exists()):
        return False
    try:
        expected = json.loads(marker.read_text(encoding="utf-8"))["records"]
    except (ValueError, KeyError):
        return False
    with open(path, "rb") as fh:
        return sum(1 for _ in fh) == expected


def parse_shard(spec: str | None) -> tuple[int, int]:
    """`"i/n"` -> (i, n) with 0 <= i < n; None -> (0, 1), the whole set."""
    if spec is None or spec == "":
        return 0, 1
    try:
        i_text, n_text = str(spec).split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise RecipeError(f"shard {spec!r}: expected i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise RecipeError(f"shard {spec!r}: need 0 <= i < n")
    return i, n


def select_shard(items: Iterable[T], spec: str | None) -> list[T]:
    """Deterministic round-robin split: item k goes to shard k mod n, so shards are balanced and disjoint."""
    i, n = parse_shard(spec)
    return [item for k, item in enumerate(items) if k % n == i]


MERGE_IGNORED = frozenset({"output_dir", "shard", "merge_from", "launcher"})
"""Recipe keys that may (must) differ between the shard runs and the merge."""


def _shard_recipe(folder: Path) -> dict[str, Any]:
    path = folder / "recipe.yaml"
    if not path.is_file():
        raise DataError(f"{folder}: no recipe.yaml here; merge_from must name output folders of shard runs")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise DataError(f"{path}: unreadable recipe; not the output folder of a prmkit run")
    return data


def merge_shards(
    folders: list[str],
    out_dir: str | Path,
    files: list[str],
    recipe: BaseModel,
    resume_safe: frozenset[str] = frozenset(),
    order: Callable[[dict[str, Any]], Any] | None = None,
) -> dict[str, int]:
    """Join the JSONL outputs `files` of shard runs (`folders`) into `out_dir`, each record exactly once.

    Every shard must have been run with `recipe` (up to output_dir, shard, merge_from and the `resume_safe`
    keys), have finished (each file's completion marker), and the shards must be i/n for every i of one n.
    A record id in two shards is refused. `order`: sort key over the merged records of a file (default: the
    order of `folders`, then each file's order). Everything is checked before anything is written; the
    merged files get completion markers. Returns records per file.
    """
    if not folders:
        raise DataError("merge_from is empty: name the output folders of the shard runs")
    out_dir = Path(out_dir)
    ignore = MERGE_IGNORED | resume_safe
    shards: dict[int, Path] = {}
    total: int | None = None
    for name in folders:
        folder = Path(name)
        old = _shard_recipe(folder)
        changed = recipe_changes(old, recipe, ignore)
        if changed:
            raise DataError(f"{folder}: a shard of a different recipe: {', '.join(changed[:5])}")
        try:
            i, n = parse_shard(old.get("shard"))
        except RecipeError as exc:
            raise DataError(f"{folder}/recipe.yaml: {exc}") from None
        if total is not None and n != total:
            raise DataError(f"{folder}: shard {i}/{n} does not belong to a split in {total} like the others")
        total = n
        for file in files:
            path = folder / file
            if not path.is_file():
                raise DataError(f"{path}: missing; that shard has not run (run its command first)")
            if not is_complete(path):
                raise DataError(
                    f"{path}: incomplete shard (its run did not finish); "
                    "run that shard's command again to complete it, then merge"
                )
        shards.setdefault(i, folder)
    assert total is not None
    missing = [f"{i}/{total}" for i in range(total) if i not in shards]
    merged: dict[str, list[dict[str, Any]]] = {file: [] for file in files}
    seen: dict[str, Path] = {}
    for name in folders:
        for file in files:
            path = Path(name) / file
            for lineno, line in enumerate(jsonl_lines(path.read_text(encoding="utf-8")), start=1):
                if not line.strip():
                    continue
                d = json.loads(line)
                if d["id"] in seen:
                    raise DataError(
                        f"{path} line {lineno}: record {d['id']!r} is in two shards (also in {seen[d['id']]})"
                    )
                seen[d["id"]] = path
                merged[file].append(d)
    if missing:
        raise DataError(f"merge_from lacks shard {', '.join(missing)} of {total}; a merge needs every shard")
    counts = {}
    for file, rows in merged.items():
        target = out_dir / file
        target.unlink(missing_ok=True)
        with ResumableWriter(target) as writer:
            for d in sorted(rows, key=order) if order is not None else rows:
                writer.write(d)
            writer.mark_complete(len(rows))
        counts[file] = len(rows)
    return counts
