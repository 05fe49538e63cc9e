"""PRM heads for the `hf` scorer: how each kind of PRM is loaded and what per-token output it hands its format.

A head kind (a format's `head`) is one of: class logits (token classification), LM logits (read only at the
score positions), a value head's outputs, an implicit PRM's log-ratios against its reference, or a likelihood
PRM's per-token log-probabilities. Heads that take `past_key_values` can continue a cached prefix (the scorer's
prefix cache, prmkit/engines/prefix_cache.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from prmkit.errors import ModelError
from prmkit.models.loading import LOAD_ERRORS, _load_failure, resolve_model
from prmkit.registry import Registry


def _from_pretrained(auto_class: Any, path: str, dtype: Any, trust_remote_code: bool) -> Any:
    try:
        return auto_class.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise ModelError(_load_failure(path, exc, "model")) from exc


class Head:
    """A loaded PRM and how to get its per-token output: `forward(ids, mask, keep) -> [batch, len(keep) or seq, ...]`.

    `keep` are the sequence positions the formats will read (sorted); a head that can skip the rest does,
    and says so with `sliced = True` (positions are then indices into `keep`).
    """

    sliced = False
    dense = False
    """Step scores read every token's output (a likelihood PRM), not only the step positions'."""

    def __init__(self, model: Any) -> None:
        self.model = model.eval()

    @property
    def cache_keyword(self) -> str | None:
        """The model's KV-cache argument: `cache` (transformers >= 5.20) or `past_key_values` (before); None: none."""
        params = inspect.signature(self.model.forward).parameters
        return next((k for k in ("cache", "past_key_values") if k in params), None)

    @property
    def supports_cache(self) -> bool:
        """Whether a pass may continue from a prefix's KV cache (the model takes one)."""
        return self.cache_keyword is not None

    def cache_kwargs(self, positions: torch.Tensor | None, cache: Any) -> dict[str, Any]:
        """What a forward pass takes to fill (or continue) `cache`: none of it without a cache."""
        if cache is None:
            return {}
        kwargs: dict[str, Any] = {self.cache_keyword or "past_key_values": cache, "use_cache": True}
        if positions is not None:
            kwargs["position_ids"] = positions
        return kwargs

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str) -> Head:
        self.model.to(device)
        return self

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        """Per-token output of `ids`; with `cache`, continuing it (positions: the new tokens' positions)."""
        out = self.model(input_ids=ids, attention_mask=mask, **self.cache_kwargs(positions, cache))
        return out.logits if hasattr(out, "logits") else out[0]


class LMHead(Head):
    """Causal LM logits, projected only at the positions read (logits_to_keep), so the vocabulary costs little."""

    def __init__(self, model: Any) -> None:
        super().__init__(model)
        self.sliced = "logits_to_keep" in inspect.signature(model.forward).parameters

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        extra = self.cache_kwargs(positions, cache)
        if self.sliced:
            return self.model(input_ids=ids, attention_mask=mask, logits_to_keep=keep, **extra).logits
        return self.model(input_ids=ids, attention_mask=mask, **extra).logits


class ValueHead(Head):
    """A base model plus `v_head.summary` (Linear(hidden, 1)) read from the checkpoint: Skywork-o1-PRM style."""

    def __init__(self, model: Any, summary: torch.nn.Linear) -> None:
        super().__init__(model)
        self.summary = summary.eval()

    def to(self, device: str) -> Head:
        self.model.to(device)
        self.summary.to(device)
        return self

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        hidden = self.model(input_ids=ids, attention_mask=mask, **self.cache_kwargs(positions, cache)).last_hidden_state
        return self.summary(hidden.to(self.summary.weight.dtype)).squeeze(-1)


class ImplicitHead(Head):
    """Per-token log pi(t_k | <k) - log pi_ref(t_k | <k) of the checkpoint against its reference (0 at k = 0)."""

    def __init__(self, model: Any, reference: Any) -> None:
        super().__init__(model)
        self.reference = reference.eval()

    def to(self, device: str) -> Head:
        self.model.to(device)
        self.reference.to(device)
        return self

    @property
    def supports_cache(self) -> bool:
        return False  # two models, and every token's log-ratio is read

    @staticmethod
    def _token_logprobs(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        return torch.gather(torch.log_softmax(logits, -1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        ratio = self._token_logprobs(self.model, ids, mask) - self._token_logprobs(self.reference, ids, mask)
        return torch.cat([ratio.new_zeros((ratio.shape[0], 1)), ratio], dim=1)


class LikelihoodHead(Head):
    """Per-token log pi(t_k | <k) of the checkpoint (0 at k = 0): what a likelihood PRM calibrates."""

    dense = True

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor, positions: Any = None, cache: Any = None
    ) -> torch.Tensor:
        """[batch, seq]: 0, then log pi of tokens 1..; continuing a cache, log pi of the input's tokens 1.. only
        (token 0 is the cached prefix's last token, re-run for the logits that predict token 1)."""
        continuing = cache is not None and cache.get_seq_length() > 0
        logits = self.model(input_ids=ids, attention_mask=mask, **self.cache_kwargs(positions, cache)).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)
        logp = torch.gather(logp, 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        return logp if continuing else torch.cat([logp.new_zeros((logp.shape[0], 1)), logp], dim=1)


HEADS: Registry[Callable[..., Head]] = Registry("PRM head kind")


@HEADS.register("token_classification")
def _token_classification(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    """AutoModelForTokenClassification, or Qwen2.5-Math-PRM's remote-code Qwen2ForProcessRewardModel."""
    from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except LOAD_ERRORS as exc:
        raise ModelError(_load_failure(path, exc, "model config")) from exc
    if any("ProcessRewardModel" in a for a in (config.architectures or [])):
        if not trust_remote_code:
            raise ModelError(
                f"{path!r} is a {config.architectures[0]} (custom code from its repository); set "
                "prm.trust_remote_code: true in the recipe only if you trust that code"
            )
        return Head(_from_pretrained(AutoModel, path, dtype, True))
    return Head(_from_pretrained(AutoModelForTokenClassification, path, dtype, trust_remote_code))


@HEADS.register("lm")
def _lm(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModelForCausalLM

    return LMHead(_from_pretrained(AutoModelForCausalLM, path, dtype, trust_remote_code))


def value_head_weights(path: str) -> dict[str, torch.Tensor]:
    """The `v_head.*` tensors stored beside the base model's weights (safetensors, or a torch .bin)."""
    from safetensors import safe_open

    folder = Path(path)
    found: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                if key.startswith("v_head."):
                    found[key[len("v_head.") :]] = fh.get_tensor(key)
    if not found:
        for file in sorted(folder.glob("*.bin")):
            state = torch.load(file, map_location="cpu", weights_only=True)
            found.update({k[len("v_head.") :]: v for k, v in state.items() if k.startswith("v_head.")})
    return found


@HEADS.register("value")
def _value(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModel

    if not Path(path).is_dir():
        raise ModelError(
            f"value-head PRM {path!r}: download it to a local folder first (its v_head weights are "
            "read from the checkpoint files)"
        )
    weights = value_head_weights(path)
    if "summary.weight" not in weights:
        raise ModelError(f"{path}: no v_head.summary.weight in the checkpoint; not a value-head (Skywork-style) PRM")
    w = weights["summary.weight"]
    summary = torch.nn.Linear(w.shape[1], w.shape[0], bias="summary.bias" in weights)
    with torch.no_grad():
        summary.weight.copy_(w)
        if summary.bias is not None:
            summary.bias.copy_(weights["summary.bias"])
    base = _from_pretrained(AutoModel, path, dtype, trust_remote_code)
    return ValueHead(base, summary.float())  # fp32 head on upcast hidden states, as Skywork's reference


@HEADS.register("implicit")
def _implicit(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModelForCausalLM

    reference = resolve_model(fmt.reference_model)
    return ImplicitHead(
        _from_pretrained(AutoModelForCausalLM, path, dtype, trust_remote_code),
        _from_pretrained(AutoModelForCausalLM, reference, dtype, trust_remote_code),
    )


@HEADS.register("likelihood")
def _likelihood(path: str, dtype: Any, trust_remote_code: bool, fmt: Any) -> Head:
    from transformers import AutoModelForCausalLM

    return LikelihoodHead(_from_pretrained(AutoModelForCausalLM, path, dtype, trust_remote_code))
