"""Parallel sequences for the ``llamacpp`` engine, on llama-cpp-python's low-level API.

One llama.cpp context holds ``n_seq`` sequences (``n_seq_max``), each in its own KV stream of
``n_ctx`` cells (``kv_unified = False``: a token attends only to its own sequence's cells, so the
cost of attention does not grow with what other sequences keep). KV memory is
``n_seq * n_ctx`` cells, allocated at load time.

A :class:`Job` is one prompt and up to ``n_seq`` of its samples. :meth:`SequenceDecoder.run`
packs jobs into waves of at most ``n_seq`` samples; in a wave:

1. each job gets a *base* sequence: the slot whose cached prompt shares the longest prefix with
   the new prompt. When the new prompt extends that cached prompt (a step-wise search asking for
   the next step of the same problem), the slot is continued in place; otherwise (only a shared
   system prompt, say) its cells are copied into the least recently used slot first, so the other
   problem's cache survives. Only the tokens after the common prefix are decoded (at least two);
2. each prompt is decoded in its own ``llama_decode`` calls (pieces of at most ``n_batch``);
3. the base sequence's cells are copied to one slot per further sample (``llama_memory_seq_cp``;
   across KV streams llama.cpp copies the stream's buffer, ``n_ctx`` cells, at the next decode),
   so the n samples of a prompt share ONE prefill;
4. every live sample contributes one token per ``llama_decode`` until all are finished.

Slots keep their prompt after the call, so the next call (the next depth of a search) finds it;
the least recently used slot is the one re-used, which is how the cache evicts. Sampling is done
here in numpy from each sequence's logits, with a ``numpy.random.Generator`` seeded per sample,
so a request's samples do not depend on what else is in the wave.

Batch invariance (measured on this CPU build, asserted by
``tests/engines/test_llamacpp.py::TestParallelSequences``): a request's logits are the same bit
for bit alone, beside other requests, after a cached or copied prefix and however its prompt is
cut into pieces, because (a) flash attention is off: llama.cpp's CPU flash attention takes a tiled
path for 64+ query tokens; (b) a sequence always has at least two query tokens in a prompt piece
and exactly one in a generation step: attention with ONE query row of a sequence takes another
kernel (vector dot products instead of a GEMM), with other rounding, so KV cells computed while
generating are never re-used as a prompt (the chosen step is decoded again, as part of the next
prompt); (c) matrix products are otherwise computed per token column. llama.cpp promises no such
thing in general (GPU kernels pick algorithms by batch size; repacked Q4_0 weights have separate
GEMV/GEMM kernels), so with other builds or models the same seed can give other samples alone and
in a batch.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slowthink.engines.base import apply_stop
from slowthink.types import Completion, Request

#: Candidates sorted first for top-p (the nucleus is usually small); the window grows if not.
_TOP_P_WINDOW = 256
#: A prompt waits one prefill round to copy a prompt of the same round when that shares more than
#: this many tokens beyond what the cache already holds for it (a system prompt, not a template tag).
_WAIT_FOR = 8


def log_normalizer(x: np.ndarray) -> float:
    """log(sum(exp(x))), computed stably."""
    top = float(x.max())
    return top + math.log(float(np.exp(x - top).sum()))


def sample_token(
    logits: np.ndarray,
    rng: np.random.Generator,
    *,
    temperature: float,
    top_p: float,
    top_k: int,
    min_p: float,
) -> int:
    """One token from raw logits: argmax at temperature 0; otherwise llama-cpp-python's sampler
    chain (top-k, then top-p, then min-p, on the temperature-1 distribution; then temperature;
    then a draw from ``rng``)."""
    if temperature <= 0:
        return int(np.argmax(logits))
    x = np.asarray(logits, dtype=np.float64)
    ids: np.ndarray | None = None  # None: the whole vocabulary
    if 0 < top_k < x.size:
        ids = np.argpartition(-x, top_k - 1)[:top_k]
    if top_p < 1.0:
        xs = x if ids is None else x[ids]
        norm = log_normalizer(xs)
        window = _TOP_P_WINDOW
        while True:
            head = np.argpartition(-xs, window - 1)[:window] if window < xs.size else np.arange(xs.size)
            head = head[np.argsort(-xs[head], kind="stable")]
            cum = np.cumsum(np.exp(xs[head] - norm))
            if cum[-1] >= top_p or head.size == xs.size:
                break
            window *= 8
        head = head[: min(int(np.searchsorted(cum, top_p, side="left")) + 1, head.size)]
        ids = head if ids is None else ids[head]
    if min_p > 0.0:
        xs = x if ids is None else x[ids]
        keep = np.flatnonzero(xs >= xs.max() + math.log(min_p))
        ids = keep if ids is None else ids[keep]
    z = x if ids is None else x[ids]
    cum = np.cumsum(np.exp((z - z.max()) / temperature))
    k = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), cum.size - 1)
    return k if ids is None else int(ids[k])


class SampleState:
    """One sample being generated: its tokens and text, the stop-string / end-of-generation /
    budget checks, and its logprobs. Shared by the parallel and the sequential path."""

    def __init__(
        self,
        req: Request,
        n_prompt: int,
        budget: int,
        detokenize: Callable[..., bytes],
        is_eog: Callable[[int], bool],
    ) -> None:
        self.req, self.n_prompt, self.budget = req, n_prompt, budget
        self._detokenize, self._is_eog = detokenize, is_eog
        self.generated: list[int] = []
        self.text = ""
        self._buf = b""
        self.stop_str: str | None = None
        self.finish = "length"
        self.logprobs: list[float] | None = [] if req.logprobs or req.top_logprobs else None
        self.top: list[dict[str, float]] | None = [] if req.top_logprobs else None
        self._longest_stop = max((len(s) for s in req.stop), default=0)

    @property
    def wants_logits(self) -> bool:
        return self.logprobs is not None

    def accept(self, tok: int, logits: np.ndarray | None) -> bool:
        """Take the sampled token (``logits``: the distribution it was drawn from, needed only when
        logprobs are asked). True when the sample is finished: the token is then not decoded."""
        if self._is_eog(tok):
            self.finish = "stop"
            return True
        if self.logprobs is not None and logits is not None:
            x = np.asarray(logits, dtype=np.float64)
            lse = log_normalizer(x)
            self.logprobs.append(float(x[tok] - lse))
            if self.top is not None:
                k = self.req.top_logprobs
                idx = np.argpartition(-x, k)[:k]
                self.top.append(
                    {
                        self._detokenize([int(j)]).decode("utf-8", "replace"): float(x[j] - lse)
                        for j in idx[np.argsort(-x[idx])]
                    }
                )
        self._buf += self._detokenize([tok], prev_tokens=self.generated)
        self.generated.append(tok)
        self.text = self._buf.decode("utf-8", errors="ignore")
        if self.req.stop:
            window = self.text[-(self._longest_stop + 32) :]  # only the tail can hold a new stop string
            cut, s = apply_stop(window, self.req.stop)
            if s is not None:
                self.text = self.text[: len(self.text) - len(window)] + cut
                self.stop_str, self.finish = s, "stop"
                return True
        return len(self.generated) >= self.budget

    def completion(self) -> Completion:
        return Completion(
            text=self.text,
            finish_reason=self.finish,  # type: ignore[arg-type]
            stop_str=self.stop_str,
            prompt_tokens=self.n_prompt,
            generated_tokens=len(self.generated),
            logprobs=self.logprobs,
            top_logprobs=self.top,
        )


@dataclass
class Job:
    """One prompt and some of its samples (``indices``: sample numbers, for the seeds)."""

    req: Request
    tokens: list[int]
    indices: list[int]
    states: list[SampleState]
    error: str | None = None


@dataclass
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)
    """The prompt this sequence last served: its KV cells for positions 0..len-1, computed by a
    prefill (cells of the sample generated after it are there too, but never re-used)."""
    last_used: int = -1


@dataclass
class _Live:
    state: SampleState
    rng: np.random.Generator
    slot: _Slot
    pos: int
    pending: int = -1


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class DecodeError(RuntimeError):
    pass


class SequenceDecoder:
    """A llama.cpp context with ``n_seq`` sequences of ``n_ctx`` tokens each, and their cache."""

    def __init__(
        self,
        lib: Any,
        model: Any,
        *,
        n_ctx: int,
        n_seq: int,
        n_batch: int,
        n_threads: int,
        top_k: int,
        min_p: float,
    ) -> None:
        from llama_cpp._internals import LlamaContext

        self._lib = lib
        params = lib.llama_context_default_params()
        params.n_ctx = n_ctx * n_seq
        params.n_batch = params.n_ubatch = max(n_batch, n_seq)
        params.n_seq_max = n_seq
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = False
        # Flash attention off: llama.cpp's CPU flash attention takes another code path for ubatches
        # of 64+ query tokens, so a prompt's logits would depend on how it was cut into ubatches
        # (alone, beside other prompts, after a cached prefix). Without it they are bit for bit
        # the same (tests/engines/test_llamacpp.py::TestParallelSequences).
        params.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        self._context = LlamaContext(model=model, params=params, verbose=False)
        self._ctx = self._context.ctx
        self._mem = lib.llama_get_memory(self._ctx)
        self.n_ctx = int(lib.llama_n_ctx_seq(self._ctx))
        self.n_seq = n_seq
        self.n_batch = max(n_batch, n_seq)
        self.n_vocab = model.n_vocab()
        self.top_k, self.min_p = top_k, min_p
        self._batch = lib.llama_batch_init(self.n_batch, 0, 1)
        weakref.finalize(self, lib.llama_batch_free, self._batch)
        self.slots = [_Slot(i) for i in range(n_seq)]
        self._clock = 0
        self.stats: dict[str, int] = {
            "prompt_tokens_decoded": 0,
            "prompt_tokens_reused": 0,
            "generated_tokens_decoded": 0,
            "decode_calls": 0,
            "kv_copies": 0,
        }

    def clear(self) -> None:
        """Forget every cached sequence."""
        self._lib.llama_memory_clear(self._mem, True)
        self.slots = [_Slot(i) for i in range(self.n_seq)]

    # -- low level ------------------------------------------------------------------------------
    def _decode(self, items: Sequence[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants logits) items, in that order, in one call."""
        b = self._batch
        b.n_tokens = len(items)
        for i, (tok, pos, seq, out) in enumerate(items):
            b.token[i] = tok
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = out
        rc = self._lib.llama_decode(self._ctx, b)
        self.stats["decode_calls"] += 1
        if rc != 0:
            raise DecodeError(f"llama_decode failed with code {rc}")

    def _logits(self, i: int) -> np.ndarray:
        """The logits of the i-th item of the last decode (a view, valid until the next decode)."""
        return np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, i), shape=(self.n_vocab,))

    def _drop(self, slot: _Slot, start: int) -> None:
        self._lib.llama_memory_seq_rm(self._mem, slot.seq, start, -1)
        del slot.tokens[start:]

    def _copy(self, src: _Slot, dst: _Slot) -> None:
        """dst := src (whole sequence; the buffer copy runs at the next decode, before any write)."""
        self._lib.llama_memory_seq_rm(self._mem, dst.seq, -1, -1)
        self._lib.llama_memory_seq_cp(self._mem, src.seq, dst.seq, -1, -1)
        dst.tokens = list(src.tokens)
        self.stats["kv_copies"] += 1

    def _take(self, claimed: set[int]) -> _Slot:
        free = [s for s in self.slots if s.seq not in claimed]
        slot = min(free, key=lambda s: (s.last_used, s.seq))
        claimed.add(slot.seq)
        slot.last_used = self._clock
        return slot

    # -- a call ---------------------------------------------------------------------------------
    def run(self, jobs: Sequence[Job]) -> None:
        """Generate every job's samples (filling its states), in waves of at most ``n_seq`` samples.
        A failed ``llama_decode`` marks the jobs of its wave with ``error``."""
        waves: list[list[Job]] = []
        used = self.n_seq
        for job in jobs:
            if used + len(job.states) > self.n_seq:
                waves.append([])
                used = 0
            waves[-1].append(job)
            used += len(job.states)
        for wave in waves:
            try:
                self._run_wave(wave)
            except DecodeError as e:
                for job in wave:
                    job.error = f"llamacpp: {e}"
                self.clear()

    def _plan(
        self, job: Job, claimed: set[int], promised: dict[int, list[int]] | None = None
    ) -> tuple[_Slot, int] | None:
        """The base slot of ``job`` and how many prompt tokens it keeps from the cache; ``None``
        (nothing changed) when a prompt planned in the same prefill round (``promised``: slot ->
        its prompt) will share more with it than any cached sequence: the job waits for the next
        round and copies that prompt's cells then (a shared system prompt is decoded once)."""
        best, lcp = None, 0
        for slot in self.slots:  # a base already prefilled in this wave may be copied, not continued
            n = common_prefix(slot.tokens, job.tokens)
            if n > lcp or (n == lcp and best is not None and best.seq in claimed and slot.seq not in claimed):
                best, lcp = slot, n
        if promised and max(common_prefix(t, job.tokens) for t in promised.values()) > lcp + _WAIT_FOR:
            return None
        # Keep at most len-2 tokens: the logits of the last prompt token are needed, and a prompt
        # piece of ONE token per sequence takes llama.cpp's one-row path, whose rounding differs.
        keep = max(0, min(lcp, len(job.tokens) - 2))
        if best is not None and best.seq not in claimed and lcp == len(best.tokens):  # same conversation
            claimed.add(best.seq)
            best.last_used = self._clock
            base = best
        else:  # keep the other conversation's cache: copy its cells into the least recently used slot
            base = self._take(claimed)
            if best is not base:
                if best is not None and keep > 0:
                    self._copy(best, base)
                else:
                    keep = 0
        self._drop(base, keep)
        return base, keep

    def _prefill(self, jobs: Sequence[tuple[_Slot, list[int], int]]) -> list[np.ndarray]:
        """Decode each ``(base, tokens, keep)``'s ``tokens[keep:]`` into its base sequence, all of
        them together; the logits of each prompt's last token, in order.

        One ``llama_decode`` per round: every prompt still being read adds the same number ``c``
        of tokens (llama.cpp's non-unified cache cuts a batch into ubatches with an equal count per
        sequence; ``c`` times the prompts fits one ubatch, so it is cut nowhere else), never leaving
        a prompt with ONE token for a later round (a one-row attention rounds differently, see
        :meth:`_plan`): such a prompt sits the round out."""
        left = {i: len(tokens) - keep for i, (_, tokens, keep) in enumerate(jobs)}
        pos = {i: keep for i, (_, _, keep) in enumerate(jobs)}
        out: dict[int, np.ndarray] = {}
        while left:
            active = sorted(left, key=lambda i: jobs[i][0].seq)  # a ubatch takes increasing sequence ids
            cap = max(2, self.n_batch // len(active))
            c = min(min(left.values()), cap)
            part = [i for i in active if left[i] - c != 1]
            if not part:  # every prompt has c + 1 left (c was capped): take one token less
                c -= 1
                part = active
            if c < 2:  # only when n_batch is tiny: read the rest of one prompt alone
                c, part = left[active[0]], active[:1]
            items: list[tuple[int, int, int, bool]] = []
            last: dict[int, int] = {}
            for i in part:
                base, tokens, _ = jobs[i]
                for p in range(pos[i], pos[i] + c):
                    items.append((tokens[p], p, base.seq, p == len(tokens) - 1))
                if pos[i] + c == len(tokens):
                    last[i] = len(items) - 1
            self._decode(items)
            for i in part:
                pos[i] += c
                left[i] -= c
                if i in last:
                    out[i] = self._logits(last[i]).copy()
                    del left[i]
        for base, tokens, keep in jobs:
            self.stats["prompt_tokens_decoded"] += len(tokens) - keep
            self.stats["prompt_tokens_reused"] += keep
            base.tokens = list(tokens)
        return [out[i] for i in range(len(jobs))]

    def _run_wave(self, wave: list[Job]) -> None:
        self._clock += 1
        claimed: set[int] = set()
        bases: dict[int, tuple[_Slot, int]] = {}
        first: dict[int, np.ndarray] = {}
        pending = list(range(len(wave)))
        while pending:  # prefill rounds: a prompt that copies another's cells waits for its round
            promised: dict[int, list[int]] = {}
            planned, deferred = [], []
            for j in pending:
                plan = self._plan(wave[j], claimed, promised)
                if plan is None:
                    deferred.append(j)
                    continue
                bases[j] = plan
                promised[plan[0].seq] = wave[j].tokens
                planned.append(j)
            logits = self._prefill([(bases[j][0], wave[j].tokens, bases[j][1]) for j in planned])
            first.update(zip(planned, logits))
            pending = deferred
        # one sequence per sample, copied from the base after its prefill
        live: list[tuple[_Live, np.ndarray]] = []
        for j, job in enumerate(wave):
            base, logits = bases[j][0], first[j]
            for k, (idx, state) in enumerate(zip(job.indices, job.states)):
                slot = base if k == 0 else self._take(claimed)
                if slot is not base:
                    self._copy(base, slot)
                seed = None if job.req.seed is None else (job.req.seed + idx) & 0xFFFFFFFF
                live.append((_Live(state, np.random.default_rng(seed), slot, len(job.tokens)), logits))
        for one, logits in live:
            self._step(one, logits)
        running = [one for one, _ in live if one.pending >= 0]
        while running:  # one token of every live sample per llama_decode
            running.sort(key=lambda one: one.slot.seq)  # a ubatch takes consecutive sequence ids
            self._decode([(one.pending, one.pos, one.slot.seq, True) for one in running])
            self.stats["generated_tokens_decoded"] += len(running)
            for i, one in enumerate(running):
                one.pos += 1
                self._step(one, self._logits(i))
            running = [one for one in running if one.pending >= 0]

    def _step(self, one: _Live, logits: np.ndarray) -> None:
        req = one.state.req
        tok = sample_token(
            logits, one.rng, temperature=req.temperature, top_p=req.top_p, top_k=self.top_k, min_p=self.min_p
        )
        done = one.state.accept(tok, logits if one.state.wants_logits else None)
        one.pending = -1 if done else tok
