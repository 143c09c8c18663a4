"""Per-row sampling and stopping for the ``hf`` engine, plugged into ``model.generate``.

``generate`` samples with one set of parameters and the global torch RNG for a whole batch. The
engine instead runs ``generate`` greedily and lets :class:`RowSampler` (the last logits processor)
choose each row's token with that row's own temperature, top-p and seeded RNG, returning a
one-hot score so greedy picks it. :class:`RowStops` ends each row at its own stop strings, EOS or
token budget. This module imports torch and transformers: import it lazily.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria

from slowthink.engines.base import apply_stop

#: Extra tokens decoded before a stop string's worth of tokens when looking for it.
STOP_WINDOW_MARGIN = 8


@dataclass
class RowSpec:
    """One sequence to generate: sample ``sample`` of request ``request``."""

    request: int
    sample: int
    temperature: float
    top_p: float
    seed: int
    max_new: int
    stops: list[str] = field(default_factory=list)
    logprobs: bool = False
    top_logprobs: int = 0


class RowSampler(LogitsProcessor):
    """Chooses every row's next token itself and returns a one-hot score.

    Rows with ``temperature == 0`` take the argmax. Other rows sample from
    ``softmax(logits / temperature)`` restricted to the top-p nucleus (and the engine's ``top_k`` /
    ``min_p``) by inverse-CDF with a uniform draw from their own ``random.Random(seed)``: the
    choice depends only on the row's logits and seed, never on the other rows or the device's RNG.

    Logprobs are the model's raw next-token distribution: ``log_softmax`` of the logits at
    temperature 1, before top-p / top-k / min-p.
    """

    def __init__(
        self, rows: list[RowSpec], *, top_k: int = 0, min_p: float = 0.0, device: Any = "cpu"
    ) -> None:
        self.rows = rows
        self.rngs = [random.Random(r.seed) for r in rows]
        self.sampling = [i for i, r in enumerate(rows) if r.temperature > 0]
        self.temps = torch.tensor(
            [max(r.temperature, 1e-6) for r in rows], dtype=torch.float32, device=device
        )
        self.top_p = torch.tensor([r.top_p for r in rows], dtype=torch.float32, device=device)
        self.top_k = int(top_k)
        self.min_p = float(min_p)
        self.want_lp = any(r.logprobs or r.top_logprobs for r in rows)
        self.k = max((r.top_logprobs for r in rows), default=0)
        self.chosen_lp: list[torch.Tensor] = []
        self.top_vals: list[torch.Tensor] = []
        self.top_ids: list[torch.Tensor] = []

    def _sample(self, logits: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """Inverse-CDF sampling for ``rows``. A row's method depends only on its own parameters."""
        tokens = torch.empty(len(rows), dtype=torch.long, device=logits.device)
        engine_filter = self.top_k > 0 or self.min_p > 0
        nucleus = [k for k, i in enumerate(rows) if engine_filter or self.rows[i].top_p < 1]
        plain = [k for k, i in enumerate(rows) if not (engine_filter or self.rows[i].top_p < 1)]
        for part, filtered in ((nucleus, True), (plain, False)):
            if not part:
                continue
            idx = torch.tensor([rows[k] for k in part], device=logits.device)
            probs = torch.softmax(logits[idx] / self.temps[idx, None], dim=-1)
            u = torch.tensor(
                [self.rngs[rows[k]].random() for k in part], dtype=torch.float64, device=logits.device
            )
            if filtered:
                sp, si = probs.sort(dim=-1, descending=True)
                keep = (sp.cumsum(-1) - sp) < self.top_p[idx, None]
                if self.top_k > 0:
                    keep[:, self.top_k :] = False
                if self.min_p > 0:
                    keep &= sp >= self.min_p * sp[:, :1]
                keep[:, 0] = True
                sp = sp * keep
            else:
                sp, si = probs, None
            cdf = sp.double().cumsum(-1)
            j = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=sp.shape[-1] - 1)
            tokens[torch.tensor(part, device=logits.device)] = (j if si is None else si.gather(1, j)).squeeze(
                1
            )
        return tokens

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        logits = scores.float()
        tokens = logits.argmax(dim=-1)
        if self.sampling:
            tokens[torch.tensor(self.sampling, device=logits.device)] = self._sample(logits, self.sampling)
        if self.want_lp:
            logp = torch.log_softmax(logits, dim=-1)
            self.chosen_lp.append(logp.gather(1, tokens[:, None]).squeeze(1))
            if self.k:
                vals, ids = logp.topk(self.k, dim=-1)
                self.top_vals.append(vals)
                self.top_ids.append(ids)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, tokens[:, None], 0.0)
        return out

    def logprobs_of(self, row: int, length: int) -> list[float]:
        return [float(step[row]) for step in self.chosen_lp[:length]]

    def top_logprobs_of(self, row: int, length: int, k: int, decode: Any) -> list[dict[str, float]]:
        out: list[dict[str, float]] = []
        for vals, ids in zip(self.top_vals[:length], self.top_ids[:length]):
            d: dict[str, float] = {}
            for v, t in zip(vals[row, :k].tolist(), ids[row, :k].tolist()):
                d.setdefault(decode(t), float(v))  # sorted: the first of equal texts is the likeliest
            out.append(d)
        return out


class RowStops(StoppingCriteria):
    """Ends each row at EOS, at the earliest of its own stop strings, or at its token budget.

    Records, per row, how many tokens it generated (``done_at``, counting the EOS or the token that
    completed the stop string) and why it ended (``reason``: ``eos``, ``stop`` or ``length``).
    """

    def __init__(self, rows: list[RowSpec], prompt_len: int, tokenizer: Any, eos_ids: set[int]) -> None:
        self.rows = rows
        self.prompt_len = prompt_len
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.done_at: list[int | None] = [None] * len(rows)
        self.reason: list[str | None] = [None] * len(rows)
        self.window = [max((len(s) for s in r.stops), default=0) + STOP_WINDOW_MARGIN for r in rows]

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        step = input_ids.shape[1] - self.prompt_len
        width = min(step, max(self.window))
        tail = input_ids[:, -width:].tolist() if width > 0 else [[] for _ in self.rows]
        for i, r in enumerate(self.rows):
            if self.done_at[i] is not None:
                continue
            toks = tail[i]
            if toks and toks[-1] in self.eos_ids:
                self.done_at[i], self.reason[i] = step, "eos"
            elif r.stops and toks:
                text = self.tokenizer.decode(toks[-self.window[i] :], skip_special_tokens=True)
                if apply_stop(text, r.stops)[1] is not None:
                    self.done_at[i], self.reason[i] = step, "stop"
            if self.done_at[i] is None and step >= r.max_new:
                self.done_at[i], self.reason[i] = step, "length"
        done = [d is not None for d in self.done_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
