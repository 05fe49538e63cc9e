"""`objective: likelihood`: a causal-LM verifier, step score sigmoid(scale * L_i + bias) (prmkit.formats.likelihood).

L_i is the summed log-probability of the response tokens of steps 1..i. (scale, bias) are fitted by logistic
regression of the step labels (annotate's automatic labels) on L_i, first on the init model and again after
training; training, when it takes steps, fine-tunes the LM on BCE(sigmoid(scale * L_i + bias), label_i) over
every labelled step with the calibration held fixed. Why a calibration and not a ratio to the policy: see the
format's docstring (measured: the prefix likelihood of a stronger model ranks a problem's right samples above its
wrong ones more often than the implicit PRM's log-ratio does, and outcome or step training of that ratio lowered
it further).
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import DataError
from prmkit.records import Record
from prmkit.train.objectives import OBJECTIVES, Encoded
from prmkit.train.objectives.implicit import ImplicitObjective, token_logprobs
from prmkit.train.objectives.prm import IGNORE


def fit_logistic(x: Any, y: Any, iterations: int = 50) -> tuple[float, float]:
    """(scale, bias) of sigmoid(scale * x + bias) that minimise the BCE against targets y in [0, 1] (L-BFGS)."""
    import torch
    import torch.nn.functional as F

    x = x.double()
    y = y.double()
    spread = float(x.std()) or 1.0
    params = torch.tensor([1.0 / spread, 0.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> Any:
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(params[0] * x + params[1], y)
        loss.backward()
        return loss

    opt.step(closure)
    scale, bias = (float(v) for v in params.detach())
    return scale, bias


def separator_tokens(tokenizer: Any, separator: str) -> int:
    """How many tokens the step separator is on its own (prmkit's format tokenizes it apart from the step)."""
    return len(tokenizer(separator, add_special_tokens=False)["input_ids"])


def scored_mask(step_ids: list[int], n_sep: int) -> list[int]:
    """1 on each step's own tokens, 0 on the prompt and on each step's last `n_sep` tokens (its separator).

    Why leave the separator out: after the final step a policy ends with EOS, not the separator, so the
    separator's log-probability there is about -15 on every solution, right or wrong, and would drown the signal."""
    mask = [1 if s > 0 else 0 for s in step_ids]
    for t in range(len(step_ids)):
        last_of_step = step_ids[t] > 0 and (t + 1 == len(step_ids) or step_ids[t + 1] != step_ids[t])
        if last_of_step:
            for k in range(max(0, t - n_sep + 1), t + 1):
                mask[k] = 0
    return mask


class LikelihoodObjective(ImplicitObjective):
    name = "likelihood"
    model_kind = "causal_lm"

    def __init__(self, recipe: Any) -> None:
        super().__init__(recipe)
        self.target = "steps"
        self.calibration: tuple[float, float] | None = None
        self._train_features: list[dict[str, Any]] = []

    def setup(self, model: Any, tokenizer: Any, init_path: str) -> None:
        """No reference model: the score reads the checkpoint's own likelihood."""
        self.tokenizer = tokenizer
        self.reference_name = ""

    def encode(self, records: list[Record], tokenizer: Any, source: str) -> Encoded:
        encoded = self._encode(records, tokenizer, source, need_step_labels=True)
        self._train_features = encoded.features
        return encoded

    def _encode(self, records: list[Record], tokenizer: Any, source: str, need_step_labels: bool) -> Encoded:
        """The implicit features plus `scored`: 1 on the step-text tokens whose log-probability counts."""
        encoded = super()._encode(records, tokenizer, source, need_step_labels)
        n_sep = separator_tokens(tokenizer, self.format.step_separator)
        for feature in encoded.features:
            feature["scored"] = scored_mask(feature["step_ids"], n_sep)
        return encoded

    def token_rewards(self, model: Any, batch: dict[str, Any]) -> Any:
        """log pi per predicted token, zero outside the step texts; shape [batch, seq-1]."""
        return token_logprobs(model, batch) * batch["scored"][:, 1:].float()

    def calibrate(self, model: Any, batch_size: int = 32) -> tuple[float, float]:
        """Fit (scale, bias) on the training features with the model as it is now (no gradient)."""
        import torch

        from prmkit.train.collate import PadCollator

        if not self._train_features:
            raise DataError("likelihood objective: no training features to calibrate on")
        collate = PadCollator(self.tokenizer.pad_token_id)
        device = next(model.parameters()).device
        xs, ys = [], []
        was_training = model.training
        model.eval()
        with torch.no_grad():
            for b in range(0, len(self._train_features), batch_size):
                batch = {k: v.to(device) for k, v in collate(self._train_features[b : b + batch_size]).items()}
                cumulative = self.token_rewards(model, batch).cumsum(-1)
                targets = batch["targets"][:, 1:]
                keep = targets != IGNORE
                xs.append(cumulative[keep].cpu())
                ys.append(targets[keep].cpu())
        model.train(was_training)
        self.calibration = fit_logistic(torch.cat(xs), torch.cat(ys))
        return self.calibration

    def _logits(self, model: Any, batch: dict[str, Any]) -> Any:
        if self.calibration is None:
            self.calibrate(model)
        scale, bias = self.calibration  # type: ignore[misc]
        return scale * self.token_rewards(model, batch).cumsum(-1) + bias

    def compute_loss(self, model: Any, batch: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        logits = self._logits(model, batch)
        targets = batch["targets"][:, 1:]
        keep = targets != IGNORE
        return F.binary_cross_entropy_with_logits(logits[keep], targets[keep])

    def finish(self, model: Any) -> None:
        """Refit the calibration on the trained model, before the checkpoint's metadata is written."""
        self.calibrate(model)

    def step_scores(self, model: Any, batch: dict[str, Any]) -> list[list[float]]:
        import torch

        logits = self._logits(model, batch)
        ids = batch["step_ids"][:, 1:]
        out = []
        for row in range(ids.shape[0]):
            n = int(ids[row].max())
            ends = [int((ids[row] == k).nonzero().max()) for k in range(1, n + 1)]
            out.append(torch.sigmoid(logits[row, ends]).tolist())
        return out

    def metadata(self) -> dict[str, Any]:
        """The implicit objective's metadata with this format's name and calibration instead of a reference."""
        scale, bias = self.calibration or (1.0, 0.0)
        meta = {k: v for k, v in super().metadata().items() if k != "implicit"}
        meta.update(format="likelihood", objective="likelihood", scale=scale, bias=bias)
        return meta


OBJECTIVES.register("likelihood")(LikelihoodObjective)
