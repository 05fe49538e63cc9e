"""Rows from local JSON/JSONL/Parquet files, folders of them, or a Hugging Face Hub data set.

Every row comes with its origin (a file path, or `hf://<id>[/<subset>]/<split>`) and a 1-based
line/row number, so any later complaint about it can name where it came from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prmkit.errors import DataError
from prmkit.registry import Registry

Row = dict[str, Any]
FileReader = Callable[[Path], Iterator[tuple[int, Row]]]

FILE_READERS: Registry[FileReader] = Registry("file type")
HUB_PREFIX = "hf://"
# Keys under which a JSON file that is an object (not a list) usually keeps its rows.
JSON_ROW_KEYS = ("data", "rows", "records", "examples", "instances", "items")
PARQUET_BATCH_ROWS = 1024


def locate(origin: str, number: int) -> str:
    """'x.jsonl line 7' for JSONL (a real line number), 'x.json row 7' elsewhere (a position in the data)."""
    unit = "line" if origin.endswith(".jsonl") else "row"
    return f"{origin} {unit} {number}"


def origin_stem(origin: str) -> str:
    """File stem of an origin ('data/test.jsonl' and 'hf://openai/gsm8k/main/test' both give 'test')."""
    return Path(origin).stem


def _as_row(value: Any, origin: str, number: int) -> Row:
    if not isinstance(value, dict):
        raise DataError(f"{locate(origin, number)}: expected a JSON object, got {type(value).__name__}")
    return value


@FILE_READERS.register(".jsonl")
def read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    """One object per line; blank lines skipped; a bad line names its number and what is wrong."""
    origin = str(path)
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{origin} line {lineno}: not UTF-8 text ({e.reason} at byte {e.start})") from None
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{origin} line {lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
            yield lineno, _as_row(value, origin, lineno)


@FILE_READERS.register(".json")
def read_json(path: Path) -> Iterator[tuple[int, Row]]:
    """A list of objects, or an object holding that list under one key (e.g. "data")."""
    origin = str(path)
    try:
        with open(path, encoding="utf-8-sig") as fh:
            value = json.load(fh)
    except json.JSONDecodeError as e:
        raise DataError(f"{origin} line {e.lineno}: invalid JSON ({e.msg}, column {e.colno})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{origin}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    rows = _json_rows(value, origin)
    for number, item in enumerate(rows, start=1):
        yield number, _as_row(item, origin, number)


def _json_rows(value: Any, origin: str) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in JSON_ROW_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
        lists = [k for k, v in value.items() if isinstance(v, list)]
        if len(lists) == 1:
            return value[lists[0]]
        raise DataError(
            f"{origin}: a JSON object must hold its rows as one list (under e.g. 'data'); "
            f"found list keys: {', '.join(lists) or 'none'}"
        )
    raise DataError(f"{origin}: expected a JSON list of objects, got {type(value).__name__}")


@FILE_READERS.register(".parquet")
def read_parquet(path: Path) -> Iterator[tuple[int, Row]]:
    """Streamed batch by batch, so large files never sit in memory whole."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({e})") from None
    number = 0
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def supported_suffixes() -> list[str]:
    return FILE_READERS.names()


def _read_file(path: Path) -> Iterator[tuple[str, int, Row]]:
    suffix = path.suffix.lower()
    if suffix not in FILE_READERS:
        supported = ", ".join(supported_suffixes())
        raise DataError(f"{path}: unsupported file type {suffix or '(none)'!r}; supported: {supported}")
    origin = str(path)
    for number, row in FILE_READERS.get(suffix)(path):
        yield origin, number, row


def _dir_files(folder: Path, split: str | None, subset: str | None) -> list[Path]:
    """Supported files of a folder, sorted; `subset` picks a sub-folder and `split` a file stem, as on the Hub."""
    if subset is not None:
        folder = folder / subset
        if not folder.is_dir():
            raise DataError(f"{folder}: no sub-folder for subset {subset!r}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FILE_READERS)
    if split is not None:
        chosen = [p for p in files if p.stem == split]
        if not chosen:
            stems = ", ".join(sorted({p.stem for p in files})) or "none"
            raise DataError(f"{folder}: no file for split {split!r} (file stems found: {stems})")
        files = chosen
    if not files:
        raise DataError(f"{folder}: no data files ({', '.join(supported_suffixes())}) in this folder")
    return files


def looks_local(source: str) -> bool:
    """A path that exists, or one that is clearly meant as a path (a data-file suffix, ./, /, ~, or a/b/c)."""
    if Path(source).expanduser().exists():
        return True
    if Path(source).suffix.lower() in FILE_READERS:
        return True
    return source.startswith((".", "/", "~", "\\")) or source.count("/") > 1 or "\\" in source


def _read_hub(source: str, split: str | None, subset: str | None) -> Iterator[tuple[str, int, Row]]:
    try:
        import datasets

        loaded = datasets.load_dataset(source, subset, split=split)
    except Exception as e:  # noqa: BLE001 - datasets raises many unrelated types (network, 404, config)
        detail = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
        raise DataError(
            f"cannot load data set {source!r} from the Hub ({type(e).__name__}: {detail}); pass a local path"
        ) from None
    parts = {split: loaded} if split is not None else dict(loaded)
    prefix = HUB_PREFIX + source + (f"/{subset}" if subset else "")
    for split_name, table in parts.items():
        origin = f"{prefix}/{split_name}"
        for number, row in enumerate(table, start=1):
            yield origin, number, dict(row)


def read_rows(
    source: str | Path, split: str | None = None, subset: str | None = None
) -> Iterator[tuple[str, int, Row]]:
    """Yield (origin, 1-based line/row number, row) from a file, a folder, or a Hub data set id.

    For a single local file `split` and `subset` are ignored; for a folder they pick a sub-folder
    and a file stem (so `gsm8k/` with split="test" reads `gsm8k/test.jsonl`).
    """
    text = str(source)
    if isinstance(source, Path) or looks_local(text):
        path = Path(text).expanduser()
        if not path.exists():
            raise DataError(f"{text}: no such file or folder")
        if path.is_dir():
            for f in _dir_files(path, split, subset):
                yield from _read_file(f)
        else:
            yield from _read_file(path)
    else:
        yield from _read_hub(text, split, subset)
