"""``judge``: an LLM as judge, on any :class:`~slowthink.engines.base.Engine` (by default the policy).

:class:`LLMJudge` implements both scorer protocols and one extra check:

* **pairwise** (:class:`~slowthink.scorers.base.PairwiseJudge`, LLaVA-CoT's stage judge):
  ``compare(comparisons)`` asks which of two candidates continuing the same prefix is better, with
  one prompt per stage (``judge.pair.<stage>`` in :mod:`slowthink.prompts.judge`). All comparisons
  of a call go to the engine in **one** ``generate`` call, at temperature 0. The reply is prefilled
  with ``Better response: [`` so the first generated token is the verdict. With
  ``prompts="llava-cot"`` the prompts are LLaVA-CoT's own (``judge.llava_cot.<stage>``: the stage's
  inner text of each candidate, the code's hint, one user turn without a system prompt) and the
  judge replies reason first: "Since [reason], I choose response [1/2]."
* **reasoning check** (:class:`~slowthink.scorers.base.ReasoningChecker`, LLaVA-CoT's check inside
  each REASONING comparison): ``check_reasoning(queries)`` asks, with LLaVA-CoT's prompt
  (``judge.llava_cot.check``), whether a reasoning is correct given the information so far (the
  CAPTION); the reply is read as LLaVA-CoT's code reads it: ``incorrect`` anywhere in it -> wrong,
  else ``correct`` -> right, else unknown (``ok=None``, which counts as not wrong). All queries of
  a call in one engine call.
* **pointwise** (:class:`~slowthink.scorers.base.StepScorer`): ``score(queries)`` gives each step
  ``P(Yes)`` that it is correct given the earlier steps, read from the top log-probabilities of the
  first reply token (``max_tokens=1``), falling back to the reply text; cached per
  (problem id, step prefix).

The unparseable-verdict rule (:func:`resolve_verdict`): a reply that :func:`parse_verdict` cannot
read is recorded with ``Verdict.parsed = False`` and its raw text, and decided by

1. the first generated token's top log-probabilities: ``P('1')`` vs ``P('2')`` (the tokens whose
   text is the digit, brackets and spaces stripped), the higher wins, a tie keeps ``a``; only in the
   default prefilled mode, where that token *is* the verdict;
2. otherwise candidate ``a``, the incumbent, wins. Never ``b`` by default.

With ``swap=True`` each comparison is asked in both orders (position-swap debiasing, two requests in
the same engine call): agreeing verdicts win; when only one order parses it decides; when the
orders disagree (position bias) or neither parses, the mean over both orders of ``P(a better)``
from the log-probabilities decides, else ``a`` -- and the verdict is marked ``parsed=False``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from slowthink.formats.stages import stage_contents
from slowthink.prompts import clip_head, clip_tail, get_template, user_prompt
from slowthink.prompts.judge import PAIR_STAGES
from slowthink.scorers.base import (
    Check,
    CheckQuery,
    Comparison,
    PrefixKey,
    ScoreQuery,
    ScoreResult,
    StepCache,
    Verdict,
)
from slowthink.types import Completion, Message, Problem, Request, SlowthinkError

#: Prompt sets of the judge: slowthink's own (verdict-only by default) or LLaVA-CoT's (reason first).
PROMPT_SETS: tuple[str, ...] = ("slowthink", "llava-cot")
#: LLaVA-CoT's hint per stage: the stages of the response so far its code puts in the prompt.
LLAVA_COT_HINTS: dict[str, tuple[str, ...]] = {
    "reasoning": ("caption",),
    "conclusion": ("caption", "reasoning"),
}
_YES = frozenset({"yes", "correct", "true"})
_NO = frozenset({"no", "incorrect", "false"})


# --- parsing (pure functions) ------------------------------------------------------------------
_D = r"\[?\s*(?:response\s*)?#?\s*([12])(?!\d|\.\d)\s*\]?"
_VERDICT_PATTERNS: list[tuple[re.Pattern[str], bool]] = [
    # (pattern, True when the matched number is the *worse* one)
    (re.compile(r"better\s+(?:response|answer|one)\s*(?:is|would\s+be)?\s*[:=\-]?\s*" + _D, re.I), False),
    (re.compile(r"\b(?:i\s+)?(?:choose|chose|pick|prefer|select)\s+" + _D, re.I), False),
    (
        re.compile(
            r"(?:response|answer|candidate|option)\s*\[?\s*([12])\s*\]?\s*(?:is|was)\s+(?:the\s+)?(?:better|best|correct|superior)",
            re.I,
        ),
        False,
    ),
    (
        re.compile(
            r"(?:response|answer|candidate|option)\s*\[?\s*([12])\s*\]?\s*(?:wins|is\s+preferred)", re.I
        ),
        False,
    ),
    (re.compile(r"\b(?:the\s+)?(?:better|best)\s*(?:one|choice)?\s*(?:is|:)\s*" + _D, re.I), False),
    (
        re.compile(
            r"(?:response|answer|candidate)\s*\[?\s*([12])\s*\]?\s*(?:is|was)\s+(?:worse|wrong|incorrect|not\s+(?:better|correct))",
            re.I,
        ),
        True,
    ),
]
_ORDINAL = re.compile(
    r"\b(first|second)\s+(?:response|one|answer|candidate)\s+is\s+(?:the\s+)?(?:better|best|correct)", re.I
)
_BRACKETED = re.compile(r"\[\s*([12])\s*\]")
_LEADING = re.compile(r"^\s*[\[(\"']?\s*([12])(?!\d|\.\d)\s*(?:[\])\"'.,:;]|$|\s)")


def parse_verdict(text: str) -> int | None:
    """Which response a judge reply prefers: 0 for response 1, 1 for response 2, ``None`` if unclear.

    Explicit phrasings come first, then a lone bracketed number, then a reply that starts with
    the number (what the prefilled ``Better response: [`` reply looks like).

    Example:
        >>> [parse_verdict(t) for t in ["Better response: [1]", "Better response: [2]", "2]"]]
        [0, 1, 1]
        >>> [parse_verdict(t) for t in ["Response 2 is better.", "The better one is 1", "I choose response 1"]]
        [1, 0, 0]
        >>> [parse_verdict(t) for t in ["1", " [2] because it adds up", "The second response is better."]]
        [0, 1, 1]
        >>> parse_verdict("Response 1 is wrong, so the answer is clear.")
        1
        >>> [parse_verdict(t) for t in ["", "both are fine", "[3]", "12", "[1] and [2] are equal"]]
        [None, None, None, None, None]
    """
    if not text or not text.strip():
        return None
    for pattern, worse in _VERDICT_PATTERNS:
        m = pattern.search(text)
        if m:
            choice = int(m.group(1)) - 1
            return 1 - choice if worse else choice
    m = _ORDINAL.search(text)
    if m:
        return 0 if m.group(1).lower() == "first" else 1
    bracketed = set(_BRACKETED.findall(text))
    if len(bracketed) == 1:
        return int(bracketed.pop()) - 1
    if len(bracketed) > 1:
        return None
    m = _LEADING.match(text)
    if m:
        return int(m.group(1)) - 1
    return None


_YES_NO = re.compile(r"\b(not\s+correct|not\s+right|incorrect|correct|yes|no|wrong|right|true|false)\b", re.I)


def parse_yes_no(text: str) -> bool | None:
    """The first yes/no-like word of a reply: ``True`` (yes / correct), ``False`` (no / incorrect).

    Example:
        >>> [parse_yes_no(t) for t in [" Yes", "No.", "Incorrect", "The step is correct.", "not correct"]]
        [True, False, False, True, False]
        >>> parse_yes_no("maybe") is None
        True
    """
    m = _YES_NO.search(text or "")
    if not m:
        return None
    word = m.group(1).lower()
    return word in ("correct", "yes", "right", "true")


def parse_check(text: str) -> bool | None:
    """A reasoning-check reply as LLaVA-CoT's code reads it: ``incorrect`` anywhere -> ``False``,
    else ``correct`` -> ``True``, else ``None`` (the code counts that as correct too). Case-insensitive
    (the code's test is not: it would miss "Incorrect.").

    Example:
        >>> [parse_check(t) for t in ["correct", "Incorrect.", "The reasoning is correct.", "It is incorrect: 3+4=8"]]
        [True, False, True, False]
        >>> parse_check("I am not sure") is None
        True
    """
    low = (text or "").lower()
    if "incorrect" in low:
        return False
    if "correct" in low:
        return True
    return None


def _first_top(c: Completion) -> dict[str, float] | None:
    if c.top_logprobs:
        return c.top_logprobs[0]
    return None


def _mass(top: dict[str, float], accept: Any) -> float:
    return sum(math.exp(lp) for tok, lp in top.items() if accept(tok.strip().strip("[]()\"'").lower()))


def digit_probs(c: Completion) -> tuple[float, float] | None:
    """``(P('1'), P('2'))`` at the first generated token, renormalised over the two; ``None`` when
    neither digit is among the top log-probabilities."""
    top = _first_top(c)
    if not top:
        return None
    p1 = _mass(top, lambda t: t == "1")
    p2 = _mass(top, lambda t: t == "2")
    if p1 + p2 <= 0:
        return None
    return p1 / (p1 + p2), p2 / (p1 + p2)


def yes_probability(c: Completion) -> float | None:
    """``P(yes) / (P(yes) + P(no))`` at the first generated token; ``None`` when neither is in the top."""
    top = _first_top(c)
    if not top:
        return None
    p_yes = _mass(top, lambda t: t in _YES)
    p_no = _mass(top, lambda t: t in _NO)
    if p_yes + p_no <= 0:
        return None
    return p_yes / (p_yes + p_no)


def resolve_verdict(text: str, probs: tuple[float, float] | None) -> tuple[int, bool]:
    """The documented rule: ``(winner, parsed)``, winner 0 = Response 1 (the incumbent ``a``).

    A parsed reply decides. Otherwise the first-token probabilities of '1' vs '2' decide (a tie
    keeps Response 1); without them Response 1, the incumbent ``a``, wins -- never ``b`` by default.

    Example:
        >>> resolve_verdict("Better response: [2]", (0.9, 0.1))  # the text wins over the probabilities
        (1, True)
        >>> resolve_verdict("I cannot tell", (0.3, 0.7))
        (1, False)
        >>> resolve_verdict("I cannot tell", None)
        (0, False)
    """
    choice = parse_verdict(text)
    if choice is not None:
        return choice, True
    if probs is not None:
        p1, p2 = probs
        return (0 if p1 >= p2 else 1), False
    return 0, False


# --- config -----------------------------------------------------------------------------------
@dataclass
class JudgeConfig:
    """Options of :class:`LLMJudge`."""

    swap: bool = False
    """Position-swap debiasing: ask every comparison in both orders (twice the judge requests)."""
    prompts: str = "slowthink"
    """Pairwise prompts: ``slowthink`` (``judge.pair.<stage>``) or ``llava-cot`` (LLaVA-CoT's own,
    ``judge.llava_cot.<stage>``, always reason first)."""
    reason_first: bool = False
    """Let the judge write one sentence of reasons before its verdict (LLaVA-CoT's format) instead of
    prefilling ``Better response: [``. Slower, and the log-probability fallback is not available.
    Implied by ``prompts="llava-cot"``."""
    verdict_max_tokens: int = 6
    """Tokens the judge may write for a prefilled pairwise verdict or pre-check."""
    reason_max_tokens: int = 128
    """Tokens the judge may write when it gives reasons first."""
    check_max_tokens: int = 48
    """Tokens the judge may write for a reasoning check (LLaVA-CoT asks for 'correct' or 'incorrect')."""
    top_logprobs: int = 20
    """Top log-probabilities asked for the first reply token (0 = none; disables the soft fallback)."""
    temperature: float = 0.0
    """Judge sampling temperature (0 = greedy, deterministic)."""
    seed: int = 0
    """Seed of the judge's requests (matters only when ``temperature > 0``)."""
    images: bool | None = None
    """Send the problem's images to the judge: ``None`` = when the engine supports images."""
    max_question_chars: int = 2000
    """The question is cut to this many characters (its start is kept)."""
    max_prefix_chars: int = 2500
    """The shared prefix / earlier steps are cut to this many characters (their end is kept)."""
    max_candidate_chars: int = 1500
    """Each candidate / step / response is cut to this many characters (its start is kept)."""

    def __post_init__(self) -> None:
        if self.prompts not in PROMPT_SETS:
            raise ValueError(
                f"JudgeConfig.prompts must be one of {', '.join(PROMPT_SETS)}, got {self.prompts!r}"
            )
        for name in ("verdict_max_tokens", "reason_max_tokens", "check_max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"JudgeConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"JudgeConfig.top_logprobs must be in [0, 20], got {self.top_logprobs}")
        if self.temperature < 0:
            raise ValueError(f"JudgeConfig.temperature must be >= 0, got {self.temperature}")
        for name in ("max_question_chars", "max_prefix_chars", "max_candidate_chars"):
            if getattr(self, name) < 16:
                raise ValueError(f"JudgeConfig.{name} must be >= 16, got {getattr(self, name)}")


@dataclass
class JudgeStats:
    """What the judge did since it was built (for reports and tests)."""

    engine_calls: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    verdicts: int = 0
    verdicts_parsed: int = 0
    verdicts_from_logprobs: int = 0
    verdicts_incumbent: int = 0
    cached_steps: int = 0
    scored_steps: int = 0
    notes: list[str] = field(default_factory=list)


# --- the judge --------------------------------------------------------------------------------
class LLMJudge:
    """An LLM judge on any engine: pairwise ``compare``, ``check_reasoning`` and pointwise ``score``.

    Args:
        engine: who judges (the policy engine itself by default, see ``load_scorer``).
        config: a :class:`JudgeConfig`; keyword ``overrides`` set its fields.

    Every reply is charged: ``Verdict`` / ``ScoreResult`` / ``Check`` carry the prompt and generated
    tokens of their own requests and ``calls = 1`` (0 for steps served from the cache).
    """

    name = "judge"

    def __init__(self, engine: Any, config: JudgeConfig | None = None, **overrides: Any) -> None:
        if engine is None:
            raise SlowthinkError("the LLM judge needs an engine: pass engine=... (e.g. the policy engine)")
        if config is None:
            config = JudgeConfig(**overrides)
        elif overrides:
            config = JudgeConfig(**{**asdict(config), **overrides})
        self.engine = engine
        self.config = config
        self.stats = JudgeStats()
        self._step_cache: StepCache[tuple[float | None, str | None]] = StepCache()

    # -- shared ---------------------------------------------------------------------------------
    def _send_images(self) -> bool:
        if self.config.images is None:
            return bool(getattr(self.engine, "supports_images", False))
        return self.config.images

    @property
    def llava_cot(self) -> bool:
        return self.config.prompts == "llava-cot"

    @property
    def reasons_first(self) -> bool:
        return self.config.reason_first or self.llava_cot

    def _messages(
        self, problem: Problem, user: str, *, images: bool = True, system: bool = True
    ) -> list[Message]:
        """The judge's chat: ``judge.system`` then the user turn (``system=False``: the user turn only,
        as LLaVA-CoT's prompts are asked)."""
        msg = Message("user", user, images=list(problem.images) if images and self._send_images() else [])
        return [Message("system", get_template("judge.system")), msg] if system else [msg]

    def _question(self, problem: Problem) -> str:
        return clip_head(user_prompt(problem), self.config.max_question_chars)

    def _request(
        self,
        messages: list[Message],
        prefix: str,
        max_tokens: int,
        stop: Sequence[str] = (),
        logprobs: bool = True,
    ) -> Request:
        """``logprobs=False`` for free-text replies (reasons, checks): only a first-token verdict uses them."""
        cfg = self.config
        logprobs = logprobs and cfg.top_logprobs > 0
        return Request(
            messages=messages,
            prefix=prefix,
            n=1,
            stop=list(stop),
            max_tokens=max_tokens,
            temperature=cfg.temperature,
            seed=cfg.seed,
            logprobs=logprobs,
            top_logprobs=cfg.top_logprobs if logprobs else 0,
        )

    def _generate(self, requests: list[Request]) -> list[Completion]:
        """One engine call for all requests; one completion each (errors become error completions)."""
        if not requests:
            return []
        outs = self.engine.generate(requests)
        if len(outs) != len(requests):
            raise RuntimeError(f"judge engine returned {len(outs)} results for {len(requests)} requests")
        comps = [o[0] if o else Completion("", finish_reason="error", error="no completion") for o in outs]
        self.stats.engine_calls += 1
        self.stats.requests += len(requests)
        for c in comps:
            self.stats.prompt_tokens += c.prompt_tokens
            self.stats.generated_tokens += c.generated_tokens
        return comps

    # -- pairwise -------------------------------------------------------------------------------
    def pair_prompt(self, c: Comparison, *, swapped: bool = False) -> str:
        """The user prompt for one comparison (``swapped``: ``b`` is shown as Response 1)."""
        stage = c.stage if c.stage in PAIR_STAGES else "answer"
        cfg = self.config
        first, second = (c.b, c.a) if swapped else (c.a, c.b)
        if self.llava_cot:
            return self._llava_cot_pair_prompt(c, stage, first, second)
        prefix = (
            clip_tail(c.prefix, cfg.max_prefix_chars)
            if c.prefix.strip()
            else get_template("judge.pair.empty_prefix")
        )
        body = get_template(f"judge.pair.{stage}").format(
            question=self._question(c.problem),
            prefix=prefix,
            response_1=clip_head(first, cfg.max_candidate_chars),
            response_2=clip_head(second, cfg.max_candidate_chars),
        )
        fmt = get_template("judge.pair.format_reason" if cfg.reason_first else "judge.pair.format")
        return body + "\n" + fmt

    def _llava_cot_pair_prompt(self, c: Comparison, stage: str, first: str, second: str) -> str:
        """LLaVA-CoT's prompt: the candidates' inner stage texts and the stage's hint (the CAPTION for
        REASONING, CAPTION + REASONING for CONCLUSION, the sentences so far for a sentence)."""
        cfg = self.config
        if stage == "sentence":
            hint = c.prefix.strip()
        else:
            done = stage_contents(c.prefix)
            hint = " ".join(done[s] for s in LLAVA_COT_HINTS.get(stage, ()) if done.get(s))
        inner = (
            (lambda t: t.strip())
            if stage in ("sentence", "answer")
            else (lambda t: stage_contents(t).get(stage, t.strip()))
        )
        return get_template(f"judge.llava_cot.{stage}").format(
            question=self._question(c.problem),
            hint=get_template("judge.llava_cot.hint").format(hint=clip_tail(hint, cfg.max_prefix_chars))
            if hint
            else "",
            response_1=clip_head(inner(first), cfg.max_candidate_chars),
            response_2=clip_head(inner(second), cfg.max_candidate_chars),
        )

    def _pair_request(self, c: Comparison, swapped: bool) -> Request:
        cfg = self.config
        reasons = self.reasons_first
        prefix = "" if reasons else get_template("judge.pair.verdict_prefix")
        max_tokens = cfg.reason_max_tokens if reasons else cfg.verdict_max_tokens
        # Prefilled: the verdict is the next token, stop at the closing bracket.
        stop = ["\n\n"] if reasons else ["]", "\n"]
        user = self.pair_prompt(c, swapped=swapped)
        messages = self._messages(c.problem, user, system=not self.llava_cot)
        return self._request(messages, prefix, max_tokens, stop, logprobs=not reasons)

    def _read_pair(self, comp: Completion, prefix: str) -> tuple[int, bool, float | None, str]:
        """(winner among the shown pair, parsed, P('1') from the first token's logprobs, raw text)."""
        if not comp.ok:
            return 0, False, None, f"[error] {comp.error or ''}".strip()
        raw = prefix + comp.text
        probs = digit_probs(comp) if not self.reasons_first else None
        winner, parsed = resolve_verdict(raw, probs)
        return winner, parsed, None if probs is None else probs[0], raw

    def compare(self, comparisons: Sequence[Comparison]) -> list[Verdict]:
        """Which candidate of each comparison is better: ``Verdict.winner`` 0 (``a``) or 1 (``b``).

        One engine call for all comparisons (both orders with ``swap``)."""
        for c in comparisons:
            if c.stage not in PAIR_STAGES:
                raise SlowthinkError(
                    f"unknown judge stage '{c.stage}': choose one of {', '.join(PAIR_STAGES)}"
                )
        swaps = (False, True) if self.config.swap else (False,)
        requests = [self._pair_request(c, s) for c in comparisons for s in swaps]
        comps = self._generate(requests)
        prefix = "" if self.reasons_first else get_template("judge.pair.verdict_prefix")
        verdicts = []
        for i, _ in enumerate(comparisons):
            mine = comps[i * len(swaps) : (i + 1) * len(swaps)]
            reads = [self._read_pair(c, prefix) for c in mine]
            if len(reads) == 1:
                winner, parsed, p_first, raw = reads[0]
                how = "parsed" if parsed else ("logprobs" if p_first is not None else "incumbent")
            else:
                winner, parsed, how, raw = self._combine_swapped(reads[0], reads[1])
            self.stats.verdicts += 1
            if how == "parsed":
                self.stats.verdicts_parsed += 1
            elif how == "logprobs":
                self.stats.verdicts_from_logprobs += 1
            else:
                self.stats.verdicts_incumbent += 1
            verdicts.append(
                Verdict(
                    winner=winner,
                    parsed=parsed,
                    raw=raw,
                    prompt_tokens=sum(c.prompt_tokens for c in mine),
                    generated_tokens=sum(c.generated_tokens for c in mine),
                    calls=1,
                )
            )
        return verdicts

    @staticmethod
    def _combine_swapped(
        ab: tuple[int, bool, float | None, str], ba: tuple[int, bool, float | None, str]
    ) -> tuple[int, bool, str, str]:
        """Both orders -> (winner, parsed, how it was decided, raw). See the module docstring."""
        w_ab, parsed_ab, p_ab, raw_ab = ab
        w_ba, parsed_ba, p_ba, raw_ba = ba
        raw = f"{raw_ab}\n--- swapped (Response 1 = b) ---\n{raw_ba}"
        win_ab = w_ab  # a shown first: winner index is already a/b
        win_ba = 1 - w_ba  # b shown first: flip
        if parsed_ab and parsed_ba and win_ab == win_ba:
            return win_ab, True, "parsed", raw
        if parsed_ab != parsed_ba:
            return (win_ab if parsed_ab else win_ba), True, "parsed", raw
        # Disagreement (position bias) or nothing parsed: mean P(a better) over both orders.
        soft = [p for p in (p_ab, None if p_ba is None else 1.0 - p_ba) if p is not None]
        if soft:
            p_a = sum(soft) / len(soft)
            return (0 if p_a >= 0.5 else 1), False, "logprobs", raw
        return 0, False, "incumbent", raw

    # -- reasoning check ------------------------------------------------------------------------
    def check_prompt(self, q: CheckQuery) -> str:
        """LLaVA-CoT's check: the given information is the CAPTION of the response so far (the whole
        response so far, tags dropped, when it has none); the reasoning is the candidate's inner text."""
        cfg = self.config
        done = stage_contents(q.prefix)
        info = done.get("caption") or " ".join(done.values()) or get_template("judge.pair.empty_prefix")
        reasoning = stage_contents(q.candidate).get("reasoning", q.candidate.strip())
        return get_template("judge.llava_cot.check").format(
            info=clip_tail(info, cfg.max_prefix_chars),
            reasoning=clip_head(reasoning, cfg.max_candidate_chars),
        )

    def check_reasoning(self, queries: Sequence[CheckQuery]) -> list[Check]:
        """Is each reasoning correct? One request per query, all in ONE engine call. Text only, as in
        LLaVA-CoT's code (the check's chat has no image)."""
        cfg = self.config
        requests = [
            self._request(
                self._messages(q.problem, self.check_prompt(q), images=False, system=not self.llava_cot),
                "",
                cfg.check_max_tokens,
                ["\n\n"],
                logprobs=False,
            )
            for q in queries
        ]
        checks = []
        for comp in self._generate(requests):
            checks.append(
                Check(
                    ok=parse_check(comp.text) if comp.ok else None,
                    raw=comp.text if comp.ok else f"[error] {comp.error or ''}",
                    prompt_tokens=comp.prompt_tokens,
                    generated_tokens=comp.generated_tokens,
                    calls=1,
                )
            )
        return checks

    # -- pointwise ------------------------------------------------------------------------------
    def step_prompt(self, problem: Problem, history: Sequence[str], step: str) -> str:
        cfg = self.config
        hist = "\n".join(s.strip() for s in history if s.strip())
        return get_template("judge.step").format(
            question=self._question(problem),
            history=clip_tail(hist, cfg.max_prefix_chars)
            if hist
            else get_template("judge.step.empty_history"),
            step=clip_head(step, cfg.max_candidate_chars),
        )

    def score(self, queries: Sequence[ScoreQuery]) -> list[ScoreResult]:
        """P(the step is correct) for every step; uncached steps of all queries in one engine call.
        A step asked for in this call is charged to the first query that holds it, once."""
        prefix = get_template("judge.step.prefix")
        cfg = self.config
        todo = self._step_cache.missing(queries)
        requests: list[Request] = []
        for qi, si in todo.values():
            q = queries[qi]
            user = self.step_prompt(q.problem, q.steps[:si], q.steps[si])
            req = self._request(self._messages(q.problem, user), prefix, 1)
            req.logprobs, req.top_logprobs = True, max(cfg.top_logprobs, 1)
            requests.append(req)
        comps = dict(zip(todo, self._generate(requests)))
        fresh: dict[PrefixKey, tuple[float | None, str | None]] = {}
        for key, comp in comps.items():
            if not comp.ok:  # not cached: a later call may succeed
                fresh[key] = (None, f"judge error: {comp.error}")
                continue
            p = yes_probability(comp)
            note = None
            if p is None:
                verdict = parse_yes_no(comp.text)
                p = None if verdict is None else float(verdict)
                note = f"no yes/no probability from the judge; read the reply {comp.text!r}"
            fresh[key] = self._step_cache.put(key, (p, note))
        results = []
        for qi, q in enumerate(queries):
            pkeys = self._step_cache.keys(q)
            mine = [comps[k] for k in dict.fromkeys(pkeys) if k in todo and todo[k][0] == qi]
            self.stats.scored_steps += len(mine)
            self.stats.cached_steps += len(pkeys) - len(mine)
            scores = [(fresh[k] if k in fresh else self._step_cache[k])[0] for k in pkeys]
            notes = [
                f"step {j + 1}: {fresh[k][1]}" for j, k in enumerate(pkeys) if k in fresh and fresh[k][1]
            ]
            results.append(
                ScoreResult(
                    scores=scores,
                    prompt_tokens=sum(c.prompt_tokens for c in mine),
                    generated_tokens=sum(c.generated_tokens for c in mine),
                    calls=1 if mine else 0,
                    notes=notes,
                )
            )
        return results
