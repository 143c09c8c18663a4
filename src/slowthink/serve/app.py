"""The server: a :class:`Service` (engine, scorers, batcher, limits) and its Starlette app.

Limits: a body larger than ``max_body_bytes`` is a 413; more than ``max_concurrent`` requests in
flight (waiting or searching) a 429; a request whose search takes longer than ``timeout_s`` a 504
(its search still finishes on the worker, the answer is dropped). Every refusal is an OpenAI error
body ``{"error": {"message", "type", "param", "code"}}``; an unexpected failure is a 500 of the same
shape and never stops the server. The API key is compared in constant time and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slowthink.engines import load_engine
from slowthink.formats import get_format
from slowthink.options import PY_PREFIX, load_py_object
from slowthink.scorers import load_scorer
from slowthink.scorers.base import Scorer
from slowthink.search import check_engine_fits, require, solve
from slowthink.serve.batcher import Batcher
from slowthink.serve.messages import (
    ChatRequest,
    RequestError,
    completion_body,
    parse_chat,
    sse,
    stream_chunk,
    stream_end,
)
from slowthink.serve.models import DEFAULT_MODELS, ModelChoice, parse_model
from slowthink.types import Node, Problem, SlowthinkError, Trace


@dataclass
class ServeConfig:
    """Settings of ``slowthink serve`` (its flags)."""

    engine: str = "llamacpp"
    engine_options: dict[str, Any] = field(default_factory=dict)
    format: str = "atomic"
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    batch_window_ms: float = 20.0
    max_batch: int = 64
    max_concurrent: int = 64
    max_body_bytes: int = 20 * 1024 * 1024
    timeout_s: float = 600.0
    allow_local_images: bool = False
    coalesce: bool = True
    """False: every request is its own ``solve`` call (still one at a time on the worker)."""


def make_engine(spec: str, options: dict[str, Any]):
    """The engine of ``spec``: a registered engine, or ``py:module:Class#k=v`` (scripted doubles)."""
    if spec.startswith(PY_PREFIX):
        return load_py_object(spec, **options)
    return load_engine(spec, **options)


@dataclass
class Submission:
    """A request's problem as the batcher carries it: ``folder`` holds its saved images (removed
    after the search), ``listener`` hears its committed nodes (streaming), on the worker thread."""

    problem: Problem
    folder: Path | None = None
    listener: Callable[[Node], None] | None = None


class Service:
    """The engine, the scorers (loaded once per spec), the batcher and the request limits."""

    def __init__(self, config: ServeConfig, engine: Any = None) -> None:
        self.config = config
        self.engine = engine if engine is not None else make_engine(config.engine, config.engine_options)
        self._scorers: dict[str, Scorer] = {}
        self.batcher: Batcher[Submission, Trace] = Batcher(
            self._solve,
            window_s=config.batch_window_ms / 1000 if config.coalesce else 0.0,
            max_batch=config.max_batch if config.coalesce else 1,
        )
        self.in_flight = 0
        self.models = [self.model(name) for name in config.models]  # a bad listed model fails at start

    def scorer(self, spec: str | None) -> Scorer | None:
        if spec is None:
            return None
        if spec not in self._scorers:
            self._scorers[spec] = (
                load_py_object(spec) if spec.startswith(PY_PREFIX) else load_scorer(spec, engine=self.engine)
            )
        return self._scorers[spec]

    def model(self, name: str, **overrides: Any) -> ModelChoice:
        """The checked model of a name (a bad one is a 404) with the request's overrides (a bad one is a 400)."""
        try:
            choice = parse_model(name)
            get_format(choice.format or self.config.format)
            require(choice.strategy, choice.config, self.scorer(choice.scorer_spec()))
        except SlowthinkError as e:
            raise RequestError(
                404, f"model '{name}' cannot be served: {e}", "invalid_request_error", "model_not_found"
            ) from None
        if not overrides:
            return choice
        try:
            return choice.with_options(**overrides)
        except SlowthinkError as e:  # a request field (seed, temperature, ...) out of range
            raise RequestError(400, str(e)) from None

    def prepare(self, chat: ChatRequest) -> ModelChoice:
        """The checked model of a request (404) and a check that the engine takes its images (400)."""
        choice = self.model(chat.model, **(chat.overrides or {}))
        try:
            check_engine_fits([chat.problem], self.engine)
        except SlowthinkError as e:
            raise RequestError(400, str(e)) from None
        return choice

    def _solve(self, choice: ModelChoice, jobs: Sequence[Submission]) -> list[Trace]:
        """One batched search (on the worker thread); removes the requests' image folders after it.

        A problem's id is its content's (seeds derive from it: the same question and seed get the
        same answer alone or batched); a repeat within the batch gets ``-2``, ``-3``, ... (new samples)."""
        seen: dict[str, int] = {}
        for job in jobs:
            base = job.problem.id
            seen[base] = seen.get(base, 0) + 1
            if seen[base] > 1:
                job.problem.id = f"{base}-{seen[base]}"
        listeners = {job.problem.id: job.listener for job in jobs if job.listener is not None}

        def heard(problem_id: str, node: Node) -> None:
            if problem_id in listeners:
                listeners[problem_id](node)

        try:
            fmt = get_format(choice.format or self.config.format)
            scorer = self.scorer(choice.scorer_spec())
            return solve(
                [job.problem for job in jobs],
                self.engine,
                fmt,
                choice.strategy,
                scorer=scorer,
                on_commit=heard if listeners else None,
                **dict(choice.options),
            )
        finally:
            for job in jobs:
                if job.folder is not None:
                    shutil.rmtree(job.folder, ignore_errors=True)

    async def answer(self, choice: ModelChoice, job: Submission) -> Trace:
        """The trace of one prepared request, from the batch it joins (504 past the timeout)."""
        try:
            trace = await asyncio.wait_for(self.batcher.submit(choice, job), self.config.timeout_s)
        except asyncio.TimeoutError:
            raise RequestError(
                504,
                f"the search took longer than {self.config.timeout_s:g} s; "
                "pick a cheaper model (smaller n) or raise --request-timeout",
                "timeout",
                "timeout",
            ) from None
        if trace.error:
            raise RequestError(500, f"the search failed: {trace.error}", "server_error", "search_failed")
        return trace

    def check_key(self, header: str | None) -> None:
        if self.config.api_key is None:
            return
        given = (header or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), self.config.api_key.encode()):
            raise RequestError(
                401,
                "invalid API key: send 'Authorization: Bearer <key>'",
                "invalid_request_error",
                "invalid_api_key",
            )

    def models_body(self) -> dict[str, Any]:
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": m.name, "object": "model", "created": created, "owned_by": "slowthink"}
                for m in self.models
            ],
        }


def build_app(service: Service):
    """The Starlette app of ``service``: ``POST /v1/chat/completions``, ``GET /v1/models``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    def error(e: RequestError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    def internal(e: Exception) -> RequestError:  # a failure of one request never stops the server
        return RequestError(500, f"internal error: {type(e).__name__}: {e}", "server_error")

    async def read_body(request: Request) -> Any:
        limit = service.config.max_body_bytes
        declared = request.headers.get("content-length")
        too_big = RequestError(
            413, f"the request body is larger than {limit} bytes", code="request_too_large"
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise too_big
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise too_big
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RequestError(400, f"the request body is not valid JSON ({e})") from None

    async def models(request: Request):
        try:
            service.check_key(request.headers.get("authorization"))
        except RequestError as e:
            return error(e)
        return JSONResponse(service.models_body())

    async def chat(request: Request):
        try:
            service.check_key(request.headers.get("authorization"))
        except RequestError as e:
            return error(e)
        if service.in_flight >= service.config.max_concurrent:
            return error(
                RequestError(
                    429,
                    f"the server is busy ({service.config.max_concurrent} requests in flight); retry later",
                    "rate_limit_exceeded",
                    "too_many_requests",
                )
            )
        service.in_flight += 1  # until the request's search is over (or it is refused)
        folder = Path(tempfile.mkdtemp(prefix="slowthink-serve-"))
        try:
            body = await read_body(request)
            chat_request = parse_chat(body, folder, service.config.allow_local_images)
            choice = service.prepare(chat_request)
        except Exception as e:
            service.in_flight -= 1
            shutil.rmtree(folder, ignore_errors=True)
            return error(e if isinstance(e, RequestError) else internal(e))
        loop = asyncio.get_running_loop()
        committed: asyncio.Queue[Node] = asyncio.Queue()
        listener = (
            (lambda node: loop.call_soon_threadsafe(committed.put_nowait, node))
            if chat_request.stream
            else None
        )
        search = asyncio.ensure_future(
            service.answer(choice, Submission(chat_request.problem, folder, listener))
        )
        search.add_done_callback(lambda _: release())
        rid = f"chatcmpl-{uuid.uuid4().hex}"
        if chat_request.stream:
            return StreamingResponse(
                stream(search, committed, chat_request, rid),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        try:
            trace = await search
        except Exception as e:
            return error(e if isinstance(e, RequestError) else internal(e))
        return JSONResponse(completion_body(trace, chat_request.model, rid))

    def release() -> None:
        service.in_flight -= 1

    async def stream(
        search: asyncio.Future, committed: asyncio.Queue, chat_request: ChatRequest, rid: str
    ) -> AsyncIterator[str]:
        """SSE events: the role, each committed stage / step as ``reasoning_content`` the moment the
        search commits to it, then the answer, the finish reason, ``usage`` and ``[DONE]``; a
        failure after the stream began is an ``error`` event."""
        model, sent = chat_request.model, 0
        try:
            yield sse(stream_chunk(rid, model, {"role": "assistant", "content": ""}))
            while not (search.done() and committed.empty()):
                getter = asyncio.ensure_future(committed.get())
                await asyncio.wait({getter, search}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    continue
                sent += 1
                yield sse(stream_chunk(rid, model, {"reasoning_content": getter.result().text}))
            try:
                trace = search.result()
            except Exception as e:
                yield sse((e if isinstance(e, RequestError) else internal(e)).body())
            else:
                for node in trace.steps[sent:]:  # a path the listener did not hear (none expected)
                    yield sse(stream_chunk(rid, model, {"reasoning_content": node.text}))
                for chunk in stream_end(trace, rid, model, chat_request.include_usage):
                    yield sse(chunk)
            yield "data: [DONE]\n\n"
        finally:
            if not search.done():  # the client left: its search still runs, its answer is dropped
                search.cancel()

    async def not_found(request: Request, exc: Exception):
        return error(
            RequestError(
                404,
                f"no route {request.method} {request.url.path}: use POST "
                "/v1/chat/completions or GET /v1/models",
                code="not_found",
            )
        )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.batcher.close()

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
        lifespan=lifespan,
    )


def api_key_from_env(name: str | None) -> str | None:
    """The key in environment variable ``name`` (``None``: no key asked)."""
    if name is None:
        return None
    key = os.environ.get(name, "")
    if not key:
        raise SlowthinkError(
            f"environment variable {name} (--api-key-env) is empty or not set; export the key in it"
        )
    return key


def run_server(
    config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Load the engine, check the listed models and serve until interrupted."""
    import uvicorn

    app = build_app(Service(config))
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=True)


__all__ = [
    "ServeConfig",
    "Service",
    "Submission",
    "api_key_from_env",
    "build_app",
    "make_engine",
    "run_server",
]
