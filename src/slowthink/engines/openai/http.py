"""The ``openai`` engine's HTTP client: one exchange with retries, reply validation, error messages.

**Errors**: every request (generation, set-up probes, ``/props``, tokenize/count, peek; not the
model listing that only words an error message) is retried up to ``max_retries`` times with
capped exponential backoff and jitter (``Retry-After`` honoured, capped by ``backoff_max_s``) on
429, 5xx, connection errors (a connection closed without a reply included), one read timeout, and
a **malformed reply**: HTTP 200 whose body is not JSON, is JSON but not an object, or lacks what
was asked for (a generation without a non-empty ``choices`` list of objects holding
``message.content`` / ``text``; see :func:`reply_problem`). Any other 4xx fails at once.

**Read timeouts** are retried once (within ``max_retries``): a stalled connection (a proxy or load
balancer hiccup) is a passing fault, but a generation that is merely slower than ``timeout_s``
would time out again, so a second timeout of the same request fails it; raise ``timeout_s``
then. A retried timeout can cost up to ``2 * timeout_s``.

A request that still fails raises :class:`HTTPFailure`; :meth:`HTTPClient.describe` words it as
one line naming the engine, URL, what happened (e.g. "malformed reply after 5 attempts: HTTP 200
but the body has no 'choices' list (body: '...')") and the fix. The API key is read from the
environment variable *named* by ``api_key_env``; it is never logged, shown in ``repr`` or written
into an error (:class:`Secret` scrubs it from every text that leaves the client).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from typing import Any

from slowthink.engines.openai.options import OpenAIOptions
from slowthink.types import SlowthinkError

_MAX_ERROR_BODY = 300
#: Statuses saying an endpoint is not there (so a probe concludes "not supported", not "failed").
ENDPOINT_ABSENT = (404, 405, 501)


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry ``attempt`` (0-based): ``min(max_s, base_s * 2**attempt)`` times a jitter
    factor in [0.5, 1] ("equal jitter"), so concurrent clients do not retry in lockstep.

    >>> 0.5 <= backoff_delay(0, 1.0, 30.0) <= 1.0
    True
    >>> backoff_delay(20, 1.0, 8.0) <= 8.0
    True
    """
    capped = min(max_s, base_s * (2.0 ** min(attempt, 60)))
    return capped * (0.5 + 0.5 * (rng or random).random())


def reply_problem(data: Any, expect: str = "object") -> str | None:
    """What makes a decoded HTTP 200 reply unusable for what was asked, or ``None`` when it is usable.

    ``expect``: ``object`` (any JSON object), ``chat`` / ``completions`` (a generation: a non-empty
    ``choices`` list of objects holding ``message.content`` / ``text``), ``models`` (a ``data``
    list), ``count`` / ``tokens`` (the tokenizer endpoints); ``+usage`` also needs an integer
    ``usage.prompt_tokens`` (the prefix-mode probe measures with it).

    >>> reply_problem([1, 2])
    'the body is JSON but not an object (a list)'
    >>> reply_problem({"error": {"message": "busy"}}, "chat")
    "the body has no 'choices' list"
    >>> reply_problem({"choices": [{"index": 0, "message": {"content": "hi"}}]}, "chat") is None
    True
    >>> reply_problem({"choices": [{"index": 0, "message": {"content": "hi"}}]}, "completions")
    "choice 0 has no 'text' string"
    """
    kind, _, extra = expect.partition("+")
    if not isinstance(data, dict):
        return f"the body is JSON but not an object (a {_json_type(data)})"
    if kind in ("chat", "completions"):
        choices = data.get("choices")
        if not isinstance(choices, list):
            return "the body has no 'choices' list"
        if not choices:
            return "the 'choices' list is empty"
        for k, ch in enumerate(choices):
            if not isinstance(ch, dict):
                return f"choice {k} is not an object (a {_json_type(ch)})"
            if not isinstance(ch.get("index", 0), int):
                return f"choice {k} has a non-integer 'index'"
            if kind == "chat":
                msg = ch.get("message")
                if not isinstance(msg, dict) or not isinstance(msg.get("content", ""), (str, type(None))):
                    return f"choice {k} has no 'message' object with a 'content' string"
            elif not isinstance(ch.get("text"), str):
                return f"choice {k} has no 'text' string"
        usage = data.get("usage")
        if usage is not None and not isinstance(usage, dict):
            return f"'usage' is not an object (a {_json_type(usage)})"
        if extra == "usage" and not _is_int((usage or {}).get("prompt_tokens")):
            return "the body has no integer 'usage.prompt_tokens'"
    elif kind == "models" and not isinstance(data.get("data"), list):
        return "the body has no 'data' list of models"
    elif kind == "count" and not _is_int(data.get("count")):
        return "the body has no integer 'count'"
    elif kind == "tokens" and not isinstance(data.get("tokens"), list):
        return "the body has no 'tokens' list"
    return None


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _json_type(x: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(x), "number" if isinstance(x, (int, float)) else type(x).__name__)


def shorten(text: str, limit: int = 120) -> str:
    """A one-line excerpt of a reply body for error messages.

    >>> shorten("<html>" + "x" * 200, 20)
    '<html>xxxxxxxxxxxxxx...'
    """
    one = " ".join(text.split())
    return one if len(one) <= limit else one[:limit] + "..."


def error_message(body: str) -> str:
    """The server's error message out of an OpenAI-style error body (or the raw text, shortened).

    >>> error_message('{"error": {"message": "model not found"}}')
    'model not found'
    """
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:_MAX_ERROR_BODY]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err
        else:
            msg = err if isinstance(err, str) else data.get("detail") or data.get("message") or err
        if not isinstance(msg, str):
            msg = json.dumps(msg)[:_MAX_ERROR_BODY]
        return msg[:_MAX_ERROR_BODY]
    return str(data)[:_MAX_ERROR_BODY]


class HTTPFailure(Exception):
    """A request that failed for good (after retries where allowed).

    ``kind``: ``connect`` (connection errors), ``timeout`` (read/write timeout), ``status`` (an
    HTTP error status), ``malformed`` (HTTP 200 with a body that is not the JSON asked for) or
    ``http`` (any other transport error); ``attempts``: how many times it was sent.
    """

    def __init__(
        self,
        kind: str,
        detail: str,
        status: int | None = None,
        body: str = "",
        url: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.status, self.body, self.url = kind, detail, status, body, url
        self.attempts = attempts

    @property
    def endpoint_absent(self) -> bool:
        """The server answered that the endpoint is not there (404/405/501)."""
        return self.kind == "status" and self.status in ENDPOINT_ABSENT

    @property
    def fault(self) -> str | None:
        """Whose fault it is, for an engine pool (:mod:`.pool`): ``"server"`` when the server
        itself failed (unreachable, the connection closed, or 5xx after the retries), so another
        replica may answer the request; ``"timeout"`` when it stalled (a hung server or just a slow
        generation); ``None`` when the request was refused for its own sake (a 4xx, a bad reply)."""
        if self.kind == "connect" or (
            self.kind == "status" and self.status is not None and self.status >= 500
        ):
            return "server"
        return "timeout" if self.kind == "timeout" else None

    @property
    def rejects_request(self) -> bool:
        """A probe answer meaning "this server does not take this request" (not a passing failure)."""
        return self.kind == "status" and self.status in (400, 422, *ENDPOINT_ABSENT)


class Secret:
    """Holds the API key; its repr never shows it, and :meth:`scrub` removes it from any text."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret(***)" if self._value else "Secret(None)"

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value and text else text


class HTTPClient:
    """The connection pool to one server, its retry policy and the counters it keeps.

    ``stats`` is the engine's counter dict (``http_requests``, ``retries``, ``malformed_replies``,
    ``read_timeouts`` are counted here); :meth:`count` adds to it under a lock."""

    def __init__(self, options: OpenAIOptions, stats: dict[str, int]) -> None:
        try:
            import httpx
        except ImportError as e:  # pragma: no cover - depends on the install
            raise SlowthinkError("the openai engine needs httpx: pip install 'slowthink[openai]'") from e
        self.options = options
        self.base_url = options.base_url
        self.stats = stats
        self._lock = threading.Lock()
        self._rng = random.Random()
        headers = {"Content-Type": "application/json"}
        env = options.api_key_env
        key = os.environ.get(env) if env else None
        if env and not key:
            raise SlowthinkError(
                f"openai engine: environment variable {env} (api_key_env) is not set: export it with the API key"
            )
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.secret = Secret(key)
        n = int(options.max_concurrency)
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(float(options.timeout_s), connect=float(options.connect_timeout_s)),
            limits=httpx.Limits(max_connections=n + 2, max_keepalive_connections=n + 2),
        )

    def __repr__(self) -> str:
        return f"HTTPClient(base_url={self.base_url!r})"

    @property
    def root_url(self) -> str:
        """The server root (base URL without a trailing ``/v1``), where non-OpenAI endpoints live."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    def close(self) -> None:
        self._client.close()

    def scrub(self, text: str) -> str:
        """``text`` with the API key blanked out."""
        return self.secret.scrub(text)

    def count(self, key: str, k: int = 1) -> None:
        with self._lock:
            self.stats[key] = self.stats.get(key, 0) + k

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        retry: bool = True,
        expect: str = "object",
        timeout_s: float | None = None,
    ) -> Any:
        """One HTTP exchange with retries; returns the decoded JSON or raises :class:`HTTPFailure`.

        ``path`` is relative to the base URL, or a full URL; ``timeout_s`` replaces the client's
        timeouts for this exchange (a health check must not wait ``timeout_s`` of a generation). Retried (``max_retries`` times,
        backoff, counted in ``stats["retries"]``): connection errors, 429, 5xx, and an HTTP 200
        whose body is not usable for ``expect`` (see :func:`reply_problem`); a read timeout is
        retried once. Anything else fails at once.
        """
        import httpx

        retryable = (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.RemoteProtocolError,
            httpx.ReadError,
            httpx.WriteError,
        )
        url = path if path.startswith("http") else self.base_url + path
        attempts = 1 + (int(self.options.max_retries) if retry else 0)
        timeouts_left = 1  # a stalled reply is retried once; a generation that is just slow would stall again
        for attempt in range(attempts):
            last = attempt == attempts - 1
            tries = attempt + 1
            self.count("http_requests")
            extra: dict[str, Any] = {} if timeout_s is None else {"timeout": float(timeout_s)}
            try:
                r = (
                    self._client.request(method, url, json=body, **extra)
                    if body is not None
                    else self._client.request(method, url, **extra)
                )
            except retryable as e:
                if last:
                    raise HTTPFailure(
                        "connect",
                        f"{type(e).__name__}: {self.scrub(str(e)) or 'connection failed'}",
                        url=url,
                        attempts=tries,
                    ) from None
                self._sleep_before_retry(attempt, None)
                continue
            except httpx.TimeoutException as e:
                self.count("read_timeouts")
                if not last and timeouts_left:
                    timeouts_left -= 1
                    self._sleep_before_retry(attempt, None)
                    continue
                raise HTTPFailure(
                    "timeout",
                    f"{type(e).__name__} after {timeout_s or self.options.timeout_s:g}s",
                    url=url,
                    attempts=tries,
                ) from None
            except httpx.HTTPError as e:
                raise HTTPFailure(
                    "http", f"{type(e).__name__}: {self.scrub(str(e))}", url=url, attempts=tries
                ) from None
            status = r.status_code
            if status < 400:
                try:
                    data = r.json()
                except ValueError:
                    problem: str | None = "the body is not JSON"
                else:
                    problem = reply_problem(data, expect)
                if problem is None:
                    return data
                self.count("malformed_replies")
                if last:
                    raise HTTPFailure(
                        "malformed", problem, status, self.scrub(r.text or ""), url=url, attempts=tries
                    )
                self._sleep_before_retry(attempt, None)
                continue
            text = self.scrub(r.text or "")
            if (status == 429 or status >= 500) and not last:
                self._sleep_before_retry(attempt, r.headers.get("retry-after"))
                continue
            raise HTTPFailure("status", f"HTTP {status}", status, text, url=url, attempts=tries)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep_before_retry(self, attempt: int, retry_after: str | None) -> None:
        self.count("retries")
        delay = backoff_delay(
            attempt, float(self.options.backoff_base_s), float(self.options.backoff_max_s), self._rng
        )
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), float(self.options.backoff_max_s)))
        time.sleep(delay)

    def describe(self, failure: HTTPFailure, what: str, model: str | None) -> str:
        """One error line for a failed request: engine, URL, what happened, how to fix it.

        ``model``: the model the request named (a 400/404 about it lists the served models)."""
        head = f"openai engine: {what} to {failure.url or self.base_url} failed"
        tries = f"after {failure.attempts} attempt{'s' if failure.attempts != 1 else ''}"
        if failure.kind == "connect":
            return (
                f"{head}: cannot reach the server ({failure.detail}) {tries}; "
                "start the server or fix the URL in the engine spec 'openai:URL#model'"
            )
        if failure.kind == "timeout":
            return (
                f"{head}: {failure.detail} ({tries}); the server stalled or the generation is slow: "
                "raise the engine option timeout_s or lower max_tokens"
            )
        if failure.kind == "malformed":
            return (
                f"{head}: malformed reply {tries}: HTTP {failure.status} but {failure.detail} "
                f"(body: {shorten(failure.body)!r}); the server, or a proxy in front of it, does not answer "
                "as an OpenAI-compatible API: check that the URL is the API root (usually ending in /v1) "
                "and retry later"
            )
        message = error_message(failure.body) or failure.body[:_MAX_ERROR_BODY]
        if failure.status in (401, 403):
            who = (
                f"the key in ${self.options.api_key_env}"
                if self.options.api_key_env
                else "a request without an API key"
            )
            return f"{head}: HTTP {failure.status}, the server rejected {who}: set api_key_env to the variable holding a valid key"
        if failure.status in (400, 404) and model and "model" in message.lower():
            models = self._list_models()
            if models is not None and model not in models:
                return (
                    f"{head}: model '{model}' is not served there (available: {', '.join(models) or 'none'}); "
                    f"use 'openai:{self.base_url}#{models[0] if models else 'MODEL'}'"
                )
        if failure.status is not None and (failure.status == 429 or failure.status >= 500):
            return (
                f"{head}: HTTP {failure.status} {tries} ({message}); "
                "the server is overloaded or failing: retry later or lower max_concurrency"
            )
        if failure.status == 404:
            return f"{head}: HTTP 404 ({message}); check that the URL ends with the API root (usually /v1)"
        return f"{head}: {failure.detail} ({message}); check the request parameters for this server"

    def _list_models(self) -> list[str] | None:
        try:
            data = self.request("GET", "/models", retry=False, expect="models")
        except HTTPFailure:
            return None  # only used to improve an error message
        return [str(m.get("id")) for m in data["data"] if isinstance(m, dict)]
