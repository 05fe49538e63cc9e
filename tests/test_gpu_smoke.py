"""`make gpu-smoke`'s pieces: the real shapes' parameter counts, the full-vocabulary tokenizer, the refusal
without CUDA, and the whole smoke (every GPU recipe's code path) at tiny shapes on CPU."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from prmkit.models.shapes import SHAPES, full_vocab_tokenizer, make_random_qwen_prm, shape_named

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_smoke  # noqa: E402


def test_the_real_shapes_have_the_published_parameter_counts():
    """Qwen2.5-1.5B: 1,543,714,304 parameters; Qwen2.5-7B's body: 7,070,619,136 (7.62B with its LM head)."""
    from transformers import Qwen2Config, Qwen2Model

    assert SHAPES["qwen2.5-math-1.5b"].parameters() == 1_543_714_304
    seven = SHAPES["qwen2.5-math-7b"]
    assert seven.parameters() == 7_070_619_136
    assert seven.parameters() + seven.vocab_size * seven.hidden_size == 7_615_616_512
    s = SHAPES["tiny-prm"]
    config = Qwen2Config(
        vocab_size=s.vocab_size,
        hidden_size=s.hidden_size,
        num_hidden_layers=s.num_layers,
        num_attention_heads=s.num_heads,
        num_key_value_heads=s.num_kv_heads,
        intermediate_size=s.intermediate_size,
    )
    with torch.device("meta"):
        assert Qwen2Model(config).num_parameters() == s.parameters()


def test_the_tokenizer_covers_the_whole_vocabulary_and_every_id_decodes():
    tok = full_vocab_tokenizer(1056, ("<extra_0>",))
    assert len(tok) == 1056
    first_filler = tok.convert_tokens_to_ids("<t0>")
    assert tok.decode([first_filler + 5, first_filler + 6]) == "<t5><t6>"  # a random model's ids decode
    ids = tok("12 + 7 = 19<extra_0>", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "12 + 7 = 19<extra_0>" and tok.convert_tokens_to_ids("<extra_0>") in ids
    assert tok.chat_template and tok.eos_token_id is not None
    with pytest.raises(Exception, match="smaller than the byte tokenizer"):
        full_vocab_tokenizer(100)


def test_a_random_qwen_prm_loads_as_its_remote_code_and_scores(tmp_path):
    from prmkit.engines import make_scorer

    folder = make_random_qwen_prm(tmp_path / "prm", shape_named("tiny-prm"))
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForProcessRewardModel"] and (folder / "modeling_qwen2_rm.py").is_file()
    scorer = make_scorer(
        "hf", model=str(folder), format="qwen_prm", device="cpu", trust_remote_code=True, dtype="float32"
    )
    [result] = scorer.score([("Start at 3. Add 4.", ["3 + 4 = 7", "The answer is 7."])])
    assert len(result.scores) == 2 and all(0 < s < 1 for s in result.scores)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_and_exits_2(capsys):
    assert gpu_smoke.main(["--out", "/nonexistent/never-made"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not Path("/nonexistent/never-made").exists()


def test_every_gpu_recipe_code_path_runs_at_tiny_shapes_on_cpu(tmp_path):
    from prmkit.engines.vllm_env import configure

    configure()
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not usable here"
        pytest.skip(f"vLLM is not importable ({type(exc).__name__}); the smoke's sample/annotate/search need it")
    out = tmp_path / "smoke"
    assert (
        gpu_smoke.main(
            ["--shapes", "tiny", "--device", "cpu", "--out", str(out), "--json", str(tmp_path / "smoke.json")]
        )
        == 0
    )
    result = json.loads((tmp_path / "smoke.json").read_text())
    stages = {r["stage"]: r for r in result["stages"]}
    assert list(stages) == ["sample", "annotate", "train", "processbench", "bestofn", "search"]
    for name, row in stages.items():
        assert row["rc"] == 0, (out / f"{name}.log").read_text()[-2000:]
        assert row["tokens"] and all(n and n > 0 for _, n, _ in row["tokens"]), (name, row["tokens"])
    assert json.loads((out / "processbench" / "metrics.json").read_text())["compute"]["records_scored_this_run"] == 7
