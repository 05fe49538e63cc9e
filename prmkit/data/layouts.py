"""Records from data in any supported public layout: pick the layout (or detect it), convert row by row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prmkit.data.adapters import LAYOUTS, Adapter, Place, RowError
from prmkit.data.readers import read_rows
from prmkit.errors import DataError, RecipeError
from prmkit.records import Record

AUTO = "auto"


def layout_names() -> list[str]:
    """Every layout name accepted by load_records (besides "auto")."""
    return LAYOUTS.names()


def detect_layout(row: dict[str, Any]) -> str:
    """The layout whose identifying keys the row carries; the most specific wins (processbench over prmkit).

    DataError, listing the candidates, when no layout or several equally specific ones fit.
    """
    fits = {name: sig for name in LAYOUTS if (sig := LAYOUTS.get(name).matches(row)) is not None}
    best = [n for n, sig in fits.items() if all(other < sig for m, other in fits.items() if m != n)]
    if len(best) == 1:
        return best[0]
    keys = ", ".join(sorted(map(str, row))) or "none"
    if not fits:
        names = ", ".join(layout_names())
        raise DataError(f"no known data layout fits a row with keys: {keys}; pass layout= one of {names}")
    raise DataError(f"the row fits several data layouts ({', '.join(sorted(fits))}); pass layout= one of them")


def _adapter(name: str, options: dict[str, Any]) -> Adapter:
    return LAYOUTS.get(name).create(options)


def load_records(
    source: str | Path,
    layout: str = AUTO,
    split: str | None = None,
    subset: str | None = None,
    limit: int | None = None,
    **options: Any,
) -> Iterator[Record]:
    """Records from `source` (file, folder or Hub id) in `layout` ("auto": detected once, from the first row).

    `options` go to the layout's adapter (e.g. keep_calculator=, include_original=, neutral_is_good=).
    A layout name or option that does not exist fails here, before any data is read; a row that cannot be
    converted is a DataError naming its file and line. Record ids are checked to be unique.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise RecipeError(f"limit must be a non-negative integer or null, got {limit!r}")
    adapter = None if layout == AUTO else _adapter(layout, options)
    return _records(source, layout, adapter, split, subset, limit, options)


def _records(
    source: str | Path,
    layout: str,
    adapter: Adapter | None,
    split: str | None,
    subset: str | None,
    limit: int | None,
    options: dict[str, Any],
) -> Iterator[Record]:
    if limit == 0:
        return
    seen: dict[str, str] = {}
    count = 0
    place: Place | None = None

    def checked(records: list[Record], at: Place) -> Iterator[Record]:
        nonlocal count
        for rec in records:
            if rec.id in seen:
                raise DataError(
                    f"{at}: record id {rec.id!r} was already produced by {seen[rec.id]}; ids must be unique"
                )
            seen[rec.id] = str(at)
            count += 1
            yield rec
            if limit is not None and count >= limit:
                return

    for origin, number, row in read_rows(source, split=split, subset=subset):
        place = Place(origin, number)
        if adapter is None:
            try:
                layout = detect_layout(row)
            except DataError as e:
                raise DataError(f"{place}: {e}") from None
            adapter = _adapter(layout, options)
        try:
            records = adapter.convert(row, place)
        except RowError as e:
            raise DataError(f"{e.place or place}: {layout} layout: {e}") from None
        yield from checked(records, place)
        if limit is not None and count >= limit:
            return
    if adapter is not None and place is not None:
        try:
            records = adapter.finish()
        except RowError as e:
            raise DataError(f"{e.place or place}: {layout} layout: {e}") from None
        yield from checked(records, place)
