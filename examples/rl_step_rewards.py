"""Per-step rewards from a prmkit PRM in the shapes RL frameworks take (no RL loop runs here).

    python examples/rl_step_rewards.py --prm runs/quickstart-0/prm/final [--engine hf|vllm]

Prints, for a few completions of one problem:
1. TRL: a GRPO reward function `reward(prompts, completions, **kwargs) -> list[float]`, one float per completion
   (here the minimum step score, the usual PRM aggregate for a whole solution; `last` or `prod` work the same);
2. verl: a token-level reward, the per-step reward placed on the last token of each step of the completion's
   token ids and 0 elsewhere (what its reward manager's `reward_tensor` holds for process rewards);
3. the per-step rewards themselves, as an OpenRLHF-style PRM returns them.
`--engine vllm` runs the same PRM through vLLM's pooling runner (the `prm.engine: vllm` route).
"""

from __future__ import annotations

import argparse
import json

from prmkit.score import StepScorer

PROBLEM = "Start at 4. Multiply by 3. Subtract 5. Multiply by 3. Subtract 1. What is the result?"
"""A problem of the quickstart world (3 to 5 operations), so its PRM scores it in distribution."""
COMPLETIONS = [
    "4 * 3 = 12\n12 - 5 = 7\n7 * 3 = 21\n21 - 1 = 20\nThe answer is 20.",
    "4 * 3 = 12\n12 - 5 = 8\n8 * 3 = 24\n24 - 1 = 23\nThe answer is 23.",
    "4 * 3 = 12\n12 - 5 = 7\n7 * 3 = 24\n24 - 1 = 23\nThe answer is 23.",
]


def trl_reward_function(scorer: StepScorer):
    """A TRL GRPOTrainer reward function: one reward per completion (the weakest step's score)."""

    def reward(prompts: list[str], completions: list[str], **kwargs) -> list[float]:
        out = []
        for prompt, completion in zip(prompts, completions):
            _, scores = scorer.score_text(prompt, completion)
            out.append(min(scores) if scores else 0.0)
        return out

    return reward


def verl_token_rewards(scorer: StepScorer, tokenizer, prompt: str, completion: str) -> tuple[list[int], list[float]]:
    """The completion's token ids and a reward per token: each step's score on the last token of that step."""
    steps, scores = scorer.score_text(prompt, completion)
    ids: list[int] = []
    rewards: list[float] = []
    for k, (step, score) in enumerate(zip(steps, scores)):
        piece = tokenizer(step + ("\n" if k < len(steps) - 1 else ""), add_special_tokens=False)["input_ids"]
        ids += piece
        rewards += [0.0] * (len(piece) - 1) + [score]
    return ids, rewards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prm", required=True, help="a PRM checkpoint (a prmkit one reads its own format)")
    parser.add_argument("--engine", default="hf", choices=("hf", "vllm"))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with StepScorer(args.prm, engine=args.engine, device=args.device) as scorer:
        reward = trl_reward_function(scorer)
        print("TRL reward function:", [round(r, 4) for r in reward([PROBLEM] * len(COMPLETIONS), COMPLETIONS)])
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.prm)
        ids, rewards = verl_token_rewards(scorer, tokenizer, PROBLEM, COMPLETIONS[1])
        print(f"verl token rewards ({len(ids)} tokens):", [round(r, 4) for r in rewards])
        steps, scores = scorer.score_text(PROBLEM, COMPLETIONS[2])
        print("step rewards:", json.dumps({"steps": steps, "rewards": [round(s, 4) for s in scores]}))


if __name__ == "__main__":
    main()
