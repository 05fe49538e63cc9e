"""Dynamic padding of variable-length training features (no packing: labels never cross sequences).

Features are dicts of lists (per-token: input_ids, labels, targets, ...) and scalars (per-sequence).
Each per-token key is right-padded to the batch's longest sequence with its own ignore value, and an
attention mask is added, so every objective shares one collator.
"""

from __future__ import annotations

from typing import Any

PAD_VALUES: dict[str, float | int] = {"labels": -100, "targets": -100.0}
"""Per-token keys and the value that means "ignored"; input_ids get the tokenizer's pad id."""


class PadCollator:
    def __init__(self, pad_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = pad_id
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            width = -(-width // self.multiple) * self.multiple
        batch: dict[str, Any] = {}
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for k, f in enumerate(features):
            mask[k, : len(f["input_ids"])] = 1
        batch["attention_mask"] = mask
        for key, value in features[0].items():
            if isinstance(value, list):
                fill = self.pad_id if key == "input_ids" else PAD_VALUES.get(key, 0)
                dtype = torch.float32 if isinstance(fill, float) else torch.long
                out = torch.full((len(features), width), fill, dtype=dtype)
                for k, f in enumerate(features):
                    out[k, : len(f[key])] = torch.tensor(f[key], dtype=dtype)
                batch[key] = out
            else:
                dtype = torch.float32 if isinstance(value, float) else torch.long
                batch[key] = torch.tensor([f[key] for f in features], dtype=dtype)
        return batch
