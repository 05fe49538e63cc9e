"""Step scores of two `prmkit score` runs over the same records (e.g. the hf and vllm engines): largest difference.

    python benchmarks/score_parity.py runs/smollm2/score_hf runs/smollm2/score_vllm [--tolerance 1e-4]

Exits 1 when a record is missing from one side, has another number of scores, or differs by more than the tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def scores(folder: Path) -> dict[str, list[float]]:
    path = folder / "scored.jsonl"
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["id"]] = rec.get("scores") or []
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    a, b = scores(args.a), scores(args.b)
    if a.keys() != b.keys():
        print(
            f"records differ: {len(a.keys() - b.keys())} only in {args.a}, {len(b.keys() - a.keys())} only in {args.b}"
        )
        return 1
    worst, steps = 0.0, 0
    for rid in a:
        if len(a[rid]) != len(b[rid]):
            print(f"{rid}: {len(a[rid])} scores against {len(b[rid])}")
            return 1
        steps += len(a[rid])
        worst = max([worst, *(abs(x - y) for x, y in zip(a[rid], b[rid]))])
    verdict = "within" if worst <= args.tolerance else "OVER"
    print(
        f"{len(a)} records, {steps} step scores: largest difference {worst:.2e} "
        f"({verdict} tolerance {args.tolerance:g})"
    )
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
