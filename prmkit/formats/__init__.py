"""PRM formats by name, and the one call later stages use to get the format a checkpoint was trained with.

`FORMATS` maps a name to a factory (name -> callable(**options) -> PRMFormat). `format_for_checkpoint`
reads the `prmkit_prm.json` that `prmkit train` writes into every checkpoint and calls the factory with
the metadata fields it accepts (the `implicit` sub-mapping is flattened in, and `checkpoint=<path>` is
passed to factories that take it), so scoring tokenizes exactly as training did.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prmkit.errors import ModelError
from prmkit.formats.base import METADATA_FILE, EncodedSteps, PRMFormat
from prmkit.formats.prmkit_format import PrmkitFormat
from prmkit.registry import Registry

FORMATS: Registry[Callable[..., PRMFormat]] = Registry("PRM format")
FORMATS.register("prmkit")(PrmkitFormat)


def read_metadata(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint's prmkit metadata, or None when it has none (a model not trained by prmkit)."""
    file = Path(path) / METADATA_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{file}: not valid JSON ({exc.msg}, line {exc.lineno})") from None


def _options_for(factory: Callable[..., Any], meta: dict[str, Any], checkpoint: str) -> dict[str, Any]:
    """The metadata fields the factory accepts (all of them when it takes **kwargs)."""
    flat = {k: v for k, v in meta.items() if k not in ("format", "implicit")}
    flat.update(meta.get("implicit") or {})
    flat["checkpoint"] = checkpoint
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return flat
    return {k: v for k, v in flat.items() if k in params and not k.startswith("_")}


def format_for_checkpoint(path: str | Path) -> PRMFormat:
    """The exact format a prmkit-trained checkpoint expects; a ModelError when the checkpoint does not say."""
    meta = read_metadata(path)
    if meta is None:
        raise ModelError(
            f"{path}: no {METADATA_FILE} (not trained by prmkit); name the PRM's format in the recipe, "
            f"e.g. format: one of {', '.join(FORMATS.names())}"
        )
    if meta.get("objective") == "sft":
        raise ModelError(f"{path}: this checkpoint is a policy (objective sft), not a PRM; it has no step scores")
    name = meta.get("format")
    if not isinstance(name, str):
        raise ModelError(f"{path}/{METADATA_FILE}: missing 'format'")
    factory = FORMATS.get(name)
    return factory(**_options_for(factory, meta, str(path)))


__all__ = [
    "FORMATS",
    "METADATA_FILE",
    "EncodedSteps",
    "PRMFormat",
    "PrmkitFormat",
    "format_for_checkpoint",
    "read_metadata",
]

# Public PRM families (score/bench helper): one registration each.
from prmkit.formats.qwen_prm import QwenPRMFormat  # noqa: E402 - the format modules import FORMATS from above

FORMATS.register("qwen_prm")(QwenPRMFormat)
from prmkit.formats.math_shepherd import MathShepherdFormat  # noqa: E402 - the format modules import FORMATS from above

FORMATS.register("math_shepherd")(MathShepherdFormat)
from prmkit.formats.rlhflow import RLHFlowFormat  # noqa: E402 - the format modules import FORMATS from above

FORMATS.register("rlhflow")(RLHFlowFormat)
from prmkit.formats.skywork import SkyworkFormat  # noqa: E402 - the format modules import FORMATS from above

FORMATS.register("skywork")(SkyworkFormat)
from prmkit.formats.implicit import ImplicitFormat  # noqa: E402 - the format modules import FORMATS from above

# The two LM-likelihood formats also need where the response starts (step_scores(..., response_start=)), which
# their scorer passes: they extend the PRMFormat protocol rather than satisfy it.
FORMATS.register("implicit")(ImplicitFormat)  # type: ignore[arg-type]
from prmkit.formats.likelihood import LikelihoodFormat  # noqa: E402 - the format modules import FORMATS from above

FORMATS.register("likelihood")(LikelihoodFormat)  # type: ignore[arg-type]
