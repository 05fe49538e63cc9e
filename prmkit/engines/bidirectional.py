"""BiPRM: score the steps in the given order and in reverse, and average each step's two scores.

A left-to-right PRM judges a step only from what came before it; the reversed pass lets later steps
inform earlier ones. Steps dropped by the length limit in one direction keep the other direction's score.
"""

from __future__ import annotations

from prmkit.engines.scoring import Progress, ScoredSteps, Scorer


class Bidirectional:
    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.stats = inner.stats

    def score(self, items: list[tuple[str, list[str]]], progress: Progress | None = None) -> list[ScoredSteps]:
        both = self.inner.score([*items, *[(p, list(reversed(s))) for p, s in items]])
        out = []
        for (_, steps), fwd, bwd in zip(items, both[: len(items)], both[len(items) :]):
            n = len(steps)
            back = {n - 1 - j: s for j, s in enumerate(bwd.scores)}
            scores = [(s + back[i]) / 2 if i in back else s for i, s in enumerate(fwd.scores)]
            out.append(
                ScoredSteps(
                    scores,
                    fwd.dropped_steps,
                    fwd.tokens + bwd.tokens,
                    {"forward": fwd.scores, "backward": [back[i] for i in sorted(back)]},
                )
            )
        if progress is not None:
            progress(len(items))
        return out

    def close(self) -> None:
        self.inner.close()
