"""Stop-string recovery for the ``openai`` engine.

**Stop strings** are kept in ``Completion.text``. Servers strip them, so the matched one is
recovered, in this order (:func:`recover_stop` does steps 1-3): (1) the text already holds a stop
(the engine asks for ``include_stop_str_in_output`` (vLLM) and ``no_stop_trim`` (SGLang)): cut
after the earliest; (2) the choice names it: ``stop_reason`` (vLLM), ``matched_stop`` (SGLang),
``stopping_word`` (llama.cpp); a non-string value there means EOS or a stop token, so no stop
string; (3) token strings from logprobs (when asked) run past the text: the stop they hold; (4)
servers that say nothing (llama-cpp-python), :class:`StopCounter`: the generated token count from
``usage`` is compared with the server's tokenizer (``/extras/tokenize/count`` or ``/tokenize``):
more tokens than the text needs means a stop string was generated and trimmed; with several
stops, the one whose ``text + stop`` count is closest to the usage count wins
(:func:`stop_candidates_by_count`); when counts tie, a greedy peek of a few tokens on
``/completions`` from the text says which stop the model continues with (exact for greedy
requests), else list order. This last step is a heuristic (a non-canonical tokenization can fool
it); when the server offers no tokenizer (both endpoints answer 404/405/501), ``stop_str`` stays
``None`` and a warning is logged once. A tokenizer probe or count that fails otherwise (after its
retries) leaves that one completion's ``stop_str`` unresolved (``stats["unresolved_stops"]``,
warned once) and the next completion asks again; nothing is switched off for the run.
``engine.stats`` counts the extra tokenize and peek requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from slowthink.engines.base import apply_stop
from slowthink.engines.openai.http import HTTPClient, HTTPFailure

#: Choice fields that name the matched stop (vLLM, SGLang, llama.cpp).
STOP_REASON_FIELDS: tuple[str, ...] = ("stop_reason", "matched_stop", "stopping_word")
#: The server's tokenize endpoint: llama-cpp-python's ``/extras/tokenize/count``, llama.cpp's
#: ``/tokenize``, or none (both answered that they do not exist).
TokenizerEndpoint = Literal["llama-cpp-python", "llama.cpp", "none"]

_NO_STOP_INFO = (
    "openai engine: {url} trims stop strings without saying which one matched, and this cannot be recovered "
    "for {why}; Completion.stop_str is left None when finish_reason is 'stop'"
)


def recover_stop(
    text: str,
    finish_reason: str,
    stops: Sequence[str],
    choice: dict[str, Any] | None = None,
    token_strs: Sequence[str] | None = None,
) -> tuple[str, str | None, bool]:
    """Put the matched stop string back at the end of ``text`` (steps 1-3 of the module docstring).

    Returns ``(text, stop_str, resolved)``; ``resolved`` is False when the server trimmed a stop
    or hit EOS and said nothing that tells which (then the token-count check decides).

    >>> recover_stop(" 5,", "stop", [","])
    (' 5,', ',', True)
    >>> recover_stop(" 5", "stop", [",", "."], {"stop_reason": ","})
    (' 5,', ',', True)
    >>> recover_stop(" 5", "stop", [","], {"stop_reason": None})
    (' 5', None, True)
    >>> recover_stop(" 5", "stop", [",", "."], None, [" ", "5", ","])
    (' 5,', ',', True)
    >>> recover_stop(" 5", "stop", [","])
    (' 5', None, False)
    """
    stops = [s for s in stops if s]
    if not stops:
        return text, None, True
    cut, matched = apply_stop(text, stops)
    if matched is not None:
        return cut, matched, True
    if finish_reason != "stop":
        return text, None, True
    choice = choice or {}
    for key in STOP_REASON_FIELDS:
        if key not in choice:
            continue
        value = choice[key]
        if isinstance(value, str) and value in stops:
            return text + value, value, True
        if key == "stopping_word":
            continue  # llama.cpp leaves it empty both when nothing matched and when it does not report
        return text, None, True  # EOS, a stop token id, or a stop string we did not ask for
    if token_strs:
        full = "".join(token_strs)
        if len(full) > len(text) and full.startswith(text):
            here = [s for s in stops if full.startswith(s, len(text))]
            if here:
                best = max(here, key=len)
                return text + best, best, True
    return text, None, False


def stop_candidates_by_count(
    generated: int, text_count: int, counts_with_stop: Sequence[int], stops: Sequence[str]
) -> list[str]:
    """Step 4: the stops whose ``text + stop`` token count is closest to the generated count (several
    when tied), or ``[]`` (EOS) when the text alone accounts for every generated token.

    >>> stop_candidates_by_count(18, 18, [19], [","])
    []
    >>> stop_candidates_by_count(3, 2, [3, 4], [",", " and"])
    [',']
    >>> stop_candidates_by_count(8, 7, [8, 8], ["9", "7"])
    ['9', '7']
    """
    if generated <= text_count or not stops:
        return []
    best = min(abs(c - generated) for c in counts_with_stop)
    return [s for s, c in zip(stops, counts_with_stop) if abs(c - generated) == best]


def trim_logprobs(
    token_strs: Sequence[str], logprobs: list[float], tops: list[dict[str, float]] | None, text_len: int
) -> tuple[list[float], list[dict[str, float]] | None]:
    """Drop logprob entries of tokens that start at or after ``text_len`` (generated past a stop)."""
    keep, pos = 0, 0
    for tok in token_strs:
        if pos >= text_len and keep > 0:
            break
        keep += 1
        pos += len(tok)
    return logprobs[:keep], (tops[:keep] if tops is not None else None)


class _NoTokenizer(Exception):
    pass


class StopCounter:
    """Step 4: which stop string a server trimmed without saying so, from token counts.

    Finds the server's tokenize endpoint once (:attr:`endpoint`; a failed probe decides nothing and
    runs again for the next completion) and counts through it; ``warn_once(key, message)`` reports
    what cannot be resolved (once per kind)."""

    def __init__(self, http: HTTPClient, warn_once: Callable[[str, str], None]) -> None:
        self._http = http
        self._warn_once = warn_once
        self._lock = threading.Lock()
        self._bos_count = 0
        self.endpoint: TokenizerEndpoint | None = None
        """The tokenize endpoint found, or None while not probed (or the probe failed)."""

    def resolve(
        self,
        text: str,
        stops: Sequence[str],
        generated: int | None,
        model: str | None,
        prompt: str | None,
    ) -> str | None:
        """The stop string generated after ``text`` (``generated`` tokens by ``usage``; None when the
        count is not known, e.g. a reply with several choices), or None (EOS, or not resolvable).
        ``prompt``: the ``/completions`` prompt of the request, for a peek when counts tie."""
        url = self._http.base_url
        stops = [s for s in stops if s]
        if generated is None or generated <= 0:
            self._warn_once("stop-n", _NO_STOP_INFO.format(url=url, why="a request with n > 1"))
            return None
        try:
            text_count = self._count_tokens(text, model)
            if text_count is None or generated <= text_count:
                return None
            if len(stops) == 1:
                return stops[0]
            with_stop = [self._count_tokens(text + s, model) for s in stops]
        except _NoTokenizer:
            self._warn_once(
                "stop-tok", _NO_STOP_INFO.format(url=url, why="a server without a tokenize endpoint")
            )
            return None
        except HTTPFailure as f:
            self._http.count("unresolved_stops")
            self._warn_once(
                "stop-count",
                f"openai engine: a tokenize request failed ({self._http.describe(f, 'tokenize', model)}); the stop "
                "string of that completion is left unresolved (Completion.stop_str None); later completions ask again",
            )
            return None
        candidates = stop_candidates_by_count(
            generated, text_count, [10**9 if c is None else c for c in with_stop], stops
        )
        if len(candidates) > 1 and prompt is not None:
            # tied counts: ask the model which stop it continues with (greedy, a few tokens)
            peek = {
                "model": model,
                "prompt": prompt + text,
                "max_tokens": max(1, generated - text_count + 1),
                "temperature": 0.0,
            }
            self._http.count("peek_requests")
            try:
                data = self._http.request("POST", "/completions", peek, expect="completions")
                ahead = str(data["choices"][0]["text"])
            except HTTPFailure as f:
                ahead = ""
                self._warn_once(
                    "peek",
                    f"openai engine: a peek request failed ({self._http.describe(f, 'peek', model)}); tied stop "
                    "strings are then resolved by list order",
                )
            starting = [s for s in candidates if ahead.startswith(s)]
            if starting:
                return max(starting, key=len)
        return candidates[0] if candidates else None

    def _count_tokens(self, text: str, model: str | None) -> int | None:
        """Tokens of ``text`` by the server's tokenizer (BOS not counted). None when the tokenizer
        probe failed this time (it runs again next time); raises :class:`_NoTokenizer` when the
        server has no tokenize endpoint and :class:`HTTPFailure` when the count request failed."""
        with self._lock:
            if self.endpoint is None:
                self._detect(model)
            endpoint = self.endpoint
        if endpoint is None:
            return None
        if endpoint == "none":
            raise _NoTokenizer
        return self._raw_count(endpoint, text, model)

    def _raw_count(self, endpoint: str, text: str, model: str | None, *, baseline: bool = True) -> int:
        self._http.count("tokenize_requests")
        root = self._http.root_url
        if endpoint == "llama-cpp-python":
            data = self._http.request(
                "POST", root + "/extras/tokenize/count", {"model": model, "input": text}, expect="count"
            )
            n = int(data["count"])
        else:
            data = self._http.request("POST", root + "/tokenize", {"content": text}, expect="tokens")
            n = len(data["tokens"])
        return n - (self._bos_count if baseline else 0)

    def _detect(self, model: str | None) -> None:
        """Find the server's tokenize endpoint (and its BOS count). ``none`` is concluded only when
        each endpoint answers that it does not exist; any other failure leaves the endpoint undecided
        for this completion (stop unresolved, warned once) and the next one probes again."""
        endpoints: tuple[TokenizerEndpoint, ...] = ("llama-cpp-python", "llama.cpp")
        for endpoint in endpoints:
            try:
                n = self._raw_count(endpoint, "", model, baseline=False)
            except HTTPFailure as f:
                if f.endpoint_absent:
                    continue
                self._http.count("probe_failures")
                self._http.count("unresolved_stops")
                self._warn_once(
                    "tok-probe",
                    f"openai engine: the tokenizer probe failed ({self._http.describe(f, 'tokenizer probe', model)}); "
                    "the stop string of that completion is left unresolved (Completion.stop_str None) and "
                    "the probe runs again for the next one",
                )
                return
            self._bos_count = n
            self.endpoint = endpoint
            return
        self.endpoint = "none"
