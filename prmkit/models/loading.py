"""Load a causal LM and its tokenizer from a local folder or a Hub id, with one clear error when that fails.

Recipes name models by local path or Hub id; a typo or a machine without Hub access should end in
one sentence naming the model and what was tried, not a transformers traceback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prmkit.errors import ModelError, RecipeError
from prmkit.models.gguf import gguf_folder, is_gguf

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
)


def _load_errors() -> tuple[type[BaseException], ...]:
    """What loading a model or tokenizer raises on bad files: OS and value errors, and safetensors' own error for a
    truncated or corrupt weights file (which is none of those)."""
    import importlib.util

    errors: list[type[BaseException]] = [OSError, ValueError, KeyError]
    if importlib.util.find_spec("safetensors") is not None:  # a transformers dependency; absent only in odd installs
        from safetensors import SafetensorError

        errors.append(SafetensorError)
    return tuple(errors)


LOAD_ERRORS = _load_errors()

DTYPE_NAMES = ("auto", "float32", "bfloat16", "float16")
DEVICE_NAMES = ("auto", "cpu", "cuda")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_hub_id(name: str) -> bool:
    """True for 'org/name' or 'name' (what the Hub accepts); False for anything path-shaped."""
    return bool(_HUB_ID.match(name)) and ".." not in name and "--" not in name and len(name) <= 96


def _hub_failure(name: str, exc: BaseException) -> str:
    """Why a Hub look-up failed, in words, from the exception chain transformers raises."""
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    kinds = {type(e).__name__ for e in chain}
    text = " ".join(str(e) for e in chain)
    if "GatedRepoError" in kinds or "gated repo" in text.lower():
        return f"model {name!r} is gated on the Hub: accept its licence and log in (`hf auth login`)"
    if "RepositoryNotFoundError" in kinds or "not a valid model identifier" in text:
        return f"model {name!r} not found: no such directory, and no such model on the Hub"
    if "LocalEntryNotFoundError" in kinds or "couldn't connect" in text or "offline" in text.lower():
        why = "offline mode is on" if "outgoing traffic has been disabled" in text else "no network"
        return (
            f"model {name!r} not found: no such directory, and the Hub is unreachable ({why}) "
            "and it is not in the local Hugging Face cache"
        )
    return f"model {name!r} could not be loaded: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def resolve_model(name: str | Path) -> str:
    """Check a model name before loading: a local folder must hold a config.json; a non-path name goes to the Hub.

    Returns the string to hand to `from_pretrained`. A `.gguf` file becomes its cached converted folder.
    """
    raw = str(name)
    path = Path(raw).expanduser()
    if is_gguf(raw) and not path.is_dir():
        return gguf_folder(path)  # converted once into a cached folder (prmkit.models.gguf)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{raw!r} is not a model directory: it has no config.json")
        return str(path)
    if path.exists():
        raise ModelError(f"{raw!r} is a file, not a model directory (a folder with config.json and weights)")
    if not looks_like_hub_id(raw):
        raise ModelError(f"model {raw!r} not found: no such directory")
    if not hub_reachable() and not _in_hub_cache(raw):
        raise ModelError(
            f"model {raw!r} not found: no such directory, and the Hub is unreachable (no network) "
            "and it is not in the local Hugging Face cache"
        )
    return raw


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an odd cache layout must not hide the real error, which loading will give
        return False


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """A quick look-up of the Hub's host, so an offline machine fails in a second, not after minutes of retries.

    Offline mode (HF_HUB_OFFLINE) counts as unreachable: then only the local cache is used.
    """
    import os
    import socket
    import threading
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    found: list[bool] = []

    def look_up() -> None:
        try:
            socket.getaddrinfo(host, 443)
            found.append(True)
        except OSError:
            found.append(False)

    worker = threading.Thread(target=look_up, daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(found and found[0])


def resolve_dtype(dtype: str, device: str) -> Any:
    """'auto' is float32 on CPU (bf16 matmuls are slow there) and the checkpoint's own dtype on CUDA."""
    import torch

    if dtype not in DTYPE_NAMES:
        raise RecipeError(f"model dtype {dtype!r} is not allowed; allowed: {', '.join(DTYPE_NAMES)}")
    if dtype == "auto":
        return torch.float32 if device == "cpu" else "auto"
    return getattr(torch, dtype)


def resolve_device(device: str) -> str:
    """'auto' picks CUDA when present; asking for CUDA without one is an error, not a silent CPU run."""
    import torch

    if device not in DEVICE_NAMES:
        raise RecipeError(f"model device {device!r} is not allowed; allowed: {', '.join(DEVICE_NAMES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' was asked for but torch sees no CUDA GPU; use device=cpu or auto")
    return device


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, with the same error mapping as the model."""
    from transformers import AutoTokenizer

    source = resolve_model(path)
    folder = Path(source)
    if folder.is_dir() and not any((folder / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(
            f"{path!s}: the model folder has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "save the tokenizer beside the model (tokenizer.save_pretrained(folder))"
        )
    try:
        return AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(_load_failure(str(path), exc, "tokenizer")) from exc


def _load_failure(name: str, exc: BaseException, what: str) -> str:
    text = str(exc)
    if type(exc).__name__ == "SafetensorError":
        return (
            f"{what} weights in {name!r} are corrupt or truncated ({text.splitlines()[0] if text else 'unreadable'});"
            " copy or save the checkpoint again"
        )
    if "trust_remote_code" in text:
        return (
            f"{what} of {name!r} needs custom code from its repository; set trust_remote_code: true "
            "in the recipe only if you trust that code"
        )
    if Path(name).expanduser().is_dir():
        first = text.splitlines()[0] if text else type(exc).__name__
        return f"{what} in {name!r} could not be loaded: {first}"
    return _hub_failure(name, exc)


def load_causal_lm(
    path: str | Path,
    dtype: str = "auto",
    device: str = "cpu",
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """(model, tokenizer) ready for inference: eval mode, on `device`. trust_remote_code stays off unless asked."""
    from transformers import AutoModelForCausalLM

    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    source = resolve_model(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise ModelError(_load_failure(str(path), exc, "model")) from exc
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    return model.to(device).eval(), tokenizer  # type: ignore[arg-type]  # transformers' stubs type .to() as a dtype cast
