"""The ``openai`` engine: set-up (model, prefix mode, chat template), routing, concurrency, ``n``.

``generate`` is synchronous but sends its requests concurrently (threads, at most
``max_concurrency`` in flight) so the server can batch them.

**Prefix continuation** (the assistant turn is opened and ``Request.prefix`` continued byte for
byte) has three modes, ``prefix_mode``:

* ``continue``: ``/chat/completions`` with the prefix as a final assistant message and
  ``continue_final_message: true, add_generation_prompt: false`` (vLLM and SGLang). Images work.
* ``completions``: the engine renders the chat template itself (:mod:`.templates`) and calls
  ``/completions`` with ``prompt = rendered chat + prefix``. Text only: a request with an image
  and a prefix fails (use ``continue``); an image request without prefix goes to the chat
  endpoint.
* ``auto`` (default): probes once (four 1-token requests) when a prefix first shows up. ``continue``
  is used when the chat endpoint honours it, which is checked by token counts (a continued prompt
  is the plain prompt plus the prefix; an ignored flag adds an end-of-turn and a new assistant
  header), else ``completions``. The llama-cpp-python server ignores ``continue_final_message``
  (its chat handler always closes the last message and adds a generation prompt) so ``auto``
  picks ``completions`` there, which continues exactly. Only an answer decides: a 400/404/405/
  422/501 rejecting the extension or the endpoint. A probe (or ``/props`` template fetch) that
  fails after its retries decides nothing: that call's requests with a prefix fail alone with
  the reason (requests without prefix go on), a warning is logged once and kept in
  ``engine.notes``, and the next call probes again.

**n**: sent as is (a greedy request, ``temperature == 0``, is sampled once and copied); when the
server returns fewer choices (llama.cpp drops ``n``) the rest are filled with extra single
requests, sample ``k`` using ``seed + k``, and later calls split ``n`` up front; a warning is
logged and kept in ``engine.notes``. Never fewer than ``n`` completions.

**Errors**: a request that still fails after its retries (:mod:`.http`) yields
``finish_reason='error'`` completions naming the engine, URL, what happened and the fix; the rest
of the batch completes. ``engine.stats`` counts ``retries`` (one per backoff sleep),
``malformed_replies``, ``read_timeouts``, ``probe_failures`` and ``unresolved_stops``; the eval
runner copies it into ``metrics.json``. Without a model name, a ``/models`` listing that still
fails errors that call's requests (nothing can be sent without a model) and the next call lists
again; naming the model (``#MODEL``) avoids the listing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.engines.base import check_images, error_completions
from slowthink.engines.openai.bodies import (
    EXTENSION_FIELDS,
    Route,
    build_body,
    parse_reply,
    samples_to_send,
)
from slowthink.engines.openai.http import ENDPOINT_ABSENT, HTTPClient, HTTPFailure
from slowthink.engines.openai.options import OPTION_NAMES, OpenAIOptions
from slowthink.engines.openai.stops import StopCounter, TokenizerEndpoint
from slowthink.engines.openai.templates import ChatTemplate, gguf_chat_template, load_chat_template
from slowthink.images import image_data_url
from slowthink.types import Completion, Request, SlowthinkError

logger = logging.getLogger(__name__)

#: Text the ``auto`` probe continues; long enough that a closed turn shows in the token counts.
_PROBE_PREFIX = " The quick brown fox jumps over the lazy dog"
_PROBE_MESSAGES = [{"role": "user", "content": "Hi"}]
_IMAGE_CACHE_SIZE = 64


@dataclass
class _Call:
    """One HTTP generation request: ``n`` samples of request ``index`` (samples from ``offset``)."""

    index: int
    route: Route
    n: int
    offset: int = 0


@dataclass(frozen=True)
class _Failure:
    """Why a request failed: the message of its error completions, and whose fault it is
    (:attr:`HTTPFailure.fault <slowthink.engines.openai.http.HTTPFailure.fault>`)."""

    message: str
    fault: str | None = None


@dataclass
class _Outcome:
    completions: list[Completion] = field(default_factory=list)
    error: _Failure | None = None


@dataclass
class RequestResult:
    """One request's answer from :meth:`OpenAIEngine.generate_results`."""

    completions: list[Completion]
    """``request.n`` completions (error completions when it failed)."""
    fault: str | None = None
    """Why it failed, when it did because of the server: ``"server"`` (unreachable, connection
    closed, 5xx after the retries: another replica may answer it) or ``"timeout"`` (stalled: a
    hung server or a slow generation); ``None`` when it was answered or failed for its own sake."""


class OpenAIEngine:
    """Engine for any OpenAI-compatible server. See the package docstring for every behaviour."""

    name = "openai"

    def __init__(self, base_url: str, model: str | None = None, **options: Any) -> None:
        unknown = set(options) - OPTION_NAMES
        if unknown:
            raise SlowthinkError(
                f"unknown openai engine option(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(OPTION_NAMES))}"
            )
        self.options = OpenAIOptions(base_url=base_url, model=model, **options)
        self.base_url = self.options.base_url
        self.model = self.options.model
        self.supports_images = bool(self.options.supports_images)
        self.prefix_mode: str = self.options.prefix_mode
        self.notes: list[str] = []
        self.stats: dict[str, int] = {
            "http_requests": 0,
            "retries": 0,
            "malformed_replies": 0,
            "read_timeouts": 0,
            "probe_failures": 0,
            "unresolved_stops": 0,
            "fill_requests": 0,
            "tokenize_requests": 0,
            "peek_requests": 0,
        }
        """Counters (read by the eval runner into metrics): HTTP requests sent, ``retries`` (each
        backoff sleep), replies that were malformed (HTTP 200, unusable body), read timeouts, failed
        set-up probes, stop strings left unresolved, and extra requests (n fill, tokenize, peek)."""
        self._lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._ready = False
        self._n_supported: bool | None = None
        self._extensions = bool(self.options.server_extensions)
        self._template: ChatTemplate | None = None
        self._template_error: str | None = None
        self._warned: set[str] = set()
        self._image_cache: OrderedDict[Any, str] = OrderedDict()
        self._http = HTTPClient(self.options, self.stats)
        self._stops = StopCounter(self._http, self._warn_once)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_spec(cls, target: str | None, fragment: str | None, **options: Any) -> OpenAIEngine:
        """``openai:URL#model``; options not meant for this engine (n_ctx, device, ...) are ignored."""
        if not target:
            raise SlowthinkError(
                "openai engine needs the server URL: use 'openai:http://127.0.0.1:8000/v1#model-name'"
            )
        keep = {k: v for k, v in options.items() if k in OPTION_NAMES and k not in ("base_url", "model")}
        dropped = sorted(set(options) - set(keep) - {"model"})
        if dropped:
            logger.debug("openai engine ignores options %s", dropped)
        model = fragment or options.get("model")
        return cls(target, model, **keep)

    def __repr__(self) -> str:
        key = f", api_key_env={self.options.api_key_env!r}" if self.options.api_key_env else ""
        return f"OpenAIEngine(base_url={self.base_url!r}, model={self.model!r}, prefix_mode={self.prefix_mode!r}{key})"

    __str__ = __repr__

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAIEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- what the engine has found out about the server ---------------------------------------------
    @property
    def root_url(self) -> str:
        """The server root (base URL without a trailing ``/v1``), where non-OpenAI endpoints live."""
        return self._http.root_url

    @property
    def server_extensions(self) -> bool:
        """Whether the vLLM/SGLang request fields are sent: the option ``server_extensions``, turned
        off for good once the server rejects them."""
        return self._extensions

    @property
    def template(self) -> ChatTemplate | None:
        """The chat template of ``completions`` mode, once found (None before, or when none can be)."""
        return self._template

    @property
    def template_error(self) -> str | None:
        """Why ``completions`` mode has no chat template, once that is concluded (None otherwise: a
        failed ``/props`` fetch concludes nothing and is tried again)."""
        return self._template_error

    @property
    def tokenizer_endpoint(self) -> TokenizerEndpoint | None:
        """The tokenize endpoint stop recovery found (``llama-cpp-python``, ``llama.cpp`` or
        ``none``), or None while it has not been probed or the last probe failed."""
        return self._stops.endpoint

    def _warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
            self.notes.append(message)
        logger.warning("%s", message)

    def _describe(self, failure: HTTPFailure, what: str) -> str:
        return self._http.describe(failure, what, self.model)

    # -- setup: model, prefix mode, template -------------------------------------------------------
    def _setup(self) -> _Failure | None:
        """Resolve the model name once (from ``/models`` when not given). Returns why this batch
        cannot be sent, or None; a failed listing is tried again on the next call."""
        with self._setup_lock:
            if self._ready:
                return None
            if self.model is None:
                try:
                    models = self._http.request("GET", "/models", expect="models")
                except HTTPFailure as f:
                    why = self._describe(f, "listing the served models (no model was named)")
                    return _Failure(f"{why}; or name the model: 'openai:{self.base_url}#MODEL'", f.fault)
                ids = [str(m.get("id")) for m in models["data"] if isinstance(m, dict)]
                if not ids:
                    return _Failure(
                        f"openai engine: {self.base_url}/models lists no model: name one with 'openai:{self.base_url}#MODEL'"
                    )
                if len(ids) > 1:
                    return _Failure(
                        f"openai engine: {self.base_url} serves several models ({', '.join(ids)}): "
                        f"name one with 'openai:{self.base_url}#{ids[0]}'"
                    )
                self.model = ids[0]
            self._ready = True
            return None

    def _prepare_prefix(self) -> _Failure | None:
        """Make prefix continuation ready: decide ``auto`` (the probe) and load the template for
        ``completions``. Returns None when ready, else why requests with a prefix cannot be sent
        now: the probe or template fetch failed after its retries; nothing is concluded from a
        failure, and the next call tries again."""
        with self._setup_lock:
            try:
                if self.prefix_mode == "auto":
                    self.prefix_mode = self._probe_prefix_mode()
                    logger.info(
                        "openai engine: prefix_mode auto -> %s at %s", self.prefix_mode, self.base_url
                    )
                if self.prefix_mode == "completions":
                    self._load_template()
            except HTTPFailure as f:
                self._http.count("probe_failures")
                fetch = (
                    "the chat-template fetch"
                    if self.prefix_mode == "completions"
                    else "the prefix-mode probe"
                )
                why = self._describe(f, fetch)
                self._warn_once(
                    f"prefix-{fetch}",
                    f"openai engine: {fetch} failed at {self.base_url}; requests with an assistant prefix fail "
                    f"alone while it fails, and it is tried again on the next call (first failure: {why})",
                )
                return _Failure(
                    f"{why}; this request needs it to continue its assistant prefix, so it "
                    "failed alone (the next call tries again; prefix_mode='completions' with chat_template=... "
                    "or prefix_mode='continue' skips the probe)",
                    f.fault,
                )
        return None

    def _probe_prefix_mode(self) -> str:
        """``continue`` if the chat endpoint continues a final assistant message, else ``completions``.

        Raises :class:`HTTPFailure` when the server fails a probe request (after retries); only a
        4xx that rejects the request (the extension or the endpoint) is an answer."""
        base = {"model": self.model, "max_tokens": 1, "temperature": 0.0}
        plain = self._http.request(
            "POST", "/chat/completions", {**base, "messages": _PROBE_MESSAGES}, expect="chat+usage"
        )
        p_plain = int(plain["usage"]["prompt_tokens"])
        try:
            cont = self._http.request(
                "POST",
                "/chat/completions",
                {
                    **base,
                    "messages": [*_PROBE_MESSAGES, {"role": "assistant", "content": _PROBE_PREFIX}],
                    "continue_final_message": True,
                    "add_generation_prompt": False,
                },
                expect="chat+usage",
            )
            p_cont: int | None = int(cont["usage"]["prompt_tokens"])
        except HTTPFailure as f:
            if not f.rejects_request:
                raise
            p_cont = None  # the server rejects the extension
        try:
            one = self._http.request(
                "POST", "/completions", {**base, "prompt": _PROBE_PREFIX}, expect="completions+usage"
            )
            two = self._http.request(
                "POST", "/completions", {**base, "prompt": _PROBE_PREFIX * 2}, expect="completions+usage"
            )
            t_prefix: int | None = int(two["usage"]["prompt_tokens"]) - int(one["usage"]["prompt_tokens"])
        except HTTPFailure as f:
            if not f.rejects_request:
                raise
            t_prefix = None  # no completions endpoint
        if p_cont is not None and (t_prefix is None or abs((p_cont - p_plain) - t_prefix) <= 1):
            return "continue"
        if t_prefix is not None:
            self._warn_once(
                "probe",
                f"openai engine: {self.base_url} ignores continue_final_message; prefixes are continued through "
                "/completions with a locally rendered chat template (prefix_mode='completions')",
            )
            return "completions"
        self._template_error = (
            f"openai engine: {self.base_url} supports neither continue_final_message nor /completions, so an "
            "assistant prefix cannot be continued exactly: use a vLLM or SGLang server, or requests without prefix"
        )
        return "completions"

    def _load_template(self) -> None:
        """Find the chat template for ``completions`` mode. Raises :class:`HTTPFailure` when the
        server's ``/props`` failed (after retries) and there is no local fallback."""
        if self._template is not None or self._template_error is not None:
            return
        try:
            if self.options.chat_template:
                self._template = load_chat_template(self.options.chat_template)
                return
            local_gguf = bool(self.model and self.model.endswith(".gguf") and Path(self.model).is_file())
            props = None
            try:
                props = self._http.request("GET", self.root_url + "/props")
            except HTTPFailure as f:
                # no /props (llama-cpp-python) or it failed while the served .gguf is here to read
                if not (f.status in ENDPOINT_ABSENT or local_gguf):
                    raise
            if isinstance(props, dict) and props.get("chat_template"):
                self._template = ChatTemplate(
                    str(props["chat_template"]),
                    str(props.get("bos_token") or ""),
                    str(props.get("eos_token") or ""),
                    source=self.root_url + "/props",
                )
                return
            if local_gguf:
                self._template = gguf_chat_template(self.model)
                return
            self._template_error = (
                f"openai engine: prefix_mode='completions' needs the model's chat template and {self.base_url} does "
                "not expose it: pass the engine option chat_template=PATH (tokenizer_config.json, .gguf or .jinja)"
            )
        except SlowthinkError as e:
            self._template_error = f"openai engine: {e}"

    # -- generation -------------------------------------------------------------------------------
    def generate(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """Return ``len(requests)`` lists, the i-th holding ``requests[i].n`` completions."""
        return [r.completions for r in self.generate_results(requests)]

    def generate_results(self, requests: Sequence[Request]) -> list[RequestResult]:
        """:meth:`generate`, each request's completions with whose fault a failure was
        (:attr:`RequestResult.fault`): what an engine pool needs to send it to another replica."""
        requests = list(requests)
        check_images(self.name, self.supports_images, requests)
        if not requests:
            return []
        problem = self._setup()
        if problem is not None:
            return [RequestResult(error_completions(r, problem.message), problem.fault) for r in requests]
        prefix_problem = self._prepare_prefix() if any(r.prefix for r in requests) else None

        results: list[list[Completion]] = [[] for _ in requests]
        errors: list[_Failure | None] = [None] * len(requests)
        calls: list[_Call] = []
        for i, r in enumerate(requests):
            if r.prefix and prefix_problem is not None:
                errors[i] = prefix_problem
                continue
            route, err = self._route(r)
            if err is not None:
                errors[i] = _Failure(err)
                continue
            n = samples_to_send(r)
            if n > 1 and self._n_supported is False:
                calls.extend(_Call(i, route, 1, k) for k in range(n))
            else:
                calls.append(_Call(i, route, n, 0))
        self._run(requests, calls, results, errors)

        # the server returned fewer choices than n: fill with single-sample requests
        fill: list[_Call] = []
        for i, r in enumerate(requests):
            got, n = len(results[i]), samples_to_send(r)
            if errors[i] is None and got == 0:  # reply_problem() rules this out; kept as a guard
                errors[i] = _Failure(
                    f"openai engine: {self.base_url} returned no choice for request {i} (malformed reply)"
                )
            elif errors[i] is None and got < n:
                if self._n_supported is not False:
                    with self._lock:
                        self._n_supported = False
                    self._warn_once(
                        "n",
                        f"openai engine: {self.base_url} returned {got} of n={r.n} choices (it ignores n); the missing "
                        "samples are sent as separate requests (sample k uses seed + k)",
                    )
                route, _ = self._route(r)
                fill.extend(_Call(i, route, 1, k) for k in range(got, n))
        if fill:
            self._http.count("fill_requests", len(fill))
            self._run(requests, fill, results, errors)

        out: list[RequestResult] = []
        for i, r in enumerate(requests):
            failure = errors[i]
            if failure is not None:
                out.append(RequestResult(error_completions(r, failure.message), failure.fault))
            elif r.temperature == 0 and results[i] and len(results[i]) < r.n:
                out.append(
                    RequestResult([dataclasses.replace(results[i][k % len(results[i])]) for k in range(r.n)])
                )
            elif len(results[i]) < r.n:
                missing = r.n - len(results[i])
                msg = f"openai engine: {self.base_url} returned {len(results[i])} of n={r.n} samples for request {i}"
                out.append(
                    RequestResult(results[i] + [Completion("", "error", error=msg) for _ in range(missing)])
                )
            else:
                out.append(RequestResult(results[i][: r.n]))
        return out

    def healthy(self) -> bool:
        """Whether the server answers ``GET /models`` now (one try, no retries, within
        ``connect_timeout_s``): the health check an engine pool runs on an endpoint it had marked
        down (or that timed out)."""
        try:
            self._http.request(
                "GET", "/models", retry=False, expect="models", timeout_s=self.options.connect_timeout_s
            )
        except HTTPFailure:
            return False
        return True

    def request_body(self, request: Request, n: int | None = None, sample: int = 0) -> dict[str, Any]:
        """The JSON body :meth:`generate` sends for ``request``: ``n`` samples (default: what
        ``generate`` asks for first, one for a greedy request), seeded ``seed + sample`` (the
        ``sample``-th single-sample request sent to a server that drops ``n``).

        Like ``generate`` it first resolves the model and, for a request with a prefix, the prefix
        mode and chat template (which may ask the server); raises :class:`SlowthinkError` with the
        message ``generate`` would put in the completions when the request cannot be sent."""
        problem = self._setup() or (self._prepare_prefix() if request.prefix else None)
        route, err = self._route(request)
        if problem or err:
            raise SlowthinkError(problem.message if problem else err)
        return self._body(request, _Call(0, route, samples_to_send(request) if n is None else n, sample))

    def _route(self, r: Request) -> tuple[Route, str | None]:
        if self.prefix_mode != "completions":
            return "chat", None
        if r.images:
            if r.prefix:
                return "chat", (
                    "openai engine: a request with an image and an assistant prefix needs prefix_mode='continue' "
                    "(a vLLM or SGLang server); prefix_mode='completions' is text only"
                )
            return "chat", None
        if self._template is None:
            if not r.prefix:
                return "chat", None
            return (
                "completions",
                self._template_error or "openai engine: no chat template for prefix_mode='completions'",
            )
        return "completions", None

    def _run(
        self,
        requests: list[Request],
        calls: list[_Call],
        results: list[list[Completion]],
        errors: list[_Failure | None],
    ) -> None:
        if not calls:
            return
        workers = max(1, min(int(self.options.max_concurrency), len(calls)))
        if workers == 1:
            outcomes = [self._safe_execute(requests[c.index], c) for c in calls]
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slowthink-openai") as pool:
                outcomes = list(pool.map(lambda c: self._safe_execute(requests[c.index], c), calls))
        for c, o in zip(calls, outcomes):
            if o.error is not None:
                if errors[c.index] is None:
                    errors[c.index] = o.error
            else:
                results[c.index].extend(o.completions)

    def _safe_execute(self, r: Request, call: _Call) -> _Outcome:
        try:
            return self._execute(r, call)
        except Exception as e:  # one bad request never fails the batch
            logger.debug("openai engine: request %d failed", call.index, exc_info=True)
            return _Outcome(
                error=_Failure(
                    f"openai engine: request {call.index} to {self.base_url} failed: {type(e).__name__}: {self._http.scrub(str(e))}"
                )
            )

    def _execute(self, r: Request, call: _Call) -> _Outcome:
        path = "/chat/completions" if call.route == "chat" else "/completions"
        what = f"request {call.index} (n={call.n}, {path})"
        for _ in range(2):  # a second pass only after dropping rejected server extensions
            try:
                body = self._body(r, call)
            except SlowthinkError as e:
                return _Outcome(error=_Failure(f"openai engine: request {call.index}: {e}"))
            extensions = self._extensions
            try:
                data = self._http.request("POST", path, body, expect=call.route)
            except HTTPFailure as f:
                if extensions and f.status == 400 and any(name in f.body for name in EXTENSION_FIELDS):
                    with self._lock:
                        self._extensions = False
                    self._warn_once(
                        "ext",
                        f"openai engine: {self.base_url} rejects vLLM/SGLang request fields; sending plain OpenAI requests",
                    )
                    continue
                return _Outcome(error=_Failure(self._describe(f, what), f.fault))
            try:
                return _Outcome(self._parse(r, call, data, body.get("prompt")))
            except (KeyError, TypeError, ValueError, AttributeError) as e:
                return _Outcome(
                    error=_Failure(
                        f"openai engine: {what} to {self.base_url}{path} failed: malformed reply ({type(e).__name__}: "
                        f"{e}); the server does not answer as an OpenAI-compatible API: check the URL and the server"
                    )
                )
        return _Outcome(error=_Failure(f"openai engine: {what} to {self.base_url}{path} was rejected twice"))

    def _parse(self, r: Request, call: _Call, data: dict[str, Any], prompt: str | None) -> list[Completion]:
        def resolve_stop(text: str, generated: int | None) -> str | None:
            return self._stops.resolve(text, r.stop, generated, self.model, prompt)

        return parse_reply(r, call.route, call.n, data, resolve_stop)

    def _body(self, r: Request, call: _Call) -> dict[str, Any]:
        return build_body(
            r,
            call.route,
            call.n,
            None if r.seed is None else r.seed + call.offset,
            model=self.model,
            extensions=self._extensions,
            template=self._template,
            extra_body=self.options.extra_body,
            image_url=self._image_url,
            server=self.base_url,
        )

    def _image_url(self, image: Any) -> str:
        """:func:`~slowthink.images.image_data_url`, cached by (path, mtime, size) so a file shared by
        many requests is read and encoded once."""
        if not isinstance(image, (str, os.PathLike)):
            return image_data_url(image)
        try:
            st = os.stat(image)
        except OSError:
            return image_data_url(image)  # raises the one error for an unreadable image
        key = (os.fspath(image), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._image_cache:
                self._image_cache.move_to_end(key)
                return self._image_cache[key]
        url = image_data_url(image)
        with self._lock:
            self._image_cache[key] = url
            while len(self._image_cache) > _IMAGE_CACHE_SIZE:
                self._image_cache.popitem(last=False)
        return url
