"""Majority vote over final answers, with equivalent answers (e.g. 0.5 and 1/2) counted as one."""

from __future__ import annotations

from prmkit.grading import is_equivalent


def group_answers(answers: list[str | None], weights: list[float] | None = None) -> list[tuple[str, float]]:
    """Clusters of equivalent answers with their summed weight, heaviest first (ties: first seen wins)."""
    weights = weights if weights is not None else [1.0] * len(answers)
    clusters: list[list] = []  # [representative, weight]
    for answer, weight in zip(answers, weights):
        if answer is None:
            continue
        for cluster in clusters:
            if cluster[0] == answer or is_equivalent(answer, cluster[0]):
                cluster[1] += weight
                break
        else:
            clusters.append([answer, weight])
    order = sorted(range(len(clusters)), key=lambda i: (-clusters[i][1], i))
    return [(clusters[i][0], clusters[i][1]) for i in order]


def majority_answer(answers: list[str | None], weights: list[float] | None = None) -> str | None:
    """The answer with the largest (weighted) vote; None when no sample gave an answer."""
    groups = group_answers(answers, weights)
    return groups[0][0] if groups else None
