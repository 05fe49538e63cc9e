"""The step viewer's page: records in, one self-contained HTML file out (inline data, styles and script).

Why one file with no network: it is opened from a CI artefact, a cluster's scratch disk or an e-mail, where a
CDN may not answer. The records travel as JSON in a `<script type="application/json">` block ("<" escaped, so
no step text can close it), and the script renders the matching solutions a page at a time, so a file with
thousands of solutions opens at once. Each step is coloured by its label (or by its PRM score where it has no
label), and three first errors are marked: the label's, the PRM's and the truth's (where the records know it).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from prmkit.records import Record

RUN_FILES = ("labels.jsonl", "scored.jsonl", "results.jsonl", "samples.jsonl")
"""What `prmkit view RUN_DIR` shows, first found first: annotate's, score's, search's, sample's output."""


def first_below(values: list[float] | None, threshold: float) -> int | None:
    """Index of the first value below the threshold; -1 when none is; None without values (an unscored step,
    past the PRM's length limit, is NaN and never an error)."""
    if not values:
        return None
    return next((i for i, v in enumerate(values) if v < threshold), -1)


def truth_first_error(record: Record) -> int | None:
    """The exact first error where the records carry it: sample's check (true_first_error) or a planted one."""
    for key in ("true_first_error", "first_error"):
        value = record.meta.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def page_rows(records: list[Record], threshold: float) -> list[dict[str, Any]]:
    """The compact rows the page's script reads: text, per-step labels and scores, and the three first errors."""
    rows = []
    for r in records:
        labels = [float(x) for x in r.labels] if r.labels is not None else None
        scores = [float(x) for x in r.scores] if r.scores is not None else None
        rows.append(
            {
                "id": r.id,
                "problem": r.problem,
                "steps": list(r.steps),
                "answer": r.answer,
                "reference": r.reference,
                "correct": r.correct,
                "labels": labels,
                "scores": [round(s, 4) if math.isfinite(s) else None for s in scores] if scores is not None else None,
                "label_fe": first_below(labels, threshold),
                "prm_fe": first_below(scores, threshold),
                "truth_fe": truth_first_error(r),
            }
        )
    return rows


def render(records: list[Record], title: str, source: str, threshold: float) -> str:
    """The whole page."""
    rows = page_rows(records, threshold)
    data = json.dumps(rows, ensure_ascii=False).replace("<", "\\u003c")
    counts = {
        "solutions": len(rows),
        "labelled": sum(r["labels"] is not None for r in rows),
        "scored": sum(r["scores"] is not None for r in rows),
        "truth": sum(r["truth_fe"] is not None for r in rows),
    }
    summary = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    return (
        PAGE.replace("@TITLE@", html.escape(title))
        .replace("@SOURCE@", html.escape(source))
        .replace("@SUMMARY@", html.escape(summary))
        .replace("@THRESHOLD@", f"{threshold:g}")
        .replace("@DATA@", data)
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #d8dde3;padding:10px 18px;z-index:1}
h1{font-size:18px;margin:0 0 2px}.meta{color:#5c6670;font-size:12px}
.controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin-top:8px}
.controls input[type=search]{width:280px;padding:4px 8px;border:1px solid #b9c1c9;border-radius:4px}
.legend span{display:inline-block;padding:0 6px;border-radius:3px;margin-right:4px;font-size:12px}
main{padding:12px 18px}#count{color:#5c6670;margin-bottom:8px}
.sol{background:#fff;border:1px solid #d8dde3;border-radius:6px;margin-bottom:12px;padding:10px 12px}
.head{display:flex;gap:10px;flex-wrap:wrap;align-items:baseline}.id{font-weight:600}
.ok{color:#1a7f37}.bad{color:#b42318}.problem{margin:4px 0 8px;color:#36404a}
.step{display:flex;gap:8px;align-items:flex-start;padding:3px 6px;border-left:5px solid #c9ced4;margin:2px 0;
border-radius:2px}.step .n{color:#7a848e;min-width:22px;text-align:right}.step .t{flex:1;white-space:pre-wrap}
.step .v{color:#5c6670;font-size:12px;min-width:120px;text-align:right}
.mark{font-size:11px;padding:0 5px;border-radius:3px;margin-left:4px;white-space:nowrap}
.m-label{background:#ffe8cc;color:#8a4b00}.m-prm{background:#dde9ff;color:#1f4fa3}.m-truth{background:#e6e0ff;color:#4b2aa8}
button{padding:4px 12px;border:1px solid #b9c1c9;background:#fff;border-radius:4px;cursor:pointer}
</style></head><body>
<header><h1>@TITLE@</h1>
<div class="meta">@SOURCE@ &middot; @SUMMARY@ &middot; a step below @THRESHOLD@ is an error</div>
<div class="controls">
<input type="search" id="q" placeholder="search problems, steps, ids">
<label><input type="checkbox" id="f-wrong"> wrong answers only</label>
<label><input type="checkbox" id="f-truth"> label and truth disagree</label>
<label><input type="checkbox" id="f-prm"> PRM and label disagree</label>
<label>colour by <select id="colour"><option value="label">label</option><option value="score">PRM score</option>
</select></label>
<span class="legend"><span class="mark m-label">label's first error</span><span class="mark m-prm">PRM's first
error</span><span class="mark m-truth">truth's first error</span></span>
</div></header>
<main><div id="count"></div><div id="list"></div><button id="more" hidden>show more</button></main>
<script id="data" type="application/json">@DATA@</script>
<script>
"use strict";
const ROWS = JSON.parse(document.getElementById("data").textContent);
const PAGE = 200;
let shown = 0, matches = [];
const $ = (id) => document.getElementById(id);
function colour(v) {
  if (v === null || v === undefined) return "#c9ced4";
  const r = Math.round(200 * (1 - v) + 40 * v), g = Math.round(60 * (1 - v) + 160 * v), b = Math.round(60 + 20 * v);
  return `rgb(${r},${g},${b})`;
}
function tint(v) {
  if (v === null || v === undefined) return "transparent";
  return v >= 0.5 ? `rgba(26,127,55,${0.06 + 0.12 * v})` : `rgba(180,35,24,${0.06 + 0.14 * (1 - v)})`;
}
function keep(r, q) {
  if ($("f-wrong").checked && r.correct !== false) return false;
  if ($("f-truth").checked && !(r.truth_fe !== null && r.label_fe !== null && r.truth_fe !== r.label_fe)) return false;
  if ($("f-prm").checked && !(r.prm_fe !== null && r.label_fe !== null && r.prm_fe !== r.label_fe)) return false;
  if (!q) return true;
  return (r.id + "\\n" + r.problem + "\\n" + r.steps.join("\\n")).toLowerCase().includes(q);
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function card(r) {
  const box = el("div", "sol");
  const head = el("div", "head");
  head.append(el("span", "id", r.id));
  if (r.correct !== null) {
    head.append(el("span", r.correct ? "ok" : "bad", r.correct ? "right answer" : "wrong answer"));
  }
  head.append(el("span", "meta", `answer ${r.answer ?? "none"} / reference ${r.reference ?? "none"}`));
  box.append(head, el("div", "problem", r.problem));
  const byScore = $("colour").value === "score";
  r.steps.forEach((text, i) => {
    const label = r.labels ? r.labels[i] : null, score = r.scores ? r.scores[i] : null;
    const v = byScore ? (score ?? label) : (label ?? score);
    const row = el("div", "step");
    row.style.borderLeftColor = colour(v);
    row.style.background = tint(v);
    row.append(el("span", "n", String(i)));
    const t = el("span", "t", text);
    if (r.label_fe === i) t.append(el("span", "mark m-label", "label's first error"));
    if (r.prm_fe === i) t.append(el("span", "mark m-prm", "PRM's first error"));
    if (r.truth_fe === i) t.append(el("span", "mark m-truth", "truth's first error"));
    row.append(t);
    const parts = [];
    if (label !== null) parts.push("label " + (+label).toFixed(2));
    if (score !== null) parts.push("PRM " + (+score).toFixed(3));
    row.append(el("span", "v", parts.join(" \\u00b7 ")));
    box.append(row);
  });
  return box;
}
function more() {
  const list = $("list");
  for (const r of matches.slice(shown, shown + PAGE)) list.append(card(r));
  shown = Math.min(shown + PAGE, matches.length);
  $("more").hidden = shown >= matches.length;
  $("count").textContent = `${matches.length.toLocaleString()} of ${ROWS.length.toLocaleString()} solutions match` +
    (matches.length > shown ? ` (showing ${shown.toLocaleString()})` : "");
}
function update() {
  const q = $("q").value.trim().toLowerCase();
  matches = ROWS.filter((r) => keep(r, q));
  shown = 0;
  $("list").replaceChildren();
  more();
}
for (const id of ["q", "f-wrong", "f-truth", "f-prm", "colour"]) $(id).addEventListener("input", update);
$("more").addEventListener("click", more);
// A link may carry the view: page.html#wrong&prm&colour=score&q=text
const hash = new URLSearchParams(location.hash.slice(1));
for (const name of ["wrong", "truth", "prm"]) if (hash.has(name)) $("f-" + name).checked = true;
if (hash.get("colour") === "score") $("colour").value = "score";
if (hash.has("q")) $("q").value = hash.get("q");
update();
</script></body></html>
"""
