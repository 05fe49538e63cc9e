"""The `prmkit report` recipe: the run folders to read (defaults: the quickstart layout) and where to write."""

from __future__ import annotations

from pydantic import Field

from prmkit.recipe import Section


class ReportRuns(Section):
    """The stage folders the report reads; each holds that stage's metrics.json. A folder set to null is left
    out of the report; a folder that holds no metrics.json shows as a line saying that stage was not run."""

    policy: str | None = "runs/quickstart/policy"
    """`prmkit train` (objective sft): the policy's final-answer accuracy (metrics.json `policy`)."""
    sample: str | None = "runs/quickstart/sample"
    """`prmkit sample` on the test problems: mean accuracy, majority vote and pass@N of the one large draw."""
    annotate: list[str] = ["runs/quickstart/annotate*"]
    """`prmkit annotate` runs, one per method; glob patterns allowed (every matching folder is a row)."""
    prm: str | None = "runs/quickstart/prm"
    """`prmkit train` (objective prm): the evaluation during training."""
    processbench: str | None = "runs/quickstart/bench_processbench"
    """`prmkit bench` with benchmark processbench (the planted-error set)."""
    bestofn: str | None = "runs/quickstart/bench_bestofn"
    """`prmkit bench` with benchmark bestofn."""
    search: str | None = "runs/quickstart/search"
    """`prmkit search`."""


class ReportRecipe(Section):
    output_dir: str = Field(default="runs/quickstart/report", min_length=1)
    """report.md, its PNG plots, recipe.yaml and manifest.json go here."""
    title: str = "prmkit report"
    """The report's title."""
    runs: ReportRuns = ReportRuns()
    """The folders of the chain's runs (defaults: the quickstart layout)."""
