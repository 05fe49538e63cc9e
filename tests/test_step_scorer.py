"""`prmkit.score.StepScorer`: step rewards as a Python call (what an RL reward function uses), equal to the score
stage's, and the RL example script run end to end on a tiny PRM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_score import make_tiny_prm  # tests/ is on sys.path (pytest prepend import mode)

from prmkit.engines import make_scorer
from prmkit.errors import RecipeError
from prmkit.score import StepScorer

ROOT = Path(__file__).resolve().parents[1]
PROBLEM = "Start at 4. Multiply by 3. Subtract 5. What is the result?"


@pytest.fixture(scope="module")
def prm(tmp_path_factory) -> Path:
    return make_tiny_prm(tmp_path_factory.mktemp("step_scorer") / "prm")


def test_step_scorer_equals_the_score_stages_scorer(prm):
    steps = ["4 * 3 = 12", "12 - 5 = 7", "The answer is 7."]
    with StepScorer(str(prm), device="cpu") as scorer:
        one = scorer.score(PROBLEM, steps)
        batch = scorer.score_batch([(PROBLEM, steps), (PROBLEM, steps[:1])])
        cut, scores = scorer.score_text(PROBLEM, "4 * 3 = 12\n\n12 - 5 = 7\nThe answer is 7.")
        assert scorer.stats["sequences"] == 4
    want = make_scorer("hf", model=str(prm), device="cpu").score([(PROBLEM, steps)])[0].scores
    assert one == pytest.approx(want, abs=1e-6) and batch[0] == pytest.approx(one, abs=1e-6)
    assert len(batch[1]) == 1 and all(0 <= s <= 1 for s in one)
    assert cut == steps and scores == pytest.approx(one, abs=1e-6)
    with pytest.raises(RecipeError, match="engine"):
        StepScorer(str(prm), engine="nope")


def test_the_rl_example_prints_rewards_in_each_frameworks_shape(prm):
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "rl_step_rewards.py"), "--prm", str(prm), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in res.stdout.splitlines() if ":" in line}
    trl = json.loads(lines["TRL reward function"])
    assert len(trl) == 3 and all(0 <= r <= 1 for r in trl)
    token = json.loads(next(v for k, v in lines.items() if k.startswith("verl token rewards")))
    assert sum(r != 0 for r in token) == 5  # one reward per step, on the step's last token
    steps = json.loads(lines["step rewards"])
    assert len(steps["steps"]) == len(steps["rewards"]) == 5
