"""Recipes: safe YAML, unknown keys with the closest valid key, typed overrides, clear messages."""

from __future__ import annotations

from typing import Literal

import pytest

from prmkit.errors import RecipeError
from prmkit.recipe import Section, apply_overrides, dump_recipe, load_recipe, parse_override


class Sampling(Section):
    n: int = 4
    temperature: float = 0.7
    stop: list[str] = []


class Model(Section):
    model: str
    engine: Literal["hf", "vllm"] = "hf"


class Demo(Section):
    seed: int = 0
    policy: Model
    sampling: Sampling = Sampling()
    note: str | None = None


def write(tmp_path, text):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_valid_recipe_and_defaults(tmp_path):
    r = load_recipe(Demo, write(tmp_path, "policy:\n  model: m\nsampling:\n  n: 8\n"))
    assert r.policy.model == "m" and r.sampling.n == 8 and r.sampling.temperature == 0.7


def test_unknown_key_names_file_path_and_closest(tmp_path):
    p = write(tmp_path, "policy:\n  model: m\nsampling:\n  temprature: 0.5\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(Demo, p)
    msg = str(exc.value)
    assert str(p) in msg and "sampling.temprature" in msg and "did you mean 'sampling.temperature'" in msg


def test_wrong_type_names_key_and_expectation(tmp_path):
    with pytest.raises(RecipeError) as exc:
        load_recipe(Demo, write(tmp_path, "policy: {model: m}\nsampling: {n: four}\n"))
    msg = str(exc.value)
    assert "sampling.n" in msg and "integer" in msg and "'four'" in msg


def test_literal_lists_allowed_values(tmp_path):
    with pytest.raises(RecipeError) as exc:
        load_recipe(Demo, write(tmp_path, "policy: {model: m, engine: vlm}\n"))
    assert "policy.engine" in str(exc.value) and "'hf'" in str(exc.value) and "'vllm'" in str(exc.value)


def test_missing_required_key(tmp_path):
    with pytest.raises(RecipeError, match="missing required key 'policy'"):
        load_recipe(Demo, write(tmp_path, "seed: 1\n"))


def test_overrides_are_typed_through_the_model(tmp_path):
    p = write(tmp_path, "policy: {model: m}\n")
    r = load_recipe(Demo, p, ["sampling.n=16", 'sampling.stop=["\\n"]', "seed=3", "policy.engine=vllm"])
    assert r.sampling.n == 16 and r.sampling.stop == ["\n"] and r.seed == 3 and r.policy.engine == "vllm"
    with pytest.raises(RecipeError, match="with overrides.*sampling.n"):
        load_recipe(Demo, p, ["sampling.n=lots"])
    with pytest.raises(RecipeError, match="did you mean 'seed'"):
        load_recipe(Demo, p, ["sed=1"])


def test_bad_override_syntax():
    with pytest.raises(RecipeError, match="expected key.sub=value"):
        parse_override("sampling.n")
    with pytest.raises(RecipeError, match="is a value, not a section"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_yaml_is_safe_loaded(tmp_path):
    p = write(tmp_path, "policy: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_recipe(Demo, p)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(Demo, tmp_path / "nope.yaml")
    with pytest.raises(RecipeError, match="must be a mapping"):
        load_recipe(Demo, write(tmp_path, "- a\n- b\n"))


def test_dump_round_trips(tmp_path):
    r = load_recipe(Demo, write(tmp_path, "policy: {model: m}\n"))
    again = load_recipe(Demo, write(tmp_path, dump_recipe(r)))
    assert again == r


def test_model_spec_passes_vllm_options_only_to_vllm(monkeypatch):
    from prmkit.sections import ModelSpec

    seen = {}
    monkeypatch.setattr("prmkit.engines.make_sampler", lambda name, **kw: seen.setdefault(name, kw))
    spec = ModelSpec(model="m", vllm={"tensor_parallel_size": 2, "gpu_memory_utilization": 0.5})
    spec.build_sampler(seed=7)
    assert "tensor_parallel_size" not in seen["hf"] and seen["hf"]["seed"] == 7
    assert seen["hf"]["prefix_cache_mb"] == 0  # the stage's default; search passes its own
    ModelSpec(model="m", engine="vllm", vllm={"tensor_parallel_size": 2}).build_sampler(seed=7)
    assert seen["vllm"]["tensor_parallel_size"] == 2 and seen["vllm"]["gpu_memory_utilization"] == 0.9
    assert "prefix_cache_mb" not in seen["vllm"]
    seen.clear()
    ModelSpec(model="m", prefix_cache_mb=0).build_sampler(seed=7, prefix_cache_mb=256)
    assert seen["hf"]["prefix_cache_mb"] == 0  # the recipe's 0 turns the stage's default off
    seen.clear()
    ModelSpec(model="m").build_sampler(seed=7, prefix_cache_mb=256)
    assert seen["hf"]["prefix_cache_mb"] == 256
    with pytest.raises(Exception, match="gpu_memory_utilization"):
        ModelSpec(model="m", vllm={"gpu_memory_utilization": 1.5})


def test_prm_spec_passes_vllm_options_only_to_vllm():
    from prmkit.score.recipe import PRMSpec

    hf = PRMSpec(model="m", vllm={"gpu_memory_utilization": 0.3}).scorer_kwargs(seed=1)
    assert "gpu_memory_utilization" not in hf
    kw = PRMSpec(model="m", engine="vllm", vllm={"gpu_memory_utilization": 0.3, "fallback": "hf"}).scorer_kwargs(seed=1)
    assert kw["gpu_memory_utilization"] == 0.3 and kw["fallback"] == "hf" and kw["verify_against_hf"] == 2
    assert "enable_prefix_caching" not in kw and kw["seed"] == 1


def test_recipe_vars_substitute_typed_and_in_strings(tmp_path):
    from prmkit.recipe import resolve_vars

    data = {
        "vars": {"run": "runs/q-3", "seed": 3},
        "seed": "${seed}",
        "output_dir": "${run}/prm",
        "data": {"path": "${run}/a.jsonl", "more": ["${run}*", 1]},
        "note": "seed ${seed}",
    }
    out = resolve_vars(data, "r.yaml")
    assert out == {
        "seed": 3,
        "output_dir": "runs/q-3/prm",
        "data": {"path": "runs/q-3/a.jsonl", "more": ["runs/q-3*", 1]},
        "note": "seed 3",
    }
    assert resolve_vars({"a": "${x}"} | {"vars": {"x": 1.5}}, "r")["a"] == 1.5


def test_recipe_vars_errors_name_the_key(tmp_path):
    from prmkit.recipe import resolve_vars

    with pytest.raises(RecipeError, match=r"r.yaml: data.path: undefined variable '\$\{run\}' \(vars: seed\)"):
        resolve_vars({"vars": {"seed": 1}, "data": {"path": "${run}/x"}}, "r.yaml")
    with pytest.raises(RecipeError, match="'vars' must map names to plain values"):
        resolve_vars({"vars": {"a": {"b": 1}}}, "r.yaml")


def test_recipe_vars_overridden_from_the_shell(tmp_path):
    """`make demo SEED=2` passes vars.seed=2 vars.run=...: the override reaches every use."""
    from prmkit.sample.recipe import SampleRecipe

    path = tmp_path / "r.yaml"
    path.write_text(
        'vars: {run: runs/a, seed: 0}\nseed: ${seed}\noutput_dir: "${run}/sample"\n'
        'data: {path: "${run}/world/test.jsonl"}\npolicy: {model: m}\n'
    )
    recipe = load_recipe(SampleRecipe, path, ["vars.seed=2", "vars.run=runs/b"])
    assert recipe.seed == 2 and recipe.output_dir == "runs/b/sample" and recipe.data.path == "runs/b/world/test.jsonl"


def _sample_recipe_file(tmp_path, body: str):
    path = tmp_path / "r.yaml"
    path.write_text("output_dir: out\ndata: {path: d.jsonl}\npolicy: {model: m}\n" + body)
    return path


def test_duplicate_keys_are_refused_naming_both_lines(tmp_path):
    from prmkit.sample.recipe import SampleRecipe

    path = _sample_recipe_file(tmp_path, "seed: 1\nseed: 2\n")
    with pytest.raises(RecipeError, match=r"r\.yaml line 5: invalid YAML \(duplicate key 'seed' \(lines 4 and 5\)"):
        load_recipe(SampleRecipe, path)


def test_a_non_utf8_recipe_names_the_file_and_byte(tmp_path):
    from prmkit.sample.recipe import SampleRecipe

    path = tmp_path / "r.yaml"
    path.write_bytes(b"output_dir: caf\xe9\n")
    with pytest.raises(RecipeError, match=r"r\.yaml: not UTF-8 text \(byte 0xe9 at offset 15\)"):
        load_recipe(SampleRecipe, path)


def test_an_anchor_bomb_is_refused_fast(tmp_path):
    import time

    from prmkit.sample.recipe import SampleRecipe

    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\noutput_dir: *a9\n")
    start = time.perf_counter()
    with pytest.raises(RecipeError, match="expands to more than 20,000 YAML nodes"):
        load_recipe(SampleRecipe, path)
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("sampling: {n: true}\n", "n: expected an integer, got True"),
        ("seed: 1.0e+23\n", "seed: expected an integer, got 1e\\+23"),
        ("sampling: {temperature: .inf}\n", "temperature: expected a finite number, got inf"),
    ],
)
def test_loose_numbers_are_refused(tmp_path, body, match):
    from prmkit.sample.recipe import SampleRecipe

    with pytest.raises(RecipeError, match=match):
        load_recipe(SampleRecipe, _sample_recipe_file(tmp_path, body))
    assert (
        load_recipe(SampleRecipe, _sample_recipe_file(tmp_path, "sampling: {n: 3, temperature: 1}\n")).sampling.n == 3
    )
